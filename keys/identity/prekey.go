package identity

import (
	"fmt"
	"time"

	"github.com/postern/postern/keys"
)

// Prekey is the private half of a signed X-Wing prekey. Delete a one-time
// prekey (and its key file) as soon as it has opened the handshake it was
// used for: that deletion is what gives the first message forward secrecy.
//
// A Prekey is not comparable with ==, and fmt prints it redacted. It is
// safe for concurrent use.
type Prekey struct {
	_      noCompare
	kem    *xwingKey
	device *keys.SigningPublicKey
	signed *keys.SignedPrekey // verified under device; only copies handed out
}

const prekeySecretSize = 2 + seedSize + keys.SigningPublicKeySize + keys.SignedPrekeySize

// NewPrekey generates an X-Wing prekey from crypto/rand and signs it with
// the device's signing key. id is chosen by the caller and must be unique
// among the device's prekeys; oneTime is false only for the last-resort
// prekey.
func NewPrekey(d *Device, id uint32, oneTime bool) (*Prekey, error) {
	kem, err := newXWingKey()
	if err != nil {
		return nil, err
	}
	p := &keys.SignedPrekey{
		ID:      id,
		OneTime: oneTime,
		Key:     kem.pub,
		Created: time.Unix(time.Now().Unix(), 0).UTC(),
	}
	if p.Signature, err = d.Sign(keys.ContextPrekey, p.SignedPart()); err != nil {
		return nil, err
	}
	// Verify what we publish, as NewDevice does.
	p, err = keys.ParseSignedPrekey(d.s.Public(), p.Bytes())
	if err != nil {
		return nil, err
	}
	return &Prekey{kem: kem, device: d.s.Public(), signed: p}, nil
}

// Public returns the signed prekey to publish. It is a copy: changing it
// does not change p.
func (p *Prekey) Public() *keys.SignedPrekey {
	sp := *p.signed
	sp.Signature = append([]byte(nil), p.signed.Signature...)
	return &sp
}

// Device returns the signing key of the device that signed this prekey.
// After ParsePrekeySecret, check it equals the expected device's key.
func (p *Prekey) Device() *keys.SigningPublicKey { return p.device }

// Open reverses keys.Recipient.Seal for this prekey. Every failure returns
// ErrDecrypt.
func (p *Prekey) Open(info, aad, sealed []byte) ([]byte, error) { return p.kem.open(info, aad, sealed) }

// String returns a redacted description.
func (p Prekey) String() string {
	if p.kem == nil {
		return "identity.Prekey{<nil>}"
	}
	return "identity.Prekey{key: " + p.kem.pub.Fingerprint().Short() + ", secret: REDACTED}"
}

// GoString is String: %#v must not dump the fields.
func (p Prekey) GoString() string { return p.String() }

// Format prints String for every verb.
func (p Prekey) Format(f fmt.State, _ rune) { fmt.Fprint(f, p.String()) }

// MarshalSecret returns the prekey's SECRET encoding: its X-Wing seed, the
// signing key of its device, and the signed prekey. Store it only inside
// SealKeyFile output.
func (p *Prekey) MarshalSecret() []byte {
	b := make([]byte, 0, prekeySecretSize)
	b = append(b, tagPrekeySecret, formatVersion)
	b = append(b, p.kem.seed[:]...)
	b = append(b, p.device.Bytes()...)
	return append(b, p.signed.Bytes()...)
}

// ParsePrekeySecret parses the output of MarshalSecret. It verifies the
// prekey signature under the stored device key and checks that the seed
// derives the signed key. The stored device key is only as trustworthy as
// the storage: compare Device() with the device you expect.
func ParsePrekeySecret(b []byte) (*Prekey, error) {
	if err := checkSecret("prekey secret", b, tagPrekeySecret, prekeySecretSize); err != nil {
		return nil, err
	}
	off := 2
	kem, err := xwingFromSeed(b[off : off+seedSize])
	if err != nil {
		return nil, err
	}
	off += seedSize
	dev, err := keys.ParseSigningPublicKey(b[off : off+keys.SigningPublicKeySize])
	if err != nil {
		return nil, err
	}
	off += keys.SigningPublicKeySize
	sp, err := keys.ParseSignedPrekey(dev, b[off:])
	if err != nil {
		return nil, err
	}
	if !sp.Key.Equal(kem.pub) {
		return nil, detail(ErrMalformedSecret, "identity: prekey secret: seed does not match the signed prekey")
	}
	return &Prekey{kem: kem, device: dev, signed: sp}, nil
}
