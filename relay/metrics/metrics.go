// Package metrics is the relay's Prometheus instrumentation: counters,
// gauges and a histogram the relay updates as it works, and a collector
// that reads the store's totals when scraped.
//
//	m := metrics.New()
//	r, err := relay.New(relay.Config{DataDir: dir, Metrics: m})
//	http.ListenAndServe("127.0.0.1:9178", m.Handler())
//
// docs/METRICS.md lists every series.
//
// # Security
//
// Metrics describe the relay, never its users. No series has a label that
// holds a mailbox, device, envelope or blob ID, a capability, an address
// or content: the only label is the refusal code, a fixed, bounded set
// (protocol.Code and its name). Counts are relay-wide. Serve the handler
// on a loopback or otherwise private listener: the totals are operational
// data, not for the public.
//
// # Cost
//
// Every method is safe on a nil *Metrics and does nothing, so a relay
// without metrics pays one nil check per event. All methods are safe for
// concurrent use.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// Namespace prefixes every series this package defines.
const Namespace = "postern_relay"

// latencyHorizon bounds how long the commit time of an envelope is kept
// for the delivery latency histogram; maxPending bounds how many are kept.
// Together they cap the memory the histogram can take (about 3 MB) whatever
// subscribers do.
const (
	latencyHorizon = 5 * time.Minute
	maxPending     = 1 << 16
)

// scrapeTimeout bounds the store read on a scrape.
const scrapeTimeout = 10 * time.Second

// Metrics holds the relay's collectors and the registry they are
// registered in. Create it with New; a nil *Metrics records nothing.
type Metrics struct {
	reg *prometheus.Registry

	connections     prometheus.Gauge
	connectionsOpen prometheus.Counter
	sends           prometheus.Counter
	deliveries      prometheus.Counter
	acks            prometheus.Counter
	expiries        prometheus.Counter
	blobExpiries    prometheus.Counter
	rateLimited     prometheus.Counter
	refusals        *prometheus.CounterVec
	blobUpload      prometheus.Counter
	blobDownload    prometheus.Counter
	latency         prometheus.Histogram

	// Envelopes committed while their mailbox had a subscriber, by ID,
	// with their commit time: the start of a delivery latency sample.
	pendingMu sync.Mutex
	pending   map[protocol.EnvelopeID]time.Time
	npending  atomic.Int64
	now       func() time.Time

	st atomic.Pointer[statsSource]
}

type statsSource struct {
	r   store.StatsReader
	now func() time.Time
}

// New returns Metrics registered in a fresh registry, with the Go runtime
// and process collectors alongside.
func New() *Metrics {
	m := &Metrics{
		reg:     prometheus.NewRegistry(),
		pending: map[protocol.EnvelopeID]time.Time{},
		now:     time.Now,
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
	}
	m.connections = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "connections",
		Help: "Open WebSocket connections."})
	m.connectionsOpen = counter("connections_opened_total", "WebSocket connections accepted (not counting those refused at the connection limit or during shutdown).")
	m.sends = counter("sends_total", "Envelopes accepted: stored durably and answered Sent.")
	m.deliveries = counter("deliveries_total", "Deliver frames queued to subscribers (an envelope delivered again after a reconnect counts again).")
	m.acks = counter("acks_total", "Envelopes deleted by an acknowledgement.")
	m.expiries = counter("expiries_total", "Envelopes deleted by the retention purge, unacknowledged.")
	m.blobExpiries = counter("blob_expiries_total", "Blobs deleted by the blob retention purge.")
	m.rateLimited = counter("rate_limited_total", "Requests refused or slowed by a rate limit: frames over the connection's rate, bundle fetches over the capability's, failed authentications on probation.")
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "refusals_total",
		Help: "Error frames sent, by protocol error code (code: the number; name: its fixed name)."},
		[]string{"code", "name"})
	m.blobUpload = counter("blob_upload_bytes_total", "Blob ciphertext bytes received and written to blob files.")
	m.blobDownload = counter("blob_download_bytes_total", "Blob ciphertext bytes read from blob files for downloads.")
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "delivery_latency_seconds",
		Help: "Time from an envelope's durable commit to its Deliver frame being queued, for envelopes whose mailbox had a subscriber when they were committed (first delivery only).",
		// 100 µs to about 52 s: a live push is a few milliseconds; a slow
		// consumer's full window shows up in the upper buckets.
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 20),
	})
	m.reg.MustRegister(
		m.connections, m.connectionsOpen, m.sends, m.deliveries, m.acks,
		m.expiries, m.blobExpiries, m.rateLimited, m.refusals,
		m.blobUpload, m.blobDownload, m.latency,
		storeCollector{m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Every code the relay can send exists from the start, at zero, so
	// that a rate() over a code does not begin with a gap.
	for c := range protocol.Code(100) {
		if name := c.String(); name != "code "+strconv.Itoa(int(c)) {
			m.refusals.WithLabelValues(strconv.Itoa(int(c)), name)
		}
	}
	return m
}

// Registry returns the registry the relay's collectors are registered in,
// to add collectors or to gather in tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		// A failing store read drops the store series and keeps the rest.
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             scrapeTimeout + time.Second,
	})
}

// WatchStore makes scrapes read the queue and size series from st, if it
// implements store.StatsReader (else those series are absent), with now
// the clock the age of the oldest envelope is measured by (nil means
// time.Now). The relay calls it from New; a later call replaces the
// earlier one (a relay restarted on the same Metrics).
func (m *Metrics) WatchStore(st store.Store, now func() time.Time) {
	if m == nil {
		return
	}
	sr, ok := st.(store.StatsReader)
	if !ok {
		m.st.Store(nil)
		return
	}
	if now == nil {
		now = time.Now
	}
	m.st.Store(&statsSource{r: sr, now: now})
}

// ConnOpened counts an accepted WebSocket connection.
func (m *Metrics) ConnOpened() {
	if m == nil {
		return
	}
	m.connections.Inc()
	m.connectionsOpen.Inc()
}

// ConnClosed counts the end of a connection ConnOpened counted.
func (m *Metrics) ConnClosed() {
	if m == nil {
		return
	}
	m.connections.Dec()
}

// Sent counts an accepted envelope. subscribed tells whether its mailbox
// had a subscriber when it was committed: then its commit time is kept
// (by envelope ID, in memory only, for at most five minutes) to time its
// delivery.
func (m *Metrics) Sent(id protocol.EnvelopeID, subscribed bool) {
	if m == nil {
		return
	}
	m.sends.Inc()
	if !subscribed {
		return
	}
	now := m.now()
	m.pendingMu.Lock()
	defer m.pendingMu.Unlock()
	if len(m.pending) >= maxPending {
		for k, t := range m.pending {
			if now.Sub(t) > latencyHorizon {
				delete(m.pending, k)
			}
		}
		if len(m.pending) >= maxPending {
			m.npending.Store(int64(len(m.pending)))
			return // no sample for this one
		}
	}
	m.pending[id] = now
	m.npending.Store(int64(len(m.pending)))
}

// Delivered counts a Deliver frame queued and, for the first delivery of an
// envelope Sent kept the commit time of, records the delivery latency.
func (m *Metrics) Delivered(id protocol.EnvelopeID) {
	if m == nil {
		return
	}
	m.deliveries.Inc()
	if m.npending.Load() == 0 {
		return
	}
	m.pendingMu.Lock()
	t, ok := m.pending[id]
	if ok {
		delete(m.pending, id)
		m.npending.Store(int64(len(m.pending)))
	}
	m.pendingMu.Unlock()
	if !ok {
		return
	}
	if d := m.now().Sub(t); d <= latencyHorizon {
		m.latency.Observe(max(d, 0).Seconds())
	}
}

// Acked counts envelopes deleted by an acknowledgement.
func (m *Metrics) Acked(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.acks.Add(float64(n))
}

// Expired counts envelopes deleted by the retention purge.
func (m *Metrics) Expired(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.expiries.Add(float64(n))
}

// BlobsExpired counts blobs deleted by the blob purge.
func (m *Metrics) BlobsExpired(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.blobExpiries.Add(float64(n))
}

// Refused counts an Error frame sent with code.
func (m *Metrics) Refused(code protocol.Code) {
	if m == nil {
		return
	}
	m.refusals.WithLabelValues(strconv.Itoa(int(code)), code.String()).Inc()
}

// RateLimited counts a frame refused by the rate limit (it is also counted
// by Refused with protocol.CodeRateLimited).
func (m *Metrics) RateLimited() {
	if m == nil {
		return
	}
	m.rateLimited.Inc()
}

// BlobUploaded counts blob bytes written to a blob file.
func (m *Metrics) BlobUploaded(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.blobUpload.Add(float64(n))
}

// BlobDownloaded counts blob bytes read for a download.
func (m *Metrics) BlobDownloaded(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.blobDownload.Add(float64(n))
}

// storeCollector reads the store's totals at scrape time.
type storeCollector struct{ m *Metrics }

var (
	queuedDesc = prometheus.NewDesc(Namespace+"_queued_envelopes",
		"Envelopes stored and not yet acknowledged or purged.", nil, nil)
	oldestDesc = prometheus.NewDesc(Namespace+"_oldest_queued_envelope_age_seconds",
		"Age of the oldest queued envelope, from its received time (coarse: truncated to the hour); 0 when none is queued.", nil, nil)
	sizeDesc = prometheus.NewDesc(Namespace+"_store_size_bytes",
		"Size of the store file on disk (blob files not included).", nil, nil)
)

func (storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queuedDesc
	ch <- oldestDesc
	ch <- sizeDesc
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.m.st.Load()
	if src == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	st, err := src.r.Stats(ctx)
	if err != nil {
		// A closed or failing store: the series are absent, which alerts
		// on absent() catch; the error is the relay's to log.
		ch <- prometheus.NewInvalidMetric(queuedDesc, err)
		return
	}
	age := 0.0
	if !st.OldestReceived.IsZero() {
		age = max(src.now().Sub(st.OldestReceived).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(st.Envelopes))
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
	ch <- prometheus.MustNewConstMetric(sizeDesc, prometheus.GaugeValue, float64(st.Bytes))
}
