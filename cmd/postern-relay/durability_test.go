package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/internal/relayconn"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
)

// buildRelay builds the binary into a temp dir.
func buildRelay(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "postern-relay")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startRelay starts `postern-relay serve` and waits (bounded) for /healthz.
func startRelay(t testing.TB, bin, addr, data string, extra ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--listen", addr, "--data", data, "--log-level", "warn", "--metrics-listen="}, extra...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for range 200 {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatal("relay did not become healthy")
	return nil
}

// wsClient is a minimal protocol client: a relayconn.Conn in direct mode
// that keeps pushed frames aside while it waits for an answer. ws is its
// WebSocket, for reads that expect the connection to end.
type wsClient struct {
	conn   *relayconn.Conn
	ws     *websocket.Conn
	next   uint32
	pushes []protocol.Frame
}

func dialRelay(ctx context.Context, addr string) (*wsClient, error) {
	conn, err := relayconn.Dial(ctx, "ws://"+addr, nil)
	if err != nil {
		return nil, err
	}
	return &wsClient{conn: conn, ws: conn.WebSocket()}, nil
}

func (c *wsClient) read(ctx context.Context) (uint32, protocol.Frame, error) {
	return c.conn.ReadFrame(ctx)
}

func (c *wsClient) do(ctx context.Context, f protocol.Frame) (protocol.Frame, error) {
	c.next++
	if err := c.conn.WriteFrame(ctx, c.next, f); err != nil {
		return nil, err
	}
	for {
		id, f, err := c.read(ctx)
		if err != nil {
			return nil, err
		}
		if id == c.next {
			if e, ok := f.(*protocol.ErrorFrame); ok {
				return nil, e.Err()
			}
			return f, nil
		}
		c.pushes = append(c.pushes, f)
	}
}

func (c *wsClient) authenticate(ctx context.Context, d *identity.Device, enroll bool) error {
	sig, err := d.Sign(protocol.AuthContext, c.conn.AuthMessage())
	if err != nil {
		return err
	}
	var f protocol.Frame = &protocol.Auth{Device: protocol.DeviceID(d.Certificate().Signing.Fingerprint()), Signature: sig}
	if enroll {
		f = &protocol.Enroll{DeviceKey: d.Certificate().Signing.Bytes(), Signature: sig}
	}
	_, err = c.do(ctx, f)
	return err
}

// enrolOwner enrols a new device on the relay at addr and makes it a
// mailbox with a send capability.
func enrolOwner(t testing.TB, ctx context.Context, addr string) (*wsClient, *identity.Device, protocol.MailboxID, protocol.CapabilityToken) {
	t.Helper()
	id, _ := identity.GenerateIdentity()
	dev, _ := identity.NewDevice(id)
	own, err := dialRelay(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := own.authenticate(ctx, dev, true); err != nil {
		t.Fatal(err)
	}
	mb := own.mustMailbox(t, ctx)
	tok := protocol.NewCapabilityToken()
	if _, err := own.do(ctx, &protocol.AddCapability{Mailbox: mb, Hash: tok.Hash()}); err != nil {
		t.Fatal(err)
	}
	return own, dev, mb, tok
}

// TestDurabilityKill9: every envelope whose Sent reached a sender survives
// a SIGKILL of the relay in the middle of a burst.
func TestDurabilityKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a relay process")
	}
	bin := buildRelay(t)
	addr, data := freeAddr(t), t.TempDir()
	proc := startRelay(t, bin, addr, data)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang guard
	defer cancel()

	own, dev, mb, tok := enrolOwner(t, ctx, addr)
	own.ws.CloseNow()

	const senders, killAfter, maxPerSender = 8, 400, 2000
	var mu sync.Mutex
	acked := map[protocol.EnvelopeID]bool{}
	killed := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	env := make([]byte, 1024)
	env[0], env[1] = protocol.Version, 1
	for range senders {
		wg.Go(func() {
			c, err := dialRelay(ctx, addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.ws.CloseNow()
			for range maxPerSender {
				f, err := c.do(ctx, &protocol.Send{Mailbox: mb, Capability: tok, Envelope: env})
				if err != nil {
					return // the relay died
				}
				mu.Lock()
				acked[f.(*protocol.Sent).Envelope] = true
				n := len(acked)
				mu.Unlock()
				if n >= killAfter {
					once.Do(func() {
						proc.Process.Signal(syscall.SIGKILL)
						close(killed)
					})
				}
			}
		})
	}
	wg.Wait()
	select {
	case <-killed:
	default:
		t.Fatal("burst ended before the kill")
	}
	proc.Wait()
	mu.Lock()
	want := len(acked)
	mu.Unlock()

	startRelay(t, bin, addr, data)
	c, err := dialRelay(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.authenticate(ctx, dev, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.do(ctx, &protocol.Subscribe{Mailbox: mb}); err != nil {
		t.Fatal(err)
	}
	got := map[protocol.EnvelopeID]bool{}
	var batch []protocol.EnvelopeID
	for i := 0; i < 10*maxPerSender*senders; i++ {
		var f protocol.Frame
		if len(c.pushes) > 0 {
			f, c.pushes = c.pushes[0], c.pushes[1:]
		} else if _, f, err = c.read(ctx); err != nil {
			t.Fatal(err)
		}
		if d, ok := f.(*protocol.Deliver); ok {
			got[d.ID] = true
			batch = append(batch, d.ID)
			if len(batch) == 128 {
				if _, err := c.do(ctx, &protocol.Ack{Mailbox: mb, IDs: batch}); err != nil {
					t.Fatal(err)
				}
				batch = nil
			}
			continue
		}
		if _, ok := f.(*protocol.Drained); ok {
			break
		}
	}
	missing := 0
	for id := range acked {
		if !got[id] {
			missing++
		}
	}
	t.Logf("%d sends acknowledged before SIGKILL, %d envelopes after restart", want, len(got))
	if missing > 0 {
		t.Fatalf("%d acknowledged envelopes lost", missing)
	}
}

func TestInviteCreate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a relay process")
	}
	bin := buildRelay(t)
	addr, data := freeAddr(t), t.TempDir()
	proc := startRelay(t, bin, addr, data, "--enrollment", "invite")
	// Online: through the admin socket while the relay runs.
	out, err := exec.Command(bin, "invite", "create", "--data", data, "--count", "3").CombinedOutput()
	if err != nil {
		t.Fatalf("invite create: %v\n%s", err, out)
	}
	if codes := strings.Fields(string(out)); len(codes) != 3 {
		t.Fatalf("got %q", out)
	}
	st, err := os.Stat(filepath.Join(data, "admin.sock"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("admin socket: %v %v", st, err)
	}
	// The code enrols a device on the running relay.
	ctx := context.Background()
	code := strings.Fields(string(out))[0]
	c, err := dialRelay(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := identity.GenerateIdentity()
	dev, _ := identity.NewDevice(id)
	sig, _ := dev.Sign(protocol.AuthContext, c.conn.AuthMessage())
	if _, err := c.do(ctx, &protocol.Enroll{Invite: code, DeviceKey: dev.Certificate().Signing.Bytes(), Signature: sig}); err != nil {
		t.Fatalf("enrol with invite: %v", err)
	}
	c.ws.CloseNow()
	// Graceful stop on SIGTERM, then offline: directly on the database.
	proc.Process.Signal(syscall.SIGTERM)
	if err := proc.Wait(); err != nil {
		t.Fatalf("relay exit after SIGTERM: %v", err)
	}
	out, err = exec.Command(bin, "invite", "create", "--data", data, "--count", "2").CombinedOutput()
	if err != nil || len(strings.Fields(string(out))) != 2 {
		t.Fatalf("offline invite create: %v\n%s", err, out)
	}
}

func TestServeRefusesPlainNonLoopback(t *testing.T) {
	var stderr strings.Builder
	code := run([]string{"serve", "--listen", "0.0.0.0:7878", "--data", t.TempDir()}, &strings.Builder{}, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "postern-relay: error: ") || !strings.Contains(stderr.String(), "\nhint: ") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	t.Setenv("POSTERN_RELAY_LISTEN", "192.0.2.1:7878")
	stderr.Reset()
	if run([]string{"serve", "--data", t.TempDir()}, &strings.Builder{}, &stderr) != 1 || !strings.Contains(stderr.String(), "192.0.2.1") {
		t.Fatalf("env listen not used: %q", stderr.String())
	}
}
