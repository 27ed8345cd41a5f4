package client

import (
	"bytes"
	"encoding/binary"

	"github.com/postern/postern/client/internal/team/queue"
	"github.com/postern/postern/client/internal/team/stats"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Team contents (protocol/SPEC.md section 15.9). contentTeamSecrets and
// contentQueueHistory travel only in pairwise sessions (intake → staff
// device); the others
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
	// contentQueueReceipt is a queue read receipt of the staff's form
	// (queue.Receipt, 0x61 kind 2): which staff member read which of the
	// outsider's messages (queuereceipts.go).
	contentQueueReceipt byte = 0x21
	// contentTeamRequest is a staff member's request to the intake: block
	// or unblock a queue conversation's outsider, or the report of an
	// export for the record (for the team's figures and log).
	contentTeamRequest byte = 0x22
	// contentQueueHistory carries open queue conversations (their
	// registers and messages) from the intake to a newly joined staff
	// device.
	contentQueueHistory byte = 0x24
)

// Limits of a queue history (SPEC.md 15.9): more goes in several
// contents.
const (
	// maxHistoryConversations bounds the conversations in one content.
	maxHistoryConversations = 32
	// maxHistoryMessages bounds the messages of one conversation in one
	// content.
	maxHistoryMessages = 64
	// maxHistorySize bounds a history's body, so that the content fits
	// one session envelope (as contentSync's operations).
	maxHistorySize = 61440
	// maxHistoryThread is the most messages of one conversation the
	// intake sends, the newest.
	maxHistoryThread = 256
	// History message kinds: who the message is from.
	historyOutsider = 1 // the outsider's, to the team
	historyTeam     = 2 // the team's (a staff reply the intake forwarded), to the outsider
	// History conversation flags.
	historyUrgent = 1 // the first message was urgent
	historyRole   = 2 // a role ID follows: the conversation is addressed to a role account
	// sealedValueFormat is the first byte of a sealed register value
	// (SPEC.md 15.6).
	sealedValueFormat = 0x01
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
	Role         [16]byte             // 0x1e: the role account addressed (roles.go); zero: none
	Change       []byte               // 0x20: a queue.Change encoding
	Receipt      []byte               // 0x21: a queue.Receipt encoding, the staff's form
	Op, Level    byte                 // 0x22
	History      *queueHistory        // 0x24
}

// queueHistory is the body of a contentQueueHistory.
type queueHistory struct {
	Group         [16]byte
	Conversations []queueHistoryConv // 1..maxHistoryConversations, IDs strictly ascending
}

// queueHistoryConv is one open queue conversation in a history: its
// register (Version 0: never written, no Sealed) and some of its messages.
type queueHistoryConv struct {
	Conversation queue.ConversationID
	Outsider     string
	Opened       uint64 // the patient's first message's sent time (the register's initial value)
	Urgent       bool
	Role         [16]byte // the role account it is addressed to (roles.go); zero: none
	Version      uint64
	Sealed       []byte
	Messages     []queueHistoryMsg // 0..maxHistoryMessages
}

// queueHistoryMsg is one message of a queue conversation as the intake
// holds it. ID is its displayed ID (SPEC.md section 9), which the
// receiver stores it under: for the outsider's messages the same ID a
// forward (contentQueueMessage) of it gets, so it is stored once.
type queueHistoryMsg struct {
	Kind    byte // historyOutsider or historyTeam
	ID      [replyIDSize]byte
	Message *content // a message content without signature, no timer
}

func isTeamContent(t byte) bool {
	return t == contentTeamSecrets || t == contentQueueHistory || isTeamGroupContent(t)
}

// isTeamGroupContent reports whether a content type is a team content
// that travels in the staff group's envelopes.
func isTeamGroupContent(t byte) bool {
	switch t {
	case contentQueueMessage, contentQueueReply, contentQueueChange, contentQueueReceipt, contentTeamRequest:
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
//	      [|| role ID [16], non-zero, only for a conversation addressed to a role account]
//	0x1f: conversation ID [16] || u32 len || message content
//	0x20: u32 len || state change (SPEC 15.6, 0x60)
//	0x21: u32 len || queue receipt (SPEC 15.6, 0x61), kind 2 only
//	0x22: op u8 (1 block, 2 unblock, 3 export made) || level u8 (block 1..3,
//	      unblock 0, export 1 conversation or 2 one message) || conversation ID [16]
//	0x24: group ID [16] || u8 n || n × conversation (appendHistory)
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
		if c.Type == contentQueueMessage && tc.Role != ([16]byte{}) {
			b = append(b, tc.Role[:]...)
		}
		return b, nil
	case contentQueueChange:
		if _, err := queue.ParseChange(tc.Change); err != nil {
			return nil, ErrDecrypt
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(tc.Change)))
		return append(b, tc.Change...), nil
	case contentQueueReceipt:
		if _, err := staffReceipt(tc.Receipt); err != nil {
			return nil, ErrDecrypt
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(tc.Receipt)))
		return append(b, tc.Receipt...), nil
	case contentTeamRequest:
		if !validTeamRequest(tc.Op, tc.Level) {
			return nil, ErrDecrypt
		}
		b = append(b, tc.Op, tc.Level)
		return append(b, tc.Conversation[:]...), nil
	case contentQueueHistory:
		return appendHistory(b, tc.History)
	}
	return nil, ErrDecrypt
}

// appendHistory encodes a queue history's body:
//
//	group ID [16] || u8 n (1..32) || n × conversation, IDs strictly ascending
//	conversation = conversation ID [16] || u8 len || outsider's name ||
//	               opened u64 || flags u8 (bit 0 urgent, bit 1 role) ||
//	               [role ID [16], non-zero, if bit 1] || version u64 ||
//	               [sealed value [173] if version ≥ 1] || u8 m (0..64) || m × message
//	message      = kind u8 (1 outsider, 2 team) || displayed ID [8] ||
//	               u32 len || message content without signature
//
// The whole body is at most maxHistorySize bytes.
func appendHistory(b []byte, h *queueHistory) ([]byte, error) {
	if h == nil || len(h.Conversations) == 0 || len(h.Conversations) > maxHistoryConversations {
		return nil, ErrDecrypt
	}
	start := len(b)
	b = append(b, h.Group[:]...)
	b = append(b, byte(len(h.Conversations)))
	for i := range h.Conversations {
		hc := &h.Conversations[i]
		if i > 0 && bytes.Compare(hc.Conversation[:], h.Conversations[i-1].Conversation[:]) <= 0 {
			return nil, ErrDecrypt
		}
		var err error
		if b, err = appendHistoryConversation(b, hc); err != nil {
			return nil, err
		}
	}
	if len(b)-start > maxHistorySize {
		return nil, ErrDecrypt
	}
	return b, nil
}

func appendHistoryConversation(b []byte, hc *queueHistoryConv) ([]byte, error) {
	if checkName(hc.Outsider) != nil || hc.Opened > queue.MaxTime || len(hc.Messages) > maxHistoryMessages ||
		(hc.Version == 0) != (len(hc.Sealed) == 0) || (hc.Version > 0 && (len(hc.Sealed) != queue.SealedValueSize || hc.Sealed[0] != sealedValueFormat)) {
		return nil, ErrDecrypt
	}
	b = append(b, hc.Conversation[:]...)
	b = append(b, byte(len(hc.Outsider)))
	b = append(b, hc.Outsider...)
	b = binary.BigEndian.AppendUint64(b, hc.Opened)
	var flags byte
	if hc.Urgent {
		flags = historyUrgent
	}
	if hc.Role != ([16]byte{}) {
		flags |= historyRole
	}
	b = append(b, flags)
	if flags&historyRole != 0 {
		b = append(b, hc.Role[:]...)
	}
	b = binary.BigEndian.AppendUint64(b, hc.Version)
	b = append(b, hc.Sealed...)
	b = append(b, byte(len(hc.Messages)))
	for _, m := range hc.Messages {
		if (m.Kind != historyOutsider && m.Kind != historyTeam) || m.Message == nil ||
			!isMessageContent(m.Message.Type) || m.Message.Timer != 0 {
			return nil, ErrDecrypt
		}
		b = append(b, m.Kind)
		b = append(b, m.ID[:]...)
		at := len(b)
		b = binary.BigEndian.AppendUint32(b, 0)
		var err error
		if b, err = m.Message.appendUnsigned(b); err != nil {
			return nil, err
		}
		if len(b)-at-4 > maxCopiedSize {
			return nil, ErrDecrypt
		}
		binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	}
	return b, nil
}

// parseHistory reads what appendHistory writes.
func parseHistory(r *protocol.Reader) *queueHistory {
	if r.Len() > maxHistorySize {
		return nil
	}
	h := &queueHistory{}
	r.Array(h.Group[:], "group id")
	n := int(r.U8("history conversations"))
	if r.Err() != nil || n == 0 || n > maxHistoryConversations {
		return nil
	}
	for i := range n {
		var hc queueHistoryConv
		r.Array(hc.Conversation[:], "queue conversation")
		if i > 0 && bytes.Compare(hc.Conversation[:], h.Conversations[i-1].Conversation[:]) <= 0 {
			return nil
		}
		hc.Outsider = string(r.Take(int(r.U8("outsider name length")), "outsider name"))
		hc.Opened = r.U64("opened")
		flags := r.U8("flags")
		if flags&historyRole != 0 {
			r.Array(hc.Role[:], "role")
			if hc.Role == ([16]byte{}) {
				return nil
			}
		}
		hc.Version = r.U64("register version")
		if r.Err() != nil || checkName(hc.Outsider) != nil || hc.Opened > queue.MaxTime || flags&^(historyUrgent|historyRole) != 0 {
			return nil
		}
		hc.Urgent = flags&historyUrgent != 0
		if hc.Version > 0 {
			hc.Sealed = bytes.Clone(r.Take(queue.SealedValueSize, "sealed value"))
			if r.Err() != nil || hc.Sealed[0] != sealedValueFormat {
				return nil
			}
		}
		m := int(r.U8("history messages"))
		if r.Err() != nil || m > maxHistoryMessages {
			return nil
		}
		for range m {
			hm := queueHistoryMsg{Kind: r.U8("history message kind")}
			r.Array(hm.ID[:], "message id")
			size := r.U32("message length")
			if r.Err() != nil || (hm.Kind != historyOutsider && hm.Kind != historyTeam) || size > maxCopiedSize {
				return nil
			}
			inner := protocol.NewReader(r.Take(int(size), "message"))
			if r.Err() != nil {
				return nil
			}
			in, ok := parseUnsigned(inner)
			if !ok || !isMessageContent(in.Type) || in.Timer != 0 || inner.Finish("message") != nil {
				return nil
			}
			hm.Message = in
			hc.Messages = append(hc.Messages, hm)
		}
		h.Conversations = append(h.Conversations, hc)
	}
	if r.Err() != nil {
		return nil
	}
	return h
}

// staffReceipt parses a queue receipt that travels among staff: only the
// staff's form (kind 2); the outsider's form never goes to the staff
// group.
func staffReceipt(b []byte) (queue.Receipt, error) {
	r, err := queue.ParseReceipt(b)
	if err == nil && !r.ForStaff {
		err = queue.ErrMalformed
	}
	return r, err
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
		if !ok || !isMessageContent(in.Type) || in.Timer != 0 || inner.Finish("message") != nil {
			return false // a timed message (0x18 kind 2) is not a queue message: no timer
		}
		c.Inner = in
		if c.Type == contentQueueMessage && r.Len() > 0 {
			// The role account the conversation is addressed to: present
			// only when there is one (a zero ID is not canonical).
			r.Array(tc.Role[:], "role")
			if r.Err() != nil || tc.Role == ([16]byte{}) {
				return false
			}
		}
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
	case contentQueueReceipt:
		n := r.U32("queue receipt length")
		if n > queue.MaxReceiptSize {
			return false
		}
		tc.Receipt = bytes.Clone(r.Take(int(n), "queue receipt"))
		if r.Err() != nil {
			return false
		}
		if _, err := staffReceipt(tc.Receipt); err != nil {
			return false
		}
	case contentTeamRequest:
		tc.Op, tc.Level = r.U8("request"), r.U8("level")
		r.Array(tc.Conversation[:], "queue conversation")
		if !validTeamRequest(tc.Op, tc.Level) {
			return false
		}
	case contentQueueHistory:
		if tc.History = parseHistory(r); tc.History == nil {
			return false
		}
	default:
		return false
	}
	return r.Err() == nil
}
