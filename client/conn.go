package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// errConnClosed: the relay connection is gone. Requests that fail with it
// may be retried on a new connection.
var errConnClosed = errors.New("client: relay connection closed")

// conn is one WebSocket connection to the relay. Requests are multiplexed
// by request ID; frames the relay pushes (request ID 0) go to the push
// queue. Safe for concurrent use.
type conn struct {
	ws        *websocket.Conn
	challenge protocol.Challenge
	host      string

	nextID  atomic.Uint32
	mu      sync.Mutex
	pending map[uint32]chan protocol.Frame
	closed  chan struct{}
	err     error // why closed; set before closed is closed

	push *pushQueue // nil: pushed frames are dropped
}

// dialRelay connects to relay (a canonical URL from CheckRelayURL) and
// reads the relay's challenge.
func dialRelay(ctx context.Context, relay string, push *pushQueue, tc *tls.Config) (*conn, error) {
	u, err := url.Parse(relay)
	if err != nil {
		return nil, ErrInvalidRelayURL
	}
	opts := &websocket.DialOptions{
		Subprotocols:    []string{protocol.Subprotocol},
		CompressionMode: websocket.CompressionDisabled, // ciphertext does not compress; compression leaks sizes
	}
	if tc != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = tc.Clone()
		opts.HTTPClient = &http.Client{Transport: t}
	}
	ws, resp, err := websocket.Dial(ctx, relay+protocol.WebSocketPath, opts)
	if err != nil {
		if resp != nil && resp.Header.Get(protocol.HTTPHeaderError) != "" {
			// Refused before the upgrade (per-address limits: 429 with
			// CodeTooManyConnections, and Retry-After).
			err = &refusedError{err: responseError(resp), retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
		} else if resp != nil && resp.StatusCode >= 500 {
			// A proxy in front of a relay that is not up yet (502, 503):
			// it may say when to come back.
			err = &refusedError{err: err, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
		}
		return nil, fmt.Errorf("client: connect to relay: %w", err)
	}
	if ws.Subprotocol() != protocol.Subprotocol {
		ws.Close(websocket.StatusProtocolError, "subprotocol")
		return nil, fmt.Errorf("client: relay did not accept subprotocol %s", protocol.Subprotocol)
	}
	ws.SetReadLimit(protocol.MaxFrameSize)
	c := &conn{ws: ws, host: u.Host, pending: make(map[uint32]chan protocol.Frame), closed: make(chan struct{}), push: push}
	_, b, err := ws.Read(ctx)
	if err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("client: read relay challenge: %w", err)
	}
	_, f, err := protocol.Parse(b)
	if err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("client: relay challenge: %w", err)
	}
	switch f := f.(type) {
	case *protocol.Challenge:
		c.challenge = *f
	case *protocol.ErrorFrame:
		ws.CloseNow()
		return nil, f.Err()
	default:
		ws.CloseNow()
		return nil, fmt.Errorf("client: relay sent frame 0x%02x before its challenge", uint8(f.Type()))
	}
	go c.readLoop()
	return c, nil
}

func (c *conn) readLoop() {
	var err error
	for {
		var b []byte
		_, b, err = c.ws.Read(context.Background())
		if err != nil {
			break
		}
		id, f, perr := protocol.Parse(b)
		if perr != nil {
			err = fmt.Errorf("client: relay sent a bad frame: %w", perr)
			break
		}
		if id == 0 {
			if ef, ok := f.(*protocol.ErrorFrame); ok {
				err = ef.Err() // the relay refuses the connection
				break
			}
			if c.push != nil {
				c.push.put(f)
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
}

func (c *conn) shutdown(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.closed:
		return
	default:
	}
	if err == nil {
		err = errConnClosed
	}
	c.err = err
	close(c.closed)
	c.ws.CloseNow()
	if c.push != nil {
		c.push.put(nil) // tell the consumer this connection ended
	}
}

// close ends the connection normally.
func (c *conn) close() {
	c.ws.Close(websocket.StatusNormalClosure, "")
	c.shutdown(errConnClosed)
}

// isClosed reports whether the connection has ended.
func (c *conn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// request sends f and waits for its answer. A relay refusal comes back as
// a *protocol.Error; a lost connection as an error wrapping errConnClosed.
func (c *conn) request(ctx context.Context, f protocol.Frame) (protocol.Frame, error) {
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

func (c *conn) closedErr() error {
	var pe *protocol.Error
	if errors.As(c.err, &pe) {
		return pe
	}
	var ce websocket.CloseError
	if errors.As(c.err, &ce) && ce.Code == websocket.StatusMessageTooBig {
		return fmt.Errorf("%w: frame too large (close 1009)", errConnClosed)
	}
	return errConnClosed
}

// authenticate proves the connection belongs to the device: Enroll when
// enrol is set (first time), Auth otherwise.
func (c *conn) authenticate(ctx context.Context, dev deviceSigner, enrol bool, invite string) error {
	sig, err := dev.Sign(protocol.AuthContext, protocol.AuthMessage(c.challenge.Nonce, c.host))
	if err != nil {
		return err
	}
	var f protocol.Frame
	if enrol {
		f = &protocol.Enroll{Invite: invite, DeviceKey: dev.Certificate().Signing.Bytes(), Signature: sig}
	} else {
		f = &protocol.Auth{Device: protocol.DeviceID(dev.Certificate().DeviceID()), Signature: sig}
	}
	r, err := c.request(ctx, f)
	if err != nil {
		return err
	}
	a, ok := r.(*protocol.Authenticated)
	if !ok {
		return unexpected(r)
	}
	if keys.Fingerprint(a.Device) != dev.Certificate().DeviceID() {
		return fmt.Errorf("client: relay authenticated another device")
	}
	return nil
}

type deviceSigner interface {
	Sign(context string, msg []byte) ([]byte, error)
	Certificate() *keys.DeviceCertificate
}

func unexpected(f protocol.Frame) error {
	return fmt.Errorf("client: unexpected relay answer 0x%02x", uint8(f.Type()))
}

// ok sends f and expects OK.
func (c *conn) ok(ctx context.Context, f protocol.Frame) error {
	r, err := c.request(ctx, f)
	if err != nil {
		return err
	}
	if _, ok := r.(*protocol.OK); !ok {
		return unexpected(r)
	}
	return nil
}

// pushQueue is an unbounded FIFO of frames the relay pushed. The relay
// bounds it: at most protocol.MaxInflight unacknowledged deliveries per
// subscription. A nil frame marks the end of a connection.
type pushQueue struct {
	mu     sync.Mutex
	items  []protocol.Frame
	signal chan struct{} // capacity 1
}

func newPushQueue() *pushQueue { return &pushQueue{signal: make(chan struct{}, 1)} }

func (q *pushQueue) put(f protocol.Frame) {
	q.mu.Lock()
	q.items = append(q.items, f)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// get blocks for the next frame or until done is closed.
func (q *pushQueue) get(done <-chan struct{}) (protocol.Frame, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			f := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			q.mu.Unlock()
			return f, true
		}
		q.mu.Unlock()
		select {
		case <-q.signal:
		case <-done:
			return nil, false
		}
	}
}

// Reconnect backoff: after a failed attempt the Client waits a random
// time between zero and a window that doubles from reconnectBase up to
// reconnectCap ("full jitter"), so that the devices of a whole site that
// lost the relay at the same moment (a restart) spread their attempts
// instead of returning together. A refusal's Retry-After is a floor: the
// Client waits at least that long, plus a random part of it.
const (
	reconnectBase = 200 * time.Millisecond
	reconnectCap  = 10 * time.Second
	// maxRetryAfter bounds a Retry-After the Client honours.
	maxRetryAfter = 5 * time.Minute
)

// reconnectDelay is the wait before reconnect attempt n (0 is the first
// after the connection was lost), given the previous attempt's error.
func reconnectDelay(n int, prev error) time.Duration {
	window := min(reconnectBase<<min(n, 16), reconnectCap)
	d := jitter(window)
	var re *refusedError
	if errors.As(prev, &re) && re.retryAfter > 0 {
		d = re.retryAfter + jitter(re.retryAfter)
	}
	return d
}

// jitter returns a uniformly random duration in [0, d).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	var b [8]byte
	rand.Read(b[:])
	return time.Duration(binary.BigEndian.Uint64(b[:]) % uint64(d))
}

// refusedError is a connection the relay (or its proxy) refused before
// the WebSocket upgrade, with the Retry-After it gave (zero: none).
type refusedError struct {
	err        error
	retryAfter time.Duration
}

func (e *refusedError) Error() string {
	if e.retryAfter > 0 {
		return fmt.Sprintf("%v (retry after %s)", e.err, e.retryAfter)
	}
	return e.err.Error()
}

func (e *refusedError) Unwrap() error { return e.err }

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date. It returns zero when the header is missing or unreadable, and at
// most maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
