package identity

import (
	"fmt"
	"time"

	"github.com/postern/postern/keys"
)

// DeviceKeys are a new device's keys before its person certifies them:
// what a device being linked makes first (protocol/SPEC.md section 13).
// It signs as the device (so it can enrol and authenticate on a relay,
// which never sees certificates) but has no certificate until Certified.
// fmt prints it redacted.
type DeviceKeys struct {
	_   noCompare
	s   *signer
	kem *xwingKey
}

// NewDeviceKeys generates a device's signing and X-Wing keys from
// crypto/rand.
func NewDeviceKeys() (*DeviceKeys, error) {
	s, err := newSigner()
	if err != nil {
		return nil, err
	}
	kem, err := newXWingKey()
	if err != nil {
		return nil, err
	}
	return &DeviceKeys{s: s, kem: kem}, nil
}

// Signing returns the device's public signing key.
func (k *DeviceKeys) Signing() *keys.SigningPublicKey { return k.s.Public() }

// KEM returns the device's public X-Wing key.
func (k *DeviceKeys) KEM() *keys.Recipient { return k.kem.pub }

// DeviceID is the device ID the keys will have (keys.DeviceCertificate).
func (k *DeviceKeys) DeviceID() keys.Fingerprint { return k.s.Public().Fingerprint() }

// Sign signs msg under context with the device's signing key.
func (k *DeviceKeys) Sign(context string, msg []byte) ([]byte, error) {
	return sign(k.s, context, msg)
}

// String redacts.
func (k DeviceKeys) String() string { return "identity.DeviceKeys(REDACTED)" }

// GoString redacts.
func (k DeviceKeys) GoString() string { return k.String() }

// Format redacts for every verb.
func (k DeviceKeys) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// Certified returns the Device these keys become under cert, which must
// verify and certify exactly these keys (ErrMalformedSecret otherwise).
func (k *DeviceKeys) Certified(cert *keys.DeviceCertificate) (*Device, error) {
	c, err := keys.ParseDeviceCertificate(cert.Bytes())
	if err != nil {
		return nil, err
	}
	if !c.Signing.Equal(k.s.Public()) || !c.KEM.Equal(k.kem.pub) {
		return nil, detail(ErrMalformedSecret, "identity: the certificate is for other keys")
	}
	return &Device{s: k.s, kem: k.kem, cert: c}, nil
}

// Certify has the identity sign a certificate, dated now, for a device's
// public keys (a device being linked: its keys came in a link request).
func (i *Identity) Certify(signing *keys.SigningPublicKey, kem *keys.Recipient, now time.Time) (*keys.DeviceCertificate, error) {
	c := &keys.DeviceCertificate{
		Identity: i.Public(),
		Signing:  signing,
		KEM:      kem,
		Created:  time.Unix(now.Unix(), 0).UTC(),
	}
	sig, err := i.Sign(keys.ContextDeviceCertificate, c.SignedPart())
	if err != nil {
		return nil, err
	}
	c.Signature = sig
	// Parse back: it verifies the fresh signature before anyone relies
	// on it.
	return keys.ParseDeviceCertificate(c.Bytes())
}
