package identity

import (
	"fmt"

	"github.com/postern/postern/keys"
)

// Identity is a person's long-term hybrid signing key (Ed25519 +
// ML-DSA-65). It certifies the person's devices and should live on as few
// machines as possible, in a passphrase-protected key file.
//
// An Identity is not comparable with ==, and fmt prints it redacted. It is
// safe for concurrent use.
type Identity struct {
	_ noCompare
	s *signer
}

const identitySecretSize = 2 + 2*seedSize

// GenerateIdentity creates a new identity from crypto/rand.
func GenerateIdentity() (*Identity, error) {
	s, err := newSigner()
	if err != nil {
		return nil, err
	}
	return &Identity{s: s}, nil
}

// Public returns the identity's verification key.
func (i *Identity) Public() *keys.SigningPublicKey { return i.s.Public() }

// Sign returns a hybrid signature (keys.SignatureSize bytes) over msg in
// the given context (1 to 255 bytes), verifiable with
// i.Public().Verify(context, msg, sig).
func (i *Identity) Sign(context string, msg []byte) ([]byte, error) { return sign(i.s, context, msg) }

// String returns a redacted description naming the public key only.
func (i Identity) String() string {
	if i.s == nil {
		return "identity.Identity{<nil>}"
	}
	return "identity.Identity{public: " + i.s.Public().Fingerprint().Short() + ", secret: REDACTED}"
}

// GoString is String: %#v must not dump the fields.
func (i Identity) GoString() string { return i.String() }

// Format prints String for every verb (%x and %d included).
func (i Identity) Format(f fmt.State, _ rune) { fmt.Fprint(f, i.String()) }

// MarshalSecret returns the identity's SECRET encoding (the two seeds).
// Anyone holding these bytes is this person. Store them only inside
// SealKeyFile output.
func (i *Identity) MarshalSecret() []byte {
	b := make([]byte, 0, identitySecretSize)
	b = append(b, tagIdentitySecret, formatVersion)
	return i.s.AppendSeeds(b)
}

// ParseIdentitySecret parses the output of MarshalSecret.
func ParseIdentitySecret(b []byte) (*Identity, error) {
	if err := checkSecret("identity secret", b, tagIdentitySecret, identitySecretSize); err != nil {
		return nil, err
	}
	s, err := signerFromSeeds(b[2:2+seedSize], b[2+seedSize:])
	if err != nil {
		return nil, err
	}
	return &Identity{s: s}, nil
}

func checkSecret(obj string, b []byte, tag byte, size int) error {
	if len(b) != size {
		return detail(ErrMalformedSecret, fmt.Sprintf("identity: %s: length %d, want %d", obj, len(b), size))
	}
	if b[0] != tag {
		return detail(ErrMalformedSecret, fmt.Sprintf("identity: %s: type tag 0x%02x, want 0x%02x", obj, b[0], tag))
	}
	if b[1] != formatVersion {
		return detail(ErrMalformedSecret, fmt.Sprintf("identity: %s: version %d, want %d", obj, b[1], formatVersion))
	}
	return nil
}

// Type tags of the secret encodings and the key file (SPEC.md). They do not
// overlap with the tags of package keys (0x10-0x1f).
const (
	tagIdentitySecret = 0x20
	tagDeviceSecret   = 0x21
	tagPrekeySecret   = 0x22
	tagKeyFile        = 0x30

	formatVersion = 1
)
