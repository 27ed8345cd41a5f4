package keys

import (
	"crypto/ed25519"
	"crypto/subtle"
	"sync"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

const (
	ed25519SigSize = ed25519.SignatureSize // 64
	mldsaPubSize   = mldsa65.PublicKeySize // 1952
	mldsaSigSize   = mldsa65.SignatureSize // 3309
)

// Compile-time checks that the exported sizes match the libraries.
var (
	_ [SigningPublicKeySize - ed25519.PublicKeySize - mldsaPubSize]struct{}
	_ [ed25519.PublicKeySize + mldsaPubSize - SigningPublicKeySize]struct{}
	_ [SignatureSize - ed25519SigSize - mldsaSigSize]struct{}
	_ [ed25519SigSize + mldsaSigSize - SignatureSize]struct{}
)

// SigningPublicKey is a hybrid Ed25519 + ML-DSA-65 verification key. A
// signature verifies only if both halves verify over the same message, so a
// forger must break both schemes. It is immutable and safe for concurrent
// use.
type SigningPublicKey struct {
	raw []byte // ed25519 (32) || ML-DSA-65 (1952)
	ed  ed25519.PublicKey
	// ml is the ML-DSA-65 half, expanded at the first verification
	// (mlKey): expanding it derives the public matrix from the key's seed,
	// most of a parse's cost, and most parsed keys (in certificates and
	// device lists read back from a store) are only compared or
	// fingerprinted. Any 1952 bytes are a valid encoding (circl's
	// UnmarshalBinary fails only on the length), so deferring it refuses
	// nothing later that parsing would have refused.
	mlOnce sync.Once
	ml     *mldsa65.PublicKey
	// fp is Fingerprint's value, computed once: the key never changes,
	// and every signed message hashes it (SignedMessage).
	fp Fingerprint
}

// ParseSigningPublicKey parses Ed25519 public key || ML-DSA-65 public key,
// exactly SigningPublicKeySize bytes.
func ParseSigningPublicKey(b []byte) (*SigningPublicKey, error) {
	if len(b) != SigningPublicKeySize {
		return nil, malformed("signing public key", "length %d, want %d", len(b), SigningPublicKeySize)
	}
	raw := append([]byte(nil), b...)
	return &SigningPublicKey{raw: raw, ed: ed25519.PublicKey(raw[:ed25519.PublicKeySize]), fp: fingerprint(labelSigFinger, raw)}, nil
}

// mlKey returns the expanded ML-DSA-65 half, expanding it once.
func (k *SigningPublicKey) mlKey() *mldsa65.PublicKey {
	k.mlOnce.Do(func() {
		ml := new(mldsa65.PublicKey)
		// Cannot fail: the length was checked at parse.
		if err := ml.UnmarshalBinary(k.raw[ed25519.PublicKeySize:]); err == nil {
			k.ml = ml
		}
	})
	return k.ml
}

// Bytes returns the SigningPublicKeySize-byte encoding. The caller may
// modify the returned slice.
func (k *SigningPublicKey) Bytes() []byte { return append([]byte(nil), k.raw...) }

// Fingerprint returns SHA-256("postern.v1 sig-fingerprint" || Bytes()).
func (k *SigningPublicKey) Fingerprint() Fingerprint { return k.fp }

// Equal reports whether k and o are the same key. Nil equals only nil.
func (k *SigningPublicKey) Equal(o *SigningPublicKey) bool {
	if k == nil || o == nil {
		return k == o
	}
	return subtle.ConstantTimeCompare(k.raw, o.raw) == 1
}

// SignedMessage returns M', the bytes both halves of a hybrid signature by
// k sign:
//
//	M' = "postern.v1 hybrid-sig" || 0x00 || Fingerprint(k) || u8(len(context)) || context || msg
//
// The fingerprint binds the signature to the whole hybrid key, so neither
// half can be lifted into a signature under a different hybrid key; the
// length-prefixed context separates the uses of one key (device
// certificates, prekeys, handshakes...). context must be 1 to 255 bytes.
// It is exported so that keys/identity signs exactly what Verify checks.
func SignedMessage(k *SigningPublicKey, context string, msg []byte) ([]byte, error) {
	if len(context) == 0 || len(context) > MaxContextSize {
		return nil, ErrInvalidContext
	}
	fp := k.Fingerprint()
	m := make([]byte, 0, len(labelHybridSig)+1+FingerprintSize+1+len(context)+len(msg))
	m = append(m, labelHybridSig...)
	m = append(m, 0)
	m = append(m, fp[:]...)
	m = append(m, byte(len(context)))
	m = append(m, context...)
	m = append(m, msg...)
	return m, nil
}

// Verify checks a hybrid signature (Ed25519 signature || ML-DSA-65
// signature) by k over msg in the given context. It returns nil only if
// both halves verify over M' (see SignedMessage); otherwise ErrBadSignature,
// or ErrInvalidContext for an empty or overlong context. Any non-nil error
// means: reject.
func (k *SigningPublicKey) Verify(context string, msg, sig []byte) error {
	return k.verify("", context, msg, sig)
}

func (k *SigningPublicKey) verify(object, context string, msg, sig []byte) error {
	m, err := SignedMessage(k, context, msg)
	if err != nil {
		return err
	}
	if len(sig) != SignatureSize {
		return badSignature(object)
	}
	// Both halves are always checked, so the time taken does not reveal
	// which half of a forgery failed (not secret, but no reason to leak it).
	edOK := ed25519.Verify(k.ed, m, sig[:ed25519SigSize])
	ml := k.mlKey()
	mlOK := ml != nil && mldsa65.Verify(ml, m, []byte(MLDSAContext), sig[ed25519SigSize:])
	if !edOK || !mlOK {
		return badSignature(object)
	}
	return nil
}
