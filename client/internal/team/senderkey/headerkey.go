package senderkey

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// GroupID names a group: 16 bytes chosen by its creator.
type GroupID [GroupIDSize]byte

// HeaderKey is a group's header key: shared by every member, distributed
// and rotated with the membership (by the client), it encrypts each
// message's sender, epoch, iteration, body and signature so that the
// relay sees none of them. The zero value is not usable; make one with
// NewHeaderKey or ParseHeaderKey. It is safe for concurrent use.
type HeaderKey struct {
	k    [HeaderKeySize]byte
	aead cipher.AEAD // XChaCha20-Poly1305 under k
}

// NewHeaderKey returns a fresh header key read from r (nil: crypto/rand).
func NewHeaderKey(r io.Reader) (*HeaderKey, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [HeaderKeySize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return nil, ErrRandom
	}
	return ParseHeaderKey(b[:])
}

// ParseHeaderKey reads a header key's 32 bytes (ErrMalformed otherwise).
func ParseHeaderKey(b []byte) (*HeaderKey, error) {
	if len(b) != HeaderKeySize {
		return nil, ErrMalformed
	}
	k := &HeaderKey{}
	copy(k.k[:], b)
	a, err := chacha20poly1305.NewX(k.k[:])
	if err != nil {
		return nil, ErrMalformed // unreachable: the length is checked
	}
	k.aead = a
	return k, nil
}

// MarshalSecret returns the SECRET key bytes: whoever holds them reads
// the group's message headers.
func (k *HeaderKey) MarshalSecret() []byte { return append([]byte(nil), k.k[:]...) }

// Equal reports whether two header keys are the same, in constant time.
func (k *HeaderKey) Equal(o *HeaderKey) bool {
	return subtle.ConstantTimeCompare(k.k[:], o.k[:]) == 1
}

// String, GoString and Format redact the key, whatever the verb.
func (HeaderKey) String() string               { return "senderkey.HeaderKey{redacted}" }
func (k HeaderKey) GoString() string           { return k.String() }
func (k HeaderKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }
