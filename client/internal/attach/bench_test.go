package attach

import (
	"io"
	"testing"
)

// The chunk functions against a bare ChaCha20-Poly1305 seal of 64 KiB:
// SealChunk and OpenChunk also derive the payload key (HKDF) on every
// call; the Encryptor and Decryptor derive it once per file.

func BenchmarkBareChaCha20Poly1305Seal64K(b *testing.B) {
	a := mustAEAD(b, make([]byte, 32))
	buf := make([]byte, ChunkSize, CipherChunkSize)
	nonce := make([]byte, 12)
	b.SetBytes(ChunkSize)
	for b.Loop() {
		a.Seal(buf[:0], nonce, buf[:ChunkSize], nil)
	}
}

func BenchmarkSeal64K(b *testing.B) {
	key := testKey()
	buf := make([]byte, ChunkSize, CipherChunkSize)
	b.SetBytes(ChunkSize)
	for b.Loop() {
		SealChunk(key, 7, false, buf[:ChunkSize], buf[:0])
	}
}

func BenchmarkOpen64K(b *testing.B) {
	key := testKey()
	ct := SealChunk(key, 7, false, make([]byte, ChunkSize), nil)
	dst := make([]byte, 0, ChunkSize)
	b.SetBytes(ChunkSize)
	for b.Loop() {
		if _, err := OpenChunk(key, 7, false, ct, dst); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncryptor and BenchmarkDecryptor measure whole streams (64 MiB)
// including reading the source, padding, hashing and buffering.
func BenchmarkEncryptor(b *testing.B) {
	const size = 64 << 20
	buf := make([]byte, CipherChunkSize)
	b.SetBytes(size)
	for b.Loop() {
		if _, err := io.CopyBuffer(io.Discard, NewEncryptor(testKey(), pattern{size}, size).Reader(0), buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptor(b *testing.B) {
	const size = 64 << 20
	key := testKey()
	buf := make([]byte, CipherChunkSize)
	b.SetBytes(size)
	for b.Loop() {
		d := NewDecryptor(key, size, io.Discard)
		if _, err := io.CopyBuffer(d, NewEncryptor(key, pattern{size}, size).Reader(0), buf); err != nil {
			b.Fatal(err)
		}
		if _, err := d.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
