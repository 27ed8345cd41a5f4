package client

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// InvitationPrefix starts every invitation line. The digit is the
// invitation format version: 2 carries an invitation secret from which the
// relay's capability and the introduction key are derived (protocol/SPEC.md
// section 9 "Invitations"). Version 1 lines (the capability itself) are
// refused with ErrInvitationOutdated.
const InvitationPrefix = "postern-invite:2:"

// invitationPrefixV1 started the lines of the first format, whose single
// secret was also the mailbox's send capability: the relay saw it and could
// introduce a device of its own.
const invitationPrefixV1 = "postern-invite:1:"

// MaxRelayURLSize bounds a relay URL in an invitation.
const MaxRelayURLSize = protocol.MaxRelayURLSize

// InvitationSecretSize is the size of an invitation secret.
const InvitationSecretSize = 32

// Labels of the invitation derivations (protocol/SPEC.md section 9).
const (
	invitationCapabilityLabel   = protocol.LabelPrefix + "invitation capability"
	invitationIntroKeyLabel     = protocol.LabelPrefix + "invitation introduction-key"
	invitationIntroMACLabel     = protocol.LabelPrefix + "invitation introduction"
	invitationChecksumSize      = 4
	invitationFixedSize         = 2 + 16 + InvitationSecretSize + keys.FingerprintSize + invitationChecksumSize
	introductionMACSize         = sha256.Size
	introductionTranscriptFixed = 1 + 2 + 16 + 2*keys.FingerprintSize + 16 + 32
)

// Invitation is the parsed form of an invitation line: where the inviter's
// mailbox is, the invitation secret (a bearer secret the relay never sees)
// and the fingerprint of the inviter's identity key, which the accepter
// checks against the keys the relay hands out.
type Invitation struct {
	Relay    string                     // canonical relay URL
	Mailbox  protocol.MailboxID         // the inviter's mailbox for this invitation
	Secret   [InvitationSecretSize]byte // the invitation secret (see Capability, introKey)
	Identity keys.Fingerprint           // the inviter's identity key fingerprint
}

// Capability is the send capability for Mailbox derived from the secret:
// the only value derived from it that the relay sees (on the accepter's
// bundle fetch and introduction).
func (inv *Invitation) Capability() protocol.CapabilityToken {
	t, _ := protocol.CapabilityTokenFromBytes(inv.derive(invitationCapabilityLabel))
	return t
}

// introKey is the key that authenticates the introduction. The relay
// never sees it, so it cannot introduce a device of its own even though it
// learns the capability.
func (inv *Invitation) introKey() []byte { return inv.derive(invitationIntroKeyLabel) }

// derive is HKDF-SHA-256(ikm = secret, salt = empty, info = label || mailbox, 32).
func (inv *Invitation) derive(label string) []byte {
	info := append([]byte(label), inv.Mailbox[:]...)
	k, err := hkdf.Key(sha256.New, inv.Secret[:], nil, string(info), 32)
	if err != nil {
		panic("client: HKDF of 32 bytes failed") // unreachable: the length is fixed and small
	}
	return k
}

// introductionMAC authenticates an introduction under the invitation's
// introduction key: HMAC-SHA-256(key, transcript) where the transcript
// binds the relay, the invitation mailbox, the inviter's identity, the
// introducer's identity and device, and the reply route. replyRelay is
// the reply mailbox's relay of an introduction with relay (content type
// 0x10), "" for one on the invitation's relay (0x05).
func introductionMAC(key []byte, relay string, mailbox protocol.MailboxID, inviter, introducer, device keys.Fingerprint, replyMbx protocol.MailboxID, replyCap [32]byte, replyRelay string) [introductionMACSize]byte {
	m := hmac.New(sha256.New, key)
	m.Write(introductionTranscript(relay, mailbox, inviter, introducer, device, replyMbx, replyCap, replyRelay))
	var out [introductionMACSize]byte
	m.Sum(out[:0])
	return out
}

// introductionTranscript is the MAC input (SPEC section 9 "Introductions").
// The byte after the label is 0x00 for an introduction whose reply route
// is on the invitation's relay, 0x01 for one naming its own relay, which
// then follows the reply capability: the two never share a transcript.
func introductionTranscript(relay string, mailbox protocol.MailboxID, inviter, introducer, device keys.Fingerprint, replyMbx protocol.MailboxID, replyCap [32]byte, replyRelay string) []byte {
	b := make([]byte, 0, len(invitationIntroMACLabel)+introductionTranscriptFixed+len(relay)+2+len(replyRelay)+keys.FingerprintSize)
	b = append(b, invitationIntroMACLabel...)
	if replyRelay == "" {
		b = append(b, 0)
	} else {
		b = append(b, 1)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(relay)))
	b = append(b, relay...)
	b = append(b, mailbox[:]...)
	b = append(b, inviter[:]...)
	b = append(b, introducer[:]...)
	b = append(b, device[:]...)
	b = append(b, replyMbx[:]...)
	b = append(b, replyCap[:]...)
	if replyRelay != "" {
		b = binary.BigEndian.AppendUint16(b, uint16(len(replyRelay)))
		b = append(b, replyRelay...)
	}
	return b
}

// Code returns the one-line text form (a SECRET: it holds the invitation secret).
func (inv *Invitation) Code() string {
	b := make([]byte, 0, invitationFixedSize+len(inv.Relay))
	b = binary.BigEndian.AppendUint16(b, uint16(len(inv.Relay)))
	b = append(b, inv.Relay...)
	b = append(b, inv.Mailbox[:]...)
	b = append(b, inv.Secret[:]...)
	b = append(b, inv.Identity[:]...)
	sum := sha256.Sum256(b)
	b = append(b, sum[:invitationChecksumSize]...)
	return InvitationPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// String redacts: an invitation holds a secret.
func (inv *Invitation) String() string { return "Invitation(" + inv.Identity.Short() + ", REDACTED)" }

// ParseInvitation parses an invitation line (surrounding white space is
// ignored). Every failure matches ErrInvalidInvitation; the specific ones
// also match ErrInvitationPrefix, ErrInvitationOutdated,
// ErrInvitationEncoding, ErrInvitationTruncated, ErrInvitationChecksum, or
// the relay URL errors ErrInvalidRelayURL and ErrInsecureRelay.
func ParseInvitation(s string) (*Invitation, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, invitationPrefixV1) {
		return nil, ErrInvitationOutdated
	}
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
	copy(inv.Secret[:], body[off:off+InvitationSecretSize])
	off += InvitationSecretSize
	copy(inv.Identity[:], body[off:off+keys.FingerprintSize])
	var zero [InvitationSecretSize]byte
	if subtle.ConstantTimeCompare(inv.Secret[:], zero[:]) == 1 {
		return nil, invitationErrorf("zero secret")
	}
	return inv, nil
}

// CheckRelayURL validates a relay URL and returns its canonical form
// (scheme and host lower case, no trailing slash). It must be wss://, or
// ws:// to a loopback host (localhost, 127.0.0.0/8, ::1) for local tests
// and development; anything else fails with ErrInsecureRelay. User info,
// queries and fragments fail with ErrInvalidRelayURL.
func CheckRelayURL(s string) (string, error) {
	canon, err := protocol.CheckRelayURL(s)
	switch {
	case errors.Is(err, protocol.ErrInsecureRelayURL):
		return "", ErrInsecureRelay
	case err != nil:
		return "", ErrInvalidRelayURL
	}
	return canon, nil
}
