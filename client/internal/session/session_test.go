package session

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/protocol"
)

func TestConversation(t *testing.T) {
	ps := fixtures()
	ca, cb := newClock(), newClock()
	a, b := establish(t, ps[0], ps[1], true, ca, cb)
	if !a.NeedsInit() || b.NeedsInit() || !a.Initiator() || b.Initiator() {
		t.Fatal("roles")
	}
	// A's messages keep carrying the Init until it reads one from B.
	m := mustSeal(t, a, "again")
	if in, _ := MessageInit(m); in == nil {
		t.Fatal("second initiator message lacks the Init")
	}
	mustOpen(t, b, m, "again")
	// B's first chain is a PQ step (the session is new).
	m = mustSeal(t, b, "reply")
	if m[0]&flagPQ == 0 {
		t.Fatal("responder's first chain carries no PQ step")
	}
	mustOpen(t, a, m, "reply")
	if a.NeedsInit() {
		t.Fatal("initiator still attaches the Init after reading a reply")
	}
	// A's next chain is its own first PQ step.
	m = mustSeal(t, a, "pq")
	if m[0] != flagPQ|flagNonceBody {
		t.Fatalf("flags %#x", m[0])
	}
	mustOpen(t, b, m, "pq")
	// Every message of a PQ chain carries the PQ block.
	m = mustSeal(t, a, "pq2")
	if m[0] != flagPQ|flagNonceBody {
		t.Fatalf("flags %#x", m[0])
	}
	mustOpen(t, b, m, "pq2")
	// Then ordinary turns.
	for i := range 10 {
		s := fmt.Sprint(i)
		m := mustSeal(t, b, "b"+s)
		if m[0] != flagNonceBody {
			t.Fatalf("turn %d: flags %#x", i, m[0])
		}
		mustOpen(t, a, m, "b"+s)
		mustOpen(t, b, mustSeal(t, a, "a"+s), "a"+s)
	}
	if a.PeerCertificate().DeviceID() != ps[1].dev.Certificate().DeviceID() ||
		b.PeerCertificate().DeviceID() != ps[0].dev.Certificate().DeviceID() {
		t.Fatal("peer certificates")
	}
}

// TestPadding: a short text fills exactly a 1024-byte envelope.
func TestPadding(t *testing.T) {
	ps := fixtures()
	a, b := establish(t, ps[0], ps[1], false, newClock(), newClock())
	mustOpen(t, a, mustSeal(t, b, "r"), "r")
	mustOpen(t, b, mustSeal(t, a, "pq"), "pq")
	mustOpen(t, a, mustSeal(t, b, "r2"), "r2")
	p := []byte("short text")
	if got := a.Overhead(); got != MessageOverhead {
		t.Fatalf("Overhead = %d, want %d", got, MessageOverhead)
	}
	n, err := protocol.BucketFor(protocol.EnvelopeHeaderSize + a.Overhead() + len(p))
	if err != nil || n != 1024 {
		t.Fatalf("bucket %d %v", n, err)
	}
	m, err := a.Seal(p, n-protocol.EnvelopeHeaderSize)
	if err != nil || len(m)+protocol.EnvelopeHeaderSize != 1024 {
		t.Fatalf("len %d %v", len(m), err)
	}
	pt, err := b.Open(m)
	if err != nil || !bytes.HasPrefix(pt, p) || len(pt) != 1024-2-MessageOverhead {
		t.Fatalf("open: %v", err)
	}
	if _, err := a.Seal(make([]byte, 100), 100); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("too small padTo: %v", err)
	}
	// Overhead predicts the PQ and Init parts too.
	c, d := establish(t, ps[0], ps[2], true, newClock(), newClock())
	for _, s := range []*Session{c, d} {
		want := s.Overhead() + 7
		if m := mustSeal(t, s, "1234567"); len(m) != want {
			t.Fatalf("len %d, Overhead+7 = %d", len(m), want)
		}
	}
}

// TestOutOfOrder delivers a run of messages across two turns in reverse.
func TestOutOfOrder(t *testing.T) {
	ps := fixtures()
	a, b := establish(t, ps[0], ps[1], true, newClock(), newClock())
	var ms [][]byte
	for i := range 5 {
		ms = append(ms, mustSeal(t, b, fmt.Sprint("b", i)))
	}
	mustOpen(t, a, ms[4], "b4")
	for i := range 5 {
		ms = append(ms, mustSeal(t, a, fmt.Sprint("a", i)))
	}
	for i := 9; i >= 5; i-- {
		mustOpen(t, b, ms[i], fmt.Sprint("a", i-5))
	}
	ms = append(ms, mustSeal(t, b, "b5")) // new chain of B
	mustOpen(t, a, ms[10], "b5")
	for i := 3; i >= 0; i-- { // old chain of B, from skipped keys
		mustOpen(t, a, ms[i], fmt.Sprint("b", i))
	}
	if len(a.st.skipped) != 0 || len(b.st.skipped) != 0 {
		t.Fatalf("skipped keys left: %d %d", len(a.st.skipped), len(b.st.skipped))
	}
	// Every message read once; all replays fail without changing the state.
	for _, s := range []*Session{a, b} {
		before := s.MarshalSecret()
		for _, m := range ms {
			if _, err := s.Open(m); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("replay: %v", err)
			}
		}
		if !bytes.Equal(before, s.MarshalSecret()) {
			t.Fatal("state changed by replays")
		}
	}
}

func TestSkipLimits(t *testing.T) {
	ps := fixtures()
	a, b := establish(t, ps[0], ps[1], false, newClock(), newClock())
	mustOpen(t, a, mustSeal(t, b, "r"), "r")
	var ms [][]byte
	for i := range MaxSkip + 2 {
		ms = append(ms, mustSeal(t, a, fmt.Sprint(i)))
	}
	before := b.MarshalSecret()
	if _, err := b.Open(ms[MaxSkip+1]); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("beyond MaxSkip: %v", err)
	}
	if !bytes.Equal(before, b.MarshalSecret()) {
		t.Fatal("state changed")
	}
	mustOpen(t, b, ms[MaxSkip], fmt.Sprint(MaxSkip)) // exactly MaxSkip skipped
	if len(b.st.skipped) != MaxSkip {
		t.Fatalf("%d skipped", len(b.st.skipped))
	}
	// Three more chains with MaxSkip skipped each: the total stays capped and
	// the oldest keys go first.
	for c := range 3 {
		mustOpen(t, a, mustSeal(t, b, "turn"), "turn")
		var last []byte
		for i := range MaxSkip + 1 {
			last = mustSeal(t, a, fmt.Sprint(c, i))
		}
		mustOpen(t, b, last, fmt.Sprint(c, MaxSkip))
		if len(b.st.skipped) > MaxSkippedKeys {
			t.Fatalf("%d skipped keys", len(b.st.skipped))
		}
		if n := len(b.MarshalSecret()); n > MaxStateSize {
			t.Fatalf("state %d bytes", n)
		}
	}
	if _, err := b.Open(ms[0]); !errors.Is(err, ErrDecrypt) {
		t.Fatal("evicted key still decrypts")
	}
}

// TestTamper flips bits and truncates: every variant fails and leaves the
// state unchanged; the original still opens afterwards.
func TestTamper(t *testing.T) {
	ps := fixtures()
	a, b := establish(t, ps[0], ps[1], true, newClock(), newClock())
	for _, tc := range []struct {
		name string
		s, r *Session
	}{{"init+plain", a, b}, {"pq", b, a}} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustSeal(t, tc.s, "payload")
			before := tc.r.MarshalSecret()
			step := 1
			if len(m) > 4000 {
				step = 7
			}
			for i := 0; i < len(m); i += step {
				for _, bit := range []byte{0x01, 0x80} {
					c := bytes.Clone(m)
					c[i] ^= bit
					if _, err := tc.r.Open(c); !errors.Is(err, ErrDecrypt) {
						t.Fatalf("flip at %d: %v", i, err)
					}
				}
			}
			for _, n := range []int{0, 1, len(m) / 2, len(m) - 17, len(m) - 1} {
				if _, err := tc.r.Open(m[:n]); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("truncated to %d: %v", n, err)
				}
			}
			if _, err := tc.r.Open(append(bytes.Clone(m), 0)); !errors.Is(err, ErrDecrypt) {
				t.Fatal("extended message opens")
			}
			if !bytes.Equal(before, tc.r.MarshalSecret()) {
				t.Fatal("state changed by rejected messages")
			}
			mustOpen(t, tc.r, m, "payload")
		})
	}
}

// TestForwardSecrecy: a state serialized after reading a message holds no key
// that decrypts it.
func TestForwardSecrecy(t *testing.T) {
	ps := fixtures()
	a, b := establish(t, ps[0], ps[1], true, newClock(), newClock())
	mustOpen(t, a, mustSeal(t, b, "r"), "r")
	var ms [][]byte
	var mks [][keySize]byte
	for i := range 3 {
		_, mk := kdfCK(&a.st.cks) // the key Seal will use (A is mid-chain after the first)
		if i == 0 {
			mk = [keySize]byte{} // A starts a new chain on this Seal: key known only after
		}
		ms = append(ms, mustSeal(t, a, fmt.Sprint(i)))
		if i == 0 {
			mks = append(mks, [keySize]byte{})
		} else {
			mks = append(mks, mk)
		}
	}
	// Read out of order: 2 first (1 becomes a skipped key), then 1, then 0.
	for _, i := range []int{2, 0, 1} {
		mustOpen(t, b, ms[i], fmt.Sprint(i))
		snap := b.MarshalSecret()
		for j := 0; j < 3; j++ {
			if mks[j] != ([keySize]byte{}) && bytes.Contains(snap, mks[j][:]) && (j == i) {
				t.Fatalf("message key %d in the state after reading it", j)
			}
		}
		c := clone(t, b)
		if _, err := c.Open(ms[i]); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("snapshot after reading %d decrypts it again: %v", i, err)
		}
	}
	for j := 1; j < 3; j++ {
		if bytes.Contains(b.MarshalSecret(), mks[j][:]) {
			t.Fatalf("used key %d still stored", j)
		}
	}
}

func TestRedaction(t *testing.T) {
	ps := fixtures()
	a, _ := establish(t, ps[0], ps[1], false, newClock(), newClock())
	secret := fmt.Sprintf("%x", a.st.rk[:8])
	for _, f := range []string{"%v", "%+v", "%#v", "%x", "%s", "%d", "%q"} {
		out := fmt.Sprintf(f, a) + fmt.Sprintf(f, *a)
		if !strings.Contains(out, "REDACTED") || strings.Contains(out, secret) {
			t.Fatalf("%s prints %q", f, out)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	ps := fixtures()
	a, b := establish(t, ps[0], ps[1], true, newClock(), newClock())
	check := func() {
		for _, s := range []*Session{a, b} {
			enc := s.MarshalSecret()
			c, err := UnmarshalSecret(enc, &Options{Now: s.now})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c.MarshalSecret(), enc) {
				t.Fatal("re-encoding differs")
			}
			if len(enc) > MaxStateSize {
				t.Fatal("state too large")
			}
			for _, n := range []int{0, 3, len(enc) - 1} {
				if _, err := UnmarshalSecret(enc[:n], nil); !errors.Is(err, ErrMalformed) {
					t.Fatalf("truncated state: %v", err)
				}
			}
		}
	}
	check()
	m1 := mustSeal(t, b, "1")
	mustSeal(t, b, "2")
	mustOpen(t, a, mustSeal(t, b, "3"), "3")
	check()
	mustOpen(t, b, mustSeal(t, a, "4"), "4")
	check()
	mustOpen(t, a, m1, "1")
	check()
}

// TestPQDueByTime: after PQInterval without PQ steps, the next chain carries
// one even with few messages.
func TestPQDueByTime(t *testing.T) {
	ps := fixtures()
	ca, cb := newClock(), newClock()
	a, b := establish(t, ps[0], ps[1], false, ca, cb)
	mustOpen(t, a, mustSeal(t, b, "pq-b"), "pq-b")
	mustOpen(t, b, mustSeal(t, a, "pq-a"), "pq-a")
	m := mustSeal(t, b, "x")
	if m[0]&flagPQ != 0 {
		t.Fatal("PQ step before due")
	}
	mustOpen(t, a, m, "x")
	ca.advance(PQInterval - time.Second)
	cb.advance(PQInterval - time.Second)
	m = mustSeal(t, a, "y")
	if m[0]&flagPQ != 0 {
		t.Fatal("PQ step before 24h")
	}
	mustOpen(t, b, m, "y")
	ca.advance(time.Second)
	cb.advance(time.Second)
	// B stepped before A did, so B is due first and sends A a fresh key; A's
	// next chain then carries its own step. (A cannot step with no fresh key.)
	m = mustSeal(t, b, "z")
	if m[0]&flagPQ == 0 {
		t.Fatal("B: no PQ step after 24h")
	}
	mustOpen(t, a, m, "z")
	m = mustSeal(t, a, "w")
	if m[0]&flagPQ == 0 {
		t.Fatal("A: no PQ step after 24h")
	}
	mustOpen(t, b, m, "w")
}
