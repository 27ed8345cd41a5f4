package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"github.com/postern/postern/relay"
)

// netFlags are serve's TLS, proxy, keep-alive and per-address limit flags.
type netFlags struct {
	acmeDomains  stringList
	acmeCache    *string
	trusted      prefixList
	pingInterval *durationOrOff
	connRate     *int
	connBurst    *int
	maxPerAddr   *int
	proxyOnly    bool // set by tlsConfig: plain HTTP on a non-loopback address

	// Replaced by a reload (reload.go) while the server runs.
	cert    atomic.Pointer[tls.Certificate] // from --tls-cert/--tls-key
	proxies atomic.Pointer[prefixList]      // the trusted proxies handler serves
}

func addNetFlags(fs *flag.FlagSet) *netFlags {
	n := &netFlags{}
	fs.Var(&n.acmeDomains, "acme-domain", "serve TLS with certificates from Let's Encrypt (ACME, tls-alpn-01: listen on :443) for this domain; repeat or comma-separate for several")
	n.acmeCache = fs.String("acme-cache", "", "directory for ACME account keys and certificates (default: DATA/acme)")
	fs.Var(&n.trusted, "trusted-proxy", "CIDR or address of a reverse proxy whose X-Forwarded-For names the client; repeat or comma-separate. With it, plain HTTP may listen on a non-loopback address and then only the trusted proxies are served")
	ping := durationOrOff(relay.DefaultPingInterval)
	n.pingInterval = &ping
	fs.Var(n.pingInterval, "ping-interval", "WebSocket keep-alive ping interval, below the proxy's idle timeout (off: no pings)")
	n.connRate = fs.Int("conn-rate-per-address", relay.DefaultConnRatePerAddress, "connections per minute a client address may open that do not authenticate; past it (and --conn-burst-per-address) its new connections are on probation, not refused (negative: unlimited)")
	n.connBurst = fs.Int("conn-burst-per-address", relay.DefaultConnBurstPerAddress, "unauthenticated connections a client address may open at once before --conn-rate-per-address applies")
	n.maxPerAddr = fs.Int("max-conns-per-address", relay.DefaultMaxConnsPerAddress, "concurrent WebSocket connections per client address")
	return n
}

// tlsConfig checks the TLS choice and returns the server's TLS
// configuration: from --tls-cert/--tls-key, from ACME, or nil for plain
// HTTP, which needs a loopback address or --trusted-proxy. The certificate
// files are served through GetCertificate from n.cert, so that a reload
// can replace the certificate for new handshakes.
func (n *netFlags) tlsConfig(cert, key, listen, data string) (*tls.Config, error) {
	if (cert == "") != (key == "") {
		return nil, &usageError{msg: "--tls-cert and --tls-key go together", hint: "give both files, or neither on a loopback address"}
	}
	if cert != "" && len(n.acmeDomains) > 0 {
		return nil, &usageError{msg: "--tls-cert and --acme-domain are exclusive", hint: "use certificate files or ACME, not both"}
	}
	switch {
	case cert != "":
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, &usageError{msg: fmt.Sprintf("TLS certificate: %v", err), hint: "--tls-cert and --tls-key are PEM files: the certificate chain and its private key"}
		}
		n.cert.Store(&pair)
		return &tls.Config{GetCertificate: n.certificate, MinVersion: tls.VersionTLS12}, nil
	case len(n.acmeDomains) > 0:
		dir := *n.acmeCache
		if dir == "" {
			dir = filepath.Join(data, "acme")
		}
		m := &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			HostPolicy: autocert.HostWhitelist(n.acmeDomains...),
			Cache:      autocert.DirCache(dir),
		}
		tc := m.TLSConfig() // GetCertificate, and the acme-tls/1 protocol for tls-alpn-01
		tc.MinVersion = tls.VersionTLS12
		return tc, nil
	}
	if !isLoopback(listen) {
		if len(n.trusted) == 0 {
			return nil, &usageError{
				msg:  fmt.Sprintf("refusing plain ws:// on non-loopback address %s", listen),
				hint: "pass --tls-cert and --tls-key, or --acme-domain, or listen on 127.0.0.1 behind a TLS-terminating proxy (or pass --trusted-proxy for a proxy on another host)",
			}
		}
		n.proxyOnly = true
	}
	return nil, nil
}

// certificate is GetCertificate for --tls-cert/--tls-key: the pair loaded
// last.
func (n *netFlags) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return n.cert.Load(), nil
}

// certExpiry is the NotAfter of the certificate from --tls-cert, or the
// zero time without one.
func (n *netFlags) certExpiry() time.Time {
	if c := n.cert.Load(); c != nil && c.Leaf != nil {
		return c.Leaf.NotAfter
	}
	return time.Time{}
}

// apply sets the relay's keep-alive, limit and proxy configuration.
func (n *netFlags) apply(c *relay.Config) {
	c.PingInterval = time.Duration(*n.pingInterval) // off is -1: no pings
	c.ConnRatePerAddress = *n.connRate
	c.ConnBurstPerAddress = *n.connBurst
	c.MaxConnsPerAddress = *n.maxPerAddr
	c.TrustedProxies = n.trusted
}

// handler wraps h: plain HTTP on a non-loopback address serves only the
// trusted proxies (everyone else gets 403), so the relay's plaintext
// never crosses the network except from the proxy the operator named.
// A reload replaces the list (setProxies).
func (n *netFlags) handler(h http.Handler) http.Handler {
	n.setProxies(n.trusted)
	if !n.proxyOnly {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ap, err := netip.ParseAddrPort(req.RemoteAddr)
		if err == nil {
			a := ap.Addr().Unmap()
			for _, p := range *n.proxies.Load() {
				if p.Contains(a) {
					h.ServeHTTP(w, req)
					return
				}
			}
		}
		http.Error(w, "this relay is served through its reverse proxy only", http.StatusForbidden)
	})
}

// setProxies sets the trusted proxies handler serves.
func (n *netFlags) setProxies(l prefixList) { n.proxies.Store(&l) }

// stringList is a repeatable, comma-separable string flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}

// prefixList is a repeatable, comma-separable CIDR flag; a bare address
// is its own /32 or /128.
type prefixList []netip.Prefix

func (l *prefixList) String() string {
	s := make([]string, len(*l))
	for i, p := range *l {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (l *prefixList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return fmt.Errorf("want a CIDR (10.0.0.0/8) or an address, got %q", f)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		*l = append(*l, p.Masked())
	}
	return nil
}
