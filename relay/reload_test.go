package relay_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/metrics"
	"github.com/postern/postern/relay/relaytest"
)

// TestReloadMaxConnections: a lower MaxConnections refuses the next
// connection with CodeTooManyConnections while the open ones keep working;
// a higher one admits it again.
func TestReloadMaxConnections(t *testing.T) {
	srv := relaytest.New(t, nil)
	r := srv.Relay()
	a, b := dial(t, srv.URL), dial(t, srv.URL)

	cfg := r.Config()
	cfg.MaxConnections = 2
	if err := r.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.Dial(bg, srv.URL+protocol.WebSocketPath, &websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	third := rawClient(t, ws)
	_, f := third.read()
	wantCode(t, f, protocol.CodeTooManyConnections)
	wantClose(t, third, websocket.StatusTryAgainLater)

	// The open connections are untouched.
	wantType[*protocol.Authenticated](t, a.enroll(newDevice(t), ""))
	wantCode(t, b.do(&protocol.FetchBundle{Mailbox: protocol.NewMailboxID()}), protocol.CodeUnknownCapability)

	cfg.MaxConnections = 3
	if err := r.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	wantType[*protocol.Authenticated](t, dial(t, srv.URL).enroll(newDevice(t), ""))
}

// TestReloadEnrollment: after a reload to invite-only enrolment a device
// without a code is refused, on a new connection and on one opened before.
func TestReloadEnrollment(t *testing.T) {
	srv := relaytest.New(t, nil)
	r := srv.Relay()
	before := dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, dial(t, srv.URL).enroll(newDevice(t), ""))

	cfg := r.Config()
	cfg.Enrollment = relay.EnrollInvite
	if err := r.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	wantCode(t, dial(t, srv.URL).enroll(newDevice(t), ""), protocol.CodeEnrollmentRefused)
	wantCode(t, before.enroll(newDevice(t), ""), protocol.CodeEnrollmentRefused)
	codes, err := r.CreateInvites(bg, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wantType[*protocol.Authenticated](t, before.enroll(newDevice(t), codes[0]))
}

// TestReloadConfig: Config reports every reloadable setting Reload
// applied.
func TestReloadConfig(t *testing.T) {
	srv := relaytest.New(t, nil)
	r := srv.Relay()
	want := r.Config()
	if want.Enrollment != relay.EnrollOpen || want.MaxConnections != 10000 || want.FrameRate != protocol.RateFramesPerSecond || want.FrameBurst != protocol.RateBurst {
		t.Fatalf("Config before any reload: %+v; want the defaults filled in", want)
	}
	want.Enrollment = relay.EnrollInvite
	want.Retention = 3 * time.Hour
	want.MaxConnections = 7
	want.MaxBlobSize = 2 * protocol.BlobCipherChunkSize
	want.BlobQuota = 1 << 30
	want.BlobRetention = 4 * time.Hour
	want.PingInterval = -1
	want.PingTimeout = time.Minute
	want.ConnRatePerAddress = -1
	want.ConnBurstPerAddress = 3
	want.MaxConnsPerAddress = 4
	want.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	want.FrameRate = 5
	want.FrameBurst = 6
	if err := r.Reload(want); err != nil {
		t.Fatal(err)
	}
	if got := r.Config(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Config after Reload:\n%+v\nwant\n%+v", got, want)
	}
}

// TestReloadRefused: a Config that changes a field Reload cannot apply, or
// that New would refuse, is refused with ErrConfig and changes nothing.
func TestReloadRefused(t *testing.T) {
	srv := relaytest.New(t, nil)
	r := srv.Relay()
	orig := r.Config()
	for _, tt := range []struct {
		name   string
		change func(*relay.Config)
		want   string // in the error
	}{
		{"data directory", func(c *relay.Config) { c.DataDir = t.TempDir() }, "DataDir"},
		{"metrics", func(c *relay.Config) { c.Metrics = metrics.New() }, "Metrics"},
		{"write queue", func(c *relay.Config) { c.WriteQueue = 10 }, "WriteQueue"},
		{"max addresses", func(c *relay.Config) { c.MaxAddresses = 10 }, "MaxAddresses"},
		{"enrollment", func(c *relay.Config) { c.Enrollment = "sometimes" }, "enrollment"},
		{"frame rate", func(c *relay.Config) { c.FrameRate = -1 }, "frame rate"},
		{"frame burst", func(c *relay.Config) { c.FrameBurst = -1 }, "burst"},
		// A valid change alongside does not make it through either.
		{"data directory and enrollment", func(c *relay.Config) { c.DataDir = t.TempDir(); c.Enrollment = relay.EnrollInvite }, "DataDir"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := r.Config()
			tt.change(&c)
			err := r.Reload(c)
			if !errors.Is(err, relay.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Reload = %v, want ErrConfig naming %q", err, tt.want)
			}
			if got := r.Config(); !reflect.DeepEqual(got, orig) {
				t.Fatalf("configuration changed by a refused reload:\n%+v\nwant\n%+v", got, orig)
			}
		})
	}
	// The unchanged configuration reloads.
	if err := r.Reload(r.Config()); err != nil {
		t.Fatalf("Reload of the running configuration: %v", err)
	}
	wantType[*protocol.Authenticated](t, dial(t, srv.URL).enroll(newDevice(t), ""))
}

func newFrameRelay(t *testing.T, cfg relay.Config) (*relay.Relay, string) {
	t.Helper()
	cfg.DataDir, cfg.PurgeInterval = t.TempDir(), -1
	cfg.Store = relaytest.Store(t, cfg.DataDir)
	r, err := relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(r)
	t.Cleanup(func() { hs.Close(); r.Close() })
	return r, "ws" + strings.TrimPrefix(hs.URL, "http")
}

// TestFrameRateOptions: FrameBurst frames pass at once and the next is
// refused; a reload applies new values to new connections and to open ones.
func TestFrameRateOptions(t *testing.T) {
	for _, c := range []relay.Config{{DataDir: "x", FrameRate: -1}, {DataDir: "x", FrameBurst: -1}} {
		if err := c.Validate(); !errors.Is(err, relay.ErrConfig) {
			t.Errorf("Validate(FrameRate %d, FrameBurst %d) = %v, want ErrConfig", c.FrameRate, c.FrameBurst, err)
		}
	}
	clk := newClock() // frozen unless advanced: nothing refills by itself
	r, url := newFrameRelay(t, relay.Config{Now: clk.Now, FrameRate: 1, FrameBurst: 3})
	old := dial(t, url)
	rateLimit(t, old, 3+1)

	cfg := r.Config()
	cfg.FrameRate, cfg.FrameBurst = 1000, 6
	if err := r.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	rateLimit(t, dial(t, url), 6+1)
	// The open connection refills at the new rate up to the new burst: a
	// second at 1000/s fills it to 6 (the old burst was 3).
	clk.Advance(time.Second)
	rateLimit(t, old, 6+1)
}

// TestReloadPerAddress: reloaded per-address limits apply to the next
// connection, and so does a reloaded list of trusted proxies.
func TestReloadPerAddress(t *testing.T) {
	r, url := newLimitRelay(t, relay.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const client = "192.0.2.10"
	first, status, _, err := limitsDial(ctx, url, client)
	if err != nil || status != http.StatusSwitchingProtocols {
		t.Fatalf("first connection: %d, %v", status, err)
	}
	defer first.CloseNow()

	cfg := r.Config()
	cfg.MaxConnsPerAddress = 1
	if err := r.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if _, status, code, err := limitsDial(ctx, url, client); err != nil || status != http.StatusTooManyRequests || code != int(protocol.CodeTooManyConnections) {
		t.Fatalf("second connection from %s: status %d code %d err %v; want 429 and CodeTooManyConnections", client, status, code, err)
	}
	limitsChallenge(t, ctx, first) // the open one still works

	// Without trusted proxies the header is ignored: the peer is loopback,
	// which has no per-address limit.
	cfg.TrustedProxies = nil
	if err := r.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	ws, status, _, err := limitsDial(ctx, url, client)
	if err != nil || status != http.StatusSwitchingProtocols {
		t.Fatalf("after dropping the trusted proxy: status %d, %v", status, err)
	}
	ws.CloseNow()
}
