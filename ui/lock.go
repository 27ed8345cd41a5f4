package ui

import (
	"context"
	"errors"
	"runtime/debug"
	"sync"
	"time"

	"github.com/postern/postern/client"
)

// lockState is the app's lock: unlocked while cl is open. Locking closes
// the client, which is how its keys leave this process (as far as Go lets
// memory go: nothing refers to them any more).
type lockState struct {
	s *Server

	mu         sync.Mutex
	cl         *client.Client
	cancel     context.CancelFunc // ends the receive loop; nil while not receiving
	release    func()             // releases Options.ReceiveLock; nil while not receiving
	terms      bool               // the terms of use stand accepted on cl
	lastActive time.Time
	timer      *time.Timer
	done       chan struct{} // closed when the receive loop ends
}

func (l *lockState) init(s *Server) { l.s = s }

// unlock opens the client with passphrase (client.Open: no network until
// the receive loop connects) and adopts it. Already unlocked, it does
// nothing: the passphrase is not checked again.
func (s *Server) unlock(passphrase []byte) error {
	if s.client() != nil {
		return nil
	}
	// Opening derives the key from the passphrase (Argon2id, a second or
	// so): the lock is not held meanwhile, so that other requests get
	// their 423 at once.
	cl, err := client.Open(s.home, passphrase, s.clientOpt)
	// The key derivation's memory (64 MiB with the default Argon2id
	// cost) is garbage now, wrong passphrase or not: give it back to the
	// system at once rather than when the runtime gets to it, so that a
	// workstation's memory does not keep it.
	debug.FreeOSMemory()
	if err != nil {
		return err
	}
	if !s.auth.hasBearer() {
		// The home got its identity elsewhere (postern init) while the
		// app waited in the first run: its token file comes now.
		if err := s.loadBearer(); err != nil {
			cl.Close()
			return err
		}
	}
	return s.adopt(cl)
}

// adopt makes cl the app's client: unlocked. It starts receiving if the
// terms of use of TermsVersion stand accepted on this device; otherwise
// content is refused until they are (acceptTerms), and nothing is
// received.
func (s *Server) adopt(cl *client.Client) error {
	l := &s.lock
	tm, err := cl.Terms()
	if err != nil {
		cl.Close()
		return err
	}
	accepted := tm.AcceptedCurrent(TermsVersion)
	var release func()
	if accepted {
		if release, err = s.takeReceiveLock(); err != nil {
			cl.Close()
			return err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cl != nil { // unlocked by another request meanwhile
		cl.Close()
		if release != nil {
			release()
		}
		return nil
	}
	l.cl, l.lastActive, l.terms = cl, time.Now(), accepted
	s.chosenIdle.Store(int64(cl.LockTimeout()))
	l.timer = time.AfterFunc(s.lockTimeout(), s.idleCheck)
	if accepted {
		s.startReceivingLocked(cl, release)
	}
	s.log.Info("ui: unlocked", "terms", accepted)
	return nil
}

// takeReceiveLock takes Options.ReceiveLock, if there is one.
func (s *Server) takeReceiveLock() (func(), error) {
	if s.setup.recvLock == nil {
		return func() {}, nil
	}
	return s.setup.recvLock()
}

// startReceivingLocked starts the receive loop; l.mu is held.
func (s *Server) startReceivingLocked(cl *client.Client, release func()) {
	l := &s.lock
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel, l.release, l.done = cancel, release, make(chan struct{})
	go s.receiveLoop(ctx, cl, l.done)
}

// acceptTerms records the acceptance of TermsVersion on cl, the open
// client, and starts receiving.
func (s *Server) acceptTerms(cl *client.Client) error {
	l := &s.lock
	release, err := s.takeReceiveLock()
	if err != nil {
		return err
	}
	if _, err := cl.AcceptTerms(TermsVersion); err != nil {
		release()
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.cl != cl: // locked meanwhile
		release()
		return client.ErrClosed
	case l.terms: // accepted by another request meanwhile
		release()
	default:
		l.terms = true
		s.startReceivingLocked(cl, release)
	}
	s.log.Info("ui: the terms of use were accepted")
	return nil
}

// lockNow closes the client. Requests that hold it meanwhile get
// client.ErrClosed, which they answer as locked.
func (s *Server) lockNow(why string) {
	l := &s.lock
	l.mu.Lock()
	cl, cancel, done, release := l.cl, l.cancel, l.done, l.release
	l.cl, l.cancel, l.done, l.release, l.terms = nil, nil, nil, nil, false
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.mu.Unlock()
	s.uploads.dropAll(s.log) // their keys go with the client's
	s.links.stop()           // a link code is not kept past the lock
	if cl == nil {
		return
	}
	if cancel != nil {
		cancel()
	}
	cl.Close()
	if done != nil {
		<-done
	}
	if release != nil {
		release()
	}
	s.log.Info("ui: locked", "why", why)
}

// clientAndTerms returns the open client (nil while locked) and whether
// the terms of use stand accepted on it.
func (s *Server) clientAndTerms() (*client.Client, bool) {
	l := &s.lock
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cl, l.terms
}

// client returns the open client, nil while locked.
func (s *Server) client() *client.Client {
	l := &s.lock
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cl
}

// touch records activity: the idle timeout counts from the last request.
func (s *Server) touch() {
	l := &s.lock
	l.mu.Lock()
	l.lastActive = time.Now()
	l.mu.Unlock()
}

// idleCheck runs when the idle timeout may have passed: it locks, or
// waits for the rest of the timeout counted from the last activity.
func (s *Server) idleCheck() {
	l := &s.lock
	l.mu.Lock()
	if l.cl == nil || l.timer == nil {
		l.mu.Unlock()
		return
	}
	if rest := s.lockTimeout() - time.Since(l.lastActive); rest > 0 {
		l.timer.Reset(rest)
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	s.lockNow("idle")
}

// receiveLoop keeps the client receiving from the relay while unlocked:
// what arrives is stored and acknowledged by the library and reaches the
// page through Subscribe (/api/events). Receive connects on the first
// call and reconnects by itself; a failure to connect is retried with
// backoff.
func (s *Server) receiveLoop(ctx context.Context, cl *client.Client, done chan<- struct{}) {
	defer close(done)
	const maxWait = 30 * time.Second
	wait := time.Second
	for {
		_, err := cl.Receive(ctx)
		if ctx.Err() != nil || errors.Is(err, client.ErrClosed) {
			return
		}
		if err == nil {
			wait = time.Second
			continue
		}
		if errors.Is(err, client.ErrDeviceRevoked) {
			s.log.Warn("ui: this device was revoked; receiving stopped")
			return
		}
		// The library's errors hold no secrets or content.
		s.log.Warn("ui: receiving failed; trying again", "err", err, "in", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		wait = min(2*wait, maxWait)
	}
}
