package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/relaytest"
	"github.com/postern/postern/relay/store"
)

// serveAdmin opens the relay's admin socket.
func serveAdmin(t testing.TB, srv *relaytest.Server) {
	t.Helper()
	l, err := relay.ListenAdmin(srv.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Relay().ServeAdmin(l)
}

func admin(t testing.TB, srv *relaytest.Server, req relay.AdminRequest) (relay.AdminResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 10*time.Second) // hang guard
	defer cancel()
	return relay.Admin(ctx, srv.DataDir, req)
}

// readUntilClosed reads (bounded by d) until the connection ends, and
// returns the frames read and the close error.
func readUntilClosed(c *client, d time.Duration) ([]protocol.Frame, error) {
	ctx, cancel := context.WithTimeout(bg, d)
	defer cancel()
	var frames []protocol.Frame
	for {
		_, b, err := c.ws.Read(ctx)
		if err != nil {
			return frames, err
		}
		if _, f, err := protocol.Parse(b); err == nil {
			frames = append(frames, f)
		}
	}
}

// TestRevokeDuringOpenConnection is the offboarding path: a device
// revoked while connected is disconnected within one second, can no longer
// authenticate or enrol, and its queued envelopes, capabilities and
// prekeys are gone.
func TestRevokeDuringOpenConnection(t *testing.T) {
	srv := relaytest.New(t, nil)
	serveAdmin(t, srv)
	own, d, mb, tok := owner(t, srv.URL)
	wantType[*protocol.OK](t, own.do(&protocol.PublishPrekeys{Bundle: []byte("bundle"), Prekeys: [][]byte{{1}, {2}}}))
	snd := dial(t, srv.URL)
	for i := range 3 {
		wantType[*protocol.Sent](t, snd.send(mb, tok, sealed(byte(i))))
	}
	// A second connection of the device, subscribed: it is closed too.
	sub := dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, sub.auth(d))
	wantType[*protocol.OK](t, sub.do(&protocol.Subscribe{Mailbox: mb}))
	bystander, _, bmb, btok := owner(t, srv.URL)

	resp, err := admin(t, srv, relay.AdminRequest{Op: "device.revoke", IDs: []string{deviceID(d).String()}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Done) != 1 || resp.Done[0] != deviceID(d).String() {
		t.Errorf("done = %v", resp.Done)
	}
	for _, c := range []*client{own, sub} {
		// The relay closes the idle connection itself; the deadline only
		// guards against a hang (no timing is asserted).
		frames, err := readUntilClosed(c, 30*time.Second)
		if s := websocket.CloseStatus(err); s != websocket.StatusPolicyViolation {
			t.Fatalf("connection ended with %v, want close %d", err, websocket.StatusPolicyViolation)
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) && ce.Reason != "device revoked" {
			t.Errorf("close reason %q", ce.Reason)
		}
		if len(frames) == 0 {
			t.Fatal("no Error frame before the close")
		}
		wantCode(t, frames[len(frames)-1], protocol.CodeDeviceRevoked)
	}

	// Every later request from the device is refused.
	wantCode(t, dial(t, srv.URL).auth(d), protocol.CodeDeviceRevoked)
	wantCode(t, dial(t, srv.URL).enroll(d, ""), protocol.CodeDeviceRevoked)
	c := dial(t, srv.URL)
	wantCode(t, c.auth(d), protocol.CodeDeviceRevoked)
	wantCode(t, c.do(&protocol.CreateMailbox{}), protocol.CodeAuthRequired)

	// Its data is gone: senders learn nothing more than for a mailbox that
	// never existed.
	wantCode(t, snd.send(mb, tok, sealed(9)), protocol.CodeUnknownCapability)
	wantCode(t, snd.do(&protocol.FetchBundle{Mailbox: mb, Capability: tok}), protocol.CodeUnknownCapability)
	st := srv.Relay().Store()
	if envs, err := st.Range(bg, mb, 0, 100); err != nil || len(envs) != 0 {
		t.Errorf("queued envelopes after revocation: %d, %v", len(envs), err)
	}
	if n, has, _ := st.PrekeyStatus(bg, deviceID(d)); n != 0 || has {
		t.Errorf("prekeys after revocation: %d, bundle %v", n, has)
	}
	// Another device is untouched.
	wantType[*protocol.Sent](t, snd.send(bmb, btok, sealed(1)))
	if n := queued(t, bystander, bmb); n != 1 {
		t.Errorf("bystander queue = %d", n)
	}

	// Revocation survives a restart.
	srv.Restart()
	wantCode(t, dial(t, srv.URL).auth(d), protocol.CodeDeviceRevoked)
}

// TestSuspendRestore: a suspended device is disconnected and refused, its
// mailboxes keep receiving; restored, it authenticates and finds them.
func TestSuspendRestore(t *testing.T) {
	srv := relaytest.New(t, nil)
	r := srv.Relay()
	own, d, mb, tok := owner(t, srv.URL)
	if err := r.SuspendDevice(bg, deviceID(d)); err != nil {
		t.Fatal(err)
	}
	frames, err := readUntilClosed(own, 2*time.Second)
	if s := websocket.CloseStatus(err); s != websocket.StatusPolicyViolation {
		t.Fatalf("connection ended with %v", err)
	}
	if len(frames) == 0 {
		t.Fatal("no Error frame before the close")
	}
	wantCode(t, frames[len(frames)-1], protocol.CodeDeviceRevoked)
	f := dial(t, srv.URL).auth(d)
	wantCode(t, f, protocol.CodeDeviceRevoked)
	if msg := f.(*protocol.ErrorFrame).Msg; msg != "device suspended" {
		t.Errorf("message %q", msg)
	}
	wantCode(t, dial(t, srv.URL).enroll(d, ""), protocol.CodeDeviceRevoked)
	wantType[*protocol.Sent](t, dial(t, srv.URL).send(mb, tok, sealed(1)))

	if err := r.ReinstateDevice(bg, deviceID(d)); err != nil {
		t.Fatal(err)
	}
	c := dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, c.auth(d))
	if n := queued(t, c, mb); n != 1 {
		t.Errorf("queued after restore = %d, want 1", n)
	}

	if err := r.RevokeDevice(bg, deviceID(d)); err != nil {
		t.Fatal(err)
	}
	if err := r.ReinstateDevice(bg, deviceID(d)); !errors.Is(err, store.ErrDeviceRevoked) {
		t.Errorf("restore revoked = %v", err)
	}
	if err := r.SuspendDevice(bg, deviceID(d)); !errors.Is(err, store.ErrDeviceRevoked) {
		t.Errorf("suspend revoked = %v", err)
	}
	if err := r.SuspendDevice(bg, protocol.DeviceID{1}); !errors.Is(err, store.ErrUnknownDevice) {
		t.Errorf("suspend unknown = %v", err)
	}
}

// TestDeviceList: opaque IDs, days and states; never a mailbox.
func TestDeviceList(t *testing.T) {
	clk := newClock()
	srv := relaytest.New(t, &relaytest.Options{Now: clk.Now})
	serveAdmin(t, srv)
	own, d, mb, _ := owner(t, srv.URL)
	own.ws.CloseNow()
	_, d2, mb2, _ := owner(t, srv.URL)
	clk.Advance(49 * time.Hour)
	wantType[*protocol.Authenticated](t, dial(t, srv.URL).auth(d))
	if _, err := admin(t, srv, relay.AdminRequest{Op: "device.suspend", IDs: []string{deviceID(d2).Short()}}); err != nil {
		t.Fatal(err)
	}

	resp, err := admin(t, srv, relay.AdminRequest{Op: "device.list"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(resp)
	for _, m := range []protocol.MailboxID{mb, mb2} {
		if strings.Contains(string(raw), m.String()) || strings.Contains(string(raw), m.Short()) {
			t.Errorf("device list names a mailbox: %s", raw)
		}
	}
	want := map[string]relay.AdminDevice{
		deviceID(d).String():  {ID: deviceID(d).String(), Short: deviceID(d).Short(), Enrolled: "2026-03-01", LastSeen: "2026-03-03", State: relay.DeviceActive},
		deviceID(d2).String(): {ID: deviceID(d2).String(), Short: deviceID(d2).Short(), Enrolled: "2026-03-01", LastSeen: "2026-03-01", State: relay.DeviceSuspended},
	}
	if len(resp.Devices) != len(want) {
		t.Fatalf("listed %d devices, want %d", len(resp.Devices), len(want))
	}
	for _, got := range resp.Devices {
		if got != want[got.ID] {
			t.Errorf("listed %+v, want %+v", got, want[got.ID])
		}
	}
}

func TestAdminDeviceNames(t *testing.T) {
	srv := relaytest.New(t, nil)
	serveAdmin(t, srv)
	_, d, _, _ := owner(t, srv.URL)
	id := deviceID(d).String()
	tests := []struct {
		name string
		ids  []string
		want string // error substring; "" = accepted
	}{
		{"none", nil, "no device IDs"},
		{"too short", []string{id[:7]}, "hex digits"},
		{"not hex", []string{"zz" + id[2:]}, "hex digits"},
		{"unknown", []string{"00000000"}, "no device"},
		{"one unknown, nothing done", []string{id, "00000000"}, "no device"},
		{"prefix, upper case", []string{strings.ToUpper(id[:8])}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := admin(t, srv, relay.AdminRequest{Op: "device.suspend", IDs: tt.ids})
			if tt.want == "" {
				if err != nil || len(resp.Done) != 1 || resp.Done[0] != id {
					t.Fatalf("= %+v, %v", resp, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if got, _ := srv.Relay().Store().Device(bg, deviceID(d)); got.Suspended {
				t.Fatal("refused request changed the device")
			}
		})
	}
}

func TestInviteRevoke(t *testing.T) {
	srv := relaytest.New(t, &relaytest.Options{Enrollment: relay.EnrollInvite})
	serveAdmin(t, srv)
	resp, err := admin(t, srv, relay.AdminRequest{Op: "invite.create", Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	codes := resp.Codes
	wantType[*protocol.Authenticated](t, dial(t, srv.URL).enroll(newDevice(t), codes[1]))
	tests := []struct {
		name     string
		code     string
		wantUsed bool
		wantErr  bool
	}{
		{"unused", codes[0], false, false},
		{"again", codes[0], false, true},
		{"used", strings.ToUpper(codes[1]), true, false},
		{"empty", "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := admin(t, srv, relay.AdminRequest{Op: "invite.revoke", Code: tt.code})
			if (err != nil) != tt.wantErr || resp.Used != tt.wantUsed {
				t.Fatalf("= %+v, %v", resp, err)
			}
		})
	}
	wantCode(t, dial(t, srv.URL).enroll(newDevice(t), codes[0]), protocol.CodeEnrollmentRefused)
}

// TestRevokeRacesAuth: connections authenticating while the device is
// revoked either are refused or are closed; none stays open.
func TestRevokeRacesAuth(t *testing.T) {
	srv := relaytest.New(t, nil)
	_, d, _, _ := owner(t, srv.URL)
	const n = 8
	conns := make([]*client, n)
	for i := range conns {
		conns[i] = dial(t, srv.URL)
	}
	sigs := make([][]byte, n)
	for i, c := range conns {
		sigs[i], _ = d.Sign(protocol.AuthContext, c.authMessage())
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Relay().RevokeDevice(bg, deviceID(d)); err != nil {
			t.Error(err)
		}
	}()
	for i, c := range conns {
		b, _ := protocol.Marshal(1, &protocol.Auth{Device: deviceID(d), Signature: sigs[i]})
		c.ws.Write(bg, websocket.MessageBinary, b)
	}
	<-done
	for i, c := range conns {
		f := c.answer(1)
		if _, ok := f.(*protocol.Authenticated); !ok {
			wantCode(t, f, protocol.CodeDeviceRevoked)
			continue
		}
		if _, err := readUntilClosed(c, 5*time.Second); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Errorf("conn %d authenticated and stayed open: %v", i, err)
		}
	}
}
