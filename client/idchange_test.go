package client

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/postern/postern/relay/relaytest"
)

// TestIdentityChangeWarns: bob starts over with a new identity and invites
// alice. Accepting under the name of the old bob is refused and changes
// nothing; accepting with Replace keeps the contact and its conversation,
// warns (notice, event, Changed) and seals nothing for bob until alice
// verifies the new safety number; the old identity's device can no longer
// write to alice.
func TestIdentityChangeWarns(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, oldBob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	send(t, alice, "bob", "hello")
	syncWant(t, oldBob, "old bob", "alice>me:hello")
	send(t, oldBob, "alice", "hi")
	syncWant(t, alice, "alice", "bob>me:hi")
	before := contactNamed(t, alice, "bob")

	newBob, _ := newTestClient(t, srv, "bob")
	code, err := newBob.Invite(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Without the option: refused, with what to do, and nothing changed.
	inbox := inboxTexts(t, alice)
	_, err = alice.Accept(ctx, code, "bob")
	if !errors.Is(err, ErrOtherIdentity) || !errors.Is(err, ErrContactExists) ||
		!strings.Contains(err.Error(), "a contact named bob with another identity exists; if bob started over, accept replacing it and compare safety numbers") {
		t.Fatalf("accept under a name with another identity: %v", err)
	}
	if got := contactNamed(t, alice, "bob"); got != before {
		t.Fatalf("a refused accept changed the contact: %+v, then %+v", before, got)
	}
	if got := inboxTexts(t, alice); got != inbox {
		t.Fatalf("a refused accept changed the messages: %q, then %q", inbox, got)
	}

	evs, err := alice.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := alice.AcceptWith(ctx, code, "bob", &AcceptOptions{Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	if ct.Name != "bob" || ct.Identity != newBob.Whoami().Identity || ct.Verification != Changed {
		t.Fatalf("replaced contact: %+v", ct)
	}
	waitEvent(t, evs, "the identity change", func(ev Event) bool {
		return ev.Kind == EventContact && ev.Contact == "bob" && ev.Change == ContactIdentityChanged
	})
	cts, err := alice.Contacts()
	if err != nil || len(cts) != 1 || cts[0] != ct {
		t.Fatalf("contacts after the replacement: %+v, %v", cts, err)
	}
	// The conversation is kept, with the notice after it.
	if got, want := inboxTexts(t, alice), inbox+"(notice)bob>me:"+IdentityChangedNotice("bob")+"|"; got != want {
		t.Fatalf("alice's messages: %q, want %q", got, want)
	}
	if ns := notices(t, alice); len(ns) != 1 || ns[0].Text != IdentityChangedNotice("bob") {
		t.Fatalf("notices: %+v", ns)
	}

	// New bob learns of alice; the route exchange settles.
	syncWant(t, newBob, "new bob")
	for _, c := range []*Client{alice, newBob, alice, newBob} {
		if _, err := c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// While Changed: nothing sealed, nothing stored, nothing sent.
	log := watch(alice)
	inbox = inboxTexts(t, alice)
	if _, err := alice.Send(ctx, "bob", "must not leave"); !errors.Is(err, ErrIdentityChanged) {
		t.Fatalf("send to a changed identity: %v", err)
	}
	if sent, _ := log.get(); len(sent) != 0 {
		t.Fatalf("a refused send sealed envelopes: %v", sent)
	}
	if got := inboxTexts(t, alice); got != inbox {
		t.Fatalf("a refused send stored a message: %q", got)
	}
	syncWant(t, newBob, "new bob, after the refused send")

	// Receiving goes on.
	send(t, newBob, "alice", "it is me, on a new phone")
	syncWant(t, alice, "alice", "bob>me:it is me, on a new phone")

	// The old identity's device no longer reaches alice: its routes are
	// closed on the relay.
	_, err = oldBob.Send(ctx, "alice", "from the old device")
	if err == nil {
		t.Fatal("the old identity's device could still send to alice")
	}
	syncWant(t, alice, "alice, after the old device's send")

	// Verifying with the new number clears it.
	wrong := []byte(ct.SafetyNumber)
	wrong[0] = '0' + (wrong[0]-'0'+1)%10
	if err := alice.VerifyContact("bob", string(wrong)); !errors.Is(err, ErrSafetyNumberMismatch) {
		t.Fatalf("wrong number: %v", err)
	}
	if v := contactNamed(t, alice, "bob").Verification; v != Changed {
		t.Fatalf("after a wrong number: %v", v)
	}
	if ct.SafetyNumber == before.SafetyNumber {
		t.Fatal("the safety number did not change with the identity")
	}
	if err := alice.VerifyContact("bob", contactNamed(t, newBob, "alice").SafetyNumber); err != nil {
		t.Fatal(err)
	}
	if v := contactNamed(t, alice, "bob").Verification; v != Verified {
		t.Fatalf("after verifying: %v", v)
	}
	send(t, alice, "bob", "welcome back")
	syncWant(t, newBob, "new bob", "alice>me:welcome back")
	send(t, newBob, "alice", "thanks")
	syncWant(t, alice, "alice", "bob>me:thanks")
	syncWant(t, oldBob, "old bob")
}

// TestIdentityChangeInviter: an introduction for alice's invitation from a
// new identity that gives the name of a contact of alice's is not merged
// into that contact: it becomes a contact of its own, with a notice.
func TestIdentityChangeInviter(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, _, _, _ := pair(t, srv)
	ctx := testCtx(t)
	newBob, _ := newTestClient(t, srv, "bob")
	code, err := alice.Invite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newBob.Accept(ctx, code, "alice"); err != nil {
		t.Fatal(err)
	}
	want := NameCollisionNotice("bob-2", "bob")
	syncWant(t, alice, "alice", "bob-2>me:"+want)
	if ct := contactNamed(t, alice, "bob-2"); ct.Identity != newBob.Whoami().Identity || ct.Verification != Unverified {
		t.Fatalf("new contact: %+v", ct)
	}
	if ct := contactNamed(t, alice, "bob"); ct.Verification != Unverified || ct.Identity == newBob.Whoami().Identity {
		t.Fatalf("old contact: %+v", ct)
	}
}

// TestIdentityChangeUndone: a replacing Accept whose introduction cannot
// be sent puts the contact back as it was (identity, device, session, no
// notice), and the conversation with the old identity goes on.
func TestIdentityChangeUndone(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, oldBob, _, _ := pair(t, srv)
	send(t, alice, "bob", "hello")
	syncWant(t, oldBob, "old bob", "alice>me:hello")
	before := contactNamed(t, alice, "bob")
	inbox := inboxTexts(t, alice)

	newBob, _ := newTestClient(t, srv, "bob")
	code, err := newBob.Invite(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	// The introduction fails: the context ends as it is about to go.
	ctx, cancel := context.WithCancel(testCtx(t))
	h := func(out bool, _ []byte) {
		if out {
			cancel()
		}
	}
	alice.envelopeHook.Store(&h)
	if _, err := alice.AcceptWith(ctx, code, "bob", &AcceptOptions{Replace: true}); err == nil {
		t.Fatal("the accept went through without its introduction")
	}
	alice.envelopeHook.Store(nil)
	if got := contactNamed(t, alice, "bob"); got != before {
		t.Fatalf("after the failed replacement: %+v, want %+v", got, before)
	}
	if got := inboxTexts(t, alice); got != inbox {
		t.Fatalf("after the failed replacement: messages %q, want %q", got, inbox)
	}
	send(t, alice, "bob", "still you")
	syncWant(t, oldBob, "old bob", "alice>me:still you")
	send(t, oldBob, "alice", "still me")
	syncWant(t, alice, "alice", "bob>me:still me")
}
