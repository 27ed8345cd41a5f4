package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/audit"
)

// logLines collects a process's stderr by line.
type logLines struct {
	mu    sync.Mutex
	buf   []byte
	lines []string
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// waitFor waits (bounded, generously) for a line after the first from
// that contains every one of want, and returns its index.
func (l *logLines) waitFor(t *testing.T, from int, want ...string) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // a hang guard, not an assertion
	for time.Now().Before(deadline) {
		l.mu.Lock()
		for i := from; i < len(l.lines); i++ {
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(l.lines[i], w)
			}
			if ok {
				l.mu.Unlock()
				return i
			}
		}
		l.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no log line with %q; the relay logged:\n%s", want, l.String())
	return 0
}

func (l *logLines) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// startServe starts `postern-relay serve args...` with no POSTERN_RELAY_*
// variable in its environment and waits for its "listening" line.
func startServe(t *testing.T, bin string, args ...string) (*exec.Cmd, *logLines) {
	t.Helper()
	logs := &logLines{}
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "POSTERN_RELAY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("relay log:\n%s", logs)
		}
	})
	logs.waitFor(t, 0, "msg=listening")
	return cmd, logs
}

// loggedAddr returns the host:port of the url= field on the first log line
// containing msg: a relay told to listen on port 0 reports there the port
// it bound, so a test never picks a port that another process can take
// before the relay binds it.
func loggedAddr(t *testing.T, logs *logLines, msg string) string {
	t.Helper()
	i := logs.waitFor(t, 0, msg)
	logs.mu.Lock()
	line := logs.lines[i]
	logs.mu.Unlock()
	_, rest, ok := strings.Cut(line, " url=")
	if !ok {
		t.Fatalf("no url in %q", line)
	}
	rest, _, _ = strings.Cut(rest, " ")
	u, err := url.Parse(rest)
	if err != nil || u.Host == "" {
		t.Fatalf("url in %q: %v", line, err)
	}
	return u.Host
}

// hup sends SIGHUP and waits for the reload to finish: the line with want
// after the "reloading configuration" line.
func hup(t *testing.T, cmd *exec.Cmd, logs *logLines, want ...string) {
	t.Helper()
	from := logs.len()
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	i := logs.waitFor(t, from, `msg="reloading configuration"`)
	logs.waitFor(t, i+1, want...)
}

// lastAudit returns the last entry of DATA/audit.log after checking the
// chain with package audit.
func lastAudit(t *testing.T, data string) (event string, fields map[string]any) {
	t.Helper()
	if _, err := audit.VerifyDir(data, nil); err != nil {
		t.Fatalf("audit log does not verify: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(data, audit.LogFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	var e struct {
		Event  string         `json:"event"`
		Fields map[string]any `json:"fields"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &e); err != nil {
		t.Fatal(err)
	}
	return e.Event, e.Fields
}

// enrollCode enrols a new device on the relay at addr and returns the
// protocol error code of a refusal (0: enrolled).
func enrollCode(t *testing.T, addr string) protocol.Code {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := dialRelay(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.ws.CloseNow()
	dev, err := identity.NewDevice(must(identity.GenerateIdentity()))
	if err != nil {
		t.Fatal(err)
	}
	err = c.authenticate(ctx, dev, true)
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// TestServeReload: SIGHUP re-reads the config file and applies what can
// change at runtime (enrolment policy, log level), refuses an invalid file
// and keeps running with the old configuration, and reports an option that
// needs a restart (listen) instead of applying it.
func TestServeReload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a relay process")
	}
	bin := buildRelay(t)
	addr, other, data := freeAddr(t), freeAddr(t), filepath.Join(t.TempDir(), "data")
	conf := filepath.Join(t.TempDir(), "relay.conf")
	write := func(lines ...string) {
		t.Helper()
		// Replaced as an editor would; a reload reads the whole file.
		tmp := conf + ".new"
		if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, conf); err != nil {
			t.Fatal(err)
		}
	}
	common := []string{"# test relay", "listen = " + addr, "data = " + data, "metrics-listen ="}
	write(append(common, "enrollment = open")...)
	cmd, logs := startServe(t, bin, "--config", conf)
	if code := enrollCode(t, addr); code != 0 {
		t.Fatalf("open enrolment refused with %v", code)
	}

	// Invite-only and debug logging: both applied, one audit entry.
	invite := append(common, "enrollment = invite", "log-level = debug")
	write(invite...)
	hup(t, cmd, logs, `msg="configuration reloaded"`, "changed=enrollment,log-level")
	from := logs.len()
	if code := enrollCode(t, addr); code != protocol.CodeEnrollmentRefused {
		t.Fatalf("enrolment without invite after reload: code %v, want %v", code, protocol.CodeEnrollmentRefused)
	}
	// Debug logging is on: the connection that just ended is logged at
	// debug level ("read failed").
	logs.waitFor(t, from, "level=DEBUG")
	event, fields := lastAudit(t, data)
	if event != audit.EventConfigReloaded || fields["changed"] != "enrollment,log-level" || fields["enrollment"] != "invite" || fields["restart_needed"] != nil {
		t.Fatalf("last audit entry %s %v, want config.reloaded changing enrollment,log-level to invite", event, fields)
	}
	if _, ok := fields["max_connections"]; !ok {
		t.Errorf("config.reloaded lacks the settings: %v", fields)
	}

	// A bad file is refused as a whole: invite enrolment stays.
	write(append(invite, "colour = blue")...) // line 7
	hup(t, cmd, logs, "level=ERROR", `configuration reload refused`, `relay.conf:7: unknown option \"colour\"`, "hint=")
	if code := enrollCode(t, addr); code != protocol.CodeEnrollmentRefused {
		t.Fatalf("enrolment after a refused reload: code %v, want %v (invite kept)", code, protocol.CodeEnrollmentRefused)
	}
	if event, fields := lastAudit(t, data); event != audit.EventConfigReloadRefused || !strings.Contains(fmt.Sprint(fields["reason"]), `unknown option "colour"`) {
		t.Fatalf("last audit entry %s %v, want config.reload_refused with the reason", event, fields)
	}

	// The same file again: nothing changed, no audit entry.
	write(invite...)
	hup(t, cmd, logs, `msg="configuration reloaded, nothing changed"`)
	if event, _ := lastAudit(t, data); event != audit.EventConfigReloadRefused {
		t.Fatalf("a reload that changed nothing wrote %s", event)
	}

	// A new listen address needs a restart: reported, not applied.
	write(append([]string{"listen = " + other}, append(common[2:], "enrollment = invite", "log-level = debug")...)...)
	hup(t, cmd, logs, "level=WARN", "restart postern-relay to apply", "option=listen")
	logs.waitFor(t, 0, `msg="configuration reloaded; nothing to apply before a restart"`)
	if event, fields := lastAudit(t, data); event != audit.EventConfigReloaded || fields["restart_needed"] != "listen" || fields["changed"] != nil {
		t.Fatalf("last audit entry %s %v, want config.reloaded with restart_needed listen", event, fields)
	}
	if code := enrollCode(t, addr); code != protocol.CodeEnrollmentRefused {
		t.Fatalf("the relay does not serve at its old address after the listen change: code %v", code)
	}
	if _, err := http.Get("http://" + other + "/healthz"); err == nil {
		t.Fatal("the relay listens on the new address without a restart")
	}
}

// TestServeReloadTLS: SIGHUP re-reads --tls-cert and --tls-key, and a new
// TLS connection gets the new certificate (a certbot renewal needs no
// restart).
func TestServeReloadTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a relay process")
	}
	bin := buildRelay(t)
	certA, keyA, _ := writeTestCert(t)
	certB, keyB, _ := writeTestCert(t)
	// Serve from files of its own, replaced in place below.
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
	copyFile(t, certA, cert)
	copyFile(t, keyA, key)
	addr := freeAddr(t)
	cmd, logs := startServe(t, bin, "--listen", addr, "--data", t.TempDir(), "--metrics-listen=", "--tls-cert", cert, "--tls-key", key)

	if got := peerCert(t, addr); !bytes.Equal(got, derOf(t, certA)) {
		t.Fatal("the relay does not serve certificate A at start")
	}
	copyFile(t, certB, cert)
	copyFile(t, keyB, key)
	hup(t, cmd, logs, `msg="configuration reloaded, nothing changed"`)
	logs.waitFor(t, 0, "TLS certificate replaced")
	if got := peerCert(t, addr); !bytes.Equal(got, derOf(t, certB)) {
		t.Fatal("a new TLS connection after the reload does not get certificate B")
	}

	// A key that does not match is refused; B stays.
	copyFile(t, keyA, key)
	hup(t, cmd, logs, "level=ERROR", "configuration reload refused", "TLS certificate")
	if got := peerCert(t, addr); !bytes.Equal(got, derOf(t, certB)) {
		t.Fatal("a refused reload changed the certificate")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	tmp := to + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}

// derOf reads the first certificate of a PEM file.
func derOf(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	return blk.Bytes
}

// peerCert makes a new TLS connection (a new handshake: no session
// resumption) and returns the relay's leaf certificate. Both test
// certificates are self-signed for 127.0.0.1; the caller compares the
// bytes, so the handshake does not verify them.
func peerCert(t *testing.T, addr string) []byte {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Raw
}
