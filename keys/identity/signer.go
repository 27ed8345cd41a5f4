package identity

import (
	"errors"

	"github.com/postern/postern/keys/hybrid"
)

// seedSize is the size of each secret seed: Ed25519, ML-DSA-65, X-Wing.
const seedSize = hybrid.SeedSize

// noCompare makes a struct not comparable with ==, so that secret values
// cannot be compared in variable time by accident.
type noCompare [0]func()

// signer is an identity's or a device's hybrid signing key (keys/hybrid);
// only its seeds are serialized.
type signer = hybrid.Signer

func newSigner() (*signer, error) {
	s, err := hybrid.Generate()
	if err != nil {
		return nil, ErrRandom
	}
	return s, nil
}

func signerFromSeeds(edSeed, mlSeed []byte) (*signer, error) {
	s, err := hybrid.FromSeeds(edSeed, mlSeed)
	if err != nil {
		return nil, detail(ErrMalformedSecret, "identity: derived signing key rejected")
	}
	return s, nil
}

// sign signs with s, reporting a failure of the signature's randomness as
// ErrRandom.
func sign(s *signer, context string, msg []byte) ([]byte, error) {
	sig, err := s.Sign(context, msg)
	if errors.Is(err, hybrid.ErrSign) {
		return nil, ErrRandom
	}
	return sig, err
}
