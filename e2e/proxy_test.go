//go:build unix

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/client"
	"github.com/postern/postern/internal/relayconn"
	"github.com/postern/postern/protocol"
)

// TestProxyNginx and TestProxyCaddy run the reverse proxy examples in
// docs/ for real: the proxy, configured from the example file with only
// its placeholders rewritten (addresses, certificate paths, nginx's idle
// timeout; Caddy's commented-out tls and trusted_proxies lines switched
// on), terminates TLS with a test certificate in front of a postern-relay
// process serving plain HTTP on loopback with --trusted-proxy 127.0.0.1.
// Through it, over wss:// and https:// only:
//
//   - two people enrol, become contacts and write both ways; one goes
//     offline and gets the queued messages on reconnecting;
//   - a 6 MiB attachment goes up and down byte-exact; the upload, over an
//     uplink slow enough that it lasts twice nginx's rewritten idle
//     timeout, takes a single PUT (no attempt cut off and resumed); the
//     blob endpoint's HEAD, Range requests and Postern-* headers pass;
//   - X-Forwarded-For: the per-address connection limit applies to the
//     address the proxy forwards, not to the proxy: a third connection
//     for one forwarded address is refused with 429 and code 51 while
//     other clients of the same proxy are admitted, and an address a
//     client forges in its own X-Forwarded-For is not believed;
//   - keep-alive: nginx, its proxy_read_timeout rewritten to 3 s, drops a
//     connection to an upstream that never pings, while the relay's
//     connections, idle twice as long but for the relay's pings (every
//     500 ms), survive (Caddy, whose example sets no idle timeout, drops
//     neither); messages then flow both ways and the relay opened no new
//     connection.
//
// Without nginx or caddy installed the tests skip, naming the Debian
// package, unless POSTERN_TEST_PROXIES=require (set by .ci/run).
func TestProxyNginx(t *testing.T) { testProxyExample(t, "nginx", "nginx", startNginx) }

func TestProxyCaddy(t *testing.T) { testProxyExample(t, "caddy", "caddy", startCaddy) }

// uplinkRate is the clients' upload speed to the proxy, in bytes a
// second: the attachment takes about 6 s to upload.
const uplinkRate = 1 << 20

type startProxy func(t *testing.T, bin, upstream, certFile, keyFile string, pool *x509.CertPool) *proxy

func testProxyExample(t *testing.T, bin, pkg string, start startProxy) {
	if testing.Short() {
		t.Skip("builds a relay and runs a reverse proxy; run without -short")
	}
	path := lookProxy(t, bin, pkg)
	t.Parallel()
	ctx := ctxT(t)
	certFile, keyFile, pool := testCertFiles(t, t.TempDir())
	relay := startRelayBehindProxy(t, buildRelay(t))
	px := start(t, path, relay.addr, certFile, keyFile, pool)
	// The clients reach the proxy over a slow uplink, so that their
	// attachment upload lasts twice nginx's rewritten idle timeout.
	url := "wss://" + slowLink(t, px.addr, uplinkRate)
	tlsOpts := func() *client.Options {
		o := opts()
		o.TLSConfig = &tls.Config{RootCAs: pool}
		return o
	}

	// Enrolment, contacts, messages both ways.
	alice := newPersonWith(t, ctx, url, "Alice", tlsOpts())
	bob := newPersonWith(t, ctx, url, "Bob", tlsOpts())
	connect(t, ctx, alice, bob, "Alice", "Bob")
	if _, err := bob.c.Send(ctx, "Alice", "hello through the proxy"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := texts(t, alice.c, "Bob"); len(got) != 1 || got[0] != "hello through the proxy" {
		t.Fatalf("alice got %q", got)
	}
	if _, err := alice.c.Send(ctx, "Bob", "hello back"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := texts(t, bob.c, "Alice"); len(got) != 1 || got[0] != "hello back" {
		t.Fatalf("bob got %q", got)
	}

	// Alice offline; Bob's messages wait at the relay.
	alice.c.Close()
	for i := range 3 {
		if _, err := bob.c.Send(ctx, "Alice", fmt.Sprintf("queued %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	alice.c = dialWith(t, ctx, alice.home, tlsOpts())
	if _, err := alice.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := texts(t, alice.c, "Bob"); len(got) != 4 {
		t.Fatalf("after reconnecting alice has %d messages from bob, want 4: %q", len(got), got)
	}

	attachmentThroughProxy(t, ctx, px, pool, alice, bob)
	limitsThroughProxy(t, ctx, relay, "wss://"+px.addr, pool)

	// Keep-alive. Every connection a client will use below exists now:
	// Alice's and Bob's authenticated ones (Sync waits for its new one)
	// and their unauthenticated ones for sending.
	if _, err := alice.c.Send(ctx, "Bob", "before the pause"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// A second proxy from the same example in front of an upstream that
	// never pings. Where the example sets an idle timeout (nginx), the
	// proxy must drop that connection, or the rewritten timeout did not
	// take effect and the survival below would prove nothing. Where it
	// sets none (Caddy), the connection must survive the same pause.
	control := start(t, path, silentUpstream(t), certFile, keyFile, pool)
	cws, _, err := websocket.Dial(ctx, "wss://"+control.addr+protocol.WebSocketPath, &websocket.DialOptions{
		HTTPClient:   tlsClient(pool),
		Subprotocols: []string{protocol.Subprotocol},
	})
	if err != nil {
		t.Fatalf("WebSocket to the silent upstream through %s: %v", px.name, err)
	}
	defer cws.CloseNow()
	dropped := cws.CloseRead(ctx) // done when the proxy closes it
	opened := relay.metric(t, "postern_relay_connections_opened_total")
	idleFrom := time.Now()
	if px.idle > 0 {
		select {
		case <-dropped.Done():
		case <-time.After(60 * time.Second):
			t.Fatalf("%s kept a connection without any traffic open for 60 s with its idle timeout rewritten to %v", px.name, px.idle)
		}
		t.Logf("%s dropped the idle connection to the silent upstream after %v", px.name, time.Since(idleFrom).Round(100*time.Millisecond))
		// The relay's connections are now idle longer than that one
		// lived, plus the timeout again.
		time.Sleep(px.idle)
	} else {
		time.Sleep(2 * testProxyIdle)
		if dropped.Err() != nil {
			t.Fatalf("%s dropped a connection idle for %v, though its example sets no idle timeout", px.name, time.Since(idleFrom).Round(100*time.Millisecond))
		}
	}
	t.Logf("relay connections idle (but for pings) for %v", time.Since(idleFrom).Round(100*time.Millisecond))
	if _, err := bob.c.Send(ctx, "Alice", "after the pause"); err != nil {
		t.Fatal(err)
	}
	receiveText(t, ctx, alice.c, "after the pause")
	if _, err := alice.c.Send(ctx, "Bob", "still here"); err != nil {
		t.Fatal(err)
	}
	receiveText(t, ctx, bob.c, "still here")
	if now := relay.metric(t, "postern_relay_connections_opened_total"); now != opened {
		t.Fatalf("the relay opened %v connections during and after the pause: %s dropped pinged connections (or a client reconnected)", now-opened, px.name)
	}
}

// attachmentThroughProxy sends a file of a few MiB from Bob to Alice and
// checks it arrives byte-exact; then it probes the blob endpoint through
// the proxy the way an interrupted transfer would use it: HEAD with the
// Postern-* headers, and a Range request.
func attachmentThroughProxy(t *testing.T, ctx context.Context, px *proxy, pool *x509.CertPool, alice, bob *person) {
	t.Helper()
	const size = 6<<20 + 12345 // not a whole number of chunks
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{'p', 'r', 'o', 'x', 'y'}).Read(data)
	in := filepath.Join(t.TempDir(), "scan.bin")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := bob.c.SendFiles(ctx, "Alice", "the scan", []string{in}, nil); err != nil {
		t.Fatalf("SendFiles through %s: %v", px.name, err)
	}
	t.Logf("upload over the slow link took %v", time.Since(start).Round(100*time.Millisecond))
	// One PUT carried it all, though it lasted longer than nginx's idle
	// timeout: no attempt failed and resumed (HEAD, then PUT again).
	var puts []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if puts = px.blobIDs(http.MethodPut); len(puts) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no PUT %s in the %s log", protocol.BlobPath, px.name)
		}
	}
	if heads := px.blobIDs(http.MethodHead); len(puts) != 1 || len(heads) != 0 {
		t.Fatalf("the upload through %s took %d PUT and %d HEAD requests, want one PUT: an attempt failed and was resumed", px.name, len(puts), len(heads))
	}
	got, err := alice.c.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Attachments) != 1 || got[0].Attachments[0].Size != size {
		t.Fatalf("alice got %+v, want one message with one %d-byte attachment", got, size)
	}
	paths, err := alice.c.SaveAttachments(ctx, got[0].ID, t.TempDir(), nil)
	if err != nil || len(paths) != 1 {
		t.Fatalf("SaveAttachments through %s = %v, %v", px.name, paths, err)
	}
	out, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, data) {
		t.Fatalf("the attachment came back different through %s: %d bytes, want %d", px.name, len(out), size)
	}

	// The blob's URL, from the proxy's request log.
	if _, err := protocol.ParseBlobID(puts[0]); err != nil {
		t.Fatalf("blob ID %q from the %s log: %v", puts[0], px.name, err)
	}
	blobURL := "https://" + px.addr + protocol.BlobPath + puts[0]
	hc := tlsClient(pool)
	do := func(method string, h http.Header) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, blobURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s blob through %s: %v", method, px.name, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s blob through %s: %v", method, px.name, err)
		}
		return resp, b
	}
	resp, _ := do(http.MethodHead, nil)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get(protocol.HTTPHeaderError) != strconv.Itoa(int(protocol.CodeBlobToken)) {
		t.Fatalf("HEAD without the upload token through %s: %s, %s %q; want 401 and %s %d",
			px.name, resp.Status, protocol.HTTPHeaderError, resp.Header.Get(protocol.HTTPHeaderError), protocol.HTTPHeaderError, protocol.CodeBlobToken)
	}
	resp, whole := do(http.MethodGet, nil)
	if resp.StatusCode != http.StatusOK || len(whole) <= size {
		t.Fatalf("GET blob through %s: %s, %d bytes; want 200 and the ciphertext (over %d bytes)", px.name, resp.Status, len(whole), size)
	}
	from := len(whole) - 100000
	resp, tail := do(http.MethodGet, http.Header{"Range": {fmt.Sprintf("bytes=%d-", from)}})
	wantRange := fmt.Sprintf("bytes %d-%d/%d", from, len(whole)-1, len(whole))
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != wantRange || !bytes.Equal(tail, whole[from:]) {
		t.Fatalf("GET blob with Range through %s: %s, Content-Range %q, %d bytes; want 206, %q and the last %d bytes",
			px.name, resp.Status, resp.Header.Get("Content-Range"), len(tail), wantRange, len(whole)-from)
	}
}

// limitsThroughProxy checks that the relay applies its per-address
// connection limit (testMaxPerAddr) to the client address the proxy
// forwards in X-Forwarded-For. Every connection reaches the relay from
// the proxy at 127.0.0.1, and the relay exempts loopback clients from
// per-address limits; so the limited client stands behind a load
// balancer: the test's connections from 127.0.0.1 (an address both the
// proxy and the relay trust) carry "X-Forwarded-For: 203.0.113.7". The
// proxy must add the address it sees to that list, not replace it and
// not pass it on unchanged, as a client at 127.0.0.2 forging the same
// header shows.
func limitsThroughProxy(t *testing.T, ctx context.Context, relay *relayBehindProxy, url string, pool *x509.CertPool) {
	t.Helper()
	const limited = "203.0.113.7" // TEST-NET-3: a header value only, never dialled
	var held []*relayconn.Conn
	defer func() {
		for _, c := range held {
			c.CloseNow()
		}
	}()
	admit := func(what, from, xff string) {
		t.Helper()
		ws, resp, err := rawDial(ctx, url, pool, from, xff)
		if err != nil {
			status := ""
			if resp != nil {
				status = fmt.Sprintf(" (%s, %s %q)", resp.Status, protocol.HTTPHeaderError, resp.Header.Get(protocol.HTTPHeaderError))
			}
			t.Fatalf("%s: refused: %v%s", what, err, status)
		}
		held = append(held, ws)
	}
	for i := range testMaxPerAddr {
		admit(fmt.Sprintf("connection %d for %s", i+1, limited), "127.0.0.1", limited)
	}
	ws, resp, err := rawDial(ctx, url, pool, "127.0.0.1", limited)
	if err == nil {
		ws.CloseNow()
		t.Fatalf("connection %d for %s admitted: the relay did not limit the forwarded address", testMaxPerAddr+1, limited)
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get(protocol.HTTPHeaderError) != strconv.Itoa(int(protocol.CodeTooManyConnections)) {
		t.Fatalf("connection %d for %s: %v; want 429 with %s %d", testMaxPerAddr+1, limited, err, protocol.HTTPHeaderError, protocol.CodeTooManyConnections)
	}
	// The proxy itself is not what was limited: its other clients are
	// admitted at the same time.
	admit("another forwarded address", "127.0.0.1", "203.0.113.8")
	admit("a client of the proxy with no X-Forwarded-For", "127.0.0.1", "")
	// A client the relay does not trust (127.0.0.2) that forges the
	// limited address is limited as itself, not as the address it forged.
	// (Linux routes all of 127.0.0.0/8 to the loopback interface; other
	// systems may need an alias for 127.0.0.2.)
	if l, err := net.Listen("tcp", "127.0.0.2:0"); err != nil {
		t.Logf("127.0.0.2 is not a local address here (%v): the forged X-Forwarded-For check is left out", err)
	} else {
		l.Close()
		admit("a client at 127.0.0.2 forging X-Forwarded-For "+limited, "127.0.0.2", limited)
	}
	series := fmt.Sprintf(`postern_relay_refusals_total{code="%d"}`, protocol.CodeTooManyConnections)
	if n := relay.metric(t, series); n != 1 {
		t.Fatalf("%s = %v, want 1: only the one connection over the limit is refused", series, n)
	}
}

func newPersonWith(t *testing.T, ctx context.Context, url, name string, o *client.Options) *person {
	t.Helper()
	home := filepath.Join(t.TempDir(), name)
	c, err := client.Init(ctx, home, pass, url, name, o)
	if err != nil {
		t.Fatalf("init %s through the proxy: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	return &person{home: home, c: c}
}

func dialWith(t *testing.T, ctx context.Context, home string, o *client.Options) *client.Client {
	t.Helper()
	c, err := client.Dial(ctx, home, pass, o)
	if err != nil {
		t.Fatalf("dial through the proxy: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// receiveText waits for the message with text want on c's live
// connection (Receive, not Sync: Sync starts a new connection).
func receiveText(t *testing.T, ctx context.Context, c *client.Client, want string) {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		m, err := c.Receive(rctx)
		if err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		if m.Text == want {
			return
		}
		t.Logf("received %q while waiting for %q", m.Text, want)
	}
}
