package relay_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/internal/relayconn"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/relaytest"
)

func newLimitRelay(t *testing.T, cfg relay.Config) (*relay.Relay, string) {
	t.Helper()
	cfg.DataDir = t.TempDir()
	cfg.Store = relaytest.Store(t, cfg.DataDir)
	r, err := relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(func() { srv.Close(); r.Close() })
	return r, "ws" + strings.TrimPrefix(srv.URL, "http") + protocol.WebSocketPath
}

// wsDial dials as the client at xff (empty: no header) and returns the
// connection, or the HTTP status and Postern-Error code of the refusal.
func limitsDial(ctx context.Context, url, xff string) (*websocket.Conn, int, int, error) {
	h := http.Header{}
	if xff != "" {
		h.Set("X-Forwarded-For", xff)
	}
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		Subprotocols: []string{protocol.Subprotocol},
		HTTPHeader:   h,
	})
	if err != nil {
		if resp == nil {
			return nil, 0, 0, err
		}
		code, _ := strconv.Atoi(resp.Header.Get(protocol.HTTPHeaderError))
		return nil, resp.StatusCode, code, nil
	}
	return ws, http.StatusSwitchingProtocols, 0, nil
}

// readChallenge checks the connection works: the relay's first frame is
// its challenge.
func limitsChallenge(t *testing.T, ctx context.Context, ws *websocket.Conn) {
	t.Helper()
	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("read challenge: %v", err)
	}
	if _, f, err := protocol.Parse(b); err != nil {
		t.Fatal(err)
	} else if _, ok := f.(*protocol.Challenge); !ok {
		t.Fatalf("first frame %T, want a challenge", f)
	}
}

// TestPerAddressLimits: a bounded flood of connections from one address
// (named by a trusted proxy's X-Forwarded-For) is refused with 429 and
// CodeRateLimited past the burst, and with CodeTooManyConnections past the
// concurrent limit, while another address still connects and works.
func TestPerAddressLimits(t *testing.T) {
	r, url := newLimitRelay(t, relay.Config{
		ConnRatePerAddress:  1, // one per minute: none refills during the test
		ConnBurstPerAddress: 10,
		MaxConnsPerAddress:  4,
		TrustedProxies:      []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Concurrent limit: four stay open, the fifth is refused with 51.
	var held []*websocket.Conn
	for i := range 5 {
		ws, status, code, err := limitsDial(ctx, url, "10.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if i < 4 {
			if ws == nil {
				t.Fatalf("connection %d refused: %d/%d", i, status, code)
			}
			held = append(held, ws)
			continue
		}
		if status != http.StatusTooManyRequests || code != int(protocol.CodeTooManyConnections) {
			t.Fatalf("fifth connection: %d, Postern-Error %d; want 429/51", status, code)
		}
	}
	for _, ws := range held {
		ws.CloseNow()
	}
	limitsWaitFor(t, func() bool { return r.Connections() == 0 })

	// Rate: 4 of the burst of 10 are used (the refused fifth took no
	// token, and none of the four authenticated to give its token back).
	// A flood of 30 connections that never authenticate is not refused:
	// past the 6 tokens left its connections are on probation.
	for range 30 {
		ws, status, code, err := limitsDial(ctx, url, "192.0.2.1, 10.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if ws == nil {
			t.Fatalf("connection refused: %d/%d", status, code)
		}
		ws.CloseNow()
		limitsWaitFor(t, func() bool { return r.Connections() == 0 })
	}
	// On probation, the first failed authentication closes the connection
	// (after the penalty); a good client at the same address
	// authenticates.
	relay.SetAuthFailurePenalty(t, 10*time.Millisecond)
	bad := limitsClient(t, ctx, url, "10.0.0.1")
	bad.write(&protocol.Auth{Device: protocol.DeviceID{1}, Signature: []byte("x")})
	wantClose(t, bad, websocket.StatusPolicyViolation)
	good := limitsClient(t, ctx, url, "10.0.0.1")
	wantType[*protocol.Authenticated](t, good.enroll(newDevice(t), ""))
	good.ws.CloseNow()

	// Another client address is unaffected.
	ws, status, code, err := limitsDial(ctx, url, "10.0.0.2")
	if err != nil || ws == nil {
		t.Fatalf("other address refused: %d/%d %v", status, code, err)
	}
	limitsChallenge(t, ctx, ws)
	ws.CloseNow()
	resp, err := http.Get(strings.Replace(strings.TrimSuffix(url, protocol.WebSocketPath), "ws://", "http://", 1) + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz during flood: %v %v", resp, err)
	}
	resp.Body.Close()
	if n := r.AddressesTracked(); n != 2 {
		t.Fatalf("tracking %d addresses, want 2", n)
	}
}

// TestForwardedForUntrusted: the header is read only from a trusted
// proxy, so a client changing it does not escape the limit; loopback
// clients are not limited.
func TestForwardedForUntrusted(t *testing.T) {
	r, url := newLimitRelay(t, relay.Config{
		ConnRatePerAddress: 6, ConnBurstPerAddress: 2,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/32")},
	})
	try := func(peer, xff string) (int, string) {
		req := httptest.NewRequest("GET", protocol.WebSocketPath, nil)
		req.RemoteAddr = peer
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req) // admitted requests fail the upgrade: not a WebSocket handshake
		return rec.Code, rec.Header().Get(protocol.HTTPHeaderError)
	}
	for i := range 3 {
		if status, code := try("203.0.113.5:4000", "10.9.9."+strconv.Itoa(i)); status == http.StatusTooManyRequests {
			t.Fatalf("request %d refused: %d/%s", i, status, code)
		}
	}
	if n := r.AddressesTracked(); n != 1 {
		t.Fatalf("spoofed X-Forwarded-For escaped the limit: %d addresses tracked, want the peer's only", n)
	}
	// Through the trusted proxy, the header's last untrusted hop counts.
	for i := range 2 {
		if status, code := try("198.51.100.1:4000", "10.9.9.9, 203.0.113.77"); status == http.StatusTooManyRequests {
			t.Fatalf("proxied request %d refused: %d/%s", i, status, code)
		}
	}
	try("198.51.100.1:4000", "203.0.113.77")
	if n := r.AddressesTracked(); n != 2 {
		t.Fatalf("%d addresses tracked, want the peer and 203.0.113.77", n)
	}
	// Loopback clients are not limited.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 5 {
		ws, status, code, err := limitsDial(ctx, url, "")
		if err != nil || ws == nil {
			t.Fatalf("loopback connection %d: %d/%d %v", i, status, code, err)
		}
		ws.CloseNow()
	}
}

// TestKeepalive: a peer that never reads (so never answers pings) is
// closed; one that reads stays connected over several ping intervals.
func TestKeepalive(t *testing.T) {
	r, url := newLimitRelay(t, relay.Config{PingInterval: 50 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	live, _, _, err := limitsDial(ctx, url, "")
	if err != nil || live == nil {
		t.Fatal("dial", err)
	}
	limitsChallenge(t, ctx, live)
	readDone := make(chan error, 1)
	go func() { _, _, err := live.Read(ctx); readDone <- err }() // answers pings

	dead, _, _, err := limitsDial(ctx, url, "")
	if err != nil || dead == nil {
		t.Fatal("dial", err)
	}
	defer dead.CloseNow()
	limitsWaitFor(t, func() bool { return r.Connections() == 1 })
	time.Sleep(500 * time.Millisecond)
	if n := r.Connections(); n != 1 {
		t.Fatalf("%d connections after 10 ping intervals, want the live one", n)
	}
	select {
	case err := <-readDone:
		t.Fatalf("live connection ended: %v", err)
	default:
	}
	live.Close(websocket.StatusNormalClosure, "")
}

// limitsClient dials as the client at xff through the trusted proxy and
// reads the challenge.
func limitsClient(t testing.TB, ctx context.Context, url, xff string) *client {
	t.Helper()
	h := http.Header{}
	h.Set("X-Forwarded-For", xff)
	conn, err := relayconn.Dial(ctx, strings.TrimSuffix(url, protocol.WebSocketPath), &relayconn.Options{HTTPHeader: h})
	if err != nil {
		t.Fatalf("dial as %s: %v", xff, err)
	}
	t.Cleanup(conn.CloseNow)
	return &client{t: t, conn: conn, ws: conn.WebSocket(), host: conn.Host(), nonce: conn.Challenge().Nonce}
}

func limitsWaitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
