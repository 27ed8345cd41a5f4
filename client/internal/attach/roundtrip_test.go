package attach

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// roundTripSizes are the edges of the format plus random sizes up to
// about 40 chunks.
func roundTripSizes(rng *rand.Rand) []int64 {
	s := []int64{0, 1, 2, 100, ChunkSize - 1, ChunkSize, ChunkSize + 1, 2*ChunkSize - 1, 2 * ChunkSize,
		8*ChunkSize - 1, 8 * ChunkSize, 8*ChunkSize + 1, paddedSize, 9 * ChunkSize, 9*ChunkSize + 1, 17*ChunkSize + 3}
	for range 24 {
		s = append(s, rng.Int64N(40*ChunkSize))
	}
	return s
}

// TestRoundTrip is the property: for every size, encrypting with a fresh
// key and decrypting in random splits gives back the plaintext and its
// digest, and the ciphertext has exactly CipherSize bytes.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range roundTripSizes(rng) {
		key, err := NewKey()
		if err != nil {
			t.Fatal(err)
		}
		plain := make([]byte, size)
		for i := range plain {
			plain[i] = byte(rng.Uint32())
		}
		// Read the ciphertext in random-sized pieces, too.
		var ct bytes.Buffer
		r := NewEncryptor(key, bytes.NewReader(plain), size).Reader(0)
		buf := make([]byte, 3*CipherChunkSize)
		for {
			n, err := r.Read(buf[:1+rng.IntN(len(buf)-1)])
			ct.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if int64(ct.Len()) != CipherSize(size) {
			t.Fatalf("size %d: ciphertext %d bytes, want %d", size, ct.Len(), CipherSize(size))
		}
		var out bytes.Buffer
		d := NewDecryptor(key, size, &out)
		b := ct.Bytes()
		for len(b) > 0 {
			n := min(len(b), 1+rng.IntN(2*CipherChunkSize))
			if w, err := d.Write(b[:n]); err != nil || w != n {
				t.Fatalf("size %d: Write: %d, %v", size, w, err)
			}
			b = b[n:]
		}
		sum, err := d.Close()
		if err != nil || !bytes.Equal(out.Bytes(), plain) || sum != sha256.Sum256(plain) {
			t.Fatalf("size %d: round trip failed: %v", size, err)
		}
		if dg, _ := Digest(bytes.NewReader(plain)); dg != sum {
			t.Fatalf("size %d: Digest differs from Close", size)
		}
	}
}

// TestResume interrupts an upload and a download at every chunk boundary
// and in the middle of chunks, resumes as the client does, and checks the
// result is the same as in one go.
func TestResume(t *testing.T) {
	key := testKey()
	size := int64(paddedSize)
	plain := patternBytes(size)
	ct := encryptAll(t, key, plain)
	enc := NewEncryptor(key, bytes.NewReader(plain), size)
	for from := range enc.Chunks() + 1 {
		rest, err := io.ReadAll(enc.Reader(from))
		if err != nil || !bytes.Equal(rest, ct[CipherOffset(from):]) {
			t.Fatalf("Reader(%d) differs from the tail of the ciphertext: %v", from, err)
		}
	}
	if _, err := io.ReadAll(enc.Reader(enc.Chunks() + 1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Reader past the end: %v", err)
	}

	for _, cut := range []int64{0, 1, CipherChunkSize - 1, CipherChunkSize, 3*CipherChunkSize + 7, 9 * CipherChunkSize, 9*CipherChunkSize + 5, int64(len(ct)) - 1} {
		// First attempt: the connection drops after cut bytes.
		var part bytes.Buffer
		d := NewDecryptor(key, size, &part)
		if _, err := d.Write(ct[:cut]); err != nil {
			t.Fatal(err)
		}
		// Also simulate a crash mid-write of the plaintext: a few stray bytes.
		part.Write([]byte("stray"))
		from, keep := ResumeAt(size, int64(part.Len()))
		if from > d.Next() {
			t.Fatalf("cut %d: ResumeAt says chunk %d, only %d verified", cut, from, d.Next())
		}
		part.Truncate(int(keep))
		h := sha256.New()
		h.Write(part.Bytes())
		d2, err := NewDecryptorAt(key, size, &part, from, h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d2.Write(ct[CipherOffset(from):]); err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		sum, err := d2.Close()
		if err != nil || !bytes.Equal(part.Bytes(), plain) || sum != sha256.Sum256(plain) {
			t.Fatalf("cut %d (resume at %d): resumed download differs: %v", cut, from, err)
		}
	}
	if _, err := NewDecryptorAt(key, size, io.Discard, 2, nil); !errors.Is(err, ErrMalformed) {
		t.Fatal("resume without a prefix hash accepted")
	}
	if _, err := NewDecryptorAt(key, size, io.Discard, Chunks(size)+1, sha256.New()); !errors.Is(err, ErrMalformed) {
		t.Fatal("resume past the end accepted")
	}
}

// TestSourceErrors: a plaintext source shorter than announced, or failing.
func TestSourceErrors(t *testing.T) {
	key := testKey()
	short := NewEncryptor(key, bytes.NewReader(make([]byte, 100)), 200)
	if _, err := io.ReadAll(short.Reader(0)); !errors.Is(err, ErrTruncated) {
		t.Fatalf("short source: %v", err)
	}
	boom := errors.New("disk on fire")
	failing := NewEncryptor(key, failReaderAt{boom}, 200)
	if _, err := io.ReadAll(failing.Reader(0)); !errors.Is(err, boom) {
		t.Fatalf("failing source: %v", err)
	}
	huge := NewEncryptor(key, bytes.NewReader(nil), MaxPlainSize+1)
	if _, err := io.ReadAll(huge.Reader(0)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge: %v", err)
	}
	d := NewDecryptor(key, -5, io.Discard)
	if _, err := d.Write([]byte{1}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("negative size: %v", err)
	}
	var out bytes.Buffer
	dw := NewDecryptor(key, 10, failWriter{boom})
	if _, err := dw.Write(encryptAll(t, key, patternBytes(10))); !errors.Is(err, boom) || out.Len() != 0 {
		t.Fatalf("failing dst: %v", err)
	}
}

type failReaderAt struct{ err error }

func (f failReaderAt) ReadAt([]byte, int64) (int, error) { return 0, f.err }

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }
