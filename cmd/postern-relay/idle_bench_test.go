package main

import (
	"context"
	"fmt"
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
func BenchmarkIdleConnections(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc for the relay's resident memory")
	}
	const conns = 2000
	bin := buildRelay(b)
	addr := freeAddr(b)
	cmd := startRelay(b, bin, addr, b.TempDir())
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
	}
	time.Sleep(2 * time.Second) // let the relay's goroutines settle
	after := rss(b, cmd.Process.Pid)
	b.ReportMetric(float64(after-before)/conns/1024, "KiB/conn")
	b.Logf("relay RSS %d KiB -> %d KiB with %d idle subscribed connections", before/1024, after/1024, conns)
	for _, c := range held {
		c.ws.CloseNow()
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func (c *wsClient) mustMailbox(b *testing.B, ctx context.Context) protocol.MailboxID {
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
