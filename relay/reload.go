package relay

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/postern/postern/relay/audit"
)

// settings are the Config fields Reload may change while the relay runs.
// A published settings value is never modified: Reload stores a new one,
// and readers load the pointer once per use (Relay.set), so one request
// never sees half of an old and half of a new configuration.
type settings struct {
	enrollment    string
	retention     time.Duration
	maxConns      int
	maxBlobSize   int64
	blobQuota     int64
	blobRetention time.Duration
	pingInterval  time.Duration
	pingTimeout   time.Duration
	connRate      int // per minute; negative: unlimited
	connBurst     int
	maxPerAddr    int
	trusted       []netip.Prefix // not modified after publication
	frameRate     int
	frameBurst    int
}

// settingsOf takes the reloadable fields of a Config with its defaults
// filled in.
func settingsOf(c *Config) *settings {
	return &settings{
		enrollment:    c.Enrollment,
		retention:     c.Retention,
		maxConns:      c.MaxConnections,
		maxBlobSize:   c.MaxBlobSize,
		blobQuota:     c.BlobQuota,
		blobRetention: c.BlobRetention,
		pingInterval:  c.PingInterval,
		pingTimeout:   c.PingTimeout,
		connRate:      c.ConnRatePerAddress,
		connBurst:     c.ConnBurstPerAddress,
		maxPerAddr:    c.MaxConnsPerAddress,
		trusted:       slices.Clone(c.TrustedProxies),
		frameRate:     c.FrameRate,
		frameBurst:    c.FrameBurst,
	}
}

// into sets c's reloadable fields to s. It is the one list of what Reload
// can change: a Config field it does not set is fixed for the relay's
// lifetime.
func (s *settings) into(c *Config) {
	c.Enrollment = s.enrollment
	c.Retention = s.retention
	c.MaxConnections = s.maxConns
	c.MaxBlobSize = s.maxBlobSize
	c.BlobQuota = s.blobQuota
	c.BlobRetention = s.blobRetention
	c.PingInterval = s.pingInterval
	c.PingTimeout = s.pingTimeout
	c.ConnRatePerAddress = s.connRate
	c.ConnBurstPerAddress = s.connBurst
	c.MaxConnsPerAddress = s.maxPerAddr
	c.TrustedProxies = slices.Clone(s.trusted)
	c.FrameRate = s.frameRate
	c.FrameBurst = s.frameBurst
}

// set returns the settings in force. Load it once per use.
func (r *Relay) set() *settings { return r.live.Load() }

// Config returns the relay's configuration: the Config given to New, with
// the reloadable fields as last applied (defaults filled in). Change it and
// pass it to Reload.
func (r *Relay) Config() Config {
	c := r.given
	r.set().into(&c)
	return c
}

// Reload applies c's reloadable settings while the relay runs: the
// enrolment policy, Retention (for envelopes received from then on),
// MaxConnections, MaxBlobSize, BlobQuota, BlobRetention (for uploads that
// finish from then on), PingInterval, PingTimeout, the per-address limits
// (ConnRatePerAddress, ConnBurstPerAddress, MaxConnsPerAddress,
// TrustedProxies) and FrameRate and FrameBurst, which apply to open
// connections too. Open connections keep working; a lower MaxConnections
// or MaxConnsPerAddress refuses new connections only.
//
// Every other field is fixed for the relay's lifetime and must be as given
// to New (pointers, Logger included, the same; Now is not compared): a
// Config that differs there, or that New would refuse, is refused with
// ErrConfig and nothing changes. Reload does not write the audit log: the
// caller records the reload with AuditReload, naming what changed in its
// own terms.
func (r *Relay) Reload(c Config) error {
	n, err := c.withDefaults()
	if err != nil {
		return err
	}
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	if name := r.fixedChanged(c); name != "" {
		return fmt.Errorf("%w: %s cannot change while the relay runs (restart it)", ErrConfig, name)
	}
	old, s := r.set(), settingsOf(&n)
	// Published before the connection walk below: a connection opened
	// meanwhile either reads the new settings or is already in r.conns.
	r.live.Store(s)
	now := r.cfg.Now()
	if s.frameRate != old.frameRate || s.frameBurst != old.frameBurst {
		r.mu.Lock()
		for c := range r.conns {
			c.setFrameRate(now, s)
		}
		r.mu.Unlock()
	}
	if s.connRate != old.connRate || s.connBurst != old.connBurst {
		r.limits.reset(now, s)
	}
	if s.pingInterval != old.pingInterval {
		select {
		case r.ka.reset <- struct{}{}:
		default: // a reset is pending; it reads the newest settings
		}
	}
	return nil
}

// fixedChanged names the first field of c that Reload cannot apply and that
// differs from the relay's, or returns "".
func (r *Relay) fixedChanged(c Config) string {
	cur := r.set()
	a, b := r.given, c
	cur.into(&a) // the reloadable fields are equal by construction
	cur.into(&b)
	da, errA := a.withDefaults()
	db, errB := b.withDefaults()
	if errA != nil || errB != nil {
		return "the configuration"
	}
	ga, gb := reflect.ValueOf(a), reflect.ValueOf(b)
	va, vb := reflect.ValueOf(da), reflect.ValueOf(db)
	for i := range ga.NumField() {
		f := ga.Type().Field(i)
		switch f.Type.Kind() {
		case reflect.Func:
			// Not comparable (Now): the relay keeps its own.
		case reflect.Pointer, reflect.Interface:
			// The same object as given to New (before defaults, which
			// make a fresh discard Logger).
			x, y := ga.Field(i), gb.Field(i)
			if x.IsNil() != y.IsNil() || !x.IsNil() && (!x.Comparable() || !x.Equal(y)) {
				return f.Name
			}
		default:
			if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
				return f.Name
			}
		}
	}
	return ""
}

// setFrameRate applies new frame-rate settings to an open connection,
// keeping the tokens it has (up to the new burst).
func (c *conn) setFrameRate(now time.Time, s *settings) {
	c.frames.SetLimitAt(now, rate.Limit(s.frameRate))
	c.frames.SetBurstAt(now, s.frameBurst)
}

// AuditReload records a configuration reload in the audit log
// (config.reloaded): changed names the options applied and restartNeeded
// those that wait for a restart, in the caller's terms (flag names), each
// written sorted and comma-separated and omitted when empty; the entry
// also holds the settings now in force, as relay.start does.
func (r *Relay) AuditReload(changed, restartNeeded []string) {
	f := r.set().auditFields()
	if len(changed) > 0 {
		f["changed"] = joinSorted(changed)
	}
	if len(restartNeeded) > 0 {
		f["restart_needed"] = joinSorted(restartNeeded)
	}
	r.auditEvent(audit.EventConfigReloaded, f)
}

// AuditReloadRefused records a reload refused because the new
// configuration is invalid (config.reload_refused), with the reason. The
// reason must hold no secret; configuration errors name options, files,
// lines and values, none of which is one.
func (r *Relay) AuditReloadRefused(reason string) {
	if len(reason) > maxAuditReason {
		reason = strings.ToValidUTF8(reason[:maxAuditReason], "") + "…"
	}
	r.auditEvent(audit.EventConfigReloadRefused, audit.Fields{"reason": reason})
}

// maxAuditReason bounds the reason of config.reload_refused (an audit line
// is at most audit.MaxLineSize).
const maxAuditReason = 1024

// auditFields are the settings relay.start and config.reloaded record.
func (s *settings) auditFields() audit.Fields {
	return audit.Fields{
		"enrollment":             s.enrollment,
		"retention_seconds":      int64(s.retention / time.Second),
		"max_connections":        s.maxConns,
		"max_blob_size":          s.maxBlobSize,
		"blob_quota":             s.blobQuota,
		"blob_retention_seconds": int64(s.blobRetention / time.Second),
		"frame_rate":             s.frameRate,
		"frame_burst":            s.frameBurst,
		"conn_rate_per_address":  s.connRate,
		"conn_burst_per_address": s.connBurst,
		"max_conns_per_address":  s.maxPerAddr,
		"ping_interval_seconds":  int64(s.pingInterval / time.Second),
		// How many, not which: the audit log holds no addresses.
		"trusted_proxies": len(s.trusted),
	}
}

func joinSorted(names []string) string {
	s := slices.Clone(names)
	slices.Sort(s)
	return strings.Join(slices.Compact(s), ",")
}
