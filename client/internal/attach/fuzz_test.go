package attach

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// Chunks are 64 KiB, too large for the fuzzer to mutate and minimise
// well, so the targets take a small edit script that they apply to a valid
// ciphertext (flip bytes, cut, swap or duplicate chunks, append bytes),
// and raw bytes that are used as they are when no base is chosen. Both
// explore the inputs that matter: almost-valid ciphertext.

// fuzzBases are valid ciphertexts under testKey of files of 0, 10,
// 65537 and paddedSize bytes (1, 1, 2 and 10 chunks).
var fuzzBases = sync.OnceValue(func() [][]byte {
	var out [][]byte
	for _, size := range fuzzSizes {
		e := NewEncryptor(testKey(), pattern{size}, size)
		b, err := io.ReadAll(e.Reader(0))
		if err != nil {
			panic(err)
		}
		out = append(out, b)
	}
	return out
})

var fuzzSizes = []int64{0, 10, ChunkSize + 1, paddedSize}

// applyEdits applies a script of 4-byte operations to a copy of ct.
func applyEdits(ct, script []byte) []byte {
	ct = slices.Clone(ct)
	for ; len(script) >= 4; script = script[4:] {
		op, a, v := script[0]%5, int(binary.BigEndian.Uint16(script[1:3])), script[3]
		n := len(ct) / CipherChunkSize
		switch op {
		case 0: // flip bits in one byte: the offset scaled over the whole stream
			if len(ct) > 0 && v != 0 {
				ct[a*len(ct)>>16] ^= v
			}
		case 1: // cut the stream
			ct = ct[:a*len(ct)>>16]
		case 2: // swap two chunks
			if n > 1 {
				i, j := a%n, int(v)%n
				ci := slices.Clone(ct[i*CipherChunkSize : (i+1)*CipherChunkSize])
				copy(ct[i*CipherChunkSize:], ct[j*CipherChunkSize:(j+1)*CipherChunkSize])
				copy(ct[j*CipherChunkSize:], ci)
			}
		case 3: // duplicate a chunk at the end
			if n > 0 {
				i := a % n
				ct = append(ct, ct[i*CipherChunkSize:(i+1)*CipherChunkSize]...)
			}
		case 4: // append bytes
			ct = append(ct, script[1:4]...)
		}
	}
	return ct
}

// FuzzOpenChunk: random or edited chunks never panic, and a chunk that
// opens is exactly the sealing of what it opened to (nothing forged opens).
func FuzzOpenChunk(f *testing.F) {
	key := testKey()
	f.Add([]byte{}, []byte{0, 0, 1, 1}, int64(0), true)
	f.Add([]byte{1, 2, 3}, []byte{}, int64(5), false)
	f.Fuzz(func(t *testing.T, raw, script []byte, i int64, last bool) {
		ct := raw
		if len(raw) == 0 {
			ct = applyEdits(fuzzBases()[3][:CipherChunkSize], script) // chunk 0 of 10
		}
		pt, err := OpenChunk(key, i, last, ct, nil)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) || pt != nil {
				t.Fatalf("failure is %v with %d bytes", err, len(pt))
			}
			return
		}
		if !bytes.Equal(SealChunk(key, i, last, pt, nil), ct) {
			t.Fatal("opened a chunk that is not the sealing of its plaintext")
		}
	})
}

// FuzzDecryptor: random or edited ciphertext, told a size near the true
// one, in random splits, never panics, and the Decryptor writes only the
// plaintext of chunks that authenticate: what it wrote re-encrypts to
// exactly the chunks it accepted.
func FuzzDecryptor(f *testing.F) {
	key := testKey()
	f.Add([]byte{}, []byte{}, uint8(2), int8(0), uint16(1000))
	f.Add([]byte{}, []byte{1, 0x80, 0, 0}, uint8(3), int8(0), uint16(0))
	f.Add([]byte{7}, []byte{}, uint8(0), int8(1), uint16(3))
	f.Fuzz(func(t *testing.T, raw, script []byte, base uint8, delta int8, split uint16) {
		var ct []byte
		size := int64(delta)
		if b := int(base) % (len(fuzzSizes) + 1); b < len(fuzzSizes) {
			ct = append(applyEdits(fuzzBases()[b], script), raw...)
			size = max(0, fuzzSizes[b]+int64(delta))
		} else {
			ct = raw
			size = max(0, size)
		}
		var out bytes.Buffer
		d := NewDecryptor(key, size, &out)
		step := int(split) + 1
		var err error
		for b := ct; len(b) > 0 && err == nil; {
			n := min(step, len(b))
			_, err = d.Write(b[:n])
			b = b[n:]
		}
		if err == nil {
			_, err = d.Close()
		}
		if err != nil && !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("unexpected error %v", err)
		}
		if int64(out.Len()) != PlainOffset(size, d.Next()) {
			t.Fatalf("wrote %d bytes after %d chunks", out.Len(), d.Next())
		}
		// Re-encrypt what was written: it must give the accepted chunks.
		e := NewEncryptor(key, bytes.NewReader(out.Bytes()), size)
		want := make([]byte, CipherOffset(d.Next()))
		var nb [12]byte
		for i := range d.Next() {
			if serr := e.seal(&nb, i, want[CipherOffset(i):CipherOffset(i+1)]); serr != nil {
				t.Fatal(serr)
			}
		}
		if !bytes.Equal(want, ct[:len(want)]) {
			t.Fatal("accepted chunks are not the encryption of what was written")
		}
	})
}

// TestWriteFuzzCorpus writes the committed seed corpora with -update.
func TestWriteFuzzCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to regenerate testdata/fuzz")
	}
	writeCorpus(t, "FuzzOpenChunk", "valid", "[]byte(\"\")\n[]byte(\"\")\nint64(0)\nbool(false)\n")
	writeCorpus(t, "FuzzOpenChunk", "flip-tag", "[]byte(\"\")\n[]byte(\"\\x00\\xff\\xff\\x01\")\nint64(0)\nbool(false)\n")
	writeCorpus(t, "FuzzOpenChunk", "wrong-flag", "[]byte(\"\")\n[]byte(\"\")\nint64(0)\nbool(true)\n")
	writeCorpus(t, "FuzzOpenChunk", "raw-short", "[]byte(\"\\x01\\x02\\x03\")\n[]byte(\"\")\nint64(-1)\nbool(false)\n")
	for b := range len(fuzzSizes) {
		writeCorpus(t, "FuzzDecryptor", fmt.Sprintf("valid-%d", fuzzSizes[b]), fmt.Sprintf("[]byte(\"\")\n[]byte(\"\")\nuint8(%d)\nint8(0)\nuint16(4095)\n", b))
	}
	writeCorpus(t, "FuzzDecryptor", "padding-size-off", "[]byte(\"\")\n[]byte(\"\")\nuint8(3)\nint8(-1)\nuint16(65535)\n")
	writeCorpus(t, "FuzzDecryptor", "swap-cut-append", "[]byte(\"\\x00\")\n[]byte(\"\\x02\\x00\\x01\\x02\\x01\\xf0\\x00\\x00\\x04abc\")\nuint8(3)\nint8(0)\nuint16(100)\n")
	writeCorpus(t, "FuzzDecryptor", "raw", "[]byte(\"garbage\")\n[]byte(\"\")\nuint8(4)\nint8(3)\nuint16(1)\n")
}

func writeCorpus(t *testing.T, target, name, body string) {
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte("go test fuzz v1\n"+body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFuzzCorpusPresent fails if the committed corpora are missing.
func TestFuzzCorpusPresent(t *testing.T) {
	for _, target := range []string{"FuzzOpenChunk", "FuzzDecryptor"} {
		m, _ := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
		if len(m) == 0 {
			t.Errorf("no committed seed corpus for %s (run with -update)", target)
		}
	}
}
