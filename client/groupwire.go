package client

import (
	"bytes"
	"encoding/binary"

	"github.com/postern/postern/client/internal/team/group"
	"github.com/postern/postern/client/internal/team/senderkey"
	"github.com/postern/postern/protocol"
)

// Group contents (protocol/SPEC.md section 15.5), sent only inside
// pairwise sessions.
const (
	// contentGroupState carries one part of a signed group state (to the
	// group's admins with the fan-out list's admin capability, outside
	// the signature: the session authenticates it).
	contentGroupState byte = 0x1a
	// contentGroupKey carries this device's sender-key distribution of a
	// group (senderkey.Distribution, 94 bytes).
	contentGroupKey byte = 0x1b
	// contentGroupJoin carries a member device's group mailbox and its
	// send capability, to the group's admins.
	contentGroupJoin byte = 0x1c
)

const (
	// maxStatePart is the most bytes of a state one contentGroupState
	// carries, maxStateParts the most parts: a state of MaxStateSize
	// bytes takes 5.
	maxStatePart  = 32 << 10
	maxStateParts = (group.MaxStateSize + maxStatePart - 1) / maxStatePart
)

// groupPart is the body of a contentGroupState.
type groupPart struct {
	Group    group.ID
	Version  uint64
	Part     uint8 // 0 .. Parts-1
	Parts    uint8 // 1 .. maxStateParts
	Chunk    []byte
	HasAdmin bool // part 0 only: the admin capability follows
	AdminCap [32]byte
	// Logged (part 0 only): the group is a team's staff list, whose
	// states its receivers check against the team's transparency log
	// (SPEC.md 15.9).
	Logged bool
}

// Bits of a contentGroupState's flag byte.
const (
	partFlagAdmin  = 1 << 0 // the admin capability follows
	partFlagLogged = 1 << 1 // a team's staff list (stafflog.go)
)

// groupJoin is the body of a contentGroupJoin.
type groupJoin struct {
	Group      group.ID
	Mailbox    protocol.MailboxID
	Capability [32]byte
}

// appendGroupBody encodes the body of a group content:
//
//	0x1a: group ID [16] || version u64 || part u8 || parts u8 || u32 n || chunk || u8 flags [|| admin capability [32]]
//	      (flags: bit 0 the admin capability follows, bit 1 a team's staff list; part 0 only)
//	0x1b: distribution [94]
//	0x1c: group ID [16] || mailbox [16] || capability [32]
func appendGroupBody(b []byte, c *content) ([]byte, error) {
	switch c.Type {
	case contentGroupState:
		p := c.GroupPart
		if p == nil || p.Parts == 0 || int(p.Parts) > maxStateParts || p.Part >= p.Parts ||
			len(p.Chunk) == 0 || len(p.Chunk) > maxStatePart || ((p.HasAdmin || p.Logged) && p.Part != 0) {
			return nil, ErrDecrypt
		}
		b = append(b, p.Group[:]...)
		b = binary.BigEndian.AppendUint64(b, p.Version)
		b = append(b, p.Part, p.Parts)
		b = binary.BigEndian.AppendUint32(b, uint32(len(p.Chunk)))
		b = append(b, p.Chunk...)
		var flags byte
		if p.Logged {
			flags |= partFlagLogged
		}
		if p.HasAdmin {
			b = append(b, flags|partFlagAdmin)
			return append(b, p.AdminCap[:]...), nil
		}
		return append(b, flags), nil
	case contentGroupKey:
		if len(c.GroupKey) != senderkey.DistributionSize {
			return nil, ErrDecrypt
		}
		return append(b, c.GroupKey...), nil
	case contentGroupJoin:
		j := c.GroupJoin
		if j == nil {
			return nil, ErrDecrypt
		}
		b = append(b, j.Group[:]...)
		b = append(b, j.Mailbox[:]...)
		return append(b, j.Capability[:]...), nil
	}
	return nil, ErrDecrypt
}

// parseGroupBody reads what appendGroupBody writes.
func parseGroupBody(r *protocol.Reader, c *content) bool {
	switch c.Type {
	case contentGroupState:
		p := &groupPart{}
		r.Array(p.Group[:], "group id")
		p.Version = r.U64("state version")
		p.Part, p.Parts = r.U8("part"), r.U8("parts")
		n := r.U32("part length")
		if r.Err() != nil || p.Parts == 0 || int(p.Parts) > maxStateParts || p.Part >= p.Parts || n == 0 || n > maxStatePart {
			return false
		}
		p.Chunk = bytes.Clone(r.Take(int(n), "part"))
		flags := r.U8("flags")
		if flags&^(partFlagAdmin|partFlagLogged) != 0 || (flags != 0 && p.Part != 0) {
			return false
		}
		p.Logged = flags&partFlagLogged != 0
		if flags&partFlagAdmin != 0 {
			p.HasAdmin = true
			r.Array(p.AdminCap[:], "admin capability")
		}
		c.GroupPart = p
	case contentGroupKey:
		c.GroupKey = bytes.Clone(r.Take(senderkey.DistributionSize, "distribution"))
	case contentGroupJoin:
		j := &groupJoin{}
		r.Array(j.Group[:], "group id")
		r.Array(j.Mailbox[:], "mailbox")
		r.Array(j.Capability[:], "capability")
		c.GroupJoin = j
	default:
		return false
	}
	return r.Err() == nil
}

// isGroupContent reports whether a content type is one of the group
// contents.
func isGroupContent(t byte) bool {
	return t == contentGroupState || t == contentGroupKey || t == contentGroupJoin
}

// isGroupMessageContent reports whether a content type may travel in a
// group envelope: a text, or files, with or without headers.
func isGroupMessageContent(t byte) bool { return isMessageContent(t) }

// groupPlaintext is the plaintext a group message seals: the content as
// in a session (u32 length || content), padded with zeros so that the
// envelope (header, sender-key message) is a bucket.
func groupPlaintext(ct *content) ([]byte, error) {
	b, err := ct.marshalSession()
	if err != nil {
		return nil, err
	}
	n, err := protocol.BucketFor(protocol.EnvelopeHeaderSize + senderkey.MessageOverhead + len(b))
	if err != nil {
		return nil, ErrTooLong
	}
	out := make([]byte, n-protocol.EnvelopeHeaderSize-senderkey.MessageOverhead)
	copy(out, b)
	return out, nil
}

// splitState cuts an encoded state into the parts of contentGroupState.
func splitState(gid group.ID, version uint64, state []byte) []*groupPart {
	var out []*groupPart
	n := (len(state) + maxStatePart - 1) / maxStatePart
	for i := range n {
		end := min(len(state), (i+1)*maxStatePart)
		out = append(out, &groupPart{Group: gid, Version: version, Part: uint8(i), Parts: uint8(n), Chunk: state[i*maxStatePart : end]})
	}
	return out
}
