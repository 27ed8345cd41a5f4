// Package hybrid is the one implementation of a hybrid signing key
// (Ed25519 + ML-DSA-65, SPEC section 8) expanded from its two seeds. Device
// identities (keys/identity) and the relay's audit key (relay/audit) both
// sign with it; each keeps its own file format and errors.
package hybrid

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"github.com/postern/postern/keys"
)

// SeedSize is the size of each seed.
const SeedSize = 32

var (
	// ErrSeed is a seed of the wrong size.
	ErrSeed = errors.New("hybrid: seed of the wrong size")
	// ErrSign is a failure of ML-DSA signing (its randomness).
	ErrSign = errors.New("hybrid: signing failed")
)

// noCompare makes Signer not comparable with ==, so that secret values
// cannot be compared in variable time by accident.
type noCompare [0]func()

// Signer holds the two seeds of a hybrid signing key and the keys expanded
// from them. Only the seeds are ever serialized: the expanded keys are
// derived, so an encoding cannot hold a mismatched pair.
type Signer struct {
	_      noCompare
	edSeed [SeedSize]byte
	mlSeed [SeedSize]byte
	ed     ed25519.PrivateKey
	ml     *mldsa65.PrivateKey
	pub    *keys.SigningPublicKey
}

// Generate makes a signer from fresh seeds from crypto/rand.
func Generate() (*Signer, error) {
	var seeds [2 * SeedSize]byte
	if _, err := rand.Read(seeds[:]); err != nil {
		return nil, err
	}
	defer clear(seeds[:])
	return FromSeeds(seeds[:SeedSize], seeds[SeedSize:])
}

// FromSeeds expands the Ed25519 and ML-DSA-65 seeds.
func FromSeeds(edSeed, mlSeed []byte) (*Signer, error) {
	if len(edSeed) != SeedSize || len(mlSeed) != SeedSize {
		return nil, ErrSeed
	}
	s := &Signer{}
	copy(s.edSeed[:], edSeed)
	copy(s.mlSeed[:], mlSeed)
	s.ed = ed25519.NewKeyFromSeed(s.edSeed[:])
	mlPub, mlPriv := mldsa65.NewKeyFromSeed(&s.mlSeed)
	s.ml = mlPriv
	raw := make([]byte, 0, keys.SigningPublicKeySize)
	raw = append(raw, s.ed.Public().(ed25519.PublicKey)...)
	raw = append(raw, mlPub.Bytes()...)
	pub, err := keys.ParseSigningPublicKey(raw)
	if err != nil {
		// Unreachable: the libraries produce keys of the right size.
		return nil, fmt.Errorf("hybrid: derived public key rejected: %w", err)
	}
	s.pub = pub
	return s, nil
}

// Public returns the public half.
func (s *Signer) Public() *keys.SigningPublicKey { return s.pub }

// AppendSeeds appends the Ed25519 seed and then the ML-DSA-65 seed, for
// the caller's secret encoding.
func (s *Signer) AppendSeeds(b []byte) []byte {
	return append(append(b, s.edSeed[:]...), s.mlSeed[:]...)
}

// Sign returns Ed25519(M') || ML-DSA-65(M', context "postern.v1", hedged)
// with M' = keys.SignedMessage(Public(), context, msg). ML-DSA is used in
// its randomized ("hedged") mode, as FIPS 204 recommends, so that fault
// and side-channel attacks on the deterministic mode do not apply; Ed25519
// is deterministic by design.
func (s *Signer) Sign(context string, msg []byte) ([]byte, error) {
	m, err := keys.SignedMessage(s.pub, context, msg)
	if err != nil {
		return nil, err
	}
	sig := make([]byte, keys.SignatureSize)
	copy(sig, ed25519.Sign(s.ed, m))
	if err := mldsa65.SignTo(s.ml, m, []byte(keys.MLDSAContext), true, sig[ed25519.SignatureSize:]); err != nil {
		return nil, ErrSign
	}
	return sig, nil
}

// Format makes every fmt verb print the redacted form, so that a stray %v,
// %x or %#v in a caller's log line cannot leak a seed.
func (s *Signer) Format(f fmt.State, _ rune) { fmt.Fprint(f, "hybrid.Signer{REDACTED}") }
