package bboltstore

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/postern/postern/protocol"
)

// BenchmarkAppend measures durable appends through the committer.
//
//	go test ./relay/store/bboltstore -run '^$' -bench Append -benchtime 5s
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, _ := openTest(b)
			// A mailbox holds at most MaxQueueDepth: spread over enough.
			type box struct {
				mb protocol.MailboxID
				h  protocol.CapabilityHash
			}
			boxes := make([]box, b.N/(protocol.MaxQueueDepth/2)+1)
			for i := range boxes {
				boxes[i].mb, boxes[i].h = mailboxWithCap(b, s)
			}
			tx0, _ := s.Commits()
			var next atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for range writers {
				wg.Go(func() {
					for {
						n := next.Add(1)
						if n > int64(b.N) {
							return
						}
						bx := boxes[int(n)/(protocol.MaxQueueDepth/2)]
						if _, err := s.Append(ctx, envelope(bx.mb, t0), bx.h); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			tx1, _ := s.Commits()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			b.ReportMetric(float64(b.N)/float64(max(1, tx1-tx0)), "appends/commit")
		})
	}
}

// BenchmarkCycle measures append → range → ack (the mailbox cycle).
func BenchmarkCycle(b *testing.B) {
	s, _ := openTest(b)
	mb, h := mailboxWithCap(b, s)
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				e, err := s.Append(ctx, envelope(mb, t0), h)
				if err != nil {
					b.Error(err)
					return
				}
				if _, err := s.Ack(ctx, mb, []protocol.EnvelopeID{e.ID}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cycles/s")
}
