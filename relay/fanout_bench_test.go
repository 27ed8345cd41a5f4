package relay_test

import (
	"fmt"
	"testing"

	"github.com/coder/websocket"
	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
	"github.com/postern/postern/relay/store/bboltstore"
)

// BenchmarkFanout compares one group message to n devices sent as one
// SendFanout with n plain Sends (pipelined on one connection, as a client
// sending to each device would), through a real relay on loopback. The
// envelope is the 2 KiB bucket, the one a 1 KiB message takes once sealed.
// It reports the bytes the sender uploads (frames), the bytes the store
// keeps (growth of bbolt's live pages) and the copies stored, per op.
//
//	go test ./relay -run '^$' -bench Fanout -benchtime 200x
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{50, 200} {
		b.Run(fmt.Sprintf("fanout/devices=%d", n), func(b *testing.B) { benchGroupSend(b, n, true) })
		b.Run(fmt.Sprintf("sends/devices=%d", n), func(b *testing.B) { benchGroupSend(b, n, false) })
	}
}

func groupEnvelope() []byte {
	e := make([]byte, 2048)
	e[0], e[1] = protocol.Version, byte(protocol.KindSession)
	for i := 2; i < len(e); i++ {
		e[i] = byte(i)
	}
	return e
}

// liveBytes is the size of the store's pages in use: the file less its
// free and pending pages.
func liveBytes(b *testing.B, srv *relaytest.Server) int64 {
	bs, ok := srv.Relay().Store().(*bboltstore.Store)
	if !ok {
		b.Fatal("not a bboltstore")
	}
	var n int64
	bs.DB().View(func(tx *bolt.Tx) error {
		st := bs.DB().Stats()
		n = tx.Size() - int64(st.FreePageN+st.PendingPageN)*int64(bs.DB().Info().PageSize)
		return nil
	})
	return n
}

func benchGroupSend(b *testing.B, n int, fanout bool) {
	srv := relaytest.New(b, nil)
	own := dial(b, srv.URL)
	wantType[*protocol.Authenticated](b, own.enroll(newDevice(b), ""))
	env := groupEnvelope()
	// A mailbox holds at most MaxQueueDepth: a new group of n mailboxes
	// for every MaxQueueDepth/2 ops.
	type target struct {
		fanout [][]byte   // the SendFanout frame
		sends  [][][]byte // the n Send frames
	}
	var groups []target
	for len(groups) <= b.N/(protocol.MaxQueueDepth/2) {
		tok := protocol.NewCapabilityToken()
		var g target
		var entries []protocol.FanoutEntry
		var sends [][]byte
		for range n {
			mb := wantType[*protocol.MailboxCreated](b, own.do(&protocol.CreateMailbox{})).Mailbox
			wantType[*protocol.OK](b, own.do(&protocol.AddCapability{Mailbox: mb, Hash: tok.Hash()}))
			entries = append(entries, protocol.FanoutEntry{Mailbox: mb, Capability: tok})
			sends = append(sends, mustMarshal(b, 1, &protocol.Send{Mailbox: mb, Capability: tok, Envelope: env}))
		}
		admin, send := protocol.NewCapabilityToken(), protocol.NewCapabilityToken()
		fid := wantType[*protocol.FanoutCreated](b, own.do(&protocol.CreateFanout{Admin: admin, Send: send, Entries: entries})).Fanout
		g.fanout = [][]byte{mustMarshal(b, 1, &protocol.SendFanout{Fanout: fid, Capability: send, Envelope: env})}
		g.sends = [][][]byte{sends}
		groups = append(groups, g)
	}
	own.ws.CloseNow()
	// A connection's frame rate is limited (protocol.RateBurst at once):
	// a new connection for every 3000 frames, dialled before the timer.
	perConn := 3000 / n
	conns := make([]*client, b.N/perConn+1)
	for i := range conns {
		conns[i] = dial(b, srv.URL)
	}
	before := liveBytes(b, srv)
	var uploaded, copies int64
	b.ResetTimer()
	for i := range b.N {
		g := groups[i/(protocol.MaxQueueDepth/2)]
		c := conns[i/perConn]
		if fanout {
			if err := c.ws.Write(bg, websocket.MessageBinary, g.fanout[0]); err != nil {
				b.Fatal(err)
			}
			uploaded += int64(len(g.fanout[0]))
			_, f, err := c.readErr()
			if err != nil {
				b.Fatal(err)
			}
			sent, ok := f.(*protocol.FanoutSent)
			if !ok || int(sent.Stored) != n {
				b.Fatalf("answer %T %+v", f, f)
			}
			copies += int64(sent.Stored)
			continue
		}
		// n Sends pipelined: a writer goroutine, answers read here.
		werr := make(chan error, 1)
		go func() {
			for _, fr := range g.sends[0] {
				if err := c.ws.Write(bg, websocket.MessageBinary, fr); err != nil {
					werr <- err
					return
				}
			}
			werr <- nil
		}()
		for range n {
			_, f, err := c.readErr()
			if err != nil {
				b.Fatal(err)
			}
			if _, ok := f.(*protocol.Sent); !ok {
				b.Fatalf("answer %T %+v", f, f)
			}
			copies++
		}
		if err := <-werr; err != nil {
			b.Fatal(err)
		}
		for _, fr := range g.sends[0] {
			uploaded += int64(len(fr))
		}
	}
	b.StopTimer()
	stored := liveBytes(b, srv) - before
	b.ReportMetric(float64(uploaded)/float64(b.N), "upload-B/op")
	b.ReportMetric(float64(stored)/float64(b.N), "stored-B/op")
	b.ReportMetric(float64(copies)/float64(b.N), "copies/op")
	for _, c := range conns {
		c.ws.CloseNow()
	}
}
