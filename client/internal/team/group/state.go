package group

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// ID names a group: 16 bytes from crypto/rand, chosen by its creator.
type ID [IDSize]byte

// Role is a member's role in a group.
type Role uint8

const (
	// RoleAdmin: changes the membership and signs the states.
	RoleAdmin Role = 1
	// RoleMember: reads and writes.
	RoleMember Role = 2
	// RoleObserver: reads, cannot send (for continuity of care); the
	// members' clients drop what an observer's device sends.
	RoleObserver Role = 3
	// RoleDelegate: reads and writes on behalf of the member named in For;
	// shown as "DELEGATE for MEMBER".
	RoleDelegate Role = 4
)

func (r Role) String() string {
	switch r {
	case RoleAdmin:
		return "admin"
	case RoleMember:
		return "member"
	case RoleObserver:
		return "observer"
	case RoleDelegate:
		return "delegate"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// MaySend reports whether the role may send group messages.
func (r Role) MaySend() bool { return r == RoleAdmin || r == RoleMember || r == RoleDelegate }

// Device is one device of a member. A device that has not joined yet has
// no group mailbox: it receives nothing until it sends its join and an
// admin publishes the state that lists its mailbox.
type Device struct {
	ID         keys.Fingerprint
	Joined     bool
	Mailbox    protocol.MailboxID // Joined: its group mailbox on the group's relay
	Capability [CapabilitySize]byte
}

// Member is one person of a group.
type Member struct {
	Identity keys.Fingerprint // the person's identity key fingerprint
	Name     string           // as the admin who signed the state names them
	Role     Role
	For      keys.Fingerprint // Delegate: the member it acts for
	Devices  []Device         // ascending device ID
}

// State is a group's signed membership (SPEC.md section 15.5). It is
// SECRET: it holds the header key and the fan-out send capability.
// Members are in ascending order of identity; Sign and Parse enforce it.
type State struct {
	Group     ID
	Version   uint64 // strictly increasing, from 1
	Name      string
	Relay     string // the group's relay: its fan-out list and every member mailbox are there
	Fanout    protocol.FanoutID
	SendCap   [CapabilitySize]byte // the fan-out list's send capability
	HeaderKey [HeaderKeySize]byte
	Members   []Member

	// Signer is the identity key of the admin who signed, Signature its
	// hybrid signature over SignedPart in context SignatureContext.
	Signer    *keys.SigningPublicKey
	Signature []byte
}

// checkName: 1 to MaxNameSize bytes of UTF-8 without control characters.
func checkName(s string) bool {
	return s != "" && len(s) <= MaxNameSize && utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

// check enforces every rule of a state that does not depend on another
// state (the rules of SPEC.md section 15.5).
func (s *State) check() error {
	if s.Version == 0 {
		return fmt.Errorf("%w: version 0", ErrRule)
	}
	if !checkName(s.Name) {
		return fmt.Errorf("%w: group name", ErrRule)
	}
	if keys.CheckRelayURL(s.Relay) != nil {
		return fmt.Errorf("%w: relay URL", ErrRule)
	}
	if len(s.Members) == 0 || len(s.Members) > MaxMembers {
		return fmt.Errorf("%w: %d members, 1 to %d", ErrRule, len(s.Members), MaxMembers)
	}
	devices := map[keys.Fingerprint]bool{}
	mailboxes := map[protocol.MailboxID]bool{}
	roles := map[keys.Fingerprint]Role{}
	admins := 0
	for i := range s.Members {
		m := &s.Members[i]
		if i > 0 && bytes.Compare(s.Members[i-1].Identity[:], m.Identity[:]) >= 0 {
			return fmt.Errorf("%w: members not in strictly ascending order", ErrRule)
		}
		if !checkName(m.Name) {
			return fmt.Errorf("%w: member name", ErrRule)
		}
		if m.Role < RoleAdmin || m.Role > RoleDelegate {
			return fmt.Errorf("%w: unknown role", ErrRule)
		}
		if m.Role != RoleDelegate && m.For != (keys.Fingerprint{}) {
			return fmt.Errorf("%w: only a delegate acts for someone", ErrRule)
		}
		if m.Role == RoleAdmin {
			admins++
		}
		roles[m.Identity] = m.Role
		if len(m.Devices) > MaxDevices {
			return fmt.Errorf("%w: more than %d devices for a member", ErrRule, MaxDevices)
		}
		for j, d := range m.Devices {
			if j > 0 && bytes.Compare(m.Devices[j-1].ID[:], d.ID[:]) >= 0 {
				return fmt.Errorf("%w: devices not in strictly ascending order", ErrRule)
			}
			if devices[d.ID] {
				return fmt.Errorf("%w: a device listed for two members", ErrRule)
			}
			devices[d.ID] = true
			if !d.Joined {
				if d.Mailbox != (protocol.MailboxID{}) || d.Capability != [CapabilitySize]byte{} {
					return fmt.Errorf("%w: a device not joined has no mailbox", ErrRule)
				}
				continue
			}
			if mailboxes[d.Mailbox] {
				return fmt.Errorf("%w: a mailbox listed twice", ErrRule)
			}
			mailboxes[d.Mailbox] = true
		}
	}
	if admins == 0 {
		return fmt.Errorf("%w: no admin", ErrRule)
	}
	for _, m := range s.Members {
		if m.Role != RoleDelegate {
			continue
		}
		if r := roles[m.For]; m.For == m.Identity || (r != RoleAdmin && r != RoleMember) {
			return fmt.Errorf("%w: a delegate acts for an admin or member of the group", ErrRule)
		}
	}
	return nil
}

// SignedPart returns the bytes an admin signs: the whole encoding up to
// the signer's key, the signer's key included (SPEC.md section 15.5). It
// checks the rules first (ErrRule) and needs Signer.
func (s *State) SignedPart() ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.Signer == nil {
		return nil, fmt.Errorf("%w: no signer", ErrRule)
	}
	b := make([]byte, 0, 512+len(s.Members)*(memberFixedSize+32+deviceFixedSize+joinedSize)+keys.SigningPublicKeySize)
	b = append(b, tagState, encodingVersion)
	b = append(b, s.Group[:]...)
	b = binary.BigEndian.AppendUint64(b, s.Version)
	b = append(b, byte(len(s.Name)))
	b = append(b, s.Name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.Relay)))
	b = append(b, s.Relay...)
	b = append(b, s.Fanout[:]...)
	b = append(b, s.SendCap[:]...)
	b = append(b, s.HeaderKey[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.Members)))
	for _, m := range s.Members {
		b = append(b, m.Identity[:]...)
		b = append(b, byte(len(m.Name)))
		b = append(b, m.Name...)
		b = append(b, byte(m.Role))
		if m.Role == RoleDelegate {
			b = append(b, m.For[:]...)
		}
		b = append(b, byte(len(m.Devices)))
		for _, d := range m.Devices {
			b = append(b, d.ID[:]...)
			if !d.Joined {
				b = append(b, 0)
				continue
			}
			b = append(b, 1)
			b = append(b, d.Mailbox[:]...)
			b = append(b, d.Capability[:]...)
		}
	}
	return append(b, s.Signer.Bytes()...), nil
}

// Bytes returns the canonical encoding: SignedPart || u16 len(signature)
// || signature.
func (s *State) Bytes() ([]byte, error) {
	b, err := s.SignedPart()
	if err != nil {
		return nil, err
	}
	if len(s.Signature) != keys.SignatureSize {
		return nil, fmt.Errorf("%w: unsigned", ErrRule)
	}
	b = binary.BigEndian.AppendUint16(b, keys.SignatureSize)
	return append(b, s.Signature...), nil
}

// Parse reads an encoded state, checks its rules and verifies its
// signature under the key it names. It does not say whether the signer
// may sign it: Accept and AcceptFirst do.
func Parse(b []byte) (*State, error) {
	s, signed, err := parse(b)
	if err != nil {
		return nil, err
	}
	if s.Signer.Verify(SignatureContext, b[:signed], s.Signature) != nil {
		return nil, ErrSignature
	}
	return s, nil
}

// ParseStored is Parse without the signature check, for a state this
// device verified when it accepted it and kept since in its encrypted,
// authenticated store: the hybrid verification (most of Parse's cost)
// is not repeated for every message of the group. Never use it on bytes
// that came from elsewhere.
func ParseStored(b []byte) (*State, error) {
	s, _, err := parse(b)
	return s, err
}

// parse decodes b and checks the rules; it returns the length of the
// signed part.
func parse(b []byte) (*State, int, error) {
	if len(b) > MaxStateSize {
		return nil, 0, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(b), MaxStateSize)
	}
	r := protocol.NewReader(b)
	if r.U8("tag") != tagState || r.U8("version") != encodingVersion {
		return nil, 0, fmt.Errorf("%w: tag or version", ErrMalformed)
	}
	s := &State{}
	r.Array(s.Group[:], "group id")
	s.Version = r.U64("version")
	s.Name = string(r.Take(int(r.U8("name length")), "name"))
	n := int(r.U16("relay length"))
	if n > keys.MaxRelayURLSize {
		return nil, 0, fmt.Errorf("%w: relay URL length", ErrMalformed)
	}
	s.Relay = string(r.Take(n, "relay"))
	r.Array(s.Fanout[:], "fan-out id")
	r.Array(s.SendCap[:], "send capability")
	r.Array(s.HeaderKey[:], "header key")
	k := int(r.U16("member count"))
	if r.Err() != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrMalformed, r.Err())
	}
	if k == 0 || k > MaxMembers || r.Len() < k*memberFixedSize {
		return nil, 0, fmt.Errorf("%w: member count", ErrMalformed)
	}
	s.Members = make([]Member, k)
	for i := range s.Members {
		m := &s.Members[i]
		r.Array(m.Identity[:], "identity")
		m.Name = string(r.Take(int(r.U8("member name length")), "member name"))
		m.Role = Role(r.U8("role"))
		if m.Role == RoleDelegate {
			r.Array(m.For[:], "delegate for")
		}
		nd := int(r.U8("device count"))
		if r.Err() != nil {
			return nil, 0, fmt.Errorf("%w: %v", ErrMalformed, r.Err())
		}
		if nd > MaxDevices {
			return nil, 0, fmt.Errorf("%w: device count", ErrMalformed)
		}
		if nd > 0 {
			m.Devices = make([]Device, nd)
		}
		for j := range m.Devices {
			d := &m.Devices[j]
			r.Array(d.ID[:], "device id")
			switch r.U8("joined flag") {
			case 0:
			case 1:
				d.Joined = true
				r.Array(d.Mailbox[:], "mailbox")
				r.Array(d.Capability[:], "capability")
			default:
				return nil, 0, fmt.Errorf("%w: joined flag", ErrMalformed)
			}
		}
	}
	signer, err := keys.ParseSigningPublicKey(r.Take(keys.SigningPublicKeySize, "signer"))
	if r.Err() != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrMalformed, r.Err())
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%w: signer key", ErrMalformed)
	}
	s.Signer = signer
	signedEnd := len(b) - r.Len()
	if r.U16("signature length") != keys.SignatureSize {
		return nil, 0, fmt.Errorf("%w: signature length", ErrMalformed)
	}
	s.Signature = bytes.Clone(r.Take(keys.SignatureSize, "signature"))
	if err := r.Finish("group state"); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := s.check(); err != nil {
		return nil, 0, err
	}
	return s, signedEnd, nil
}

// Signer signs with a person's identity key; *identity.Identity is one.
type Signer interface {
	Public() *keys.SigningPublicKey
	Sign(context string, msg []byte) ([]byte, error)
}

// Sign sets s.Signer to sig's key, signs s and returns its encoding. It
// refuses a state that breaks a rule (ErrRule). Whether the signer may
// sign is for the receivers to decide (Accept, AcceptFirst): an admin who
// steps down signs a state in which it is no longer one.
func Sign(s *State, sig Signer) ([]byte, error) {
	s.Signer = sig.Public()
	part, err := s.SignedPart()
	if err != nil {
		return nil, err
	}
	sg, err := sig.Sign(SignatureContext, part)
	if err != nil {
		return nil, fmt.Errorf("group: sign: %w", err)
	}
	s.Signature = sg
	return s.Bytes()
}

// Member returns the member with identity id, or nil.
func (s *State) Member(id keys.Fingerprint) *Member {
	for i := range s.Members {
		if s.Members[i].Identity == id {
			return &s.Members[i]
		}
	}
	return nil
}

// Device returns the member that lists device id, and the device, or nil.
func (s *State) Device(id keys.Fingerprint) (*Member, *Device) {
	for i := range s.Members {
		m := &s.Members[i]
		for j := range m.Devices {
			if m.Devices[j].ID == id {
				return m, &m.Devices[j]
			}
		}
	}
	return nil, nil
}

// IsAdmin reports whether identity id is an admin of s.
func (s *State) IsAdmin(id keys.Fingerprint) bool {
	m := s.Member(id)
	return m != nil && m.Role == RoleAdmin
}

// DisplayName is how a member's messages are shown: its name, or for a
// delegate "DELEGATE for MEMBER" with the names this state gives.
func (s *State) DisplayName(m *Member) string {
	if m.Role != RoleDelegate {
		return m.Name
	}
	if f := s.Member(m.For); f != nil {
		return m.Name + " for " + f.Name
	}
	return m.Name
}

// Accept checks next against the held state s: same group, a higher
// version, signed by an admin of s, and sent by a device of its signer's
// person (from, the identity the pairwise session authenticated): a state
// is not relayed by anyone else, so that a state made for other devices
// (the one a removed member gets) cannot be passed on. On success the
// caller replaces s by next.
func (s *State) Accept(next *State, from keys.Fingerprint) error {
	if next.Group != s.Group {
		return ErrWrongGroup
	}
	if next.Version <= s.Version {
		return ErrRollback
	}
	if next.Signer == nil || !s.IsAdmin(next.Signer.Fingerprint()) {
		return ErrNotAdmin
	}
	if next.Signer.Fingerprint() != from {
		return ErrNotFromSigner
	}
	return nil
}

// AcceptFirst checks a state received for a group the receiver holds no
// state of: it is signed by an admin of next itself, it came from a
// device of that admin's person (from, the identity the pairwise session
// authenticated), and it lists the receiver (self).
func AcceptFirst(next *State, from, self keys.Fingerprint) error {
	if next.Signer == nil || !next.IsAdmin(next.Signer.Fingerprint()) {
		return ErrNotAdmin
	}
	if next.Signer.Fingerprint() != from {
		return ErrNotFromSigner
	}
	if next.Member(self) == nil {
		return ErrFirstState
	}
	return nil
}

// Clone returns a deep copy of s (the signer key is shared: it is
// immutable).
func (s *State) Clone() *State {
	c := *s
	c.Members = make([]Member, len(s.Members))
	for i, m := range s.Members {
		m.Devices = append([]Device(nil), m.Devices...)
		c.Members[i] = m
	}
	c.Signature = bytes.Clone(s.Signature)
	return &c
}

// Mailboxes returns the group mailboxes of every joined device.
func (s *State) Mailboxes() []protocol.MailboxID {
	var out []protocol.MailboxID
	for _, m := range s.Members {
		for _, d := range m.Devices {
			if d.Joined {
				out = append(out, d.Mailbox)
			}
		}
	}
	return out
}

// String, GoString and Format redact the secrets.
func (s State) String() string {
	return fmt.Sprintf("group.State{version %d, %d members, redacted}", s.Version, len(s.Members))
}
func (s State) GoString() string           { return s.String() }
func (s State) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }
