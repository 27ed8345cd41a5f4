package session

import (
	"bytes"
	"errors"
	"testing"
)

// SealAppend and OpenAppend write behind what dst holds, never leave old
// bytes of a reused buffer in a message or a plaintext, and return dst
// unchanged on failure.
func TestSealOpenAppend(t *testing.T) {
	a, r := steady(t)
	prefix := []byte{0xAB, 0xCD}
	// A reused buffer full of stale bytes: they must not reach the padding.
	buf := bytes.Repeat([]byte{0xFF}, 4096)[:0]
	buf = append(buf, prefix...)
	msg, err := a.SealAppend(buf, []byte("hello"), 300)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg) != len(prefix)+300 || !bytes.Equal(msg[:2], prefix) {
		t.Fatalf("SealAppend: %d bytes, prefix %x", len(msg), msg[:2])
	}

	out := bytes.Repeat([]byte{0xEE}, 4096)[:0]
	out = append(out, 'p')
	pt, err := r.OpenAppend(out, msg[len(prefix):])
	if err != nil {
		t.Fatal(err)
	}
	if pt[0] != 'p' || !bytes.HasPrefix(pt[1:], []byte("hello")) {
		t.Fatalf("OpenAppend = %q", pt[:8])
	}
	if pad := pt[1+len("hello"):]; len(pad) == 0 || !bytes.Equal(pad, make([]byte, len(pad))) {
		t.Fatalf("padding is not %d zero bytes: %x", len(pad), pad)
	}

	// A replay fails, and dst comes back as it was.
	again, err := r.OpenAppend(out, msg[len(prefix):])
	if !errors.Is(err, ErrDecrypt) || len(again) != len(out) || again[0] != 'p' {
		t.Fatalf("replay: %v, %d bytes", err, len(again))
	}
	// So does a message that does not fit its padding.
	same, err := a.SealAppend(prefix, bytes.Repeat([]byte("x"), 400), 300)
	if !errors.Is(err, ErrTooLarge) || !bytes.Equal(same, prefix) {
		t.Fatalf("too large: %v, %x", err, same)
	}
	// The sessions' scratch buffers are wiped after each use: no decrypted
	// header or associated data stays behind.
	for name, s := range map[string]*Session{"sender": a, "receiver": r} {
		if tmp := s.tmp[:cap(s.tmp)]; len(tmp) == 0 || !bytes.Equal(tmp, make([]byte, len(tmp))) {
			t.Errorf("%s: scratch of %d bytes not wiped", name, len(tmp))
		}
	}
}
