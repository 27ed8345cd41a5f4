package session

import (
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/keys/identity"
)

// party is a device with its prekeys, as a client would hold them.
type party struct {
	dev  *identity.Device
	spk  *identity.Prekey
	opks map[uint32]*identity.Prekey
}

func newParty(tb testing.TB, nOPK int) *party {
	tb.Helper()
	id, err := identity.GenerateIdentity()
	if err != nil {
		tb.Fatal(err)
	}
	dev, err := identity.NewDevice(id)
	if err != nil {
		tb.Fatal(err)
	}
	spk, err := identity.NewPrekey(dev, 1, false)
	if err != nil {
		tb.Fatal(err)
	}
	p := &party{dev: dev, spk: spk, opks: map[uint32]*identity.Prekey{}}
	for i := range nOPK {
		o, err := identity.NewPrekey(dev, uint32(100+i), true)
		if err != nil {
			tb.Fatal(err)
		}
		p.opks[uint32(100+i)] = o
	}
	return p
}

// fixtures are generated once per test binary: ML-DSA key generation and
// signing dominate the cost of a handshake.
var fixtures = sync.OnceValue(func() [3]*party {
	var ps [3]*party
	for i := range ps {
		ps[i] = newParty(fixtureTB{}, 64)
	}
	return ps
})

// fixtureTB lets newParty run outside a test; it panics on failure, which is
// a broken test environment, not a test result.
type fixtureTB struct{ testing.TB }

func (fixtureTB) Helper()           {}
func (fixtureTB) Fatal(args ...any) { panic(args) }

var opkMu sync.Mutex

// bundle returns p's bundle, with a one-time prekey taken from the shared
// pool when withOPK (each one handed out once, as the relay does).
func (p *party) bundle(withOPK bool) (PeerBundle, *identity.Prekey) {
	b := PeerBundle{Cert: p.dev.Certificate(), SignedPrekey: p.spk.Public()}
	if !withOPK {
		return b, nil
	}
	opkMu.Lock()
	defer opkMu.Unlock()
	for id, o := range p.opks {
		delete(p.opks, id)
		b.OneTime = o.Public()
		return b, o
	}
	panic("out of one-time prekeys")
}

// clock is an injectable clock.
type clock struct{ t time.Time }

func newClock() *clock                   { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }
func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func (c *clock) opts() *Options          { return &Options{Now: c.now} }

// establish runs a handshake from a to b and delivers the first message.
func establish(tb testing.TB, a, b *party, withOPK bool, ca, cb *clock) (sa, sb *Session) {
	tb.Helper()
	bundle, opk := b.bundle(withOPK)
	sa, init, err := Initiate(a.dev, bundle, ca.opts())
	if err != nil {
		tb.Fatal(err)
	}
	msg, err := sa.Seal([]byte("hello"), 0)
	if err != nil {
		tb.Fatal(err)
	}
	got, err := MessageInit(msg)
	if err != nil || got == nil || got.ID() != init.ID() {
		tb.Fatalf("MessageInit: %v", err)
	}
	sb, err = Respond(b.dev, b.spk, opk, got, cb.opts())
	if err != nil {
		tb.Fatal(err)
	}
	pt, err := sb.Open(msg)
	if err != nil || string(pt) != "hello" {
		tb.Fatalf("first message: %q %v", pt, err)
	}
	return sa, sb
}

func mustSeal(tb testing.TB, s *Session, pt string) []byte {
	tb.Helper()
	m, err := s.Seal([]byte(pt), 0)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func mustOpen(tb testing.TB, s *Session, m []byte, want string) {
	tb.Helper()
	pt, err := s.Open(m)
	if err != nil {
		tb.Fatalf("Open: %v (want %q)", err, want)
	}
	if string(pt) != want {
		tb.Fatalf("Open = %q, want %q", pt, want)
	}
}

func clone(tb testing.TB, s *Session) *Session {
	tb.Helper()
	c, err := UnmarshalSecret(s.MarshalSecret(), &Options{Now: s.now})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
