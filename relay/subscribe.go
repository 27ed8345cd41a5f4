package relay

import (
	"errors"
	"sync"
	"sync/atomic"

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

// subscribed reports whether mb has a subscription.
func (h *hub) subscribed(mb protocol.MailboxID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs[mb]) > 0
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
// caught up with everything stored. It has no goroutine of its own: the
// connection's delivery loop pumps every subscription that was signalled,
// so an idle listener with many mailboxes costs the relay one goroutine.
type subscription struct {
	c       *conn
	mb      protocol.MailboxID
	queued  atomic.Bool // in the connection's ready list
	stopped atomic.Bool

	// mu guards inflight. pump holds it across reading the store and
	// recording what it read, and acked takes it after the delete is
	// durable, so an envelope acknowledged elsewhere never stays in the
	// window.
	mu       sync.Mutex
	inflight map[protocol.EnvelopeID]struct{}

	// Owned by the delivery loop.
	cursor  uint64 // highest sequence delivered (or skipped)
	pending bool   // delivered something since the last Drained
	drained bool   // sent at least one Drained
}

func (c *conn) subscribe(mb protocol.MailboxID) {
	s := &subscription{
		c:        c,
		mb:       mb,
		inflight: map[protocol.EnvelopeID]struct{}{},
	}
	c.subs[mb] = s
	c.r.hub.add(s)
	s.signal()
}

// signal puts the subscription on its connection's ready list (once) and
// starts the delivery loop if it is not running. It never blocks.
func (s *subscription) signal() {
	if s.stopped.Load() || !s.queued.CompareAndSwap(false, true) {
		return
	}
	c := s.c
	c.ready.mu.Lock()
	c.ready.subs = append(c.ready.subs, s)
	if !c.ready.running {
		c.ready.running = c.spawn(c.deliverLoop)
	}
	c.ready.mu.Unlock()
}

func (s *subscription) stop() { s.stopped.Store(true) }

// readyList is a connection's subscriptions waiting to be pumped.
type readyList struct {
	mu      sync.Mutex
	subs    []*subscription
	running bool // a delivery loop is running
}

// deliverLoop pumps the connection's signalled subscriptions until none is
// waiting, then exits; signal starts it again.
func (c *conn) deliverLoop() {
	var batch []*subscription
	for {
		c.ready.mu.Lock()
		if len(c.ready.subs) == 0 || c.ctx.Err() != nil {
			c.ready.running = false
			c.ready.mu.Unlock()
			return
		}
		batch, c.ready.subs = c.ready.subs, batch[:0]
		c.ready.mu.Unlock()
		for _, s := range batch {
			// Clear first: a signal that arrives during pump queues the
			// subscription again rather than being lost.
			s.queued.Store(false)
			if s.stopped.Load() {
				continue
			}
			if !s.pump() {
				c.cancel()
				c.ready.mu.Lock()
				c.ready.running = false
				c.ready.mu.Unlock()
				return
			}
		}
		clear(batch)
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
			c.r.cfg.Metrics.Delivered(e.ID)
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
