package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// DBFile is the file name of cmd/postern-relay's bbolt store inside the
// data directory. The relay itself only knows its store through
// store.Store (Config.Store).
const DBFile = "relay.db"

// Relay is a running relay. It is an http.Handler; it is safe for
// concurrent use.
type Relay struct {
	// cfg is the configuration as given to New with its defaults filled
	// in. Its reloadable fields (settings.into) are those at start only:
	// read them through set().
	cfg Config
	log *slog.Logger
	st  store.Store
	hub hub

	given    Config                   // as passed to New, for Config and Reload
	live     atomic.Pointer[settings] // reload.go
	reloadMu sync.Mutex               // one Reload at a time
	logKey   logKey                   // account IDs in logs (logkey.go)

	mu      sync.Mutex
	conns   map[*conn]struct{}
	closing bool
	connWG  sync.WaitGroup
	nextID  uint64
	admins  []closer
	devs    deviceRegistry // authenticated connections by device; barred devices

	blobs  blobs
	ka     keepalive  // keepalive.go
	limits addrLimits // limits.go

	fetches      *throttle[protocol.CapabilityHash] // FetchBundle per capability (throttle.go)
	ktFetches    *throttle[netip.Addr]              // FetchDeviceList per address (kt.go)
	ktPublishes  *throttle[protocol.DeviceID]       // PublishDeviceList per device (kt.go)
	dirPublishes *throttle[protocol.DeviceID]       // PublishDirectory per device (kt.go, directory.go)
	authFails    *throttle[netip.Addr]              // failed authentications per address
	refusals     sampledLog                         // rate-limit refusals, logged sampled
	connRefusals sampledLog                         // per-address refusals of upgrades
	blobSlow     sampledLog                         // uploads cut for trickling
	budget       budget                             // queued outbound bytes (budget.go)
	frames       sharedFrames                       // Deliver frames shared by subscribers

	purgeStop chan struct{}
	purgeDone chan struct{}
	closeOnce sync.Once
	closeErr  error
}

type closer interface{ Close() error }

// New starts a relay on cfg.Store and its background work (the retention
// purge). Serve it with an http.Server; stop it with Shutdown or Close.
// The relay owns the store from here on: it closes it on Close, and New
// closes it when it fails.
func New(cfg Config) (*Relay, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: Store is nil (open one, e.g. bboltstore.Open, and pass it)", ErrConfig)
	}
	c, err := cfg.withDefaults()
	if err != nil {
		cfg.Store.Close()
		return nil, err
	}
	st := c.Store
	r := &Relay{
		cfg:       c,
		given:     cfg,
		log:       c.Logger,
		st:        st,
		conns:     map[*conn]struct{}{},
		purgeStop: make(chan struct{}),
		purgeDone: make(chan struct{}),
	}
	r.hub.subs = map[protocol.MailboxID]map[*subscription]struct{}{}
	r.fetches = newThrottle[protocol.CapabilityHash](float64(c.BundleFetchesPerHour)/3600, c.BundleFetchBurst)
	r.authFails = newThrottle[netip.Addr](float64(c.AuthFailuresPerAddress)/60, c.AuthFailureBurst)
	r.ktThrottles()
	r.refusals.every = 10 * time.Second
	r.connRefusals.every = 10 * time.Second
	r.blobSlow.every = 10 * time.Second
	r.budget.init(&c)
	r.frames.m = map[protocol.EnvelopeID]*sharedFrame{}
	r.live.Store(settingsOf(&c))
	if err := r.cfg.openAudit(); err != nil {
		st.Close()
		return nil, err
	}
	c.Metrics.WatchStore(st, c.Now)
	if err := r.initBlobs(); err != nil {
		st.Close()
		r.cfg.Audit.Close()
		return nil, err
	}
	if c.PurgeInterval > 0 {
		go r.purgeLoop()
	} else {
		close(r.purgeDone)
	}
	r.startKeepalive()
	r.auditStart()
	r.log.Info("relay started", "enrollment", c.Enrollment, "retention", c.Retention.String())
	return r, nil
}

// Store returns the relay's store.
func (r *Relay) Store() store.Store { return r.st }

// ServeHTTP serves protocol.WebSocketPath (the WebSocket endpoint),
// protocol.BlobPath (blob upload and download, SPEC.md 12.1) and /healthz
// (200 "ok" while the relay accepts connections, 503 after).
//
// Serve it with an http.Server without ReadTimeout or WriteTimeout: blob
// transfers may take hours, and the relay sets its own progress-based
// deadlines on them. Set ReadHeaderTimeout and MaxHeaderBytes.
func (r *Relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if strings.HasPrefix(req.URL.Path, protocol.BlobPath) {
		r.serveBlob(r.cfg.Metrics.BlobResponses(w), req) // counts refusals
		return
	}
	switch req.URL.Path {
	case protocol.WebSocketPath:
		r.serveWebSocket(w, req)
	case "/readyz":
		r.serveReadyz(w, req) // readyz.go
	case "/healthz":
		r.mu.Lock()
		closing := r.closing
		r.mu.Unlock()
		if closing {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	default:
		http.NotFound(w, req)
	}
}

func (r *Relay) serveWebSocket(w http.ResponseWriter, req *http.Request) {
	release, adm, ok := r.admitAddr(w, req) // per-address limits, before the upgrade (limits.go)
	if !ok {
		return
	}
	cw := &corkWriter{ResponseWriter: w} // cork.go: frames of a burst in one write
	ws, err := websocket.Accept(cw, req, &websocket.AcceptOptions{
		Subprotocols: []string{protocol.Subprotocol},
		// Envelopes are ciphertext: compression gains nothing and would
		// open compression side channels.
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		release()
		return // Accept wrote the HTTP error
	}
	if ws.Subprotocol() != protocol.Subprotocol {
		ws.Close(websocket.StatusPolicyViolation, "the "+protocol.Subprotocol+" subprotocol is required")
		release()
		return
	}
	// coder/websocket's default is 32 KiB; frames go up to MaxFrameSize.
	// A bigger message is refused by the library with close 1009.
	ws.SetReadLimit(protocol.MaxFrameSize)

	r.mu.Lock()
	var refuse *protocol.ErrorFrame
	var status websocket.StatusCode
	switch {
	case r.closing:
		refuse, status = &protocol.ErrorFrame{Code: protocol.CodeShuttingDown, Msg: "relay shutting down"}, websocket.StatusGoingAway
	case len(r.conns) >= r.set().maxConns:
		refuse, status = &protocol.ErrorFrame{Code: protocol.CodeTooManyConnections, Msg: "relay at its connection limit"}, websocket.StatusTryAgainLater
	}
	if refuse != nil {
		r.mu.Unlock()
		r.cfg.Metrics.Refused(refuse.Code)
		b, _ := protocol.Marshal(0, refuse)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ws.Write(ctx, websocket.MessageBinary, b)
		cancel()
		ws.Close(status, refuse.Msg)
		release()
		return
	}
	r.nextID++
	// The host is copied: the connection keeps nothing of the request.
	c := newConn(r, ws, cw.conn, strings.Clone(req.Host), r.nextID)
	c.adm = adm
	r.conns[c] = struct{}{}
	r.connWG.Add(1)
	r.mu.Unlock()
	r.cfg.Metrics.ConnOpened()

	// The connection runs on a goroutine of its own and the handler
	// returns: net/http then lets go of the request, the response and
	// their buffers, several KiB that a handler running for the
	// connection's whole life would hold (BenchmarkIdleConnections).
	go func() {
		defer func() {
			r.mu.Lock()
			delete(r.conns, c)
			r.mu.Unlock()
			r.devs.remove(c)
			r.cfg.Metrics.ConnClosed()
			release()
			r.connWG.Done()
		}()
		c.serve()
	}()
}

// Shutdown stops accepting connections, lets each connection finish its
// request in progress (so every commit completes and is answered), closes
// the connections with StatusGoingAway and closes the store. If ctx ends
// first, the remaining connections are closed at once; the store is still
// closed only after every in-flight write has committed.
func (r *Relay) Shutdown(ctx context.Context) error {
	r.closeOnce.Do(func() { r.closeErr = r.shutdown(ctx) })
	return r.closeErr
}

// Close is Shutdown with a five-second grace period.
func (r *Relay) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.Shutdown(ctx)
}

func (r *Relay) shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closing = true
	conns := make([]*conn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	admins := r.admins
	r.mu.Unlock()
	for _, a := range admins {
		a.Close()
	}
	close(r.purgeStop)
	<-r.purgeDone
	r.stopKeepalive()

	for _, c := range conns {
		go c.shutdown()
	}
	done := make(chan struct{})
	go func() { r.connWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		r.mu.Lock()
		for c := range r.conns {
			c.cancel()
			c.ws.CloseNow()
		}
		r.mu.Unlock()
		<-done // handlers return once their store call is answered
	}
	// Uploads in progress commit their whole chunks before the store closes.
	r.blobs.shutdown()
	err := r.st.Close()
	r.auditStop()
	r.log.Info("relay stopped")
	return err
}

func (r *Relay) purgeLoop() {
	defer close(r.purgeDone)
	t := time.NewTicker(r.cfg.PurgeInterval)
	defer t.Stop()
	for {
		select {
		case <-r.purgeStop:
			return
		case <-t.C:
			if _, err := r.PurgeExpired(context.Background()); err != nil && !errors.Is(err, store.ErrClosed) {
				r.log.Error("retention purge failed", "err", err)
			}
			if _, err := r.PurgeExpiredBlobs(context.Background()); err != nil && !errors.Is(err, store.ErrClosed) {
				r.log.Error("blob purge failed", "err", err)
			}
		}
	}
}

// PurgeExpired deletes every envelope whose expiry has passed (by
// Config.Now), in transactions of at most Config.PurgeBatch envelopes, and
// returns how many it deleted. The purge loop calls it every
// Config.PurgeInterval.
func (r *Relay) PurgeExpired(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := r.st.Purge(ctx, r.cfg.Now(), r.cfg.PurgeBatch)
		total += n
		r.cfg.Metrics.Expired(n)
		if err != nil {
			return total, err
		}
		if n < r.cfg.PurgeBatch || ctx.Err() != nil {
			break
		}
	}
	if total > 0 {
		r.log.Info("retention purge", "envelopes", total)
		r.auditCount(auditRetentionPurge, "envelopes", total)
	}
	return total, nil
}

// Connections returns the number of open WebSocket connections.
func (r *Relay) Connections() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}
