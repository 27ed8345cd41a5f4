package client

import (
	"bytes"
	"encoding/binary"

	"github.com/postern/postern/client/internal/team/queue"
	"github.com/postern/postern/client/internal/team/stats"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Team contents (protocol/SPEC.md section 15.9). contentTeamSecrets
// travels only in pairwise sessions (intake → staff device); the others
// only in the staff group's envelopes (group.go), among the staff group's
// member devices.
const (
	// contentTeamSecrets carries a team's secrets: the claim space, its
	// write capability, the claim key and every team key epoch.
	contentTeamSecrets byte = 0x1d
	// contentQueueMessage is a patient's message, forwarded by the intake
	// into the staff group.
	contentQueueMessage byte = 0x1e
	// contentQueueReply is a staff member's reply in a queue
	// conversation, which the intake forwards to the patient.
	contentQueueReply byte = 0x1f
	// contentQueueChange is a queue state change (queue.Change, 0x60).
	contentQueueChange byte = 0x20
	// contentTeamRequest is a staff member's request to the intake: block
	// or unblock a queue conversation's outsider, or the report of an
	// export for the record (for the team's figures and log).
	contentTeamRequest byte = 0x22
)

const (
	teamSecretsVersion = 1
	// maxTeamKeys is the most team key epochs a team keeps (one more at
	// each staff removal).
	maxTeamKeys = 255
	// Team request operations.
	teamBlock   = 1
	teamUnblock = 2
	teamExport  = 3 // level: stats.ExportConversation or stats.ExportMessage
)

// teamSecrets is the body of a contentTeamSecrets.
type teamSecrets struct {
	Group    [16]byte
	Count    uint64 // strictly increasing per team: a staff device takes only a newer one
	Name     string
	Space    protocol.ClaimSpaceID
	Relay    string
	Write    [32]byte
	ClaimKey [queue.KeySize]byte
	Intake   keys.Fingerprint
	Keys     []teamKeyWire // 1..maxTeamKeys, epochs strictly ascending
}

type teamKeyWire struct {
	Epoch uint32
	Key   [queue.KeySize]byte
}

// teamContent is the body of the team contents.
type teamContent struct {
	Secrets      *teamSecrets
	Conversation queue.ConversationID // 0x1e, 0x1f, 0x22
	Name         string               // 0x1e: the outsider's name
	Change       []byte               // 0x20: a queue.Change encoding
	Op, Level    byte                 // 0x22
}

func isTeamContent(t byte) bool {
	return t == contentTeamSecrets || isTeamGroupContent(t)
}

// isTeamGroupContent reports whether a content type is a team content
// that travels in the staff group's envelopes.
func isTeamGroupContent(t byte) bool {
	switch t {
	case contentQueueMessage, contentQueueReply, contentQueueChange, contentTeamRequest:
		return true
	}
	return false
}

// appendTeamBody encodes the body of a team content:
//
//	0x1d: 0x01 || group ID [16] || count u64 || u8 len || name || space ID [16] ||
//	      u16 len || relay || write capability [32] || claim key [32] ||
//	      intake identity [32] || u8 n || n × (epoch u32 || team key [32])
//	0x1e: conversation ID [16] || u8 len || outsider's name || u32 len || message content
//	0x1f: conversation ID [16] || u32 len || message content
//	0x20: u32 len || state change (SPEC 15.6, 0x60)
//	0x22: op u8 (1 block, 2 unblock, 3 export made) || level u8 (block 1..3,
//	      unblock 0, export 1 conversation or 2 one message) || conversation ID [16]
//
// A message content is the section 9 content without its signature (as
// in contentSentCopy): a text or files, with or without headers.
func appendTeamBody(b []byte, c *content) ([]byte, error) {
	tc := c.Team
	if tc == nil {
		return nil, ErrDecrypt
	}
	switch c.Type {
	case contentTeamSecrets:
		s := tc.Secrets
		if s == nil || checkName(s.Name) != nil || len(s.Keys) == 0 || len(s.Keys) > maxTeamKeys {
			return nil, ErrDecrypt
		}
		b = append(b, teamSecretsVersion)
		b = append(b, s.Group[:]...)
		b = binary.BigEndian.AppendUint64(b, s.Count)
		b = append(b, byte(len(s.Name)))
		b = append(b, s.Name...)
		b = append(b, s.Space[:]...)
		b, err := appendRelay(b, s.Relay)
		if err != nil {
			return nil, err
		}
		b = append(b, s.Write[:]...)
		b = append(b, s.ClaimKey[:]...)
		b = append(b, s.Intake[:]...)
		b = append(b, byte(len(s.Keys)))
		for i, k := range s.Keys {
			if i > 0 && k.Epoch <= s.Keys[i-1].Epoch {
				return nil, ErrDecrypt
			}
			b = binary.BigEndian.AppendUint32(b, k.Epoch)
			b = append(b, k.Key[:]...)
		}
		return b, nil
	case contentQueueMessage, contentQueueReply:
		if c.Inner == nil || !isMessageContent(c.Inner.Type) || c.Inner.Timer != 0 {
			return nil, ErrDecrypt
		}
		b = append(b, tc.Conversation[:]...)
		if c.Type == contentQueueMessage {
			if checkName(tc.Name) != nil {
				return nil, ErrDecrypt
			}
			b = append(b, byte(len(tc.Name)))
			b = append(b, tc.Name...)
		}
		at := len(b)
		b = binary.BigEndian.AppendUint32(b, 0)
		b, err := c.Inner.appendUnsigned(b)
		if err != nil {
			return nil, err
		}
		binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
		return b, nil
	case contentQueueChange:
		if _, err := queue.ParseChange(tc.Change); err != nil {
			return nil, ErrDecrypt
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(tc.Change)))
		return append(b, tc.Change...), nil
	case contentTeamRequest:
		if !validTeamRequest(tc.Op, tc.Level) {
			return nil, ErrDecrypt
		}
		b = append(b, tc.Op, tc.Level)
		return append(b, tc.Conversation[:]...), nil
	}
	return nil, ErrDecrypt
}

func validTeamRequest(op, level byte) bool {
	switch op {
	case teamBlock:
		return level >= byte(RestrictedService) && level <= byte(RestrictedReplies)
	case teamUnblock:
		return level == 0
	case teamExport:
		return level == stats.ExportConversation || level == stats.ExportMessage
	}
	return false
}

// parseTeamBody reads what appendTeamBody writes.
func parseTeamBody(r *protocol.Reader, c *content) bool {
	tc := &teamContent{}
	c.Team = tc
	switch c.Type {
	case contentTeamSecrets:
		if r.U8("team secrets version") != teamSecretsVersion {
			return false
		}
		s := &teamSecrets{}
		r.Array(s.Group[:], "group id")
		s.Count = r.U64("secrets count")
		s.Name = string(r.Take(int(r.U8("team name length")), "team name"))
		if r.Err() != nil || checkName(s.Name) != nil {
			return false
		}
		r.Array(s.Space[:], "claim space")
		if s.Relay = readRelay(r); s.Relay == "" {
			return false
		}
		r.Array(s.Write[:], "write capability")
		r.Array(s.ClaimKey[:], "claim key")
		r.Array(s.Intake[:], "intake identity")
		n := int(r.U8("team keys"))
		if n == 0 {
			return false
		}
		for i := range n {
			var k teamKeyWire
			k.Epoch = r.U32("epoch")
			r.Array(k.Key[:], "team key")
			if r.Err() != nil || (i > 0 && k.Epoch <= s.Keys[i-1].Epoch) {
				return false
			}
			s.Keys = append(s.Keys, k)
		}
		tc.Secrets = s
	case contentQueueMessage, contentQueueReply:
		r.Array(tc.Conversation[:], "queue conversation")
		if c.Type == contentQueueMessage {
			tc.Name = string(r.Take(int(r.U8("outsider name length")), "outsider name"))
			if r.Err() != nil || checkName(tc.Name) != nil {
				return false
			}
		}
		n := r.U32("message length")
		if n > maxCopiedSize {
			return false
		}
		inner := protocol.NewReader(r.Take(int(n), "message"))
		if r.Err() != nil {
			return false
		}
		in, ok := parseUnsigned(inner)
		if !ok || !isMessageContent(in.Type) || inner.Finish("message") != nil {
			return false
		}
		c.Inner = in
	case contentQueueChange:
		n := r.U32("state change length")
		if n > queue.MaxChangeSize {
			return false
		}
		tc.Change = bytes.Clone(r.Take(int(n), "state change"))
		if r.Err() != nil {
			return false
		}
		if _, err := queue.ParseChange(tc.Change); err != nil {
			return false
		}
	case contentTeamRequest:
		tc.Op, tc.Level = r.U8("request"), r.U8("level")
		r.Array(tc.Conversation[:], "queue conversation")
		if !validTeamRequest(tc.Op, tc.Level) {
			return false
		}
	default:
		return false
	}
	return r.Err() == nil
}
