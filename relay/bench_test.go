package relay_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

// BenchmarkRelaySend measures durable sends through real WebSockets on
// loopback: each sender has its own connection and waits for Sent before
// its next Send. Envelopes are pre-sealed (any 1 KiB bucket).
//
//	go test ./relay -run '^$' -bench RelaySend -benchtime 5s
func BenchmarkRelaySend(b *testing.B) {
	for _, senders := range []int{1, 64} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			srv := relaytest.New(b, nil)
			// A mailbox holds at most MaxQueueDepth: spread over enough,
			// each with its pre-built Send frame.
			own, _, mb, tok := owner(b, srv.URL)
			frames := [][]byte{mustMarshal(b, 1, &protocol.Send{Mailbox: mb, Capability: tok, Envelope: sealed(1)})}
			for len(frames) <= b.N/(protocol.MaxQueueDepth/2) {
				mb := wantType[*protocol.MailboxCreated](b, own.do(&protocol.CreateMailbox{})).Mailbox
				wantType[*protocol.OK](b, own.do(&protocol.AddCapability{Mailbox: mb, Hash: tok.Hash()}))
				frames = append(frames, mustMarshal(b, 1, &protocol.Send{Mailbox: mb, Capability: tok, Envelope: sealed(1)}))
			}
			own.ws.CloseNow()
			conns := make([]*client, senders)
			for i := range conns {
				conns[i] = dial(b, srv.URL)
			}
			var next atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for _, c := range conns {
				wg.Go(func() {
					for {
						n := next.Add(1)
						if n > int64(b.N) {
							return
						}
						frame := frames[int(n)/(protocol.MaxQueueDepth/2)]
						if err := c.ws.Write(bg, websocket.MessageBinary, frame); err != nil {
							b.Error(err)
							return
						}
						_, f, err := c.readErr()
						if err != nil {
							b.Error(err)
							return
						}
						if _, ok := f.(*protocol.Sent); !ok {
							b.Errorf("answer %T", f)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
			for _, c := range conns {
				c.ws.CloseNow()
			}
		})
	}
}
