package keys

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net/url"
	"strings"
	"time"
)

// ContextDeviceList is the signature context of a device list. Listed in
// SPEC.md.
const ContextDeviceList = "device-list"

// labelDeviceList prefixes the bytes DeviceListHash hashes.
const labelDeviceList = "postern.v1 device-list"

// Device list limits and sizes (SPEC.md section 8, "Device lists").
const (
	// MaxDevices is the most devices one person may have in a list.
	MaxDevices = 8
	// MaxRelayURLSize is the longest relay URL in a list entry.
	MaxRelayURLSize = 256
	// DeviceListHashSize is the length of DeviceListHash.
	DeviceListHashSize = sha256.Size

	deviceListHeaderSize = 2 + SigningPublicKeySize + 8 + 8 + 1
	deviceEntryFixedSize = FingerprintSize + 8 + 2
	// MinDeviceListSize and MaxDeviceListSize bound an encoded list: one
	// device with a 1-byte relay URL, and MaxDevices devices with
	// MaxRelayURLSize-byte URLs.
	MinDeviceListSize = deviceListHeaderSize + deviceEntryFixedSize + 1 + 2 + SignatureSize
	MaxDeviceListSize = deviceListHeaderSize + MaxDevices*(deviceEntryFixedSize+MaxRelayURLSize) + 2 + SignatureSize
)

// Device list rules. Each also matches ErrMalformed.
var (
	// ErrDeviceCount: a list with no device or more than MaxDevices.
	ErrDeviceCount = listRule("keys: device list: number of devices out of range (1 to 8)")
	// ErrDeviceOrder: devices not sorted by device ID, or one listed twice.
	ErrDeviceOrder = listRule("keys: device list: devices not in ascending order of device ID")
	// ErrRelayURL: a relay URL that is not "ws://host..." or "wss://host..."
	// in 1 to MaxRelayURLSize printable ASCII bytes.
	ErrRelayURL = listRule("keys: device list: bad relay URL")
	// ErrListVersion: a list version of 0 (versions start at 1).
	ErrListVersion = listRule("keys: device list: version 0")
	// ErrListTime: a creation or link time after 9999-12-31, or a device
	// linked after the list was created.
	ErrListTime = listRule("keys: device list: time out of range")
)

// ruleError is a device list rule: a sentinel of its own that also
// matches ErrMalformed.
type ruleError struct{ msg string }

func listRule(msg string) error    { return &ruleError{msg} }
func (e *ruleError) Error() string { return e.msg }
func (e *ruleError) Unwrap() error { return ErrMalformed }
func ruleDetail(rule error, format string, args ...any) error {
	return &detailError{msg: rule.Error() + ": " + sprintf(format, args...), sentinel: rule}
}

// ListedDevice is one entry of a device list. Device names are not in the
// public list: they travel encrypted between a person's own devices.
type ListedDevice struct {
	ID     Fingerprint // the device ID: the fingerprint of its signing key
	Linked time.Time   // when it was linked, unix seconds
	Relay  string      // the URL of the relay it receives on
}

// DeviceList is a person's signed list of devices (SPEC.md section 8,
// "Device lists"). A device belongs to the person only if its
// certificate's identity key equals Identity and its ID is in the newest
// verified list. A list returned by ParseDeviceList is verified; one built
// by hand is signed by identity.Identity.SignDeviceList.
type DeviceList struct {
	Identity  *SigningPublicKey // the person's identity key (the signer)
	Version   uint64            // >= 1, strictly increasing per identity
	Created   time.Time         // unix seconds
	Devices   []ListedDevice    // 1..MaxDevices, ascending by ID
	Signature []byte            // Identity's hybrid signature, context "device-list"
}

// ParseDeviceList parses an encoded list, checks every rule and verifies
// its signature by the embedded identity key. The caller must still decide
// whether that identity is the one it expects, and whether Version is newer
// than the newest list it has seen (rollback).
func ParseDeviceList(b []byte) (*DeviceList, error) {
	const obj = "device list"
	// The lower bound lets a list without devices reach the count rule.
	if len(b) < deviceListHeaderSize+2+SignatureSize || len(b) > MaxDeviceListSize {
		return nil, malformed(obj, "length %d, want %d to %d", len(b), MinDeviceListSize, MaxDeviceListSize)
	}
	if err := checkHeader(obj, b, tagDeviceList); err != nil {
		return nil, err
	}
	off := 2
	next := func(n int) []byte {
		if off+n > len(b) {
			off = len(b) + 1
			return nil
		}
		f := b[off : off+n]
		off += n
		return f
	}
	idKey, err := ParseSigningPublicKey(next(SigningPublicKeySize))
	if err != nil {
		return nil, malformed(obj, "identity key rejected")
	}
	l := &DeviceList{Identity: idKey, Version: binary.BigEndian.Uint64(next(8))}
	created, ok := getTime(next(8))
	if !ok {
		return nil, ruleDetail(ErrListTime, "created after 9999-12-31")
	}
	l.Created = created
	n := int(next(1)[0])
	if n == 0 || n > MaxDevices {
		return nil, ruleDetail(ErrDeviceCount, "%d devices", n)
	}
	l.Devices = make([]ListedDevice, n)
	for i := range l.Devices {
		f := next(deviceEntryFixedSize)
		if f == nil {
			return nil, malformed(obj, "device %d truncated", i)
		}
		d := &l.Devices[i]
		copy(d.ID[:], f)
		if d.Linked, ok = getTime(f[FingerprintSize:]); !ok {
			return nil, ruleDetail(ErrListTime, "device %d linked after 9999-12-31", i)
		}
		u := next(int(binary.BigEndian.Uint16(f[FingerprintSize+8:])))
		if u == nil {
			return nil, malformed(obj, "device %d relay URL truncated", i)
		}
		d.Relay = string(u)
	}
	signedEnd := off
	sl := next(2)
	if sl == nil {
		return nil, malformed(obj, "signature length missing")
	}
	if k := int(binary.BigEndian.Uint16(sl)); k != SignatureSize {
		return nil, malformed(obj, "signature length %d, want %d", k, SignatureSize)
	}
	if len(b)-off != SignatureSize {
		return nil, malformed(obj, "%d bytes after the signature length, want %d", len(b)-off, SignatureSize)
	}
	if err := l.check(); err != nil {
		return nil, err
	}
	l.Signature = append([]byte(nil), b[off:]...)
	if err := idKey.verify(obj, ContextDeviceList, b[:signedEnd], l.Signature); err != nil {
		return nil, err
	}
	return l, nil
}

// check applies the rules that do not depend on the encoding's bytes.
func (l *DeviceList) check() error {
	if l.Identity == nil {
		return malformed("device list", "no identity key")
	}
	if l.Version == 0 {
		return ErrListVersion
	}
	if l.Created.Unix() < 0 || l.Created.Unix() > maxUnixTime {
		return ruleDetail(ErrListTime, "created out of range")
	}
	if len(l.Devices) == 0 || len(l.Devices) > MaxDevices {
		return ruleDetail(ErrDeviceCount, "%d devices", len(l.Devices))
	}
	for i, d := range l.Devices {
		if i > 0 && string(l.Devices[i-1].ID[:]) >= string(d.ID[:]) {
			return ruleDetail(ErrDeviceOrder, "device %d", i)
		}
		if d.Linked.Unix() < 0 || d.Linked.Unix() > l.Created.Unix() {
			return ruleDetail(ErrListTime, "device %d linked before 1970 or after the list was created", i)
		}
		if err := CheckRelayURL(d.Relay); err != nil {
			return ruleDetail(ErrRelayURL, "device %d: %v", i, err)
		}
	}
	return nil
}

// CheckRelayURL reports whether u may name a relay in a device list:
// 1 to MaxRelayURLSize bytes of printable ASCII without spaces,
// "ws://" or "wss://" (lowercase), a host, an optional port and path, and
// no user information, query or fragment.
func CheckRelayURL(u string) error {
	if len(u) == 0 || len(u) > MaxRelayURLSize {
		return errors.New("length out of range")
	}
	for i := 0; i < len(u); i++ {
		if u[i] <= 0x20 || u[i] >= 0x7f {
			return errors.New("not printable ASCII")
		}
	}
	if !strings.HasPrefix(u, "ws://") && !strings.HasPrefix(u, "wss://") {
		return errors.New(`not "ws://" or "wss://"`)
	}
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || p.Hostname() == "" || p.User != nil || p.Opaque != "" ||
		p.RawQuery != "" || p.ForceQuery || p.Fragment != "" || strings.Contains(u, "#") {
		return errors.New("not a relay URL (host required; no user, query or fragment)")
	}
	return nil
}

// SignedPart returns the bytes the identity signs: the encoding up to,
// not including, the signature length. It checks every rule first.
func (l *DeviceList) SignedPart() ([]byte, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, MaxDeviceListSize)
	b = append(b, tagDeviceList, formatVersion)
	b = append(b, l.Identity.raw...)
	b = binary.BigEndian.AppendUint64(b, l.Version)
	b = binary.BigEndian.AppendUint64(b, timeUnix(l.Created))
	b = append(b, byte(len(l.Devices)))
	for _, d := range l.Devices {
		b = append(b, d.ID[:]...)
		b = binary.BigEndian.AppendUint64(b, timeUnix(d.Linked))
		b = binary.BigEndian.AppendUint16(b, uint16(len(d.Relay)))
		b = append(b, d.Relay...)
	}
	return b, nil
}

// Bytes returns the canonical encoding: SignedPart() || u16 len(sig) ||
// Signature. A Signature of the wrong length is encoded as zeros (the
// result fails to parse).
func (l *DeviceList) Bytes() ([]byte, error) {
	b, err := l.SignedPart()
	if err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint16(b, SignatureSize)
	return appendSignature(b, l.Signature), nil
}

// Verify checks the list's rules and its signature by l.Identity. It is
// for lists built in memory; ParseDeviceList already verifies.
func (l *DeviceList) Verify() error {
	b, err := l.SignedPart()
	if err != nil {
		return err
	}
	return l.Identity.verify("device list", ContextDeviceList, b, l.Signature)
}

// Contains reports whether the device id is in the list.
func (l *DeviceList) Contains(id Fingerprint) bool {
	for _, d := range l.Devices {
		if d.ID == id {
			return true
		}
	}
	return false
}

// DeviceListHash is SHA-256("postern.v1 device-list" || b) of an encoded
// list: what the transparency log records of it.
func DeviceListHash(b []byte) [DeviceListHashSize]byte {
	h := sha256.New()
	h.Write([]byte(labelDeviceList))
	h.Write(b)
	var out [DeviceListHashSize]byte
	h.Sum(out[:0])
	return out
}
