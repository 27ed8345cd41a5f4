package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/audit"
	"github.com/postern/postern/relay/store/bboltstore"
)

// runOK runs the CLI in this process and fails the test on a non-zero exit.
func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr strings.Builder
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("postern-relay %s: exit %d\n%s", strings.Join(args, " "), code, stderr.String())
	}
	return stdout.String()
}

func newTestDevice(t *testing.T) (*identity.Device, protocol.DeviceID) {
	t.Helper()
	id, err := identity.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	dev, err := identity.NewDevice(id)
	if err != nil {
		t.Fatal(err)
	}
	return dev, protocol.DeviceID(dev.Certificate().Signing.Fingerprint())
}

// TestAdminCLI drives `postern-relay admin …` against a running relay
// binary: invite create and revoke, devices, suspend, reinstate and revoke
// of a connected device.
func TestAdminCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a relay process")
	}
	bin := buildRelay(t)
	addr, data := freeAddr(t), t.TempDir()
	startRelay(t, bin, addr, data, "--enrollment", "invite")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // hang guard
	defer cancel()

	codes := strings.Fields(runOK(t, "admin", "invite", "create", "--data", data, "--count", "2"))
	if len(codes) != 2 {
		t.Fatalf("codes %q", codes)
	}
	if out := runOK(t, "admin", "invite", "revoke", codes[0], "--data", data); !strings.Contains(out, "invite revoked") {
		t.Errorf("invite revoke printed %q", out)
	}
	dev, id := newTestDevice(t)
	enrol := func(code string) error {
		c, err := dialRelay(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.ws.CloseNow()
		sig, _ := dev.Sign(protocol.AuthContext, c.conn.AuthMessage())
		_, err = c.do(ctx, &protocol.Enroll{Invite: code, DeviceKey: dev.Certificate().Signing.Bytes(), Signature: sig})
		return err
	}
	var pe *protocol.Error
	if err := enrol(codes[0]); !errors.As(err, &pe) || pe.Code != protocol.CodeEnrollmentRefused {
		t.Fatalf("enrol with a revoked invite: %v", err)
	}
	if err := enrol(codes[1]); err != nil {
		t.Fatalf("enrol: %v", err)
	}

	out := runOK(t, "admin", "devices", "--data", data)
	if !strings.Contains(out, id.Short()) || !strings.Contains(out, "active") || strings.Contains(out, id.String()) {
		t.Errorf("devices:\n%s", out)
	}
	if out := runOK(t, "admin", "devices", "--long", "--data", data); !strings.Contains(out, id.String()) {
		t.Errorf("devices --long:\n%s", out)
	}

	// connected authenticates the device on a new connection.
	connected := func() *wsClient {
		c, err := dialRelay(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.ws.CloseNow() })
		if err := c.authenticate(ctx, dev, false); err != nil {
			t.Fatalf("auth: %v", err)
		}
		return c
	}
	// closedFast checks that the relay closes c with 1008 within a second.
	closedFast := func(c *wsClient, start time.Time) {
		t.Helper()
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		defer rcancel()
		var err error
		for err == nil {
			_, _, err = c.ws.Read(rctx)
		}
		if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Fatalf("connection ended with %v, want close 1008", err)
		}
		if d := time.Since(start); d >= time.Second {
			t.Errorf("closed %v after the command started, want < 1s", d)
		}
	}
	refused := func(want string) {
		t.Helper()
		c, err := dialRelay(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.ws.CloseNow()
		err = c.authenticate(ctx, dev, false)
		if !errors.As(err, &pe) || pe.Code != protocol.CodeDeviceRevoked || pe.Msg != want {
			t.Fatalf("auth after %s: %v", want, err)
		}
	}

	c := connected()
	start := time.Now()
	if out := runOK(t, "admin", "suspend", "--data", data, id.Short()); !strings.Contains(out, "suspended "+id.String()) {
		t.Errorf("suspend printed %q", out)
	}
	closedFast(c, start)
	refused("device suspended")
	if out := runOK(t, "admin", "devices", "--data", data); !strings.Contains(out, "suspended") {
		t.Errorf("devices after suspend:\n%s", out)
	}
	runOK(t, "admin", "reinstate", "--data", data, id.String())

	c = connected()
	start = time.Now()
	runOK(t, "admin", "revoke", "--data", data, id.String())
	closedFast(c, start)
	refused("device revoked")
	if out := runOK(t, "admin", "devices", "--data", data); !strings.Contains(out, "revoked") {
		t.Errorf("devices after revoke:\n%s", out)
	}
	var stderr strings.Builder
	if code := run([]string{"admin", "reinstate", "--data", data, id.String()}, &strings.Builder{}, &stderr); code != 1 || !strings.Contains(stderr.String(), "revoked") {
		t.Errorf("reinstate of a revoked device: exit %d, %q", code, stderr.String())
	}
}

func TestAdminWithoutRelay(t *testing.T) {
	for _, args := range [][]string{
		{"admin", "devices"},
		{"admin", "revoke", "0123456789abcdef"},
		{"admin", "invite", "revoke", "somecode"},
	} {
		var stderr strings.Builder
		code := run(append(args, "--data", t.TempDir()), &strings.Builder{}, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), "postern-relay: error: no relay is running") || !strings.Contains(stderr.String(), "\nhint: ") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr.String())
		}
	}
	var stderr strings.Builder
	if code := run([]string{"admin", "revoke", "--data", t.TempDir()}, &strings.Builder{}, &stderr); code != 1 || !strings.Contains(stderr.String(), "no device IDs") {
		t.Errorf("revoke without IDs: exit %d, %q", code, stderr.String())
	}
}

// TestAdminAccountsCLI drives the account commands against a running relay
// binary: invite codes bound to accounts, devices and accounts listings,
// assign and unassign, and the offboarding of a person with revoke
// --account: both of dr.smith's connected devices are disconnected within
// a second and refused from then on, dr.jones keeps working.
func TestAdminAccountsCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a relay process")
	}
	bin := buildRelay(t)
	addr, data := freeAddr(t), t.TempDir()
	startRelay(t, bin, addr, data, "--enrollment", "invite")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // hang guard
	defer cancel()

	smith := strings.Fields(runOK(t, "invite", "create", "--data", data, "--count", "3", "--account", "dr.smith"))
	jones := strings.Fields(runOK(t, "admin", "invite", "create", "--data", data, "--account", " dr.jones "))
	plainCode := strings.Fields(runOK(t, "invite", "create", "--data", data))
	if len(smith) != 3 || len(jones) != 1 || len(plainCode) != 1 {
		t.Fatalf("codes %q %q %q", smith, jones, plainCode)
	}
	// Enrolled devices, each on a connection it keeps.
	enrol := func(code string) (*identity.Device, protocol.DeviceID, *wsClient) {
		t.Helper()
		dev, id := newTestDevice(t)
		c, err := dialRelay(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.ws.CloseNow() })
		sig, _ := dev.Sign(protocol.AuthContext, c.conn.AuthMessage())
		if _, err := c.do(ctx, &protocol.Enroll{Invite: code, DeviceKey: dev.Certificate().Signing.Bytes(), Signature: sig}); err != nil {
			t.Fatalf("enrol: %v", err)
		}
		return dev, id, c
	}
	devA, idA, connA := enrol(smith[0])
	devB, idB, connB := enrol(smith[1])
	devJ, idJ, connJ := enrol(jones[0])
	_, idP, _ := enrol(plainCode[0])

	out := runOK(t, "admin", "devices", "--data", data)
	for _, want := range []string{"ACCOUNT", idA.Short() + "  dr.smith", idJ.Short() + "  dr.jones", idP.Short() + "  -  "} {
		if !strings.Contains(out, want) {
			t.Errorf("devices lacks %q:\n%s", want, out)
		}
	}
	var listed []relay.AdminDevice
	if err := json.Unmarshal([]byte(runOK(t, "admin", "devices", "--data", data, "--json", "--account", "dr.smith")), &listed); err != nil || len(listed) != 2 || listed[0].Account != "dr.smith" {
		t.Errorf("devices --account dr.smith --json = %+v, %v", listed, err)
	}
	var accts []relay.AdminAccount
	if err := json.Unmarshal([]byte(runOK(t, "admin", "accounts", "--data", data, "--json")), &accts); err != nil || len(accts) != 2 ||
		accts[0].Account != "dr.jones" || accts[0].Active != 1 || accts[1].Account != "dr.smith" || accts[1].Active != 2 || accts[1].Invites != 1 {
		t.Errorf("accounts --json = %+v, %v", accts, err)
	}
	if out := runOK(t, "admin", "accounts", "--data", data); !strings.Contains(out, "ACCOUNT") || !regexp.MustCompile(`dr\.smith\s+2\s+0\s+0\s+\d{4}-\d\d-\d\d\s+1\n`).MatchString(out) {
		t.Errorf("accounts:\n%s", out)
	}

	// assign and unassign the unlabelled device.
	if out := runOK(t, "admin", "assign", "dr.jones", idP.Short(), "--data", data); out != "assigned "+idP.String()+" to dr.jones\n" {
		t.Errorf("assign printed %q", out)
	}
	if out := runOK(t, "admin", "devices", "--data", data, "--account", "dr.jones"); !strings.Contains(out, idP.Short()) {
		t.Errorf("devices --account dr.jones after assign:\n%s", out)
	}
	if out := runOK(t, "admin", "unassign", "--data", data, idP.String()); out != "unassigned "+idP.String()+"\n" {
		t.Errorf("unassign printed %q", out)
	}

	// Offboard dr.smith.
	start := time.Now()
	out = runOK(t, "admin", "revoke", "--account", "dr.smith", "--data", data)
	for _, want := range []string{"revoked " + idA.String() + "\n", "revoked " + idB.String() + "\n", "account dr.smith: 2 devices revoked, 1 unused invite code revoked\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("revoke --account printed %q, lacks %q", out, want)
		}
	}
	for _, c := range []*wsClient{connA, connB} {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		var err error
		for err == nil {
			_, _, err = c.ws.Read(rctx)
		}
		rcancel()
		if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Fatalf("connection ended with %v, want close 1008", err)
		}
		if d := time.Since(start); d >= time.Second {
			t.Errorf("closed %v after the command started, want < 1s", d)
		}
	}
	for _, dev := range []*identity.Device{devA, devB} {
		c, err := dialRelay(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		var pe *protocol.Error
		if err := c.authenticate(ctx, dev, false); !errors.As(err, &pe) || pe.Code != protocol.CodeDeviceRevoked {
			t.Errorf("auth after revoke --account: %v", err)
		}
		c.ws.CloseNow()
	}
	if _, err := connJ.do(ctx, &protocol.GetPrekeyStatus{}); err != nil {
		t.Errorf("dr.jones's connection: %v", err)
	}
	c, err := dialRelay(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.authenticate(ctx, devJ, false); err != nil {
		t.Errorf("dr.jones after dr.smith's revocation: %v", err)
	}
	c.ws.CloseNow()
	if out := runOK(t, "admin", "revoke", "--data", data, "--account", "dr.smith"); out != "account dr.smith: 0 devices revoked, 2 devices unchanged, 0 unused invite codes revoked\n" {
		t.Errorf("revoke --account again printed %q", out)
	}

	// Refusals, each with its message and a hint where there is a fix.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"invite", "create", "--account", "dr\tsmith"}, "postern-relay: error: account label: character U+0009 is not allowed (printable characters and the ASCII space only)\nhint: an account label is 1 to 64 bytes"},
		{[]string{"admin", "assign", strings.Repeat("x", 65), idP.Short()}, "account label: 65 bytes, want 1 to 64\nhint: "},
		{[]string{"admin", "revoke", "--account", "dr.smith", idJ.Short()}, "both device IDs and --account given"},
		{[]string{"admin", "suspend", "--account", "nobody"}, `postern-relay: error: no account "nobody": it has no devices`},
		{[]string{"admin", "revoke", "--account", ""}, "account label: 0 bytes"},
		{[]string{"admin", "assign", "dr.smith"}, "no device IDs"},
	} {
		var stdout, stderr strings.Builder
		if code := run(append(tt.args, "--data", data), &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%q: exit %d, stderr %q, want %q", tt.args, code, stderr.String(), tt.want)
		}
	}
	if out := runOK(t, "admin", "devices", "--data", data, "--account", "dr.jones"); strings.Contains(out, idP.Short()) {
		t.Errorf("a refused assign changed the device:\n%s", out)
	}
}

// TestRevokeAccountIgnoresEnvironment: POSTERN_RELAY_ACCOUNT does not turn
// "admin revoke" without IDs into an offboarding.
func TestRevokeAccountIgnoresEnvironment(t *testing.T) {
	t.Setenv("POSTERN_RELAY_ACCOUNT", "dr.smith")
	var stderr strings.Builder
	if code := run([]string{"admin", "revoke", "--data", t.TempDir()}, &strings.Builder{}, &stderr); code != 1 || !strings.Contains(stderr.String(), "no device IDs") {
		t.Errorf("exit %d, %q", code, stderr.String())
	}
}

// TestOfflineAccountInvites: with no relay running, invite create
// --account writes labelled invites directly to the database and audits
// them with the account.
func TestOfflineAccountInvites(t *testing.T) {
	dir := t.TempDir()
	r, err := relay.New(relay.Config{DataDir: dir, Store: testStore(t, dir), PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if code, _, stderr := runCLI(t, "invite", "create", "--data", dir, "--account", "dr.smith", "--count", "2"); code != 0 {
		t.Fatalf("invite create --account: %s", stderr)
	}
	st, err := bboltstore.Open(filepath.Join(dir, relay.DBFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	accts, err := st.Accounts(context.Background(), time.Now())
	st.Close()
	if err != nil || len(accts) != 1 || accts[0].Label != "dr.smith" || accts[0].Invites != 2 {
		t.Errorf("accounts = %+v, %v", accts, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, audit.LogFile))
	// With the operator: this process's user.
	op := ""
	if uid := os.Getuid(); uid >= 0 {
		op += `"os_uid":"` + strconv.Itoa(uid) + `",`
	}
	if u, err := user.Current(); err == nil {
		op += `"os_user":"` + u.Username + `",`
	}
	if !bytes.Contains(b, []byte(`"event":"invite.created","fields":{"account":"dr.smith","count":2,`+op+`"ttl_seconds":259200,"via":"offline"}`)) {
		t.Errorf("no offline invite entry with the account and the operator %s:\n%s", op, b)
	}
}
