package relay

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/postern/postern/protocol"
)

// conn is one WebSocket connection. One goroutine (serve) reads and
// handles requests in order; one (writeLoop) writes queued frames; each
// subscription has its own goroutine that queues deliveries.
type conn struct {
	r     *Relay
	ws    *websocket.Conn
	cork  *corkConn // under ws: the writer's bursts go out in one write
	host  string
	log   *slog.Logger
	nonce [32]byte

	ctx    context.Context // ends when the connection ends
	cancel context.CancelFunc
	out    outQueue

	// life guards starting goroutines: once the connection has ended no
	// new writer or delivery loop starts, so wg.Wait in serve is final.
	life  sync.Mutex
	ended bool
	wg    sync.WaitGroup // writer and subscriptions

	// Owned by the serve goroutine.
	authed bool
	device protocol.DeviceID
	subs   map[protocol.MailboxID]*subscription

	ready readyList // subscriptions waiting for the delivery loop
	// frames is the connection's frame rate limit (Config.FrameRate and
	// FrameBurst). A value, not a pointer: it costs an idle connection
	// its size and no allocation. Reload changes it (setFrameRate).
	frames rate.Limiter

	busy sync.Mutex // held while a request is handled

	budget connBudget // bytes queued; guarded by r.budget.mu (budget.go)

	adm          admission // what the per-address limits decided (limits.go)
	authFailures int       // failed Enroll/Auth on this connection; owned by serve

	// Sends are answered when durable, not in order: up to
	// protocol.MaxPipelinedSends per connection wait for the committer at
	// once while the connection reads on, so one client connection can
	// fill a group commit instead of paying one fsync per send.
	sends     chan struct{}  // a slot per send being made durable
	pending   sync.WaitGroup // sends being made durable
	closing   atomic.Bool
	closeOnce sync.Once
}

type outFrame struct {
	b     []byte
	flush chan struct{} // when set: a marker, closed once everything before it is written

	shared *sharedFrame // a Deliver frame shared with other connections
	dev    *devBudget   // the device budget charged, if any
	n      int64        // bytes charged to the budget
}

func newConn(r *Relay, ws *websocket.Conn, cork *corkConn, host string, n uint64) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		r:      r,
		ws:     ws,
		cork:   cork,
		host:   host,
		log:    r.log.With("conn", n),
		ctx:    ctx,
		cancel: cancel,
		out:    outQueue{space: make(chan struct{}, 1)},
		subs:   map[protocol.MailboxID]*subscription{},
		sends:  make(chan struct{}, protocol.MaxPipelinedSends),
	}
	// Set at the zero time, the bucket is full at the first frame: it
	// refills from then to now, capped at the burst.
	c.setFrameRate(time.Time{}, r.set())
	rand.Read(c.nonce[:])
	return c
}

func (c *conn) serve() {
	c.log.Debug("connection opened") // one pair per connection: too many for info
	defer c.log.Debug("connection closed")
	defer func() {
		// Every send already queued to the store finishes (the store
		// never abandons a write), so the relay's Shutdown, which waits
		// for this handler, closes the store only after them.
		c.pending.Wait()
		c.cancel()
		c.ws.CloseNow()
		for _, s := range c.subs {
			c.r.hub.remove(s)
		}
		c.life.Lock()
		c.ended = true
		c.life.Unlock()
		c.wg.Wait()
		// No writer or delivery loop runs now: what is still queued
		// will never be written.
		c.out.mu.Lock()
		c.out.dropped = true
		left := c.out.frames
		c.out.frames = nil
		c.out.mu.Unlock()
		for _, f := range left {
			c.release(f)
		}
		c.r.budget.detach(c)
	}()

	c.send(0, &protocol.Challenge{Nonce: c.nonce, Time: uint64(c.r.cfg.Now().Unix())})

	// An unauthenticated connection that stays silent for AuthTimeout is
	// closed; any frame restarts the clock.
	authTimeout := c.r.cfg.AuthTimeout
	if c.adm.probation {
		authTimeout = min(authTimeout, probationAuthTimeout)
	}
	authTimer := time.AfterFunc(authTimeout, func() {
		c.closeWith(websocket.StatusPolicyViolation, "authentication timeout", true)
	})
	defer authTimer.Stop()

	// The connection's end closes the WebSocket, which ends a read in
	// progress: reads then need no context of their own (coder/websocket
	// arms a timer and a callback per read whose context can end).
	stopClose := context.AfterFunc(c.ctx, func() { c.ws.CloseNow() })
	defer stopClose()

	for {
		typ, buf, err := c.read()
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				c.log.Info("frame too large; closed", "status", websocket.StatusMessageTooBig)
			} else if s := websocket.CloseStatus(err); s == -1 && c.ctx.Err() == nil {
				c.log.Debug("read failed", "err", err)
			}
			return
		}
		c.busy.Lock()
		if c.closing.Load() {
			// The relay is shutting down and this frame is not handled.
			// shutdown flushes every answer already decided and closes
			// with 1001, reading (and discarding) what the peer still
			// sends until its close frame: a socket closed with unread
			// data is reset, and a reset makes the peer's kernel drop the
			// answers and the close frame it has not read yet.
			c.busy.Unlock()
			readBufs.Put(buf)
			<-c.ctx.Done()
			return
		}
		if c.authed {
			authTimer.Stop()
		} else {
			authTimer.Reset(authTimeout)
		}
		var keep bool
		if typ != websocket.MessageBinary {
			c.closeWith(websocket.StatusUnsupportedData, "binary frames only", true)
		} else {
			keep = c.handle(buf.b) // Parse copies what it keeps
		}
		readBufs.Put(buf)
		c.busy.Unlock()
		if !keep {
			return
		}
	}
}

// readBuf is a buffer for one incoming frame.
type readBuf struct{ b []byte }

// readBufs holds frame buffers of MaxFrameSize+1 bytes (the library's
// read limit lets one byte past the limit through before it fails). A connection takes
// one only once a message has started to arrive and returns it when the
// frame is handled, so an idle connection holds none, and a busy one
// reads without allocating (Conn.Read grows a new buffer per message).
var readBufs = sync.Pool{New: func() any { return &readBuf{b: make([]byte, protocol.MaxFrameSize+1)} }}

// read reads the next message into a pooled buffer; buf.b is the message.
// The caller returns buf to readBufs.
func (c *conn) read() (websocket.MessageType, *readBuf, error) {
	typ, r, err := c.ws.Reader(context.Background())
	if err != nil {
		return 0, nil, err
	}
	buf := readBufs.Get().(*readBuf)
	b := buf.b[:cap(buf.b)]
	n := 0
	for {
		if n == len(b) {
			// Past MaxFrameSize: the library's read limit fails the next
			// read with ErrMessageTooBig and closes with 1009.
			var one [1]byte
			_, err = r.Read(one[:])
		} else {
			var m int
			m, err = r.Read(b[n:])
			n += m
		}
		if errors.Is(err, io.EOF) {
			buf.b = b[:n]
			return typ, buf, nil
		}
		if err != nil {
			buf.b = b
			readBufs.Put(buf)
			return 0, nil, err
		}
	}
}

// shutdown ends the connection for a relay shutdown: it waits for the
// request in progress, flushes its answer and closes with StatusGoingAway.
func (c *conn) shutdown() {
	c.closing.Store(true)
	c.busy.Lock()
	defer c.busy.Unlock()
	c.pending.Wait() // answer every send already taken before closing
	c.closeWith(websocket.StatusGoingAway, "relay shutting down", true)
}

// closeWith closes the connection once with a status and reason, after
// writing what is queued if flush is set.
func (c *conn) closeWith(code websocket.StatusCode, reason string, flush bool) {
	c.closeOnce.Do(func() {
		c.log.Info("closing connection", "status", code, "reason", reason)
		if flush {
			c.flush()
		}
		c.ws.Close(code, reason)
		c.cancel()
	})
}

// flush waits until every frame queued so far is written (or the
// connection fails, or SlowConsumerTimeout passes).
func (c *conn) flush() {
	done := make(chan struct{})
	if !c.enqueue(outFrame{flush: done}) {
		return
	}
	t := time.NewTimer(c.r.cfg.SlowConsumerTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-c.ctx.Done():
	case <-t.C:
	}
}

// spawn runs f in a goroutine counted by c.wg, unless the connection has
// ended. Writers and delivery loops run only while they have work, so an
// idle connection holds no goroutine but its reader.
func (c *conn) spawn(f func()) bool {
	c.life.Lock()
	defer c.life.Unlock()
	if c.ended {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

// outQueue holds a connection's frames waiting for the writer. It is a
// slice rather than a buffered channel, and its writer goroutine runs only
// while frames are queued, so that an idle listener costs the relay little.
type outQueue struct {
	mu      sync.Mutex
	frames  []outFrame
	writing bool          // a writer goroutine is running
	dropped bool          // the connection has ended: nothing more is queued
	space   chan struct{} // the writer took the queue
}

// release gives back what a frame held: its bytes in the budget and its
// reference to a shared frame. Every frame queued is released once,
// written or not.
func (c *conn) release(f outFrame) {
	if f.n > 0 {
		c.r.budget.release(c, f.dev, f.n)
	}
	if f.shared != nil {
		c.r.frames.put(f.shared)
	}
}

// writeLoop writes queued frames until the queue is empty, then exits.
func (c *conn) writeLoop() {
	var batch []outFrame
	for {
		c.out.mu.Lock()
		if len(c.out.frames) == 0 || c.ctx.Err() != nil {
			c.out.writing = false
			c.out.mu.Unlock()
			return
		}
		batch, c.out.frames = c.out.frames, batch[:0]
		c.out.mu.Unlock()
		select {
		case c.out.space <- struct{}{}:
		default:
		}
		// The whole batch goes out in one write (cork.go), under one
		// deadline: a peer that takes no frame for SlowConsumerTimeout is
		// a slow consumer.
		c.cork.hold()
		ctx, cancel := context.WithTimeout(c.ctx, c.r.cfg.SlowConsumerTimeout)
		var err error
		for i, f := range batch {
			batch[i] = outFrame{}
			if err != nil {
				c.release(f)
				continue
			}
			if f.flush != nil {
				// Everything before the marker must be on the wire.
				if err = c.cork.release(c.r.cfg.SlowConsumerTimeout); err == nil {
					close(f.flush)
					c.cork.hold()
				}
				continue
			}
			err = c.ws.Write(ctx, websocket.MessageBinary, f.b)
			c.release(f)
		}
		cancel()
		if rerr := c.cork.release(c.r.cfg.SlowConsumerTimeout); err == nil {
			err = rerr
		}
		if err != nil {
			if c.ctx.Err() == nil {
				c.log.Info("write failed; closing", "err", err)
			}
			c.cancel()
			c.ws.CloseNow()
			// Cleared only here and under the emptiness check: a
			// deferred clear could run after a new writer started.
			c.out.mu.Lock()
			c.out.writing = false
			c.out.mu.Unlock()
			return
		}
		// Keep a small buffer for the next burst; let a large one go.
		if cap(batch) > 64 {
			batch = nil
		}
	}
}

// enqueue queues a frame for the writer, starting it if it is not running.
// If the queue stays at Config.WriteQueue frames for SlowConsumerTimeout
// the peer is not reading: the connection is closed as a slow consumer
// (this never blocks any other connection).
// A frame that is not queued is released.
func (c *conn) enqueue(f outFrame) bool {
	var t *time.Timer
	for {
		if c.ctx.Err() != nil {
			c.release(f)
			return false
		}
		c.out.mu.Lock()
		if c.out.dropped {
			c.out.mu.Unlock()
			c.release(f)
			return false
		}
		if len(c.out.frames) < c.r.cfg.WriteQueue {
			c.out.frames = append(c.out.frames, f)
			ok := true
			if !c.out.writing {
				c.out.writing = c.spawn(c.writeLoop)
				ok = c.out.writing
			}
			c.out.mu.Unlock()
			if t != nil {
				t.Stop()
			}
			return ok
		}
		c.out.mu.Unlock()
		if t == nil {
			t = time.NewTimer(c.r.cfg.SlowConsumerTimeout)
		}
		select {
		case <-c.out.space:
		case <-c.ctx.Done():
			t.Stop()
			c.release(f)
			return false
		case <-t.C:
			go c.closeWith(websocket.StatusPolicyViolation, "slow consumer: write queue full", false)
			c.release(f)
			return false
		}
	}
}

// send marshals and queues a frame.
func (c *conn) send(id uint32, f protocol.Frame) bool {
	b, err := protocol.Marshal(id, f)
	if err != nil {
		c.log.Error("marshal failed", "type", fmt.Sprintf("0x%02x", uint8(f.Type())), "err", err)
		b, _ = protocol.Marshal(id, &protocol.ErrorFrame{Code: protocol.CodeInternal, Msg: "relay could not encode its answer"})
	}
	n := int64(len(b))
	return c.enqueue(outFrame{b: b, n: n, dev: c.r.budget.charge(c, n)})
}

func (c *conn) refuse(id uint32, code protocol.Code, msg string) {
	c.r.cfg.Metrics.Refused(code)
	c.send(id, &protocol.ErrorFrame{Code: code, Msg: msg})
}

// allow takes one frame from the connection's rate limit.
func (c *conn) allow() bool {
	return c.frames.AllowN(c.r.cfg.Now(), 1)
}

// requestID reads the request ID of a frame that may not parse.
func requestID(b []byte) uint32 {
	if len(b) < protocol.HeaderSize {
		return 0
	}
	return binary.BigEndian.Uint32(b[1:5])
}
