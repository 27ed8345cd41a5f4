package keys

import (
	"encoding/binary"
	"time"
)

// Signature contexts (see SignedMessage). Listed in SPEC.md.
const (
	ContextDeviceCertificate = "device-cert"
	ContextPrekey            = "prekey"
)

// Encoded sizes.
const (
	// DeviceCertificateSize is the length of an encoded DeviceCertificate.
	DeviceCertificateSize = 2 + SigningPublicKeySize + SigningPublicKeySize + XWingPublicKeySize + 8 + SignatureSize
	// SignedPrekeySize is the length of an encoded SignedPrekey.
	SignedPrekeySize = 2 + 4 + 1 + XWingPublicKeySize + 8 + SignatureSize

	deviceCertSignedSize   = DeviceCertificateSize - SignatureSize
	signedPrekeySignedSize = SignedPrekeySize - SignatureSize
)

// DeviceCertificate is a person's identity key vouching for one device: its
// hybrid signing key and its long-term X-Wing key. The device is named by
// DeviceID, the fingerprint of its signing key.
//
// A DeviceCertificate returned by ParseDeviceCertificate has a valid
// signature. One built by hand is only as good as its Signature field: use
// Verify before trusting it. The fields must not be nil when calling Bytes
// or SignedPart.
type DeviceCertificate struct {
	Identity  *SigningPublicKey // the person's identity key (the signer)
	Signing   *SigningPublicKey // the device's own hybrid signing key
	KEM       *Recipient        // the device's long-term X-Wing key
	Created   time.Time         // encoded as unix seconds
	Signature []byte            // Identity's hybrid signature, context "device-cert"
}

// ParseDeviceCertificate parses an encoded certificate (exactly
// DeviceCertificateSize bytes) and verifies its signature by the embedded
// identity key. The caller must still decide whether that identity key is
// the one it expects (compare Identity.Fingerprint with a pinned value).
func ParseDeviceCertificate(b []byte) (*DeviceCertificate, error) {
	const obj = "device certificate"
	if len(b) != DeviceCertificateSize {
		return nil, malformed(obj, "length %d, want %d", len(b), DeviceCertificateSize)
	}
	if err := checkHeader(obj, b, tagDeviceCertificate); err != nil {
		return nil, err
	}
	off := 2
	next := func(n int) []byte { f := b[off : off+n]; off += n; return f }
	idKey, err := ParseSigningPublicKey(next(SigningPublicKeySize))
	if err != nil {
		return nil, malformed(obj, "identity key rejected")
	}
	devKey, err := ParseSigningPublicKey(next(SigningPublicKeySize))
	if err != nil {
		return nil, malformed(obj, "device signing key rejected")
	}
	kem, err := ParseRecipient(next(XWingPublicKeySize))
	if err != nil {
		return nil, malformed(obj, "device X-Wing key rejected")
	}
	created, ok := getTime(next(8))
	if !ok {
		return nil, malformed(obj, "creation time out of range")
	}
	c := &DeviceCertificate{
		Identity:  idKey,
		Signing:   devKey,
		KEM:       kem,
		Created:   created,
		Signature: append([]byte(nil), next(SignatureSize)...),
	}
	if err := idKey.verify(obj, ContextDeviceCertificate, b[:deviceCertSignedSize], c.Signature); err != nil {
		return nil, err
	}
	return c, nil
}

// SignedPart returns the bytes the identity signs: the encoding up to, not
// including, the signature.
func (c *DeviceCertificate) SignedPart() []byte {
	b := make([]byte, 0, DeviceCertificateSize)
	b = append(b, tagDeviceCertificate, formatVersion)
	b = append(b, c.Identity.raw...)
	b = append(b, c.Signing.raw...)
	b = append(b, c.KEM.raw...)
	return binary.BigEndian.AppendUint64(b, timeUnix(c.Created))
}

// Bytes returns the canonical encoding: SignedPart() || Signature. A
// Signature of the wrong length is encoded as zeros so that the result
// always has DeviceCertificateSize bytes (and fails to parse).
func (c *DeviceCertificate) Bytes() []byte {
	return appendSignature(c.SignedPart(), c.Signature)
}

// DeviceID names the device: the fingerprint of its signing key.
func (c *DeviceCertificate) DeviceID() Fingerprint { return c.Signing.Fingerprint() }

// Verify checks the certificate's signature by c.Identity. It is for
// certificates built in memory; ParseDeviceCertificate already verifies.
func (c *DeviceCertificate) Verify() error {
	return c.Identity.verify("device certificate", ContextDeviceCertificate, c.SignedPart(), c.Signature)
}

// SignedPrekey is an X-Wing prekey signed by a device's signing key, for
// PQXDH-shaped session setup: OneTime prekeys are handed out once by the
// relay; the one with OneTime false is the last-resort prekey used when
// none is left.
type SignedPrekey struct {
	ID        uint32     // chosen by the device, unique among its prekeys
	OneTime   bool       // true for one-time prekeys, false for the last-resort prekey
	Key       *Recipient // the prekey
	Created   time.Time  // encoded as unix seconds
	Signature []byte     // the device's hybrid signature, context "prekey"
}

// ParseSignedPrekey parses an encoded prekey (exactly SignedPrekeySize
// bytes) and verifies its signature by device. Because M' includes the
// fingerprint of the signing key, a prekey verifies only under the device
// that signed it.
func ParseSignedPrekey(device *SigningPublicKey, b []byte) (*SignedPrekey, error) {
	const obj = "signed prekey"
	if device == nil {
		return nil, malformed(obj, "nil device key")
	}
	if len(b) != SignedPrekeySize {
		return nil, malformed(obj, "length %d, want %d", len(b), SignedPrekeySize)
	}
	if err := checkHeader(obj, b, tagSignedPrekey); err != nil {
		return nil, err
	}
	p := &SignedPrekey{ID: binary.BigEndian.Uint32(b[2:6])}
	switch b[6] {
	case 0:
	case 1:
		p.OneTime = true
	default:
		return nil, malformed(obj, "flags 0x%02x, want 0x00 or 0x01", b[6])
	}
	off := 7
	key, err := ParseRecipient(b[off : off+XWingPublicKeySize])
	if err != nil {
		return nil, malformed(obj, "X-Wing key rejected")
	}
	p.Key = key
	off += XWingPublicKeySize
	created, ok := getTime(b[off : off+8])
	if !ok {
		return nil, malformed(obj, "creation time out of range")
	}
	p.Created = created
	off += 8
	p.Signature = append([]byte(nil), b[off:]...)
	if err := device.verify(obj, ContextPrekey, b[:signedPrekeySignedSize], p.Signature); err != nil {
		return nil, err
	}
	return p, nil
}

// SignedPart returns the bytes the device signs: the encoding up to, not
// including, the signature.
func (p *SignedPrekey) SignedPart() []byte {
	b := make([]byte, 0, SignedPrekeySize)
	b = append(b, tagSignedPrekey, formatVersion)
	b = binary.BigEndian.AppendUint32(b, p.ID)
	flags := byte(0)
	if p.OneTime {
		flags = 1
	}
	b = append(b, flags)
	b = append(b, p.Key.raw...)
	return binary.BigEndian.AppendUint64(b, timeUnix(p.Created))
}

// Bytes returns the canonical encoding: SignedPart() || Signature.
func (p *SignedPrekey) Bytes() []byte { return appendSignature(p.SignedPart(), p.Signature) }

// Verify checks the prekey's signature by device. It is for prekeys built in
// memory; ParseSignedPrekey already verifies.
func (p *SignedPrekey) Verify(device *SigningPublicKey) error {
	return device.verify("signed prekey", ContextPrekey, p.SignedPart(), p.Signature)
}

func checkHeader(obj string, b []byte, tag byte) error {
	if b[0] != tag {
		return malformed(obj, "type tag 0x%02x, want 0x%02x", b[0], tag)
	}
	if b[1] != formatVersion {
		return malformed(obj, "version %d, want %d", b[1], formatVersion)
	}
	return nil
}

func appendSignature(b, sig []byte) []byte {
	if len(sig) != SignatureSize {
		return append(b, make([]byte, SignatureSize)...)
	}
	return append(b, sig...)
}

// timeUnix is the encoded form of a creation time: unix seconds, clamped
// to [0, maxUnixTime] (pre-1970 and post-9999 keys do not exist), so that
// Bytes never produces what the parser refuses.
func timeUnix(t time.Time) uint64 {
	s := t.Unix()
	switch {
	case s < 0:
		return 0
	case s > maxUnixTime:
		return maxUnixTime
	}
	return uint64(s)
}
