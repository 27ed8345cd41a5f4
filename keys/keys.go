package keys

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Sizes of the public objects. They are part of the wire format (SPEC.md).
const (
	XWingPublicKeySize   = 1216                     // X-Wing encapsulation key
	XWingCiphertextSize  = 1120                     // X-Wing ciphertext = HPKE enc
	XWingSeedSize        = 32                       // X-Wing private key (a seed)
	SigningPublicKeySize = 32 + 1952                // Ed25519 || ML-DSA-65
	SignatureSize        = 64 + 3309                // Ed25519 sig || ML-DSA-65 sig
	FingerprintSize      = 32                       // SHA-256 output
	SealOverhead         = XWingCiphertextSize + 16 // enc + ChaCha20-Poly1305 tag

	// MaxContextSize is the longest signature context string.
	MaxContextSize = 255
)

// Labels. Each one appears in SPEC.md with exactly these bytes; changing one
// is a protocol version change.
const (
	// MLDSAContext is the FIPS 204 context string given to ML-DSA-65 for
	// every Postern signature. Domain separation between Postern signatures
	// lives in the message M' (see SignedMessage); this string separates
	// Postern from any other user of the same ML-DSA key material.
	MLDSAContext = "postern.v1"

	labelHybridSig     = "postern.v1 hybrid-sig"
	labelKEMFinger     = "postern.v1 kem-fingerprint"
	labelSigFinger     = "postern.v1 sig-fingerprint"
	labelSafetyNumber  = "postern.v1 safety-number"
	safetyIterations   = 5200 // as Signal: slows brute-forcing a colliding key
	safetyDigitsBySide = 30
)

// Type tags: the first byte of every encoded object, so that one kind of
// object can never be parsed as another. Tags 0x20-0x2f and 0x30 belong to
// keys/identity (secret encodings, key files); see SPEC.md.
const (
	tagDeviceCertificate = 0x10
	tagSignedPrekey      = 0x11
	tagDeviceList        = 0x12
	// TagTreeHead (0x13) is the signed tree head of a relay's
	// transparency log (keys/kt): reserved here so that no object of
	// this package takes it.
	TagTreeHead = 0x13

	formatVersion = 1
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// Fingerprint is a SHA-256 digest that names a public key. It is public,
// comparable with ==, and usable as a map key.
type Fingerprint [FingerprintSize]byte

// String returns the fingerprint as 64 lowercase hex digits.
func (f Fingerprint) String() string { return hex.EncodeToString(f[:]) }

// Short returns the first 8 bytes as 16 hex digits. It is meant for logs
// and UIs where a full fingerprint is too long; it identifies, it does not
// authenticate (64 bits are within reach of a collision search).
func (f Fingerprint) Short() string { return hex.EncodeToString(f[:8]) }

// ParseFingerprint parses the output of Fingerprint.String (hex digits of
// either case, exactly 64 of them).
func ParseFingerprint(s string) (Fingerprint, error) {
	var f Fingerprint
	if len(s) != 2*FingerprintSize {
		return f, malformed("fingerprint", "length %d, want %d hex digits", len(s), 2*FingerprintSize)
	}
	if _, err := hex.Decode(f[:], []byte(s)); err != nil {
		return Fingerprint{}, malformed("fingerprint", "not hexadecimal")
	}
	return f, nil
}

func fingerprint(label string, b []byte) Fingerprint {
	h := sha256.New()
	h.Write([]byte(label))
	h.Write(b)
	var f Fingerprint
	h.Sum(f[:0])
	return f
}

// SafetyNumber returns the number two people compare (read aloud or by QR
// code) to check that each holds the other's true identity key. It is
// order-independent: SafetyNumber(a, b) == SafetyNumber(b, a).
//
// Each side is the fingerprint of a person's identity signing key, stretched
// with 5200 iterations of SHA-512 (as Signal's numeric fingerprints, to make
// a targeted near-collision expensive) and turned into 30 decimal digits;
// the two halves are sorted so both people see the same string. The result
// is 60 digits in 12 groups of 5 separated by single spaces. SPEC.md has the
// exact algorithm.
func SafetyNumber(a, b Fingerprint) string {
	halves := []string{safetyHalf(a), safetyHalf(b)}
	sort.Strings(halves)
	digits := halves[0] + halves[1]
	var sb strings.Builder
	for i := 0; i < len(digits); i += 5 {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(digits[i : i+5])
	}
	return sb.String()
}

func safetyHalf(f Fingerprint) string {
	h := sha512.New()
	h.Write([]byte(labelSafetyNumber))
	h.Write([]byte{0})
	h.Write(f[:])
	d := h.Sum(nil)
	for i := 0; i < safetyIterations; i++ {
		h.Reset()
		h.Write(d)
		h.Write(f[:])
		d = h.Sum(d[:0])
	}
	var sb strings.Builder
	for i := 0; i < safetyDigitsBySide/5; i++ {
		var buf [8]byte
		copy(buf[3:], d[i*5:i*5+5]) // 40-bit big-endian chunk
		fmt.Fprintf(&sb, "%05d", binary.BigEndian.Uint64(buf[:])%100000)
	}
	return sb.String()
}

// maxUnixTime is 9999-12-31T23:59:59Z. Larger creation times are refused:
// they are nonsense, and near 2^63 they would not round-trip through
// time.Time (its internal epoch is year 1).
const maxUnixTime = 253402300799

// getTime decodes a creation time: unsigned big-endian unix seconds.
func getTime(b []byte) (time.Time, bool) {
	u := binary.BigEndian.Uint64(b)
	if u > maxUnixTime {
		return time.Time{}, false
	}
	return time.Unix(int64(u), 0).UTC(), true
}
