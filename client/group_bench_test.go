//go:build unix

package client

import (
	"fmt"
	"testing"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

// The cost of one 1 KiB group message (protocol/SPEC.md section 15.5):
// sealed once with the sender key and uploaded once (SendFanout), the
// relay storing a copy per member device.
//
//	go test ./client/ -run '^$' -bench SendGroup -benchtime 100x -count 3
//
// The group's fan-out list holds the sender's own group mailbox and
// devices-1 more mailboxes made on the relay for the benchmark (what the
// sender uploads does not depend on who holds them). Per message it
// reports the envelope bytes the sender sealed (envelope-B/msg), the
// bytes on the wire to the relay (wire-up-B/msg: WebSocket frames,
// counted by the proxy of fanout_bench_test.go), the process's CPU
// (cpu-µs/msg; the relay runs in the process, storing every copy), the
// envelope bytes the relay stored (stored-B/msg: copies × envelope), and,
// for comparison, what sending the same text pairwise to as many devices
// uploads: devices × the wire-up bytes of one pairwise Send measured in
// the same run (pairwise-up-B/msg).
func BenchmarkSendGroup(b *testing.B) {
	for _, devices := range []int{50, 200} {
		b.Run(fmt.Sprintf("devices=%d", devices), func(b *testing.B) {
			ctx := b.Context()
			srv := relaytest.New(b, nil)
			wire := newWireCounter(b, srv.Addr)
			srv.URL = wire.url
			alice, bob, _, _ := pair(b, srv)
			// One pairwise 1 KiB Send, its session established, for the
			// comparison.
			if _, err := alice.Send(ctx, "bob", benchText); err != nil {
				b.Fatal(err)
			}
			syncAll(b, 2, bob, alice)
			bob.Close()
			up0 := wire.up.Load()
			const pairs = 10
			for range pairs {
				if _, err := alice.Send(ctx, "bob", benchText); err != nil {
					b.Fatal(err)
				}
			}
			pairwise := float64(wire.up.Load()-up0) / pairs

			if _, err := alice.CreateGroup(ctx, "bench"); err != nil {
				b.Fatal(err)
			}
			rec := groupRecordB(b, alice, "bench")
			s, err := groupOf(rec)
			if err != nil {
				b.Fatal(err)
			}
			cn, err := alice.authConn(ctx)
			if err != nil {
				b.Fatal(err)
			}
			admin, _ := protocol.CapabilityTokenFromBytes(rec.AdminCap)
			upd := &protocol.UpdateFanout{Fanout: s.Fanout, Admin: admin}
			for range devices - 1 {
				tok := protocol.NewCapabilityToken()
				_, mb, err := alice.newMailbox(ctx, cn, tok)
				if err != nil {
					b.Fatal(err)
				}
				upd.Add = append(upd.Add, protocol.FanoutEntry{Mailbox: mb, Capability: tok})
			}
			if err := cn.ok(ctx, upd); err != nil {
				b.Fatal(err)
			}
			var env envelopeCount
			env.install(alice)
			if _, err := alice.SendGroup(ctx, "bench", benchText, nil); err != nil {
				b.Fatal(err)
			}
			env.take()
			cpu0, up0 := cpuTime(b), wire.up.Load()
			msgs := 0
			for b.Loop() {
				if _, err := alice.SendGroup(ctx, "bench", benchText, nil); err != nil {
					b.Fatal(err)
				}
				msgs++
			}
			cpu, up := cpuTime(b)-cpu0, wire.up.Load()-up0
			n, size := env.take()
			per := func(v float64) float64 { return v / float64(msgs) }
			b.ReportMetric(per(float64(n)), "envelopes/msg")
			b.ReportMetric(per(float64(size)), "envelope-B/msg")
			b.ReportMetric(per(float64(up)), "wire-up-B/msg")
			b.ReportMetric(per(float64(cpu))/1e3, "cpu-µs/msg")
			b.ReportMetric(per(float64(size))*float64(devices), "stored-B/msg")
			b.ReportMetric(pairwise*float64(devices), "pairwise-up-B/msg")
			b.ReportMetric(pairwise, "pairwise-one-up-B")
		})
	}
}

// BenchmarkSealGroup is the sender's part alone, with no network: seal
// one 1 KiB text with the sender key, store the advanced key and the
// message (sealGroup); SendGroup then uploads the envelope once. Only
// the group record's size grows with the group (the received keys, about
// 110 bytes per member device, are stored again in each transaction);
// here the group is the sender alone, on a Client from Open (no network).
func BenchmarkSealGroup(b *testing.B) {
	srv := relaytest.New(b, nil)
	alice, home := newTestClient(b, srv, "alice")
	if _, err := alice.CreateGroup(b.Context(), "bench"); err != nil {
		b.Fatal(err)
	}
	alice.Close()
	c, err := Open(home, testPass, testOpts())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	cpu0 := cpuTime(b)
	msgs, size := 0, 0
	for b.Loop() {
		ct := &content{Type: contentText, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()), Text: benchText}
		env, _, _, err := c.sealGroup("bench", ct, &SendOptions{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		size += len(env)
		msgs++
	}
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(msgs)/1e3, "cpu-µs/msg")
	b.ReportMetric(float64(size)/float64(msgs), "envelope-B/msg")
}

func groupRecordB(b *testing.B, c *Client, name string) *storeGroupRecord {
	b.Helper()
	var rec *storeGroupRecord
	if err := c.st.view(func(t *tx) (err error) { rec, err = t.lookupGroup(name); return err }); err != nil {
		b.Fatal(err)
	}
	return rec
}
