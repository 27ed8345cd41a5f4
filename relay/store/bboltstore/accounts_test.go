package bboltstore

import (
	"errors"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// enrolWith enrols a device with an invite (nil: none).
func enrolWith(t *testing.T, s *Store, id protocol.DeviceID, inv *store.InviteHash) store.Device {
	t.Helper()
	d, err := s.EnrollDevice(ctx, store.Device{ID: id, PublicKey: []byte{1, 2, 3}, Enrolled: t0, Account: "from the client"}, inv, t0)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// accountIndex reads the accounts bucket as label -> device IDs.
func accountIndex(t *testing.T, s *Store) map[string][]protocol.DeviceID {
	t.Helper()
	out := map[string][]protocol.DeviceID{}
	s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bAccounts).ForEach(func(k, _ []byte) error {
			label, id, err := splitAccountKey(k)
			if err != nil {
				t.Error(err)
			}
			out[label] = append(out[label], id)
			return nil
		})
	})
	return out
}

// TestInviteAccount: a device enrolled with a labelled invite belongs to
// the invite's account (never to one the caller names); one enrolled
// without, or with an unlabelled invite, to none.
func TestInviteAccount(t *testing.T) {
	s, _ := openTest(t)
	smith, plain := store.InviteHash{1}, store.InviteHash{2}
	if err := s.AddInvites(ctx, []store.InviteHash{smith}, t0.Add(time.Hour), "dr.smith"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddInvites(ctx, []store.InviteHash{plain}, t0.Add(time.Hour), ""); err != nil {
		t.Fatal(err)
	}
	a := enrolWith(t, s, protocol.DeviceID{0xa}, &smith)
	b := enrolWith(t, s, protocol.DeviceID{0xb}, &plain)
	c := enrolWith(t, s, protocol.DeviceID{0xc}, nil)
	if a.Account != "dr.smith" || b.Account != "" || c.Account != "" {
		t.Errorf("accounts at enrolment: %q %q %q", a.Account, b.Account, c.Account)
	}
	if d, _ := s.Device(ctx, a.ID); d.Account != "dr.smith" || string(d.PublicKey) != "\x01\x02\x03" {
		t.Errorf("stored %+v", d)
	}
	// Enrolling again returns the stored record.
	if d := enrolWith(t, s, a.ID, nil); d.Account != "dr.smith" {
		t.Errorf("re-enrolled %+v", d)
	}
	idx := accountIndex(t, s)
	if len(idx) != 1 || len(idx["dr.smith"]) != 1 || idx["dr.smith"][0] != a.ID {
		t.Errorf("index %v", idx)
	}
	for _, bad := range []string{" dr.smith", strings.Repeat("x", 65), "a\x00b", "tab\there", "\xff", "rtl\u202eoverride"} {
		if err := s.AddInvites(ctx, []store.InviteHash{{9}}, t0.Add(time.Hour), bad); !errors.Is(err, store.ErrAccountLabel) {
			t.Errorf("AddInvites(%q) = %v", bad, err)
		}
	}
	if used, err := s.RevokeInvite(ctx, store.InviteHash{9}); !errors.Is(err, store.ErrUnknownInvite) {
		t.Errorf("a refused AddInvites stored an invite: %v, %v", used, err)
	}
}

func TestAssignAccount(t *testing.T) {
	s, _ := openTest(t)
	a := enrolWith(t, s, protocol.DeviceID{0xa}, nil).ID
	b := enrolWith(t, s, protocol.DeviceID{0xb}, nil).ID
	prev, err := s.AssignAccount(ctx, []protocol.DeviceID{a, b, a}, "nurse 12")
	if err != nil || len(prev) != 3 || prev[0] != "" || prev[1] != "" {
		t.Fatalf("assign = %q, %v", prev, err)
	}
	prev, err = s.AssignAccount(ctx, []protocol.DeviceID{b}, "dr.smith")
	if err != nil || prev[0] != "nurse 12" {
		t.Fatalf("reassign = %q, %v", prev, err)
	}
	idx := accountIndex(t, s)
	if len(idx["nurse 12"]) != 1 || idx["nurse 12"][0] != a || len(idx["dr.smith"]) != 1 || idx["dr.smith"][0] != b {
		t.Errorf("index %v", idx)
	}
	// An unknown device or a bad label refuses the whole request.
	if _, err := s.AssignAccount(ctx, []protocol.DeviceID{a, {0xff}}, "x"); !errors.Is(err, store.ErrUnknownDevice) {
		t.Errorf("assign with an unknown device = %v", err)
	}
	if _, err := s.AssignAccount(ctx, []protocol.DeviceID{a}, "bad\nlabel"); !errors.Is(err, store.ErrAccountLabel) {
		t.Errorf("assign a bad label = %v", err)
	}
	if d, _ := s.Device(ctx, a); d.Account != "nurse 12" {
		t.Errorf("a refused assignment changed the device: %q", d.Account)
	}
	// Cleared.
	if prev, err := s.AssignAccount(ctx, []protocol.DeviceID{a}, ""); err != nil || prev[0] != "nurse 12" {
		t.Fatalf("unassign = %q, %v", prev, err)
	}
	if d, _ := s.Device(ctx, a); d.Account != "" {
		t.Errorf("unassigned device has %q", d.Account)
	}
	if idx := accountIndex(t, s); len(idx) != 1 || len(idx["nurse 12"]) != 0 {
		t.Errorf("index after unassign %v", idx)
	}
	devs, err := s.AccountDevices(ctx, "dr.smith")
	if err != nil || len(devs) != 1 || devs[0].ID != b || devs[0].Account != "dr.smith" {
		t.Errorf("AccountDevices = %+v, %v", devs, err)
	}
	if devs, err := s.AccountDevices(ctx, "nobody"); err != nil || len(devs) != 0 {
		t.Errorf("AccountDevices(nobody) = %+v, %v", devs, err)
	}
}

// TestRevokeAccount: one call revokes every device of the account with
// its data, deletes its unused invites, leaves other accounts alone, and
// counts already revoked devices as unchanged.
func TestRevokeAccount(t *testing.T) {
	s, _ := openTest(t)
	i1, i2, i3, i4, other := store.InviteHash{1}, store.InviteHash{2}, store.InviteHash{3}, store.InviteHash{4}, store.InviteHash{5}
	s.AddInvites(ctx, []store.InviteHash{i1, i2, i3, i4}, t0.Add(time.Hour), "dr.smith")
	s.AddInvites(ctx, []store.InviteHash{other}, t0.Add(time.Hour), "dr.jones")
	a := enrolWith(t, s, ownr, &i1).ID // ownr: mailboxWithCap makes its mailboxes
	b := enrolWith(t, s, protocol.DeviceID{0xb}, &i2).ID
	old := enrolWith(t, s, protocol.DeviceID{0xc}, &i3).ID
	j := enrolWith(t, s, protocol.DeviceID{0xd}, nil).ID
	if _, err := s.AssignAccount(ctx, []protocol.DeviceID{j}, "dr.jones"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeDevice(ctx, old); err != nil {
		t.Fatal(err)
	}
	mb, h := mailboxWithCap(t, s)
	for range 2 {
		if _, err := s.Append(ctx, envelope(mb, t0), h); err != nil {
			t.Fatal(err)
		}
	}
	s.PublishPrekeys(ctx, ownr, []byte("bundle"), [][]byte{{1}})
	keep := protocol.NewMailboxID()
	if err := s.CreateMailbox(ctx, j, keep); err != nil {
		t.Fatal(err)
	}
	if err := s.SuspendDevice(ctx, b, true); err != nil {
		t.Fatal(err)
	}

	accts, err := s.Accounts(ctx, t0)
	if err != nil || len(accts) != 2 {
		t.Fatalf("Accounts = %+v, %v", accts, err)
	}
	want := []store.Account{
		{Label: "dr.jones", Active: 1, LastSeen: t0.Truncate(24 * time.Hour), Invites: 1},
		{Label: "dr.smith", Active: 1, Suspended: 1, Revoked: 1, LastSeen: t0.Truncate(24 * time.Hour), Invites: 1},
	}
	for i := range want {
		if accts[i] != want[i] {
			t.Errorf("account %d = %+v, want %+v", i, accts[i], want[i])
		}
	}
	if accts, _ := s.Accounts(ctx, t0.Add(time.Hour)); accts[1].Invites != 0 {
		t.Errorf("expired invites counted: %+v", accts[1])
	}

	revoked, invites, err := s.RevokeAccount(ctx, "dr.smith")
	if err != nil || invites != 1 || len(revoked) != 2 || revoked[0] != a || revoked[1] != b {
		t.Fatalf("RevokeAccount = %x, %d, %v", revoked, invites, err)
	}
	for _, id := range []protocol.DeviceID{a, b, old} {
		if d, _ := s.Device(ctx, id); !d.Revoked || d.Suspended || d.Account != "dr.smith" {
			t.Errorf("after revocation %+v", d)
		}
	}
	if _, err := s.MailboxOwner(ctx, mb); !errors.Is(err, store.ErrUnknownMailbox) {
		t.Errorf("mailbox of a revoked account: %v", err)
	}
	if envs, _ := s.Range(ctx, mb, 0, 10); len(envs) != 0 {
		t.Errorf("%d envelopes left", len(envs))
	}
	if n, has, _ := s.PrekeyStatus(ctx, ownr); n != 0 || has {
		t.Errorf("prekeys left: %d, %v", n, has)
	}
	if _, err := s.EnrollDevice(ctx, store.Device{ID: protocol.DeviceID{0xe}, PublicKey: []byte{1}, Enrolled: t0}, &i4, t0); !errors.Is(err, store.ErrEnrollmentRefused) {
		t.Errorf("enrol with an invite of the revoked account = %v", err)
	}
	if _, err := s.RevokeInvite(ctx, i1); err != nil {
		t.Errorf("used invite deleted too: %v", err)
	}
	// dr.jones untouched.
	if d, _ := s.Device(ctx, j); d.Revoked || d.Account != "dr.jones" {
		t.Errorf("other account's device %+v", d)
	}
	if _, err := s.MailboxOwner(ctx, keep); err != nil {
		t.Errorf("other account's mailbox: %v", err)
	}
	if _, err := s.EnrollDevice(ctx, store.Device{ID: protocol.DeviceID{0xf}, PublicKey: []byte{1}, Enrolled: t0}, &other, t0); err != nil {
		t.Errorf("enrol with the other account's invite = %v", err)
	}
	// Again: succeeds, changes nothing.
	if revoked, invites, err := s.RevokeAccount(ctx, "dr.smith"); err != nil || len(revoked) != 0 || invites != 0 {
		t.Errorf("revoke again = %x, %d, %v", revoked, invites, err)
	}
	if _, _, err := s.RevokeAccount(ctx, "nobody"); !errors.Is(err, store.ErrUnknownAccount) {
		t.Errorf("revoke unknown = %v", err)
	}
	if _, _, err := s.RevokeAccount(ctx, ""); !errors.Is(err, store.ErrUnknownAccount) {
		t.Errorf("revoke no label = %v", err)
	}
}

func TestSuspendAccount(t *testing.T) {
	s, _ := openTest(t)
	a := enrolWith(t, s, protocol.DeviceID{0xa}, nil).ID
	b := enrolWith(t, s, protocol.DeviceID{0xb}, nil).ID
	c := enrolWith(t, s, protocol.DeviceID{0xc}, nil).ID
	s.AssignAccount(ctx, []protocol.DeviceID{a, b, c}, "dr.smith")
	s.RevokeDevice(ctx, c)
	s.SuspendDevice(ctx, b, true)
	changed, err := s.SuspendAccount(ctx, "dr.smith", true)
	if err != nil || len(changed) != 1 || changed[0] != a {
		t.Fatalf("suspend = %x, %v", changed, err)
	}
	changed, err = s.SuspendAccount(ctx, "dr.smith", false)
	if err != nil || len(changed) != 2 {
		t.Fatalf("restore = %x, %v", changed, err)
	}
	for id, revoked := range map[protocol.DeviceID]bool{a: false, b: false, c: true} {
		if d, _ := s.Device(ctx, id); d.Suspended || d.Revoked != revoked {
			t.Errorf("after restore %+v", d)
		}
	}
	if _, err := s.SuspendAccount(ctx, "nobody", true); !errors.Is(err, store.ErrUnknownAccount) {
		t.Errorf("suspend unknown = %v", err)
	}
}

func TestCheckAccountLabel(t *testing.T) {
	for _, tt := range []struct {
		label string
		want  string // "" = valid
	}{
		{"dr.smith", ""},
		{"HR-004711", ""},
		{"Dr. Müller (Radiologie)", ""},
		{"小林", ""},
		{strings.Repeat("x", store.MaxAccountLabel), ""},
		{"", "0 bytes"},
		{strings.Repeat("x", store.MaxAccountLabel+1), "65 bytes"},
		{" lead", "space"},
		{"trail ", "space"},
		{"new\nline", "U+000A is not allowed"},
		{"nul\x00", "U+0000"},
		{"del\x7f", "U+007F"},
		{"zero\u200bwidth", "U+200B"},
		{"bidi\u202e", "U+202E"},
		{"nbsp\u00a0x", "U+00A0"},
		{"bad\xffutf8", "not UTF-8"},
	} {
		err := store.CheckAccountLabel(tt.label)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tt.label, err)
			}
			continue
		}
		if !errors.Is(err, store.ErrAccountLabel) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.label, err, tt.want)
		}
	}
}
