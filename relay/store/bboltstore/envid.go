package bboltstore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
)

// Envelope IDs are the envelope's sequence number and 8 random bytes,
// encrypted with AES-128 under a key of the file's own (meta bucket, 16
// random bytes written when the file is opened without one):
//
//	ID = AES-128(K, seq u64 || random 8 bytes)
//
// An acknowledgement finds its envelope by decrypting the ID, so no index
// from ID to sequence is kept (it cost a write to a random page and about
// 40 bytes per envelope). To clients the IDs are random: they reveal
// neither the sequence nor how many envelopes the relay handles, and the
// random half keeps them distinct even when a restored backup hands out
// sequence numbers again. The stored record holds the whole ID and an
// acknowledgement must match it; an ID the relay did not issue decrypts to
// a random sequence and matches nothing.
//
// Envelopes stored by schema 1 have random IDs and stay in the env_id
// index until they are acknowledged or expire.

// keyEnvIDKey is the meta key of K.
var keyEnvIDKey = []byte("envelope-id-key")

// ensureEnvIDKey writes K when the file has none.
func ensureEnvIDKey(tx *bolt.Tx) error {
	meta := tx.Bucket(bMeta)
	if k := meta.Get(keyEnvIDKey); k != nil {
		if len(k) != 16 {
			return corrupt("envelope ID key of %d bytes", len(k))
		}
		return nil
	}
	var k [16]byte
	rand.Read(k[:])
	return meta.Put(keyEnvIDKey, k[:])
}

// loadEnvIDCipher reads K.
func loadEnvIDCipher(db *bolt.DB) (cipher.Block, error) {
	var c cipher.Block
	err := db.View(func(tx *bolt.Tx) error {
		k := tx.Bucket(bMeta).Get(keyEnvIDKey)
		if len(k) != 16 {
			return corrupt("envelope ID key of %d bytes", len(k))
		}
		var err error
		c, err = aes.NewCipher(k)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bboltstore: %w", err)
	}
	return c, nil
}

// envelopeID makes the ID of the envelope with sequence seq.
func (s *Store) envelopeID(seq uint64, salt [8]byte) protocol.EnvelopeID {
	var blk [16]byte
	binary.BigEndian.PutUint64(blk[:8], seq)
	copy(blk[8:], salt[:])
	var id protocol.EnvelopeID
	s.envIDs.Encrypt(id[:], blk[:])
	return id
}

// seqOf returns the sequence an ID names if the relay issued it.
func (s *Store) seqOf(id protocol.EnvelopeID) uint64 {
	var blk [16]byte
	s.envIDs.Decrypt(blk[:], id[:])
	return binary.BigEndian.Uint64(blk[:8])
}
