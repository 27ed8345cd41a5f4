package session

import (
	"crypto/ecdh"
	"fmt"
	"testing"
)

// adversary holds a snapshot E of A's state. In the quantum model it can
// compute every X25519 private key from its public key: the test gives it A's
// fresh ratchet keys (with B's public keys, that yields every DH output of
// the session). It cannot compute ML-KEM shared secrets for keys whose
// decapsulation key it does not hold: when it mirrors A's sends, it has to
// encapsulate on its own, getting another secret.
type adversary struct {
	a, b, e *Session
	lastA   *ecdh.PrivateKey
	healed  bool
}

func watch(t *testing.T, a, b *Session, quantum bool) *adversary {
	w := &adversary{a: a, b: b}
	a.newDH = func() (*ecdh.PrivateKey, error) {
		k, err := newDHKey()
		w.lastA = k
		return k, err
	}
	w.e = clone(t, a)
	if quantum {
		w.e.newDH = func() (*ecdh.PrivateKey, error) { return w.lastA, nil }
	}
	return w
}

// aSends: A seals; the adversary mirrors the step. It reports whether the
// adversary derived the same message (same sending chain key).
func (w *adversary) aSends(t *testing.T, pt string) []byte {
	m := mustSeal(t, w.a, pt)
	if _, err := w.e.Seal([]byte(pt), 0); err != nil {
		w.healed = true
	}
	mustOpen(t, w.b, m, pt)
	if w.e.st.cks != w.a.st.cks {
		w.healed = true
	}
	return m
}

// bSends: B seals, A reads; it reports whether the adversary reads it too.
func (w *adversary) bSends(t *testing.T, pt string) bool {
	m := mustSeal(t, w.b, pt)
	mustOpen(t, w.a, m, pt)
	got, err := w.e.Open(m)
	ok := err == nil && string(got) == pt
	if !ok {
		w.healed = true
	}
	return ok
}

// warm runs the first turns: both sides have sent their first PQ step.
func warm(t *testing.T, ca, cb *clock) (a, b *Session) {
	ps := fixtures()
	a, b = establish(t, ps[0], ps[1], true, ca, cb)
	for i := range 3 {
		mustOpen(t, a, mustSeal(t, b, fmt.Sprint("b", i)), fmt.Sprint("b", i))
		mustOpen(t, b, mustSeal(t, a, fmt.Sprint("a", i)), fmt.Sprint("a", i))
	}
	if a.st.pqNew || b.st.pqNew {
		t.Fatal("first PQ steps not done")
	}
	return a, b
}

// TestPQHealing: a snapshot of A taken before A's PQ step, with every X25519
// secret, reads the messages up to that step and none after: the ML-KEM
// shared secret is the one thing it lacks. The control run, where A's next
// turn is classical, shows the same adversary reads on (so the test would
// catch a PQ step that did not heal).
func TestPQHealing(t *testing.T) {
	for _, tc := range []struct {
		name       string
		pqDue      bool
		wantHealed bool
	}{
		{"PQ step heals", true, true},
		{"control: classical turn does not heal a quantum adversary", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, cb := newClock(), newClock()
			a, b := warm(t, ca, cb)
			w := watch(t, a, b, true)
			if tc.pqDue {
				ca.advance(PQInterval)
				cb.advance(PQInterval)
			}
			// B's turn: under a PQ step to A's key, whose decapsulation key
			// is in the snapshot: the adversary still reads.
			if !w.bSends(t, "b: before") {
				t.Fatal("adversary cannot read B's message before A's step")
			}
			// A's turn: PQ step (or classical in the control).
			m := w.aSends(t, "a: step")
			if got := m[0]&flagPQ != 0; got != tc.pqDue {
				t.Fatalf("A's turn PQ = %v", got)
			}
			read := w.bSends(t, "b: after")
			for i := range 5 {
				w.aSends(t, "a")
				read = w.bSends(t, fmt.Sprint("b", i)) || read
			}
			if read == tc.wantHealed {
				t.Fatalf("adversary reads after A's turn: %v", read)
			}
		})
	}
}

// TestClassicalHealing: a snapshot without the ability to compute X25519
// secrets stops reading after A's next turn, PQ step or not.
func TestClassicalHealing(t *testing.T) {
	ca, cb := newClock(), newClock()
	a, b := warm(t, ca, cb)
	w := watch(t, a, b, false)
	if !w.bSends(t, "b: before") {
		t.Fatal("snapshot cannot read the current chain")
	}
	if m := w.aSends(t, "a: turn"); m[0]&flagPQ != 0 {
		t.Fatal("unexpected PQ step")
	}
	if w.bSends(t, "b: after") {
		t.Fatal("classical adversary reads after A's turn")
	}
}

// TestPQHealingBound measures the worst case of the bound stated in
// SPEC.md section 11: a snapshot of A taken right after A's PQ step, in a
// conversation where each side sends one message per turn, with no clock
// change. The adversary must stop reading B's messages within
// PQMessageInterval messages plus one turn of each side.
func TestPQHealingBound(t *testing.T) {
	ca, cb := newClock(), newClock()
	a, b := warm(t, ca, cb)
	// Run until A sends a PQ step, then snapshot.
	for i := 0; ; i++ {
		if i > 4*PQMessageInterval {
			t.Fatal("no PQ step from A")
		}
		mustOpen(t, a, mustSeal(t, b, "b"), "b")
		m := mustSeal(t, a, "a")
		mustOpen(t, b, m, "a")
		if m[0]&flagPQ != 0 {
			break
		}
	}
	w := watch(t, a, b, true)
	msgs := 0
	for !w.healed {
		if msgs > 4*PQMessageInterval {
			t.Fatal("never healed")
		}
		w.bSends(t, "b")
		msgs++
		if w.healed {
			break
		}
		w.aSends(t, "a")
		msgs++
	}
	t.Logf("snapshot taken right after A's PQ step healed after %d messages (both directions)", msgs)
	if msgs > PQMessageInterval+4 {
		t.Fatalf("healed after %d messages, bound is %d", msgs, PQMessageInterval+4)
	}
}
