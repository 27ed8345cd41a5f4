package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/postern/postern/relay"
)

// TestProxyExamples checks the reverse proxy examples in docs/ keep the
// directives the relay needs: WebSocket upgrade, the Host header
// preserved (the auth signature binds it), timeouts above the ping
// interval, 4 GiB unbuffered uploads. With nginx or caddy installed it
// also runs their own syntax checks where that needs no certificates.
func TestProxyExamples(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "docs", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	need := func(name, text string, res ...string) {
		for _, re := range res {
			if !regexp.MustCompile(`(?m)^[^#\n]*` + re).MatchString(text) {
				t.Errorf("%s lacks %s", name, re)
			}
		}
	}
	timeout := func(name, text, re string) {
		m := regexp.MustCompile(`(?m)^[^#\n]*` + re + `\s+(\d+)s`).FindStringSubmatch(text)
		if m == nil {
			t.Errorf("%s lacks %s", name, re)
			return
		}
		n, _ := strconv.Atoi(m[1])
		if time.Duration(n)*time.Second <= relay.DefaultPingInterval {
			t.Errorf("%s: %s %ds is not above the ping interval %v", name, re, n, relay.DefaultPingInterval)
		}
	}

	ng := read("nginx.conf.example")
	need("nginx.conf.example", ng,
		`proxy_pass http://postern_relay;`, `server 127\.0\.0\.1:7878;`,
		`proxy_http_version 1\.1;`,
		`proxy_set_header Upgrade \$http_upgrade;`,
		`proxy_set_header Connection \$connection_upgrade;`,
		`proxy_set_header Host \$http_host;`,
		`proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;`,
		`client_max_body_size 4g;`,
		`proxy_request_buffering off;`,
	)
	timeout("nginx.conf.example", ng, `proxy_read_timeout`)
	timeout("nginx.conf.example", ng, `proxy_send_timeout`)

	cd := read("Caddyfile.example")
	need("Caddyfile.example", cd,
		`reverse_proxy 127\.0\.0\.1:7878`,
		`max_size 4GiB`,
		`flush_interval -1`,
	)
	// Caddy keeps Host and streams bodies by default; Caddy 2.6 has no
	// request_buffers, and its transport read_timeout cuts uploads that
	// last longer (e2e/proxy_test.go runs the file through Caddy).
	for _, re := range []string{`header_up Host`, `request_buffers`, `read_timeout`} {
		if regexp.MustCompile(`(?m)^[^#\n]*` + re).MatchString(cd) {
			t.Errorf("Caddyfile.example has %s", re)
		}
	}

	if p, err := exec.LookPath("caddy"); err == nil {
		out, err := exec.Command(p, "adapt", "--config", filepath.Join("..", "..", "docs", "Caddyfile.example"), "--adapter", "caddyfile").CombinedOutput()
		if err != nil {
			t.Errorf("caddy adapt: %v\n%s", err, out)
		}
	}
}
