package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

var testKDF = &identity.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}

var testPass = []byte("correct horse battery staple")

// testCtx is a test's context: a hang guard, not a timed assertion. The
// longest tests here (a team of several devices each over a relay) take
// over two minutes under the race detector when the whole suite shares
// two cores, so it is generous.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func testOpts() *Options { return &Options{KDF: testKDF} }

// testPrekeys is the one-time prekey supply of this package's devices:
// fewer than a real device keeps (prekeyLowWater, prekeyTarget), because
// making and signing them was about a quarter of the package's CPU time,
// and few tests start more than a handful of sessions with one device.
// The prekey tests run with the real supply (realPrekeys).
var testPrekeys = prekeySupply{low: 4, target: 10}

func TestMain(m *testing.M) {
	defaultPrekeySupply = testPrekeys
	os.Exit(m.Run())
}

func newTestClient(t testing.TB, srv *relaytest.Server, name string) (*Client, string) {
	t.Helper()
	home := filepath.Join(t.TempDir(), name)
	c, err := Init(testCtx(t), home, testPass, srv.URL, name, testOpts())
	if err != nil {
		t.Fatalf("Init %s: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, home
}

func dial(t testing.TB, home string) *Client {
	t.Helper()
	c, err := Dial(testCtx(t), home, testPass, testOpts())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// pair makes alice and bob contacts: alice invites, bob accepts (naming her
// "alice"), alice syncs and sees "bob".
func pair(t testing.TB, srv *relaytest.Server) (alice, bob *Client, aliceHome, bobHome string) {
	t.Helper()
	ctx := testCtx(t)
	alice, aliceHome = newTestClient(t, srv, "alice")
	bob, bobHome = newTestClient(t, srv, "bob")
	code, err := alice.Invite(ctx)
	if err != nil {
		t.Fatalf("Invite: %v", err)
	}
	ct, err := bob.Accept(ctx, code, "alice")
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if ct.Name != "alice" || ct.Identity != alice.Whoami().Identity {
		t.Fatalf("Accept returned %+v", ct)
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatalf("alice Sync: %v", err)
	}
	cs, err := alice.Contacts()
	if err != nil || len(cs) != 1 || cs[0].Name != "bob" || cs[0].Identity != bob.Whoami().Identity {
		t.Fatalf("alice contacts = %+v, %v; want bob", cs, err)
	}
	if cs[0].SafetyNumber != ct.SafetyNumber {
		t.Fatalf("safety numbers differ: %q vs %q", cs[0].SafetyNumber, ct.SafetyNumber)
	}
	settleRoutes(t, alice, bob)
	return
}

// settleRoutes lets the route exchange that follows an introduction finish
// (SPEC section 9 "Routes"): alice's route reaches bob, bob's
// acknowledgement reaches alice, who revokes the invitation's capability.
// Tests then start from the same state whatever the timing of the
// background receive loops.
func settleRoutes(t testing.TB, alice, bob *Client) {
	t.Helper()
	ctx := testCtx(t)
	for _, c := range []*Client{bob, alice, bob, alice} {
		if _, err := c.Sync(ctx); err != nil {
			t.Fatalf("Sync: %v", err)
		}
	}
	r, err := alice.lookupContact("bob")
	if err != nil {
		t.Fatal(err)
	}
	if r.NeedRoute || !r.PrevRevoked {
		t.Fatalf("alice's route for bob did not settle: need %v, previous revoked %v", r.NeedRoute, r.PrevRevoked)
	}
}

func texts(ms []Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.From+">"+m.To+":"+m.Text)
	}
	return out
}

func wantTexts(t *testing.T, what string, got []Message, want ...string) {
	t.Helper()
	g := strings.Join(texts(got), "|")
	if w := strings.Join(want, "|"); g != w {
		t.Fatalf("%s: got %q, want %q", what, g, w)
	}
}

func TestMessagesBothWays(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)

	sent, err := alice.Send(ctx, "bob", "hello bob")
	if err != nil {
		t.Fatal(err)
	}
	got, err := bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "bob sync", got, "alice>me:hello bob")
	if got[0].ID != sent.ID || len(sent.ID) != 16 {
		t.Fatalf("ids differ: sent %q received %q", sent.ID, got[0].ID)
	}
	if !got[0].Time.Equal(sent.Time) {
		t.Fatalf("time %v, want %v", got[0].Time, sent.Time)
	}
	if _, err := bob.Send(ctx, "alice", "hi alice"); err != nil {
		t.Fatal(err)
	}
	got, err = alice.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "alice sync", got, "bob>me:hi alice")

	// Receive on a live subscription.
	if _, err := alice.Send(ctx, "bob", "live"); err != nil {
		t.Fatal(err)
	}
	m, err := bob.Receive(ctx)
	if err != nil || m.Text != "live" {
		t.Fatalf("Receive = %+v, %v", m, err)
	}

	in, err := alice.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "alice inbox", in, "me>bob:hello bob", "bob>me:hi alice", "me>bob:live")
	if m, err := alice.Message(sent.ID); err != nil || m.Text != "hello bob" || !m.Outgoing {
		t.Fatalf("Message(%s) = %+v, %v", sent.ID, m, err)
	}
	if _, err := alice.Message("0000000000000000"); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("Message(unknown) err = %v", err)
	}
	if err := bob.Ack(ctx, m); err != nil { // idempotent
		t.Fatalf("Ack: %v", err)
	}
	if _, err := alice.Send(ctx, "carol", "x"); !errors.Is(err, ErrUnknownContact) {
		t.Fatalf("Send to unknown: %v", err)
	}
	if _, err := alice.Send(ctx, "bob", strings.Repeat("x", MaxTextSize+1)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("Send too long: %v", err)
	}
	if _, err := alice.Send(ctx, "bob", strings.Repeat("é", MaxTextSize/2)); err != nil {
		t.Fatalf("Send at the limit: %v", err)
	}
}

func TestOfflineRecipient(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, bobHome := pair(t, srv)
	ctx := testCtx(t)
	bob.Close()
	for _, s := range []string{"one", "two", "three"} {
		if _, err := alice.Send(ctx, "bob", s); err != nil {
			t.Fatal(err)
		}
	}
	bob2 := dial(t, bobHome)
	got, err := bob2.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "sync", got, "alice>me:one", "alice>me:two", "alice>me:three")
	// Acked: a new client on the same home gets nothing again.
	bob2.Close()
	bob3 := dial(t, bobHome)
	if got, err := bob3.Sync(ctx); err != nil || len(got) != 0 {
		t.Fatalf("second sync = %v, %v", texts(got), err)
	}
	if s := bob3.Stats(); s.Duplicates != 0 || s.Received != 0 {
		t.Fatalf("stats after ack = %+v (envelopes were not deleted)", s)
	}
}

func TestRelayRestart(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	if _, err := alice.Send(ctx, "bob", "before restart"); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	got, err := bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "after restart", got, "alice>me:before restart")
	// Both sides reconnect by themselves.
	if _, err := alice.Send(ctx, "bob", "after restart"); err != nil {
		t.Fatal(err)
	}
	m, err := bob.Receive(ctx)
	if err != nil || m.Text != "after restart" {
		t.Fatalf("Receive = %+v, %v", m, err)
	}
}

func TestDuplicateDeliveryStoredOnce(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, bobHome := pair(t, srv)
	ctx := testCtx(t)
	bob.Close()
	const n = 5
	for i := range n {
		if _, err := alice.Send(ctx, "bob", string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
	}
	// Two clients on one home, as `postern listen` and `postern sync`.
	b1, b2 := dial(t, bobHome), dial(t, bobHome)
	var wg sync.WaitGroup
	var got [2][]Message
	var errs [2]error
	for i, c := range []*Client{b1, b2} {
		wg.Go(func() { got[i], errs[i] = c.Sync(ctx) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if total := len(got[0]) + len(got[1]); total != n {
		t.Fatalf("the two syncs returned %d messages in all, want %d", total, n)
	}
	in, err := b1.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "inbox", in, "alice>me:a", "alice>me:b", "alice>me:c", "alice>me:d", "alice>me:e")

	// Re-delivery of the same envelope, and the same message in a new envelope.
	r, err := b1.lookupContact("alice")
	if err != nil {
		t.Fatal(err)
	}
	var mb protocol.MailboxID
	copy(mb[:], r.RecvMbx)
	env, msgID := sealText(t, alice, "bob", "again")
	envID := protocol.NewEnvelopeID()
	for i, id := range []protocol.EnvelopeID{envID, envID, protocol.NewEnvelopeID()} {
		m, err := b1.receiveEnvelope(mb, id, env)
		if err != nil || (m != nil) != (i == 0) {
			t.Fatalf("delivery %d: message %v, err %v", i, m, err)
		}
		if i == 0 && m.ID != localMessageID(alice.devID, msgID) {
			t.Fatalf("id %s", m.ID)
		}
	}
}

// sealText seals a text from c to its contact name in their session, as
// Send does (starting the session if needed), without sending it.
func sealText(t *testing.T, c *Client, name, text string) ([]byte, [16]byte) {
	t.Helper()
	r, err := c.lookupContact(name)
	if err != nil {
		t.Fatal(err)
	}
	ct := &content{Type: contentText, Sender: c.devID, SentMS: uint64(time.Now().UnixMilli()), Text: text}
	copy(ct.MsgID[:], randomID(16))
	plain, err := ct.marshalSession()
	if err != nil {
		t.Fatal(err)
	}
	env, _, err := c.sealSession(r, plain, nil)
	if errors.Is(err, errNoSession) {
		pb, ferr := c.fetchPeerBundle(testCtx(t), r)
		if ferr != nil {
			t.Fatal(ferr)
		}
		env, _, err = c.sealSession(r, plain, pb)
	}
	if err != nil {
		t.Fatal(err)
	}
	return env, ct.MsgID
}

// rawSend sends env with sender's capability for its contact name.
func rawSend(t *testing.T, sender *Client, name string, env []byte) {
	t.Helper()
	r, err := sender.lookupContact(name)
	if err != nil {
		t.Fatal(err)
	}
	var mb protocol.MailboxID
	copy(mb[:], r.SendMbx)
	tok, _ := protocol.CapabilityTokenFromBytes(r.SendCap)
	if _, err := sender.anonRequest(testCtx(t), r.Relay, anonKey(r.ID), &protocol.Send{Mailbox: mb, Capability: tok, Envelope: env}); err != nil {
		t.Fatal(err)
	}
}

func TestTamperedEnvelopeDropped(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	// Each tampered session envelope is followed by a genuine message: a
	// failure never disturbs the session, and fewer than
	// sessionResetFailures in a row never reset it. (The session started
	// in pair, so no Init travels here: the session package's tests tamper
	// with Inits.)
	var want []string
	for i, off := range []int{1, 2, 30, 300, 600, -1} { // kind, flags, header, body, body, body tag
		env, _ := sealText(t, alice, "bob", "tampered")
		if off < 0 {
			off = len(env) - 1
		}
		env[off] ^= 0x01
		if env[1] == 0 {
			env[1] = 0x03
		}
		rawSend(t, alice, "bob", env)
		text := fmt.Sprintf("genuine %d", i)
		if _, err := alice.Send(ctx, "bob", text); err != nil {
			t.Fatal(err)
		}
		want = append(want, "alice>me:"+text)
	}
	got, err := bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "sync", got, want...)
	if s := bob.Stats(); s.Dropped != 6 {
		t.Fatalf("stats %+v, want 6 dropped", s)
	}
	in, _ := bob.Inbox()
	wantTexts(t, "inbox", in, want...)
	// Dropped envelopes were acknowledged: a new sync sees nothing.
	if got, err := bob.Sync(ctx); err != nil || len(got) != 0 || bob.Stats().Dropped != 6 {
		t.Fatalf("second sync %v %v %+v", texts(got), err, bob.Stats())
	}
	// The session still works both ways.
	if _, err := bob.Send(ctx, "alice", "still here"); err != nil {
		t.Fatal(err)
	}
	got, err = alice.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "alice sync", got, "bob>me:still here")
}

func TestUnknownSenderRejected(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	mallory, _ := newTestClient(t, srv, "mallory")
	// Mallory learns alice's contact record for bob (the capability and
	// bob's certificate) and writes to bob as herself.
	r, err := alice.lookupContact("bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := mallory.st.update(func(t *tx) error { return t.putContact(r) }); err != nil {
		t.Fatal(err)
	}
	env, _ := sealText(t, mallory, "bob", "trust me")
	rawSend(t, mallory, "bob", env)
	got, err := bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 || bob.Stats().Dropped != 1 {
		t.Fatalf("got %v, stats %+v", texts(got), bob.Stats())
	}
	var mb protocol.MailboxID
	copy(mb[:], r.SendMbx)
	if _, err := bob.receiveEnvelope(mb, protocol.NewEnvelopeID(), env); !errors.Is(err, ErrUnknownSender) {
		t.Fatalf("receive err = %v, want ErrUnknownSender", err)
	}
	// A signature by alice's device over other bytes does not verify.
	env2, _ := sealText(t, alice, "bob", "real")
	if m, err := bob.receiveEnvelope(mb, protocol.NewEnvelopeID(), env2); err != nil || m == nil {
		t.Fatalf("genuine: %v %v", m, err)
	}
}

// TestSealedTextRefused: texts travel only in sessions. A text in a sealed
// envelope, even correctly signed by the contact, is dropped.
func TestSealedTextRefused(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	r, _ := alice.lookupContact("bob")
	cert, _ := alice.certificate(r)
	var mb protocol.MailboxID
	copy(mb[:], r.SendMbx)
	ct := &content{Type: contentText, Sender: alice.devID, SentMS: 1, Text: "sealed"}
	signed, err := ct.marshalSigned(alice.dev, cert.DeviceID(), mb)
	if err != nil {
		t.Fatal(err)
	}
	env, err := sealEnvelope(cert.KEM, mb, signed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.receiveEnvelope(mb, protocol.NewEnvelopeID(), env); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("err = %v, want ErrDecrypt", err)
	}
	// A bad signature inside a sealed introduction is still checked.
	signed[len(signed)-10] ^= 1
	env, _ = sealEnvelope(cert.KEM, mb, signed)
	if _, err := bob.receiveEnvelope(mb, protocol.NewEnvelopeID(), env); !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrDecrypt) {
		t.Fatalf("err = %v", err)
	}
	if in, _ := bob.Inbox(); len(in) != 0 {
		t.Fatalf("inbox %v", texts(in))
	}
}

func TestBlock(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	if err := bob.Block(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	_, err := alice.Send(ctx, "bob", "are you there?")
	if !errors.Is(err, ErrBlocked) || err.Error() != "bob no longer accepts messages from you" {
		t.Fatalf("Send after block: %v", err)
	}
	cs, _ := bob.Contacts()
	if len(cs) != 1 || !cs[0].Blocked {
		t.Fatalf("contacts %+v", cs)
	}
	// Bob does not write to alice while she is blocked: she could not
	// answer.
	if _, err := bob.Send(ctx, "alice", "bye"); !errors.Is(err, ErrContactBlocked) || err.Error() != "client: you blocked alice; nothing was sent" {
		t.Fatalf("Send to a blocked contact: %v", err)
	}
}

func TestInvitationSingleUse(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	ctx := testCtx(t)
	alice, _ := newTestClient(t, srv, "alice")
	bob, _ := newTestClient(t, srv, "bob")
	carol, _ := newTestClient(t, srv, "carol")
	code, err := alice.Invite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Accept(ctx, code, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Accept(ctx, code, "alice2"); !errors.Is(err, ErrContactExists) {
		t.Fatalf("second accept by bob: %v", err)
	}
	// Carol got hold of the same invitation: her introduction is refused.
	if _, err := carol.Accept(ctx, code, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	cs, _ := alice.Contacts()
	if len(cs) != 1 || cs[0].Name != "bob" {
		t.Fatalf("contacts %+v, want only bob", cs)
	}
	// Dropped: carol's introduction, and the first message of the session
	// her Accept started (she is no contact of alice's).
	if alice.Stats().Dropped != 2 {
		t.Fatalf("stats %+v, want carol's introduction and first message dropped", alice.Stats())
	}
	// A second invitation to someone with a taken name gets a suffix.
	code2, _ := alice.Invite(ctx)
	bob2, _ := newTestClient(t, srv, "bob")
	if _, err := bob2.Accept(ctx, code2, "alice"); err != nil {
		t.Fatal(err)
	}
	alice.Sync(ctx)
	cs, _ = alice.Contacts()
	if len(cs) != 2 || cs[1].Name != "bob-2" {
		t.Fatalf("contacts %+v", cs)
	}
	if _, err := alice.Accept(ctx, code2, "me-again"); !errors.Is(err, ErrInvalidInvitation) {
		t.Fatalf("accepting own invitation: %v", err)
	}
}

func TestLocalStateErrors(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	ctx := testCtx(t)
	_, home := newTestClient(t, srv, "alice")
	if runtime.GOOS != "windows" {
		for p, want := range map[string]os.FileMode{home: 0o700, filepath.Join(home, KeyFileName): 0o600, filepath.Join(home, StoreFileName): 0o600, filepath.Join(home, EraseKeysFileName): 0o600} {
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
				t.Errorf("%s: mode %v, want %v (%v)", p, fi.Mode().Perm(), want, err)
			}
		}
	}
	if _, err := Dial(ctx, home, []byte("wrong"), testOpts()); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := Dial(ctx, t.TempDir(), testPass, testOpts()); !errors.Is(err, ErrNotInitialised) {
		t.Fatalf("empty home: %v", err)
	}
	if _, err := Init(ctx, home, testPass, srv.URL, "alice", testOpts()); !errors.Is(err, ErrExists) {
		t.Fatalf("second init: %v", err)
	}
	for _, u := range []string{"ws://example.com", "http://127.0.0.1:1", "ws://10.0.0.1:80"} {
		if _, err := Init(ctx, t.TempDir(), testPass, u, "x", testOpts()); !errors.Is(err, ErrInsecureRelay) {
			t.Fatalf("Init %s: %v", u, err)
		}
	}
	if _, err := Init(ctx, t.TempDir(), testPass, srv.URL, "", testOpts()); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("empty name: %v", err)
	}
	// A failed enrolment leaves nothing behind.
	closed := relaytest.New(t, &relaytest.Options{Enrollment: "invite"})
	h := filepath.Join(t.TempDir(), "x")
	if _, err := Init(ctx, h, testPass, closed.URL, "x", testOpts()); !protocol.IsCode(err, protocol.CodeEnrollmentRefused) {
		t.Fatalf("refused enrolment: %v", err)
	}
	if _, err := Dial(ctx, h, testPass, testOpts()); !errors.Is(err, ErrNotInitialised) {
		t.Fatalf("after refused enrolment: %v", err)
	}
	if left, _ := os.ReadDir(h); len(left) != 0 {
		t.Fatalf("after refused enrolment, the home holds %v", left)
	}
}
