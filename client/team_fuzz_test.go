package client

import (
	"bytes"
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
	inner := &content{Type: contentTextHeaders, Sender: dev, SentMS: 4, Text: "refill?", Urgent: true}
	files := &content{Type: contentAttachment, Sender: dev, SentMS: 5, Text: "photo", Attachments: []attachmentRef{seedAttachment()}}
	return []*content{
		{Type: contentTeamSecrets, Sender: dev, SentMS: 1, Team: &teamContent{Secrets: sec}},
		{Type: contentQueueMessage, Sender: dev, SentMS: 2, Team: &teamContent{Conversation: queue.ConversationID{7}, Name: "pat"}, Inner: inner},
		{Type: contentQueueReply, Sender: dev, SentMS: 3, Team: &teamContent{Conversation: queue.ConversationID{7}}, Inner: files},
		{Type: contentQueueChange, Sender: dev, SentMS: 4, Team: &teamContent{Change: ch}},
		{Type: contentTeamRequest, Sender: dev, SentMS: 5, Team: &teamContent{Op: teamBlock, Level: byte(RestrictedNew), Conversation: queue.ConversationID{7}}},
		{Type: contentTeamRequest, Sender: dev, SentMS: 6, Team: &teamContent{Op: teamUnblock, Conversation: queue.ConversationID{7}}},
		{Type: contentTeamRequest, Sender: dev, SentMS: 7, Team: &teamContent{Op: teamExport, Level: stats.ExportMessage, Conversation: queue.ConversationID{7}}},
	}
}

// TestTeamContentsRefused: the encoder refuses what the decoder would
// not accept (unordered epochs, a request level out of range, a timed
// message, a malformed state change, an export report of no detail).
func TestTeamContentsRefused(t *testing.T) {
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
	s[6].Team.Level = 0
	for i, ct := range s[:7] {
		if i == 2 {
			continue
		}
		if _, err := ct.marshalSession(); err == nil {
			t.Errorf("content %d encoded", i)
		}
	}
}

// FuzzTeamContent: a session plaintext carrying a team content (0x1d,
// 0x1e, 0x1f, 0x20, 0x22) parses exactly or is ErrDecrypt, never panics,
// and what parses re-encodes to the same bytes.
func FuzzTeamContent(f *testing.F) {
	for _, ct := range teamSeeds(f) {
		b, err := ct.marshalSession()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		ct, err := parseSessionContent(p)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("error %v is not ErrDecrypt", err)
			}
			return
		}
		b, err := ct.marshalSession()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, p[:len(b)]) || !bytes.Equal(p[len(b):], make([]byte, len(p)-len(b))) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// TestTeamRequestParsed: the parser takes a team request's op and level
// only in the pairs SPEC 15.9 allows (op 3, export made, with detail 1 or
// 2), whatever the encoder would write.
func TestTeamRequestParsed(t *testing.T) {
	seed := teamSeeds(t)[6]
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
