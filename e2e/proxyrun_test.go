//go:build unix

package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/internal/relayconn"
	"github.com/postern/postern/protocol"
)

// The harness for proxy_test.go: the relay binary, nginx and Caddy run as
// child processes on free loopback ports, each proxy configured from its
// example in docs/ with only the placeholders rewritten.

// proxiesEnv=require (set by .ci/run after it installs the proxies)
// makes a missing proxy fail the test instead of skipping it.
const proxiesEnv = "POSTERN_TEST_PROXIES"

// lookProxy returns the path of a proxy binary, or skips (fails when
// required) naming the Debian package that provides it. nginx lives in
// /usr/sbin, which is not on an ordinary user's PATH.
func lookProxy(t *testing.T, bin, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(bin); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, bin)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	msg := fmt.Sprintf("%s is not installed (Debian package %s: apt-get install %s)", bin, pkg, pkg)
	if os.Getenv(proxiesEnv) == "require" {
		t.Fatalf("%s, and %s=require", msg, proxiesEnv)
	}
	t.Skipf("%s; set %s=require to fail instead of skipping", msg, proxiesEnv)
	return ""
}

// readExample reads a file of docs/.
func readExample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rewrite replaces old, which must occur exactly once in the example
// text, with new: a placeholder that moved or changed fails the test
// instead of leaving the example's value in place unnoticed.
func rewrite(t *testing.T, name, text, old, new string) string {
	t.Helper()
	if n := strings.Count(text, old); n != 1 {
		t.Fatalf("docs/%s: %q occurs %d times, want exactly once (the test rewrites it; keep the example and the test in step)", name, old, n)
	}
	return strings.Replace(text, old, new, 1)
}

// testCertFiles writes a self-signed certificate for 127.0.0.1 and its
// key as PEM files in dir, and returns their paths and a pool that trusts
// the certificate: the proxies terminate TLS with it, as they would with
// a hospital's private CA.
func testCertFiles(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "postern proxy test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(leaf)
	return certFile, keyFile, pool
}

// process is a child process whose output is kept for the failure report.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when it has exited
	err  error         // Wait's result, set before done is closed
}

// startProcess starts cmd in its own process group (nginx's workers are
// its children) and stops the group when the test ends. The output is
// logged if the test failed.
func startProcess(t *testing.T, name string, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{name: name, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		pgid := cmd.Process.Pid
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- %s output (the end):\n%s", name, tail(p.out.Bytes(), 32<<10))
		}
	})
	return p
}

// tail returns the last n bytes of b at most.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// waitHealthy polls url until it answers 200 through client, failing if
// the process exits first or nothing answers in 30 s.
func waitHealthy(t *testing.T, p *process, client *http.Client, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready (%v):\n%s", p.name, p.err, tail(p.out.Bytes(), 32<<10))
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %s did not answer 200 in 30 s: %v\n%s", p.name, url, last, tail(p.out.Bytes(), 32<<10))
}

// relayBehindProxy is a postern-relay process on plain HTTP on loopback
// that trusts the proxy's address, 127.0.0.1.
type relayBehindProxy struct {
	addr, metrics string
	proc          *process
}

// Settings the proxy tests run the relay and the proxies with.
const (
	testPingInterval = 500 * time.Millisecond // --ping-interval: six pings in nginx's rewritten idle timeout
	testProxyIdle    = 3 * time.Second        // nginx's proxy_read_timeout, rewritten from 300s
	testMaxPerAddr   = 2                      // --max-conns-per-address
)

func startRelayBehindProxy(t *testing.T, bin string) *relayBehindProxy {
	t.Helper()
	r := &relayBehindProxy{addr: freeAddr(t), metrics: freeAddr(t)}
	cmd := exec.Command(bin, "serve",
		"--listen", r.addr,
		"--data", t.TempDir(),
		"--metrics-listen", r.metrics,
		"--trusted-proxy", "127.0.0.1",
		"--ping-interval", testPingInterval.String(),
		"--max-conns-per-address", strconv.Itoa(testMaxPerAddr),
	)
	r.proc = startProcess(t, "postern-relay", cmd)
	waitHealthy(t, r.proc, http.DefaultClient, "http://"+r.addr+"/healthz")
	return r
}

// metric returns the value of the series whose exposition line starts
// with series (name and labels exactly as the relay writes them).
func (r *relayBehindProxy) metric(t *testing.T, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + r.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not in /metrics (%v)", series, sc.Err())
	return 0
}

// proxy is a running reverse proxy in front of a relay.
type proxy struct {
	name string
	addr string // host:port of its TLS listener on 127.0.0.1
	proc *process
	// idle is the proxy's idle timeout for a proxied WebSocket as the
	// test rewrote it, or 0 if the example sets none.
	idle time.Duration
	// requestLog returns the proxy's log of proxied requests.
	requestLog func() []byte
	// blobRequests matches a line of requestLog for a request to a blob
	// URL: the first submatch is the method, the second the blob ID.
	blobRequests *regexp.Regexp
}

// blobIDs returns the blob IDs of the proxied requests with method in
// the proxy's log, in order.
func (p *proxy) blobIDs(method string) []string {
	var ids []string
	for _, m := range p.blobRequests.FindAllStringSubmatch(string(p.requestLog()), -1) {
		if m[1] == method {
			ids = append(ids, m[2])
		}
	}
	return ids
}

// startNginx runs nginx with docs/nginx.conf.example inside the minimal
// main context an example in sites-enabled normally gets from
// /etc/nginx/nginx.conf, with every path in a temporary directory.
func startNginx(t *testing.T, bin, upstream, certFile, keyFile string, pool *x509.CertPool) *proxy {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	const name = "nginx.conf.example"
	site := readExample(t, name)
	site = rewrite(t, name, site, "listen 443 ssl;", "listen "+addr+" ssl;")
	site = rewrite(t, name, site, "listen [::]:443 ssl;", "# (IPv6 listener left out by the test)")
	site = rewrite(t, name, site, "server 127.0.0.1:7878;", "server "+upstream+";")
	site = rewrite(t, name, site, "/etc/letsencrypt/live/relay.example.org/fullchain.pem", certFile)
	site = rewrite(t, name, site, "/etc/letsencrypt/live/relay.example.org/privkey.pem", keyFile)
	site = rewrite(t, name, site, "proxy_read_timeout 300s;", fmt.Sprintf("proxy_read_timeout %ds;", int(testProxyIdle/time.Second)))
	if err := os.WriteFile(filepath.Join(dir, "postern.conf"), []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	user := ""
	if os.Geteuid() == 0 {
		// Workers would otherwise run as nobody and not reach the
		// temporary directory.
		user = "user root;"
	}
	main := fmt.Sprintf(`# Written by e2e/proxy_test.go around docs/%[1]s (postern.conf).
%[2]s
worker_processes 1;
pid %[3]s/nginx.pid;
error_log %[3]s/error.log info;
events { worker_connections 256; }
http {
	access_log %[3]s/access.log;
	client_body_temp_path %[3]s/client_body;
	proxy_temp_path %[3]s/proxy;
	fastcgi_temp_path %[3]s/fastcgi;
	uwsgi_temp_path %[3]s/uwsgi;
	scgi_temp_path %[3]s/scgi;
	include %[3]s/postern.conf;
}
`, name, user, dir)
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-t", "-q", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t rejects docs/%s: %v\n%s\n%s", name, err, out, site)
	}
	p := &proxy{
		name: "nginx",
		addr: addr,
		idle: testProxyIdle,
		requestLog: func() []byte {
			b, _ := os.ReadFile(filepath.Join(dir, "access.log"))
			return b
		},
		// The combined log format: "PUT /v1/blobs/ID HTTP/1.1" 200 ...
		blobRequests: regexp.MustCompile(`(?m)"([A-Z]+) ` + regexp.QuoteMeta(protocol.BlobPath) + `([0-9a-f]+) HTTP/[0-9.]+" [0-9]+`),
	}
	p.proc = startProcess(t, "nginx", exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf, "-g", "daemon off;"))
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("--- nginx error.log (the end):\n%s", tail(b, 32<<10))
		}
	})
	waitHealthy(t, p.proc, tlsClient(pool), "https://"+addr+"/healthz")
	return p
}

// startCaddy runs Caddy with docs/Caddyfile.example after a global
// options block for the test (no admin endpoint, no redirect listener,
// storage in a temporary directory, debug logs that name each proxied
// request), with the example's commented-out tls and trusted_proxies
// lines switched on. The example sets no idle timeout: there is none to
// rewrite.
func startCaddy(t *testing.T, bin, upstream, certFile, keyFile string, pool *x509.CertPool) *proxy {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	const name = "Caddyfile.example"
	site := readExample(t, name)
	site = rewrite(t, name, site, "relay.example.org {", "https://"+addr+" {")
	site = rewrite(t, name, site, "# tls /etc/ssl/postern/fullchain.pem /etc/ssl/postern/privkey.pem", "tls "+certFile+" "+keyFile)
	site = rewrite(t, name, site, "reverse_proxy 127.0.0.1:7878 {", "reverse_proxy "+upstream+" {")
	// The test client at 127.0.0.1 stands for a load balancer in front
	// of Caddy (see the limit check in proxy_test.go).
	site = rewrite(t, name, site, "# trusted_proxies 192.0.2.10/32", "trusted_proxies 127.0.0.1/32")
	_, httpPort, _ := net.SplitHostPort(freeAddr(t))
	global := fmt.Sprintf(`# Written by e2e/proxy_test.go before docs/%s.
{
	admin off
	debug
	http_port %s
	auto_https disable_redirects
	skip_install_trust
	storage file_system %s
}

`, name, httpPort, filepath.Join(dir, "data"))
	conf := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(conf, []byte(global+site), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	adapt := exec.Command(bin, "adapt", "--config", conf, "--adapter", "caddyfile")
	adapt.Env = env
	if out, err := adapt.CombinedOutput(); err != nil {
		t.Fatalf("caddy adapt rejects docs/%s: %v\n%s\n%s", name, err, out, global+site)
	}
	cmd := exec.Command(bin, "run", "--config", conf, "--adapter", "caddyfile")
	cmd.Env = env
	p := &proxy{
		name: "caddy",
		addr: addr,
		idle: 0, // the example sets none
		// Its debug log has a line for every request it proxied.
		blobRequests: regexp.MustCompile(`(?m)^.*"msg":"upstream roundtrip".*"method":"([A-Z]+)".*"uri":"` + regexp.QuoteMeta(protocol.BlobPath) + `([0-9a-f]+)".*$`),
	}
	p.proc = startProcess(t, "caddy", cmd)
	p.requestLog = p.proc.out.Bytes
	waitHealthy(t, p.proc, tlsClient(pool), "https://"+addr+"/healthz")
	return p
}

// tlsClient is an HTTP client that trusts pool only.
func tlsClient(pool *x509.CertPool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	tr.DisableCompression = true
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// rawDial opens a connection to the relay at wsURL from the local address
// from (a 127.0.0.0/8 address), sending X-Forwarded-For xff unless empty,
// and reads the relay's challenge: the relay admitted the connection. On
// a refusal before the upgrade it returns the HTTP response.
func rawDial(ctx context.Context, wsURL string, pool *x509.CertPool, from, xff string) (*relayconn.Conn, *http.Response, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	tr.DialContext = d.DialContext
	h := http.Header{}
	if xff != "" {
		h.Set("X-Forwarded-For", xff)
	}
	conn, err := relayconn.Dial(ctx, wsURL, &relayconn.Options{HTTPClient: &http.Client{Transport: tr}, HTTPHeader: h})
	if err != nil {
		var de *relayconn.DialError
		if errors.As(err, &de) {
			return nil, de.Response, err
		}
		return nil, nil, err
	}
	// Answer the relay's pings from here on, so that it keeps the
	// connection open.
	conn.Start(nil)
	return conn, nil, nil
}

// silentUpstream is a WebSocket server that accepts and then sends
// nothing, not even pings: behind a proxy, a connection to it is idle in
// both directions, as a relay's would be without keep-alive pings.
func silentUpstream(t *testing.T) string {
	t.Helper()
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/healthz" {
			w.Write([]byte("ok\n")) // for waitHealthy through the proxy
			return
		}
		ws, err := websocket.Accept(w, req, &websocket.AcceptOptions{Subprotocols: []string{protocol.Subprotocol}})
		if err != nil {
			return
		}
		defer ws.CloseNow()
		select {
		case <-stop:
		case <-req.Context().Done():
		}
	}))
	t.Cleanup(func() { close(stop); srv.Close() })
	return strings.TrimPrefix(srv.URL, "http://")
}

// slowLink forwards TCP connections from a new loopback address to addr,
// passing what clients send at most rate bytes a second (what they
// receive goes at full speed): an uplink slow enough that an attachment
// upload takes longer than a proxy's idle timeout. It returns the new
// address.
func slowLink(t *testing.T, addr string, rate int) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			track(c)
			track(u)
			wg.Add(2)
			go func() { // down: full speed
				defer wg.Done()
				io.Copy(c, u)
				c.Close()
				u.Close()
			}()
			go func() { // up: rate bytes a second
				defer wg.Done()
				buf := make([]byte, 16<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if _, werr := u.Write(buf[:n]); werr != nil {
							break
						}
						time.Sleep(time.Duration(n) * time.Second / time.Duration(rate))
					}
					if err != nil {
						break
					}
				}
				c.Close()
				u.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}
