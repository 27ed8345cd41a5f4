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
	}
	// Without an organisation configured, "your provider".
	if s := (&RestrictedError{Level: RestrictedReplies}).Error(); !strings.HasSuffix(s, "contact your provider's Secure Messaging coordinator.") {
		t.Fatalf("default sentence %q", s)
	}
	// Access restored.
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
