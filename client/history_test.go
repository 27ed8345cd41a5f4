package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/backup"
	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/relay/relaytest"
)

// recordList is a stream of records in memory: a recordWriter and, from
// its start, a recordReader.
type recordList struct {
	recs []backup.Record
	next int
}

func (l *recordList) WriteRecord(typ backup.RecordType, data []byte) error {
	l.recs = append(l.recs, backup.Record{Type: typ, Data: bytes.Clone(data)})
	return nil
}

func (l *recordList) Next() (backup.Record, error) {
	if l.next == len(l.recs) {
		return backup.Record{}, io.EOF
	}
	l.next++
	return l.recs[l.next-1], nil
}

func (l *recordList) rewind() *recordList { return &recordList{recs: l.recs} }

// historyFixture is alice's history with bob: texts both ways, a subject,
// a reply, a file, a notice, a queued message; and another home ("other")
// that knows bob's identity under another name and its own record IDs.
type historyFixture struct {
	srv               *relaytest.Server
	aliceHome         string
	alice, bob, other *Client
	first, reply      Message // bob's message with a subject; alice's reply
	file              Message // alice's message with a file
	notice, alert     *Message
}

func newHistoryFixture(t *testing.T) *historyFixture {
	t.Helper()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, bob, aliceHome, _ := pair(t, srv)
	f := &historyFixture{srv: srv, aliceHome: aliceHome, alice: alice, bob: bob}
	var err error
	if f.first, err = bob.SendWith(ctx, "alice", "Handover moved to 14:00", &SendOptions{Subject: "Bed 12"}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if f.reply, err = alice.SendWith(ctx, "bob", "On my way <&>", &SendOptions{ReplyTo: f.first.ID}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(file, []byte("Ward 4 handover notes.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if f.file, err = alice.SendFiles(ctx, "bob", "the notes", []string{file}, nil); err != nil {
		t.Fatal(err)
	}
	// A notice, stored as a session reset stores it.
	err = alice.st.update(func(t *tx) error {
		r, err := t.contactByName("bob")
		if err != nil {
			return err
		}
		f.notice, err = storeNotice(t, r, [32]byte{7}, alice.now().UTC())
		return err
	})
	if err != nil || f.notice == nil {
		t.Fatalf("notice: %v", err)
	}
	// An alert about this person's own devices: a notice from Me to Me in
	// the conversation with Self, as a device-list change stores it.
	f.alert = &Message{ID: "a1e47a1e47a1e47a", From: Me, To: Me, Text: "Your new device OFFICE-PC was linked.", Notice: true}
	f.alert.Time, f.alert.Received = alice.now().UTC(), alice.now().UTC()
	err = alice.st.update(func(t *tx) error {
		self, err := t.self()
		if err != nil {
			return err
		}
		_, err = storeMessage(t, &contactRecord{Person: self}, f.alert)
		return err
	})
	if err != nil {
		t.Fatalf("alert: %v", err)
	}
	// The other home: bob is "Robert" there.
	f.other, _ = newTestClient(t, srv, "other")
	bobRec, err := alice.lookupContact("bob")
	if err != nil {
		t.Fatal(err)
	}
	err = f.other.st.update(func(t *tx) error {
		r := newContactRecord("Robert", bobRec.Person.Identity, bobRec.Cert, bobRec.DeviceID, bobRec.Relay, time.Now().UTC())
		return t.newContact(r, time.Now().UTC())
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// contactByName finds a contact in a transaction (tests).
func (t *tx) contactByName(name string) (*contactRecord, error) {
	cs, err := t.contacts()
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if c.Person.Name == name {
			return c, nil
		}
	}
	return nil, ErrUnknownContact
}

func storedMessages(t *testing.T, c *Client) []*store.Message {
	t.Helper()
	var out []*store.Message
	if err := c.st.view(func(t *tx) error {
		return t.Messages(func(m *store.Message) error { out = append(out, m); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// History written by one device and imported by another keeps every
// message with its ID, times, subject, reply, attachments (with their
// keys), direction and notices; people are matched by identity, so the
// messages land in the importer's own conversation with the same person,
// under the importer's name for them. Importing it again stores nothing.
func TestHistoryRoundTrip(t *testing.T) {
	t.Parallel()
	f := newHistoryFixture(t)
	ctx := testCtx(t)
	var l recordList
	if err := f.alice.writeHistory(ctx, &l); err != nil {
		t.Fatal(err)
	}
	var types []backup.RecordType
	for _, r := range l.recs {
		types = append(types, r.Type)
	}
	if fmt.Sprint(types) != "[4 5]" {
		t.Fatalf("record types %v, want one conversations record and one messages record", types)
	}
	st, err := f.other.importHistoryStats(ctx, l.rewind())
	if err != nil {
		t.Fatal(err)
	}
	src := storedMessages(t, f.alice)
	if st.Messages != len(src) || st.Skipped != 0 || st.Conversations != 0 {
		t.Fatalf("stats %+v, want %d messages, the conversation existing already", st, len(src))
	}
	got := storedMessages(t, f.other)
	if len(got) != len(src) {
		t.Fatalf("%d messages imported, want %d", len(got), len(src))
	}
	var robert *contactRecord
	var convID []byte
	f.other.st.view(func(t *tx) (err error) {
		robert, err = t.contactByName("Robert")
		convID = t.DirectConversationID(robert.Person.ID)
		return err
	})
	for i, s := range src {
		g := got[i]
		if s.ID == f.alert.ID {
			// Alice's own conversation: "other" does not know her.
			if g.Conversation != nil || g.From != Me || g.To != Me || !g.Notice {
				t.Errorf("alert imported as %+v", g)
			}
			continue
		}
		if g.ID != s.ID || !g.Time.Equal(s.Time) || !g.Received.Equal(s.Received) || g.Text != s.Text ||
			g.Subject != s.Subject || g.ReplyTo != s.ReplyTo || g.Outgoing != s.Outgoing || g.Notice != s.Notice {
			t.Errorf("message %d: got %+v, want %+v", i, g, s)
		}
		if !bytes.Equal(g.Conversation, convID) {
			t.Errorf("message %d is not in the importer's conversation with Robert", i)
		}
		wantFrom, wantTo := "Robert", Me
		if s.Outgoing {
			wantFrom, wantTo = Me, "Robert"
		}
		if g.From != wantFrom || g.To != wantTo {
			t.Errorf("message %d: %s > %s, want %s > %s", i, g.From, g.To, wantFrom, wantTo)
		}
		if !s.Outgoing && !s.Notice && !bytes.Equal(g.Sender, robert.ID) {
			t.Errorf("message %d: sender %x, want the importer's device record of Robert", i, g.Sender)
		}
		if len(g.Attachments) != len(s.Attachments) {
			t.Fatalf("message %d: %d attachments, want %d", i, len(g.Attachments), len(s.Attachments))
		}
		for j := range s.Attachments {
			a, b := g.Attachments[j], s.Attachments[j]
			if !bytes.Equal(a.Blob, b.Blob) || !bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.Digest, b.Digest) ||
				a.PlainSize != b.PlainSize || a.CipherSize != b.CipherSize || a.Name != b.Name || a.MediaType != b.MediaType {
				t.Errorf("message %d attachment %d: got %+v, want %+v", i, j, a, b)
			}
		}
	}
	for _, want := range []string{f.first.ID, f.reply.ID, f.file.ID, f.notice.ID} {
		m, err := f.other.Message(want)
		if err != nil {
			t.Errorf("message %s not imported: %v", want, err)
		}
		if want == f.reply.ID && m.ReplyTo != f.first.ID {
			t.Errorf("reply-to %q, want %q", m.ReplyTo, f.first.ID)
		}
		if want == f.notice.ID && !m.Notice {
			t.Error("the notice is no longer a notice")
		}
	}

	// The same history again: nothing new.
	st, err = f.other.importHistoryStats(ctx, l.rewind())
	if err != nil || st.Messages != 0 || st.Skipped != len(src) {
		t.Fatalf("second import: %+v, %v; want every message skipped", st, err)
	}
	if n := len(storedMessages(t, f.other)); n != len(src) {
		t.Fatalf("%d messages after the second import, want %d", n, len(src))
	}
}

// A person the importer does not know: the conversation is left out and
// the messages are kept without one, under the names they were written
// with; a queued message is stored with a send error, not queued.
func TestHistoryUnknownPerson(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, _, _, _ := pair(t, srv)
	other, _ := newTestClient(t, srv, "other")
	srv.Stop()
	if _, err := alice.Send(ctx, "bob", "waits in the outbox"); !errors.Is(err, ErrQueued) {
		t.Fatalf("send with the relay down: %v, want ErrQueued", err)
	}
	// Written while the message still waits.
	var l recordList
	if err := alice.writeHistory(ctx, &l); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if err := other.importHistory(ctx, l.rewind()); err != nil {
		t.Fatal(err)
	}
	got := storedMessages(t, other)
	if len(got) != 1 {
		t.Fatalf("%d messages, want 1", len(got))
	}
	m := got[0]
	if m.Conversation != nil || m.From != Me || m.To != "bob" || m.Queued || m.SendError != unsentNote {
		t.Fatalf("imported %+v", m)
	}
}

// validMessagesRecord is a record of one message that imports.
func validHistoryMessage() map[string]any {
	return map[string]any{
		"id": "0123456789abcdef", "from": "Alice", "to": Me, "text": "hello",
		"time": "2026-12-06T12:00:00Z", "received": "2026-12-06T12:00:01Z",
	}
}

func messagesRecord(t testing.TB, msgs ...map[string]any) backup.Record {
	b, err := json.Marshal(map[string]any{"v": 1, "messages": msgs})
	if err != nil {
		t.Fatal(err)
	}
	return backup.Record{Type: backup.RecordMessages, Data: b}
}

// A record that breaks a field's rule or a limit is refused with an
// error that says which, and nothing of the import is stored, not even
// the valid records before it.
func TestHistoryImportRefusesBadRecords(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	c, _ := newTestClient(t, srv, "c")
	with := func(k string, v any) map[string]any {
		m := validHistoryMessage()
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	attachment := func(k string, v any) map[string]any {
		a := map[string]any{
			"blob": bytes.Repeat([]byte{1}, 32), "key": bytes.Repeat([]byte{2}, 32), "digest": bytes.Repeat([]byte{3}, 32),
			"size": 10, "cipher_size": 65552, "name": "a.txt", "type": "text/plain",
		}
		a[k] = v
		return with("attachments", []any{a})
	}
	many := make([]map[string]any, historyBatch+1)
	for i := range many {
		many[i] = with("id", fmt.Sprintf("%016x", i))
	}
	tests := []struct {
		name string
		rec  backup.Record
		want string
	}{
		{"not JSON", backup.Record{Type: backup.RecordMessages, Data: []byte("{")}, "does not decode"},
		{"data after the value", backup.Record{Type: backup.RecordMessages, Data: append(messagesRecord(t, validHistoryMessage()).Data, " {}"...)}, "does not decode"},
		{"unknown field", messagesRecord(t, with("colour", "red")), "does not decode: unknown field"},
		{"wrong version", backup.Record{Type: backup.RecordMessages, Data: []byte(`{"v":2,"messages":[]}`)}, "version 2"},
		{"no messages", messagesRecord(t), "0 messages in a record"},
		{"257 messages", messagesRecord(t, many...), "257 messages in a record"},
		{"short ID", messagesRecord(t, with("id", "0123")), "message ID"},
		{"upper-case ID", messagesRecord(t, with("id", "0123456789ABCDEF")), "message ID"},
		{"bad peer", messagesRecord(t, with("peer", "xyz")), "peer"},
		{"text too long", messagesRecord(t, with("text", strings.Repeat("x", MaxTextSize+1))), "text longer"},
		{"empty text, no files", messagesRecord(t, with("text", "")), "neither text nor attachments"},
		{"subject too long", messagesRecord(t, with("subject", strings.Repeat("s", MaxSubjectSize+1))), "subject"},
		{"subject with a newline", messagesRecord(t, with("subject", "a\nb")), "subject"},
		{"bad reply-to", messagesRecord(t, with("reply_to", "nope")), "reply-to"},
		{"name too long", messagesRecord(t, with("from", strings.Repeat("n", MaxNameSize+1))), "from or to"},
		{"incoming from me", messagesRecord(t, with("from", Me)), "incoming message"},
		{"outgoing to me", messagesRecord(t, with("outgoing", true)), "outgoing message"},
		{"time out of range", messagesRecord(t, with("time", "0001-01-01T00:00:00Z")), "time out of range"},
		{"no received time", messagesRecord(t, with("received", nil)), "time out of range"},
		{"send error on incoming", messagesRecord(t, with("send_error", "x")), "send state"},
		{"sender on a message without peer", messagesRecord(t, with("sender_device", strings.Repeat("ab", 32))), "sender device"},
		{"17 attachments", messagesRecord(t, with("attachments", make([]any, 17))), "17 attachments"},
		{"attachment key of 31 bytes", messagesRecord(t, attachment("key", bytes.Repeat([]byte{2}, 31))), "32 bytes"},
		{"attachment name too long", messagesRecord(t, attachment("name", strings.Repeat("n", MaxAttachmentNameSize+1))), "name longer"},
		{"attachment media type", messagesRecord(t, attachment("type", "text/\x01")), "media type"},
		{"attachment sizes", messagesRecord(t, attachment("cipher_size", 100)), "sizes"},
		{"conversation type", backup.Record{Type: backup.RecordConversations, Data: []byte(`{"v":1,"conversations":[{"type":2,"peer":"` + strings.Repeat("ab", 32) + `","created":"2026-12-06T12:00:00Z"}]}`)}, "conversation type 2"},
		{"conversation peer", backup.Record{Type: backup.RecordConversations, Data: []byte(`{"v":1,"conversations":[{"type":1,"peer":"ab","created":"2026-12-06T12:00:00Z"}]}`)}, "conversation peer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := validHistoryMessage()
			good["id"] = "fedcba9876543210"
			l := &recordList{recs: []backup.Record{messagesRecord(t, good), tt.rec}}
			err := c.importHistory(ctx, l)
			if !errors.Is(err, ErrInvalidHistory) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("import: %v; want ErrInvalidHistory saying %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "(record 2") {
				t.Errorf("error %q does not name the record", err)
			}
			if n := len(storedMessages(t, c)); n != 0 {
				t.Fatalf("%d messages stored after a refused import", n)
			}
		})
	}
	// The valid record alone imports.
	if err := c.importHistory(ctx, &recordList{recs: []backup.Record{messagesRecord(t, validHistoryMessage())}}); err != nil {
		t.Fatal(err)
	}
	if n := len(storedMessages(t, c)); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}

// A read error in the middle of the stream (a damaged backup) leaves
// nothing imported.
func TestHistoryImportReadError(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	c, _ := newTestClient(t, srv, "c")
	l := &failingReader{recs: []backup.Record{messagesRecord(t, validHistoryMessage())}, err: backup.ErrDamaged}
	if err := c.importHistory(ctx, l); !errors.Is(err, backup.ErrDamaged) {
		t.Fatalf("import: %v, want the read error", err)
	}
	if n := len(storedMessages(t, c)); n != 0 {
		t.Fatalf("%d messages stored after a failed import", n)
	}
}

type failingReader struct {
	recs []backup.Record
	err  error
}

func (f *failingReader) Next() (backup.Record, error) {
	if len(f.recs) == 0 {
		return backup.Record{}, f.err
	}
	r := f.recs[0]
	f.recs = f.recs[1:]
	return r, nil
}

// FuzzHistoryRecord: the decoding of conversations and messages records
// never panics, and whatever it accepts passes its checks and encodes to a
// record that decodes to the same entries.
func FuzzHistoryRecord(f *testing.F) {
	f.Add(byte(5), messagesRecord(f, validHistoryMessage()).Data)
	f.Add(byte(4), []byte(`{"v":1,"conversations":[{"type":1,"peer":"`+strings.Repeat("ab", 32)+`","created":"2026-12-06T12:00:00Z"}]}`))
	f.Add(byte(5), []byte(`{"v":1,"messages":[{"id":"0123456789abcdef","from":"me","to":"Bob","text":"","outgoing":true,"time":"2026-12-06T12:00:00Z","received":"2026-12-06T12:00:00Z","attachments":[{"blob":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=","key":"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=","digest":"AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=","size":1,"cipher_size":65552,"name":"a"}]}]}`))
	f.Fuzz(func(t *testing.T, typ byte, data []byte) {
		if typ%2 == 0 {
			cs, err := decodeConversations(data)
			if err != nil {
				if !errors.Is(err, ErrInvalidHistory) {
					t.Fatalf("error %v does not match ErrInvalidHistory", err)
				}
				return
			}
			b, err := json.Marshal(&historyConversations{V: historyVersion, Conversations: cs})
			if err != nil {
				t.Fatal(err)
			}
			again, err := decodeConversations(b)
			if err != nil || len(again) != len(cs) {
				t.Fatalf("re-encoded conversations do not decode: %v", err)
			}
			for i := range cs {
				if again[i].Peer != cs[i].Peer || again[i].Title != cs[i].Title || !again[i].Created.Equal(cs[i].Created) {
					t.Fatalf("conversation %d changed: %+v, %+v", i, again[i], cs[i])
				}
			}
			return
		}
		ms, err := decodeMessages(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidHistory) {
				t.Fatalf("error %v does not match ErrInvalidHistory", err)
			}
			return
		}
		var l recordList
		for i := range ms {
			if err := ms[i].check(); err != nil {
				t.Fatalf("accepted message fails its check: %v", err)
			}
		}
		b, err := json.Marshal(&historyMessages{V: historyVersion, Messages: ms})
		if err != nil {
			t.Fatal(err)
		}
		l.WriteRecord(backup.RecordMessages, b)
		again, err := decodeMessages(l.recs[0].Data)
		if err != nil || len(again) != len(ms) {
			t.Fatalf("re-encoded messages do not decode: %v", err)
		}
		for i := range ms {
			a, b := again[i], ms[i]
			if a.ID != b.ID || a.Text != b.Text || a.Subject != b.Subject || !a.Time.Equal(b.Time) || len(a.Attachments) != len(b.Attachments) {
				t.Fatalf("message %d changed: %+v, %+v", i, a, b)
			}
		}
	})
}
