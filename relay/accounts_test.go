package relay_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/audit"
	"github.com/postern/postern/relay/relaytest"
)

// member is a device enrolled with an invite, with its connection still
// open, one mailbox and a capability for it.
type member struct {
	c   *client
	d   *identity.Device
	mb  protocol.MailboxID
	tok protocol.CapabilityToken
}

func (m member) id() protocol.DeviceID { return deviceID(m.d) }

func enrolMember(t *testing.T, srv *relaytest.Server, code string) member {
	t.Helper()
	c := dial(t, srv.URL)
	d := newDevice(t)
	wantType[*protocol.Authenticated](t, c.enroll(d, code))
	mb := wantType[*protocol.MailboxCreated](t, c.do(&protocol.CreateMailbox{})).Mailbox
	tok := protocol.NewCapabilityToken()
	wantType[*protocol.OK](t, c.do(&protocol.AddCapability{Mailbox: mb, Hash: tok.Hash()}))
	return member{c, d, mb, tok}
}

func inviteCodes(t *testing.T, srv *relaytest.Server, n int, account string) []string {
	t.Helper()
	resp, err := admin(t, srv, relay.AdminRequest{Op: "invite.create", Count: n, Account: account})
	if err != nil || len(resp.Codes) != n {
		t.Fatalf("invite.create %q: %+v, %v", account, resp, err)
	}
	return resp.Codes
}

func accountList(t *testing.T, srv *relaytest.Server) map[string]relay.AdminAccount {
	t.Helper()
	resp, err := admin(t, srv, relay.AdminRequest{Op: "account.list"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]relay.AdminAccount{}
	for _, a := range resp.Accounts {
		out[a.Account] = a
	}
	return out
}

// auditLines returns the audit log's lines that contain every one of
// parts.
func auditLines(t *testing.T, srv *relaytest.Server, parts ...string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(srv.DataDir, audit.LogFile))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// TestRevokeAccount is the offboarding path for a person: two devices
// enrolled with invites for dr.smith, connected, are disconnected within
// one second by one account.revoke on the admin socket; they can no longer
// authenticate, their queued envelopes are gone, dr.smith's unused invite
// no longer enrols, and another account's device and an unlabelled one
// keep working.
func TestRevokeAccount(t *testing.T) {
	var logs bytes.Buffer
	srv := relaytest.New(t, &relaytest.Options{Enrollment: relay.EnrollInvite, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	serveAdmin(t, srv)
	smithCodes := inviteCodes(t, srv, 3, "dr.smith")
	jones := enrolMember(t, srv, inviteCodes(t, srv, 1, "dr.jones")[0])
	plain := enrolMember(t, srv, inviteCodes(t, srv, 1, "")[0])
	a := enrolMember(t, srv, smithCodes[0])
	b := enrolMember(t, srv, smithCodes[1])
	// A second connection of a, subscribed: it is closed too.
	sub := dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, sub.auth(a.d))
	wantType[*protocol.OK](t, sub.do(&protocol.Subscribe{Mailbox: a.mb}))
	snd := dial(t, srv.URL)
	for _, m := range []member{a, b, b, jones} {
		wantType[*protocol.Sent](t, snd.send(m.mb, m.tok, sealed(1)))
	}

	accts := accountList(t, srv)
	if len(accts) != 2 ||
		accts["dr.smith"] != (relay.AdminAccount{Account: "dr.smith", Active: 2, LastSeen: time.Now().UTC().Format(time.DateOnly), Invites: 1}) ||
		accts["dr.jones"] != (relay.AdminAccount{Account: "dr.jones", Active: 1, LastSeen: time.Now().UTC().Format(time.DateOnly), Invites: 0}) {
		t.Errorf("account.list = %+v", accts)
	}
	resp, err := admin(t, srv, relay.AdminRequest{Op: "device.list", Account: "dr.smith"})
	if err != nil || len(resp.Devices) != 2 {
		t.Fatalf("device.list dr.smith = %+v, %v", resp, err)
	}
	for _, d := range resp.Devices {
		if d.Account != "dr.smith" || (d.ID != a.id().String() && d.ID != b.id().String()) {
			t.Errorf("listed %+v", d)
		}
	}

	start := time.Now()
	resp, err = admin(t, srv, relay.AdminRequest{Op: "account.revoke", Account: "dr.smith"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{a.id().String(), b.id().String()}
	slices.Sort(want)
	got := slices.Sorted(slices.Values(resp.Done))
	if !slices.Equal(got, want) || resp.InvitesRevoked != 1 || len(resp.Unchanged) != 0 {
		t.Errorf("account.revoke = %+v, want done %v and 1 invite", resp, want)
	}
	for _, c := range []*client{a.c, b.c, sub} {
		frames, err := readUntilClosed(c, 2*time.Second)
		elapsed := time.Since(start)
		if s := websocket.CloseStatus(err); s != websocket.StatusPolicyViolation {
			t.Fatalf("connection ended with %v, want close 1008", err)
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) && ce.Reason != "device revoked" {
			t.Errorf("close reason %q", ce.Reason)
		}
		if elapsed >= time.Second {
			t.Errorf("connection closed %v after the revocation, want < 1s", elapsed)
		}
		if len(frames) == 0 {
			t.Fatal("no Error frame before the close")
		}
		wantCode(t, frames[len(frames)-1], protocol.CodeDeviceRevoked)
	}
	for _, m := range []member{a, b} {
		wantCode(t, dial(t, srv.URL).auth(m.d), protocol.CodeDeviceRevoked)
		wantCode(t, snd.send(m.mb, m.tok, sealed(2)), protocol.CodeUnknownCapability)
		if envs, err := srv.Relay().Store().Range(bg, m.mb, 0, 100); err != nil || len(envs) != 0 {
			t.Errorf("queued envelopes after revocation: %d, %v", len(envs), err)
		}
	}
	wantCode(t, dial(t, srv.URL).enroll(newDevice(t), smithCodes[2]), protocol.CodeEnrollmentRefused)

	// The other account and the unlabelled device keep working, on the
	// connections they had.
	for _, m := range []member{jones, plain} {
		wantType[*protocol.PrekeyStatus](t, m.c.do(&protocol.GetPrekeyStatus{}))
		wantType[*protocol.Sent](t, snd.send(m.mb, m.tok, sealed(3)))
	}
	if n := queued(t, jones.c, jones.mb); n != 2 {
		t.Errorf("dr.jones queue = %d, want 2", n)
	}

	accts = accountList(t, srv)
	if s := accts["dr.smith"]; s.Revoked != 2 || s.Active != 0 || s.Invites != 0 {
		t.Errorf("dr.smith after revocation = %+v", s)
	}
	if j := accts["dr.jones"]; j.Active != 1 {
		t.Errorf("dr.jones after revocation = %+v", j)
	}
	// Again: succeeds and changes nothing.
	resp, err = admin(t, srv, relay.AdminRequest{Op: "account.revoke", Account: " dr.smith "})
	if err != nil || len(resp.Done) != 0 || len(resp.Unchanged) != 2 || resp.InvitesRevoked != 0 {
		t.Errorf("revoke again = %+v, %v", resp, err)
	}
	if _, err := admin(t, srv, relay.AdminRequest{Op: "account.revoke", Account: "dr.nobody"}); err == nil || !strings.Contains(err.Error(), `no account "dr.nobody"`) {
		t.Errorf("revoke of an unknown account = %v", err)
	}

	// Audit: the account entry with its counts, after one entry per device.
	if l := auditLines(t, srv, `"event":"account.revoked"`, `"account":"dr.smith"`, `"devices":2`, `"invites_revoked":1`); len(l) != 1 {
		t.Errorf("account.revoked entries: %q", l)
	}
	for _, m := range []member{a, b} {
		if l := auditLines(t, srv, `"event":"device.revoked"`, m.id().String()); len(l) != 1 {
			t.Errorf("device.revoked entries for %s: %q", m.id().Short(), l)
		}
		if l := auditLines(t, srv, `"event":"device.enrolled"`, m.id().String(), `"account":"dr.smith"`); len(l) != 1 {
			t.Errorf("device.enrolled entries for %s: %q", m.id().Short(), l)
		}
	}
	if l := auditLines(t, srv, `"event":"invite.created"`, `"account":"dr.smith"`, `"count":3`); len(l) != 1 {
		t.Errorf("invite.created entries: %q", l)
	}
	if strings.Contains(logs.String(), "dr.smith") {
		t.Error("the account label is in the relay's log")
	}
	// Revocation survives a restart.
	srv.Restart()
	wantCode(t, dial(t, srv.URL).auth(a.d), protocol.CodeDeviceRevoked)
}

// TestSuspendRestoreAccount: suspending an account disconnects and
// refuses its active devices and keeps their data; a revoked device of
// the account stays revoked through suspend and restore.
func TestSuspendReinstateAccount(t *testing.T) {
	srv := relaytest.New(t, &relaytest.Options{Enrollment: relay.EnrollInvite})
	serveAdmin(t, srv)
	codes := inviteCodes(t, srv, 3, "nurse 12")
	a, b, gone := enrolMember(t, srv, codes[0]), enrolMember(t, srv, codes[1]), enrolMember(t, srv, codes[2])
	if err := srv.Relay().RevokeDevice(bg, gone.id()); err != nil {
		t.Fatal(err)
	}
	resp, err := admin(t, srv, relay.AdminRequest{Op: "account.suspend", Account: "nurse 12"})
	if err != nil || len(resp.Done) != 2 || len(resp.Unchanged) != 1 || resp.Unchanged[0] != gone.id().String() {
		t.Fatalf("account.suspend = %+v, %v", resp, err)
	}
	for _, m := range []member{a, b} {
		_, err := readUntilClosed(m.c, 2*time.Second)
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "device suspended" {
			t.Errorf("connection ended with %v", err)
		}
		f := dial(t, srv.URL).auth(m.d)
		wantCode(t, f, protocol.CodeDeviceRevoked)
		wantType[*protocol.Sent](t, dial(t, srv.URL).send(m.mb, m.tok, sealed(1)))
	}
	if s := accountList(t, srv)["nurse 12"]; s.Suspended != 2 || s.Revoked != 1 {
		t.Errorf("account.list = %+v", s)
	}
	resp, err = admin(t, srv, relay.AdminRequest{Op: "account.reinstate", Account: "nurse 12"})
	if err != nil || len(resp.Done) != 2 || len(resp.Unchanged) != 1 {
		t.Fatalf("account.restore = %+v, %v", resp, err)
	}
	for _, m := range []member{a, b} {
		c := dial(t, srv.URL)
		wantType[*protocol.Authenticated](t, c.auth(m.d))
		if n := queued(t, c, m.mb); n != 1 {
			t.Errorf("queued after restore = %d", n)
		}
	}
	wantCode(t, dial(t, srv.URL).auth(gone.d), protocol.CodeDeviceRevoked)
	if l := auditLines(t, srv, `"event":"account.suspended"`, `"account":"nurse 12"`, `"devices":2`); len(l) != 1 {
		t.Errorf("account.suspended entries: %q", l)
	}
	if l := auditLines(t, srv, `"event":"account.restored"`, `"devices":2`); len(l) != 1 {
		t.Errorf("account.restored entries: %q", l)
	}
	if _, err := admin(t, srv, relay.AdminRequest{Op: "account.suspend", Account: "nobody"}); err == nil || !strings.Contains(err.Error(), "no devices") {
		t.Errorf("suspend of an unknown account = %v", err)
	}
}

// TestAssignAccount: devices enrolled without a labelled invite join an
// account by device.assign and leave it by device.assign with no label;
// the account's revocation then covers them.
func TestAssignAccount(t *testing.T) {
	srv := relaytest.New(t, nil)
	serveAdmin(t, srv)
	own, d, _, _ := owner(t, srv.URL)
	_, d2, _, _ := owner(t, srv.URL)
	id, id2 := deviceID(d), deviceID(d2)
	resp, err := admin(t, srv, relay.AdminRequest{Op: "device.assign", Account: "HR-004711", IDs: []string{id.Short(), id2.String()}})
	if err != nil || len(resp.Done) != 2 {
		t.Fatalf("assign = %+v, %v", resp, err)
	}
	if a := accountList(t, srv)["HR-004711"]; a.Active != 2 {
		t.Errorf("account.list = %+v", a)
	}
	if _, err := admin(t, srv, relay.AdminRequest{Op: "device.assign", IDs: []string{id2.Short()}}); err != nil {
		t.Fatal(err)
	}
	list, _ := admin(t, srv, relay.AdminRequest{Op: "device.list"})
	for _, dev := range list.Devices {
		want := map[string]string{id.String(): "HR-004711", id2.String(): ""}[dev.ID]
		if dev.Account != want {
			t.Errorf("device %s account %q, want %q", dev.Short, dev.Account, want)
		}
	}
	if l := auditLines(t, srv, `"event":"device.assigned"`); len(l) != 3 ||
		!strings.Contains(l[2], `"account":""`) || !strings.Contains(l[2], `"previous":"HR-004711"`) {
		t.Errorf("device.assigned entries: %q", l)
	}
	if _, err := admin(t, srv, relay.AdminRequest{Op: "account.revoke", Account: "HR-004711"}); err != nil {
		t.Fatal(err)
	}
	if _, err := readUntilClosed(own, 2*time.Second); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Errorf("assigned device's connection: %v", err)
	}
	wantType[*protocol.Authenticated](t, dial(t, srv.URL).auth(d2))
}

// TestAccountLabelRefused: a bad label is refused with a message saying
// what is wrong, by every op that takes one, and nothing changes. (Bytes
// that are not UTF-8 cannot reach the relay: JSON carries text. The store
// refuses them: TestCheckAccountLabel.)
func TestAccountLabelRefused(t *testing.T) {
	srv := relaytest.New(t, nil)
	serveAdmin(t, srv)
	_, d, _, _ := owner(t, srv.URL)
	id := deviceID(d).String()
	for _, tt := range []struct {
		label, want string
	}{
		{strings.Repeat("x", 65), "account label: 65 bytes, want 1 to 64"},
		{"   ", "account label: 0 bytes, want 1 to 64"},
		{"dr\nsmith", "account label: character U+000A is not allowed"},
		{"dr.\u202esmith", "account label: character U+202E is not allowed"},
	} {
		for _, req := range []relay.AdminRequest{
			{Op: "invite.create", Account: tt.label},
			{Op: "device.assign", Account: tt.label, IDs: []string{id}},
			{Op: "device.list", Account: tt.label},
			{Op: "account.revoke", Account: tt.label},
			{Op: "account.suspend", Account: tt.label},
			{Op: "account.reinstate", Account: tt.label},
		} {
			if req.Op == "device.assign" && strings.TrimSpace(tt.label) == "" {
				continue // an empty label removes the device's
			}
			if req.Op == "device.list" && strings.TrimSpace(tt.label) == "" {
				continue // no filter
			}
			resp, err := admin(t, srv, req)
			if err == nil || !strings.Contains(err.Error(), tt.want) || len(resp.Codes) != 0 {
				t.Errorf("%s %q = %+v, %v; want %q", req.Op, tt.label, resp, err, tt.want)
			}
		}
	}
	if accts := accountList(t, srv); len(accts) != 0 {
		t.Errorf("accounts after refused requests: %+v", accts)
	}
	if dev, _ := srv.Relay().Store().Device(bg, deviceID(d)); dev.Account != "" {
		t.Errorf("device account %q after refused requests", dev.Account)
	}
	// Labels are trimmed, and the admin's own name for a person can be any
	// printable text.
	if _, err := admin(t, srv, relay.AdminRequest{Op: "device.assign", Account: "  Dr. Müller (Radiologie)  ", IDs: []string{id}}); err != nil {
		t.Fatal(err)
	}
	if dev, _ := srv.Relay().Store().Device(bg, deviceID(d)); dev.Account != "Dr. Müller (Radiologie)" {
		t.Errorf("stored label %q", dev.Account)
	}
	raw, _ := json.Marshal(accountList(t, srv))
	if !strings.Contains(string(raw), `"Dr. Müller (Radiologie)"`) {
		t.Errorf("account.list = %s", raw)
	}
}
