package attach

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// paddedSize is the vectors' padded file: 9 data chunks (the last holding
// 100 bytes), which Padmé rounds to 10.
const paddedSize = 8*ChunkSize + 100

type tamperCase struct {
	name      string
	desc      string // what was done, for the vector file
	plainSize int64  // the size the Decryptor is told
	key       Key    // the key the Decryptor is given
	ct        []byte
	want      error
}

// tamperCases derives every attack from the padded file's ciphertext.
func tamperCases(t testing.TB) []tamperCase {
	key := testKey()
	plain := patternBytes(paddedSize)
	ct := encryptAll(t, key, plain)
	foreign := encryptAll(t, otherKey(), plain)
	one := encryptAll(t, key, patternBytes(ChunkSize))
	cs := CipherChunkSize
	n := int(Chunks(paddedSize))
	clone := func() []byte { return slices.Clone(ct) }
	join := func(order ...int) []byte {
		var b []byte
		for _, i := range order {
			b = append(b, chunkOf(ct, i)...)
		}
		return b
	}
	c := func(name, desc string, b []byte, want error) tamperCase {
		return tamperCase{name: name, desc: desc, plainSize: paddedSize, key: key, ct: b, want: want}
	}
	var cases []tamperCase
	for i := range n {
		b := clone()
		b[i*cs+1000] ^= 0x01
		cases = append(cases, c(fmt.Sprintf("flip-chunk-%d", i), fmt.Sprintf("flip bit 0 of byte %d (chunk %d)", i*cs+1000, i), b, ErrDecrypt))
	}
	b := clone()
	b[len(b)-1] ^= 0x80
	cases = append(cases, c("flip-last-tag", "flip bit 7 of the last byte (tag of the last chunk)", b, ErrDecrypt))
	cases = append(cases,
		c("drop-last", "drop the last chunk", ct[:(n-1)*cs], ErrTruncated),
		c("drop-last-two", "drop the last two chunks", ct[:(n-2)*cs], ErrTruncated),
		c("truncate-mid-chunk", "cut 100 bytes into the last chunk", ct[:(n-1)*cs+100], ErrTruncated),
		c("truncate-mid-first", "cut 65551 bytes into the first chunk", ct[:cs-1], ErrTruncated),
		c("empty-stream", "no ciphertext at all", nil, ErrTruncated),
		c("swap-0-1", "swap chunks 0 and 1", join(append([]int{1, 0}, seq(2, n)...)...), ErrDecrypt),
		c("swap-last-two", "swap chunks 8 and 9", join(append(seq(0, n-2), n-1, n-2)...), ErrDecrypt),
		c("reorder", "chunks 0, 2, 3, 1, 4..9", join(append([]int{0, 2, 3, 1}, seq(4, n)...)...), ErrDecrypt),
		c("duplicate-chunk", "chunk 0 sent twice, last chunk dropped", join(append([]int{0, 0}, seq(1, n-1)...)...), ErrDecrypt),
	)
	b = clone()
	copy(b[3*cs:], chunkOf(foreign, 3))
	cases = append(cases, c("foreign-chunk", "chunk 3 replaced by chunk 3 of the same plaintext under another key", b, ErrDecrypt))
	cases = append(cases,
		c("extra-chunk", "the last chunk appended again", append(clone(), chunkOf(ct, n-1)...), ErrMalformed),
		c("extra-byte", "one zero byte appended", append(clone(), 0), ErrMalformed),
		c("nonzero-padding-tail", "chunk 8 resealed with byte 100 (first padding byte) = 0x01", resealed(t, key, plain, 8, func(p []byte) { p[100] = 1 }), ErrMalformed),
		c("nonzero-padding-chunk", "chunk 9 (all padding) resealed with byte 65535 = 0x80", resealed(t, key, plain, 9, func(p []byte) { p[ChunkSize-1] = 0x80 }), ErrMalformed),
		c("nonfinal-last", "chunk 9 resealed without the final flag", withFlag(t, key, ct, 9, false), ErrDecrypt),
		c("final-early", "chunk 8 resealed with the final flag", withFlag(t, key, ct, 8, true), ErrDecrypt),
	)
	wrongKey := c("wrong-key", "decrypted under the other key", clone(), ErrDecrypt)
	wrongKey.key = otherKey()
	shorter := c("announced-shorter", "decrypted as a 65536-byte file (1 chunk): chunk 0 lacks the final flag", clone(), ErrDecrypt)
	shorter.plainSize = ChunkSize
	longer := c("announced-longer", "the 65536-byte file's ciphertext decrypted as a 65537-byte file: chunk 0 is final too early", one, ErrDecrypt)
	longer.plainSize = ChunkSize + 1
	return append(cases, wrongKey, shorter, longer)
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// withFlag reseals chunk i of ct (which must authenticate) with the given
// final flag, as a sender who misuses the key could.
func withFlag(t testing.TB, key Key, ct []byte, i int64, last bool) []byte {
	t.Helper()
	b := slices.Clone(ct)
	n := Chunks(paddedSize)
	pt, err := OpenChunk(key, i, i == n-1, chunkOf(b, int(i)), nil)
	if err != nil {
		t.Fatal(err)
	}
	copy(b[i*CipherChunkSize:], SealChunk(key, i, last, pt, nil))
	return b
}

// TestTamper checks that every attack is rejected with its error and that
// nothing unauthenticated reaches the output.
func TestTamper(t *testing.T) {
	plain := patternBytes(paddedSize)
	for _, tc := range tamperCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := decryptAll(tc.key, tc.plainSize, tc.ct)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !slices.Equal(out, plain[:len(out)]) && tc.plainSize == paddedSize {
				t.Fatal("output is not a prefix of the plaintext")
			}
			// The same, one byte per Write: the split must not matter.
			d := NewDecryptor(tc.key, tc.plainSize, discard{})
			var werr error
			for i := range tc.ct {
				if _, werr = d.Write(tc.ct[i : i+1]); werr != nil {
					break
				}
			}
			if werr == nil {
				_, werr = d.Close()
			}
			if !errors.Is(werr, tc.want) {
				t.Fatalf("byte by byte: got %v, want %v", werr, tc.want)
			}
			if _, err := d.Close(); !errors.Is(err, tc.want) {
				t.Fatalf("error is not sticky: %v", err)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestOpenChunkErrors: every bad input of OpenChunk is ErrDecrypt.
func TestOpenChunkErrors(t *testing.T) {
	key := testKey()
	plain := make([]byte, ChunkSize)
	ct := SealChunk(key, 5, false, plain, nil)
	if pt, err := OpenChunk(key, 5, false, ct, nil); err != nil || !slices.Equal(pt, plain) {
		t.Fatalf("round trip: %v", err)
	}
	for _, tc := range []struct {
		name string
		i    int64
		last bool
		ct   []byte
		key  Key
	}{
		{"wrong-index", 4, false, ct, key},
		{"wrong-flag", 5, true, ct, key},
		{"negative-index", -1, false, ct, key},
		{"index-too-large", MaxChunks, false, ct, key},
		{"short", 5, false, ct[:len(ct)-1], key},
		{"long", 5, false, append(slices.Clone(ct), 0), key},
		{"empty", 5, false, nil, key},
		{"wrong-key", 5, false, ct, otherKey()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := OpenChunk(tc.key, tc.i, tc.last, tc.ct, dst)
			if !errors.Is(err, ErrDecrypt) || string(out) != "keep" {
				t.Fatalf("got %q, %v; want dst unchanged and ErrDecrypt", out, err)
			}
		})
	}
}
