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

	"github.com/postern/postern/internal/relayconn"
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

type pair struct {
	own, anon *relayconn.Conn
	mb        protocol.MailboxID
	tok       protocol.CapabilityToken
	// pushed receives what the relay pushes to the owner (Deliver,
	// Drained; nil when the connection ends). Its buffer holds more than
	// the relay pushes unacknowledged (protocol.MaxInflight), so the
	// owner's connection never waits for the reader; quit releases a
	// push once the pair is closed.
	pushed chan protocol.Frame
	quit   chan struct{}
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
	u = strings.TrimSuffix(u, "/")
	own, err := relayconn.Dial(ctx, u, nil)
	if err != nil {
		return nil, err
	}
	p := &pair{own: own, pushed: make(chan protocol.Frame, protocol.MaxInflight+16), quit: make(chan struct{})}
	own.Start(func(f protocol.Frame) {
		select {
		case p.pushed <- f:
		case <-p.quit:
		}
	})
	fail := func(err error) (*pair, error) {
		close(p.quit)
		own.CloseNow()
		return nil, err
	}
	sig, err := dev.Sign(protocol.AuthContext, own.AuthMessage())
	if err != nil {
		return fail(err)
	}
	if _, err := own.Request(ctx, &protocol.Enroll{DeviceKey: dev.Certificate().Signing.Bytes(), Signature: sig}); err != nil {
		return fail(fmt.Errorf("enrol (the relay must allow open enrolment): %w", err))
	}
	f, err := own.Request(ctx, &protocol.CreateMailbox{})
	if err != nil {
		return fail(err)
	}
	mc, ok := f.(*protocol.MailboxCreated)
	if !ok {
		return fail(fmt.Errorf("create mailbox: relay answered %s", describe(f)))
	}
	p.mb = mc.Mailbox
	p.tok = protocol.NewCapabilityToken()
	if _, err := own.Request(ctx, &protocol.AddCapability{Mailbox: p.mb, Hash: p.tok.Hash()}); err != nil {
		return fail(err)
	}
	if _, err := own.Request(ctx, &protocol.Subscribe{Mailbox: p.mb}); err != nil {
		return fail(err)
	}
	if p.anon, err = relayconn.Dial(ctx, u, nil); err != nil {
		return fail(err)
	}
	p.anon.Start(nil)
	return p, nil
}

func (a *pairs) close() {
	for _, p := range a.ps {
		close(p.quit)
		p.own.CloseNow()
		p.anon.CloseNow()
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
		senders  sync.WaitGroup // the send loops
		inflight sync.WaitGroup // requests and the owners' loops
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
		senders.Go(func() {
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
				env := make([]byte, a.cfg.size)
				env[0], env[1] = protocol.Version, byte(protocol.KindSealed)
				binary.BigEndian.PutUint64(env[2:], uint64(when))
				written.Add(1)
				// One request per envelope in the window: relayconn
				// matches each Sent to its Send.
				inflight.Go(func() {
					f, err := p.anon.Request(runCtx, &protocol.Send{Mailbox: p.mb, Capability: p.tok, Envelope: env})
					if err != nil {
						if runCtx.Err() == nil {
							fail(fmt.Errorf("send: %w", err))
						}
						return
					}
					if _, ok := f.(*protocol.Sent); !ok {
						fail(fmt.Errorf("sender got %s", describe(f)))
						return
					}
					d := time.Since(start) - when
					mu.Lock()
					durab = append(durab, d)
					mu.Unlock()
					sent.Add(1)
					<-slots
				})
			}
		})
		// The owner acknowledges in batches, one Ack in flight at a time
		// unless 32 deliveries are waiting; a cycle completes when its
		// Ack is answered (the deletion is durable).
		inflight.Go(func() {
			var local []time.Duration
			defer func() { mu.Lock(); deliver = append(deliver, local...); mu.Unlock() }()
			var batch []protocol.EnvelopeID
			acked := make(chan int, 64)
			acks := 0 // Acks in flight
			for {
				select {
				case f := <-p.pushed:
					switch f := f.(type) {
					case *protocol.Deliver:
						local = append(local, time.Since(start)-time.Duration(binary.BigEndian.Uint64(f.Envelope[2:])))
						batch = append(batch, f.ID)
					case *protocol.Drained:
					case nil:
						if runCtx.Err() == nil {
							fail(fmt.Errorf("owner connection ended: %w", p.own.Err()))
						}
						return
					default:
						fail(fmt.Errorf("owner got %s", describe(f)))
						return
					}
				case k := <-acked:
					done.Add(int64(k))
					acks--
				case <-runCtx.Done():
					return
				}
				if len(batch) >= 32 || (len(batch) > 0 && acks == 0) {
					ids := batch
					batch = nil
					acks++
					inflight.Go(func() {
						f, err := p.own.Request(runCtx, &protocol.Ack{Mailbox: p.mb, IDs: ids})
						if err != nil {
							if runCtx.Err() == nil {
								fail(fmt.Errorf("ack: %w", err))
							}
							return
						}
						if _, ok := f.(*protocol.OK); !ok {
							fail(fmt.Errorf("owner got %s", describe(f)))
							return
						}
						select {
						case acked <- len(ids):
						case <-runCtx.Done():
						}
					})
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
	inflight.Wait()
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
