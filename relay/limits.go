package relay

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/postern/postern/protocol"
)

// Per-address limit defaults. They are generous on purpose: a hospital
// site behind one NAT address reconnects all its devices at once after a
// relay restart, and nothing a client at an address does before it
// authenticates tells a clinician from an attacker behind the same
// address. So the limits are keyed on failures, not on connections: a
// connection that authenticates gives back what its upgrade took, and an
// address that has used up its allowance gets its connections on
// probation (one attempt, failures answered slowly) rather than refused.
const (
	DefaultConnRatePerAddress  = 200  // unauthenticated connections per minute per address before probation
	DefaultConnBurstPerAddress = 200  // unauthenticated connections an address may open at once before probation
	DefaultMaxConnsPerAddress  = 5000 // concurrent WebSocket connections per address
	// DefaultMaxAddresses bounds the per-address table; past it, after
	// forgetting every address that is back at its full allowance, new
	// addresses are refused with CodeTooManyConnections.
	DefaultMaxAddresses = 100000
)

// probationAuthTimeout replaces Config.AuthTimeout for a connection on
// probation.
const probationAuthTimeout = 5 * time.Second

// retryAfterTooMany is the Retry-After of a refusal for too many
// connections (per address or relay-wide): long enough that a site's
// devices, each waiting a random part of it (client backoff with full
// jitter), spread their retries.
const retryAfterTooMany = 10

// addrLimits tracks per-address connection rates and counts.
type addrLimits struct {
	mu        sync.Mutex
	addrs     map[netip.Addr]*addrState
	lastSweep time.Time
}

type addrState struct {
	unauth *bucket // nil: no rate (ConnRatePerAddress negative)
	conns  int
}

// admission is what admitAddr decided for a new connection.
type admission struct {
	key       netip.Addr // the address limited; invalid when not limited (loopback)
	tookToken bool       // the upgrade took a token, given back on authentication
	probation bool       // the address has used up its allowance
}

// addrKey is the address a limit applies to: an IPv4 address, or the /64
// of an IPv6 address (one subscriber usually holds a whole /64).
func addrKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// clientAddr is the request's client address: the TCP peer, or, when the
// peer is one of Config.TrustedProxies, the last address in
// X-Forwarded-For that is not a trusted proxy. The header is never read
// from an untrusted peer.
func (r *Relay) clientAddr(req *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(req.RemoteAddr)
	var peer netip.Addr
	if err == nil {
		peer = ap.Addr().Unmap()
	} else if host, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		if peer, err = netip.ParseAddr(host); err != nil {
			return netip.Addr{}, false
		}
		peer = peer.Unmap()
	} else {
		return netip.Addr{}, false
	}
	if !isTrusted(trusted, peer) {
		return peer, true
	}
	addr := peer
	hops := req.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return addr, true // a hop we cannot read: stop at the last good one
			}
			addr = a.Unmap()
			if !isTrusted(trusted, addr) {
				return addr, true
			}
		}
	}
	return addr, true
}

func isTrusted(trusted []netip.Prefix, a netip.Addr) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// admitAddr applies the per-address limits to a new WebSocket connection
// before the upgrade. It refuses with HTTP 429, Retry-After and
// Postern-Error CodeTooManyConnections when the address has
// MaxConnsPerAddress open; otherwise it returns a release function to call
// when the connection ends. Over the rate of unauthenticated connections
// the connection is admitted on probation, not refused.
func (r *Relay) admitAddr(w http.ResponseWriter, req *http.Request) (release func(), adm admission, ok bool) {
	s := r.set()
	a, ok := r.clientAddr(req, s.trusted)
	if !ok || a.IsLoopback() {
		// Not an IP peer, or a client on this host (a CLI in a script
		// sends over a fresh connection each time): no per-address
		// limit. Behind a local proxy, name it in TrustedProxies so its
		// clients are limited by their own addresses.
		return func() {}, adm, true
	}
	key := addrKey(a)
	l := &r.limits
	now := r.cfg.Now()
	l.mu.Lock()
	if l.addrs == nil {
		l.addrs = map[netip.Addr]*addrState{}
	}
	st := l.addrs[key]
	if st == nil {
		if len(l.addrs) >= r.cfg.MaxAddresses || now.Sub(l.lastSweep) > time.Minute {
			l.sweep(now, s)
		}
		if len(l.addrs) >= r.cfg.MaxAddresses {
			l.mu.Unlock()
			r.refuseHTTP(w, protocol.CodeTooManyConnections, "too many client addresses", retryAfterTooMany)
			return nil, adm, false
		}
		st = &addrState{unauth: newAddrBucket(now, s)}
		l.addrs[key] = st
	}
	if st.conns >= s.maxPerAddr {
		l.mu.Unlock()
		r.refuseHTTP(w, protocol.CodeTooManyConnections, "too many connections from this address", retryAfterTooMany)
		return nil, adm, false
	}
	adm.key = key
	if st.unauth != nil {
		adm.tookToken, _ = st.unauth.take(now, perMinute(s.connRate), s.connBurst)
		adm.probation = !adm.tookToken
	}
	st.conns++
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		st.conns--
		l.mu.Unlock()
	}, adm, true
}

// authenticated gives back the token the upgrade of an address's
// connection took: only connections that do not authenticate count
// against the address's rate.
func (r *Relay) authenticated(adm admission) {
	if !adm.tookToken {
		return
	}
	s := r.set()
	l := &r.limits
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.addrs[adm.key]; st != nil && st.unauth != nil {
		st.unauth.give(r.cfg.Now(), perMinute(s.connRate), s.connBurst)
	}
}

func newAddrBucket(now time.Time, s *settings) *bucket {
	if s.connRate < 0 {
		return nil
	}
	return newBucket(now, s.connBurst)
}

func perMinute(n int) float64 { return float64(n) / 60 }

// reset applies new per-address rate settings (Reload) to every address
// tracked, keeping what each has used.
func (l *addrLimits) reset(now time.Time, s *settings) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, st := range l.addrs {
		switch {
		case s.connRate < 0:
			st.unauth = nil
		case st.unauth == nil:
			st.unauth = newAddrBucket(now, s)
		}
	}
}

// sweep forgets every address with no open connection whose bucket is
// back at its full burst: such an entry is indistinguishable from a new
// one, so forgetting it loses nothing. Called with l.mu held.
func (l *addrLimits) sweep(now time.Time, s *settings) {
	l.lastSweep = now
	for k, st := range l.addrs {
		if st.conns == 0 && (st.unauth == nil || st.unauth.full(now, perMinute(s.connRate), s.connBurst)) {
			delete(l.addrs, k)
		}
	}
}

// refuseHTTP refuses a request before the WebSocket upgrade: 429, the
// Postern-Error header and Retry-After.
// The refusal is counted and logged sampled.
func (r *Relay) refuseHTTP(w http.ResponseWriter, code protocol.Code, msg string, retryAfter int) {
	r.cfg.Metrics.Refused(code)
	r.connRefusals.log(r.log, r.cfg.Now(), "connections refused by a per-address limit", "code", int(code), "retry_after_s", retryAfter)
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	blobError(w, http.StatusTooManyRequests, code, msg)
}

// AddressesTracked returns how many client addresses the per-address
// limits currently track (for tests and diagnostics).
func (r *Relay) AddressesTracked() int {
	r.limits.mu.Lock()
	defer r.limits.mu.Unlock()
	return len(r.limits.addrs)
}

func (o *Config) limitDefaults() error {
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = DefaultPingTimeout
	}
	if o.ConnRatePerAddress == 0 {
		o.ConnRatePerAddress = DefaultConnRatePerAddress
	}
	if o.ConnBurstPerAddress <= 0 {
		o.ConnBurstPerAddress = DefaultConnBurstPerAddress
	}
	if o.MaxConnsPerAddress <= 0 {
		o.MaxConnsPerAddress = DefaultMaxConnsPerAddress
	}
	if o.MaxAddresses <= 0 {
		o.MaxAddresses = DefaultMaxAddresses
	}
	if o.BundleFetchesPerHour <= 0 {
		o.BundleFetchesPerHour = DefaultBundleFetchesPerHour
	}
	if o.BundleFetchBurst <= 0 {
		o.BundleFetchBurst = DefaultBundleFetchBurst
	}
	if o.AuthFailuresPerAddress <= 0 {
		o.AuthFailuresPerAddress = DefaultAuthFailuresPerAddress
	}
	if o.AuthFailureBurst <= 0 {
		o.AuthFailureBurst = DefaultAuthFailureBurst
	}
	if o.MaxQueuedBytesPerConn <= 0 {
		o.MaxQueuedBytesPerConn = DefaultMaxQueuedBytesPerConn
	}
	if o.MaxQueuedBytesPerDevice <= 0 {
		o.MaxQueuedBytesPerDevice = DefaultMaxQueuedBytesPerDevice
	}
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if o.MaxSubscriptionsPerMailbox <= 0 {
		o.MaxSubscriptionsPerMailbox = DefaultMaxSubscriptionsPerMailbox
	}
	if o.MinUploadRate == 0 {
		o.MinUploadRate = DefaultMinUploadRate
	}
	for _, p := range o.TrustedProxies {
		if !p.IsValid() {
			return fmt.Errorf("%w: invalid trusted proxy prefix", ErrConfig)
		}
	}
	return nil
}
