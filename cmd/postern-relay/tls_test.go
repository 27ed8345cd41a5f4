package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/relayconn"
	"github.com/postern/postern/relay"
)

// writeTestCert writes a self-signed certificate for 127.0.0.1 and its key
// as PEM files and returns their paths and a pool trusting it.
func writeTestCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	leaf, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(leaf)
	return certFile, keyFile, pool
}

func parseNetFlags(t *testing.T, args ...string) *netFlags {
	t.Helper()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	n := addNetFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestServeTLSFiles: the TLS configuration built from --tls-cert and
// --tls-key serves the relay over wss://.
func TestServeTLSFiles(t *testing.T) {
	cert, key, pool := writeTestCert(t)
	tc, err := parseNetFlags(t).tlsConfig(cert, key, "0.0.0.0:443", t.TempDir())
	if err != nil || tc == nil || tc.GetCertificate == nil {
		t.Fatalf("tlsConfig = %v, %v; want GetCertificate set (a reload replaces the certificate)", tc, err)
	}
	dir := t.TempDir()
	r, err := relay.New(relay.Config{DataDir: dir, Store: testStore(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	// TLS on the listener, as ServeTLS does (httptest's StartTLS would add
	// its own certificate, which a GetCertificate config does not win over).
	srv := httptest.NewUnstartedServer(r)
	srv.Listener = tls.NewListener(srv.Listener, tc)
	srv.Start()
	defer func() { srv.Close(); r.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Dial reads the relay's challenge: the handshake went through TLS.
	conn, err := relayconn.Dial(ctx, "wss://"+strings.TrimPrefix(srv.URL, "http://"), &relayconn.Options{TLSConfig: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	conn.CloseNow()
}

// TestTLSFlagChecks: conflicting or incomplete TLS flags, and plain HTTP
// off loopback, are refused before anything opens; ACME wiring sets
// GetCertificate and the tls-alpn-01 protocol.
func TestTLSFlagChecks(t *testing.T) {
	cert, key, _ := writeTestCert(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--tls-cert", cert, "--tls-key", key, "--acme-domain", "relay.example.org"}, "exclusive"},
		{[]string{"serve", "--tls-cert", cert}, "go together"},
		{[]string{"serve", "--listen", "0.0.0.0:7878"}, "refusing plain ws://"},
		{[]string{"serve", "--tls-cert", key, "--tls-key", cert}, "TLS certificate"},
		{[]string{"serve", "--trusted-proxy", "not-an-address"}, "not-an-address"},
	} {
		var stderr bytes.Buffer
		data := t.TempDir()
		if code := run(append(tc.args, "--data", data), io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", tc.args, code, stderr.String(), tc.want)
		}
		if _, err := os.Stat(filepath.Join(data, relay.DBFile)); err == nil {
			t.Errorf("%v: opened the store before refusing", tc.args)
		}
	}

	n := parseNetFlags(t, "--acme-domain", "relay.example.org, chat.example.org", "--acme-cache", t.TempDir())
	tc, err := n.tlsConfig("", "", ":443", t.TempDir())
	if err != nil || tc == nil || tc.GetCertificate == nil {
		t.Fatalf("ACME tlsConfig = %+v, %v; want GetCertificate set", tc, err)
	}
	hasALPN := false
	for _, p := range tc.NextProtos {
		hasALPN = hasALPN || p == "acme-tls/1"
	}
	if !hasALPN {
		t.Fatalf("ACME NextProtos %v lack acme-tls/1", tc.NextProtos)
	}
	// The host policy refuses other names without contacting anyone.
	if _, err := tc.GetCertificate(&tls.ClientHelloInfo{ServerName: "evil.example.com"}); err == nil {
		t.Fatal("ACME issued for a name not in --acme-domain")
	}
}

// TestTrustedProxyFlags: --trusted-proxy repeats and comma-separates,
// reaches relay.Config, and plain HTTP off loopback then serves only the
// trusted proxies.
func TestTrustedProxyFlags(t *testing.T) {
	n := parseNetFlags(t, "--trusted-proxy", "10.1.0.0/16, 192.0.2.7", "--trusted-proxy", "2001:db8::/32",
		"--ping-interval", "20s", "--conn-rate-per-address", "30", "--max-conns-per-address", "5")
	tc, err := n.tlsConfig("", "", "0.0.0.0:7878", t.TempDir())
	if err != nil || tc != nil || !n.proxyOnly {
		t.Fatalf("plain with trusted proxy: %v, %v, proxyOnly %v", tc, err, n.proxyOnly)
	}
	var c relay.Config
	n.apply(&c)
	want := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")}
	if len(c.TrustedProxies) != 3 || c.TrustedProxies[0] != want[0] || c.TrustedProxies[1] != want[1] || c.TrustedProxies[2] != want[2] {
		t.Fatalf("TrustedProxies %v, want %v", c.TrustedProxies, want)
	}
	if c.PingInterval != 20*time.Second || c.ConnRatePerAddress != 30 || c.MaxConnsPerAddress != 5 {
		t.Fatalf("config %+v", c)
	}
	h := n.handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	for addr, want := range map[string]int{"10.1.2.3:5000": 204, "192.0.2.7:1": 204, "192.0.2.8:1": 403, "[2001:db8::1]:9": 204} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/healthz", nil)
		req.RemoteAddr = addr
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("peer %s: %d, want %d", addr, rec.Code, want)
		}
	}
}
