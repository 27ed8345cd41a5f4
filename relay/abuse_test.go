package relay_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/internal/relayconn"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/relaytest"
	"github.com/postern/postern/relay/store/bboltstore"
)

// TestAuthFailuresClosePerConnection: a connection is closed after
// MaxAuthFailuresPerConn failed authentications, each answered first.
func TestAuthFailuresClosePerConnection(t *testing.T) {
	srv := relaytest.New(t, nil)
	d := newDevice(t)
	wantType[*protocol.Authenticated](t, dial(t, srv.URL).enroll(d, ""))
	c := dial(t, srv.URL)
	var other [32]byte
	sig, _ := d.Sign(protocol.AuthContext, protocol.AuthMessage(other, c.host))
	for range relay.MaxAuthFailuresPerConn {
		wantCode(t, c.do(&protocol.Auth{Device: deviceID(d), Signature: sig}), protocol.CodeAuthFailed)
	}
	// The next attempt is never handled: the connection is closed.
	c.write(&protocol.Auth{Device: deviceID(d), Signature: sig})
	wantClose(t, c, websocket.StatusPolicyViolation)
}

// TestAuthFailureFloodSparesNAT: a flood of failed authentications from
// one address (a site's NAT, named by a trusted proxy) puts that address's
// failing connections on probation, and clients behind the same address
// that authenticate correctly are neither refused nor delayed into
// failure.
func TestAuthFailureFloodSparesNAT(t *testing.T) {
	relay.SetAuthFailurePenalty(t, 20*time.Millisecond)
	_, url := newLimitRelay(t, relay.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang guard
	defer cancel()
	const nat = "203.0.113.9"

	// Good devices enrolled beforehand.
	good := make([]*identity.Device, 10)
	for i := range good {
		good[i] = newDevice(t)
		c := limitsClient(t, ctx, url, nat)
		wantType[*protocol.Authenticated](t, c.enroll(good[i], ""))
		c.ws.CloseNow()
	}

	// The flood: more failing connections than the address's connection
	// burst and failure burst, each failing until it is closed.
	flood := relay.DefaultConnBurstPerAddress + relay.DefaultAuthFailureBurst + 50
	var wg sync.WaitGroup
	work := make(chan int)
	var mu sync.Mutex
	failures, probation := 0, 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				ws, status, code, err := limitsDial(ctx, url, nat)
				if err != nil || ws == nil {
					t.Errorf("attacker connection refused: %d/%d %v", status, code, err)
					return
				}
				c := rawClient(t, ws)
				c.readErr() // challenge
				n := 0
				for {
					c.next++
					b, _ := protocol.Marshal(c.next, &protocol.Auth{Device: protocol.DeviceID{byte(n)}, Signature: []byte("forged")})
					if ws.Write(ctx, websocket.MessageBinary, b) != nil {
						break
					}
					if _, _, err := c.readErr(); err != nil {
						break
					}
					n++
				}
				ws.CloseNow()
				mu.Lock()
				failures += n
				if n == 1 {
					probation++
				}
				mu.Unlock()
			}
		}()
	}
	for i := range flood {
		work <- i
	}
	close(work)
	wg.Wait()
	t.Logf("flood: %d connections, %d failures answered, %d connections on probation", flood, failures, probation)
	if probation == 0 {
		t.Fatal("no failing connection was put on probation")
	}
	if failures > flood*relay.MaxAuthFailuresPerConn {
		t.Fatalf("%d failures answered on %d connections", failures, flood)
	}

	// After the flood, good clients at the same address
	// authenticate.
	for _, g := range good {
		c := limitsClient(t, ctx, url, nat)
		wantType[*protocol.Authenticated](t, c.auth(g))
		c.ws.CloseNow()
	}
}

// TestBundleFetchRateLimited: a holder of a capability flooding
// FetchBundle gets at most the burst of one-time prekeys; the rest are
// refused with CodeRateLimited and stay on the relay.
func TestBundleFetchRateLimited(t *testing.T) {
	srv := relaytest.New(t, nil)
	own, _, mb, tok := owner(t, srv.URL)
	wantType[*protocol.OK](t, own.do(&protocol.PublishPrekeys{Bundle: []byte("bundle")}))
	const stored = 30
	for i := 0; i < stored; i += protocol.MaxPrekeysPerPublish {
		var pks [][]byte
		for j := i; j < min(stored, i+protocol.MaxPrekeysPerPublish); j++ {
			pks = append(pks, []byte{byte(j)})
		}
		wantType[*protocol.OK](t, own.do(&protocol.PublishPrekeys{Prekeys: pks}))
	}
	popped, limited := 0, 0
	for range stored {
		c := dial(t, srv.URL) // a fresh connection each time: the limit is the capability's
		switch f := c.do(&protocol.FetchBundle{Mailbox: mb, Capability: tok}).(type) {
		case *protocol.Bundle:
			if len(f.Prekey) > 0 {
				popped++
			}
		case *protocol.ErrorFrame:
			wantCode(t, f, protocol.CodeRateLimited)
			limited++
		default:
			t.Fatalf("answer %T", f)
		}
		c.ws.CloseNow()
	}
	if popped > relay.DefaultBundleFetchBurst || limited != stored-popped {
		t.Fatalf("%d prekeys handed out and %d fetches refused, want at most %d handed out", popped, limited, relay.DefaultBundleFetchBurst)
	}
	st := wantType[*protocol.PrekeyStatus](t, own.do(&protocol.GetPrekeyStatus{}))
	if int(st.Count) != stored-popped {
		t.Fatalf("%d prekeys left, want %d", st.Count, stored-popped)
	}
	// An unknown capability costs the real one nothing and is not tracked.
	wantCode(t, dial(t, srv.URL).do(&protocol.FetchBundle{Mailbox: mb, Capability: protocol.NewCapabilityToken()}), protocol.CodeUnknownCapability)
}

// TestBlobTrickleCut: an upload that sends less than the minimum rate is
// cut with 408; its whole chunks are kept and it resumes from there.
func TestBlobTrickleCut(t *testing.T) {
	relay.SetBlobRateWindow(t, 300*time.Millisecond)
	srv := relaytest.New(t, nil)
	c := blobDevice(t, srv)
	b := createBlob(t, c, 2*chunk)
	data := randomBytes(2 * chunk)

	pr, pw := io.Pipe()
	stop := make(chan struct{})
	go func() {
		defer pw.Close()
		if _, err := pw.Write(data[:chunk]); err != nil { // one whole chunk at once
			return
		}
		// Then 10 bytes every 50 ms (200 bytes/s, under the default
		// minimum of 1024), for at most 10 s.
		for i := 0; i < 200; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := pw.Write(data[chunk+10*i : chunk+10*i+10]); err != nil {
				return
			}
		}
	}()
	defer close(stop)
	resp := blobReq(t, http.MethodPut, blobURL(srv, b.Blob), bearer(b.Token), 0, pr)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("trickling upload: status %d, want 408", resp.StatusCode)
	}
	wantOffset(t, resp, chunk)
	// The client resumes from the committed length at a normal pace.
	wantHTTP(t, put(t, srv, b, chunk, data[chunk:]), http.StatusNoContent, 0)
	if off, _ := head(t, srv, b); off != 2*chunk {
		t.Fatalf("committed %d, want %d", off, 2*chunk)
	}
}

// TestShutdownAnswersPipelinedAcks: a shutdown during a stream of
// pipelined acknowledgements answers every ack it applied, and the
// connection ends with 1001, in every round.
func TestShutdownAnswersPipelinedAcks(t *testing.T) {
	rounds := 30
	if testing.Short() || raceEnabled {
		rounds = 10
	}
	for round := range rounds {
		shutdownRound(t, round)
		if t.Failed() {
			return
		}
	}
}

func shutdownRound(t *testing.T, round int) {
	dir := t.TempDir()
	r, err := relay.New(relay.Config{DataDir: dir, Store: relaytest.Store(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	url := "ws://" + ln.Addr().String()

	own, _, mb, tok := owner(t, url)
	const n = 200
	for i := range n {
		own.write(&protocol.Send{Mailbox: mb, Capability: tok, Envelope: sealed(byte(i))})
	}
	for range n {
		_, f := own.read()
		wantType[*protocol.Sent](t, f)
	}
	wantType[*protocol.OK](t, own.do(&protocol.Subscribe{Mailbox: mb}))
	var ids []protocol.EnvelopeID
	for len(ids) < n {
		ids = append(ids, wantType[*protocol.Deliver](t, own.push()).ID)
	}
	wantType[*protocol.Drained](t, own.push())

	// One ack per envelope, pipelined; the relay shuts down mid-stream.
	reqOf := map[uint32]protocol.EnvelopeID{}
	var b [][]byte
	for i, id := range ids {
		rid := uint32(1000 + i)
		reqOf[rid] = id
		m, _ := protocol.Marshal(rid, &protocol.Ack{Mailbox: mb, IDs: []protocol.EnvelopeID{id}})
		b = append(b, m)
	}
	go func() {
		for _, m := range b {
			if own.ws.Write(bg, websocket.MessageBinary, m) != nil {
				return
			}
		}
	}()
	closed := make(chan error, 1)
	answered := map[protocol.EnvelopeID]bool{}
	go func() {
		for {
			rid, f, err := own.readErr()
			if err != nil {
				closed <- err
				return
			}
			if id, ok := reqOf[rid]; ok {
				if _, isOK := f.(*protocol.OK); isOK {
					answered[id] = true
				}
				if len(answered) == 5+round%20 { // somewhere in the stream
					go r.Close()
				}
			}
		}
	}()
	var end error
	select {
	case end = <-closed:
	case <-time.After(time.Minute): // hang guard
		t.Fatal("connection did not end")
	}
	r.Close()
	if s := websocket.CloseStatus(end); s != websocket.StatusGoingAway {
		t.Errorf("round %d: connection ended with %v, want status 1001", round, end)
	}

	st, err := bboltstore.Open(filepath.Join(dir, relay.DBFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	left, err := st.Range(bg, mb, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	kept := map[protocol.EnvelopeID]bool{}
	for _, e := range left {
		kept[e.ID] = true
	}
	lost := 0
	for _, id := range ids {
		if !kept[id] && !answered[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("round %d: %d acks applied (of %d applied) without their OK", round, lost, n-len(left))
	}
}

// TestQueueBudget: 40 connections of one device subscribed to a 16 MiB
// mailbox that never read are held to the queue budget: the mailbox's
// subscriptions are capped, the relay's queued bytes stay within the
// device's budget, the Go heap grows by no more than twice it, and the
// memory is given back once they close.
func TestQueueBudget(t *testing.T) {
	r, url := newLimitRelay(t, relay.Config{})
	url = url[:len(url)-len(protocol.WebSocketPath)]
	own, d, mb, tok := owner(t, url)
	// 256 envelopes of 64 KiB: a full window of the largest bucket.
	env := make([]byte, 65536)
	env[0], env[1] = protocol.Version, byte(protocol.KindSealed)
	for range protocol.MaxInflight {
		own.write(&protocol.Send{Mailbox: mb, Capability: tok, Envelope: env})
	}
	for range protocol.MaxInflight {
		_, f := own.read()
		wantType[*protocol.Sent](t, f)
	}

	base := liveHeap()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang guard
	defer cancel()
	const conns = 40
	subscribed, refused := 0, 0
	var readers []*client
	for range conns {
		// A small receive buffer: a peer that does not read fills the
		// socket quickly, as one far away would, instead of the
		// loopback's megabytes of kernel buffers.
		dialer := &net.Dialer{}
		tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetReadBuffer(4096)
			}
			return c, err
		}}
		c := dialWith(t, url, &relayconn.Options{HTTPClient: &http.Client{Transport: tr}})
		wantType[*protocol.Authenticated](t, c.auth(d))
		// The answer to Subscribe is queued before any delivery: read it,
		// then never read again.
		switch f := c.do(&protocol.Subscribe{Mailbox: mb}).(type) {
		case *protocol.OK:
			subscribed++
		case *protocol.ErrorFrame:
			wantCode(t, f, protocol.CodeTooManyConnections)
			refused++
		}
		readers = append(readers, c)
	}
	if subscribed != relay.DefaultMaxSubscriptionsPerMailbox {
		t.Fatalf("%d subscriptions accepted, %d refused; want %d accepted", subscribed, refused, relay.DefaultMaxSubscriptionsPerMailbox)
	}
	// Wait for the deliveries to stop: the device's budget full, every
	// subscription parked or its writer blocked.
	var queued, peak int64
	for stable := 0; stable < 20; {
		if ctx.Err() != nil {
			t.Fatalf("queued bytes never settled (now %d)", queued)
		}
		time.Sleep(50 * time.Millisecond)
		q := r.QueuedBytes()
		peak = max(peak, q)
		if q == queued && q > 0 {
			stable++
		} else {
			stable = 0
		}
		queued = q
	}
	heap := liveHeap()
	t.Logf("40 connections, %d subscribed: %d bytes queued (peak %d), live heap +%d MiB", subscribed, queued, peak, (heap-base)>>20)
	if peak > relay.DefaultMaxQueuedBytesPerDevice+64<<10 {
		t.Fatalf("queued %d bytes, over the device's budget of %d", peak, relay.DefaultMaxQueuedBytesPerDevice)
	}
	if grow := int64(heap) - int64(base); grow > 2*relay.DefaultMaxQueuedBytesPerDevice {
		t.Fatalf("live heap grew by %d MiB with %d bytes queued", grow>>20, queued)
	}

	for _, c := range readers {
		c.ws.CloseNow()
	}
	limitsWaitFor(t, func() bool { return r.Connections() == 1 && r.QueuedBytes() == 0 })
	debug.FreeOSMemory()
	after := liveHeap()
	t.Logf("after close: live heap %+d MiB from before", (int64(after)-int64(base))>>20)
	if int64(after)-int64(base) > 4<<20 {
		t.Fatalf("live heap %d MiB above the start after every reader closed", (int64(after)-int64(base))>>20)
	}
	// The owner still works.
	wantType[*protocol.OK](t, own.do(&protocol.Ack{Mailbox: mb, IDs: []protocol.EnvelopeID{{1}}}))
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
