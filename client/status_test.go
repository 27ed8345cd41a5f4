package client

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/team/directory"
	"github.com/postern/postern/keys"
)

// sendStatusContent sends b as a status content (0x25) from c to its
// contact name, as SetStatus would.
func sendStatusContent(t *testing.T, c *Client, name string, b []byte) {
	t.Helper()
	r, err := c.lookupContact(name)
	if err != nil {
		t.Fatal(err)
	}
	ct := &content{Type: contentStatus, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()), Status: b}
	copy(ct.MsgID[:], randomID(msgIDSize))
	if err := c.sendSession(testCtx(t), r, ct); err != nil {
		t.Fatal(err)
	}
}

// signStatus signs a status of signer's person in org at at.
func signStatus(t *testing.T, signer *Client, org [16]byte, at time.Time, st directory.Availability, dnd time.Time, forward keys.Fingerprint) []byte {
	t.Helper()
	s := &directory.Status{Org: directory.OrgID(org), Time: at.Truncate(time.Second), State: st, DNDUntil: dnd, Forward: forward}
	b, err := s.Sign(signer.id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStatusOverRelay: a staff member sets do-not-disturb forwarding to a
// colleague (named as the directory names them); the administrator's
// device takes the status, and a message it sends to the staff member
// reaches both the colleague (marked forwarded for them) and the staff
// member, and says so on the sender's side. Forged statuses (another
// person's carried by a colleague, a bad signature, a rollback, one of
// someone outside the directory, one of another organisation) are
// refused and change nothing. A colleague who cannot be written to
// (blocked) leaves the message with its recipient only, said so. Once
// do-not-disturb has ended (the sender's clock moved on) nothing is
// forwarded.
func TestStatusOverRelay(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	k := &skewClock{}
	o := newDirOrgClock(t, k)
	admin := o.admin
	bob := o.join(t, "Bob Baker", false)
	carol := o.join(t, "Carol Cook", false)
	pat := o.join(t, "Pat Patient", true)
	if _, err := admin.PublishDirectory(ctx, o.spec(t, 0, "Pharmacist", bob, carol)); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, bob, carol)
	if _, err := bob.Status(""); !errors.Is(err, ErrNoStatus) {
		t.Fatalf("a status before any was set: %v", err)
	}
	if _, err := pat.SetStatus(ctx, StatusOptions{Availability: Busy}); !errors.Is(err, ErrNoDirectory) {
		t.Fatalf("an outsider set a status: %v", err)
	}
	if _, err := bob.SetStatus(ctx, StatusOptions{Availability: Busy, ForwardTo: "Pat Patient"}); !errors.Is(err, ErrUnknownContact) {
		t.Fatalf("forwarding to someone outside the directory: %v", err)
	}

	// Bob: do not disturb for an hour, forwarded to Carol, who is not his
	// contact: he names her as the directory does.
	until := time.Now().Add(time.Hour)
	set, err := bob.SetStatus(ctx, StatusOptions{Availability: Busy, DNDUntil: until, ForwardTo: "Carol Cook"})
	if err != nil || set.Sent != 1 || set.Unreached != 1 || !set.Status.Forwarding || set.Status.ForwardTo != "Carol Cook" || set.Status.Name != Me {
		t.Fatalf("set: %+v, %v", set, err)
	}
	syncAll(t, 1, admin)
	held, err := admin.Status("Bob Baker")
	if err != nil || held.Availability != Busy || !held.DoNotDisturb || !held.Forwarding || held.ForwardTo != "Carol Cook" || held.Set != set.Status.Set {
		t.Fatalf("the administrator holds %+v, %v", held, err)
	}
	if all, err := admin.Statuses(); err != nil || len(all) != 1 || all[0].Name != "Bob Baker" {
		t.Fatalf("statuses: %+v, %v", all, err)
	}

	m, err := admin.Send(ctx, "Bob Baker", "refill for bed 4?")
	if err != nil || m.ForwardedTo != "Carol Cook" || !strings.Contains(m.ForwardReason, "Bob Baker has do not disturb until") {
		t.Fatalf("send: %+v, %v", m, err)
	}
	if stored, err := admin.Message(m.ID); err != nil || stored.ForwardedTo != "Carol Cook" || stored.ForwardReason != m.ForwardReason {
		t.Fatalf("stored: %+v, %v", stored, err)
	}
	syncAll(t, 1, bob, carol)
	if got := messagesLike(t, bob, "refill for bed 4?"); len(got) != 1 || got[0].ForwardedFor != "" {
		t.Fatalf("bob received %+v", got)
	}
	got := messagesLike(t, carol, "refill for bed 4?")
	if len(got) != 1 || got[0].ForwardedFor != "Bob Baker" || got[0].From != "Ada" {
		t.Fatalf("carol received %+v", got)
	}
	if sent := messagesLike(t, admin, "refill for bed 4?"); len(sent) != 2 {
		t.Fatalf("the administrator keeps %+v", sent)
	}

	// Forgeries and rollbacks, each refused with nothing changed.
	org := o.enrol.Organisation
	var otherOrg [16]byte
	rand.Read(otherOrg[:])
	later := time.Now().Add(time.Minute)
	flipped := signStatus(t, bob, org, later, directory.OffDuty, time.Time{}, keys.Fingerprint{})
	flipped[58] = byte(directory.Available) // the availability, under bob's signature for off duty
	for _, tc := range []struct {
		name string
		from *Client
		b    []byte
	}{
		{"another person's status, carried by a colleague", carol, signStatus(t, bob, org, later, directory.Available, time.Time{}, keys.Fingerprint{})},
		{"a bad signature", bob, flipped},
		{"a rollback", bob, signStatus(t, bob, org, set.Status.Set.Add(-time.Minute), directory.Available, time.Time{}, keys.Fingerprint{})},
		{"the same version again", bob, signStatus(t, bob, org, set.Status.Set, directory.Available, time.Time{}, keys.Fingerprint{})},
		{"someone outside the directory", pat, signStatus(t, pat, org, later, directory.Available, time.Time{}, keys.Fingerprint{})},
		{"another organisation", bob, signStatus(t, bob, otherOrg, later, directory.Available, time.Time{}, keys.Fingerprint{})},
	} {
		sendStatusContent(t, tc.from, "Ada", tc.b)
		syncAll(t, 1, admin)
		now, err := admin.Status("Bob Baker")
		if err != nil || now != held {
			t.Fatalf("%s: the administrator holds %+v, %v; want %+v", tc.name, now, err, held)
		}
		if _, err := admin.Status("Pat Patient"); err == nil {
			t.Fatalf("%s: a status of an outsider is held", tc.name)
		}
	}

	// A colleague this client cannot write to: the message reaches its
	// recipient only, and says who it was not forwarded to.
	if err := admin.Block(ctx, "Carol Cook"); err != nil {
		t.Fatal(err)
	}
	m, err = admin.Send(ctx, "Bob Baker", "blocked colleague")
	if err != nil || m.ForwardedTo != "" || m.NotForwarded != "Carol Cook" {
		t.Fatalf("send with the colleague blocked: %+v, %v", m, err)
	}
	if err := admin.Unblock(ctx, "Carol Cook"); err != nil {
		t.Fatal(err)
	}

	// Do-not-disturb over: nothing is forwarded.
	k.advance(time.Hour + time.Minute)
	if now, err := admin.Status("Bob Baker"); err != nil || now.Forwarding || now.DoNotDisturb {
		t.Fatalf("after do-not-disturb: %+v, %v", now, err)
	}
	m, err = admin.Send(ctx, "Bob Baker", "after the hour")
	if err != nil || m.ForwardedTo != "" || m.NotForwarded != "" || m.ForwardReason != "" {
		t.Fatalf("send after do-not-disturb: %+v, %v", m, err)
	}
	syncAll(t, 1, carol)
	if got := messagesLike(t, carol, "after the hour"); len(got) != 0 {
		t.Fatalf("carol received %+v", got)
	}

	// A newer status replaces the held one; off duty forwards without
	// do-not-disturb.
	set2, err := bob.SetStatus(ctx, StatusOptions{Availability: OffDuty, ForwardTo: "Carol Cook"})
	if err != nil || !set2.Status.Set.After(set.Status.Set) {
		t.Fatalf("second status: %+v, %v", set2, err)
	}
	syncAll(t, 1, admin)
	if now, err := admin.Status("Bob Baker"); err != nil || now.Availability != OffDuty || !now.Forwarding {
		t.Fatalf("off duty: %+v, %v", now, err)
	}
	m, err = admin.Send(ctx, "Bob Baker", "off duty")
	if err != nil || m.ForwardedTo != "Carol Cook" || m.ForwardReason != "Bob Baker is off duty" {
		t.Fatalf("send off duty: %+v, %v", m, err)
	}
}

// TestStatusContent: a status content encodes only a status of exactly
// its size, and parses back to the same bytes.
func TestStatusContent(t *testing.T) {
	t.Parallel()
	var dev keys.Fingerprint
	dev[0] = 5
	b := bytes.Repeat([]byte{0x5e}, directory.StatusSize)
	ct := &content{Type: contentStatus, Sender: dev, SentMS: 7, Status: b}
	plain, err := ct.marshalSession()
	if err != nil {
		t.Fatal(err)
	}
	back, err := parseSessionContent(plain)
	if err != nil || !bytes.Equal(back.Status, b) {
		t.Fatalf("parse: %v", err)
	}
	for _, n := range []int{0, directory.StatusSize - 1, directory.StatusSize + 1} {
		ct.Status = b[:min(n, len(b))]
		if n > len(b) {
			ct.Status = append(bytes.Clone(b), 0)
		}
		if _, err := ct.marshalSession(); err == nil {
			t.Errorf("a status of %d bytes encoded", n)
		}
	}
	// A forwarded-for header with a zero fingerprint does not parse.
	fw := &content{Type: contentTextHeaders, Sender: dev, SentMS: 8, Text: "x", ForwardedFor: keys.Fingerprint{1}}
	plain, err = fw.marshalSession()
	if err != nil {
		t.Fatal(err)
	}
	if back, err := parseSessionContent(plain); err != nil || back.ForwardedFor != fw.ForwardedFor {
		t.Fatalf("forwarded header: %+v, %v", back, err)
	}
	at := bytes.Index(plain, fw.ForwardedFor[:])
	bad := bytes.Clone(plain)
	bad[at] = 0
	if _, err := parseSessionContent(bad); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("a zero forwarded-for parsed: %v", err)
	}
}

// FuzzStatusContent: a session plaintext carrying a status content
// (0x25) or a text forwarded for someone (0x0a, header bit 2) parses
// exactly or is ErrDecrypt, never panics, and what parses re-encodes to
// the same bytes.
func FuzzStatusContent(f *testing.F) {
	var dev keys.Fingerprint
	dev[0] = 9
	addSessionSeeds(f, []*content{
		{Type: contentStatus, Sender: dev, SentMS: 1, Status: bytes.Repeat([]byte{0x5e}, directory.StatusSize)},
		{Type: contentTextHeaders, Sender: dev, SentMS: 2, Text: "refill?", Subject: "bed 4", Urgent: true, ForwardedFor: keys.Fingerprint{3}},
		{Type: contentTextHeaders, Sender: dev, SentMS: 3, Text: "x", HasReply: true, ForwardedFor: keys.Fingerprint{4}},
	}...)
	fuzzSessionContent(f, nil)
}
