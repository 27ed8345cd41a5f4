package keys

import (
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/sha256"
	"crypto/subtle"
	"sync"
)

// mlkemPublicKeySize is the ML-KEM-768 part of an X-Wing public key; the
// last 32 bytes are the X25519 part.
const mlkemPublicKeySize = 1184

// probeKey is a fixed X25519 scalar used only to detect low-order points
// (see ParseRecipient). It is not secret.
var probeKey = sync.OnceValue(func() *ecdh.PrivateKey {
	seed := sha256.Sum256([]byte("postern.v1 x25519 low-order probe"))
	k, err := ecdh.X25519().NewPrivateKey(seed[:])
	if err != nil {
		panic(err) // unreachable: any 32 bytes are an X25519 private key
	}
	return k
})

// Suite returns the HPKE ciphersuite of every Postern seal: KEM X-Wing
// (MLKEM768-X25519, 0x647A), KDF HKDF-SHA256, AEAD ChaCha20Poly1305. It is
// exported so that keys/identity opens with exactly the suite Seal uses.
func Suite() (hpke.KEM, hpke.KDF, hpke.AEAD) {
	return hpke.MLKEM768X25519(), hpke.HKDFSHA256(), hpke.ChaCha20Poly1305()
}

// Recipient is an X-Wing public key used as an HPKE recipient: a device's
// long-term key or one of its prekeys. A Recipient is immutable and safe for
// concurrent use.
type Recipient struct {
	raw []byte // exactly XWingPublicKeySize
	pk  hpke.PublicKey
}

// ParseRecipient parses an X-Wing public key. It checks the exact length
// before handing the bytes to crypto/hpke, which also rejects ML-KEM keys
// with out-of-range coefficients (FIPS 203 modulus check). It also refuses
// an X25519 half that is a low-order point: crypto/ecdh refuses the
// all-zero shared secret such a point gives, so Seal could never use the key,
// and the failure belongs at parse time, not at the first message.
func ParseRecipient(b []byte) (*Recipient, error) {
	if len(b) != XWingPublicKeySize {
		return nil, malformed("X-Wing public key", "length %d, want %d", len(b), XWingPublicKeySize)
	}
	kem, _, _ := Suite()
	pk, err := kem.NewPublicKey(b)
	if err != nil {
		// %v-free on purpose: the library's message is not part of our API.
		return nil, malformed("X-Wing public key", "rejected by X-Wing")
	}
	x, err := ecdh.X25519().NewPublicKey(b[mlkemPublicKeySize:])
	if err != nil {
		return nil, malformed("X-Wing public key", "X25519 half rejected")
	}
	// Clamped scalars are multiples of the cofactor, so every low-order
	// point (and only those) gives the all-zero output, which ECDH refuses.
	if _, err := probeKey().ECDH(x); err != nil {
		return nil, malformed("X-Wing public key", "X25519 half is a low-order point")
	}
	return &Recipient{raw: append([]byte(nil), b...), pk: pk}, nil
}

// Bytes returns the XWingPublicKeySize-byte encoding. The caller may modify
// the returned slice.
func (r *Recipient) Bytes() []byte { return append([]byte(nil), r.raw...) }

// Fingerprint returns SHA-256("postern.v1 kem-fingerprint" || Bytes()).
func (r *Recipient) Fingerprint() Fingerprint { return fingerprint(labelKEMFinger, r.raw) }

// Equal reports whether r and o are the same key. Nil equals only nil.
func (r *Recipient) Equal(o *Recipient) bool {
	if r == nil || o == nil {
		return r == o
	}
	return subtle.ConstantTimeCompare(r.raw, o.raw) == 1
}

// Seal encrypts plaintext to r with RFC 9180 HPKE in base mode (single
// shot, sequence number 0), binding info (into the key schedule) and aad
// (into the AEAD). It returns enc || ciphertext, exactly SealOverhead +
// len(plaintext) bytes. Each call uses fresh randomness from crypto/rand,
// so sealing the same plaintext twice gives unrelated outputs.
//
// Seal gives confidentiality and integrity, not sender authentication:
// anyone can seal to r. Authenticate the sender inside the plaintext (e.g.
// with a hybrid signature) when it matters.
func (r *Recipient) Seal(info, aad, plaintext []byte) ([]byte, error) {
	_, kdf, aead := Suite()
	enc, s, err := hpke.NewSender(r.pk, kdf, aead, info)
	if err != nil {
		return nil, ErrSeal
	}
	if len(enc) != XWingCiphertextSize {
		return nil, ErrSeal
	}
	out := make([]byte, 0, SealOverhead+len(plaintext))
	out = append(out, enc...)
	ct, err := s.Seal(aad, plaintext)
	if err != nil {
		return nil, ErrSeal
	}
	return append(out, ct...), nil
}
