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

	"golang.org/x/time/rate"

	"github.com/postern/postern/protocol"
)

// Per-address limit defaults. They are generous on purpose: a hospital
// site behind one NAT address reconnects all its devices at once after a
// relay restart.
const (
	DefaultConnRatePerAddress  = 200  // new WebSocket connections per minute per address
	DefaultConnBurstPerAddress = 200  // connections an address may open at once
	DefaultMaxConnsPerAddress  = 1000 // concurrent WebSocket connections per address
	// DefaultMaxAddresses bounds the per-address table; past it, after
	// forgetting every address that is back at its full allowance, new
	// addresses are refused with CodeTooManyConnections.
	DefaultMaxAddresses = 100000
)

// addrLimits tracks per-address connection rates and counts.
type addrLimits struct {
	mu        sync.Mutex
	addrs     map[netip.Addr]*addrState
	lastSweep time.Time
}

type addrState struct {
	lim   *rate.Limiter
	conns int
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
// before the upgrade. It refuses with HTTP 429 and Postern-Error
// CodeRateLimited (too many new connections per minute) or
// CodeTooManyConnections (too many open at once); otherwise it returns a
// release function to call when the connection ends.
func (r *Relay) admitAddr(w http.ResponseWriter, req *http.Request) (release func(), ok bool) {
	s := r.set()
	a, ok := r.clientAddr(req, s.trusted)
	if !ok || a.IsLoopback() {
		// Not an IP peer, or a client on this host (a CLI in a script
		// sends over a fresh connection each time): no per-address
		// limit. Behind a local proxy, name it in TrustedProxies so its
		// clients are limited by their own addresses.
		return func() {}, true
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
			l.sweep(now)
		}
		if len(l.addrs) >= r.cfg.MaxAddresses {
			l.mu.Unlock()
			r.refuseHTTP(w, protocol.CodeTooManyConnections, "too many client addresses")
			return nil, false
		}
		st = &addrState{lim: newAddrLimiter(now, s)}
		l.addrs[key] = st
	}
	if st.conns >= s.maxPerAddr {
		l.mu.Unlock()
		r.refuseHTTP(w, protocol.CodeTooManyConnections, "too many connections from this address")
		return nil, false
	}
	if st.lim != nil && !st.lim.AllowN(now, 1) {
		l.mu.Unlock()
		r.refuseHTTP(w, protocol.CodeRateLimited, "too many new connections from this address")
		return nil, false
	}
	st.conns++
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		st.conns--
		l.mu.Unlock()
	}, true
}

func newAddrLimiter(now time.Time, s *settings) *rate.Limiter {
	if s.connRate < 0 {
		return nil
	}
	lim := rate.NewLimiter(perMinute(s.connRate), s.connBurst)
	lim.AllowN(now, 0) // starts full at the relay's clock
	return lim
}

func perMinute(n int) rate.Limit { return rate.Limit(float64(n) / 60) }

// reset applies new per-address rate settings (Reload) to every address
// tracked, keeping what each has used.
func (l *addrLimits) reset(now time.Time, s *settings) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, st := range l.addrs {
		switch {
		case s.connRate < 0:
			st.lim = nil
		case st.lim == nil:
			st.lim = newAddrLimiter(now, s)
		default:
			st.lim.SetLimitAt(now, perMinute(s.connRate))
			st.lim.SetBurstAt(now, s.connBurst)
		}
	}
}

// sweep forgets every address with no open connection whose limiter is
// back at its full burst: such an entry is indistinguishable from a new
// one, so forgetting it loses nothing. Called with l.mu held.
func (l *addrLimits) sweep(now time.Time) {
	l.lastSweep = now
	for k, st := range l.addrs {
		if st.conns == 0 && (st.lim == nil || st.lim.TokensAt(now) >= float64(st.lim.Burst())) {
			delete(l.addrs, k)
		}
	}
}

// refuseHTTP refuses a request before the WebSocket upgrade: 429, the
// Postern-Error header and Retry-After.
func (r *Relay) refuseHTTP(w http.ResponseWriter, code protocol.Code, msg string) {
	r.cfg.Metrics.Refused(code)
	w.Header().Set("Retry-After", strconv.Itoa(5))
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
	for _, p := range o.TrustedProxies {
		if !p.IsValid() {
			return fmt.Errorf("%w: invalid trusted proxy prefix", ErrConfig)
		}
	}
	return nil
}
