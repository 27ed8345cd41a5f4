//go:build unix

// Getrusage, for the CPU figures, is not in syscall on every platform.

package client

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/postern/postern/relay/relaytest"
)

// The cost of one 1 KiB message to a person with several devices
// (protocol/SPEC.md section 9 "Devices"): one envelope per device of the
// recipient and a sent copy per other device of the sender.
//
//	go test ./client/ -run '^$' -bench 'SendToDevices|SealForDevices' -benchtime 200x -count 3
//
// BenchmarkSendToDevices times Send over a real relay on loopback and
// reports, per message: the envelopes the sender sealed and their bytes
// (envelope-B/msg), the bytes on the wire each way (wire-up-B/msg,
// wire-down-B/msg: WebSocket frames with their Send/Sent frames, counted
// by a TCP proxy in front of the relay; no TCP/IP headers), and the
// process's user+system CPU (cpu-µs/msg). The relay runs in the same
// process, so that CPU is the sender's and the relay's together;
// BenchmarkSealForDevices gives the sender's sealing alone. The first
// message after the devices were introduced is measured once, before the
// loop (first-*), with the number of sessions it had to start.

// fanoutCase: the recipient person has devices devices; the sender's
// person has siblings devices besides the sender.
type fanoutCase struct{ devices, siblings int }

var fanoutCases = []fanoutCase{{1, 0}, {3, 0}, {8, 0}, {3, 2}}

func (fc fanoutCase) String() string {
	if fc.siblings == 0 {
		return fmt.Sprintf("devices=%d", fc.devices)
	}
	return fmt.Sprintf("devices=%d/siblings=%d", fc.devices, fc.siblings)
}

// benchText is the 1 KiB text sent.
var benchText = strings.Repeat("0123456789abcdef", 1024/16)

func BenchmarkSendToDevices(b *testing.B) {
	for _, fc := range fanoutCases {
		b.Run(fc.String(), func(b *testing.B) {
			f := newFanoutFixture(b, fc)
			ctx := b.Context()
			var env envelopeCount
			env.install(f.sender)

			// The first message: sessions are started with the devices
			// that have none. Only the sender and the relay run.
			f.closeOthers()
			cpu0, up0, down0 := cpuTime(b), f.wire.up.Load(), f.wire.down.Load()
			if _, err := f.sender.Send(ctx, "bob", benchText); err != nil {
				b.Fatalf("first Send: %v", err)
			}
			// (Reported after the loop: its first iteration drops the
			// metrics reported so far.)
			first := map[string]float64{
				"first-cpu-µs":           float64(cpuTime(b)-cpu0) / 1e3,
				"first-wire-up-B":        float64(f.wire.up.Load() - up0),
				"first-wire-down-B":      float64(f.wire.down.Load() - down0),
				"first-sessions-started": float64(f.started),
			}
			n, size := env.take()
			first["first-envelopes"], first["first-envelope-B"] = float64(n), float64(size)

			f.steady(b)
			env.take()
			cpu0, up0, down0 = cpuTime(b), f.wire.up.Load(), f.wire.down.Load()
			msgs := 0
			for b.Loop() {
				if _, err := f.sender.Send(ctx, "bob", benchText); err != nil {
					b.Fatalf("Send: %v", err)
				}
				msgs++
			}
			cpu, up, down := cpuTime(b)-cpu0, f.wire.up.Load()-up0, f.wire.down.Load()-down0
			n, size = env.take()
			per := func(v int64) float64 { return float64(v) / float64(msgs) }
			b.ReportMetric(per(int64(n)), "envelopes/msg")
			b.ReportMetric(per(size), "envelope-B/msg")
			b.ReportMetric(per(up), "wire-up-B/msg")
			b.ReportMetric(per(down), "wire-down-B/msg")
			b.ReportMetric(per(int64(cpu))/1e3, "cpu-µs/msg")
			for unit, v := range first {
				b.ReportMetric(v, unit)
			}
			if want := fc.devices + fc.siblings; n != want*msgs {
				b.Logf("%d envelopes for %d messages, want %d each", n, msgs, want)
			}
		})
	}
}

// BenchmarkSealForDevices is the sender's sealing of one 1 KiB text for
// every device it goes to, with the sessions established and no network:
// the content encoded once, then per device the transaction that loads
// the session, seals and stores the advanced state (sealSession). Send
// adds the outbox entries, the message itself, and the relay round trips.
// cpu-µs/msg is the process's CPU again, with the relay idle and every
// other device closed.
func BenchmarkSealForDevices(b *testing.B) {
	for _, fc := range fanoutCases {
		b.Run(fc.String(), func(b *testing.B) {
			f := newFanoutFixture(b, fc)
			f.closeOthers()
			if _, err := f.sender.Send(b.Context(), "bob", benchText); err != nil {
				b.Fatalf("first Send: %v", err)
			}
			f.steady(b)
			c := f.sender
			to := append(devicesOf(b, c, "bob"), devicesOf(b, c, "")...)
			cpu0 := cpuTime(b)
			msgs, size := 0, 0
			for b.Loop() {
				ct := &content{Type: contentText, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()), Text: benchText}
				copy(ct.MsgID[:], randomID(msgIDSize))
				plain, err := ct.marshalSession()
				if err != nil {
					b.Fatal(err)
				}
				for _, d := range to {
					env, _, err := c.sealSession(d, plain, nil)
					if err != nil {
						b.Fatalf("sealSession: %v", err)
					}
					size += len(env)
				}
				msgs++
			}
			cpu := cpuTime(b) - cpu0
			b.ReportMetric(float64(len(to)), "envelopes/msg")
			b.ReportMetric(float64(size)/float64(msgs), "envelope-B/msg")
			b.ReportMetric(float64(cpu)/float64(msgs)/1e3, "cpu-µs/msg")
		})
	}
}

// fanoutFixture: alice (the sender) and her siblings, bob and his devices,
// over one relay reached through a byte-counting proxy.
type fanoutFixture struct {
	sender  *Client
	others  []*Client // every other device, bob's first
	homes   []string  // and their homes
	wire    *wireCounter
	started int // devices the sender had no session with before its first message
}

func newFanoutFixture(b *testing.B, fc fanoutCase) *fanoutFixture {
	b.Helper()
	srv := relaytest.New(b, nil)
	wire := newWireCounter(b, srv.Addr)
	srv.URL = wire.url // every client reaches the relay through the proxy
	alice, bob, _, bobHome := pair(b, srv)
	f := &fanoutFixture{sender: alice, others: []*Client{bob}, homes: []string{bobHome}, wire: wire}
	// Each device links the next: the relay limits how often one device
	// publishes its person's list.
	for i, last := 2, bob; i <= fc.devices; i++ {
		var home string
		last, home = linkNew(b, last, fmt.Sprintf("BOB-%d", i))
		f.others, f.homes = append(f.others, last), append(f.homes, home)
		syncAll(b, 2, f.all()...)
	}
	for i, last := 1, alice; i <= fc.siblings; i++ {
		var home string
		last, home = linkNew(b, last, fmt.Sprintf("ALICE-%d", i))
		f.others, f.homes = append(f.others, last), append(f.homes, home)
		syncAll(b, 2, f.all()...)
	}
	// Until alice holds a route to every device of both people.
	for round := 0; ; round++ {
		if len(devicesOf(b, alice, "bob")) == fc.devices && len(devicesOf(b, alice, "")) == fc.siblings {
			break
		}
		if round == 10 {
			b.Fatalf("alice writes to %d of bob's devices and %d siblings, want %d and %d",
				len(devicesOf(b, alice, "bob")), len(devicesOf(b, alice, "")), fc.devices, fc.siblings)
		}
		syncAll(b, 1, f.all()...)
	}
	to := append(devicesOf(b, alice, "bob"), devicesOf(b, alice, "")...)
	err := alice.st.view(func(t *tx) error {
		for _, d := range to {
			rec, err := t.sessionRecord(d.ID)
			if err != nil {
				return err
			}
			if rec.State == nil {
				f.started++
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return f
}

func (f *fanoutFixture) all() []*Client { return append([]*Client{f.sender}, f.others...) }

// closeOthers closes every device but the sender, so that the process
// runs the sender and the relay only, and the proxy counts the sender's
// bytes only.
func (f *fanoutFixture) closeOthers() {
	for _, c := range f.others {
		c.Close()
	}
}

// steady opens the other devices again and lets them receive what the
// sender sent and answer (routes, acknowledgements), and the sender read
// the answers; then it closes them again.
func (f *fanoutFixture) steady(b *testing.B) {
	b.Helper()
	for i, home := range f.homes {
		f.others[i] = dial(b, home)
	}
	syncAll(b, 2, append(f.others, f.sender)...)
	f.closeOthers()
}

// envelopeCount counts the envelopes a client sealed, and their bytes.
type envelopeCount struct {
	mu    sync.Mutex
	n     int
	bytes int64
}

func (e *envelopeCount) install(c *Client) {
	h := func(out bool, env []byte) {
		if out {
			e.mu.Lock()
			e.n++
			e.bytes += int64(len(env))
			e.mu.Unlock()
		}
	}
	c.envelopeHook.Store(&h)
}

// take returns the counts and starts them again.
func (e *envelopeCount) take() (n int, bytes int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n, bytes = e.n, e.bytes
	e.n, e.bytes = 0, 0
	return n, bytes
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// wireCounter is a TCP proxy on loopback in front of the relay that
// counts the bytes each way: up (to the relay) and down.
type wireCounter struct {
	url      string
	l        net.Listener
	up, down atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
	wg       sync.WaitGroup
}

func newWireCounter(tb testing.TB, relayAddr string) *wireCounter {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	w := &wireCounter{url: "ws://" + l.Addr().String(), l: l}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", relayAddr)
			if err != nil {
				in.Close()
				continue
			}
			w.mu.Lock()
			w.conns = append(w.conns, in, out)
			w.mu.Unlock()
			w.wg.Add(2)
			go w.pipe(out, in, &w.up)
			go w.pipe(in, out, &w.down)
		}
	}()
	tb.Cleanup(func() {
		l.Close()
		w.mu.Lock()
		for _, c := range w.conns {
			c.Close()
		}
		w.mu.Unlock()
		w.wg.Wait()
	})
	return w
}

// pipe copies from src to dst, counting into n, and closes both at the
// end of either direction.
func (w *wireCounter) pipe(dst, src net.Conn, n *atomic.Int64) {
	defer w.wg.Done()
	io.Copy(countWriter{dst, n}, src)
	dst.Close()
	src.Close()
}

type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}
