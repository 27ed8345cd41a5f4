package relay

import (
	"context"
	"sync"
	"time"
)

// Keep-alive defaults. Proxies and NAT boxes commonly drop a connection
// idle for 60 seconds (nginx's proxy_read_timeout, many load balancers):
// a ping every 25 seconds keeps traffic flowing well inside that.
const (
	DefaultPingInterval = 25 * time.Second
	DefaultPingTimeout  = 15 * time.Second
)

// keepalive pings every WebSocket connection every Config.PingInterval
// from one relay-wide ticker, so an idle connection holds no goroutine of
// its own for it; a ping in flight runs in a short-lived goroutine that
// ends when the pong arrives or Config.PingTimeout passes, and a
// connection whose ping goes unanswered is closed. The loop runs even with
// pings disabled, so that Reload can turn them on.
type keepalive struct {
	stop  chan struct{}
	done  chan struct{}
	reset chan struct{} // Reload changed the interval

	mu       sync.Mutex
	inflight map[*conn]struct{} // connections with a ping outstanding
}

func (r *Relay) startKeepalive() {
	k := &r.ka
	k.stop = make(chan struct{})
	k.done = make(chan struct{})
	k.reset = make(chan struct{}, 1)
	k.inflight = map[*conn]struct{}{}
	go r.keepaliveLoop()
}

// stopKeepalive stops the ticker; pings in flight end with their
// connections (or their timeout).
func (r *Relay) stopKeepalive() {
	select {
	case <-r.ka.stop:
	default:
		close(r.ka.stop)
	}
	<-r.ka.done
}

func (r *Relay) keepaliveLoop() {
	defer close(r.ka.done)
	var t *time.Ticker
	var tick <-chan time.Time // nil while pings are disabled
	arm := func() {
		if t != nil {
			t.Stop()
			t, tick = nil, nil
		}
		if d := r.set().pingInterval; d > 0 {
			t = time.NewTicker(d)
			tick = t.C
		}
	}
	arm()
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		select {
		case <-r.ka.stop:
			return
		case <-r.ka.reset:
			arm()
		case <-tick:
			r.pingAll()
		}
	}
}

// pingAll pings every open connection that has no ping outstanding.
func (r *Relay) pingAll() {
	r.mu.Lock()
	conns := make([]*conn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	k := &r.ka
	for _, c := range conns {
		k.mu.Lock()
		_, busy := k.inflight[c]
		if !busy {
			k.inflight[c] = struct{}{}
		}
		k.mu.Unlock()
		if !busy {
			go r.ping(c)
		}
	}
}

func (r *Relay) ping(c *conn) {
	defer func() {
		r.ka.mu.Lock()
		delete(r.ka.inflight, c)
		r.ka.mu.Unlock()
	}()
	timeout := r.set().pingTimeout
	ctx, cancel := context.WithTimeout(c.ctx, timeout)
	defer cancel()
	err := c.ws.Ping(ctx)
	if err == nil || c.ctx.Err() != nil {
		return // answered, or the connection ended anyway
	}
	c.log.Info("ping unanswered; closing connection", "timeout", timeout.String(), "err", err)
	// A peer that does not answer pings will not read a close frame
	// either.
	c.cancel()
	c.ws.CloseNow()
}
