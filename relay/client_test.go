package relay_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/internal/relayconn"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
)

// clock is an injectable clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC)} }
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// client is a minimal protocol client for tests: a relayconn.Conn in
// direct mode that pipelines nothing and keeps pushed frames (Deliver,
// Drained) aside while it waits for answers. ws is the connection's
// WebSocket, for what a well-behaved client never sends.
type client struct {
	t      testing.TB
	conn   *relayconn.Conn
	ws     *websocket.Conn
	host   string
	nonce  [32]byte
	next   uint32
	pushes []protocol.Frame
}

var bg = context.Background()

func dial(t testing.TB, url string) *client {
	t.Helper()
	return dialWith(t, url, nil)
}

// dialWith dials with opts (a transport, headers) and reads the challenge.
func dialWith(t testing.TB, url string, opts *relayconn.Options) *client {
	t.Helper()
	conn, err := relayconn.Dial(bg, url, opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(conn.CloseNow)
	return &client{t: t, conn: conn, ws: conn.WebSocket(), host: conn.Host(), nonce: conn.Challenge().Nonce}
}

// rawClient reads and writes frames on ws, a connection dialled by a test
// of the upgrade itself; nothing is read yet.
func rawClient(t testing.TB, ws *websocket.Conn) *client {
	conn := relayconn.Wrap(ws, "")
	return &client{t: t, conn: conn, ws: ws}
}

func (c *client) read() (uint32, protocol.Frame) {
	c.t.Helper()
	id, f, err := c.readErr()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return id, f
}

func (c *client) readErr() (uint32, protocol.Frame, error) {
	ctx, cancel := context.WithTimeout(bg, 30*time.Second) // a hang guard, not an assertion
	defer cancel()
	return c.conn.ReadFrame(ctx)
}

func (c *client) write(f protocol.Frame) uint32 {
	c.t.Helper()
	c.next++
	if err := c.conn.WriteFrame(bg, c.next, f); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	return c.next
}

// do sends a request and returns its answer, keeping pushes aside.
func (c *client) do(f protocol.Frame) protocol.Frame {
	c.t.Helper()
	id := c.write(f)
	return c.answer(id)
}

func (c *client) answer(id uint32) protocol.Frame {
	c.t.Helper()
	for range 100000 {
		rid, f := c.read()
		if rid == id {
			return f
		}
		if rid != 0 {
			c.t.Fatalf("answer to request %d while waiting for %d", rid, id)
		}
		c.pushes = append(c.pushes, f)
	}
	c.t.Fatal("no answer")
	return nil
}

// push returns the next pushed frame (queued or read).
func (c *client) push() protocol.Frame {
	c.t.Helper()
	if len(c.pushes) > 0 {
		f := c.pushes[0]
		c.pushes = c.pushes[1:]
		return f
	}
	id, f := c.read()
	if id != 0 {
		c.t.Fatalf("unexpected answer to request %d: %T", id, f)
	}
	return f
}

func wantCode(t testing.TB, f protocol.Frame, code protocol.Code) {
	t.Helper()
	e, ok := f.(*protocol.ErrorFrame)
	if !ok {
		t.Fatalf("answer = %T, want error %d (%v)", f, code, code)
	}
	if e.Code != code {
		t.Fatalf("error %d (%v: %s), want %d (%v)", e.Code, e.Code, e.Msg, code, code)
	}
}

func wantType[T protocol.Frame](t testing.TB, f protocol.Frame) T {
	t.Helper()
	v, ok := f.(T)
	if !ok {
		if e, isErr := f.(*protocol.ErrorFrame); isErr {
			t.Fatalf("answer = error %d (%v): %s, want %T", e.Code, e.Code, e.Msg, v)
		}
		t.Fatalf("answer = %T, want %T", f, v)
	}
	return v
}

// wantClose reads until the connection closes and checks the status.
func wantClose(t testing.TB, c *client, status websocket.StatusCode) {
	t.Helper()
	for range 1000 {
		_, _, err := c.readErr()
		if err == nil {
			continue
		}
		if got := websocket.CloseStatus(err); got != status {
			t.Fatalf("connection ended with %v (status %d), want status %d", err, got, status)
		}
		return
	}
	t.Fatal("connection did not close")
}

func newDevice(t testing.TB) *identity.Device {
	t.Helper()
	id, err := identity.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	d, err := identity.NewDevice(id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (c *client) authMessage() []byte { return c.conn.AuthMessage() }

func (c *client) enroll(d *identity.Device, invite string) protocol.Frame {
	c.t.Helper()
	sig, err := d.Sign(protocol.AuthContext, c.authMessage())
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(&protocol.Enroll{Invite: invite, DeviceKey: d.Certificate().Signing.Bytes(), Signature: sig})
}

func (c *client) auth(d *identity.Device) protocol.Frame {
	c.t.Helper()
	sig, err := d.Sign(protocol.AuthContext, c.authMessage())
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(&protocol.Auth{Device: deviceID(d), Signature: sig})
}

func deviceID(d *identity.Device) protocol.DeviceID {
	return protocol.DeviceID(d.Certificate().Signing.Fingerprint())
}

// owner dials, enrols a new device and creates a mailbox with one
// capability.
func owner(t testing.TB, url string) (*client, *identity.Device, protocol.MailboxID, protocol.CapabilityToken) {
	t.Helper()
	c := dial(t, url)
	d := newDevice(t)
	wantType[*protocol.Authenticated](t, c.enroll(d, ""))
	mb := wantType[*protocol.MailboxCreated](t, c.do(&protocol.CreateMailbox{})).Mailbox
	tok := protocol.NewCapabilityToken()
	wantType[*protocol.OK](t, c.do(&protocol.AddCapability{Mailbox: mb, Hash: tok.Hash()}))
	return c, d, mb, tok
}

func sealed(fill byte) []byte {
	b := make([]byte, 1024)
	b[0], b[1] = protocol.Version, byte(protocol.KindSealed)
	for i := 2; i < len(b); i++ {
		b[i] = fill
	}
	return b
}

func (c *client) send(mb protocol.MailboxID, tok protocol.CapabilityToken, env []byte) protocol.Frame {
	c.t.Helper()
	return c.do(&protocol.Send{Mailbox: mb, Capability: tok, Envelope: env})
}
