package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
)

type config struct {
	url                 string
	pairs, window, size int
}

func (c config) check() error {
	u, err := url.Parse(c.url)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return fmt.Errorf("--url %q: want ws://HOST:PORT or wss://HOST:PORT", c.url)
	}
	if c.pairs < 1 || c.window < 1 || c.window > protocol.MaxPipelinedSends {
		return fmt.Errorf("--pairs at least 1, --window 1 to %d", protocol.MaxPipelinedSends)
	}
	if _, err := protocol.BucketFor(c.size); err != nil || c.size < protocol.MinEnvelopeSize {
		return fmt.Errorf("--size %d: not a padding bucket (1 KiB to 64 KiB)", c.size)
	}
	if b, _ := protocol.BucketFor(c.size); b != c.size {
		return fmt.Errorf("--size %d: not a padding bucket (next: %d)", c.size, b)
	}
	return nil
}

// wsConn is one protocol connection.
type wsConn struct {
	ws    *websocket.Conn
	host  string
	nonce [32]byte
	next  uint32
}

func dial(ctx context.Context, rawURL string) (*wsConn, error) {
	ws, _, err := websocket.Dial(ctx, strings.TrimSuffix(rawURL, "/")+protocol.WebSocketPath, &websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(protocol.MaxFrameSize)
	u, _ := url.Parse(rawURL)
	c := &wsConn{ws: ws, host: u.Host}
	_, f, err := c.read(ctx)
	if err != nil {
		ws.CloseNow()
		return nil, err
	}
	ch, ok := f.(*protocol.Challenge)
	if !ok {
		ws.CloseNow()
		return nil, fmt.Errorf("first frame %T, want Challenge", f)
	}
	c.nonce = ch.Nonce
	return c, nil
}

func (c *wsConn) read(ctx context.Context) (uint32, protocol.Frame, error) {
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		return 0, nil, err
	}
	return protocol.Parse(b)
}

func (c *wsConn) write(ctx context.Context, id uint32, f protocol.Frame) error {
	b, err := protocol.Marshal(id, f)
	if err != nil {
		return err
	}
	return c.ws.Write(ctx, websocket.MessageBinary, b)
}

// do sends a request and waits for its answer (setup only: nothing else
// is in flight).
func (c *wsConn) do(ctx context.Context, f protocol.Frame) (protocol.Frame, error) {
	c.next++
	if err := c.write(ctx, c.next, f); err != nil {
		return nil, err
	}
	for {
		id, g, err := c.read(ctx)
		if err != nil {
			return nil, err
		}
		if id != c.next {
			continue // a push (Drained)
		}
		if e, ok := g.(*protocol.ErrorFrame); ok {
			return nil, e.Err()
		}
		return g, nil
	}
}

type pair struct {
	own, anon *wsConn
	mb        protocol.MailboxID
	tok       protocol.CapabilityToken
	nextOwn   uint32 // request IDs of the owner's Acks
	nextSend  uint32
}

type pairs struct {
	cfg config
	ps  []*pair
}

// setup enrols a device per pair, gives it a mailbox and a capability,
// subscribes it, and dials its sender.
func setup(ctx context.Context, cfg config) (*pairs, error) {
	all := &pairs{cfg: cfg}
	for range cfg.pairs {
		p, err := newPair(ctx, cfg.url)
		if err != nil {
			all.close()
			return nil, fmt.Errorf("setting up a pair: %w", err)
		}
		all.ps = append(all.ps, p)
	}
	return all, nil
}

func newPair(ctx context.Context, u string) (*pair, error) {
	id, err := identity.GenerateIdentity()
	if err != nil {
		return nil, err
	}
	dev, err := identity.NewDevice(id)
	if err != nil {
		return nil, err
	}
	own, err := dial(ctx, u)
	if err != nil {
		return nil, err
	}
	p := &pair{own: own}
	sig, err := dev.Sign(protocol.AuthContext, protocol.AuthMessage(own.nonce, own.host))
	if err != nil {
		return nil, err
	}
	if _, err := own.do(ctx, &protocol.Enroll{DeviceKey: dev.Certificate().Signing.Bytes(), Signature: sig}); err != nil {
		own.ws.CloseNow()
		return nil, fmt.Errorf("enrol (the relay must allow open enrolment): %w", err)
	}
	f, err := own.do(ctx, &protocol.CreateMailbox{})
	if err != nil {
		own.ws.CloseNow()
		return nil, err
	}
	p.mb = f.(*protocol.MailboxCreated).Mailbox
	p.tok = protocol.NewCapabilityToken()
	if _, err := own.do(ctx, &protocol.AddCapability{Mailbox: p.mb, Hash: p.tok.Hash()}); err != nil {
		own.ws.CloseNow()
		return nil, err
	}
	if _, err := own.do(ctx, &protocol.Subscribe{Mailbox: p.mb}); err != nil {
		own.ws.CloseNow()
		return nil, err
	}
	p.nextOwn = own.next
	if p.anon, err = dial(ctx, u); err != nil {
		own.ws.CloseNow()
		return nil, err
	}
	return p, nil
}

func (a *pairs) close() {
	for _, p := range a.ps {
		p.own.ws.CloseNow()
		p.anon.ws.CloseNow()
	}
}

// result is one phase's figures.
type result struct {
	pairs          int
	offered, rate  float64 // messages per second offered (0: flat out) and completed cycles per second
	cycles         int64
	deliver, durab []time.Duration
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

func (r result) line(name string) string {
	return fmt.Sprintf("RESULT phase=%s pairs=%d offered=%.0f/s cycles=%d rate=%.0f/s deliver_p50=%v deliver_p99=%v deliver_p999=%v durable_p50=%v durable_p99=%v",
		name, r.pairs, r.offered, r.cycles, r.rate,
		pct(r.deliver, 0.5).Round(time.Microsecond), pct(r.deliver, 0.99).Round(time.Microsecond), pct(r.deliver, 0.999).Round(time.Microsecond),
		pct(r.durab, 0.5).Round(time.Microsecond), pct(r.durab, 0.99).Round(time.Microsecond))
}

// run sends for d, at rate messages per second over all pairs (0: each
// sender keeps its window full), waits until everything sent is
// acknowledged, and closes the pairs. Latencies count from each envelope's
// scheduled send time, so a stalled sender cannot hide its delay.
func (a *pairs) run(ctx context.Context, d time.Duration, rate float64) (result, error) {
	defer a.close()
	n := len(a.ps)
	var pace time.Duration
	if rate > 0 {
		pace = time.Duration(float64(time.Second) * float64(n) / rate)
	}
	var (
		mu       sync.Mutex
		deliver  []time.Duration
		durab    []time.Duration
		written  atomic.Int64 // Sends written
		sent     atomic.Int64 // Sends answered (durable)
		done     atomic.Int64 // envelopes whose Ack was answered
		firstErr error
		senders  sync.WaitGroup
		readers  sync.WaitGroup
	)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	start := time.Now()
	deadline := start.Add(d)
	for k, p := range a.ps {
		slots := make(chan struct{}, a.cfg.window)
		var schedMu sync.Mutex
		schedule := map[uint32]time.Duration{} // request ID -> scheduled send time
		senders.Go(func() {
			env := make([]byte, a.cfg.size)
			env[0], env[1] = protocol.Version, byte(protocol.KindSealed)
			for i := 0; ; i++ {
				when := time.Since(start)
				if pace > 0 {
					when = time.Duration(i)*pace + time.Duration(k)*pace/time.Duration(n)
					if w := when - time.Since(start); w > 0 {
						select {
						case <-time.After(w):
						case <-runCtx.Done():
							return
						}
					}
				}
				if !start.Add(when).Before(deadline) {
					return
				}
				select {
				case slots <- struct{}{}:
				case <-runCtx.Done():
					return
				}
				binary.BigEndian.PutUint64(env[2:], uint64(when))
				p.nextSend++
				schedMu.Lock()
				schedule[p.nextSend] = when
				schedMu.Unlock()
				written.Add(1)
				if err := p.anon.write(runCtx, p.nextSend, &protocol.Send{Mailbox: p.mb, Capability: p.tok, Envelope: env}); err != nil {
					if runCtx.Err() == nil {
						fail(fmt.Errorf("send: %w", err))
					}
					return
				}
			}
		})
		// The sender's answers: Sent once durable.
		readers.Go(func() {
			var local []time.Duration
			defer func() { mu.Lock(); durab = append(durab, local...); mu.Unlock() }()
			for {
				id, f, err := p.anon.read(runCtx)
				if err != nil {
					if runCtx.Err() == nil {
						fail(fmt.Errorf("sender read: %w", err))
					}
					return
				}
				if _, ok := f.(*protocol.Sent); !ok {
					fail(fmt.Errorf("sender got %s", describe(f)))
					return
				}
				schedMu.Lock()
				when := schedule[id]
				delete(schedule, id)
				schedMu.Unlock()
				local = append(local, time.Since(start)-when)
				sent.Add(1)
				<-slots
			}
		})
		// The owner acknowledges in batches; a cycle completes when its
		// Ack is answered (the deletion is durable).
		readers.Go(func() {
			var local []time.Duration
			defer func() { mu.Lock(); deliver = append(deliver, local...); mu.Unlock() }()
			var batch []protocol.EnvelopeID
			inflight := map[uint32]int{}
			for {
				id, f, err := p.own.read(runCtx)
				if err != nil {
					if runCtx.Err() == nil {
						fail(fmt.Errorf("owner read: %w", err))
					}
					return
				}
				switch f := f.(type) {
				case *protocol.Deliver:
					local = append(local, time.Since(start)-time.Duration(binary.BigEndian.Uint64(f.Envelope[2:])))
					batch = append(batch, f.ID)
				case *protocol.OK:
					done.Add(int64(inflight[id]))
					delete(inflight, id)
				case *protocol.Drained:
				default:
					fail(fmt.Errorf("owner got %s", describe(f)))
					return
				}
				if len(batch) >= 32 || (len(batch) > 0 && len(inflight) == 0) {
					p.nextOwn++
					if err := p.own.write(runCtx, p.nextOwn, &protocol.Ack{Mailbox: p.mb, IDs: batch}); err != nil {
						if runCtx.Err() == nil {
							fail(fmt.Errorf("ack: %w", err))
						}
						return
					}
					inflight[p.nextOwn] = len(batch)
					batch = nil
				}
			}
		})
	}
	senders.Wait()
	// Every send answered, then every envelope acknowledged: the end.
	drain := time.Now().Add(60 * time.Second)
	for runCtx.Err() == nil && time.Now().Before(drain) {
		if sent.Load() == written.Load() && done.Load() >= sent.Load() {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	stuck := sent.Load() < written.Load() || done.Load() < sent.Load()
	cancel()
	readers.Wait()
	if firstErr != nil {
		return result{}, firstErr
	}
	if stuck {
		return result{}, fmt.Errorf("a minute after the last send, %d of %d sends were answered and %d envelopes acknowledged", sent.Load(), written.Load(), done.Load())
	}
	slices.Sort(deliver)
	slices.Sort(durab)
	return result{pairs: n, offered: rate, cycles: done.Load(), rate: float64(done.Load()) / elapsed.Seconds(), deliver: deliver, durab: durab}, nil
}

func describe(f protocol.Frame) string {
	if e, ok := f.(*protocol.ErrorFrame); ok {
		return "error: " + e.Err().Error()
	}
	return fmt.Sprintf("%T", f)
}
