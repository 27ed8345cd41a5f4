package client

import (
	"errors"
	"strings"
	"testing"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

// TestRestrictedSentences: a capability revoked with a restriction's
// reason makes the sender's Send fail with ErrRestricted and the
// sentence of that level, naming the organisation's coordinator; a
// message waiting in the outbox keeps the sentence as its reason.
// Restoring access (the capability added again) lets messages through.
func TestRestrictedSentences(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, aliceHome, _ := pair(t, srv)
	ctx := testCtx(t)
	alice.Close()
	o := testOpts()
	o.Organisation = "St Mary's Hospital"
	alice, err := Open(aliceHome, testPass, o)
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	devs := devicesOf(t, bob, "alice")
	if len(devs) != 1 || len(devs[0].RecvMbx) != 16 {
		t.Fatalf("bob's records of alice %+v", devs)
	}
	var mb protocol.MailboxID
	copy(mb[:], devs[0].RecvMbx)
	tok, err := protocol.CapabilityTokenFromBytes(devs[0].RecvCap)
	if err != nil {
		t.Fatal(err)
	}
	cn, err := bob.authConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		reason protocol.RevokeReason
		level  Restriction
		want   string
	}{
		{protocol.RevokeRestrictedService, RestrictedService, "Your provider has restricted your access to Secure Messaging. If you think your access was restricted by mistake and you want to continue using Secure Messaging, contact St Mary's Hospital's Secure Messaging coordinator."},
		{protocol.RevokeRestrictedNew, RestrictedNew, "You have been restricted from a Triage Group(s). You are unable to send messages to those Triage Groups."},
		{protocol.RevokeRestrictedReplies, RestrictedReplies, "Your access to this Triage Group has been restricted. You cannot send messages to this Triage Group. If you think your access was restricted by mistake, contact St Mary's Hospital's Secure Messaging coordinator."},
	} {
		if err := cn.ok(ctx, &protocol.RevokeCapability{Mailbox: mb, Hash: tok.Hash(), Reason: tc.reason}); err != nil {
			t.Fatal(err)
		}
		_, err := alice.Send(ctx, "bob", "may I still write?")
		var re *RestrictedError
		if !errors.Is(err, ErrRestricted) || !errors.As(err, &re) || re.Level != tc.level || err.Error() != tc.want {
			t.Fatalf("reason %d: Send = %v", tc.reason, err)
		}
		if errors.Is(err, ErrBlocked) {
			t.Fatalf("reason %d: a restriction reads as a block", tc.reason)
		}
		for _, m := range messagesLike(t, alice, "may I still write?") {
			if m.Queued {
				t.Fatalf("reason %d: a restricted message waits in the outbox: %+v", tc.reason, m)
			}
		}
		// Opted out: the next send is refused here, with the same
		// sentence, until alice opts in again.
		_, err = alice.Send(ctx, "bob", "may I still write?")
		if !errors.As(err, &re) || !re.OptIn || re.Level != tc.level || err.Error() != tc.want {
			t.Fatalf("reason %d: the send after the refusal = %v", tc.reason, err)
		}
		if err := alice.OptIn("bob", "2026-12-07"); err != nil {
			t.Fatal(err)
		}
	}
	// Without an organisation configured, "your provider".
	if s := (&RestrictedError{Level: RestrictedReplies}).Error(); !strings.HasSuffix(s, "contact your provider's Secure Messaging coordinator.") {
		t.Fatalf("default sentence %q", s)
	}
	// Access restored; alice opted in after the last refusal already.
	if err := cn.ok(ctx, &protocol.AddCapability{Mailbox: mb, Hash: tok.Hash()}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, "bob", "thank you"); err != nil {
		t.Fatalf("after the restriction was lifted: %v", err)
	}
	syncAll(t, 1, bob)
	if n := len(messagesLike(t, bob, "thank you")); n != 1 {
		t.Fatalf("bob holds %d", n)
	}
}

// TestRestrictAndOptIn: a team (alice) restricts a patient (bob) with
// Restrict; bob's send is refused by the relay with the level's code and
// opts him out, so his client refuses the next one itself. Opting in
// while still restricted changes nothing on the relay: refused again,
// opted out again. Once alice restores his access, bob must opt in again
// (the terms version and time recorded) before his messages go.
func TestRestrictAndOptIn(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	if err := alice.Restrict(ctx, "bob", 9); !errors.Is(err, ErrRestrictionLevel) {
		t.Fatalf("level 9: %v", err)
	}
	if err := bob.OptIn("alice", "2026-12-07"); !errors.Is(err, ErrNotRestricted) {
		t.Fatalf("opting in unrestricted: %v", err)
	}
	if err := alice.Restrict(ctx, "bob", RestrictedNew); err != nil {
		t.Fatal(err)
	}
	if cs, err := alice.Contacts(); err != nil || cs[0].RestrictedByMe != RestrictedNew {
		t.Fatalf("alice's contacts %+v, %v", cs, err)
	}
	var re *RestrictedError
	_, err := bob.Send(ctx, "alice", "one more question")
	if !errors.As(err, &re) || re.Level != RestrictedNew || re.OptIn {
		t.Fatalf("the relay's refusal: %v", err)
	}
	cs, err := bob.Contacts()
	if err != nil || cs[0].Restricted != RestrictedNew || cs[0].RestrictedAt.IsZero() {
		t.Fatalf("bob's contacts %+v, %v", cs, err)
	}
	if _, err := bob.Send(ctx, "alice", "one more question"); !errors.As(err, &re) || !re.OptIn {
		t.Fatalf("opted out: %v", err)
	}
	// Opting in before access is restored: refused by the relay again.
	if err := bob.OptIn("alice", ""); !errors.Is(err, ErrTermsVersion) {
		t.Fatalf("opt in without a terms version: %v", err)
	}
	if err := bob.OptIn("alice", "2026-12-07"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, "alice", "one more question"); !errors.As(err, &re) || re.OptIn {
		t.Fatalf("still restricted: %v", err)
	}
	if err := alice.Unrestrict(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, "alice", "one more question"); !errors.As(err, &re) || !re.OptIn {
		t.Fatalf("restored but not opted in: %v", err)
	}
	if err := bob.OptIn("alice", "2026-12-08"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, "alice", "thank you for restoring my access"); err != nil {
		t.Fatalf("after opting in: %v", err)
	}
	cs, err = bob.Contacts()
	if err != nil || cs[0].Restricted != 0 || cs[0].OptInTerms != "2026-12-08" || cs[0].OptedIn.IsZero() {
		t.Fatalf("bob's contacts after opting in %+v, %v", cs, err)
	}
	if tm, err := bob.Terms(); err != nil || tm.Version != "2026-12-08" {
		t.Fatalf("bob's terms %+v, %v", tm, err)
	}
	syncAll(t, 1, alice)
	if n := len(messagesLike(t, alice, "thank you for restoring")); n != 1 {
		t.Fatalf("alice holds %d", n)
	}
	if n := len(messagesLike(t, alice, "one more question")); n != 0 {
		t.Fatalf("alice holds %d refused messages", n)
	}
}
