package ui

import (
	"net/http"
	"time"

	"github.com/postern/postern/client"
)

// The lock's timeout is the configured one (Options.IdleTimeout: the
// --idle-timeout flag or the organisation's policy), or a shorter one the
// person chose in Settings for this device (client.SetLockTimeout). The
// configured one is the most: a person may lock sooner, never later.

// lockTimeout is how long the app stays unlocked without use.
func (s *Server) lockTimeout() time.Duration {
	if d := time.Duration(s.chosenIdle.Load()); d > 0 && d < s.idle {
		return d
	}
	return s.idle
}

// setLockTimeout records the person's choice (seconds; the configured
// timeout or 0 to use it) and restarts the idle timer with it. It answers
// a failure itself.
func (s *Server) setLockTimeout(w http.ResponseWriter, cl *client.Client, seconds int64) bool {
	d := time.Duration(seconds) * time.Second
	if d == s.idle {
		d = 0 // the configured timeout: nothing of its own to keep
	}
	if d != 0 && (d < client.MinLockTimeout || d > s.idle) {
		writeError(w, http.StatusBadRequest,
			"the screen lock's time must be from "+client.MinLockTimeout.String()+" to "+s.idle.String(),
			"this computer's setting is the longest it may be")
		return false
	}
	if err := cl.SetLockTimeout(d); err != nil {
		s.fail(w, err)
		return false
	}
	s.chosenIdle.Store(int64(d))
	s.resetIdleTimer()
	return true
}

// resetIdleTimer makes the idle timer fire when the current timeout has
// passed since the last activity (at once if it has passed already).
func (s *Server) resetIdleTimer() {
	l := &s.lock
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Reset(max(s.lockTimeout()-time.Since(l.lastActive), 0))
	}
}
