package session

import (
	"bytes"
	"errors"
	"testing"
)

// keyNonce is one (key, nonce) pair an AEAD used.
type keyNonce struct {
	key   [keySize]byte
	nonce string
}

// TestRollbackNoNonceReuse reproduces the attack on a restored home: a
// session state is copied, messages are sealed, the copy is restored and
// other messages of the same lengths are sealed from it. Both runs derive the
// same message keys (same chain key). In the previous format (body nonce
// 0^12, still produced here by the read-only legacy path) the two body
// ciphertexts XOR to the two plaintexts' XOR, so whoever knows or guesses
// one plaintext reads the other, and Poly1305's one-time key repeats: the
// subtest "previous format" asserts exactly that leak. In this format every
// (key, nonce) pair of both runs is distinct and the XOR shows nothing;
// were Seal to go back to the fixed nonce, "this format" would fail.
func TestRollbackNoNonceReuse(t *testing.T) {
	for _, tc := range []struct {
		name string
		body bodyFormat
	}{
		{"previous format", bodyLegacy},
		{"this format", bodyNonce},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, r := steady(t)
			snap := a.MarshalSecret() // the copy of the home
			restore := func() *Session {
				t.Helper()
				s, err := UnmarshalSecret(snap, &Options{Now: a.now})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			first, second := restore(), restore()
			// The message keys both runs use: the chain from the copy.
			ck := first.st.cks
			hks := first.st.hks
			const rounds = 3
			var mks [rounds][keySize]byte
			for i := range mks {
				ck, mks[i] = kdfCK(&ck)
			}

			seen := map[keyNonce]string{}
			use := func(what string, key [keySize]byte, nonce []byte) bool {
				kn := keyNonce{key, string(nonce)}
				if prev, ok := seen[kn]; ok {
					t.Logf("(key, nonce) of %s repeats %s", what, prev)
					return true
				}
				seen[kn] = what
				return false
			}
			var leaks, repeats int
			for i := range rounds {
				ptA := bytes.Repeat([]byte{'a' + byte(i)}, 300)
				ptB := append([]byte("the other message, same length: "), bytes.Repeat([]byte{'z'}, 300-32)...)
				mA, err := first.sealAppend(nil, ptA, padTo1024, tc.body)
				if err != nil {
					t.Fatal(err)
				}
				mB, err := second.sealAppend(nil, ptB, padTo1024, tc.body)
				if err != nil {
					t.Fatal(err)
				}
				fa, okA := splitMessage(mA)
				fb, okB := splitMessage(mB)
				if !okA || !okB || len(fa.body) != len(fb.body) {
					t.Fatal("framing")
				}
				if tc.body == bodyNonce && (fa.flags&flagNonceBody == 0 || fb.flags&flagNonceBody == 0) {
					t.Fatal("Seal wrote a message without flag 0x04")
				}
				// The attack: XOR of the body ciphertexts against XOR of
				// the plaintexts.
				x := make([]byte, len(ptA))
				for j := range x {
					x[j] = fa.body[j] ^ fb.body[j] ^ ptA[j] ^ ptB[j]
				}
				if bytes.Equal(x, make([]byte, len(x))) {
					leaks++
				}
				bodyNonce := func(f framed) []byte {
					if f.flags&flagNonceBody != 0 {
						return f.nonce
					}
					return zeroNonce[:]
				}
				for _, u := range []struct {
					what  string
					key   [keySize]byte
					nonce []byte
				}{
					{"header of A", hks, fa.nonce},
					{"body of A", mks[i], bodyNonce(fa)},
					{"header of B", hks, fb.nonce},
					{"body of B", mks[i], bodyNonce(fb)},
				} {
					if use(u.what+" "+string('0'+rune(i)), u.key, u.nonce) {
						repeats++
					}
				}
				// A receiver that read A refuses B, which reuses its
				// counter (the client's lost-session reset follows, SPEC.md
				// section 9), and is left unchanged.
				if _, err := r.Open(mA); err != nil {
					t.Fatal(err)
				}
				before := r.MarshalSecret()
				if _, err := r.Open(mB); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("re-sent counter: %v", err)
				}
				if !bytes.Equal(r.MarshalSecret(), before) {
					t.Fatal("refused message changed the receiver")
				}
			}
			switch tc.body {
			case bodyLegacy:
				// What the previous format allowed: every body pair leaks.
				if leaks != rounds || repeats != rounds {
					t.Fatalf("previous format: %d leaks, %d repeated pairs; the attack should reproduce", leaks, repeats)
				}
			case bodyNonce:
				if leaks != 0 || repeats != 0 {
					t.Fatalf("restored state: %d body XOR leaks, %d repeated (key, nonce) pairs", leaks, repeats)
				}
			}
		})
	}
}

// TestRollbackAtNewChain: a copy taken when the next Seal starts a new
// sending chain re-derives nothing, since each restore draws a new ratchet
// key; the receiver reads the first of the two chains and refuses the other
// (its header key was replaced).
func TestRollbackAtNewChain(t *testing.T) {
	a, r := steady(t)
	mustOpen(t, a, mustSeal(t, r, "turn"), "turn")
	if !a.st.pendingStep {
		t.Fatal("no new chain due")
	}
	snap := a.MarshalSecret()
	s1, err := UnmarshalSecret(snap, &Options{Now: a.now})
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := UnmarshalSecret(snap, &Options{Now: a.now})
	m1 := mustSeal(t, s1, "one")
	m2 := mustSeal(t, s2, "two")
	if s1.st.rk == s2.st.rk || s1.st.cks == s2.st.cks {
		t.Fatal("two restores derived the same chain")
	}
	mustOpen(t, r, m1, "one")
	if _, err := r.Open(m2); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("second chain from the same copy: %v", err)
	}
}
