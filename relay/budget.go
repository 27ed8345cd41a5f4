package relay

import (
	"sync"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// Queue budget defaults (SPEC.md 6). A subscription's window is up to
// MaxInflight envelopes of up to 64 KiB (16 MiB): without a byte budget a
// device could make the relay hold that much per connection that never
// reads. A connection that reads keeps its deliveries flowing with far
// less queued than that (the socket buffers hold more).
const (
	DefaultMaxQueuedBytesPerConn      = 4 << 20
	DefaultMaxQueuedBytesPerDevice    = 16 << 20
	DefaultMaxQueuedBytes             = 256 << 20
	DefaultMaxSubscriptionsPerMailbox = 16
)

// rangeBatch bounds the envelopes a subscription reads from the store at
// once, and so the copies it holds before they are queued or let go.
const rangeBatch = 32

// budget accounts for the bytes of outbound frames queued or being
// written, per connection, per device and in total. Deliveries reserve
// their bytes before they are queued and wait, parked, when a level is
// full; a level that drains to three quarters of its limit wakes the
// subscriptions parked on it. Answers are charged but never wait on bytes:
// each connection's answers are bounded by its write queue (in frames)
// and their own small size, and making them wait would let one
// connection's stuck deliveries starve another's answers.
type budget struct {
	perConn, perDev, total int64

	mu      sync.Mutex
	used    int64
	devs    map[protocol.DeviceID]*devBudget
	waiters []*subscription // parked on the relay-wide total
}

// devBudget is one device's share: the bytes queued on all its
// connections, and the subscriptions parked on it.
type devBudget struct {
	id      protocol.DeviceID
	used    int64
	conns   int // authenticated connections holding this entry
	waiters []*subscription
}

// connBudget is a connection's share; guarded by budget.mu.
type connBudget struct {
	used    int64
	dev     *devBudget // set when the connection authenticates
	waiters []*subscription
}

func (b *budget) init(c *Config) {
	b.perConn, b.perDev, b.total = c.MaxQueuedBytesPerConn, c.MaxQueuedBytesPerDevice, c.MaxQueuedBytes
	b.devs = map[protocol.DeviceID]*devBudget{}
}

// attach charges c's deliveries from now on to device id as well.
func (b *budget) attach(c *conn, id protocol.DeviceID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.budget.dev != nil {
		return
	}
	d := b.devs[id]
	if d == nil {
		d = &devBudget{id: id}
		b.devs[id] = d
	}
	d.conns++
	c.budget.dev = d
}

// detach forgets c when it has ended (its frames already released): its
// device entry goes when no connection holds it, and c's parked
// subscriptions leave every list.
func (b *budget) detach(c *conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c.budget.waiters = nil
	b.waiters = dropConn(b.waiters, c)
	if d := c.budget.dev; d != nil {
		d.waiters = dropConn(d.waiters, c)
		d.conns--
		if d.conns == 0 && d.used == 0 {
			delete(b.devs, d.id)
		}
	}
}

func dropConn(subs []*subscription, c *conn) []*subscription {
	out := subs[:0]
	for _, s := range subs {
		if s.c != c {
			out = append(out, s)
		} else {
			s.parked = false
		}
	}
	clear(subs[len(out):])
	return out
}

// reserve charges n bytes of a delivery for subscription s on its
// connection. When a level has no room it parks s there and returns
// false; a level with nothing queued always takes one frame, so a budget
// smaller than a frame still delivers.
func (b *budget) reserve(s *subscription, n int64) (*devBudget, bool) {
	c := &s.c.budget
	b.mu.Lock()
	defer b.mu.Unlock()
	d := c.dev
	var park *[]*subscription
	switch {
	case c.used > 0 && c.used+n > b.perConn:
		park = &c.waiters
	case d != nil && d.used > 0 && d.used+n > b.perDev:
		park = &d.waiters
	case b.used > 0 && b.used+n > b.total:
		park = &b.waiters
	}
	if park != nil {
		if !s.parked {
			s.parked = true
			*park = append(*park, s)
		}
		return nil, false
	}
	b.chargeLocked(c, d, n)
	return d, true
}

// charge charges n bytes of an answer on c, without waiting.
func (b *budget) charge(c *conn, n int64) *devBudget {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := c.budget.dev
	b.chargeLocked(&c.budget, d, n)
	return d
}

func (b *budget) chargeLocked(c *connBudget, d *devBudget, n int64) {
	c.used += n
	if d != nil {
		d.used += n
	}
	b.used += n
}

// release gives back n bytes charged on c (and d, as charged) and wakes
// the subscriptions parked on a level that has drained to three quarters
// of its limit.
func (b *budget) release(cn *conn, d *devBudget, n int64) {
	c := &cn.budget
	var wake []*subscription
	b.mu.Lock()
	c.used -= n
	b.used -= n
	if len(c.waiters) > 0 && c.used <= b.perConn/4*3 {
		wake = append(wake, c.waiters...)
		c.waiters = c.waiters[:0]
	}
	if d != nil {
		d.used -= n
		if len(d.waiters) > 0 && d.used <= b.perDev/4*3 {
			wake = append(wake, d.waiters...)
			d.waiters = nil
		}
		if d.conns == 0 && d.used == 0 {
			delete(b.devs, d.id)
		}
	}
	if len(b.waiters) > 0 && b.used <= b.total/4*3 {
		wake = append(wake, b.waiters...)
		b.waiters = nil
	}
	for _, s := range wake {
		s.parked = false
	}
	b.mu.Unlock()
	for _, s := range wake {
		s.signal()
	}
}

// QueuedBytes returns the bytes of outbound frames queued or being written
// in the whole relay (the budget's own accounting).
func (r *Relay) QueuedBytes() int64 {
	r.budget.mu.Lock()
	defer r.budget.mu.Unlock()
	return r.budget.used
}

// sharedFrame is a Deliver frame queued on one or more connections: every
// subscriber of a mailbox is sent the same bytes, so they share one copy.
type sharedFrame struct {
	id   protocol.EnvelopeID
	b    []byte
	refs int // guarded by sharedFrames.mu
}

// sharedFrames holds the Deliver frames queued anywhere, by envelope ID.
type sharedFrames struct {
	mu sync.Mutex
	m  map[protocol.EnvelopeID]*sharedFrame
}

// get returns the Deliver frame of e in mailbox mb, holding a reference:
// the one already queued somewhere, or a new one.
func (s *sharedFrames) get(mb protocol.MailboxID, e store.Envelope) (*sharedFrame, error) {
	s.mu.Lock()
	if f := s.m[e.ID]; f != nil {
		f.refs++
		s.mu.Unlock()
		return f, nil
	}
	s.mu.Unlock()
	b, err := protocol.Marshal(0, &protocol.Deliver{Mailbox: mb, ID: e.ID, Received: uint64(e.Received.Unix()), Envelope: e.Data})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.m[e.ID]; f != nil { // made meanwhile by another subscriber
		f.refs++
		return f, nil
	}
	f := &sharedFrame{id: e.ID, b: b, refs: 1}
	s.m[e.ID] = f
	return f, nil
}

// put drops a reference; the last one lets the frame go.
func (s *sharedFrames) put(f *sharedFrame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.refs--
	if f.refs == 0 {
		delete(s.m, f.id)
	}
}
