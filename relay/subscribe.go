package relay

import (
	"errors"
	"fmt"
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

// add registers s, unless its mailbox already has max subscriptions.
func (h *hub) add(s *subscription, max int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.subs[s.mb]
	if m == nil {
		m = map[*subscription]struct{}{}
		h.subs[s.mb] = m
	}
	if len(m) >= max {
		return false
	}
	m[s] = struct{}{}
	return true
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
	parked  bool // waiting for room in the queue budget; guarded by Relay.budget.mu

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

// subscribe starts a subscription to mb and answers request id: OK before
// the first delivery, or CodeTooManyConnections when the mailbox has
// Config.MaxSubscriptionsPerMailbox subscriptions already.
func (c *conn) subscribe(id uint32, mb protocol.MailboxID) {
	s := &subscription{
		c:        c,
		mb:       mb,
		inflight: map[protocol.EnvelopeID]struct{}{},
	}
	if !c.r.hub.add(s, c.r.cfg.MaxSubscriptionsPerMailbox) {
		c.refuse(id, protocol.CodeTooManyConnections, fmt.Sprintf("this mailbox has %d subscriptions already", c.r.cfg.MaxSubscriptionsPerMailbox))
		return
	}
	c.subs[mb] = s
	c.send(id, &protocol.OK{})
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

// pump delivers what the window and the queue budget allow; it returns
// false when the subscription must end.
func (s *subscription) pump() bool {
	c := s.c
	for {
		s.mu.Lock()
		room := protocol.MaxInflight - len(s.inflight)
		if room <= 0 {
			s.mu.Unlock()
			// The window is full: caught up only if nothing more is stored.
			more, err := c.r.st.Range(c.ctx, s.mb, s.cursor, 1)
			if err != nil {
				return false
			}
			if len(more) > 0 {
				return true // acks will wake us
			}
			return s.drainedIfDue()
		}
		n := min(room, rangeBatch)
		envs, err := c.r.st.Range(c.ctx, s.mb, s.cursor, n)
		now := c.r.cfg.Now()
		var deliver []outFrame
		parked := false
		for _, e := range envs {
			if !e.Expires.After(now) {
				s.cursor = e.Seq
				continue // expired; the purge will delete it
			}
			f, ferr := c.r.frames.get(s.mb, e)
			if ferr != nil {
				err = ferr
				break
			}
			size := int64(len(f.b))
			dev, ok := c.r.budget.reserve(s, size)
			if !ok {
				// Parked: a release wakes us, and the envelope is read
				// again then (the cursor stays before it).
				c.r.frames.put(f)
				parked = true
				break
			}
			s.cursor = e.Seq
			s.inflight[e.ID] = struct{}{}
			deliver = append(deliver, outFrame{b: f.b, shared: f, dev: dev, n: size})
		}
		s.mu.Unlock()
		for i, f := range deliver {
			id := f.shared.id
			if !c.enqueue(f) {
				for _, g := range deliver[i+1:] {
					c.release(g)
				}
				return false
			}
			c.r.cfg.Metrics.Delivered(id)
			s.pending = true
		}
		if err != nil {
			if !errors.Is(err, store.ErrClosed) {
				c.log.Error("reading mailbox failed", "mailbox", s.mb.Short(), "err", err)
			}
			return false
		}
		if parked {
			return true
		}
		if len(envs) == n {
			continue // there may be more
		}
		return s.drainedIfDue()
	}
}

// drainedIfDue sends Drained once the subscription has caught up, if it
// delivered something since the last one (or never sent one).
func (s *subscription) drainedIfDue() bool {
	if s.pending || !s.drained {
		s.pending, s.drained = false, true
		return s.c.send(0, &protocol.Drained{Mailbox: s.mb})
	}
	return true
}
