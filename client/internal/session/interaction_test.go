package session

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The interaction test, in the manner of libsignal's: two or three devices
// with pairwise sessions exchange messages over a network that drops,
// duplicates, reorders, delays, corrupts and misdelivers, while devices
// restart from their serialized state. Invariants checked after every step:
//   - a message delivered for the first time decrypts to what was sent,
//     unless it lies more than MaxSkip ahead in its chain (then it must fail);
//   - nothing else decrypts: duplicates, corrupted and misdelivered
//     messages fail, and a failure leaves the session byte-for-byte unchanged;
//   - stored skipped keys never exceed MaxSkippedKeys, and the serialized
//     state never exceeds MaxStateSize.
// Schedules are bounded (maxActions) so that key eviction, which would
// legitimately lose old messages, cannot happen; for the same reason the
// clock stays within MaxSkippedKeyAge of the start (expiry by age is
// TestSkippedKeyAge's).

const maxActions = 1500

type packet struct {
	from, to int
	pt       string
	msg      []byte
	// sender's chain position, for the skip-window prediction
	dh     [32]byte
	pn, n  uint32
	opened bool
}

type sim struct {
	t        testing.TB
	n        int
	clock    *clock
	start    time.Time
	sess     [3][3]*Session // sess[i][j]: i's session with j
	inits    [3][3]bool     // i initiated to j
	flight   []*packet
	done     []*packet
	seq      int
	failures int
}

func newSim(t testing.TB, n int) *sim {
	s := &sim{t: t, n: n, clock: newClock()}
	s.start = s.clock.now()
	ps := fixtures()
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			b, _ := ps[j].bundle(false)
			se, _, err := Initiate(ps[i].dev, b, s.clock.opts())
			if err != nil {
				t.Fatal(err)
			}
			s.sess[i][j] = se
			s.inits[i][j] = true
		}
	}
	return s
}

func (s *sim) pairs() [][2]int {
	var out [][2]int
	for i := 0; i < s.n; i++ {
		for j := 0; j < s.n; j++ {
			if i != j && s.sess[i][j] != nil {
				out = append(out, [2]int{i, j})
			}
		}
	}
	return out
}

func (s *sim) send(sel int) {
	ps := s.pairs()
	if len(ps) == 0 || len(s.flight) >= 200 {
		return
	}
	p := ps[sel%len(ps)]
	se := s.sess[p[0]][p[1]]
	s.seq++
	pt := fmt.Sprintf("%d>%d #%d", p[0], p[1], s.seq)
	m, err := se.Seal([]byte(pt), 0)
	if err != nil {
		s.t.Fatalf("Seal: %v", err)
	}
	pk := &packet{from: p[0], to: p[1], pt: pt, msg: m, dh: [32]byte(se.st.dhs.PublicKey().Bytes()), pn: se.st.pn, n: se.st.ns - 1}
	s.flight = append(s.flight, pk)
}

// expectOpen predicts whether a first delivery must succeed.
func (s *sim) mustSucceed(r *Session, pk *packet) bool {
	if r == nil {
		return true // a new session from the Init
	}
	st := &r.st
	if st.hasDHr && st.dhr == pk.dh {
		return pk.n < st.nr || pk.n-st.nr <= MaxSkip
	}
	// A chain not yet seen, or an older one (whose keys were stored).
	if pk.n > MaxSkip {
		return false
	}
	if st.hasCKr && pk.pn > st.nr && pk.pn-st.nr > MaxSkip {
		return false
	}
	return true
}

func (s *sim) receive(pk *packet, to int, msg []byte) ([]byte, error) {
	r := s.sess[to][pk.from]
	if r == nil {
		if to != pk.to {
			return nil, ErrDecrypt
		}
		init, err := MessageInit(msg)
		if err != nil || init == nil {
			return nil, ErrDecrypt
		}
		ps := fixtures()
		ns, err := Respond(ps[to].dev, ps[to].spk, nil, init, s.clock.opts())
		if err != nil {
			return nil, err
		}
		pt, err := ns.Open(msg)
		if err != nil {
			return nil, err
		}
		s.sess[to][pk.from] = ns
		return pt, nil
	}
	return r.Open(msg)
}

func (s *sim) deliver(sel int) {
	if len(s.flight) == 0 {
		return
	}
	i := sel % len(s.flight)
	pk := s.flight[i]
	s.flight = append(s.flight[:i:i], s.flight[i+1:]...)
	r := s.sess[pk.to][pk.from]
	must := s.mustSucceed(r, pk)
	var before []byte
	if r != nil {
		before = r.MarshalSecret()
	}
	pt, err := s.receive(pk, pk.to, pk.msg)
	switch {
	case err == nil && string(pt) != pk.pt:
		s.t.Fatalf("decrypted %q, sent %q", pt, pk.pt)
	case err == nil:
		pk.opened = true
		s.done = append(s.done, pk)
	case must:
		s.t.Fatalf("first delivery of %q failed: %v", pk.pt, err)
	default:
		s.failures++
		if r != nil && !bytes.Equal(before, r.MarshalSecret()) {
			s.t.Fatal("failed Open changed the state")
		}
	}
}

// mustFail delivers msg from pk's sender to device to, and requires failure
// without a state change.
func (s *sim) mustFail(pk *packet, to int, msg []byte, what string) {
	r := s.sess[to][pk.from]
	var before []byte
	if r != nil {
		before = r.MarshalSecret()
	}
	if pt, err := s.receive(pk, to, msg); err == nil {
		s.t.Fatalf("%s opened: %q", what, pt)
	}
	if r != nil && !bytes.Equal(before, r.MarshalSecret()) {
		s.t.Fatalf("%s changed the state", what)
	}
}

func (s *sim) step(action, sel int) {
	switch action % 8 {
	case 0, 1:
		s.send(sel)
	case 2, 3:
		s.deliver(sel)
	case 4: // drop
		if len(s.flight) > 0 {
			i := sel % len(s.flight)
			s.flight = append(s.flight[:i:i], s.flight[i+1:]...)
		}
	case 5: // duplicate of a delivered message, or corruption of an in-flight one
		if sel%2 == 0 && len(s.done) > 0 {
			pk := s.done[sel/2%len(s.done)]
			s.mustFail(pk, pk.to, pk.msg, "duplicate")
		} else if len(s.flight) > 0 {
			pk := s.flight[sel/2%len(s.flight)]
			c := bytes.Clone(pk.msg)
			c[(sel*7919)%len(c)] ^= byte(1 << (sel % 8))
			s.mustFail(pk, pk.to, c, "corrupted message")
		}
	case 6: // misdelivery: to a device it was not for (or back to its sender)
		if len(s.flight) > 0 {
			pk := s.flight[sel%len(s.flight)]
			to := pk.from
			if s.n == 3 {
				to = 3 - pk.from - pk.to
			}
			if s.sess[to][pk.from] != nil || to != pk.from {
				q := *pk
				s.mustFail(&q, to, pk.msg, "misdelivered message")
			}
		}
	case 7: // restart a device from its serialized state, and let time pass
		d := sel % s.n
		for j := range s.n {
			if se := s.sess[d][j]; se != nil {
				s.sess[d][j] = clone(s.t, se)
			}
		}
		if d := time.Duration(sel%5) * 6 * time.Hour; s.clock.now().Add(d).Sub(s.start) < MaxSkippedKeyAge {
			s.clock.advance(d)
		}
	}
	s.check()
}

func (s *sim) check() {
	for i := range s.n {
		for j := range s.n {
			se := s.sess[i][j]
			if se == nil {
				continue
			}
			if len(se.st.skipped) > MaxSkippedKeys {
				s.t.Fatalf("%d skipped keys", len(se.st.skipped))
			}
			if n := len(se.MarshalSecret()); n > MaxStateSize {
				s.t.Fatalf("state %d bytes", n)
			}
		}
	}
}

// drain delivers everything left in order and checks that the sessions still
// work both ways.
func (s *sim) drain() {
	for len(s.flight) > 0 {
		s.deliver(0)
	}
	for _, p := range [][2]int{{0, 1}, {1, 0}} {
		a, b := s.sess[p[0]][p[1]], s.sess[p[1]][p[0]]
		if a == nil || b == nil {
			continue
		}
		for range 2 {
			mustOpen(s.t, b, mustSeal(s.t, a, "final"), "final")
			mustOpen(s.t, a, mustSeal(s.t, b, "final"), "final")
		}
	}
}

func TestInteraction(t *testing.T) {
	seeds := 6
	if testing.Short() {
		seeds = 3
	}
	for seed := range uint64(seeds) {
		for _, n := range []int{2, 3} {
			t.Run(fmt.Sprintf("seed%d/devices%d", seed, n), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, uint64(n)))
				s := newSim(t, n)
				for range maxActions {
					// Bias towards sends and deliveries so conversations go deep.
					s.step(rng.IntN(8), rng.IntN(1<<20))
				}
				s.drain()
				if len(s.done) < 50 {
					t.Fatalf("only %d messages delivered", len(s.done))
				}
				t.Logf("%d sent, %d delivered, %d out of window", s.seq, len(s.done), s.failures)
			})
		}
	}
}

// FuzzInteraction drives the same simulation from a byte schedule: the first
// byte chooses two or three devices, then each byte is one action (low 3
// bits) with a selector (high 5 bits, mixed with the position).
func FuzzInteraction(f *testing.F) {
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 99))
		b := make([]byte, 300)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, schedule []byte) {
		if len(schedule) == 0 || len(schedule) > maxActions {
			return
		}
		s := newSim(t, 2+int(schedule[0]&1))
		for i, b := range schedule[1:] {
			s.step(int(b&7), int(b>>3)*131+i)
		}
		s.drain()
	})
}

// writeCorpus writes a committed seed corpus file (go test fuzz v1) when the
// test runs with -update.
func writeCorpus(t *testing.T, target, name string, data []byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeCorpusArgs(t *testing.T, target, name string, data []byte, flag bool) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nbool(%v)\n", data, flag)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
