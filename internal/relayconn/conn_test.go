package relayconn_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/internal/relayconn"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

// testCtx is a hang guard, not an assertion.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, ctx context.Context, url string) *relayconn.Conn {
	t.Helper()
	c, err := relayconn.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(c.CloseNow)
	return c
}

// enrol enrols a new device on a started c and returns it.
func enrol(t *testing.T, ctx context.Context, c *relayconn.Conn) *identity.Device {
	t.Helper()
	id, err := identity.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	d, err := identity.NewDevice(id)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := d.Sign(protocol.AuthContext, c.AuthMessage())
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Request(ctx, &protocol.Enroll{DeviceKey: d.Certificate().Signing.Bytes(), Signature: sig})
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	if a, ok := f.(*protocol.Authenticated); !ok || a.Device != protocol.DeviceID(d.Certificate().DeviceID()) {
		t.Fatalf("Enroll answered %T", f)
	}
	return d
}

func sealed(fill byte) []byte {
	b := make([]byte, protocol.MinEnvelopeSize)
	b[0], b[1] = protocol.Version, byte(protocol.KindSealed)
	for i := 2; i < len(b); i++ {
		b[i] = fill
	}
	return b
}

// The whole multiplexed path against a real relay: the challenge and the
// host a device signs, concurrent requests each matched with its own
// answer, refusals as *protocol.Error, pushed Deliver and Drained frames
// in order, and the end of the connection when the relay revokes the
// device (an Error frame with request ID 0).
func TestMultiplexedAgainstRelay(t *testing.T) {
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	own := dial(t, ctx, srv.URL)
	if own.Challenge().Nonce == ([32]byte{}) {
		t.Fatal("no challenge nonce")
	}
	if own.Host() != srv.Addr {
		t.Fatalf("Host = %q, want %q", own.Host(), srv.Addr)
	}
	pushes := make(chan protocol.Frame, 64)
	own.Start(func(f protocol.Frame) { pushes <- f })
	dev := enrol(t, ctx, own)

	// Requests of different kinds at once: each gets its own answer.
	var wg sync.WaitGroup
	mailboxes := make(chan protocol.MailboxID, 8)
	for i := range 16 {
		wg.Go(func() {
			if i%2 == 0 {
				f, err := own.Request(ctx, &protocol.CreateMailbox{})
				if mc, ok := f.(*protocol.MailboxCreated); err != nil || !ok {
					t.Errorf("CreateMailbox: %T, %v", f, err)
				} else {
					mailboxes <- mc.Mailbox
				}
				return
			}
			if f, err := own.Request(ctx, &protocol.GetPrekeyStatus{}); err != nil {
				t.Errorf("GetPrekeyStatus: %v", err)
			} else if _, ok := f.(*protocol.PrekeyStatus); !ok {
				t.Errorf("GetPrekeyStatus answered %T", f)
			}
		})
	}
	wg.Wait()
	close(mailboxes)
	if t.Failed() {
		t.FailNow()
	}
	mb := <-mailboxes

	// A refusal is the relay's code.
	_, err := own.Request(ctx, &protocol.Subscribe{Mailbox: protocol.NewMailboxID()})
	if !protocol.IsCode(err, protocol.CodeUnknownMailbox) {
		t.Fatalf("Subscribe to an unknown mailbox: %v, want code %d", err, protocol.CodeUnknownMailbox)
	}

	tok := protocol.NewCapabilityToken()
	if _, err := own.Request(ctx, &protocol.AddCapability{Mailbox: mb, Hash: tok.Hash()}); err != nil {
		t.Fatal(err)
	}
	anon := dial(t, ctx, srv.URL)
	anon.Start(nil)
	for i := range 3 {
		if f, err := anon.Request(ctx, &protocol.Send{Mailbox: mb, Capability: tok, Envelope: sealed(byte(i))}); err != nil {
			t.Fatalf("Send: %v", err)
		} else if _, ok := f.(*protocol.Sent); !ok {
			t.Fatalf("Send answered %T", f)
		}
	}
	if _, err := own.Request(ctx, &protocol.Subscribe{Mailbox: mb}); err != nil {
		t.Fatal(err)
	}
	next := func() protocol.Frame {
		t.Helper()
		select {
		case f := <-pushes:
			return f
		case <-ctx.Done():
			t.Fatal("no pushed frame")
			return nil
		}
	}
	for i := range 3 {
		d, ok := next().(*protocol.Deliver)
		if !ok || d.Mailbox != mb || d.Envelope[2] != byte(i) {
			t.Fatalf("push %d is not the delivery of envelope %d", i, i)
		}
	}
	if d, ok := next().(*protocol.Drained); !ok || d.Mailbox != mb {
		t.Fatal("no Drained after the queued envelopes")
	}
	if _, _, err := own.ReadFrame(ctx); err == nil {
		t.Fatal("ReadFrame on a started connection succeeded")
	}
	if err := own.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	// The operator revokes the device: the relay ends the connection with
	// an Error frame (ID 0); push sees the end, requests get the code.
	if err := srv.Relay().RevokeDevice(ctx, protocol.DeviceID(dev.Certificate().DeviceID())); err != nil {
		t.Fatal(err)
	}
	if f := next(); f != nil {
		t.Fatalf("pushed %T, want the end (nil)", f)
	}
	select {
	case <-own.Done():
	default:
		t.Fatal("Done not closed after the end was pushed")
	}
	if !protocol.IsCode(own.Err(), protocol.CodeDeviceRevoked) {
		t.Fatalf("Err = %v, want code %d", own.Err(), protocol.CodeDeviceRevoked)
	}
	if _, err := own.Request(ctx, &protocol.GetPrekeyStatus{}); !protocol.IsCode(err, protocol.CodeDeviceRevoked) {
		t.Fatalf("request after the revocation: %v, want code %d", err, protocol.CodeDeviceRevoked)
	}
}

// A relay that goes away ends the connection: pending and later requests
// fail with ErrClosed, so that callers know to reconnect.
func TestRelayGoneIsErrClosed(t *testing.T) {
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	c := dial(t, ctx, srv.URL)
	ended := make(chan struct{})
	c.Start(func(f protocol.Frame) {
		if f == nil {
			close(ended)
		}
	})
	srv.Close()
	select {
	case <-ended:
	case <-ctx.Done():
		t.Fatal("the end of the connection was not pushed")
	}
	if _, err := c.Request(ctx, &protocol.GetPrekeyStatus{}); !errors.Is(err, relayconn.ErrClosed) {
		t.Fatalf("request on a closed connection: %v, want ErrClosed", err)
	}
}

// Direct mode moves single frames with the caller's request IDs, and
// refuses Request (nothing would read its answer).
func TestDirect(t *testing.T) {
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	c := dial(t, ctx, srv.URL)
	if _, err := c.Request(ctx, &protocol.GetPrekeyStatus{}); err == nil {
		t.Fatal("Request on a Conn that was not started succeeded")
	}
	if err := c.WriteFrame(ctx, 77, &protocol.GetPrekeyStatus{}); err != nil {
		t.Fatal(err)
	}
	id, f, err := c.ReadFrame(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := f.(*protocol.ErrorFrame); id != 77 || !ok || e.Code != protocol.CodeAuthRequired {
		t.Fatalf("answer %d %T, want 77 and an error %d", id, f, protocol.CodeAuthRequired)
	}
	// What WriteFrame refuses to encode still reaches the relay through
	// the WebSocket, for tests of the relay's refusals.
	if err := c.WebSocket().Write(ctx, websocket.MessageBinary, []byte{0x7f, 0, 0, 0, 9}); err != nil {
		t.Fatal(err)
	}
	if id, f, err := c.ReadFrame(ctx); err != nil || id != 9 {
		t.Fatalf("answer to an unknown frame: %d %T %v", id, f, err)
	} else if e, ok := f.(*protocol.ErrorFrame); !ok || e.Code != protocol.CodeUnknownFrame {
		t.Fatalf("answer to an unknown frame: %T, want error %d", f, protocol.CodeUnknownFrame)
	}
}

// Wrap gives a connection dialled elsewhere the same framing: its first
// frame is the relay's challenge, read by the caller.
func TestWrap(t *testing.T) {
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	ws, _, err := websocket.Dial(ctx, srv.URL+protocol.WebSocketPath, &websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	c := relayconn.Wrap(ws, srv.Addr)
	defer c.CloseNow()
	id, f, err := c.ReadFrame(ctx)
	if ch, ok := f.(*protocol.Challenge); err != nil || id != 0 || !ok || ch.Nonce == ([32]byte{}) {
		t.Fatalf("first frame %d %T %v, want the challenge", id, f, err)
	}
	if err := c.WriteFrame(ctx, 5, &protocol.CreateMailbox{}); err != nil {
		t.Fatal(err)
	}
	if id, f, err := c.ReadFrame(ctx); err != nil || id != 5 {
		t.Fatalf("answer %d %T %v", id, f, err)
	} else if e, ok := f.(*protocol.ErrorFrame); !ok || e.Code != protocol.CodeAuthRequired {
		t.Fatalf("CreateMailbox before authentication: %T, want error %d", f, protocol.CodeAuthRequired)
	}
}

// A refusal before the upgrade is a *DialError with the HTTP response, so
// that callers can read its Postern-Error code and Retry-After.
func TestDialRefusedBeforeUpgrade(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.Header().Set(protocol.HTTPHeaderError, "31")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	_, err := relayconn.Dial(testCtx(t), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	var de *relayconn.DialError
	if !errors.As(err, &de) || de.Response == nil {
		t.Fatalf("Dial: %v, want a DialError with the response", err)
	}
	if de.Response.StatusCode != http.StatusTooManyRequests || de.Response.Header.Get("Retry-After") != "7" {
		t.Fatalf("response %d, Retry-After %q", de.Response.StatusCode, de.Response.Header.Get("Retry-After"))
	}
}

// fakeRelay accepts one WebSocket and runs serve on it.
func fakeRelay(t *testing.T, subprotocols []string, serve func(ctx context.Context, ws *websocket.Conn)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: subprotocols})
		if err != nil {
			return
		}
		defer ws.CloseNow()
		serve(r.Context(), ws)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func mustMarshal(t *testing.T, id uint32, f protocol.Frame) []byte {
	t.Helper()
	b, err := protocol.Marshal(id, f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// What a relay must not do is refused with a clear error: no subprotocol,
// a first frame other than the challenge, a refusal instead of it, and
// (after the challenge) a text message or a frame that does not parse,
// which end a started connection.
func TestHandshakeAndFramingRefusals(t *testing.T) {
	ctx := testCtx(t)
	challenge := func(t *testing.T) []byte { return mustMarshal(t, 0, &protocol.Challenge{Nonce: [32]byte{1}}) }
	sub := []string{protocol.Subprotocol}
	for _, tc := range []struct {
		name  string
		subs  []string
		serve func(ctx context.Context, ws *websocket.Conn)
		check func(t *testing.T, err error)
	}{
		{"no subprotocol", nil, func(ctx context.Context, ws *websocket.Conn) { ws.Read(ctx) }, func(t *testing.T, err error) {
			if err == nil || !strings.Contains(err.Error(), "subprotocol") {
				t.Fatalf("Dial: %v, want a subprotocol error", err)
			}
		}},
		{"frame before challenge", sub, func(ctx context.Context, ws *websocket.Conn) {
			ws.Write(ctx, websocket.MessageBinary, mustMarshal(t, 0, &protocol.OK{}))
			ws.Read(ctx)
		}, func(t *testing.T, err error) {
			if err == nil || !strings.Contains(err.Error(), "before its challenge") {
				t.Fatalf("Dial: %v", err)
			}
		}},
		{"refused instead of challenge", sub, func(ctx context.Context, ws *websocket.Conn) {
			ws.Write(ctx, websocket.MessageBinary, mustMarshal(t, 0, &protocol.ErrorFrame{Code: protocol.CodeShuttingDown}))
			ws.Read(ctx)
		}, func(t *testing.T, err error) {
			if !protocol.IsCode(err, protocol.CodeShuttingDown) {
				t.Fatalf("Dial: %v, want code %d", err, protocol.CodeShuttingDown)
			}
		}},
		{"garbage challenge", sub, func(ctx context.Context, ws *websocket.Conn) {
			ws.Write(ctx, websocket.MessageBinary, []byte{0x80, 0, 0})
			ws.Read(ctx)
		}, func(t *testing.T, err error) {
			if !errors.Is(err, protocol.ErrMalformed) {
				t.Fatalf("Dial: %v, want ErrMalformed", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := relayconn.Dial(ctx, fakeRelay(t, tc.subs, tc.serve), nil)
			if err == nil {
				c.CloseNow()
			}
			tc.check(t, err)
		})
	}
	for _, tc := range []struct {
		name string
		typ  websocket.MessageType
		msg  []byte
	}{
		{"text message", websocket.MessageText, []byte("hello")},
		{"bad frame", websocket.MessageBinary, []byte{0x87, 0, 0, 0, 0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := fakeRelay(t, sub, func(ctx context.Context, ws *websocket.Conn) {
				ws.Write(ctx, websocket.MessageBinary, challenge(t))
				ws.Write(ctx, tc.typ, tc.msg)
				ws.Read(ctx)
			})
			c, err := relayconn.Dial(ctx, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			c.Start(nil)
			select {
			case <-c.Done():
			case <-ctx.Done():
				t.Fatal("connection kept after a bad message")
			}
			if !errors.Is(c.Err(), protocol.ErrMalformed) {
				t.Fatalf("Err = %v, want ErrMalformed", c.Err())
			}
			if _, err := c.Request(ctx, &protocol.GetPrekeyStatus{}); !errors.Is(err, relayconn.ErrClosed) {
				t.Fatalf("request after a bad message: %v, want ErrClosed", err)
			}
		})
	}
}
