package relay_test

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/metrics"
	"github.com/postern/postern/relay/relaytest"
)

// TestMetrics drives a relay through enrol, send, delivery, ack, refusals,
// the rate limit, a blob and a purge, scrapes it, and checks every listed
// series and that no label names a user or an address.
func TestMetrics(t *testing.T) {
	m := metrics.New()
	clk := newClock() // 10:30: an envelope received now is 30 minutes old (received times are truncated to the hour)
	srv := relaytest.New(t, &relaytest.Options{Metrics: m, Now: clk.Now})

	c, d, mb, tok := owner(t, srv.URL)
	wantType[*protocol.OK](t, c.do(&protocol.Subscribe{Mailbox: mb}))
	wantType[*protocol.Drained](t, c.push()) // the subscription is live

	sender := dial(t, srv.URL)
	sent1 := wantType[*protocol.Sent](t, sender.send(mb, tok, sealed(1)))
	nextDeliver(t, c, sent1.Envelope)
	wantType[*protocol.OK](t, c.do(&protocol.Ack{Mailbox: mb, IDs: []protocol.EnvelopeID{sent1.Envelope}}))
	sent2 := wantType[*protocol.Sent](t, sender.send(mb, tok, sealed(2))) // stays queued
	nextDeliver(t, c, sent2.Envelope)
	wrongTok := protocol.NewCapabilityToken()
	wantCode(t, sender.send(mb, wrongTok, sealed(3)), protocol.CodeUnknownCapability)

	// The clock does not move, so the bucket does not refill: the frame
	// after RateBurst is refused.
	rateLimit(t, dial(t, srv.URL), protocol.RateBurst+1)

	bc := blobDevice(t, srv)
	blob := createBlob(t, bc, chunk)
	wantHTTP(t, put(t, srv, blob, 0, randomBytes(chunk)), http.StatusNoContent, 0)
	if resp, body := download(t, srv, blob.Blob); resp.StatusCode != http.StatusOK || len(body) != chunk {
		t.Fatalf("download: status %d, %d bytes", resp.StatusCode, len(body))
	}

	// A blob request refused: counted by its code.
	var unknown protocol.BlobID
	rand.Read(unknown[:])
	if resp, _ := download(t, srv, unknown); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("download of an unknown blob: status %d", resp.StatusCode)
	}
	if _, err := srv.Relay().CreateAccountInvites(bg, 1, time.Hour, "dr.metrics"); err != nil {
		t.Fatal(err)
	}

	fams := gather(t, m)
	want := map[string]float64{
		"postern_relay_connections":                        4, // owner, sender, rate-limited, blob device
		"postern_relay_connections_opened_total":           4,
		"postern_relay_sends_total":                        2,
		"postern_relay_deliveries_total":                   2,
		"postern_relay_acks_total":                         1,
		"postern_relay_expiries_total":                     0,
		"postern_relay_blob_expiries_total":                0,
		"postern_relay_rate_limited_total":                 1,
		"postern_relay_queued_envelopes":                   1,
		"postern_relay_oldest_queued_envelope_age_seconds": 1800,
		"postern_relay_blob_upload_bytes_total":            chunk,
		"postern_relay_blob_download_bytes_total":          chunk,
		"postern_relay_delivery_latency_seconds":           2, // samples
	}
	for name, v := range want {
		if got := value(t, fams, name); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	if got := value(t, fams, "postern_relay_store_size_bytes"); got <= 0 {
		t.Errorf("postern_relay_store_size_bytes = %v, want > 0", got)
	}
	if got := value(t, fams, "postern_relay_store_commit_seconds"); got < 3 {
		t.Errorf("postern_relay_store_commit_seconds has %v samples, want one per write at least (enrolments, sends, an ack)", got)
	}
	for code, n := range map[protocol.Code]float64{
		protocol.CodeUnknownBlob: 1,
		protocol.CodeBlobToken:   0, // present before it happens
	} {
		if got := labelled(t, fams, "postern_relay_blob_refusals_total", "code", strconv.Itoa(int(code))); got != n {
			t.Errorf("blob_refusals{code=%d} = %v, want %v", code, got, n)
		}
	}
	devs, err := srv.Relay().Store().Devices(bg)
	if err != nil || len(devs) < 2 {
		t.Fatalf("devices: %d, %v", len(devs), err)
	}
	for state, n := range map[string]float64{"active": float64(len(devs)), "suspended": 0, "revoked": 0} {
		if got := labelled(t, fams, "postern_relay_devices", "state", state); got != n {
			t.Errorf("devices{state=%s} = %v, want %v", state, got, n)
		}
	}
	if got := value(t, fams, "postern_relay_accounts"); got != 1 {
		t.Errorf("accounts = %v, want 1", got)
	}
	if got := value(t, fams, "postern_relay_build_info"); got != 1 {
		t.Errorf("build_info = %v, want 1", got)
	}
	for code, n := range map[protocol.Code]float64{
		protocol.CodeUnknownCapability: 1,
		protocol.CodeRateLimited:       1,
		protocol.CodeAuthRequired:      protocol.RateBurst,
		protocol.CodeQueueFull:         0, // present before it happens
	} {
		if got := refusals(t, fams, code); got != n {
			t.Errorf("refusals{code=%d} = %v, want %v", code, got, n)
		}
	}

	// Past every retention: the queued envelope and the blob are purged.
	clk.Advance(protocol.DefaultBlobRetention + protocol.DefaultRetention)
	if n, err := srv.Relay().PurgeExpired(bg); err != nil || n != 1 {
		t.Fatalf("PurgeExpired = %d, %v", n, err)
	}
	if n, err := srv.Relay().PurgeExpiredBlobs(bg); err != nil || n != 1 {
		t.Fatalf("PurgeExpiredBlobs = %d, %v", n, err)
	}
	fams = gather(t, m)
	for name, v := range map[string]float64{
		"postern_relay_expiries_total":                     1,
		"postern_relay_blob_expiries_total":                1,
		"postern_relay_queued_envelopes":                   0,
		"postern_relay_oldest_queued_envelope_age_seconds": 0,
	} {
		if got := value(t, fams, name); got != v {
			t.Errorf("after purge: %s = %v, want %v", name, got, v)
		}
	}

	// Suspended and revoked devices are counted apart.
	dev := deviceID(d)
	if err := srv.Relay().SuspendDevice(bg, dev); err != nil {
		t.Fatal(err)
	}
	fams = gather(t, m)
	if got := labelled(t, fams, "postern_relay_devices", "state", "suspended"); got != 1 {
		t.Errorf("devices{state=suspended} = %v after a suspension, want 1", got)
	}

	// No label holds an ID, a token, an account label or an address.
	secrets := []string{
		hex.EncodeToString(mb[:]), hex.EncodeToString(mb[:4]),
		hex.EncodeToString(dev[:]), dev.Short(),
		hex.EncodeToString(sent1.Envelope[:]), hex.EncodeToString(sent2.Envelope[:]),
		hex.EncodeToString(tok.SecretBytes()), hex.EncodeToString(wrongTok.SecretBytes()),
		blob.Blob.String(), hex.EncodeToString(blob.Token[:]),
		srv.Addr, "127.0.0.1", "dr.metrics",
	}
	checkLabels(t, fams, secrets)

	// The HTTP handler serves the same, in the text format.
	hs := httptest.NewServer(m.Handler())
	defer hs.Close()
	resp, err := http.Get(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d: %s", resp.StatusCode, body)
	}
	for name := range want {
		if !strings.Contains(string(body), "\n"+name) {
			t.Errorf("scrape lacks %s", name)
		}
	}
	for _, s := range secrets {
		if strings.Contains(string(body), s) {
			t.Errorf("scrape contains %q", s)
		}
	}

	// A closed relay's store is not read; the rest is still served.
	srv.Close()
	resp, err = http.Get(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), "\npostern_relay_queued_envelopes ") ||
		!strings.Contains(string(body), "\npostern_relay_connections 0") {
		t.Errorf("scrape after close: status %d, body:\n%s", resp.StatusCode, body)
	}
}

// TestMetricsNil: a relay without metrics works (every hook is a nil check).
func TestMetricsNil(t *testing.T) {
	var m *metrics.Metrics
	m.ConnOpened()
	m.Sent(protocol.NewEnvelopeID(), true)
	m.Delivered(protocol.NewEnvelopeID())
	m.Refused(protocol.CodeInternal)
	m.WatchStore(nil, nil)
}

// nextDeliver reads pushes until the Deliver of id.
func nextDeliver(t *testing.T, c *client, id protocol.EnvelopeID) {
	t.Helper()
	for range 10 {
		if d, ok := c.push().(*protocol.Deliver); ok {
			if d.ID != id {
				t.Fatalf("Deliver %s, want %s", d.ID.Short(), id.Short())
			}
			return
		}
	}
	t.Fatal("no Deliver")
}

// rateLimit pipelines n frames on c and checks that only the last is
// refused with CodeRateLimited.
func rateLimit(t *testing.T, c *client, n int) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			b, _ := protocol.Marshal(uint32(i+1), &protocol.GetPrekeyStatus{})
			if err := c.ws.Write(bg, websocket.MessageBinary, b); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	limited := 0
	for range n {
		_, f := c.read()
		if e, ok := f.(*protocol.ErrorFrame); ok && e.Code == protocol.CodeRateLimited {
			limited++
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if limited != 1 {
		t.Fatalf("%d frames rate-limited, want 1", limited)
	}
}

// labelled is the value of the series of name whose label is value.
func labelled(t *testing.T, fams map[string]*dto.MetricFamily, name, label, value string) float64 {
	t.Helper()
	for _, mt := range fams[name].GetMetric() {
		for _, l := range mt.Label {
			if l.GetName() == label && l.GetValue() == value {
				if mt.Counter != nil {
					return mt.Counter.GetValue()
				}
				return mt.Gauge.GetValue()
			}
		}
	}
	t.Fatalf("no series %s{%s=%q}", name, label, value)
	return 0
}

func gather(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// value is the single series' value; for a histogram, its sample count.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil || len(f.Metric) != 1 {
		t.Fatalf("series %s missing or not single", name)
	}
	switch mt := f.Metric[0]; {
	case mt.Counter != nil:
		return mt.Counter.GetValue()
	case mt.Gauge != nil:
		return mt.Gauge.GetValue()
	case mt.Histogram != nil:
		if c := mt.Histogram.GetSampleCount(); c > 0 && mt.Histogram.GetSampleSum() <= 0 {
			t.Errorf("%s: %d samples summing to %v", name, c, mt.Histogram.GetSampleSum())
		}
		return float64(mt.Histogram.GetSampleCount())
	}
	t.Fatalf("series %s of type %v", name, f.GetType())
	return 0
}

func refusals(t *testing.T, fams map[string]*dto.MetricFamily, code protocol.Code) float64 {
	t.Helper()
	f := fams["postern_relay_refusals_total"]
	if f == nil {
		t.Fatal("postern_relay_refusals_total missing")
	}
	for _, mt := range f.Metric {
		labels := map[string]string{}
		for _, l := range mt.Label {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["code"] == strconv.Itoa(int(code)) {
			if len(labels) != 1 {
				t.Errorf("code %d has labels %v, want code only", code, labels)
			}
			return mt.Counter.GetValue()
		}
	}
	t.Fatalf("no refusals series for code %d", code)
	return 0
}

var hexRun = regexp.MustCompile(`[0-9a-fA-F]{16,}`)

// allowedLabels are the labels of ours other than code, by series: a
// bounded set each, never about a user.
var allowedLabels = map[string]bool{
	metrics.Namespace + "_devices state":        true,
	metrics.Namespace + "_build_info version":   true,
	metrics.Namespace + "_build_info commit":    true,
	metrics.Namespace + "_build_info goversion": true,
}

// checkLabels fails on any label value of any series (ours, Go's and the
// process's) that looks like an ID (16+ hex digits), is or holds an IP
// address, or contains one of the given strings; and on any label name of
// ours other than code and those in allowedLabels.
func checkLabels(t *testing.T, fams map[string]*dto.MetricFamily, secrets []string) {
	t.Helper()
	for name, f := range fams {
		for _, mt := range f.Metric {
			for _, l := range mt.Label {
				v := l.GetValue()
				if strings.HasPrefix(name, metrics.Namespace+"_") && !allowedLabels[name+" "+l.GetName()] && l.GetName() != "code" {
					t.Errorf("%s has label %s=%q", name, l.GetName(), v)
				}
				if hexRun.MatchString(v) {
					t.Errorf("%s{%s=%q}: a hex ID", name, l.GetName(), v)
				}
				host := v
				if h, _, err := net.SplitHostPort(v); err == nil {
					host = h
				}
				if net.ParseIP(host) != nil {
					t.Errorf("%s{%s=%q}: an IP address", name, l.GetName(), v)
				}
				for _, s := range secrets {
					if strings.Contains(v, s) {
						t.Errorf("%s{%s=%q} contains %q", name, l.GetName(), v, s)
					}
				}
			}
		}
	}
}
