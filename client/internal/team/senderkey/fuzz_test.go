package senderkey

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// fuzzFixture is a deterministic group in mid-conversation, shared by the
// fuzz targets' seeds: Alice rotated once (the receiver holds both of her
// epochs, with skipped keys in each), Bob sealed a few messages.
type fuzzFixture struct {
	hk      *HeaderKey
	dists   [][]byte
	owns    [][]byte
	state   []byte   // the receiver's encoded state
	states  [][]byte // more encoded states, for the seeds
	unread  [][]byte // genuine messages the state has not read
	foreign [][]byte // messages the state cannot open (other keys)
}

var fixture = sync.OnceValue(func() fuzzFixture {
	rng := rand.NewChaCha8([32]byte{'f', 'u', 'z', 'z'})
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var f fuzzFixture
	hk, err := NewHeaderKey(rng)
	must(err)
	f.hk = hk
	alice, bob, carol := deviceID(1), deviceID(2), deviceID(3)
	a0, err := NewOwn(testGroup, alice, 0, rng)
	must(err)
	b, err := NewOwn(testGroup, bob, 3, rng)
	must(err)
	c, err := NewOwn(testGroup, carol, 0, rng)
	must(err)
	seal := func(o *Own, pt string) []byte {
		m, err := o.Seal(hk, []byte(pt))
		must(err)
		return m
	}
	s := NewState(testGroup)
	add := func(sender [32]byte, dist []byte) {
		d, err := ParseDistribution(dist)
		must(err)
		must(s.Add(sender, d))
		f.dists = append(f.dists, dist)
	}
	open := func(m []byte) {
		_, _, err := s.Open(hk, m)
		must(err)
	}
	add(alice, a0.Distribution())
	add(bob, b.Distribution())
	f.states = append(f.states, s.MarshalSecret())
	old := []([]byte){seal(a0, "a0"), seal(a0, "a1"), seal(a0, "a2"), seal(a0, "a3")}
	open(old[2]) // 0, 1 skipped
	a1, err := a0.Rotate(rng)
	must(err)
	add(alice, a1.Distribution())
	nw := []([]byte){seal(a1, "new 0"), seal(a1, "new 1"), seal(a1, "new 2")}
	open(nw[2])
	bm := []([]byte){seal(b, "b0"), seal(b, "b1")}
	open(bm[0])
	f.state = s.MarshalSecret()
	f.states = append(f.states, f.state)
	f.unread = [][]byte{old[0], old[1], old[3], nw[0], nw[1], bm[1]}
	f.foreign = [][]byte{seal(c, "carol, unknown"), old[2], nw[2], bm[0]}
	f.owns = [][]byte{a1.MarshalSecret(), b.MarshalSecret(), c.MarshalSecret()}
	return f
})

func FuzzParseDistribution(f *testing.F) {
	for _, d := range fixture().dists {
		f.Add(d)
	}
	f.Add([]byte{tagDistribution, encodingVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDistribution(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatal(err)
			}
			return
		}
		if !bytes.Equal(d.MarshalSecret(), b) {
			t.Fatal("MarshalSecret(ParseDistribution(b)) != b")
		}
		// Any accepted distribution can be added to a state without panic.
		s, err := UnmarshalState(fixture().state)
		if err != nil {
			t.Fatal(err)
		}
		s.Add(deviceID(1), d)
		s.Add(deviceID(9), d)
		if _, err := UnmarshalState(s.MarshalSecret()); err != nil {
			t.Fatalf("a state after Add does not load: %v", err)
		}
	})
}

func FuzzUnmarshalOwn(f *testing.F) {
	for _, o := range fixture().owns {
		f.Add(o)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := UnmarshalOwn(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatal(err)
			}
			return
		}
		if !bytes.Equal(o.MarshalSecret(), b) {
			t.Fatal("MarshalSecret(UnmarshalOwn(b)) != b")
		}
		d, err := ParseDistribution(o.Distribution())
		if err != nil || d.Epoch() != o.Epoch() || d.Iteration() != o.Iteration() {
			t.Fatalf("the own key's distribution: %v", err)
		}
		o.Seal(fixture().hk, []byte("x"))
	})
}

func FuzzUnmarshalState(f *testing.F) {
	for _, s := range fixture().states {
		f.Add(s)
	}
	f.Add([]byte{tagState, encodingVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnmarshalState(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatal(err)
			}
			return
		}
		if !bytes.Equal(s.MarshalSecret(), b) {
			t.Fatal("MarshalSecret(UnmarshalState(b)) != b")
		}
		// Whatever state was accepted, using it must not panic, and what
		// it becomes still encodes to a loadable state.
		fx := fixture()
		for _, m := range append(append([][]byte{}, fx.unread...), fx.foreign...) {
			s.Open(fx.hk, m)
		}
		for _, d := range fx.dists {
			dd, _ := ParseDistribution(d)
			s.Add(deviceID(1), dd)
		}
		if _, err := UnmarshalState(s.MarshalSecret()); err != nil {
			t.Fatalf("a used state does not load: %v", err)
		}
	})
}

// FuzzOpen: hostile bytes never open, never panic, never change the
// state; only the genuine unread messages open.
func FuzzOpen(f *testing.F) {
	fx := fixture()
	for _, m := range fx.unread {
		f.Add(m)
	}
	for _, m := range fx.foreign {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnmarshalState(fx.state)
		if err != nil {
			t.Fatal(err)
		}
		_, pt, err := s.Open(fx.hk, b)
		if err == nil {
			for _, m := range fx.unread {
				if bytes.Equal(b, m) {
					return
				}
			}
			t.Fatalf("forged message opened: %q", pt)
		}
		if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrNoSenderKey) && !errors.Is(err, ErrSkipLimit) {
			t.Fatalf("unexpected error %v", err)
		}
		if pt != nil || !bytes.Equal(s.MarshalSecret(), fx.state) {
			t.Fatal("failed Open returned a plaintext or changed the state")
		}
	})
}

// TestFuzzFixture: the seeds do what the targets assume.
func TestFuzzFixture(t *testing.T) {
	fx := fixture()
	for i, m := range fx.unread {
		s, _ := UnmarshalState(fx.state)
		if _, _, err := s.Open(fx.hk, m); err != nil {
			t.Errorf("unread message %d: %v", i, err)
		}
	}
	for i, m := range fx.foreign {
		s, _ := UnmarshalState(fx.state)
		if _, _, err := s.Open(fx.hk, m); err == nil {
			t.Errorf("foreign message %d opened", i)
		}
	}
}

// TestWriteFuzzCorpus writes the committed seed corpora with -update.
func TestWriteFuzzCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to regenerate testdata/fuzz")
	}
	fx := fixture()
	for i, d := range fx.dists {
		writeCorpus(t, "FuzzParseDistribution", fmt.Sprint("dist-", i), d)
	}
	for i, o := range fx.owns {
		writeCorpus(t, "FuzzUnmarshalOwn", fmt.Sprint("own-", i), o)
	}
	for i, s := range fx.states {
		writeCorpus(t, "FuzzUnmarshalState", fmt.Sprint("state-", i), s)
	}
	for i, m := range fx.unread {
		writeCorpus(t, "FuzzOpen", fmt.Sprint("unread-", i), m)
	}
	for i, m := range fx.foreign {
		writeCorpus(t, "FuzzOpen", fmt.Sprint("foreign-", i), m)
	}
}

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
