package session

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// corpusSessions are a pair of sessions in mid-conversation, with a few
// messages of each kind, shared by the fuzz targets' seeds.
var corpusSessions = sync.OnceValue(func() (out struct {
	init   []byte
	states [][]byte
	msgs   [][]byte
	hdrs   [][]byte
}) {
	ps := fixtures()
	t := fixtureTB{}
	ca, cb := newClock(), newClock()
	bundle, opk := ps[1].bundle(true)
	a, init, err := Initiate(ps[0].dev, bundle, ca.opts())
	if err != nil {
		panic(err)
	}
	out.init = init.Marshal()
	m0 := mustSeal(t, a, "hello")
	out.states = append(out.states, a.MarshalSecret())
	b, err := Respond(ps[1].dev, ps[1].spk, opk, init, cb.opts())
	if err != nil {
		panic(err)
	}
	mustOpen(t, b, m0, "hello")
	m1 := mustSeal(t, b, "pq reply")
	m2 := mustSeal(t, b, "skipped")
	out.states = append(out.states, b.MarshalSecret())
	mustOpen(t, a, m1, "pq reply")
	out.states = append(out.states, a.MarshalSecret()) // holds a skipped key? no: m2 not yet
	m3 := mustSeal(t, a, "pq a")
	mustOpen(t, b, m3, "pq a")
	m4 := mustSeal(t, b, "plain")
	mustOpen(t, a, m4, "plain")
	out.states = append(out.states, a.MarshalSecret(), b.MarshalSecret())
	out.msgs = [][]byte{m0, m1, m2, m3, m4}
	out.hdrs = [][]byte{
		(&header{dh: make([]byte, 32), pn: 1, n: 2}).marshal(),
		(&header{dh: make([]byte, 32), pq: true, ct: make([]byte, KEMCiphertextSize), ek: make([]byte, KEMPublicKeySize)}).marshal(),
	}
	return out
})

func FuzzParseInit(f *testing.F) {
	f.Add(corpusSessions().init)
	f.Add([]byte{tagInit, version, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := ParseInit(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatal(err)
			}
			return
		}
		if !bytes.Equal(in.Marshal(), b) {
			t.Fatal("Marshal(ParseInit(b)) != b")
		}
	})
}

// FuzzParseHeader covers the header decoder that runs after decryption
// (only the peer can reach it, but it must not panic or accept two encodings).
func FuzzParseHeader(f *testing.F) {
	for _, h := range corpusSessions().hdrs {
		f.Add(h, len(h) > HeaderSize)
	}
	f.Fuzz(func(t *testing.T, b []byte, pq bool) {
		h, ok := parseHeader(b, pq)
		if !ok {
			return
		}
		if !bytes.Equal(h.marshal(), b) {
			t.Fatal("marshal(parseHeader(b)) != b")
		}
	})
}

func FuzzUnmarshalSecret(f *testing.F) {
	for _, s := range corpusSessions().states {
		f.Add(s)
	}
	for _, s := range stateV1Fixture(f) {
		f.Add(s)
	}
	// At the Unix epoch no skipped key has expired, so a version-2 state
	// re-encodes to itself.
	epoch := &Options{Now: func() time.Time { return time.Unix(0, 0) }}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnmarshalSecret(b, epoch)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatal(err)
			}
			return
		}
		enc := s.MarshalSecret()
		if b[1] == stateVersion1 {
			// A version-1 state is rewritten as version 2, once.
			s2, err := UnmarshalSecret(enc, epoch)
			if err != nil || enc[1] != stateVersion || !bytes.Equal(s2.MarshalSecret(), enc) {
				t.Fatalf("version-1 state rewritten badly: %v", err)
			}
		} else if !bytes.Equal(enc, b) {
			t.Fatal("MarshalSecret(UnmarshalSecret(b)) != b")
		}
		// Whatever state was accepted, using it must not panic.
		for _, m := range corpusSessions().msgs {
			s.Open(m)
		}
		s.Seal([]byte("x"), 0)
		s.Overhead()
	})
}

// FuzzOpen: hostile bytes never open, never panic, never change the state.
func FuzzOpen(f *testing.F) {
	c := corpusSessions()
	for _, m := range c.msgs {
		f.Add(m)
	}
	// The corpus' clock: no skipped key has expired. recv is A in
	// mid-conversation.
	clk := &Options{Now: newClock().now}
	recv, err := UnmarshalSecret(c.states[len(c.states)-2], clk)
	if err != nil {
		f.Fatal(err)
	}
	before := recv.MarshalSecret()
	f.Fuzz(func(t *testing.T, b []byte) {
		s, _ := UnmarshalSecret(before, clk)
		if _, err := MessageInit(b); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatal(err)
		}
		pt, err := s.Open(b)
		if err == nil {
			// Only a genuine message B sent after this state may open.
			if !bytes.Equal(b, c.msgs[2]) {
				t.Fatalf("forged message opened: %q", pt)
			}
			return
		}
		if !errors.Is(err, ErrDecrypt) || !bytes.Equal(s.MarshalSecret(), before) {
			t.Fatal("failed Open: wrong error or state changed")
		}
	})
}

// TestWriteFuzzCorpus writes the committed seed corpora with -update.
func TestWriteFuzzCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to regenerate testdata/fuzz")
	}
	c := corpusSessions()
	writeCorpus(t, "FuzzParseInit", "init-with-opk", c.init)
	writeCorpusArgs(t, "FuzzParseHeader", "plain", c.hdrs[0], false)
	writeCorpusArgs(t, "FuzzParseHeader", "pq", c.hdrs[1], true)
	for i, s := range c.states {
		writeCorpus(t, "FuzzUnmarshalSecret", "state-"+string(rune('0'+i)), s)
	}
	for i, m := range c.msgs {
		writeCorpus(t, "FuzzOpen", "msg-"+string(rune('0'+i)), m)
	}
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 7))
		b := make([]byte, 400)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		writeCorpus(t, "FuzzInteraction", "schedule-"+string(rune('0'+seed)), b)
	}
}
