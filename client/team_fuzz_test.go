package client

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/postern/postern/client/internal/team/queue"
	"github.com/postern/postern/client/internal/team/stats"
	"github.com/postern/postern/keys"
)

// teamSeeds are one content of each team type.
func teamSeeds(tb testing.TB) []*content {
	var dev keys.Fingerprint
	dev[0] = 9
	sealed := make([]byte, queue.SealedValueSize)
	sealed[0] = 0x01
	ch, err := queue.Change{{Conversation: queue.ConversationID{1}, Version: 3, Sealed: sealed}}.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	sec := &teamSecrets{Count: 2, Name: "Pharmacy", Relay: "wss://relay.example.org",
		Keys: []teamKeyWire{{Epoch: 1, Key: [32]byte{1}}, {Epoch: 2, Key: [32]byte{2}}}}
	sec.ClaimKey[0] = 3
	rc, err := queue.Receipt{ForStaff: true, Conversation: queue.ConversationID{7}, Reader: queue.Identity{8},
		Messages: []queue.MessageID{{1}, {2}}}.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	inner := &content{Type: contentTextHeaders, Sender: dev, SentMS: 4, Text: "refill?", Urgent: true}
	files := &content{Type: contentAttachment, Sender: dev, SentMS: 5, Text: "photo", Attachments: []attachmentRef{seedAttachment()}}
	return []*content{
		{Type: contentTeamSecrets, Sender: dev, SentMS: 1, Team: &teamContent{Secrets: sec}},
		{Type: contentQueueMessage, Sender: dev, SentMS: 2, Team: &teamContent{Conversation: queue.ConversationID{7}, Name: "pat"}, Inner: inner},
		{Type: contentQueueReply, Sender: dev, SentMS: 3, Team: &teamContent{Conversation: queue.ConversationID{7}}, Inner: files},
		{Type: contentQueueChange, Sender: dev, SentMS: 4, Team: &teamContent{Change: ch}},
		{Type: contentTeamRequest, Sender: dev, SentMS: 5, Team: &teamContent{Op: teamBlock, Level: byte(RestrictedNew), Conversation: queue.ConversationID{7}}},
		{Type: contentTeamRequest, Sender: dev, SentMS: 6, Team: &teamContent{Op: teamUnblock, Conversation: queue.ConversationID{7}}},
		{Type: contentQueueReceipt, Sender: dev, SentMS: 7, Team: &teamContent{Receipt: rc}},
		{Type: contentQueueHistory, Sender: dev, SentMS: 8, Team: &teamContent{History: seedHistory(sealed, inner, files)}},
		{Type: contentTeamRequest, Sender: dev, SentMS: 9, Team: &teamContent{Op: teamExport, Level: stats.ExportMessage, Conversation: queue.ConversationID{7}}},
	}
}

// historySeed is the queue history among seeds.
func historySeed(seeds []*content) *content {
	for _, ct := range seeds {
		if ct.Type == contentQueueHistory {
			return ct
		}
	}
	panic("no queue history among the team seeds")
}

// seedHistory is a queue history of two conversations: one never
// written, with no messages; one with a register and a message of each
// kind.
func seedHistory(sealed []byte, inner, files *content) *queueHistory {
	h := &queueHistory{Group: [16]byte{4}, Conversations: []queueHistoryConv{
		{Conversation: queue.ConversationID{1}, Outsider: "quinn", Opened: 9},
		{Conversation: queue.ConversationID{7}, Outsider: "pat", Opened: 4, Urgent: true, Version: 3, Sealed: sealed,
			Messages: []queueHistoryMsg{{Kind: historyOutsider, ID: [8]byte{1}, Message: inner}, {Kind: historyTeam, ID: [8]byte{2}, Message: files}}},
	}}
	return h
}

// TestQueueHistoryRefused: the encoder refuses a history the decoder
// would not accept.
func TestQueueHistoryRefused(t *testing.T) {
	t.Parallel()
	for name, edit := range map[string]func(h *queueHistory){
		"no conversations":           func(h *queueHistory) { h.Conversations = nil },
		"conversations out of order": func(h *queueHistory) { h.Conversations[0], h.Conversations[1] = h.Conversations[1], h.Conversations[0] },
		"a conversation twice":       func(h *queueHistory) { h.Conversations[1].Conversation = h.Conversations[0].Conversation },
		"no outsider's name":         func(h *queueHistory) { h.Conversations[0].Outsider = "" },
		"opened after MaxTime":       func(h *queueHistory) { h.Conversations[0].Opened = queue.MaxTime + 1 },
		"a version without a value":  func(h *queueHistory) { h.Conversations[0].Version = 1 },
		"a value at version 0":       func(h *queueHistory) { h.Conversations[1].Version = 0 },
		"a value's format":           func(h *queueHistory) { h.Conversations[1].Sealed = append([]byte{2}, h.Conversations[1].Sealed[1:]...) },
		"a short value":              func(h *queueHistory) { h.Conversations[1].Sealed = h.Conversations[1].Sealed[1:] },
		"a message kind":             func(h *queueHistory) { h.Conversations[1].Messages[0].Kind = 3 },
		"a timed message":            func(h *queueHistory) { h.Conversations[1].Messages[0].Message.Timer = 60 },
		"not a message":              func(h *queueHistory) { h.Conversations[1].Messages[0].Message.Type = contentReset },
		"too many messages": func(h *queueHistory) {
			for range maxHistoryMessages + 1 {
				h.Conversations[0].Messages = append(h.Conversations[0].Messages, h.Conversations[1].Messages[0])
			}
		},
		"too many conversations": func(h *queueHistory) {
			for i := range maxHistoryConversations {
				h.Conversations = append(h.Conversations, queueHistoryConv{Conversation: queue.ConversationID{8, byte(i)}, Outsider: "x"})
			}
		},
		"too large": func(h *queueHistory) {
			big := h.Conversations[1].Messages[0]
			big.Message = &content{Type: contentText, Text: string(make([]byte, MaxTextSize))}
			for range 4 {
				h.Conversations[0].Messages = append(h.Conversations[0].Messages, big)
			}
		},
	} {
		s := teamSeeds(t)
		ct := historySeed(s)
		edit(ct.Team.History)
		if _, err := ct.marshalSession(); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

// FuzzQueueHistory: a queue history body (content 0x24) parses exactly
// or not at all, never panics, and what parses re-encodes to the same
// bytes (a team message's sender ID, which names its writer, among them).
func FuzzQueueHistory(f *testing.F) {
	s := teamSeeds(f)
	b, err := historySeed(s).marshalSession()
	if err != nil {
		f.Fatal(err)
	}
	const prefix = 4 + 1 + 32 + 16 + 8 // padding length, type, sender, message id, sent
	f.Add(b[prefix:])
	// A staff reply whose sender ID names the staff member who wrote it.
	hs := historySeed(s)
	hs.Team.History.Conversations[1].Messages[1].Message.Sender = keys.Fingerprint{0x5a, 1, 2, 3}
	named, err := hs.marshalSession()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(named[prefix:])
	f.Fuzz(func(t *testing.T, body []byte) {
		p := binary.BigEndian.AppendUint32(nil, uint32(prefix-4+len(body)))
		p = append(p, b[4:prefix]...)
		p = append(p, body...)
		ct, err := parseSessionContent(p)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("error %v is not ErrDecrypt", err)
			}
			return
		}
		again, err := ct.marshalSession()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, p) {
			t.Fatal("re-encoding differs")
		}
	})
}

// TestTeamContentsRefused: the encoder refuses what the decoder would
// not accept (unordered epochs, a request level out of range, a timed
// message, a malformed state change, a queue receipt of the patient's
// form among staff or cut short, an export report of no detail).
func TestTeamContentsRefused(t *testing.T) {
	t.Parallel()
	for i, ct := range teamSeeds(t) {
		if _, err := ct.marshalSession(); err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
	}
	s := teamSeeds(t)
	s[0].Team.Secrets.Keys[1].Epoch = 1
	s[1].Inner.Timer = 60
	s[3].Team.Change = s[3].Team.Change[:10]
	s[4].Team.Level = 4
	s[5].Team.Level = 1
	s[6].Team.Receipt, _ = queue.Receipt{Messages: []queue.MessageID{{1}}}.MarshalBinary()
	s[8].Team.Level = 0
	for i, ct := range s[:9] {
		if i == 2 || i == 7 {
			continue
		}
		if _, err := ct.marshalSession(); err == nil {
			t.Errorf("content %d encoded", i)
		}
	}
	// The decoder refuses them too: a patient's form, and a staff form
	// one byte short, each in a well-formed 0x21 wrapper.
	good, err := teamSeeds(t)[6].marshalSession()
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{"patient's form": s[6].Team.Receipt, "cut short": teamSeeds(t)[6].Team.Receipt[:40]} {
		p := rewrapReceipt(t, good, body)
		if _, err := parseSessionContent(p); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: parsed (%v)", name, err)
		}
	}
}

// rewrapReceipt replaces the queue receipt in the encoded 0x21 content
// good (its last field: u32 length, receipt, then padding) with body.
func rewrapReceipt(t *testing.T, good, body []byte) []byte {
	t.Helper()
	rc := teamSeeds(t)[6].Team.Receipt
	at := bytes.Index(good, rc)
	if at < 4 {
		t.Fatal("the seed's receipt is not in its encoding")
	}
	p := append(bytes.Clone(good[:at-4]), byte(len(body)>>24), byte(len(body)>>16), byte(len(body)>>8), byte(len(body)))
	p = append(p, body...)
	return append(p, good[at+len(rc):]...)
}

// TestQueueMessageTimerRefused: a queue message or reply whose message
// carries a timer (a 0x18 content inside) does not parse: the encoder
// refuses it, so accepting it would not re-encode.
func TestQueueMessageTimerRefused(t *testing.T) {
	t.Parallel()
	for _, typ := range []byte{contentQueueMessage, contentQueueReply} {
		ct := &content{Type: typ, Team: &teamContent{Conversation: queue.ConversationID{1}, Name: "pat"}, Inner: &content{Type: contentText, Text: "x"}}
		p, err := ct.marshalSession()
		if err != nil {
			t.Fatal(err)
		}
		plain, err := (&content{Type: contentText, Text: "x"}).appendUnsigned(nil)
		if err != nil {
			t.Fatal(err)
		}
		timed, err := (&content{Type: contentText, Text: "x", Timer: 60}).appendUnsigned(nil)
		if err != nil {
			t.Fatal(err)
		}
		// The same content with the timed message in place of the plain one.
		i := bytes.Index(p, plain)
		q := binary.BigEndian.AppendUint32(nil, 0)
		q = append(q, p[4:i-4]...)
		q = binary.BigEndian.AppendUint32(q, uint32(len(timed)))
		q = append(q, timed...)
		binary.BigEndian.PutUint32(q, uint32(len(q)-4))
		if _, err := parseSessionContent(p); err != nil {
			t.Fatalf("type %#x: the plain one: %v", typ, err)
		}
		if _, err := parseSessionContent(q); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("type %#x: a timed message parsed: %v", typ, err)
		}
	}
}

// FuzzTeamContent: a session plaintext carrying a team content (0x1d,
// 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x24) parses exactly or is ErrDecrypt, never panics,
// and what parses re-encodes to the same bytes.
func FuzzTeamContent(f *testing.F) {
	addSessionSeeds(f, teamSeeds(f)...)
	fuzzSessionContent(f, nil)
}

// TestTeamRequestParsed: the parser takes a team request's op and level
// only in the pairs SPEC 15.9 allows (op 3, export made, with detail 1 or
// 2), whatever the encoder would write.
func TestTeamRequestParsed(t *testing.T) {
	t.Parallel()
	seed := teamSeeds(t)[8]
	b, err := seed.marshalSession()
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(b, []byte{teamExport, stats.ExportMessage, 7})
	if at < 0 {
		t.Fatal("the request's op and level not found")
	}
	for _, tc := range []struct {
		op, level byte
		ok        bool
	}{
		{teamExport, stats.ExportConversation, true}, {teamExport, stats.ExportMessage, true},
		{teamExport, 0, false}, {teamExport, 3, false}, {4, 1, false}, {0, 0, false}, {teamUnblock, 1, false},
	} {
		p := bytes.Clone(b)
		p[at], p[at+1] = tc.op, tc.level
		ct, err := parseSessionContent(p)
		if ok := err == nil; ok != tc.ok {
			t.Errorf("op %d level %d: parsed %v (%v)", tc.op, tc.level, ok, err)
			continue
		}
		if err != nil && !errors.Is(err, ErrDecrypt) {
			t.Errorf("op %d level %d: %v is not ErrDecrypt", tc.op, tc.level, err)
		}
		if tc.ok && (ct.Team.Op != tc.op || ct.Team.Level != tc.level) {
			t.Errorf("op %d level %d: parsed as %+v", tc.op, tc.level, ct.Team)
		}
	}
}
