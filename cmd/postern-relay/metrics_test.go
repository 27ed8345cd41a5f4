package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/metrics"
)

func TestMetricsListenCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		addr   string
		public bool
		on     bool
		err    string
	}{
		{"default", defaultMetricsListen, false, true, ""},
		{"disabled", "", false, false, ""},
		{"localhost", "localhost:9178", false, true, ""},
		{"ipv6 loopback", "[::1]:9178", false, true, ""},
		{"all interfaces", "0.0.0.0:9178", false, false, "non-loopback"},
		{"any port on every interface", ":9178", false, false, "non-loopback"},
		{"private address", "10.0.0.7:9178", false, false, "non-loopback"},
		{"public allowed", "10.0.0.7:9178", true, true, ""},
		{"no port", "127.0.0.1", false, false, "--metrics-listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			f := addMetricsFlags(fs)
			*f.listen, *f.public = tc.addr, tc.public
			on, err := f.check()
			if on != tc.on || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("check(%q, public %v) = %v, %v; want %v, error containing %q", tc.addr, tc.public, on, err, tc.on, tc.err)
			}
			var ue *usageError
			if err != nil && (!errors.As(err, &ue) || ue.hint == "") {
				t.Fatalf("error %v has no hint", err)
			}
		})
	}
}

// TestServeRefusesPublicMetrics: serve stops before opening anything, with
// the error and a hint on stderr.
func TestServeRefusesPublicMetrics(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	var stdout, stderr bytes.Buffer
	code := run([]string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--metrics-listen", "0.0.0.0:9178"}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	out := stderr.String()
	if !strings.Contains(out, "postern-relay: error: refusing to serve metrics on non-loopback address 0.0.0.0:9178") ||
		!strings.Contains(out, "hint: ") || !strings.Contains(out, "--metrics-listen-public") {
		t.Fatalf("stderr:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(data, relay.DBFile)); err == nil {
		t.Fatal("the relay started before the refusal")
	}
}

func TestMetricsServer(t *testing.T) {
	m := metrics.New()
	s, err := startMetrics("127.0.0.1:0", m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.ln.Addr().String()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "postern_relay_connections 0") {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	if code, _ := get("/"); code != http.StatusNotFound {
		t.Fatalf("/: %d, want 404", code)
	}
	if err := s.shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var none *metricsServer
	if err := none.shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
