package client

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/postern/postern/client/internal/team/senderkey"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/people"
	"github.com/postern/postern/client/internal/team/directory"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

// envelopeLog records what a Client's envelope hook sees.
type envelopeLog struct {
	mu       sync.Mutex
	sent     []string // "kind/size"
	received []string
}

func watch(c *Client) *envelopeLog {
	l := &envelopeLog{}
	h := func(out bool, env []byte) {
		e := fmt.Sprintf("%d/%d", env[1], len(env))
		l.mu.Lock()
		defer l.mu.Unlock()
		if out {
			l.sent = append(l.sent, e)
		} else {
			l.received = append(l.received, e)
		}
	}
	c.envelopeHook.Store(&h)
	return l
}

func (l *envelopeLog) get() (sent, received []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.sent...), append([]string(nil), l.received...)
}

func notices(t *testing.T, c *Client) []Message {
	t.Helper()
	in, err := c.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	var out []Message
	for _, m := range in {
		if m.Notice {
			out = append(out, m)
		}
	}
	return out
}

func send(t *testing.T, c *Client, to, text string) {
	t.Helper()
	if _, err := c.Send(testCtx(t), to, text); err != nil {
		t.Fatalf("Send %q: %v", text, err)
	}
}

func syncWant(t *testing.T, c *Client, what string, want ...string) {
	t.Helper()
	got, err := c.Sync(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, what, got, want...)
}

// TestSessionEnvelopes: a conversation both ways travels in KindSession
// envelopes only; after the handshake and the first PQ steps, a 100-byte
// text is a 1024-byte envelope.
func TestSessionEnvelopes(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	al, bl := watch(alice), watch(bob)
	text := strings.Repeat("x", 100)
	for i := range 3 {
		send(t, alice, "bob", text)
		syncWant(t, bob, "bob", "alice>me:"+text)
		send(t, bob, "alice", fmt.Sprint("reply ", i))
		syncWant(t, alice, "alice", fmt.Sprint("bob>me:reply ", i))
	}
	session := fmt.Sprint(protocol.KindSession)
	as, ar := al.get()
	bs, br := bl.get()
	// The handshake happened in pair (Accept starts the session, the
	// route and its acknowledgement complete it, whichever Init won the
	// simultaneous initiation): a side's first envelope may still carry
	// its next PQ step (4 KiB); every later one is 1 KiB. Each side sends
	// its three texts and a delivered receipt for each of the other's
	// (receipts.go). The first text to a device is followed by the heads
	// gossip (a signed tree head does not fit in 1 KiB); the relay's log
	// does not change after, so no more gossip follows.
	for who, sent := range map[string][]string{"alice": as, "bob": bs} {
		if i := slices.Index(sent[min(1, len(sent)):], session+"/4096"); i >= 0 && len(sent) == 7 {
			sent = slices.Delete(slices.Clone(sent), i+1, i+2)
		}
		ok := len(sent) == 6 && (sent[0] == session+"/4096" || sent[0] == session+"/1024")
		for _, e := range sent[min(1, len(sent)):] {
			ok = ok && e == session+"/1024"
		}
		if !ok {
			t.Fatalf("%s sent %v, want 4096 or 1024, then 1024 five times", who, sent)
		}
	}
	// Delivery is at least once: a Sync's new subscription may deliver
	// again what the live one delivered.
	for _, e := range append(ar, br...) {
		if !strings.HasPrefix(e, session+"/") {
			t.Fatalf("received envelopes alice %v, bob %v: not all sessions", ar, br)
		}
	}
	if alice.Stats().Dropped+bob.Stats().Dropped != 0 || len(notices(t, alice))+len(notices(t, bob)) != 0 {
		t.Fatalf("stats %+v %+v, or notices in a normal conversation", alice.Stats(), bob.Stats())
	}
	// Alice answered the Init of the session bob started in Accept (and
	// consumed the one-time prekey it used); no second session was started.
	var rec sessionRecord
	r, _ := alice.lookupContact("bob")
	alice.st.view(func(t *tx) error { _, err := t.Get(bucketSessions, r.ID, &rec); return err })
	if len(rec.Answered) != 1 || rec.Losing != nil || rec.State == nil {
		t.Fatalf("alice's session record: %d answered, losing %v", len(rec.Answered), rec.Losing != nil)
	}
}

// TestSessionOfflineAndRestart: messages to an offline recipient, across
// a relay restart, start and continue the session.
func TestSessionOfflineAndRestart(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, bobHome := pair(t, srv)
	bob.Close()
	send(t, alice, "bob", "one")
	send(t, alice, "bob", "two")
	srv.Restart()
	send(t, alice, "bob", "three")
	bob2 := dial(t, bobHome)
	syncWant(t, bob2, "bob", "alice>me:one", "alice>me:two", "alice>me:three")
	send(t, bob2, "alice", "back")
	syncWant(t, alice, "alice", "bob>me:back")
}

// TestSimultaneousInitiation: both send before either has a session or
// has synced; they converge on one session and every message is read.
func TestSimultaneousInitiation(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	for i := range 3 {
		send(t, alice, "bob", fmt.Sprint("a", i))
		send(t, bob, "alice", fmt.Sprint("b", i))
	}
	syncWant(t, alice, "alice", "bob>me:b0", "bob>me:b1", "bob>me:b2")
	syncWant(t, bob, "bob", "alice>me:a0", "alice>me:a1", "alice>me:a2")
	for round := range 3 {
		send(t, alice, "bob", fmt.Sprint("a", round, "x"))
		send(t, bob, "alice", fmt.Sprint("b", round, "x"))
		syncWant(t, alice, "alice", fmt.Sprint("bob>me:b", round, "x"))
		syncWant(t, bob, "bob", fmt.Sprint("alice>me:a", round, "x"))
	}
	ra, rb := sessionOf(t, alice, "bob"), sessionOf(t, bob, "alice")
	sa, _ := alice.loadSession(ra.State)
	sb, _ := bob.loadSession(rb.State)
	if sa.InitID() != sb.InitID() || sa.Initiator() == sb.Initiator() || ra.Losing != nil || rb.Losing != nil {
		t.Fatalf("sessions did not converge: same init %v, initiators %v %v, losing %v %v",
			sa.InitID() == sb.InitID(), sa.Initiator(), sb.Initiator(), ra.Losing != nil, rb.Losing != nil)
	}
	if n := len(notices(t, alice)) + len(notices(t, bob)); n != 0 || alice.Stats().Dropped+bob.Stats().Dropped != 0 {
		t.Fatalf("%d notices, stats %+v %+v", n, alice.Stats(), bob.Stats())
	}
}

func sessionOf(t *testing.T, c *Client, name string) *sessionRecord {
	t.Helper()
	r, err := c.lookupContact(name)
	if err != nil {
		t.Fatal(err)
	}
	var rec *sessionRecord
	if err := c.st.view(func(t *tx) (err error) { rec, err = t.sessionRecord(r.ID); return err }); err != nil {
		t.Fatal(err)
	}
	return rec
}

func wantNotice(t *testing.T, c *Client, contact string) Message {
	t.Helper()
	ns := notices(t, c)
	if len(ns) != 1 || ns[0].From != contact || ns[0].Text != SessionResetNotice(contact) || ns[0].Outgoing {
		t.Fatalf("notices %+v, want one from %s", ns, contact)
	}
	return ns[0]
}

// TestLostSessionWiped: bob loses his session record. Alice's next message
// cannot be read; bob starts a new session at once, both get one notice,
// and messages flow again.
func TestLostSessionWiped(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	send(t, alice, "bob", "hello")
	syncWant(t, bob, "bob", "alice>me:hello")
	send(t, bob, "alice", "hi")
	syncWant(t, alice, "alice", "bob>me:hi")

	r, _ := bob.lookupContact("alice")
	if err := bob.st.update(func(t *tx) error { return t.Delete(bucketSessions, r.ID) }); err != nil {
		t.Fatal(err)
	}
	send(t, alice, "bob", "lost")
	got, err := bob.Sync(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Notice || got[0].From != "alice" {
		t.Fatalf("bob's sync after the loss: %+v, want the notice", got)
	}
	got, err = alice.Sync(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Notice || got[0].From != "bob" {
		t.Fatalf("alice's sync after the reset: %+v, want the notice", got)
	}
	na, nb := wantNotice(t, alice, "bob"), wantNotice(t, bob, "alice")
	if na.ID != nb.ID {
		t.Fatalf("notice IDs differ: %s %s", na.ID, nb.ID)
	}
	send(t, alice, "bob", "again")
	syncWant(t, bob, "bob", "alice>me:again")
	send(t, bob, "alice", "welcome back")
	syncWant(t, alice, "alice", "bob>me:welcome back")
	wantNotice(t, alice, "bob")
	wantNotice(t, bob, "alice")
	if s := bob.Stats(); s.Dropped != 1 {
		t.Fatalf("bob stats %+v, want the unreadable message dropped", s)
	}
}

// TestLostSessionWipedSenderFirst: the side that lost its session writes
// first; it starts a new session and both sides get a notice.
func TestLostSessionWipedSenderFirst(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	send(t, alice, "bob", "hello")
	syncWant(t, bob, "bob", "alice>me:hello")
	send(t, bob, "alice", "hi")
	syncWant(t, alice, "alice", "bob>me:hi")
	r, _ := bob.lookupContact("alice")
	if err := bob.st.update(func(t *tx) error { return t.Delete(bucketSessions, r.ID) }); err != nil {
		t.Fatal(err)
	}
	send(t, bob, "alice", "after the wipe")
	wantNotice(t, bob, "alice")
	got, err := alice.Sync(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Notice || got[1].Text != "after the wipe" {
		t.Fatalf("alice's sync: %+v", got)
	}
	wantNotice(t, alice, "bob")
	send(t, alice, "bob", "ok")
	// Bob's Sync also returns the notice his Send stored.
	syncWant(t, bob, "bob", "alice>me:"+SessionResetNotice("alice"), "alice>me:ok")
	wantNotice(t, bob, "alice")
}

// TestLostSessionRestoredStore: bob restores an old copy of store.db
// without erase.keys. Its session states are sealed under an epoch key
// erase.keys no longer holds, so they are gone by design (SPEC section 9
// "Erasure"): alice's first message after the restore makes bob start a
// new session at once, her messages sealed before she read his reset are
// dropped, both get a notice, and messages flow again. Alice writes while
// bob is offline, so that all her messages are sealed before his reset
// reaches her (online, she could read it between two sends).
func TestLostSessionRestoredStore(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, bobHome := pair(t, srv)
	send(t, alice, "bob", "hello")
	syncWant(t, bob, "bob", "alice>me:hello")
	send(t, bob, "alice", "hi")
	syncWant(t, alice, "alice", "bob>me:hi")
	db := filepath.Join(bobHome, StoreFileName)
	old, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // turns after the backup
		send(t, alice, "bob", fmt.Sprint("later ", i))
		syncWant(t, bob, "bob", fmt.Sprint("alice>me:later ", i))
		send(t, bob, "alice", fmt.Sprint("reply ", i))
		syncWant(t, alice, "alice", fmt.Sprint("bob>me:reply ", i))
	}
	bob.Close()
	if err := os.WriteFile(db, old, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range sessionResetFailures {
		send(t, alice, "bob", fmt.Sprint("unreadable ", i))
	}
	bob = dial(t, bobHome)
	got, err := bob.Sync(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Notice {
		t.Fatalf("bob's sync: %+v, want only the notice", got)
	}
	// At least alice's unreadable messages were dropped; a delivery
	// receipt she sent for one of bob's replies may still have waited on
	// the relay when bob closed, and it is sealed on the lost session too.
	if s := bob.Stats(); s.Dropped < sessionResetFailures || s.Dropped > sessionResetFailures+2 {
		t.Fatalf("bob stats %+v", s)
	}
	got, err = alice.Sync(testCtx(t))
	if err != nil || len(got) != 1 || !got[0].Notice {
		t.Fatalf("alice's sync: %+v, %v; want the notice", got, err)
	}
	send(t, alice, "bob", "again")
	syncWant(t, bob, "bob", "alice>me:again")
	send(t, bob, "alice", "back")
	syncWant(t, alice, "alice", "bob>me:back")
	wantNotice(t, alice, "bob")
	wantNotice(t, bob, "alice")
}

// TestSessionDeviceMismatch: keys from the relay that are not the
// contact's known device are refused before anything is sent.
func TestSessionDeviceMismatch(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, _, _, _ := pair(t, srv)
	mallory, _ := newTestClient(t, srv, "mallory")
	r, _ := alice.lookupContact("bob")
	r.Cert, r.DeviceID = mallory.dev.Certificate().Bytes(), fp(mallory.devID)
	// Without a session, so that alice must fetch bob's keys.
	if err := alice.st.update(func(t *tx) error {
		if err := t.putSessionRecord(r.ID, &sessionRecord{}); err != nil {
			return err
		}
		return t.putContact(r)
	}); err != nil {
		t.Fatal(err)
	}
	// The device is not in bob's verified device list, so it is not
	// written to at all (ErrNoDevice); a contact with no list yet gets
	// as far as the bundle, which is not the known device's.
	_, err := alice.Send(testCtx(t), "bob", "hello")
	if !(errors.Is(err, ErrDeviceMismatch) && strings.Contains(err.Error(), "bob's known device")) && !(errors.Is(err, ErrNoDevice) && strings.Contains(err.Error(), "bob")) {
		t.Fatalf("Send = %v, want ErrNoDevice or ErrDeviceMismatch naming bob", err)
	}
	if rec := sessionOf(t, alice, "bob"); rec.State != nil {
		t.Fatal("a session was stored")
	}
}

// TestSessionReplayedEnvelope: the same session message in a new envelope
// is a duplicate, not a failure.
func TestSessionReplayedEnvelope(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	r, _ := bob.lookupContact("alice")
	var mb protocol.MailboxID
	copy(mb[:], r.RecvMbx)
	env, _ := sealText(t, alice, "bob", "once")
	for i := range sessionResetFailures + 1 {
		m, err := bob.receiveEnvelope(mb, protocol.NewEnvelopeID(), env)
		if err != nil || (m != nil) != (i == 0) {
			t.Fatalf("delivery %d: %v %v", i, m, err)
		}
	}
	if rec := sessionOf(t, bob, "alice"); rec.Failures != 0 || len(notices(t, bob)) != 0 {
		t.Fatalf("replays counted as failures: %d", rec.Failures)
	}
}

// FuzzParseSessionContent: the plaintext of a session message parses
// exactly or is ErrDecrypt, never panics, and what parses re-encodes to
// the same bytes (trailing zeros are Seal's padding).
func FuzzParseSessionContent(f *testing.F) {
	id, err := identity.GenerateIdentity()
	if err != nil {
		f.Fatal(err)
	}
	var dev keys.Fingerprint
	dev[0] = 7
	list, err := people.FirstList(id, dev, "wss://relay.example.org", time.Unix(1764100000, 0))
	if err != nil {
		f.Fatal(err)
	}
	text := &content{Type: contentTextHeaders, SentMS: 4, Sender: dev, Text: "copied", Subject: "s"}
	for _, ct := range []*content{
		{Type: contentDeviceList, SentMS: 5, List: list},
		{Type: contentDeviceList, SentMS: 6, List: list, HasRoute: true, ReplyRelay: "wss://relay.example.org", Names: []deviceName{{ID: dev, Name: "OFFICE-PC"}}},
		{Type: contentSentCopy, SentMS: 7, Sender: dev, CopyTo: dev, Inner: text},
		{Type: contentContactShare, SentMS: 8, List: []byte(`{"v":1,"persons":[]}`)},
		{Type: contentGroupState, SentMS: 9, GroupPart: &groupPart{Version: 3, Part: 0, Parts: 2, Chunk: []byte("state"), HasAdmin: true}},
		{Type: contentGroupState, SentMS: 10, GroupPart: &groupPart{Version: 3, Part: 1, Parts: 2, Chunk: []byte("part")}},
		{Type: contentGroupState, SentMS: 14, GroupPart: &groupPart{Version: 4, Part: 0, Parts: 1, Chunk: []byte("staff"), Logged: true}},
		{Type: contentGroupKey, SentMS: 11, GroupKey: make([]byte, senderkey.DistributionSize)},
		{Type: contentGroupJoin, SentMS: 12, GroupJoin: &groupJoin{Mailbox: protocol.MailboxID{1}}},
		{Type: contentDirectory, SentMS: 13, Attachments: []attachmentRef{seedAttachment()}},
		{Type: contentStatus, SentMS: 14, Status: make([]byte, directory.StatusSize)},
		{Type: contentTextHeaders, SentMS: 15, Text: "forwarded", ForwardedFor: keys.Fingerprint{7}},
	} {
		b, err := ct.marshalSession()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, ct := range []*content{
		{Type: contentText, SentMS: 1, Text: "hello"},
		{Type: contentText},
		{Type: contentReset, SentMS: 1 << 40},
		{Type: contentRouteRelay, SentMS: 2, ReplyRelay: "wss://relay.example.org:444/p"},
		{Type: contentAttachment, SentMS: 3, Attachments: []attachmentRef{seedAttachment(), {Name: "", CipherSize: protocol.BlobCipherChunkSize}}},
	} {
		b, err := ct.marshalSession()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(append(b, 0, 0, 0))
	}
	fuzzSessionContent(f, nil)
}

// addSessionSeeds adds the session encodings of cts to f's corpus.
func addSessionSeeds(f *testing.F, cts ...*content) {
	f.Helper()
	for _, ct := range cts {
		b, err := ct.marshalSession()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// fuzzSessionContent fuzzes parseSessionContent from f's corpus: an input
// parses exactly (what parses re-encodes to the input, followed only by
// zero padding) or is ErrDecrypt, and nothing panics; check, if not nil,
// looks further at what parsed.
func fuzzSessionContent(f *testing.F, check func(t *testing.T, ct *content)) {
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
		if check != nil {
			check(t, ct)
		}
	})
}
