package client

import (
	"errors"
	"strings"
	"testing"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/relay/relaytest"
)

func contactNamed(t *testing.T, c *Client, name string) Contact {
	t.Helper()
	cts, err := c.Contacts()
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range cts {
		if ct.Name == name {
			return ct
		}
	}
	t.Fatalf("no contact %q", name)
	return Contact{}
}

// TestVerifyContact: a contact starts unverified; a wrong safety number
// changes nothing; the right one (spaces ignored) verifies. A contact
// whose identity key changed gets nothing until verified again.
func TestVerifyContact(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	send(t, alice, "bob", "hello")
	syncWant(t, bob, "bob", "alice>me:hello")

	ct := contactNamed(t, alice, "bob")
	if ct.Verification != Unverified {
		t.Fatalf("new contact: %v", ct.Verification)
	}
	wrong := []byte(ct.SafetyNumber)
	wrong[0] = '0' + (wrong[0]-'0'+1)%10
	if err := alice.VerifyContact("bob", string(wrong)); !errors.Is(err, ErrSafetyNumberMismatch) {
		t.Fatalf("wrong number: %v", err)
	}
	if v := contactNamed(t, alice, "bob").Verification; v != Unverified {
		t.Fatalf("after a wrong number: %v", v)
	}
	if err := alice.VerifyContact("nobody", ""); !errors.Is(err, ErrUnknownContact) {
		t.Fatalf("unknown contact: %v", err)
	}
	if err := alice.VerifyContact("bob", strings.ReplaceAll(ct.SafetyNumber, " ", "")); err != nil {
		t.Fatal(err)
	}
	if v := contactNamed(t, alice, "bob").Verification; v != Verified {
		t.Fatalf("after verifying: %v", v)
	}

	// The identity key changed (the state a replaced identity leaves):
	// nothing is sent, nothing is stored, until the user verifies again.
	r, err := alice.lookupContact("bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.updateContact(r.ID, func(rec *contactRecord) { rec.Person.Verification = store.Changed }); err != nil {
		t.Fatal(err)
	}
	before, err := alice.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(testCtx(t), "bob", "must not leave"); !errors.Is(err, ErrIdentityChanged) || !strings.Contains(err.Error(), "bob's safety number changed") {
		t.Fatalf("send to a changed identity: %v", err)
	}
	after, err := alice.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("a refused send stored a message: %d, then %d", len(before), len(after))
	}
	syncWant(t, bob, "bob, after the refused send")
	if err := alice.VerifyContact("bob", ""); err != nil {
		t.Fatal(err)
	}
	send(t, alice, "bob", "verified again")
	syncWant(t, bob, "bob", "alice>me:verified again")
}

// The text of a safety number's QR code verifies like the digits; a QR
// text of another version or another number does not.
func TestVerifyContactQRText(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, _, _, _ := pair(t, srv)
	ct := contactNamed(t, alice, "bob")
	qr := SafetyNumberQR(ct.SafetyNumber)
	if want := "postern-safety:1:" + strings.ReplaceAll(ct.SafetyNumber, " ", ""); qr != want || len(qr) != len(SafetyQRPrefix)+60 {
		t.Fatalf("QR text %q, want %q", qr, want)
	}
	wrong := []byte(qr)
	wrong[len(wrong)-1] = '0' + (wrong[len(wrong)-1]-'0'+1)%10
	for _, bad := range []string{string(wrong), "postern-safety:2:" + qr[len(SafetyQRPrefix):]} {
		if err := alice.VerifyContact("bob", bad); !errors.Is(err, ErrSafetyNumberMismatch) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	if v := contactNamed(t, alice, "bob").Verification; v != Unverified {
		t.Fatalf("after wrong QR texts: %v", v)
	}
	if err := alice.VerifyContact("bob", " "+qr+"\n"); err != nil {
		t.Fatal(err)
	}
	if v := contactNamed(t, alice, "bob").Verification; v != Verified {
		t.Fatalf("after the QR text: %v", v)
	}
}
