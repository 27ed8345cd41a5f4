package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
)

// BenchmarkIdleConnections measures what an idle, authenticated and
// subscribed connection (a client sitting in `postern listen`) costs the
// relay: the growth of the relay process's resident memory divided by the
// number of connections. The relay runs as its own process so that the
// test's client side is not counted.
//
//	go test ./cmd/postern-relay -run '^$' -bench IdleConnections -benchtime 1x
//
// It also reports the Go runtime's view (heap in use, stacks, goroutines
// per connection) from the relay's /metrics. Right after the handshakes
// the heap still holds their garbage (each Auth parses and verifies an
// ML-DSA-65 key and signature); -idle-settle waits longer before measuring
// (past 2 minutes the runtime's periodic GC has run). The clients read,
// as `postern listen` does, so the relay's keep-alive pings are answered.
func BenchmarkIdleConnections(b *testing.B) {
	settle := *idleSettle
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc for the relay's resident memory")
	}
	const conns = 2000
	bin := buildRelay(b)
	addr := freeAddr(b)
	maddr := freeAddr(b)
	// Every connection subscribes to the one mailbox of the one device:
	// the per-mailbox subscription cap is raised to let them (the cost
	// measured is the connection's, whichever mailbox it watches).
	cmd := startRelay(b, bin, addr, b.TempDir(), "--metrics-listen", maddr, "--max-subscriptions-per-mailbox", fmt.Sprint(conns+1))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// One device enrolled up front: its connections authenticate with Auth.
	dev, err := identity.NewDevice(must(identity.GenerateIdentity()))
	if err != nil {
		b.Fatal(err)
	}
	first, err := dialRelay(ctx, addr)
	if err != nil {
		b.Fatal(err)
	}
	if err := first.authenticate(ctx, dev, true); err != nil {
		b.Fatal(err)
	}
	mb := first.mustMailbox(b, ctx)
	time.Sleep(time.Second)
	before := rss(b, cmd.Process.Pid)
	gBefore := goStats(b, maddr)
	held := make([]*wsClient, 0, conns)
	for range conns {
		c, err := dialRelay(ctx, addr)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.authenticate(ctx, dev, false); err != nil {
			b.Fatal(err)
		}
		if f, err := c.do(ctx, &protocol.Subscribe{Mailbox: mb}); err != nil {
			b.Fatal(err)
		} else if _, ok := f.(*protocol.OK); !ok {
			b.Fatalf("subscribe: %T", f)
		}
		held = append(held, c)
		// Read, as `postern listen` does: the client answers the relay's
		// keep-alive pings only while reading.
		go func() {
			for {
				if _, _, err := c.ws.Read(ctx); err != nil {
					return
				}
			}
		}()
	}
	time.Sleep(settle) // let the relay settle
	after := rss(b, cmd.Process.Pid)
	gAfter := goStats(b, maddr)
	b.ReportMetric(float64(after-before)/conns/1024, "KiB/conn")
	// Where the memory goes: the Go runtime's view, from the relay's own
	// /metrics, per connection.
	b.ReportMetric((gAfter["go_memstats_heap_inuse_bytes"]-gBefore["go_memstats_heap_inuse_bytes"])/conns/1024, "heap-KiB/conn")
	b.ReportMetric((gAfter["go_memstats_stack_inuse_bytes"]-gBefore["go_memstats_stack_inuse_bytes"])/conns/1024, "stack-KiB/conn")
	b.ReportMetric((gAfter["go_goroutines"]-gBefore["go_goroutines"])/conns, "goroutines/conn")
	b.Logf("relay RSS %d KiB -> %d KiB with %d idle subscribed connections", before/1024, after/1024, conns)
	for _, c := range held {
		c.ws.CloseNow()
	}
}

var idleSettle = flag.Duration("idle-settle", 2*time.Second, "how long BenchmarkIdleConnections waits before measuring")

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func (c *wsClient) mustMailbox(b testing.TB, ctx context.Context) protocol.MailboxID {
	b.Helper()
	f, err := c.do(ctx, &protocol.CreateMailbox{})
	if err != nil {
		b.Fatal(err)
	}
	mc, ok := f.(*protocol.MailboxCreated)
	if !ok {
		b.Fatalf("create mailbox: %T", f)
	}
	return mc.Mailbox
}

// goStats reads the Go runtime gauges from the relay's /metrics.
func goStats(b *testing.B, addr string) map[string]float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		switch f[0] {
		case "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_goroutines":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				b.Fatal(err)
			}
			out[f[0]] = v
		}
	}
	if len(out) != 3 {
		b.Fatalf("relay /metrics lacks the Go runtime gauges: %v", out)
	}
	return out
}

// rss is the resident set size of a process, in bytes.
func rss(b *testing.B, pid int) int64 {
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(s), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb * 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
