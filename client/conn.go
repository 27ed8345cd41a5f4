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
	"time"

	"github.com/postern/postern/internal/relayconn"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
)

// errConnClosed: the relay connection is gone. Requests that fail with it
// may be retried on a new connection.
var errConnClosed = relayconn.ErrClosed

// conn is one WebSocket connection to the relay: a started
// relayconn.Conn, whose pushed frames go to the push queue. Safe for
// concurrent use.
type conn struct {
	rc   *relayconn.Conn
	push *pushQueue // nil: pushed frames are dropped
}

// dialRelay connects to relay (a canonical URL from CheckRelayURL) and
// reads the relay's challenge.
func dialRelay(ctx context.Context, relay string, push *pushQueue, tc *tls.Config) (*conn, error) {
	if _, err := url.Parse(relay); err != nil {
		return nil, ErrInvalidRelayURL
	}
	rc, err := relayconn.Dial(ctx, relay, &relayconn.Options{TLSConfig: tc})
	if err != nil {
		var de *relayconn.DialError
		if !errors.As(err, &de) {
			return nil, err
		}
		err = de.Err
		if resp := de.Response; resp != nil && resp.Header.Get(protocol.HTTPHeaderError) != "" {
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
	c := &conn{rc: rc, push: push}
	if push != nil {
		rc.Start(push.put) // nil marks the end of the connection
	} else {
		rc.Start(nil)
	}
	return c, nil
}

// close ends the connection normally.
func (c *conn) close() { c.rc.Close() }

// isClosed reports whether the connection has ended.
func (c *conn) isClosed() bool {
	select {
	case <-c.rc.Done():
		return true
	default:
		return false
	}
}

// request sends f and waits for its answer. A relay refusal comes back as
// a *protocol.Error; a lost connection as an error wrapping errConnClosed.
func (c *conn) request(ctx context.Context, f protocol.Frame) (protocol.Frame, error) {
	return c.rc.Request(ctx, f)
}

// authenticate proves the connection belongs to the device: Enroll when
// enrol is set (first time), Auth otherwise. The relay never sees a
// certificate: a device being linked enrols with its keys alone.
func (c *conn) authenticate(ctx context.Context, dev deviceSigner, enrol bool, invite string) error {
	sig, err := dev.Sign(protocol.AuthContext, c.rc.AuthMessage())
	if err != nil {
		return err
	}
	pub := dev.Signing()
	var f protocol.Frame
	if enrol {
		f = &protocol.Enroll{Invite: invite, DeviceKey: pub.Bytes(), Signature: sig}
	} else {
		f = &protocol.Auth{Device: protocol.DeviceID(pub.Fingerprint()), Signature: sig}
	}
	r, err := c.request(ctx, f)
	if err != nil {
		return err
	}
	a, ok := r.(*protocol.Authenticated)
	if !ok {
		return unexpected(r)
	}
	if keys.Fingerprint(a.Device) != pub.Fingerprint() {
		return fmt.Errorf("client: relay authenticated another device")
	}
	return nil
}

// deviceSigner is a device's signing key: an *identity.Device (through
// certSigner) or the *identity.DeviceKeys of a device being linked.
type deviceSigner interface {
	Sign(context string, msg []byte) ([]byte, error)
	Signing() *keys.SigningPublicKey
}

// certSigner adapts a certified device to deviceSigner.
type certSigner struct{ d *identity.Device }

func (s certSigner) Sign(context string, msg []byte) ([]byte, error) { return s.d.Sign(context, msg) }
func (s certSigner) Signing() *keys.SigningPublicKey                 { return s.d.Certificate().Signing }

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

// idle reports whether no frame waits.
func (q *pushQueue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) == 0
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
