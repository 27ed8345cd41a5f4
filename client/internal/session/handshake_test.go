package session

import (
	"bytes"
	"errors"
	"testing"

	"github.com/postern/postern/keys/identity"
)

func TestInitiateRejectsBundles(t *testing.T) {
	ps := fixtures()
	good, _ := ps[1].bundle(false)
	badCert := *good.Cert
	badCert.Signature = bytes.Clone(badCert.Signature)
	badCert.Signature[10] ^= 1
	other := ps[2].spk.Public() // signed by another device
	oneTime, err := identity.NewPrekey(ps[1].dev, 7, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		b    PeerBundle
	}{
		{"nil cert", PeerBundle{SignedPrekey: good.SignedPrekey}},
		{"nil prekey", PeerBundle{Cert: good.Cert}},
		{"bad certificate signature", PeerBundle{Cert: &badCert, SignedPrekey: good.SignedPrekey}},
		{"prekey of another device", PeerBundle{Cert: good.Cert, SignedPrekey: other}},
		{"one-time prekey as signed prekey", PeerBundle{Cert: good.Cert, SignedPrekey: oneTime.Public()}},
		{"last-resort prekey as one-time", PeerBundle{Cert: good.Cert, SignedPrekey: good.SignedPrekey, OneTime: good.SignedPrekey}},
		{"one-time prekey of another device", PeerBundle{Cert: good.Cert, SignedPrekey: good.SignedPrekey, OneTime: firstOPK(ps[2]).Public()}},
		{"self", PeerBundle{Cert: ps[0].dev.Certificate(), SignedPrekey: ps[0].spk.Public()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := Initiate(ps[0].dev, tc.b, nil); !errors.Is(err, ErrBundle) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func firstOPK(p *party) *identity.Prekey {
	opkMu.Lock()
	defer opkMu.Unlock()
	for _, o := range p.opks {
		return o
	}
	panic("no one-time prekey")
}

func TestRespondRejects(t *testing.T) {
	ps := fixtures()
	a, b, c := ps[0], ps[1], ps[2]
	bundle, opk := b.bundle(true)
	_, init, err := Initiate(a.dev, bundle, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameIDOtherKey, err := identity.NewPrekey(b.dev, init.opkID, true)
	if err != nil {
		t.Fatal(err)
	}
	otherOPK, err := identity.NewPrekey(b.dev, init.opkID+1000, true)
	if err != nil {
		t.Fatal(err)
	}
	// A correct Init whose signature is by another device than the
	// certificate it carries.
	_, wrongSigInit, _ := initiate(a.dev, bundle, nil, c.dev.Sign)
	_, wrongCtxInit, _ := initiate(a.dev, bundle, nil, func(_ string, m []byte) ([]byte, error) { return a.dev.Sign("prekey", m) })
	flipped := func(off int) *Init {
		raw := init.Marshal()
		raw[off] ^= 1
		in, err := ParseInit(raw)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	for _, tc := range []struct {
		name     string
		self     *identity.Device
		spk, opk *identity.Prekey
		init     *Init
		want     error
	}{
		{"missing one-time prekey (consumed)", b.dev, b.spk, nil, init, ErrPrekey},
		{"swapped one-time prekey", b.dev, b.spk, otherOPK, init, ErrPrekey},
		{"one-time prekey with the same ID, other key", b.dev, b.spk, sameIDOtherKey, init, ErrDecrypt},
		{"one-time prekey as signed prekey", b.dev, opk, opk, init, ErrPrekey},
		{"wrong responder", c.dev, c.spk, nil, init, ErrPrekey},
		{"prekeys of another device", b.dev, c.spk, opk, init, ErrPrekey},
		{"signature by another device", b.dev, b.spk, opk, wrongSigInit, ErrDecrypt},
		{"signature in another context", b.dev, b.spk, opk, wrongCtxInit, ErrDecrypt},
		{"flipped X-Wing ciphertext", b.dev, b.spk, opk, flipped(20), ErrDecrypt},
		{"flipped one-time ciphertext", b.dev, b.spk, opk, flipped(initFixedSize + SealedSecretSize + 5), ErrDecrypt},
		{"flipped inner part", b.dev, b.spk, opk, flipped(InitSize - 100), ErrDecrypt},
		{"flipped tag", b.dev, b.spk, opk, flipped(InitSize - 1), ErrDecrypt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Respond(tc.self, tc.spk, tc.opk, tc.init, nil); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// The genuine Init works, and a mismatched prekey ID in the Init does not
	// parse as anything else (IDs are in the transcript).
	if _, err := Respond(b.dev, b.spk, opk, init, nil); err != nil {
		t.Fatal(err)
	}
}

func TestParseInitTruncated(t *testing.T) {
	ps := fixtures()
	for _, withOPK := range []bool{false, true} {
		bundle, _ := ps[1].bundle(withOPK)
		s, init, err := Initiate(ps[0].dev, bundle, nil)
		if err != nil {
			t.Fatal(err)
		}
		raw := init.Marshal()
		want := InitSizeNoOneTime
		if withOPK {
			want = InitSize
		}
		if len(raw) != want {
			t.Fatalf("Init %d bytes, want %d", len(raw), want)
		}
		for n := 0; n < len(raw); n += 97 {
			if _, err := ParseInit(raw[:n]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("truncated to %d: %v", n, err)
			}
		}
		if _, err := ParseInit(append(raw, 0)); !errors.Is(err, ErrMalformed) {
			t.Fatal("trailing byte accepted")
		}
		bad := bytes.Clone(raw)
		bad[2] = 0x02
		if _, err := ParseInit(bad); !errors.Is(err, ErrMalformed) {
			t.Fatal("bad flags accepted")
		}
		if !withOPK {
			bad = bytes.Clone(raw)
			bad[10] = 1
			if _, err := ParseInit(bad); !errors.Is(err, ErrMalformed) {
				t.Fatal("one-time ID without one-time prekey accepted")
			}
		}
		// A message whose Init is cut short.
		m := mustSeal(t, s, "x")
		if _, err := MessageInit(m[:len(raw)/2]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("MessageInit on a truncated message: %v", err)
		}
	}
}

// responder is the caller-level logic: find the prekeys an Init names, respond,
// and delete the one-time prekey after success.
type responder struct {
	p        *party
	sessions map[[32]byte]*Session
}

func (r *responder) receive(msg []byte) ([]byte, error) {
	init, err := MessageInit(msg)
	if err != nil {
		return nil, err
	}
	if init != nil {
		if s, ok := r.sessions[init.ID()]; ok {
			return s.Open(msg)
		}
		var opk *identity.Prekey
		if id, ok := init.OneTimePrekeyID(); ok {
			opkMu.Lock()
			opk = r.p.opks[id] // nil once consumed
			opkMu.Unlock()
		}
		s, err := Respond(r.p.dev, r.p.spk, opk, init, nil)
		if err != nil {
			return nil, err
		}
		pt, err := s.Open(msg)
		if err != nil {
			return nil, err
		}
		if id, ok := init.OneTimePrekeyID(); ok {
			opkMu.Lock()
			delete(r.p.opks, id)
			opkMu.Unlock()
		}
		r.sessions[init.ID()] = s
		return pt, nil
	}
	for _, s := range r.sessions {
		if pt, err := s.Open(msg); err == nil {
			return pt, nil
		}
	}
	return nil, ErrDecrypt
}

// TestInitReplayAfterOPKConsumed: once the responder has deleted the one-time
// prekey, the same Init cannot start a second session (a fresh responder
// state, e.g. after the session was deleted, gets ErrPrekey).
func TestInitReplayAfterOPKConsumed(t *testing.T) {
	ps := fixtures()
	a := ps[0]
	b := newParty(t, 2)
	bundle, _ := b.bundle(false)
	// take an OPK without removing its secret from b (the relay hands out
	// the public half; b keeps the secret until used).
	for _, o := range b.opks {
		bundle.OneTime = o.Public()
		break
	}
	s, _, err := Initiate(a.dev, bundle, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := mustSeal(t, s, "first")
	r := &responder{p: b, sessions: map[[32]byte]*Session{}}
	pt, err := r.receive(m)
	if err != nil || string(pt) != "first" {
		t.Fatalf("%q %v", pt, err)
	}
	if _, err := r.receive(m); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("replay to the live session: %v", err)
	}
	r2 := &responder{p: b, sessions: map[[32]byte]*Session{}} // the session is gone
	if _, err := r2.receive(m); !errors.Is(err, ErrPrekey) {
		t.Fatalf("replay after the one-time prekey was consumed: %v", err)
	}
	// Without a one-time prekey, replay protection of the Init is the
	// caller's (it keeps the Init IDs it has answered): SPEC.md section 11 11.3.
}

// TestSimultaneousInitiation: both sides initiate; the tie-break makes one
// yield, and the two converge on one working session.
func TestSimultaneousInitiation(t *testing.T) {
	ps := fixtures()
	a, b := ps[0], ps[1]
	for round := range 4 {
		bb, bopk := b.bundle(true)
		ab, aopk := a.bundle(true)
		sa, initA, err := Initiate(a.dev, bb, nil)
		if err != nil {
			t.Fatal(err)
		}
		sb, initB, err := Initiate(b.dev, ab, nil)
		if err != nil {
			t.Fatal(err)
		}
		ma := mustSeal(t, sa, "from a")
		mb := mustSeal(t, sb, "from b")
		// Each side receives the other's first message.
		resolve := func(mine *Session, self *party, opk *identity.Prekey, msg []byte, want string) (*Session, bool) {
			theirs, err := MessageInit(msg)
			if err != nil || theirs == nil {
				t.Fatal("no Init")
			}
			if _, err := mine.Open(msg); !errors.Is(err, ErrDecrypt) {
				t.Fatal("initiator session opened a message carrying another Init")
			}
			s, err := Respond(self.dev, self.spk, opk, theirs, nil)
			if err != nil {
				t.Fatal(err)
			}
			mustOpen(t, s, msg, want) // read it either way
			if mine.YieldsTo(theirs) {
				return s, true
			}
			return mine, false
		}
		na, yieldA := resolve(sa, a, aopk, mb, "from b")
		nb, yieldB := resolve(sb, b, bopk, ma, "from a")
		if yieldA == yieldB {
			t.Fatalf("round %d: both sides yield=%v", round, yieldA)
		}
		if na.InitID() != nb.InitID() {
			t.Fatal("the sides kept different sessions")
		}
		ida, idb := initA.ID(), initB.ID()
		wantWinner := ida
		if bytes.Compare(idb[:], ida[:]) < 0 {
			wantWinner = idb
		}
		if na.InitID() != wantWinner {
			t.Fatal("the larger Init won")
		}
		// The yielding side replies first (the winner still attaches its Init).
		first, second := na, nb
		if yieldB {
			first, second = nb, na
		}
		mustOpen(t, second, mustSeal(t, first, "r1"), "r1")
		for range 3 {
			mustOpen(t, first, mustSeal(t, second, "x"), "x")
			mustOpen(t, second, mustSeal(t, first, "y"), "y")
		}
		if na.NeedsInit() || nb.NeedsInit() {
			t.Fatal("still attaching an Init")
		}
	}
}
