package client

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/relaytest"
)

// testCert makes a self-signed certificate for 127.0.0.1 and the pool
// that trusts it, as a hospital's private CA would be trusted.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "postern test relay"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestTLSRelay: Init, invite, send, sync and an attachment (blob over
// https) against a relay served over TLS with a certificate the client
// trusts only through Options.TLSConfig.
func TestTLSRelay(t *testing.T) {
	t.Parallel()
	cert, pool := testCert(t)
	dir := t.TempDir()
	r, err := relay.New(relay.Config{DataDir: dir, Store: relaytest.Store(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(r)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(func() { srv.Close(); r.Close() })
	url := "wss://" + strings.TrimPrefix(srv.URL, "https://")
	ctx := testCtx(t)

	// Without the private CA the certificate is refused.
	if _, err := Init(ctx, filepath.Join(t.TempDir(), "x"), testPass, url, "x", testOpts()); err == nil {
		t.Fatal("Init trusted an unknown certificate")
	}

	opts := func() *Options {
		o := testOpts()
		o.TLSConfig = &tls.Config{RootCAs: pool}
		return o
	}
	alice, err := Init(ctx, filepath.Join(t.TempDir(), "alice"), testPass, url, "alice", opts())
	if err != nil {
		t.Fatalf("Init alice over wss: %v", err)
	}
	t.Cleanup(func() { alice.Close() })
	bob, err := Init(ctx, filepath.Join(t.TempDir(), "bob"), testPass, url, "bob", opts())
	if err != nil {
		t.Fatalf("Init bob over wss: %v", err)
	}
	t.Cleanup(func() { bob.Close() })
	code, err := alice.Invite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Accept(ctx, code, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, "bob", "over tls"); err != nil {
		t.Fatal(err)
	}
	got, err := bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "bob sync", got, "alice>me:over tls")

	// A blob goes over https with the same TLS configuration.
	in := filepath.Join(t.TempDir(), "note.txt")
	if err := os.WriteFile(in, []byte(strings.Repeat("attachment ", 10000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendFiles(ctx, "bob", "file", []string{in}, nil); err != nil {
		t.Fatalf("SendFiles over https: %v", err)
	}
	got, err = bob.Sync(ctx)
	if err != nil || len(got) != 1 {
		t.Fatalf("bob sync = %v, %v", got, err)
	}
	out := t.TempDir()
	paths, err := bob.SaveAttachments(ctx, got[0].ID, out, nil)
	if err != nil || len(paths) != 1 {
		t.Fatalf("SaveAttachments over https = %v, %v", paths, err)
	}
	b, err := os.ReadFile(paths[0])
	if err != nil || string(b) != strings.Repeat("attachment ", 10000) {
		t.Fatalf("saved attachment differs: %d bytes, %v", len(b), err)
	}
}

// TestDialRefusedBeforeUpgrade: a 429 with Postern-Error (per-address
// limits) reaches the caller as the numbered protocol error.
func TestDialRefusedBeforeUpgrade(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r, err := relay.New(relay.Config{DataDir: dir, Store: relaytest.Store(t, dir), MaxConnsPerAddress: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Loopback clients are not limited: present the test's as a remote one.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		req.RemoteAddr = "203.0.113.9:4000"
		r.ServeHTTP(w, req)
	}))
	t.Cleanup(func() { srv.Close(); r.Close() })
	url := "ws://" + strings.TrimPrefix(srv.URL, "http://")
	ctx := testCtx(t)
	c, err := dialRelay(ctx, url, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if _, err := dialRelay(ctx, url, nil, nil); !protocol.IsCode(err, protocol.CodeTooManyConnections) {
		t.Fatalf("second dial: %v; want CodeTooManyConnections", err)
	}
}
