// Package metrics is the relay's Prometheus instrumentation: counters,
// gauges and a histogram the relay updates as it works, and a collector
// that reads the store's totals when scraped.
//
//	m := metrics.New()
//	r, err := relay.New(relay.Config{DataDir: dir, Store: st, Metrics: m})
//	http.ListenAndServe("127.0.0.1:9178", m.Handler())
//
// docs/METRICS.md lists every series.
//
// # Security
//
// Metrics describe the relay, never its users. No series has a label that
// holds a mailbox, device, envelope or blob ID, an account label, a
// capability, an address or content: the labels are the refusal code (a
// fixed, bounded set, protocol.Code), a device state (active, suspended,
// revoked) and the build (version, commit, Go version). Counts are
// relay-wide. Serve the handler
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
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/postern/postern/internal/buildinfo"
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
	blobRefusals    *prometheus.CounterVec
	latency         prometheus.Histogram
	commitLatency   prometheus.Histogram
	reloadOK        prometheus.Gauge
	reloadTime      prometheus.Gauge

	// Set by SetCertExpiry: seconds since the epoch, 0 for none (then the
	// series is absent rather than 0, which would read as expired).
	certExpiry atomic.Int64
	blobDir    atomic.Pointer[blobDir]
	dataDir    atomic.Pointer[string]
	ready      atomic.Pointer[func() error]

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
	st  store.Store
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
		Help: "Error frames sent on WebSocket connections, by protocol error code (SPEC.md lists the codes)."},
		[]string{"code"})
	m.blobRefusals = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "blob_refusals_total",
		Help: "Blob HTTP requests refused (a Postern-Error header), by protocol error code."},
		[]string{"code"})
	m.blobUpload = counter("blob_upload_bytes_total", "Blob ciphertext bytes received and written to blob files.")
	m.blobDownload = counter("blob_download_bytes_total", "Blob ciphertext bytes read from blob files for downloads.")
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "delivery_latency_seconds",
		Help: "Time from an envelope's durable commit to its Deliver frame being queued, for envelopes whose mailbox had a subscriber when they were committed (first delivery only).",
		// 100 µs to about 52 s: a live push is a few milliseconds; a slow
		// consumer's full window shows up in the upper buckets.
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 20),
	})
	m.commitLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "store_commit_seconds",
		Help: "Time one store commit takes (a write transaction and its fsync; one commit carries every write queued meanwhile).",
		// 50 µs to about 26 s: an fsync on an SSD is well under a
		// millisecond; a struggling disk fills the upper buckets.
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 20),
	})
	m.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "config_last_reload_successful",
		Help: "1 if the last configuration load (at start or on SIGHUP) was applied, 0 if it was refused."})
	m.reloadTime = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "config_last_reload_success_timestamp_seconds",
		Help: "When the configuration was last applied (at start or on SIGHUP), in seconds since the epoch."})
	bi := buildinfo.Read()
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "build_info",
		Help: "Always 1; the labels say which build runs."}, []string{"version", "commit", "goversion"})
	build.WithLabelValues(bi.Version, bi.ShortCommit(), bi.GoVersion).Set(1)
	m.reg.MustRegister(
		m.connections, m.connectionsOpen, m.sends, m.deliveries, m.acks,
		m.expiries, m.blobExpiries, m.rateLimited, m.refusals,
		m.blobUpload, m.blobDownload, m.blobRefusals, m.latency, m.commitLatency,
		m.reloadOK, m.reloadTime, build,
		storeCollector{m}, hostCollector{m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Every code the relay can send exists from the start, at zero, so
	// that a rate() over a code does not begin with a gap.
	for c := range protocol.Code(100) {
		if name := c.String(); name != "code "+strconv.Itoa(int(c)) {
			m.refusals.WithLabelValues(strconv.Itoa(int(c)))
			m.blobRefusals.WithLabelValues(strconv.Itoa(int(c)))
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
	m.st.Store(&statsSource{r: sr, st: st, now: now})
	if co, ok := st.(commitObservable); ok {
		co.ObserveCommits(m.CommitObserved)
	}
}

// commitObservable is a store that reports the duration of each commit
// (bboltstore).
type commitObservable interface {
	ObserveCommits(fn func(time.Duration))
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
	m.refusals.WithLabelValues(strconv.Itoa(int(code))).Inc()
}

// BlobRefused counts a blob HTTP request refused with code.
func (m *Metrics) BlobRefused(code protocol.Code) {
	if m == nil {
		return
	}
	m.blobRefusals.WithLabelValues(strconv.Itoa(int(code))).Inc()
}

// CommitObserved records the duration of one store commit.
func (m *Metrics) CommitObserved(d time.Duration) {
	if m == nil {
		return
	}
	m.commitLatency.Observe(max(d, 0).Seconds())
}

// ConfigLoaded records a configuration load: at start (ok) and on each
// reload, applied or refused.
func (m *Metrics) ConfigLoaded(ok bool, at time.Time) {
	if m == nil {
		return
	}
	if !ok {
		m.reloadOK.Set(0)
		return
	}
	m.reloadOK.Set(1)
	m.reloadTime.Set(float64(at.Unix()))
}

// SetCertExpiry records when the TLS certificate served to new
// connections expires (its NotAfter); the zero time removes the series
// (no certificate files: plain HTTP behind a proxy, or ACME, which renews
// by itself).
func (m *Metrics) SetCertExpiry(notAfter time.Time) {
	if m == nil {
		return
	}
	if notAfter.IsZero() {
		m.certExpiry.Store(0)
		return
	}
	m.certExpiry.Store(notAfter.Unix())
}

// WatchReady makes scrapes report ready (1 when it returns nil, else 0):
// the relay's Ready, the check /readyz answers with. nil stops it.
func (m *Metrics) WatchReady(ready func() error) {
	if m == nil {
		return
	}
	if ready == nil {
		m.ready.Store(nil)
		return
	}
	m.ready.Store(&ready)
}

// WatchFilesystem makes scrapes report the free and total bytes of the
// file system holding dir (the relay's DataDir), where the platform can
// tell (Linux, macOS, FreeBSD). "" stops it.
func (m *Metrics) WatchFilesystem(dir string) {
	if m == nil {
		return
	}
	if dir == "" {
		m.dataDir.Store(nil)
		return
	}
	m.dataDir.Store(&dir)
}

// WatchBlobDir makes scrapes report the bytes of the blob files in dir
// (the relay's DataDir/blobs). "" stops it.
func (m *Metrics) WatchBlobDir(dir string) {
	if m == nil {
		return
	}
	if dir == "" {
		m.blobDir.Store(nil)
		return
	}
	m.blobDir.Store(&blobDir{path: dir})
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
	devicesDesc = prometheus.NewDesc(Namespace+"_devices",
		"Enrolled devices, by state: active, suspended or revoked.", []string{"state"}, nil)
	accountsDesc = prometheus.NewDesc(Namespace+"_accounts",
		"Account labels with a device or an unused invite code.", nil, nil)
)

func (storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queuedDesc
	ch <- oldestDesc
	ch <- sizeDesc
	ch <- devicesDesc
	ch <- accountsDesc
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

	devs, err := src.st.Devices(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(devicesDesc, err)
		return
	}
	var active, suspended, revoked int
	for _, d := range devs {
		switch {
		case d.Revoked:
			revoked++
		case d.Suspended:
			suspended++
		default:
			active++
		}
	}
	ch <- prometheus.MustNewConstMetric(devicesDesc, prometheus.GaugeValue, float64(active), "active")
	ch <- prometheus.MustNewConstMetric(devicesDesc, prometheus.GaugeValue, float64(suspended), "suspended")
	ch <- prometheus.MustNewConstMetric(devicesDesc, prometheus.GaugeValue, float64(revoked), "revoked")
	accts, err := src.st.Accounts(ctx, src.now())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(accountsDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(accountsDesc, prometheus.GaugeValue, float64(len(accts)))
}

// hostCollector reports what lives outside the store: the blob files'
// bytes and the TLS certificate's expiry.
type hostCollector struct{ m *Metrics }

var (
	blobBytesDesc = prometheus.NewDesc(Namespace+"_blob_bytes",
		"Bytes of the blob files on disk (finished and unfinished uploads); read at most every 30 seconds.", nil, nil)
	certExpiryDesc = prometheus.NewDesc(Namespace+"_tls_certificate_expiry_timestamp_seconds",
		"When the TLS certificate from --tls-cert expires (its NotAfter), in seconds since the epoch.", nil, nil)
	readyDesc = prometheus.NewDesc(Namespace+"_ready",
		"1 when the relay is ready (as /readyz: not shutting down, and the store commits a small write within 2 s), else 0.", nil, nil)
	fsFreeDesc = prometheus.NewDesc(Namespace+"_data_filesystem_free_bytes",
		"Bytes available to the relay on the file system of its data directory.", nil, nil)
	fsSizeDesc = prometheus.NewDesc(Namespace+"_data_filesystem_size_bytes",
		"Size of the file system of the relay's data directory.", nil, nil)
)

func (hostCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- blobBytesDesc
	ch <- certExpiryDesc
	ch <- readyDesc
	ch <- fsFreeDesc
	ch <- fsSizeDesc
}

func (c hostCollector) Collect(ch chan<- prometheus.Metric) {
	if r := c.m.ready.Load(); r != nil {
		v := 1.0
		if (*r)() != nil {
			v = 0
		}
		ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, v)
	}
	if dir := c.m.dataDir.Load(); dir != nil {
		if free, size, err := filesystemSpace(*dir); err == nil {
			ch <- prometheus.MustNewConstMetric(fsFreeDesc, prometheus.GaugeValue, float64(free))
			ch <- prometheus.MustNewConstMetric(fsSizeDesc, prometheus.GaugeValue, float64(size))
		}
	}
	if t := c.m.certExpiry.Load(); t != 0 {
		ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, float64(t))
	}
	if d := c.m.blobDir.Load(); d != nil {
		n, err := d.bytes(c.m.now())
		if err != nil {
			ch <- prometheus.NewInvalidMetric(blobBytesDesc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(blobBytesDesc, prometheus.GaugeValue, float64(n))
	}
}

// blobDirTTL is how long a sum of the blob files' sizes is reused: one
// stat per blob file is cheap, but not on every scrape of a busy
// Prometheus.
const blobDirTTL = 30 * time.Second

// blobDir sums the sizes of the files in a directory, cached.
type blobDir struct {
	path string

	mu   sync.Mutex
	at   time.Time
	size int64
}

func (d *blobDir) bytes(now time.Time) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.at.IsZero() && now.Sub(d.at) < blobDirTTL && now.After(d.at) {
		return d.size, nil
	}
	entries, err := os.ReadDir(d.path)
	if os.IsNotExist(err) {
		entries, err = nil, nil // no blob yet
	}
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err == nil { // gone since the listing: not counted
			n += fi.Size()
		}
	}
	d.at, d.size = now, n
	return n, nil
}

// BlobResponses wraps the writer of a blob HTTP request so that a refusal
// (a response with the Postern-Error header) is counted by BlobRefused.
// On a nil *Metrics it returns w itself.
func (m *Metrics) BlobResponses(w http.ResponseWriter) http.ResponseWriter {
	if m == nil {
		return w
	}
	return &blobResponse{ResponseWriter: w, m: m}
}

type blobResponse struct {
	http.ResponseWriter
	m       *Metrics
	written bool
}

func (b *blobResponse) WriteHeader(status int) {
	if !b.written {
		b.written = true
		if v := b.Header().Get(protocol.HTTPHeaderError); v != "" {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 && n < 100 {
				b.m.BlobRefused(protocol.Code(n))
			}
		}
	}
	b.ResponseWriter.WriteHeader(status)
}

func (b *blobResponse) Write(p []byte) (int, error) {
	b.written = true // an implicit 200
	return b.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection (deadlines,
// flushes) through the wrapper.
func (b *blobResponse) Unwrap() http.ResponseWriter { return b.ResponseWriter }
