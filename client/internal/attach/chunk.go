package attach

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/postern/postern/protocol"
)

// Sizes and limits of the chunk format (protocol/SPEC.md section 12.2).
const (
	// ChunkSize is the plaintext size of every chunk.
	ChunkSize = protocol.BlobChunkSize
	// CipherChunkSize is the size of every sealed chunk: ChunkSize plus
	// the Poly1305 tag.
	CipherChunkSize = protocol.BlobCipherChunkSize
	// MaxPlainSize is the largest plaintext this package encrypts or
	// decrypts: 1 TiB. Relays cap blobs far lower (protocol.DefaultMaxBlobSize).
	MaxPlainSize = 1 << 40
	// MaxChunks is the padded chunk count of a MaxPlainSize file (Padmé
	// leaves 2^24 unchanged), so every valid chunk index is below it.
	MaxChunks = MaxPlainSize / ChunkSize

	// PayloadLabel is the HKDF-SHA256 info that derives the payload key
	// from the file key.
	PayloadLabel = "postern.v1 attachment"
)

// CheckSize reports whether plainSize can be encrypted: ErrMalformed if
// negative, ErrTooLarge above MaxPlainSize.
func CheckSize(plainSize int64) error {
	switch {
	case plainSize < 0:
		return fmt.Errorf("%w: negative plaintext size", ErrMalformed)
	case plainSize > MaxPlainSize:
		return fmt.Errorf("%w: %d bytes, maximum %d", ErrTooLarge, plainSize, int64(MaxPlainSize))
	}
	return nil
}

// Chunks is the padded chunk count of a plaintext of plainSize bytes: the
// data chunk count ceil(plainSize / ChunkSize), at least 1, rounded up by
// Padmé. It is -1 for a size CheckSize refuses.
func Chunks(plainSize int64) int64 {
	if CheckSize(plainSize) != nil {
		return -1
	}
	return padme(dataChunks(plainSize))
}

// CipherSize is the size of the encrypted, padded blob: Chunks(plainSize)
// whole chunks of CipherChunkSize. It is the size to ask the relay for
// (protocol.CreateBlob). It is -1 for a size CheckSize refuses.
func CipherSize(plainSize int64) int64 {
	n := Chunks(plainSize)
	if n < 0 {
		return -1
	}
	return n * CipherChunkSize
}

// CipherOffset is the ciphertext offset of chunk i: where an upload or a
// download (Range: bytes=N-) resumes.
func CipherOffset(i int64) int64 { return i * CipherChunkSize }

// PlainOffset is how many plaintext bytes chunks 0..i-1 hold for a file of
// plainSize bytes: what a Decryptor has written before chunk i.
func PlainOffset(plainSize, i int64) int64 { return min(i*ChunkSize, max(plainSize, 0)) }

// ResumeAt says where to resume a download into a partial plaintext file
// that already holds written bytes: truncate the file to keep bytes, hash
// them into a fresh SHA-256, and continue with NewDecryptorAt at chunk
// fromChunk, fetching the ciphertext from CipherOffset(fromChunk). A chunk
// whose plaintext was only partly written is fetched and verified again.
// Padding chunks after the last data chunk write nothing, so they are
// always fetched again on resume.
func ResumeAt(plainSize, written int64) (fromChunk, keep int64) {
	if plainSize <= 0 || written <= 0 {
		return 0, 0
	}
	if written >= plainSize {
		return dataChunks(plainSize), plainSize
	}
	fromChunk = written / ChunkSize
	return fromChunk, fromChunk * ChunkSize
}

// dataChunks is ceil(plainSize / ChunkSize), at least 1.
func dataChunks(plainSize int64) int64 {
	return max(1, (plainSize+ChunkSize-1)/ChunkSize)
}

// padme rounds n (>= 1) up with Padmé (Nikitin et al., PETS 2019): keep
// the top floor(log2 E)+1 bits of n, where E = floor(log2 n), and round the
// E - (floor(log2 E)+1) bits below them up. The result leaks O(log log n)
// bits of n and exceeds it by less than 12 %.
func padme(n int64) int64 {
	if n <= 2 {
		return n
	}
	e := bits.Len64(uint64(n)) - 1 // floor(log2 n) >= 1
	s := bits.Len64(uint64(e))     // floor(log2 e) + 1
	mask := int64(1)<<(e-s) - 1
	return (n + mask) &^ mask
}

// payloadKey derives the ChaCha20-Poly1305 key of a file.
func newAEAD(k Key) cipher.AEAD {
	pk, err := hkdf.Key(sha256.New, k.b[:], nil, PayloadLabel, chacha20poly1305.KeySize)
	if err != nil {
		panic("attach: HKDF: " + err.Error()) // unreachable: fixed, valid length
	}
	a, err := chacha20poly1305.New(pk)
	if err != nil {
		panic("attach: " + err.Error()) // unreachable: fixed key size
	}
	return a
}

// nonce is the 11-byte big-endian chunk index followed by the final flag.
func nonce(n *[chacha20poly1305.NonceSize]byte, i int64, last bool) []byte {
	n[0], n[1], n[2] = 0, 0, 0
	binary.BigEndian.PutUint64(n[3:11], uint64(i))
	n[11] = 0
	if last {
		n[11] = 1
	}
	return n[:]
}

// SealChunk seals chunk i of a file and appends it (CipherChunkSize bytes)
// to dst. plain must be exactly ChunkSize bytes (the caller pads the last
// data chunk and the padding chunks with zeros) and last must be true
// exactly for i = Chunks(plainSize)-1. A wrong length or an index outside
// [0, MaxChunks) is a programming error and panics, like cipher.AEAD with a
// wrong nonce. plain and dst may overlap exactly.
//
// SealChunk derives the payload key on every call; for whole files use an
// Encryptor, which derives it once.
func SealChunk(key Key, i int64, last bool, plain []byte, dst []byte) []byte {
	var n [chacha20poly1305.NonceSize]byte
	return sealChunk(newAEAD(key), &n, i, last, plain, dst)
}

// sealChunk and openChunk take the nonce buffer from their caller's
// long-lived state: a local one would escape to the heap through the AEAD
// interface, one allocation per chunk.
func sealChunk(a cipher.AEAD, n *[chacha20poly1305.NonceSize]byte, i int64, last bool, plain []byte, dst []byte) []byte {
	if len(plain) != ChunkSize {
		panic(fmt.Sprintf("attach: SealChunk of %d bytes, want %d", len(plain), ChunkSize))
	}
	if i < 0 || i >= MaxChunks {
		panic(fmt.Sprintf("attach: chunk index %d out of range", i))
	}
	return a.Seal(dst, nonce(n, i, last), plain, nil)
}

// OpenChunk verifies and decrypts chunk i and appends its ChunkSize
// plaintext bytes to dst. Every failure (wrong length, index out of range,
// any changed bit, wrong index or final flag, wrong key) is ErrDecrypt, and
// nothing is appended. ct and dst may overlap exactly. It does not check
// padding: that needs the file size (use a Decryptor).
func OpenChunk(key Key, i int64, last bool, ct []byte, dst []byte) ([]byte, error) {
	var n [chacha20poly1305.NonceSize]byte
	return openChunk(newAEAD(key), &n, i, last, ct, dst)
}

func openChunk(a cipher.AEAD, n *[chacha20poly1305.NonceSize]byte, i int64, last bool, ct []byte, dst []byte) ([]byte, error) {
	if len(ct) != CipherChunkSize || i < 0 || i >= MaxChunks {
		return dst, ErrDecrypt
	}
	out, err := a.Open(dst, nonce(n, i, last), ct, nil)
	if err != nil {
		return dst, ErrDecrypt
	}
	return out, nil
}
