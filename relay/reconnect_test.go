package relay_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/relaytest"
)

// TestReconnectStormBehindNAT: 2,000 devices behind one address (a
// site's NAT, named by X-Forwarded-For from a trusted proxy on loopback)
// are connected when the relay restarts; all reconnect, with the default
// limits, backing off with full jitter and honouring Retry-After as the
// client library does. It logs how long they took and the refusals they
// saw, the figures docs/OPERATIONS.md quotes:
//
//	go test ./relay/ -run TestReconnectStormBehindNAT -v
//
// POSTERN_STORM_CLIENTS changes the number of devices.
func TestReconnectStormBehindNAT(t *testing.T) {
	n := 2000
	if testing.Short() || raceEnabled {
		n = 300 // the figure is for a run without -race
	}
	if v, err := strconv.Atoi(os.Getenv("POSTERN_STORM_CLIENTS")); err == nil && v > 0 {
		n = v
	}
	dir := t.TempDir()
	cfg := relay.Config{DataDir: dir, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	url := "ws://" + addr + protocol.WebSocketPath
	cfg.Store = relaytest.Store(t, dir)
	r, err := relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r}
	go srv.Serve(ln)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // hang guard
	defer cancel()
	const nat = "198.51.100.7"

	// Enrol the devices and leave them connected, as a site's devices are
	// before the restart.
	devs := make([]*identity.Device, n)
	conns := make([]*client, n)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				devs[i] = newDevice(t)
				c := limitsClient(t, ctx, url, nat)
				wantType[*protocol.Authenticated](t, c.enroll(devs[i], ""))
				conns[i] = c
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		return
	}

	// Each device reconnects from the moment its connection ends.
	var refused, down atomic.Int64
	var restarted atomic.Bool // the new relay is listening
	var last atomic.Int64     // unix nanoseconds of the last reconnection
	done := make(chan struct{}, n)
	for i, c := range conns {
		go func() {
			c.readErr() // until the relay closes it
			c.ws.CloseNow()
			var prev time.Duration // the Retry-After of the last refusal
			for attempt := 0; ctx.Err() == nil; attempt++ {
				time.Sleep(stormDelay(attempt, prev))
				prev = 0
				old := !restarted.Load()
				ok, retryAfter, err := stormConnect(ctx, url, nat, devs[i])
				switch {
				case ok:
					last.Store(time.Now().UnixNano())
					done <- struct{}{}
					return
				case errors.Is(err, errRelayDown) && old:
					down.Add(1)
				default:
					refused.Add(1)
					prev = retryAfter
				}
			}
		}()
	}

	// Restart: shut down (every connection closed with 1001), then a new
	// relay on the same data and address.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store = relaytest.Store(t, dir)
	r, err = relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv = &http.Server{Handler: r}
	start := time.Now()
	restarted.Store(true)
	go srv.Serve(ln)
	defer func() { srv.Close(); r.Close() }()

	for i := range n {
		select {
		case <-done:
		case <-ctx.Done():
			t.Fatalf("%d of %d devices reconnected; %d refusals", i, n, refused.Load())
		}
	}
	took := time.Unix(0, last.Load()).Sub(start)
	t.Logf("%d devices behind one address reconnected %.1f s after the relay came back; %d refusals by the relay, %d attempts while it was down",
		n, took.Seconds(), refused.Load(), down.Load())
	if got := refused.Load(); got != 0 {
		t.Errorf("%d refusals by the relay under the default limits, want none", got)
	}
	if c := r.Connections(); c != n {
		t.Errorf("%d connections open, want %d", c, n)
	}
}

// errRelayDown: no relay listening, or the old one shutting down (it
// closes connections that reach it meanwhile); anything else that fails
// an attempt is a refusal.
var errRelayDown = errors.New("relay down")

// stormConnect connects and authenticates once. It reports success, or
// the refusal's Retry-After.
func stormConnect(ctx context.Context, url, xff string, d *identity.Device) (bool, time.Duration, error) {
	h := http.Header{}
	h.Set("X-Forwarded-For", xff)
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(dctx, url, &websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}, HTTPHeader: h})
	if err != nil {
		if resp == nil {
			return false, 0, errRelayDown
		}
		ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return false, time.Duration(ra) * time.Second, errors.New(resp.Status)
	}
	defer func() {
		if err != nil {
			ws.CloseNow()
		}
	}()
	ws.SetReadLimit(protocol.MaxFrameSize)
	_, b, err := ws.Read(dctx)
	if err != nil {
		return false, 0, errors.Join(errRelayDown, err) // the old relay closing
	}
	_, f, err := protocol.Parse(b)
	if err != nil {
		return false, 0, err
	}
	ch, ok := f.(*protocol.Challenge)
	if !ok {
		if e, isErr := f.(*protocol.ErrorFrame); isErr && e.Code == protocol.CodeShuttingDown {
			err = errRelayDown // the old relay, still closing
		} else {
			err = errors.New("refused after the upgrade")
		}
		return false, 0, err
	}
	sig, err := d.Sign(protocol.AuthContext, protocol.AuthMessage(ch.Nonce, url[len("ws://"):len(url)-len(protocol.WebSocketPath)]))
	if err != nil {
		return false, 0, err
	}
	m, _ := protocol.Marshal(1, &protocol.Auth{Device: deviceID(d), Signature: sig})
	if err = ws.Write(dctx, websocket.MessageBinary, m); err != nil {
		return false, 0, errors.Join(errRelayDown, err)
	}
	_, b, err = ws.Read(dctx)
	if err != nil {
		return false, 0, errors.Join(errRelayDown, err)
	}
	if _, f, err = protocol.Parse(b); err != nil {
		return false, 0, err
	}
	if _, ok := f.(*protocol.Authenticated); !ok {
		err = errors.New("authentication refused")
		return false, 0, err
	}
	// Stay connected: keep reading (pings are answered by the reader).
	go func() { ws.Read(context.Background()) }()
	return true, 0, nil
}

// stormDelay is the client library's reconnect backoff (client/conn.go):
// full jitter over a window doubling from 200 ms to 10 s; a Retry-After
// is a floor, plus a random part of it.
func stormDelay(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return retryAfter + rand.N(retryAfter)
	}
	return rand.N(min(200*time.Millisecond<<min(attempt, 16), 10*time.Second))
}
