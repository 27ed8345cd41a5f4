package attach

import (
	"errors"
	"fmt"
	"testing"
)

func TestPadme(t *testing.T) {
	for _, tc := range []struct{ n, want int64 }{
		{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}, {7, 7}, {8, 8}, {9, 10}, {11, 12},
		{17, 18}, {33, 36}, {100, 104}, {129, 144}, {1000, 1024}, {1 << 24, 1 << 24},
	} {
		if got := padme(tc.n); got != tc.want {
			t.Errorf("padme(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
	prev := int64(0)
	for n := int64(1); n <= 1<<20; n++ {
		p := padme(n)
		if p < n || p < prev || padme(p) != p || float64(p-n) > 0.12*float64(n) {
			t.Fatalf("padme(%d) = %d (previous %d): not a monotone idempotent rounding within 12 %%", n, p, prev)
		}
		prev = p
	}
}

func TestSizes(t *testing.T) {
	for _, tc := range []struct {
		plain, chunks int64
	}{
		{0, 1}, {1, 1}, {ChunkSize, 1}, {ChunkSize + 1, 2}, {4 * ChunkSize, 4},
		{8*ChunkSize + 1, 10}, {paddedSize, 10}, {10 * ChunkSize, 10},
		{1 << 30, 1 << 14}, {1<<30 + 1, 1<<14 + 1<<10}, {MaxPlainSize, MaxChunks},
		{-1, -1}, {MaxPlainSize + 1, -1},
	} {
		t.Run(fmt.Sprint(tc.plain), func(t *testing.T) {
			if got := Chunks(tc.plain); got != tc.chunks {
				t.Fatalf("Chunks = %d, want %d", got, tc.chunks)
			}
			want := tc.chunks * CipherChunkSize
			if tc.chunks < 0 {
				want = -1
			}
			if got := CipherSize(tc.plain); got != want {
				t.Fatalf("CipherSize = %d, want %d", got, want)
			}
		})
	}
	if !errors.Is(CheckSize(MaxPlainSize+1), ErrTooLarge) || !errors.Is(CheckSize(-1), ErrMalformed) || CheckSize(MaxPlainSize) != nil {
		t.Fatal("CheckSize")
	}
	// The largest file a default relay takes is 4 GiB of ciphertext.
	t.Logf("a 4 GiB blob holds up to %d plaintext bytes", maxPlainFor(4<<30))
}

// maxPlainFor is the largest plaintext whose ciphertext fits in max bytes.
func maxPlainFor(max int64) int64 {
	lo, hi := int64(0), int64(MaxPlainSize)
	for lo < hi {
		m := (lo + hi + 1) / 2
		if CipherSize(m) <= max {
			lo = m
		} else {
			hi = m - 1
		}
	}
	return lo
}

func TestResumeAt(t *testing.T) {
	for _, tc := range []struct{ size, written, from, keep int64 }{
		{0, 0, 0, 0},
		{100, 0, 0, 0},
		{100, 50, 0, 0},
		{100, 100, 1, 100},
		{100, 200, 1, 100},
		{3 * ChunkSize, ChunkSize + 5, 1, ChunkSize},
		{3 * ChunkSize, 2 * ChunkSize, 2, 2 * ChunkSize},
		{3 * ChunkSize, 3 * ChunkSize, 3, 3 * ChunkSize},
		{paddedSize, paddedSize, 9, paddedSize},
	} {
		from, keep := ResumeAt(tc.size, tc.written)
		if from != tc.from || keep != tc.keep || PlainOffset(tc.size, from) != keep {
			t.Errorf("ResumeAt(%d, %d) = %d, %d; want %d, %d", tc.size, tc.written, from, keep, tc.from, tc.keep)
		}
	}
}

func TestKeyRedaction(t *testing.T) {
	k := testKey()
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		if s := fmt.Sprintf(f, k); s != "attach.Key(REDACTED)" {
			t.Errorf("%s gives %q", f, s)
		}
	}
	if s := fmt.Sprint(struct{ K Key }{k}); s != "{attach.Key(REDACTED)}" {
		t.Errorf("in a struct: %q", s)
	}
	k2, err := KeyFromBytes(k.Bytes())
	if err != nil || !k2.Equal(k) || k2.Equal(otherKey()) {
		t.Fatal("KeyFromBytes / Equal")
	}
	k.Bytes()[0] ^= 1 // Bytes returns a copy
	if !k2.Equal(k) {
		t.Fatal("Bytes aliases the key")
	}
	if _, err := KeyFromBytes(make([]byte, 31)); !errors.Is(err, ErrMalformed) {
		t.Fatal("short key accepted")
	}
	a, _ := NewKey()
	b, _ := NewKey()
	if a.Equal(b) || a.Equal(Key{}) {
		t.Fatal("NewKey repeats")
	}
}
