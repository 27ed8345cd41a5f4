package relay

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Throttle defaults (SPEC.md sections 6 and 10).
const (
	// A sender fetches a contact's bundle when it accepts an invitation
	// and when it starts a new session: a few times a year, not a few
	// times an hour. Each fetch hands out a one-time prekey, so a holder
	// of a capability who fetched in a loop would drain them.
	DefaultBundleFetchesPerHour = 4
	DefaultBundleFetchBurst     = 4

	// MaxAuthFailuresPerConn failed Enroll or Auth requests close a
	// connection (the last one is answered first).
	MaxAuthFailuresPerConn = 3
	// Failed authentications one client address may make per minute, in
	// bursts of DefaultAuthFailureBurst, before its connections are put on
	// probation: one attempt each, and a failure is answered only after
	// authFailurePenalty and closes the connection. A successful
	// authentication is never delayed nor counted, so an attacker behind a
	// site's NAT slows only itself.
	DefaultAuthFailuresPerAddress = 60
	DefaultAuthFailureBurst       = 60

	// maxThrottleKeys bounds each throttle's table (capabilities,
	// addresses); past it, entries back at their full allowance are
	// forgotten, and if none is, the oldest bucket is not tracked.
	maxThrottleKeys = 100000
)

// authFailurePenalty is how long a failed authentication on probation
// waits for its answer: 2 s. A variable so that tests need not wait.
var authFailurePenalty = durationVar(2 * time.Second)

// durationVar is a duration tests may change while connections read it.
type durationVar time.Duration

func (d *durationVar) get() time.Duration {
	return time.Duration(atomic.LoadInt64((*int64)(d)))
}

func (d *durationVar) set(v time.Duration) time.Duration {
	return time.Duration(atomic.SwapInt64((*int64)(d), int64(v)))
}

// bucket is a token bucket: tokens refill at a rate up to a burst. Unlike
// rate.Limiter it can be given a token back at any time (a connection
// that authenticates gives back the one its upgrade took). The zero value
// is empty; newBucket makes a full one. Not safe for concurrent use.
type bucket struct {
	tokens float64
	last   time.Time
}

func newBucket(now time.Time, burst int) *bucket { return &bucket{tokens: float64(burst), last: now} }

// level refills the bucket to now and returns its tokens.
func (b *bucket) level(now time.Time, perSecond float64, burst int) float64 {
	if now.After(b.last) {
		b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*perSecond)
		b.last = now
	}
	b.tokens = min(b.tokens, float64(burst)) // a lower burst after a reload
	return b.tokens
}

// take takes a token; without one it reports how long until one is there.
func (b *bucket) take(now time.Time, perSecond float64, burst int) (bool, time.Duration) {
	if t := b.level(now, perSecond, burst); t < 1 {
		if perSecond <= 0 {
			return false, time.Hour
		}
		return false, time.Duration((1 - t) / perSecond * float64(time.Second))
	}
	b.tokens--
	return true, 0
}

// give gives a token back.
func (b *bucket) give(now time.Time, perSecond float64, burst int) {
	b.level(now, perSecond, burst)
	b.tokens = min(b.tokens+1, float64(burst))
}

// full reports whether the bucket is back at its burst (then it is no
// different from a new one).
func (b *bucket) full(now time.Time, perSecond float64, burst int) bool {
	return b.level(now, perSecond, burst) >= float64(burst)
}

// throttle is a table of token buckets, one per key, each starting full.
// An entry whose bucket is full again is indistinguishable from a missing
// one, so the table forgets such entries when it sweeps; its size is
// bounded by maxThrottleKeys. Safe for concurrent use.
type throttle[K comparable] struct {
	perSecond float64
	burst     int

	mu        sync.Mutex
	m         map[K]*bucket
	lastSweep time.Time
}

func newThrottle[K comparable](perSecond float64, burst int) *throttle[K] {
	return &throttle[K]{perSecond: perSecond, burst: burst, m: map[K]*bucket{}}
}

// take takes one token for k at now. It reports whether there was one
// and, if not, how long until there will be.
func (t *throttle[K]) take(k K, now time.Time) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.m[k]
	if b == nil {
		if len(t.m) >= maxThrottleKeys || now.Sub(t.lastSweep) > time.Minute {
			t.sweep(now)
		}
		if len(t.m) >= maxThrottleKeys {
			// Full of keys that are all in use: refuse rather than grow.
			return false, time.Minute
		}
		b = newBucket(now, t.burst)
		t.m[k] = b
	}
	return b.take(now, t.perSecond, t.burst)
}

// give gives back a token taken for k (the request it paid for did not
// happen).
func (t *throttle[K]) give(k K, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if b := t.m[k]; b != nil {
		b.give(now, t.perSecond, t.burst)
	}
}

func (t *throttle[K]) sweep(now time.Time) {
	t.lastSweep = now
	for k, b := range t.m {
		if b.full(now, t.perSecond, t.burst) {
			delete(t.m, k)
		}
	}
}

// sampledLog logs a repeated event at most once per interval, with the
// number of events since the last line, so that a flood of refusals costs
// one log line per interval rather than one per refusal.
type sampledLog struct {
	every time.Duration
	last  atomic.Int64 // unix nanoseconds of the last line
	n     atomic.Int64 // events not yet logged
}

func (s *sampledLog) log(l *slog.Logger, now time.Time, msg string, args ...any) {
	s.n.Add(1)
	last := s.last.Load()
	if now.UnixNano()-last < int64(s.every) || !s.last.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	args = append(args, "count", s.n.Swap(0), "interval", s.every.String())
	l.Warn(msg, args...)
}
