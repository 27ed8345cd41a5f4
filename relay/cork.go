package relay

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// coder/websocket flushes every message to the network as it is written:
// one write system call per frame. A connection's writer usually has
// several frames at once (the Sent answers of a group commit, a mailbox's
// queued deliveries), and on loopback the system calls, not the bytes,
// are the cost. corkConn sits between the WebSocket and the hijacked
// network connection: between hold and release its writes are gathered in
// memory and written with one call. Outside hold (control frames written
// by the reader, close frames) it writes through.

// The WebSocket library's buffers per connection (net/http's are 4 KiB
// each, kept for the connection's life).
const (
	wsWriteBuffer = 512
	wsReadBuffer  = 2 << 10
)

// corkLimit bounds what a held corkConn gathers before it writes anyway.
const corkLimit = 256 << 10

// corkBufs holds gathering buffers between bursts, so that an idle
// connection keeps none.
var corkBufs = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

// errCorked is a corkConn's error after a failed write: the connection is
// broken and every later write fails.
var errCorked = errors.New("relay: connection write failed")

type corkConn struct {
	net.Conn

	mu   sync.Mutex
	held bool
	buf  *[]byte
	err  error
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.held {
		n, err := c.Conn.Write(p)
		if err != nil {
			c.err = errors.Join(errCorked, err)
		}
		return n, err
	}
	if c.buf == nil {
		c.buf = corkBufs.Get().(*[]byte)
	}
	if len(*c.buf)+len(p) > corkLimit {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// hold starts gathering writes.
func (c *corkConn) hold() {
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

// release writes what was gathered, with a write deadline of timeout from
// now, and stops gathering.
func (c *corkConn) release(timeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	if c.buf == nil || c.err != nil {
		c.putBuf()
		return c.err
	}
	c.Conn.SetWriteDeadline(time.Now().Add(timeout))
	err := c.flushLocked()
	c.Conn.SetWriteDeadline(time.Time{})
	c.putBuf()
	return err
}

func (c *corkConn) flushLocked() error {
	if c.buf == nil || len(*c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(*c.buf)
	*c.buf = (*c.buf)[:0]
	if err != nil {
		c.err = errors.Join(errCorked, err)
	}
	return c.err
}

func (c *corkConn) putBuf() {
	if c.buf == nil {
		return
	}
	if cap(*c.buf) <= corkLimit { // one grown past the limit is let go
		*c.buf = (*c.buf)[:0]
		corkBufs.Put(c.buf)
	}
	c.buf = nil
}

// corkWriter hands websocket.Accept a corkConn when it hijacks the HTTP
// connection.
type corkWriter struct {
	http.ResponseWriter
	conn *corkConn
}

func (w *corkWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: nc}
	// The handshake response is already written (Hijack flushes it). The
	// library writes through a bufio.Writer; frames are gathered by the
	// corkConn below it, so that buffer need only hold a control frame
	// (at most 139 bytes), not the 4 KiB net/http gives each connection.
	brw.Writer = bufio.NewWriterSize(w.conn, wsWriteBuffer)
	// Likewise the read buffer: one that holds a 1 KiB envelope's frame
	// is enough (bigger frames are read past it), unless the client has
	// already sent bytes that net/http's reader holds.
	if brw.Reader.Buffered() == 0 {
		brw.Reader = bufio.NewReaderSize(w.conn, wsReadBuffer)
	}
	return w.conn, brw, nil
}
