package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// relayProcess is a postern-relay binary run as a child process, so that a
// test can kill it with SIGKILL exactly as a crash or the OOM killer would.
type relayProcess struct {
	bin, data, addr string
	cmd             *exec.Cmd
	t               *testing.T
}

func buildRelay(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "postern-relay")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/postern/postern/cmd/postern-relay").CombinedOutput()
	if err != nil {
		t.Fatalf("build postern-relay: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (r *relayProcess) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "serve", "--listen", r.addr, "--data", r.data, "--metrics-listen=") // no fixed metrics port: tests run relays at once
	r.cmd.Stdout, r.cmd.Stderr = os.Stderr, os.Stderr
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + r.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatal("relay did not become healthy in 30 s")
}

func (r *relayProcess) kill() {
	r.cmd.Process.Kill() // SIGKILL on Unix: no shutdown path runs
	r.cmd.Wait()
}

func TestAcknowledgedSendsSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a relay process; run without -short")
	}
	ctx := ctxT(t)
	r := &relayProcess{bin: buildRelay(t), data: t.TempDir(), addr: freeAddr(t), t: t}
	r.start()
	t.Cleanup(func() { r.kill() })
	url := "ws://" + r.addr

	alice := newPerson(t, ctx, url, "Alice")
	bob := newPerson(t, ctx, url, "Bob")
	connect(t, ctx, alice, bob, "Alice", "Bob")
	alice.c.Close()

	const senders, perSender, killAfter = 8, 200, 150
	var (
		mu     sync.Mutex
		acked  = map[string]bool{}
		nAcked atomic.Int64
		killed = make(chan struct{})
		once   sync.Once
		wg     sync.WaitGroup
	)
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perSender {
				text := fmt.Sprintf("burst g%d #%d", g, i)
				sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				_, err := bob.c.Send(sctx, "Alice", text)
				cancel()
				if err != nil {
					return // the relay is gone: this send was not acknowledged
				}
				mu.Lock()
				acked[text] = true
				mu.Unlock()
				if nAcked.Add(1) == killAfter {
					once.Do(func() { r.kill(); close(killed) })
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-killed:
	default:
		t.Fatalf("the burst finished (%d acknowledged) before the kill point", nAcked.Load())
	}
	t.Logf("%d sends acknowledged before SIGKILL", len(acked))

	r.start()
	alice.redial(t, ctx)
	if _, err := alice.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, s := range texts(t, alice.c, "Bob") {
		seen[s]++
	}
	for s := range acked {
		if seen[s] == 0 {
			t.Errorf("acknowledged send %q lost after SIGKILL", s)
		}
	}
	for s, n := range seen {
		if n > 1 {
			t.Errorf("%q shown %d times", s, n)
		}
	}
}
