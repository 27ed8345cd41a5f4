// Package relaytest starts a real relay on loopback for tests, like
// net/http/httptest:
//
//	srv := relaytest.New(t, nil)
//	conn, err := relayconn.Dial(ctx, srv.URL, nil) // internal/relayconn
//
// The relay keeps its data in t.TempDir(). Restart closes it completely and
// starts a new one on the same data and the same address, to test
// reconnection and durability. On cleanup the relay is closed and its store
// file is checked for consistency.
package relaytest

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/metrics"
	"github.com/postern/postern/relay/store"
	"github.com/postern/postern/relay/store/bboltstore"
)

// Store opens (or creates) the bbolt store in dir/relay.DBFile, as
// cmd/postern-relay does, for a relay.Config built by hand:
//
//	r, err := relay.New(relay.Config{DataDir: dir, Store: relaytest.Store(t, dir)})
//
// The relay closes it. It fails the test if the store cannot be opened.
func Store(t testing.TB, dir string) store.Store {
	t.Helper()
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatalf("relaytest: %v", err)
	}
	return st
}

// OpenStore is Store for callers that expect an error (a damaged or newer
// file).
func OpenStore(dir string) (*bboltstore.Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return bboltstore.Open(filepath.Join(dir, relay.DBFile), nil)
}

// Options configure New. Nil means all defaults.
type Options struct {
	// Enrollment is relay.EnrollOpen or relay.EnrollInvite. Empty means open.
	Enrollment string
	// Retention is the envelope lifetime. Zero means protocol.DefaultRetention.
	Retention time.Duration
	// Now is the relay's clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives the relay's logs. Nil means discard.
	Logger *slog.Logger
	// MaxBlobSize is the largest blob. Zero means protocol.DefaultMaxBlobSize.
	MaxBlobSize int64
	// BlobQuota is each device's blob quota. Zero means protocol.DefaultBlobQuota.
	BlobQuota int64
	// BlobRetention is how long a finished blob is kept. Zero means
	// protocol.DefaultBlobRetention.
	BlobRetention time.Duration
	// Metrics receives the relay's metrics (kept across Restart). Nil
	// means none.
	Metrics *metrics.Metrics
	// DataDir is the relay's data directory, e.g. a copy of a relay made
	// by an earlier release. Empty means a new t.TempDir().
	DataDir string
	// BundleFetchBurst is how many bundle fetches one capability may make
	// at once (relay.Config.BundleFetchBurst). Zero means the relay's
	// default; tests that drain a device's prekeys on purpose raise it.
	BundleFetchBurst int
}

// Server is a relay listening on 127.0.0.1.
type Server struct {
	// URL is the relay's base URL, "ws://127.0.0.1:PORT"; the WebSocket
	// endpoint is URL + protocol.WebSocketPath. Blobs are at
	// HTTPURL + protocol.BlobPath + id.
	URL string
	// HTTPURL is "http://127.0.0.1:PORT", for blob transfers.
	HTTPURL string
	// Addr is "127.0.0.1:PORT".
	Addr string
	// DataDir holds the relay's store.
	DataDir string

	t    testing.TB
	opts Options

	mu     sync.Mutex
	relay  *relay.Relay
	srv    *http.Server
	done   chan struct{}
	closed bool
	down   bool // stopped (Stop) and not started again
}

// New starts a relay on 127.0.0.1 with a random port and data in
// opts.DataDir or t.TempDir(). It is closed on t.Cleanup.
func New(t testing.TB, opts *Options) *Server {
	t.Helper()
	s := &Server{t: t}
	if opts != nil {
		s.opts = *opts
	}
	s.DataDir = s.opts.DataDir
	if s.DataDir == "" {
		s.DataDir = t.TempDir()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("relaytest: %v", err)
	}
	s.Addr = l.Addr().String()
	s.URL = "ws://" + s.Addr
	s.HTTPURL = "http://" + s.Addr
	s.start(l)
	t.Cleanup(s.Close)
	return s
}

func (s *Server) start(l net.Listener) {
	s.t.Helper()
	st, err := OpenStore(s.DataDir)
	if err != nil {
		l.Close()
		s.t.Fatalf("relaytest: %v", err)
	}
	r, err := relay.New(relay.Config{
		DataDir:          s.DataDir,
		Store:            st,
		Logger:           s.opts.Logger,
		Enrollment:       s.opts.Enrollment,
		Retention:        s.opts.Retention,
		Now:              s.opts.Now,
		MaxBlobSize:      s.opts.MaxBlobSize,
		BlobQuota:        s.opts.BlobQuota,
		BlobRetention:    s.opts.BlobRetention,
		Metrics:          s.opts.Metrics,
		BundleFetchBurst: s.opts.BundleFetchBurst,
		PurgeInterval:    -1, // tests call PurgeExpired and PurgeExpiredBlobs: no timers
	})
	if err != nil {
		l.Close()
		s.t.Fatalf("relaytest: %v", err)
	}
	// As cmd/postern-relay: no overall read or write timeout (blob
	// transfers set their own deadlines), bounded headers.
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.t.Errorf("relaytest: serve: %v", err)
		}
	}()
	s.mu.Lock()
	s.relay, s.srv, s.done = r, srv, done
	s.mu.Unlock()
}

// Relay returns the running relay (a new one after Restart).
func (s *Server) Relay() *relay.Relay {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.relay
}

func (s *Server) stop() {
	s.mu.Lock()
	r, srv, done := s.relay, s.srv, s.done
	s.mu.Unlock()
	// Stop accepting first, then close the relay (its connections are
	// hijacked, so the http.Server does not track them).
	srv.Close()
	<-done
	if err := r.Close(); err != nil {
		s.t.Errorf("relaytest: close relay: %v", err)
	}
}

// Restart closes the relay completely (connections get StatusGoingAway,
// the store is closed) and starts a new relay on the same data directory
// and the same address.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

// Stop closes the relay completely, as Restart does, and leaves it down
// (connections to its address are refused) until Start.
func (s *Server) Stop() {
	s.t.Helper()
	s.mu.Lock()
	if s.closed || s.down {
		s.mu.Unlock()
		s.t.Fatal("relaytest: Stop of a relay that is not running")
	}
	s.down = true
	s.mu.Unlock()
	s.stop()
}

// Start starts a stopped relay again on the same data directory and the
// same address.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	if s.closed || !s.down {
		s.mu.Unlock()
		s.t.Fatal("relaytest: Start of a relay that is not stopped")
	}
	s.mu.Unlock()
	var l net.Listener
	var err error
	// The port was just released; binding it again can briefly fail on
	// some systems. Bounded retries.
	for i := 0; i < 50; i++ {
		if l, err = net.Listen("tcp", s.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("relaytest: listen again on %s: %v", s.Addr, err)
	}
	s.start(l)
	s.mu.Lock()
	s.down = false
	s.mu.Unlock()
}

// Close stops the relay and checks its store file. It is safe to call
// more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	down := s.down
	s.mu.Unlock()
	if !down {
		s.stop()
	}
	if err := bboltstore.Check(filepath.Join(s.DataDir, relay.DBFile)); err != nil {
		s.t.Errorf("relaytest: store check: %v", err)
	}
}
