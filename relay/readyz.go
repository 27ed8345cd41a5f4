package relay

import (
	"errors"
	"net/http"
	"time"

	"github.com/postern/postern/relay/store"
)

// readyTimeout bounds the write that /readyz makes.
const readyTimeout = 2 * time.Second

// pinger is a store that can prove it is writable (bboltstore.Store.Ping
// commits a tiny meta write through its committer).
type pinger interface{ Ping() error }

// Ready reports whether the relay can serve writes: it is not shutting
// down and the store commits a small write within two seconds.
func (r *Relay) Ready() error {
	r.mu.Lock()
	closing := r.closing
	r.mu.Unlock()
	if closing {
		return ErrClosed
	}
	p, ok := r.st.(pinger)
	if !ok {
		return nil // no way to test; the store was opened
	}
	done := make(chan error, 1)
	go func() { done <- p.Ping() }()
	t := time.NewTimer(readyTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return errors.New("relay: store write took longer than 2s")
	}
}

// serveReadyz answers /readyz: 200 "ready" when Ready, 503 otherwise.
func (r *Relay) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := r.Ready(); err != nil {
		r.log.Warn("not ready", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		if errors.Is(err, store.ErrStorageFull) {
			w.Write([]byte("not ready: storage full\n"))
			return
		}
		w.Write([]byte("not ready\n"))
		return
	}
	w.Write([]byte("ready\n"))
}
