package backup

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/postern/postern/protocol"
)

// File format (SPEC section 14.2).
const (
	// Magic starts every backup file.
	Magic = "postern-backup"
	// FormatVersion is the version byte after the magic.
	FormatVersion = 0x01
	// kdfNone: the recovery key is 256 random bits, so no password KDF
	// runs; HKDF derives the keys.
	kdfNone = 0x00

	// ChunkSize is the plaintext size of every chunk but the last.
	ChunkSize = 65536
	// CipherChunkSize is a sealed full chunk: ChunkSize plus the tag.
	CipherChunkSize = ChunkSize + chacha20poly1305.Overhead
	// MaxChunks bounds the chunks of one backup (256 TiB).
	MaxChunks = 1 << 32

	// SaltSize is the size of the random per-file salt.
	SaltSize = 32
	// HeaderSize is the size of the header before the first chunk.
	HeaderSize = signedHeaderSize + sha256.Size + headerSumSize

	signedHeaderSize = len(Magic) + 1 + 1 + 4 + SaltSize // 52: what the key check covers
	headerSumSize    = 8

	// MaxRecordSize bounds one record's data (16 MiB): the Reader holds at
	// most one record and one chunk in memory.
	MaxRecordSize = 16 << 20
	// RecordHeaderSize is a record's type and length.
	RecordHeaderSize = 1 + 4
)

// Labels (SPEC section 14, label table).
const (
	payloadLabel  = protocol.LabelPrefix + "backup"
	keyCheckLabel = protocol.LabelPrefix + "backup key-check"
)

// RecordType says what a record holds. The package frames records; the
// client defines their content.
type RecordType uint8

// Record types (SPEC section 14.3). 0 is never valid. A reader passes on
// types it does not know; the client skips them.
const (
	RecordIdentity      RecordType = 0x01 // the identity and this person's keys
	RecordProfile       RecordType = 0x02 // names and settings
	RecordContacts      RecordType = 0x03 // contacts (people and their devices)
	RecordConversations RecordType = 0x04 // conversations
	RecordMessages      RecordType = 0x05 // messages
	RecordAttachments   RecordType = 0x06 // attachment references
)

// Record is one typed record of a backup.
type Record struct {
	Type RecordType
	Data []byte
}

// keys are the derived keys of one file.
type fileKeys struct {
	keyCheck [sha256.Size]byte
	aead     cipher.AEAD
}

// header returns the 52 bytes the key check covers.
func signedHeader(salt *[SaltSize]byte) []byte {
	b := make([]byte, 0, HeaderSize)
	b = append(b, Magic...)
	b = append(b, FormatVersion, kdfNone)
	b = binary.BigEndian.AppendUint32(b, ChunkSize)
	return append(b, salt[:]...)
}

// deriveKeys computes, from the recovery key and the signed header:
//
//	check_key   = HKDF(RK, salt, "postern.v1 backup key-check", 32)
//	key_check   = HMAC-SHA-256(check_key, signed header)
//	payload_key = HKDF(RK, salt, "postern.v1 backup" || 0x00 || signed header, 32)
func deriveKeys(k *RecoveryKey, signed []byte) *fileKeys {
	ck, pk := rawKeys(k, signed)
	m := hmac.New(sha256.New, ck)
	m.Write(signed)
	fk := &fileKeys{}
	m.Sum(fk.keyCheck[:0])
	var err error
	if fk.aead, err = chacha20poly1305.New(pk); err != nil {
		panic("backup: " + err.Error()) // unreachable: fixed key size
	}
	return fk
}

// rawKeys returns check_key and payload_key.
func rawKeys(k *RecoveryKey, signed []byte) (checkKey, payloadKey []byte) {
	salt := signed[signedHeaderSize-SaltSize : signedHeaderSize]
	ck, err := hkdf.Key(sha256.New, k.b[:], salt, keyCheckLabel, 32)
	if err != nil {
		panic("backup: HKDF: " + err.Error()) // unreachable: fixed, small length
	}
	pk, err := hkdf.Key(sha256.New, k.b[:], salt, payloadLabel+"\x00"+string(signed), chacha20poly1305.KeySize)
	if err != nil {
		panic("backup: HKDF: " + err.Error())
	}
	return ck, pk
}

// headerSum is SHA-256(header bytes 0..83)[0:8]: it tells accidental
// damage to the header from a wrong key. It is not a MAC.
func headerSum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:headerSumSize]
}

// nonce is the STREAM nonce of chunk i: u88(i) || u8(last).
func nonce(n *[chacha20poly1305.NonceSize]byte, i uint64, last bool) []byte {
	clear(n[:3])
	binary.BigEndian.PutUint64(n[3:11], i)
	n[11] = 0
	if last {
		n[11] = 1
	}
	return n[:]
}
