package relay

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/audit"
	"github.com/postern/postern/relay/metrics"
	"github.com/postern/postern/relay/store"
)

// Enrollment policies.
const (
	// EnrollOpen lets any device enrol.
	EnrollOpen = "open"
	// EnrollInvite requires an unused, unexpired invite code per device.
	EnrollInvite = "invite"
)

// DefaultMaxConnections is Config.MaxConnections' default.
const DefaultMaxConnections = 10000

// Config configures a Relay. The zero value of every field but DataDir
// means its default. Relay.Reload can change the enrolment policy,
// retention, limits, keep-alive and frame-rate settings of a running relay
// (see Reload for the list); the other fields are fixed.
type Config struct {
	// DataDir holds the blob files (blobs/), the audit log, the log key
	// and the admin socket (and, for cmd/postern-relay, the bbolt store,
	// DBFile). Without it the relay refuses blobs.
	DataDir string
	// Store is the relay's storage; required by New. The relay reaches it
	// only through store.Store and the optional interfaces it checks for
	// (store.KTStore for device lists and the transparency log; backups, snapshots, ping), so that any backend
	// serves; cmd/postern-relay opens relay/store/bboltstore. The relay
	// closes it on Close.
	Store store.Store
	// Logger receives connection and error logs. Nil means discard.
	Logger *slog.Logger
	// Enrollment is EnrollOpen or EnrollInvite. Empty means EnrollOpen.
	Enrollment string
	// Retention is how long an unacknowledged envelope is kept. Zero means
	// protocol.DefaultRetention; negative is an error.
	Retention time.Duration
	// MaxConnections bounds concurrent WebSocket connections; more are
	// refused with CodeTooManyConnections. Zero means
	// DefaultMaxConnections.
	MaxConnections int
	// Now is the clock (challenges, received times, expiry, invites, rate
	// limits). Nil means time.Now.
	Now func() time.Time
	// AuthTimeout closes an unauthenticated connection that sends no frame
	// for this long. Zero means protocol.AuthTimeout.
	AuthTimeout time.Duration
	// PurgeInterval is how often expired envelopes are purged. Zero means
	// one minute; negative disables the loop (call PurgeExpired).
	PurgeInterval time.Duration
	// PurgeBatch bounds the envelopes deleted per purge transaction. Zero
	// means 1000.
	PurgeBatch int
	// WriteQueue is the per-connection queue of outgoing frames. Zero
	// means 2*protocol.MaxInflight + 64.
	WriteQueue int
	// MaxBlobSize is the largest blob (ciphertext bytes) CreateBlob
	// accepts. Zero means protocol.DefaultMaxBlobSize.
	MaxBlobSize int64
	// BlobQuota bounds the bytes one device's live and unfinished blobs
	// reserve. Zero means protocol.DefaultBlobQuota.
	BlobQuota int64
	// BlobRetention is how long a blob is kept after its upload finished.
	// Zero means protocol.DefaultBlobRetention. (An unfinished upload is
	// deleted protocol.UnfinishedBlobRetention seconds after its creation.)
	BlobRetention time.Duration
	// SlowConsumerTimeout is how long a frame may wait for room in a full
	// write queue (or a write may take) before the connection is closed as
	// a slow consumer. Zero means 15 seconds.
	SlowConsumerTimeout time.Duration
	// Metrics receives the relay's counters and reads the store's totals
	// on each scrape (docs/METRICS.md). Nil means no metrics, at the cost
	// of one nil check per event.
	Metrics *metrics.Metrics
	// Audit is the audit log (package audit). Nil means audit.Open on
	// DataDir (no audit log without DataDir). The relay closes it on Close.
	Audit *audit.Log

	// PingInterval is how often the relay pings each WebSocket connection
	// (one relay-wide ticker; keepalive.go). Zero means
	// DefaultPingInterval (25 s, inside the 60 s idle timeout of common
	// proxies); negative disables pings.
	PingInterval time.Duration
	// PingTimeout closes a connection whose ping is not answered in time.
	// Zero means DefaultPingTimeout.
	PingTimeout time.Duration
	// ConnRatePerAddress is the new WebSocket connections per minute one
	// client address (IPv4 address or IPv6 /64; loopback clients are not
	// limited) may open; past it the
	// upgrade is refused with HTTP 429 and CodeRateLimited. Zero means
	// DefaultConnRatePerAddress; negative means no rate limit.
	ConnRatePerAddress int
	// ConnBurstPerAddress is how many connections an address may open at
	// once before the rate applies. Zero means DefaultConnBurstPerAddress.
	ConnBurstPerAddress int
	// MaxConnsPerAddress bounds one address's open WebSocket connections;
	// more are refused with HTTP 429 and CodeTooManyConnections. Zero
	// means DefaultMaxConnsPerAddress.
	MaxConnsPerAddress int
	// MaxAddresses bounds the per-address table. Zero means
	// DefaultMaxAddresses.
	MaxAddresses int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For header
	// names the client address for the per-address limits. A request from
	// any other peer is limited by its TCP address and its header ignored.
	TrustedProxies []netip.Prefix

	// FrameRate is how many frames per second one WebSocket connection may
	// send on average; a frame beyond FrameRate and FrameBurst is answered
	// with CodeRateLimited and not processed. Zero means
	// protocol.RateFramesPerSecond; negative is an error.
	FrameRate int
	// FrameBurst is how many frames a connection may send at once before
	// FrameRate applies. Zero means protocol.RateBurst; negative is an
	// error.
	FrameBurst int

	// BundleFetchesPerHour is how many FetchBundle requests one send
	// capability may make per hour, in bursts of BundleFetchBurst; past
	// it they are refused with CodeRateLimited (each fetch hands out a
	// one-time prekey). Zero means DefaultBundleFetchesPerHour.
	BundleFetchesPerHour int
	// BundleFetchBurst: zero means DefaultBundleFetchBurst.
	BundleFetchBurst int
	// AuthFailuresPerAddress is how many failed authentications per
	// minute one client address may make, in bursts of AuthFailureBurst,
	// before its connections are put on probation (SPEC.md 10,
	// Authentication). Zero means DefaultAuthFailuresPerAddress.
	AuthFailuresPerAddress int
	// AuthFailureBurst: zero means DefaultAuthFailureBurst.
	AuthFailureBurst int

	// MaxQueuedBytesPerConn, MaxQueuedBytesPerDevice and MaxQueuedBytes
	// bound the frames queued for writing (and being written): on one
	// connection, on all the connections of one device, and in the whole
	// relay. Deliveries wait for room; an answer that finds none waits
	// SlowConsumerTimeout, then the connection is closed as a slow
	// consumer. Zero means DefaultMaxQueuedBytesPerConn,
	// DefaultMaxQueuedBytesPerDevice and DefaultMaxQueuedBytes.
	MaxQueuedBytesPerConn   int64
	MaxQueuedBytesPerDevice int64
	MaxQueuedBytes          int64
	// MaxSubscriptionsPerMailbox bounds the connections subscribed to one
	// mailbox at once; more are refused with CodeTooManyConnections. Zero
	// means DefaultMaxSubscriptionsPerMailbox.
	MaxSubscriptionsPerMailbox int

	// MinUploadRate is the slowest a blob upload may send, in bytes per
	// second averaged over blobRateWindow; a slower one is cut (its whole
	// chunks are kept; the client resumes). Zero means
	// DefaultMinUploadRate; negative disables the check.
	MinUploadRate int64
}

func (c *Config) withDefaults() (Config, error) {
	o := *c
	if o.Store == nil && o.DataDir == "" {
		return o, fmt.Errorf("%w: DataDir is empty", ErrConfig)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	switch o.Enrollment {
	case "":
		o.Enrollment = EnrollOpen
	case EnrollOpen, EnrollInvite:
	default:
		return o, fmt.Errorf("%w: enrollment %q, want %q or %q", ErrConfig, o.Enrollment, EnrollOpen, EnrollInvite)
	}
	if o.Retention < 0 {
		return o, fmt.Errorf("%w: negative retention %v", ErrConfig, o.Retention)
	}
	if o.Retention == 0 {
		o.Retention = protocol.DefaultRetention
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AuthTimeout <= 0 {
		o.AuthTimeout = protocol.AuthTimeout
	}
	if o.PurgeInterval == 0 {
		o.PurgeInterval = time.Minute
	}
	if o.PurgeBatch <= 0 {
		o.PurgeBatch = 1000
	}
	if o.WriteQueue <= 0 {
		o.WriteQueue = 2*protocol.MaxInflight + 64
	}
	if o.MaxBlobSize < 0 || o.BlobQuota < 0 || o.BlobRetention < 0 {
		return o, fmt.Errorf("%w: negative blob size, quota or retention", ErrConfig)
	}
	if o.MaxBlobSize == 0 {
		o.MaxBlobSize = protocol.DefaultMaxBlobSize
	}
	if o.BlobQuota == 0 {
		o.BlobQuota = protocol.DefaultBlobQuota
	}
	if o.BlobRetention == 0 {
		o.BlobRetention = protocol.DefaultBlobRetention
	}
	if o.MaxBlobSize < protocol.BlobCipherChunkSize {
		return o, fmt.Errorf("%w: MaxBlobSize %d is below one chunk (%d bytes)", ErrConfig, o.MaxBlobSize, protocol.BlobCipherChunkSize)
	}
	if o.SlowConsumerTimeout <= 0 {
		o.SlowConsumerTimeout = 15 * time.Second
	}
	if err := o.limitDefaults(); err != nil {
		return o, err
	}
	if o.FrameRate < 0 || o.FrameBurst < 0 {
		return o, fmt.Errorf("%w: frame rate %d or burst %d is negative", ErrConfig, o.FrameRate, o.FrameBurst)
	}
	if o.FrameRate == 0 {
		o.FrameRate = protocol.RateFramesPerSecond
	}
	if o.FrameBurst == 0 {
		o.FrameBurst = protocol.RateBurst
	}
	return o, nil
}

// Validate reports whether New would accept c, without opening anything.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}
