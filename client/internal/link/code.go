package link

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"github.com/postern/postern/protocol"
)

// Format of a link code (SPEC section 13.1).
const (
	// CodePrefix starts every link code of format version 1.
	CodePrefix = "postern-link:1:"
	// codePrefixAny starts a link code of any version.
	codePrefixAny = "postern-link:"

	// MaxLifetime is how long a code lives: its expiry is at most this far
	// after it was made, and the existing device stops answering then.
	MaxLifetime = 10 * time.Minute
	// MaxClockSkew is how far ahead of the reader's clock, beyond
	// MaxLifetime, an expiry may lie before Parse refuses it as malformed.
	MaxClockSkew = 5 * time.Minute

	// MaxRelayURLSize bounds the relay URL in a code (as in a device list).
	MaxRelayURLSize = 256
	// SecretSize is the size of the link secret.
	SecretSize = 32

	checksumSize  = 4
	codeFixedSize = 2 + 16 + SecretSize + 8 + checksumSize

	// maxUnixTime is 9999-12-31T23:59:59Z, the largest time of SPEC section 8.
	maxUnixTime = 253402300799
)

// Labels of the link derivations (SPEC section 13, label table).
const (
	capabilityLabel  = protocol.LabelPrefix + "link capability"
	requestKeyLabel  = protocol.LabelPrefix + "link request-key"
	responseKeyLabel = protocol.LabelPrefix + "link response-key"
)

// Code is a parsed link code: where the existing device waits (relay and
// link mailbox), the link secret from which every key of the exchange is
// derived, and when the code expires. The secret is unexported: Text is the
// only way out, and String redacts it. A Code is safe for concurrent use;
// its exported fields must not change once the exchange has begun.
type Code struct {
	Relay   string             // canonical relay URL of the link mailbox
	Mailbox protocol.MailboxID // the link mailbox, made for this code only
	Expires time.Time          // whole seconds, UTC
	secret  [SecretSize]byte
}

// NewCode makes a code for a link mailbox on relay, with a fresh secret
// from crypto/rand, expiring MaxLifetime after now (rounded down to the
// second). relay must be a valid relay URL; it is stored in canonical form.
func NewCode(relay string, mailbox protocol.MailboxID, now time.Time) (*Code, error) {
	var s [SecretSize]byte
	rand.Read(s[:]) // never fails (Go 1.24+)
	return newCode(relay, mailbox, s, now.Add(MaxLifetime))
}

// newCode is the deterministic core of NewCode (known-answer vectors).
func newCode(relay string, mailbox protocol.MailboxID, secret [SecretSize]byte, expires time.Time) (*Code, error) {
	r, err := checkRelayURL(relay)
	if err != nil {
		return nil, err
	}
	var zero [SecretSize]byte
	if secret == zero {
		return nil, malformedf("zero secret")
	}
	e := expires.Unix()
	if e <= 0 || e > maxUnixTime {
		return nil, malformedf("expiry out of range")
	}
	return &Code{Relay: r, Mailbox: mailbox, Expires: time.Unix(e, 0).UTC(), secret: secret}, nil
}

// Text returns the one-line text form: a SECRET for as long as the code
// lives (whoever holds it can enrol a device of this person).
func (c *Code) Text() string {
	b := make([]byte, 0, codeFixedSize+len(c.Relay))
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.Relay)))
	b = append(b, c.Relay...)
	b = append(b, c.Mailbox[:]...)
	b = append(b, c.secret[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Expires.Unix()))
	sum := sha256.Sum256(b)
	b = append(b, sum[:checksumSize]...)
	return CodePrefix + base64.RawURLEncoding.EncodeToString(b)
}

// String redacts: a code holds a secret.
func (c *Code) String() string {
	return "link.Code(" + c.Mailbox.Short() + ", expires " + c.Expires.Format(time.RFC3339) + ", REDACTED)"
}

// Parse reads a link code (surrounding white space is ignored) and checks
// it against the clock now. Errors: ErrUnsupportedVersion for another
// format version, ErrChecksum for a mistyped code (it also matches
// ErrMalformed), ErrMalformed for anything else that is not a valid code,
// and ErrExpired when now is after the expiry.
func Parse(s string, now time.Time) (*Code, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, codePrefixAny) {
		return nil, malformedf("not a link code (it starts with %q)", codePrefixAny)
	}
	if !strings.HasPrefix(s, CodePrefix) {
		// "postern-link:N:" with a number N other than 1 is another
		// release's format; anything else is not a code.
		v, _, ok := strings.Cut(s[len(codePrefixAny):], ":")
		if !ok || v == "" || len(v) > 3 || strings.Trim(v, "0123456789") != "" {
			return nil, malformedf("no format version after %q", codePrefixAny)
		}
		return nil, ErrUnsupportedVersion
	}
	// Strict: non-zero padding bits are refused, so a code has one text.
	b, err := base64.RawURLEncoding.Strict().DecodeString(s[len(CodePrefix):])
	if err != nil {
		return nil, malformedf("not base64url")
	}
	if len(b) < codeFixedSize {
		return nil, malformedf("too short (cut off when copied?)")
	}
	// The checksum is the last four bytes whatever the rest says, so a
	// typing error anywhere (the length field included) is reported as one.
	body, sum := b[:len(b)-checksumSize], b[len(b)-checksumSize:]
	want := sha256.Sum256(body)
	if subtle.ConstantTimeCompare(sum, want[:checksumSize]) != 1 {
		return nil, ErrChecksum
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < codeFixedSize+n {
		return nil, malformedf("relay URL length %d past the end", n)
	}
	if len(b) > codeFixedSize+n {
		return nil, malformedf("%d trailing bytes", len(b)-codeFixedSize-n)
	}
	if n == 0 || n > MaxRelayURLSize {
		return nil, malformedf("relay URL of %d bytes (1..%d)", n, MaxRelayURLSize)
	}
	raw := string(body[2 : 2+n])
	off := 2 + n
	var mbx protocol.MailboxID
	copy(mbx[:], body[off:off+16])
	off += 16
	var secret [SecretSize]byte
	copy(secret[:], body[off:off+SecretSize])
	off += SecretSize
	exp := binary.BigEndian.Uint64(body[off:])
	if exp > maxUnixTime {
		exp = 0 // out of range either way; keeps the conversion below in range
	}
	// newCode checks, in SPEC order, the relay URL, the secret and the expiry.
	c, err := newCode(raw, mbx, secret, time.Unix(int64(exp), 0))
	if err != nil {
		return nil, err
	}
	if c.Relay != raw {
		return nil, malformedf("relay URL is not in canonical form")
	}
	if now.Unix() >= int64(exp) {
		return nil, ErrExpired
	}
	if int64(exp) > now.Add(MaxLifetime+MaxClockSkew).Unix() {
		return nil, malformedf("expires more than %v from now (check both devices' clocks)", MaxLifetime)
	}
	return c, nil
}

// Capability is the send capability of the link mailbox: the one value
// derived from the secret that the relay sees. The existing device
// registers it for the mailbox; the new device presents it on its Send.
func (c *Code) Capability() protocol.CapabilityToken {
	t, _ := protocol.CapabilityTokenFromBytes(c.derive(capabilityLabel))
	return t
}

func (c *Code) requestKey() []byte  { return c.derive(requestKeyLabel) }
func (c *Code) responseKey() []byte { return c.derive(responseKeyLabel) }

// derive is HKDF-SHA-256(ikm = secret, salt = empty,
// info = label || context, 32), context binding the relay and the mailbox.
func (c *Code) derive(label string) []byte {
	info := append([]byte(label), c.context()...)
	k, err := hkdf.Key(sha256.New, c.secret[:], nil, string(info), 32)
	if err != nil {
		panic("link: HKDF of 32 bytes failed") // unreachable: fixed, small length
	}
	return k
}

// context is u16(len(relay)) || relay || mailbox.
func (c *Code) context() []byte {
	b := make([]byte, 0, 2+len(c.Relay)+16)
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.Relay)))
	b = append(b, c.Relay...)
	return append(b, c.Mailbox[:]...)
}

// checkRelayURL applies the relay URL rules of SPEC.md section 9 "Invitations" (relay URLs)
// (protocol.CheckRelayURL) within this format's shorter limit, and returns
// the canonical form.
func checkRelayURL(s string) (string, error) {
	if len(s) == 0 || len(s) > MaxRelayURLSize {
		return "", malformedf("relay URL of %d bytes (1..%d)", len(s), MaxRelayURLSize)
	}
	canon, err := protocol.CheckRelayURL(s)
	switch {
	case errors.Is(err, protocol.ErrInsecureRelayURL):
		return "", malformedf("insecure relay URL (wss://, or ws:// only to a loopback host)")
	case err != nil:
		return "", malformedf("invalid relay URL")
	}
	return canon, nil
}
