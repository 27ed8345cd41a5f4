package attach

import (
	"crypto/cipher"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

func mustAEAD(t testing.TB, key []byte) cipher.AEAD {
	a, err := chacha20poly1305.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
