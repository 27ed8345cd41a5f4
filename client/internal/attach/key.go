package attach

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
)

// KeySize is the size of a file key.
const KeySize = 32

// Key is the secret key of one file. Make one with NewKey for every file
// and never reuse it: the chunk nonces are counters, so two files under
// one key would share keystream.
//
// The zero Key is not a key. Keys are not comparable with ==; use Equal.
type Key struct {
	_ [0]func() // not comparable
	b [KeySize]byte
}

// NewKey returns a fresh random file key from crypto/rand.
func NewKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k.b[:]); err != nil {
		return Key{}, fmt.Errorf("attach: random source: %v", err)
	}
	return k, nil
}

// KeyFromBytes parses a key received in an attachment announcement. It
// fails with ErrMalformed unless b is exactly KeySize bytes; it never echoes b.
func KeyFromBytes(b []byte) (Key, error) {
	var k Key
	if len(b) != KeySize {
		return Key{}, fmt.Errorf("%w: file key of %d bytes, want %d", ErrMalformed, len(b), KeySize)
	}
	copy(k.b[:], b)
	return k, nil
}

// Bytes returns the SECRET file key in the clear. Anyone holding it can
// decrypt the file. It exists for one purpose: to put the key into the
// attachment announcement, which travels only inside an end-to-end
// encrypted session message (SPEC.md 12.3), or into the client's encrypted
// local store. Never log it, print it, or send it anywhere else.
func (k Key) Bytes() []byte {
	b := k.b
	return b[:]
}

// Equal reports whether two keys are the same, in constant time.
func (k Key) Equal(o Key) bool {
	return subtle.ConstantTimeCompare(k.b[:], o.b[:]) == 1
}

// String redacts: the key is a secret.
func (Key) String() string { return "attach.Key(REDACTED)" }

// GoString redacts for %#v as well.
func (k Key) GoString() string { return k.String() }

// Format redacts for every verb (%x, %v, %s, %q, %d...).
func (k Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }
