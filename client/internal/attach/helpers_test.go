package attach

import (
	"bytes"
	"flag"
	"io"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden vectors and the fuzz seed corpora")

// testKey and otherKey are the fixed keys of the vectors: bytes 0x00..0x1f
// and 0x20..0x3f.
func testKey() Key  { return seqKey(0x00) }
func otherKey() Key { return seqKey(0x20) }

func seqKey(start byte) Key {
	b := make([]byte, KeySize)
	for i := range b {
		b[i] = start + byte(i)
	}
	k, err := KeyFromBytes(b)
	if err != nil {
		panic(err)
	}
	return k
}

// pattern is the vectors' plaintext: byte j is (j mod 251) + 1, never zero. It is generated
// on the fly at any offset, so large streams need no storage.
type pattern struct{ size int64 }

var period = func() []byte {
	b := make([]byte, 251+ChunkSize)
	for i := range b {
		b[i] = byte(i%251 + 1)
	}
	return b
}()

func (p pattern) ReadAt(b []byte, off int64) (int, error) {
	if off >= p.size {
		return 0, io.EOF
	}
	n := 0
	for len(b) > 0 && off < p.size {
		c := copy(b[:min(int64(len(b)), p.size-off)], period[off%251:])
		b, off, n = b[c:], off+int64(c), n+c
	}
	if len(b) > 0 {
		return n, io.EOF
	}
	return n, nil
}

func patternBytes(size int64) []byte {
	b := make([]byte, size)
	_, _ = pattern{size}.ReadAt(b, 0)
	return b
}

// encryptAll returns the whole ciphertext of plain under key.
func encryptAll(t testing.TB, key Key, plain []byte) []byte {
	t.Helper()
	e := NewEncryptor(key, bytes.NewReader(plain), int64(len(plain)))
	ct, err := io.ReadAll(e.Reader(0))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(ct)) != CipherSize(int64(len(plain))) {
		t.Fatalf("ciphertext of %d bytes, want %d", len(ct), CipherSize(int64(len(plain))))
	}
	return ct
}

// decryptAll decrypts ct as a file of plainSize bytes, writing it in one call.
func decryptAll(key Key, plainSize int64, ct []byte) ([]byte, [32]byte, error) {
	var out bytes.Buffer
	d := NewDecryptor(key, plainSize, &out)
	if _, err := d.Write(ct); err != nil {
		return out.Bytes(), [32]byte{}, err
	}
	sum, err := d.Close()
	return out.Bytes(), sum, err
}

// chunkOf returns chunk i of a ciphertext.
func chunkOf(ct []byte, i int) []byte { return ct[i*CipherChunkSize : (i+1)*CipherChunkSize] }

// resealed returns a ciphertext like the one of plain under key, except
// that chunk i's plaintext is modified by f before sealing.
func resealed(t testing.TB, key Key, plain []byte, i int64, f func(chunk []byte)) []byte {
	t.Helper()
	ct := encryptAll(t, key, plain)
	n := Chunks(int64(len(plain)))
	chunk := make([]byte, ChunkSize)
	copy(chunk, plain[min(int64(len(plain)), i*ChunkSize):min(int64(len(plain)), (i+1)*ChunkSize)])
	f(chunk)
	sealed := SealChunk(key, i, i == n-1, chunk, nil)
	copy(ct[i*CipherChunkSize:], sealed)
	return ct
}
