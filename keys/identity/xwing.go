package identity

import (
	"crypto/hpke"
	"crypto/rand"
	"fmt"

	"github.com/postern/postern/keys"
)

// xwingKey is an X-Wing private key: its 32-byte seed (the X-Wing private
// key format) and the HPKE key crypto/hpke expands from it. The seed is the
// only thing stored; X-Wing keys are expanded by crypto/hpke alone, never
// by a second library, so the stored seed has a single meaning.
type xwingKey struct {
	_    noCompare
	seed [keys.XWingSeedSize]byte
	priv hpke.PrivateKey
	pub  *keys.Recipient
}

func newXWingKey() (*xwingKey, error) {
	var seed [keys.XWingSeedSize]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, ErrRandom
	}
	return xwingFromSeed(seed[:])
}

func xwingFromSeed(seed []byte) (*xwingKey, error) {
	if len(seed) != keys.XWingSeedSize {
		return nil, detail(ErrMalformedSecret, "identity: X-Wing seed: wrong length")
	}
	kem, _, _ := keys.Suite()
	priv, err := kem.NewPrivateKey(seed)
	if err != nil {
		return nil, detail(ErrMalformedSecret, "identity: X-Wing seed rejected")
	}
	pub, err := keys.ParseRecipient(priv.PublicKey().Bytes())
	if err != nil {
		return nil, detail(ErrMalformedSecret, "identity: derived X-Wing key rejected")
	}
	k := &xwingKey{priv: priv, pub: pub}
	copy(k.seed[:], seed)
	return k, nil
}

// open reverses keys.Recipient.Seal. Every failure is ErrDecrypt: the
// library's errors are dropped on purpose, so callers (and attackers
// feeding ciphertexts) cannot tell a bad enc from a bad tag.
func (k *xwingKey) open(info, aad, sealed []byte) ([]byte, error) {
	if len(sealed) < keys.SealOverhead {
		return nil, ErrDecrypt
	}
	_, kdf, aead := keys.Suite()
	r, err := hpke.NewRecipient(sealed[:keys.XWingCiphertextSize], k.priv, kdf, aead, info)
	if err != nil {
		return nil, ErrDecrypt
	}
	pt, err := r.Open(aad, sealed[keys.XWingCiphertextSize:])
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// Format makes every fmt verb print the redacted form.
func (k *xwingKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, "identity.xwingKey{REDACTED}") }
