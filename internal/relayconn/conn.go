package relayconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"

	"github.com/postern/postern/protocol"
)

// Options configure Dial. Nil means all defaults.
type Options struct {
	// TLSConfig verifies a wss:// relay, e.g. with a private CA in
	// RootCAs. Nil means Go's defaults (the system's roots).
	TLSConfig *tls.Config
	// HTTPClient carries the upgrade request; it takes precedence over
	// TLSConfig. Nil means http.DefaultClient, or a client with
	// http.DefaultTransport's settings and TLSConfig when that is set.
	HTTPClient *http.Client
	// HTTPHeader is added to the upgrade request. Nil means none.
	HTTPHeader http.Header
}

// Conn is one WebSocket connection to a relay, past its Challenge. See the
// package documentation for its two modes. A started Conn is safe for
// concurrent use.
type Conn struct {
	ws        *websocket.Conn
	challenge protocol.Challenge
	host      string

	started atomic.Bool
	nextID  atomic.Uint32
	mu      sync.Mutex
	pending map[uint32]chan protocol.Frame
	closed  chan struct{}
	err     error // why closed; set before closed is closed
	push    func(protocol.Frame)
}

// Dial connects to the relay at relayURL (its base URL, ws:// or wss://,
// without protocol.WebSocketPath) and reads its Challenge.
func Dial(ctx context.Context, relayURL string, opts *Options) (*Conn, error) {
	u, err := url.Parse(relayURL)
	if err != nil {
		return nil, fmt.Errorf("relayconn: relay URL: %w", err)
	}
	if opts == nil {
		opts = &Options{}
	}
	do := &websocket.DialOptions{
		Subprotocols:    []string{protocol.Subprotocol},
		CompressionMode: websocket.CompressionDisabled,
		HTTPClient:      opts.HTTPClient,
		HTTPHeader:      opts.HTTPHeader,
	}
	if do.HTTPClient == nil && opts.TLSConfig != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = opts.TLSConfig.Clone()
		do.HTTPClient = &http.Client{Transport: t}
	}
	ws, resp, err := websocket.Dial(ctx, relayURL+protocol.WebSocketPath, do)
	if err != nil {
		return nil, &DialError{Err: err, Response: resp}
	}
	if ws.Subprotocol() != protocol.Subprotocol {
		ws.Close(websocket.StatusProtocolError, "subprotocol")
		return nil, fmt.Errorf("relayconn: relay did not accept subprotocol %s", protocol.Subprotocol)
	}
	ws.SetReadLimit(protocol.MaxFrameSize)
	c := &Conn{ws: ws, host: u.Host, pending: make(map[uint32]chan protocol.Frame), closed: make(chan struct{})}
	_, f, err := c.read(ctx)
	if err != nil {
		ws.CloseNow()
		if errors.Is(err, protocol.ErrMalformed) || errors.Is(err, protocol.ErrTooLarge) || errors.Is(err, protocol.ErrVersion) {
			return nil, fmt.Errorf("relayconn: relay challenge: %w", err)
		}
		return nil, fmt.Errorf("relayconn: read relay challenge: %w", err)
	}
	switch f := f.(type) {
	case *protocol.Challenge:
		c.challenge = *f
	case *protocol.ErrorFrame:
		ws.CloseNow()
		return nil, f.Err()
	default:
		ws.CloseNow()
		return nil, fmt.Errorf("relayconn: relay sent frame 0x%02x before its challenge", uint8(f.Type()))
	}
	return c, nil
}

// Wrap makes a Conn in direct mode of ws, a connection to a relay dialled
// elsewhere (by a test of the upgrade itself, or of a refusal in place of
// the challenge); host is what AuthMessage binds. Nothing is read: the
// relay's first frame is the caller's to read, and Challenge is zero.
func Wrap(ws *websocket.Conn, host string) *Conn {
	ws.SetReadLimit(protocol.MaxFrameSize)
	return &Conn{ws: ws, host: host, pending: make(map[uint32]chan protocol.Frame), closed: make(chan struct{})}
}

// errNotStarted is a Request on a Conn in direct mode.
var errNotStarted = errors.New("relayconn: Request before Start")

// errStarted is a ReadFrame on a started Conn.
var errStarted = errors.New("relayconn: ReadFrame on a started connection")

// errText is a text message from the relay, which speaks binary only.
var errText = fmt.Errorf("%w: text message from relay", protocol.ErrMalformed)

// read reads and parses one frame.
func (c *Conn) read(ctx context.Context) (uint32, protocol.Frame, error) {
	typ, b, err := c.ws.Read(ctx)
	if err != nil {
		return 0, nil, err
	}
	if typ != websocket.MessageBinary {
		return 0, nil, errText
	}
	return protocol.Parse(b)
}

// Challenge is the relay's challenge on this connection.
func (c *Conn) Challenge() protocol.Challenge { return c.challenge }

// Host is the host (and port, if any) the connection was dialled to: what
// AuthMessage binds.
func (c *Conn) Host() string { return c.host }

// AuthMessage is what a device signs (context protocol.AuthContext) to
// enrol or authenticate on this connection.
func (c *Conn) AuthMessage() []byte { return protocol.AuthMessage(c.challenge.Nonce, c.host) }

// ReadFrame reads the next frame (direct mode). A text message or a frame
// that does not parse is an error wrapping protocol.ErrMalformed (or
// ErrTooLarge, ErrVersion); a closed connection is the WebSocket's error
// (websocket.CloseStatus reads its status).
func (c *Conn) ReadFrame(ctx context.Context) (id uint32, f protocol.Frame, err error) {
	if c.started.Load() {
		return 0, nil, errStarted // the reading goroutine owns the frames
	}
	return c.read(ctx)
}

// WriteFrame writes f with request ID id (direct mode).
func (c *Conn) WriteFrame(ctx context.Context, id uint32, f protocol.Frame) error {
	b, err := protocol.Marshal(id, f)
	if err != nil {
		return err
	}
	return c.ws.Write(ctx, websocket.MessageBinary, b)
}

// WebSocket is the underlying connection, for tests that send what
// WriteFrame would refuse to encode.
func (c *Conn) WebSocket() *websocket.Conn { return c.ws }

// Start switches to multiplexed mode: a goroutine reads every frame from
// now on, hands answers to the Request waiting for them and pushed frames
// (request ID 0) to push, one at a time and in order. push must not block
// for long: answers wait behind it. When the connection ends, push is
// called one last time with nil. A nil push drops pushed frames. Start
// must be called once, before any Request.
func (c *Conn) Start(push func(protocol.Frame)) {
	if !c.started.CompareAndSwap(false, true) {
		panic("relayconn: Start called twice")
	}
	c.push = push
	go c.readLoop()
}

func (c *Conn) readLoop() {
	var err error
	for {
		var id uint32
		var f protocol.Frame
		id, f, err = c.read(context.Background())
		if err != nil {
			if errors.Is(err, protocol.ErrMalformed) || errors.Is(err, protocol.ErrTooLarge) || errors.Is(err, protocol.ErrVersion) {
				err = fmt.Errorf("relayconn: relay sent a bad frame: %w", err)
			}
			break
		}
		if id == 0 {
			if ef, ok := f.(*protocol.ErrorFrame); ok {
				err = ef.Err() // the relay refuses the connection
				break
			}
			if c.push != nil {
				c.push(f)
			}
			continue
		}
		c.mu.Lock()
		ch := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- f // buffered
		}
	}
	c.shutdown(err)
	if c.push != nil {
		c.push(nil)
	}
}

func (c *Conn) shutdown(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.closed:
		return
	default:
	}
	if err == nil {
		err = ErrClosed
	}
	c.err = err
	close(c.closed)
	c.ws.CloseNow()
}

// Request sends f and waits for its answer (multiplexed mode). A relay
// refusal comes back as a *protocol.Error, an answer as the frame. When
// the connection is or becomes closed it returns the *protocol.Error the
// relay closed it with, or an error wrapping ErrClosed. When ctx ends
// first it returns ctx.Err(); a write interrupted that way also closes
// the connection (a WebSocket cannot resume half a message).
func (c *Conn) Request(ctx context.Context, f protocol.Frame) (protocol.Frame, error) {
	if !c.started.Load() {
		return nil, errNotStarted // nothing would read the answer
	}
	id := c.nextID.Add(1)
	if id == 0 {
		id = c.nextID.Add(1)
	}
	b, err := protocol.Marshal(id, f)
	if err != nil {
		return nil, err
	}
	ch := make(chan protocol.Frame, 1)
	c.mu.Lock()
	if c.isClosed() {
		c.mu.Unlock()
		return nil, c.closedErr()
	}
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	if err := c.ws.Write(ctx, websocket.MessageBinary, b); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		c.shutdown(err)
		return nil, c.closedErr()
	}
	select {
	case r := <-ch:
		if ef, ok := r.(*protocol.ErrorFrame); ok {
			return nil, ef.Err()
		}
		return r, nil
	case <-c.closed:
		return nil, c.closedErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// closedErr is what requests on a closed connection return.
func (c *Conn) closedErr() error {
	var pe *protocol.Error
	if errors.As(c.err, &pe) {
		return pe
	}
	var ce websocket.CloseError
	if errors.As(c.err, &ce) && ce.Code == websocket.StatusMessageTooBig {
		return fmt.Errorf("%w: frame too large (close 1009)", ErrClosed)
	}
	return ErrClosed
}

// Ping sends a WebSocket ping and waits for its pong: a keep-alive, and a
// check that the relay still answers. It needs a started Conn (the pong
// arrives through the reading goroutine).
func (c *Conn) Ping(ctx context.Context) error {
	if err := c.ws.Ping(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: ping: %v", ErrClosed, err)
	}
	return nil
}

func (c *Conn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// Done is closed when a started connection has ended (by either side).
func (c *Conn) Done() <-chan struct{} { return c.closed }

// Err is why a started connection ended: nil while it is open, the
// *protocol.Error the relay refused it with, the read error, or
// ErrClosed after Close.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the connection with the normal closure status, waiting
// briefly for the relay's close (the WebSocket closing handshake).
func (c *Conn) Close() {
	c.ws.Close(websocket.StatusNormalClosure, "")
	c.shutdown(ErrClosed)
}

// CloseNow ends the connection at once, without the closing handshake.
func (c *Conn) CloseNow() {
	c.ws.CloseNow()
	c.shutdown(ErrClosed)
}
