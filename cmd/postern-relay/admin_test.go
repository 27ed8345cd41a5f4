package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
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
// binary: invite create and revoke, devices, suspend, restore and revoke
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
		sig, _ := dev.Sign(protocol.AuthContext, protocol.AuthMessage(c.nonce, c.host))
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
	runOK(t, "admin", "restore", "--data", data, id.String())

	c = connected()
	start = time.Now()
	runOK(t, "admin", "revoke", "--data", data, id.String())
	closedFast(c, start)
	refused("device revoked")
	if out := runOK(t, "admin", "devices", "--data", data); !strings.Contains(out, "revoked") {
		t.Errorf("devices after revoke:\n%s", out)
	}
	var stderr strings.Builder
	if code := run([]string{"admin", "restore", "--data", data, id.String()}, &strings.Builder{}, &stderr); code != 1 || !strings.Contains(stderr.String(), "revoked") {
		t.Errorf("restore of a revoked device: exit %d, %q", code, stderr.String())
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
