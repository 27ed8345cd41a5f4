package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/postern/postern/protocol"
)

// Crypto-erasure of short-lived secrets (protocol/SPEC.md section 9
// "Erasure"). bbolt never overwrites a page in place: a deleted or
// replaced value stays in a free page until the page is reused, and a
// value sealed under the long-term store key would decrypt from there
// for as long as the key file does. So the values of the ephemeral
// buckets (prekey secrets, session states) are each sealed under a record
// key of their own, fresh on every write; the record keys are in the
// keyring, sealed under the current epoch key; the epoch key lives only
// in a slot of erase.keys, a small file overwritten in place. A
// transaction that deletes or replaces an ephemeral value moves to a new
// epoch: the old keyring, the only place the dropped record key was kept,
// was sealed under an epoch key that is then overwritten.
const (
	// EraseKeysFileName is the file of epoch-key slots under the home.
	EraseKeysFileName = "erase.keys"

	// EraseSlotLabel derives, with HKDF-SHA-256 from the store key, the
	// key that seals the slots of erase.keys.
	EraseSlotLabel = "postern.v1 store-erase-slot"
	eraseSlots     = 2
	eraseSlotSize  = 128 // nonce (24) || sealed u64 epoch || key (32) + tag (16) || random padding
	eraseKeySize   = chacha20poly1305.KeySize
)

var (
	keyStoreRecord = []byte("store")
	keyKeyring     = []byte("keyring")
)

// eraseState is a transaction's view of the keyring, loaded on first use.
type eraseState struct {
	epoch uint64
	key   []byte            // the epoch key
	ring  map[string][]byte // ringID(bucket, key) -> record key
	dirty bool              // the keyring changed: seal and store it
	shred bool              // a record key was dropped: move to a new epoch
	// After finish: the slot written for a new epoch, and the slot of the
	// old one (-1: none).
	newSlot, oldSlot int
}

func isEphemeral(bucket []byte) bool {
	for _, b := range ephemeralBuckets {
		if bytes.Equal(b, bucket) {
			return true
		}
	}
	return false
}

func ringID(bucket, key []byte) string { return string(bucket) + "\x00" + string(key) }

func (s *Store) eraseKeysPath() string {
	return filepath.Join(filepath.Dir(s.path), EraseKeysFileName)
}

// ---- erase.keys ----

func slotAD(i int) []byte { return append([]byte(EraseSlotLabel), byte(i)) }

func (s *Store) sealSlot(i int, epoch uint64, key []byte) []byte {
	b := make([]byte, eraseSlotSize)
	rand.Read(b)
	plain := append(binary.BigEndian.AppendUint64(nil, epoch), key...)
	s.slotAEAD.Seal(b[:chacha20poly1305.NonceSizeX], b[:chacha20poly1305.NonceSizeX], plain, slotAD(i))
	return b
}

// readSlots returns the epoch and key of each slot that opens; a wiped
// slot gives epoch 0.
func (s *Store) readSlots() (epochs [eraseSlots]uint64, ks [eraseSlots][]byte, err error) {
	b, err := os.ReadFile(s.eraseKeysPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return epochs, ks, fmt.Errorf("store: read %s: %w", EraseKeysFileName, err)
	}
	if err != nil || len(b) != eraseSlots*eraseSlotSize {
		return epochs, ks, ErrEraseKeys
	}
	const n = chacha20poly1305.NonceSizeX
	for i := range eraseSlots {
		sl := b[i*eraseSlotSize : (i+1)*eraseSlotSize]
		p, err := s.slotAEAD.Open(nil, sl[:n], sl[n:n+8+eraseKeySize+chacha20poly1305.Overhead], slotAD(i))
		if err != nil {
			continue
		}
		epochs[i], ks[i] = binary.BigEndian.Uint64(p), p[8:]
	}
	return epochs, ks, nil
}

// writeSlot overwrites slot i in place and syncs the file.
func (s *Store) writeSlot(i int, b []byte) error {
	f, err := os.OpenFile(s.eraseKeysPath(), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("store: %s: %w", EraseKeysFileName, err)
	}
	_, err = f.WriteAt(b, int64(i*eraseSlotSize))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: %s: %w", EraseKeysFileName, err)
	}
	return nil
}

// wipeSlot overwrites slot i with random bytes.
func (s *Store) wipeSlot(i int) error {
	b := make([]byte, eraseSlotSize)
	rand.Read(b)
	return s.writeSlot(i, b)
}

// createEraseKeys writes a new erase.keys holding the key of epoch in
// slot 0 (slot 1 random), synced with its directory.
func (s *Store) createEraseKeys(epoch uint64, key []byte) error {
	b := make([]byte, eraseSlots*eraseSlotSize)
	rand.Read(b)
	copy(b, s.sealSlot(0, epoch, key))
	p := s.eraseKeysPath()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("store: create %s: %w", EraseKeysFileName, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = SyncDir(filepath.Dir(p))
	}
	if err != nil {
		return fmt.Errorf("store: create %s: %w", EraseKeysFileName, err)
	}
	return nil
}

// SyncDir fsyncs directory dir, so that files created, renamed or removed
// in it stay so after a crash (a no-op on Windows).
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for sync; NTFS journals the metadata
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ---- the keyring ----

// encodeRing: u32 n || n × (u8 len || bucket || u8 len || key || record
// key [32]), sorted.
func encodeRing(ring map[string][]byte) []byte {
	ids := make([]string, 0, len(ring))
	for id := range ring {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	b := binary.BigEndian.AppendUint32(nil, uint32(len(ids)))
	for _, id := range ids {
		bucket, key, _ := bytes.Cut([]byte(id), []byte{0})
		b = append(b, byte(len(bucket)))
		b = append(b, bucket...)
		b = append(b, byte(len(key)))
		b = append(b, key...)
		b = append(b, ring[id]...)
	}
	return b
}

func decodeRing(b []byte) (map[string][]byte, error) {
	r := protocol.NewReader(b)
	n := int(r.U32("key count"))
	if r.Err() != nil || n > len(b) {
		return nil, ErrCorrupt
	}
	ring := make(map[string][]byte, n)
	for range n {
		bucket := r.Take(int(r.U8("bucket length")), "bucket")
		key := r.Take(int(r.U8("key length")), "key")
		k := r.Take(eraseKeySize, "erasure key")
		if r.Err() != nil {
			return nil, ErrCorrupt
		}
		ring[ringID(bucket, key)] = bytes.Clone(k)
	}
	if r.Len() != 0 {
		return nil, ErrCorrupt
	}
	return ring, nil
}

func sealWith(key, plain, ad []byte) []byte {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		panic(err) // key sizes are constants
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(plain)+chacha20poly1305.Overhead)
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, ad)
}

func openWith(key, v, ad []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil || len(v) < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return nil, ErrCorrupt
	}
	p, err := aead.Open(nil, v[:chacha20poly1305.NonceSizeX], v[chacha20poly1305.NonceSizeX:], ad)
	if err != nil {
		return nil, ErrCorrupt
	}
	return p, nil
}

// erasure returns the transaction's keyring, loading it on first use.
func (t *Tx) erasure() (*eraseState, error) {
	if t.er != nil {
		return t.er, nil
	}
	rec, err := t.Record()
	if err != nil {
		return nil, err
	}
	if rec == nil || rec.Schema < 2 {
		return nil, ErrCorrupt // prepare migrates schema 1 first
	}
	epochs, ks, err := t.s.readSlots()
	if err != nil {
		return nil, err
	}
	st := &eraseState{epoch: rec.Epoch, newSlot: -1, oldSlot: -1}
	for i := range eraseSlots {
		if epochs[i] == rec.Epoch {
			st.key = ks[i]
		}
	}
	if st.key == nil {
		return nil, ErrEraseKeys
	}
	rk := t.s.Index(BucketErasure, keyKeyring)
	v := t.bt.Bucket(BucketErasure).Get(rk)
	if v == nil {
		st.ring = map[string][]byte{}
	} else {
		p, err := openWith(st.key, v, AD(BucketErasure, rk))
		if err != nil {
			return nil, err
		}
		if st.ring, err = decodeRing(p); err != nil {
			return nil, err
		}
	}
	t.er = st
	return st, nil
}

// putEphemeral seals v under a fresh record key; a record key it replaces
// is dropped.
func (t *Tx) putEphemeral(bucket, key, val []byte) error {
	st, err := t.erasure()
	if err != nil {
		return err
	}
	if len(key) > 255 {
		return errors.New("store: ephemeral record key too long") // keys are 16-byte indexes and IDs
	}
	id := ringID(bucket, key)
	if _, ok := st.ring[id]; ok {
		st.shred = true
	}
	k := make([]byte, eraseKeySize)
	rand.Read(k)
	st.ring[id], st.dirty = k, true
	return t.bt.Bucket(bucket).Put(key, sealWith(k, val, AD(bucket, key)))
}

func (t *Tx) openEphemeral(bucket, key, v []byte) ([]byte, error) {
	st, err := t.erasure()
	if err != nil {
		return nil, err
	}
	k, ok := st.ring[ringID(bucket, key)]
	if !ok {
		return nil, ErrCorrupt
	}
	return openWith(k, v, AD(bucket, key))
}

func (t *Tx) delEphemeral(bucket, key []byte) error {
	st, err := t.erasure()
	if err != nil {
		return err
	}
	id := ringID(bucket, key)
	if _, ok := st.ring[id]; ok {
		delete(st.ring, id)
		st.shred, st.dirty = true, true
	}
	return t.bt.Bucket(bucket).Delete(key)
}

// finish stores a changed keyring at the end of a read-write transaction:
// after a record key was dropped, under the key of a new epoch, written
// to the other slot of erase.keys (and synced) before the commit.
func (t *Tx) finish() error {
	st := t.er
	if st == nil || !st.dirty {
		return nil
	}
	if st.shred {
		epochs, _, err := t.s.readSlots()
		if err != nil {
			return err
		}
		cur := -1
		for i := range eraseSlots {
			if epochs[i] == st.epoch {
				cur = i
			}
		}
		if cur < 0 {
			return ErrEraseKeys
		}
		next := make([]byte, eraseKeySize)
		rand.Read(next)
		st.newSlot = 1 - cur
		if err := t.s.writeSlot(st.newSlot, t.s.sealSlot(st.newSlot, st.epoch+1, next)); err != nil {
			return err
		}
		rec, err := t.Record()
		if err != nil {
			return err
		}
		rec.Epoch = st.epoch + 1
		if err := t.putRecord(rec); err != nil {
			return err
		}
		st.oldSlot, st.epoch, st.key = cur, st.epoch+1, next
	}
	rk := t.s.Index(BucketErasure, keyKeyring)
	return t.bt.Bucket(BucketErasure).Put(rk, sealWith(st.key, encodeRing(st.ring), AD(BucketErasure, rk)))
}

// afterCommit destroys the old epoch's key once the new epoch is
// committed, or the new epoch's key if the commit failed (then the store
// still names the old one).
func (t *Tx) afterCommit(committed bool) error {
	st := t.er
	if st == nil || st.newSlot < 0 {
		return nil
	}
	if committed {
		return t.s.wipeSlot(st.oldSlot)
	}
	return t.s.wipeSlot(st.newSlot)
}

// EraseKeysPath is the path of erase.keys (beside the store file).
func (s *Store) EraseKeysPath() string { return s.eraseKeysPath() }

// EpochKeys returns the epoch keys in the slots of erase.keys that open
// now: with DecodeKeyring, what an audit of erasure (a test that looks
// for old values in free pages) needs to try every key the home holds.
func (s *Store) EpochKeys() ([][]byte, error) {
	_, ks, err := s.readSlots()
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, k := range ks {
		if k != nil {
			out = append(out, k)
		}
	}
	return out, nil
}

// DecodeKeyring decodes the plaintext of a keyring value: a map from
// bucket || 0x00 || key to the record key of that value.
func DecodeKeyring(b []byte) (map[string][]byte, error) { return decodeRing(b) }
