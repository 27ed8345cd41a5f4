package client

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"net"
	"net/url"
	"strings"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// InvitationPrefix starts every invitation line. The digit is the
// invitation format version.
const InvitationPrefix = "postern-invite:1:"

// MaxRelayURLSize bounds a relay URL in an invitation.
const MaxRelayURLSize = 512

const (
	invitationChecksumSize = 4
	invitationFixedSize    = 2 + 16 + 32 + keys.FingerprintSize + invitationChecksumSize
)

// Invitation is the parsed form of an invitation line: where the inviter's
// mailbox is, the capability to write to it (a bearer secret) and the
// fingerprint of the inviter's identity key, which the accepter checks
// against the keys the relay hands out.
type Invitation struct {
	Relay      string                   // canonical relay URL
	Mailbox    protocol.MailboxID       // the inviter's mailbox for this invitation
	Capability protocol.CapabilityToken // send capability for Mailbox; also the single-use invitation token
	Identity   keys.Fingerprint         // the inviter's identity key fingerprint
}

// Code returns the one-line text form (a SECRET: it holds the capability).
func (inv *Invitation) Code() string {
	b := make([]byte, 0, invitationFixedSize+len(inv.Relay))
	b = binary.BigEndian.AppendUint16(b, uint16(len(inv.Relay)))
	b = append(b, inv.Relay...)
	b = append(b, inv.Mailbox[:]...)
	b = append(b, inv.Capability.SecretBytes()...)
	b = append(b, inv.Identity[:]...)
	sum := sha256.Sum256(b)
	b = append(b, sum[:invitationChecksumSize]...)
	return InvitationPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// String redacts: an invitation holds a capability.
func (inv *Invitation) String() string { return "Invitation(" + inv.Identity.Short() + ", REDACTED)" }

// ParseInvitation parses an invitation line (surrounding white space is
// ignored). Every failure matches ErrInvalidInvitation; the specific ones
// also match ErrInvitationPrefix, ErrInvitationEncoding,
// ErrInvitationTruncated, ErrInvitationChecksum, or the relay URL errors
// ErrInvalidRelayURL and ErrInsecureRelay.
func ParseInvitation(s string) (*Invitation, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, InvitationPrefix) {
		return nil, ErrInvitationPrefix
	}
	// Strict: non-zero padding bits are refused, so that one invitation
	// has exactly one text.
	b, err := base64.RawURLEncoding.Strict().DecodeString(s[len(InvitationPrefix):])
	if err != nil {
		return nil, ErrInvitationEncoding
	}
	if len(b) < invitationFixedSize {
		return nil, ErrInvitationTruncated
	}
	n := int(binary.BigEndian.Uint16(b))
	if n > MaxRelayURLSize {
		return nil, invitationErrorf("relay URL of %d bytes, limit %d", n, MaxRelayURLSize)
	}
	if len(b) < invitationFixedSize+n {
		return nil, ErrInvitationTruncated
	}
	if len(b) > invitationFixedSize+n {
		return nil, invitationErrorf("%d trailing bytes", len(b)-invitationFixedSize-n)
	}
	body, sum := b[:len(b)-invitationChecksumSize], b[len(b)-invitationChecksumSize:]
	want := sha256.Sum256(body)
	if subtle.ConstantTimeCompare(sum, want[:invitationChecksumSize]) != 1 {
		return nil, ErrInvitationChecksum
	}
	raw := string(body[2 : 2+n])
	relay, err := CheckRelayURL(raw)
	if err != nil {
		return nil, invitationErrorf("%w", err)
	}
	if relay != raw {
		// Only the canonical form is accepted, so that an invitation has
		// exactly one encoding.
		return nil, invitationErrorf("relay URL is not in canonical form")
	}
	inv := &Invitation{Relay: relay}
	off := 2 + n
	copy(inv.Mailbox[:], body[off:off+16])
	off += 16
	inv.Capability, _ = protocol.CapabilityTokenFromBytes(body[off : off+32])
	off += 32
	copy(inv.Identity[:], body[off:off+keys.FingerprintSize])
	if inv.Capability.IsZero() {
		return nil, invitationErrorf("zero capability")
	}
	return inv, nil
}

// CheckRelayURL validates a relay URL and returns its canonical form
// (scheme and host lower case, no trailing slash). It must be wss://, or
// ws:// to a loopback host (localhost, 127.0.0.0/8, ::1) for local tests
// and development; anything else fails with ErrInsecureRelay. User info,
// queries and fragments fail with ErrInvalidRelayURL.
func CheckRelayURL(s string) (string, error) {
	if len(s) > MaxRelayURLSize {
		return "", ErrInvalidRelayURL
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", ErrInvalidRelayURL
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.RawFragment != "" {
		return "", ErrInvalidRelayURL
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Host)
	switch scheme {
	case "wss":
	case "ws":
		if !isLoopback(u.Hostname()) {
			return "", ErrInsecureRelay
		}
	case "http", "https":
		return "", ErrInsecureRelay // say what to use rather than "invalid"
	default:
		return "", ErrInvalidRelayURL
	}
	if p := u.Port(); p != "" {
		for _, c := range p {
			if c < '0' || c > '9' {
				return "", ErrInvalidRelayURL
			}
		}
	}
	path := strings.TrimRight(u.EscapedPath(), "/")
	return scheme + "://" + host + path, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
