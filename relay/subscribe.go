package relay

import (
	"errors"
	"sync"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// hub finds the subscriptions of a mailbox, to wake them when an envelope
// arrives and to free their windows when envelopes are acknowledged. It
// never blocks on a connection.
type hub struct {
	mu   sync.Mutex
	subs map[protocol.MailboxID]map[*subscription]struct{}
}

func (h *hub) add(s *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.subs[s.mb]
	if m == nil {
		m = map[*subscription]struct{}{}
		h.subs[s.mb] = m
	}
	m[s] = struct{}{}
}

func (h *hub) remove(s *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.subs[s.mb]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(h.subs, s.mb)
		}
	}
	s.stop()
}

// wake tells every subscription of mb to look for new envelopes.
func (h *hub) wake(mb protocol.MailboxID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[mb] {
		s.signal()
	}
}

// acked removes durably deleted envelopes from every subscription's
// window and wakes them to send more.
func (h *hub) acked(mb protocol.MailboxID, ids []protocol.EnvelopeID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[mb] {
		s.mu.Lock()
		for _, id := range ids {
			delete(s.inflight, id)
		}
		s.mu.Unlock()
		s.signal()
	}
}

// subscription delivers one mailbox's envelopes on one connection: oldest
// first, at most MaxInflight unacknowledged, then Drained each time it has
// caught up with everything stored.
type subscription struct {
	c    *conn
	mb   protocol.MailboxID
	wake chan struct{}
	done chan struct{}
	once sync.Once

	// mu guards inflight. pump holds it across reading the store and
	// recording what it read, and acked takes it after the delete is
	// durable, so an envelope acknowledged elsewhere never stays in the
	// window.
	mu       sync.Mutex
	inflight map[protocol.EnvelopeID]struct{}

	// Owned by the subscription's goroutine.
	cursor  uint64 // highest sequence delivered (or skipped)
	pending bool   // delivered something since the last Drained
	drained bool   // sent at least one Drained
}

func (c *conn) subscribe(mb protocol.MailboxID) {
	s := &subscription{
		c:        c,
		mb:       mb,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		inflight: map[protocol.EnvelopeID]struct{}{},
	}
	c.subs[mb] = s
	c.r.hub.add(s)
	s.signal()
	c.wg.Add(1)
	go s.run()
}

func (s *subscription) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscription) stop() { s.once.Do(func() { close(s.done) }) }

func (s *subscription) run() {
	defer s.c.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.c.ctx.Done():
			return
		case <-s.wake:
		}
		if !s.pump() {
			return
		}
	}
}

// pump delivers what the window allows; it returns false when the
// subscription must end.
func (s *subscription) pump() bool {
	c := s.c
	for {
		s.mu.Lock()
		room := protocol.MaxInflight - len(s.inflight)
		if room <= 0 {
			s.mu.Unlock()
			return true // acks will wake us
		}
		envs, err := c.r.st.Range(c.ctx, s.mb, s.cursor, room)
		now := c.r.cfg.Now()
		var deliver []store.Envelope
		for _, e := range envs {
			s.cursor = e.Seq
			if !e.Expires.After(now) {
				continue // expired; the purge will delete it
			}
			s.inflight[e.ID] = struct{}{}
			deliver = append(deliver, e)
		}
		s.mu.Unlock()
		if err != nil {
			if !errors.Is(err, store.ErrClosed) {
				c.log.Error("reading mailbox failed", "mailbox", s.mb.Short(), "err", err)
			}
			return false
		}
		for _, e := range deliver {
			if !c.send(0, &protocol.Deliver{Mailbox: s.mb, ID: e.ID, Received: uint64(e.Received.Unix()), Envelope: e.Data}) {
				return false
			}
			s.pending = true
		}
		caughtUp := len(envs) < room
		if !caughtUp {
			// The window is full: caught up only if nothing more is stored.
			more, err := c.r.st.Range(c.ctx, s.mb, s.cursor, 1)
			if err != nil {
				return false
			}
			caughtUp = len(more) == 0
			if !caughtUp {
				s.mu.Lock()
				full := len(s.inflight) >= protocol.MaxInflight
				s.mu.Unlock()
				if full {
					return true
				}
				continue
			}
		}
		if s.pending || !s.drained {
			s.pending, s.drained = false, true
			if !c.send(0, &protocol.Drained{Mailbox: s.mb}) {
				return false
			}
		}
		return true
	}
}
