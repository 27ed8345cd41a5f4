package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/postern/postern/keys"
)

// seedSize is the size of each secret seed: Ed25519, ML-DSA-65, X-Wing.
const seedSize = 32

// noCompare makes a struct not comparable with ==, so that secret values
// cannot be compared in variable time by accident.
type noCompare [0]func()

// signer holds the two seeds of a hybrid signing key and the keys expanded
// from them. Only the seeds are ever serialized: the expanded keys are
// derived, so a secret encoding cannot hold a mismatched pair.
type signer struct {
	_      noCompare
	edSeed [seedSize]byte
	mlSeed [seedSize]byte
	ed     ed25519.PrivateKey
	ml     *mldsa65.PrivateKey
	pub    *keys.SigningPublicKey
}

func newSigner() (*signer, error) {
	var ed, ml [seedSize]byte
	if _, err := rand.Read(ed[:]); err != nil {
		return nil, ErrRandom
	}
	if _, err := rand.Read(ml[:]); err != nil {
		return nil, ErrRandom
	}
	return signerFromSeeds(ed[:], ml[:])
}

func signerFromSeeds(edSeed, mlSeed []byte) (*signer, error) {
	s := &signer{}
	copy(s.edSeed[:], edSeed)
	copy(s.mlSeed[:], mlSeed)
	s.ed = ed25519.NewKeyFromSeed(s.edSeed[:])
	mlPub, mlPriv := mldsa65.NewKeyFromSeed(&s.mlSeed)
	s.ml = mlPriv
	pubBytes := make([]byte, 0, keys.SigningPublicKeySize)
	pubBytes = append(pubBytes, s.ed.Public().(ed25519.PublicKey)...)
	pubBytes = append(pubBytes, mlPub.Bytes()...)
	pub, err := keys.ParseSigningPublicKey(pubBytes)
	if err != nil {
		// Unreachable: the libraries produce keys of the right size.
		return nil, detail(ErrMalformedSecret, "identity: derived signing key rejected")
	}
	s.pub = pub
	return s, nil
}

// sign produces Ed25519(M') || ML-DSA-65(M', ctx "postern.v1", hedged).
// ML-DSA is used in its randomized ("hedged") mode, as FIPS 204
// recommends, so that fault and side-channel attacks on the deterministic
// mode do not apply; Ed25519 is deterministic by design.
func (s *signer) sign(context string, msg []byte) ([]byte, error) {
	m, err := keys.SignedMessage(s.pub, context, msg)
	if err != nil {
		return nil, err
	}
	sig := make([]byte, keys.SignatureSize)
	copy(sig, ed25519.Sign(s.ed, m))
	if err := mldsa65.SignTo(s.ml, m, []byte(keys.MLDSAContext), true, sig[ed25519.SignatureSize:]); err != nil {
		return nil, ErrRandom
	}
	return sig, nil
}

// Format makes every fmt verb print the redacted form, so that a stray
// %v, %x or %#v in a caller's log line cannot leak a seed.
func (s *signer) Format(f fmt.State, _ rune) { fmt.Fprint(f, "identity.signer{REDACTED}") }
