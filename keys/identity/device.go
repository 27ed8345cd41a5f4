package identity

import (
	"fmt"
	"time"

	"github.com/postern/postern/keys"
)

// Device holds one device's private keys: its hybrid signing key, its
// long-term X-Wing key, and the certificate by which the person's identity
// vouches for both.
//
// A Device is not comparable with ==, and fmt prints it redacted. It is
// safe for concurrent use.
type Device struct {
	_    noCompare
	s    *signer
	kem  *xwingKey
	cert *keys.DeviceCertificate // verified; never handed out, only copies
}

const deviceSecretSize = 2 + 3*seedSize + keys.DeviceCertificateSize

// NewDevice generates a device's keys from crypto/rand and has id sign its
// certificate, dated now.
func NewDevice(id *Identity) (*Device, error) {
	s, err := newSigner()
	if err != nil {
		return nil, err
	}
	kem, err := newXWingKey()
	if err != nil {
		return nil, err
	}
	c := &keys.DeviceCertificate{
		Identity: id.Public(),
		Signing:  s.Public(),
		KEM:      kem.pub,
		Created:  time.Unix(time.Now().Unix(), 0).UTC(),
	}
	if c.Signature, err = id.Sign(keys.ContextDeviceCertificate, c.SignedPart()); err != nil {
		return nil, err
	}
	// Parse back what we produced: it verifies the fresh signature, which
	// catches a faulty signing (a fault attack or a bug) before the
	// certificate is published.
	c, err = keys.ParseDeviceCertificate(c.Bytes())
	if err != nil {
		return nil, err
	}
	return &Device{s: s, kem: kem, cert: c}, nil
}

// Certificate returns the device's certificate. It is a copy: changing it
// does not change the device. (The key fields point to immutable keys.)
func (d *Device) Certificate() *keys.DeviceCertificate {
	c := *d.cert
	c.Signature = append([]byte(nil), d.cert.Signature...)
	return &c
}

// Sign returns a hybrid signature by the device's signing key, verifiable
// with d.Certificate().Signing.Verify(context, msg, sig).
func (d *Device) Sign(context string, msg []byte) ([]byte, error) { return sign(d.s, context, msg) }

// Open reverses keys.Recipient.Seal for the device's long-term X-Wing key
// (the certificate's KEM key), with the same info and aad. Every failure
// returns ErrDecrypt.
func (d *Device) Open(info, aad, sealed []byte) ([]byte, error) { return d.kem.open(info, aad, sealed) }

// String returns a redacted description naming the device ID only.
func (d Device) String() string {
	if d.s == nil {
		return "identity.Device{<nil>}"
	}
	return "identity.Device{id: " + d.s.Public().Fingerprint().Short() + ", secret: REDACTED}"
}

// GoString is String: %#v must not dump the fields.
func (d Device) GoString() string { return d.String() }

// Format prints String for every verb.
func (d Device) Format(f fmt.State, _ rune) { fmt.Fprint(f, d.String()) }

// MarshalSecret returns the device's SECRET encoding: its three seeds and
// its certificate. Anyone holding these bytes is this device. Store them
// only inside SealKeyFile output.
func (d *Device) MarshalSecret() []byte {
	b := make([]byte, 0, deviceSecretSize)
	b = append(b, tagDeviceSecret, formatVersion)
	b = d.s.AppendSeeds(b)
	b = append(b, d.kem.seed[:]...)
	return append(b, d.cert.Bytes()...)
}

// ParseDeviceSecret parses the output of MarshalSecret. It verifies the
// certificate and checks that the seeds derive the certified keys.
func ParseDeviceSecret(b []byte) (*Device, error) {
	if err := checkSecret("device secret", b, tagDeviceSecret, deviceSecretSize); err != nil {
		return nil, err
	}
	off := 2
	s, err := signerFromSeeds(b[off:off+seedSize], b[off+seedSize:off+2*seedSize])
	if err != nil {
		return nil, err
	}
	off += 2 * seedSize
	kem, err := xwingFromSeed(b[off : off+seedSize])
	if err != nil {
		return nil, err
	}
	off += seedSize
	c, err := keys.ParseDeviceCertificate(b[off:])
	if err != nil {
		return nil, err
	}
	if !c.Signing.Equal(s.Public()) || !c.KEM.Equal(kem.pub) {
		return nil, detail(ErrMalformedSecret, "identity: device secret: seeds do not match the certificate")
	}
	return &Device{s: s, kem: kem, cert: c}, nil
}
