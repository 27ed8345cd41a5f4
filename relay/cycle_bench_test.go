package relay_test

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
	"github.com/postern/postern/relay/store/bboltstore"
)

// BenchmarkRelayCycle measures the full cycle through real WebSockets on
// loopback: send → durable → delivered → acknowledged → deleted, with 64
// pairs of one sender connection (pipelining up to `window` sends) and
// one subscribed owner connection that acknowledges what it receives in
// batches. It reports completed cycles per second (an envelope counts
// once its deletion is durable) and the send→deliver latency.
//
//	go test ./relay -run '^$' -bench RelayCycle -benchtime 200000x
func BenchmarkRelayCycle(b *testing.B) {
	for _, pairs := range []int{1, 64} {
		b.Run(fmt.Sprintf("pairs=%d", pairs), func(b *testing.B) {
			rate, lats := benchCycle(b, pairs, 8, b.N, 0)
			reportCycle(b, rate, lats)
		})
	}
}

// BenchmarkRelayHalfLoad measures online delivery latency at half load:
// it first runs the full cycle flat out (64 pairs, as RelayCycle) to find
// this machine's capacity, then offers half of that rate, paced evenly
// over the 64 senders, and reports the send→deliver latency percentiles.
// Latency is counted from each envelope's scheduled send time, so a
// stalled sender cannot hide its delay.
//
//	go test ./relay -run '^$' -bench RelayHalfLoad -benchtime 40000x
func BenchmarkRelayHalfLoad(b *testing.B) {
	const pairs = 64
	capacity, _ := benchCycle(b, pairs, 8, max(b.N, 20000), 0)
	offered := capacity / 2
	pace := time.Duration(float64(time.Second) * pairs / offered)
	rate, lats := benchCycle(b, pairs, 8, b.N, pace)
	b.ReportMetric(capacity, "capacity-cycles/s")
	b.ReportMetric(offered, "offered/s")
	reportCycle(b, rate, lats)
	if len(lats) > 0 {
		b.ReportMetric(float64(lats[len(lats)*999/1000].Microseconds()), "p999-deliver-µs")
	}
}

func reportCycle(b *testing.B, rate float64, lats []time.Duration) {
	b.ReportMetric(rate, "cycles/s")
	if len(lats) > 0 {
		b.ReportMetric(float64(lats[len(lats)/2].Microseconds()), "p50-deliver-µs")
		b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds()), "p99-deliver-µs")
	}
}

// benchCycle runs n full cycles over pairs sender/owner pairs, each sender
// keeping at most window sends in flight and, if pace is set, starting
// its sends pace apart. It returns completed cycles per second and the
// sorted send→deliver latencies.
func benchCycle(b *testing.B, pairs, window, n int, pace time.Duration) (float64, []time.Duration) {
	srv := relaytest.New(b, nil)
	type pair struct {
		own, anon *client
		mb        protocol.MailboxID
		tok       protocol.CapabilityToken
	}
	ps := make([]pair, pairs)
	for i := range ps {
		own, _, mb, tok := owner(b, srv.URL)
		wantType[*protocol.OK](b, own.do(&protocol.Subscribe{Mailbox: mb}))
		ps[i] = pair{own: own, anon: dial(b, srv.URL), mb: mb, tok: tok}
	}
	perPair := max(1, n/pairs)
	var (
		done    atomic.Int64
		latMu   sync.Mutex
		lats    []time.Duration // send → delivered
		durs    []time.Duration // send → Sent (durable)
		wg      sync.WaitGroup
		started = time.Now()
	)
	b.ResetTimer()
	for k, p := range ps {
		// Sender: keeps `window` sends in flight; the envelope carries its
		// send time so the receiver can measure delivery latency.
		slots := make(chan struct{}, window)
		sentAt := make([]atomic.Int64, perPair) // by request ID - 1
		wg.Go(func() {
			for i := range perPair {
				slots <- struct{}{}
				env := sealed(1)
				at := time.Since(started)
				if pace > 0 {
					// Sender k sends at k·pace/pairs + i·pace: spread
					// evenly, latency counted from the schedule.
					at = time.Duration(i)*pace + time.Duration(k)*pace/time.Duration(pairs)
					if d := at - time.Since(started); d > 0 {
						time.Sleep(d)
					}
				}
				binary.BigEndian.PutUint64(env[2:], uint64(at))
				sentAt[i].Store(int64(at))
				f, err := protocol.Marshal(uint32(i+1), &protocol.Send{Mailbox: p.mb, Capability: p.tok, Envelope: env})
				if err != nil {
					b.Error(err)
					return
				}
				if err := p.anon.ws.Write(bg, websocket.MessageBinary, f); err != nil {
					b.Error(err)
					return
				}
			}
		})
		wg.Go(func() {
			var local []time.Duration
			defer func() { latMu.Lock(); durs = append(durs, local...); latMu.Unlock() }()
			for range perPair {
				id, f, err := p.anon.readErr()
				if err != nil {
					b.Error(err)
					return
				} else if _, ok := f.(*protocol.Sent); !ok {
					b.Errorf("answer %T", f)
					return
				}
				local = append(local, time.Since(started)-time.Duration(sentAt[id-1].Load()))
				<-slots
			}
		})
		// Receiver: acknowledges deliveries in batches; an envelope's
		// cycle completes when its Ack is answered (deletion durable).
		wg.Go(func() {
			var local []time.Duration
			defer func() { latMu.Lock(); lats = append(lats, local...); latMu.Unlock() }()
			var batch []protocol.EnvelopeID
			acked, nextID := 0, uint32(1)
			inflight := map[uint32]int{}
			for acked < perPair {
				id, f, err := p.own.readErr()
				if err != nil {
					b.Error(err)
					return
				}
				switch f := f.(type) {
				case *protocol.Deliver:
					sent := time.Duration(binary.BigEndian.Uint64(f.Envelope[2:]))
					local = append(local, time.Since(started)-sent)
					batch = append(batch, f.ID)
				case *protocol.OK:
					acked += inflight[id]
					done.Add(int64(inflight[id]))
					delete(inflight, id)
				case *protocol.Drained:
				default:
					b.Errorf("receiver got %T", f)
					return
				}
				// Acknowledge what has arrived once a batch is worth a
				// commit or nothing else is outstanding.
				if len(batch) >= 32 || (len(batch) > 0 && len(inflight) == 0) {
					nextID++
					fr, err := protocol.Marshal(nextID, &protocol.Ack{Mailbox: p.mb, IDs: batch})
					if err != nil {
						b.Error(err)
						return
					}
					if err := p.own.ws.Write(bg, websocket.MessageBinary, fr); err != nil {
						b.Error(err)
						return
					}
					inflight[nextID] = len(batch)
					batch = nil
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	rate := float64(done.Load()) / time.Since(started).Seconds()
	slices.Sort(lats)
	slices.Sort(durs)
	if len(durs) > 0 {
		b.ReportMetric(float64(durs[len(durs)/2].Microseconds()), "p50-durable-µs")
		b.ReportMetric(float64(durs[len(durs)*99/100].Microseconds()), "p99-durable-µs")
	}
	if bs, ok := srv.Relay().Store().(*bboltstore.Store); ok {
		txs, writes := bs.Commits()
		b.ReportMetric(float64(writes)/float64(max(txs, 1)), "writes/commit")
	}
	for _, p := range ps {
		p.own.ws.CloseNow()
		p.anon.ws.CloseNow()
	}
	return rate, lats
}
