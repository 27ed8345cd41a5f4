package senderkey

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"

	"github.com/postern/postern/protocol"
)

var testGroup = GroupID{0x67, 0x72, 0x6f, 0x75, 0x70}

func deviceID(n byte) protocol.DeviceID {
	var d protocol.DeviceID
	for i := range d {
		d[i] = n
	}
	return d
}

func mustHeaderKey(t testing.TB) *HeaderKey {
	t.Helper()
	hk, err := NewHeaderKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return hk
}

func mustOwn(t testing.TB, sender protocol.DeviceID, epoch uint32) *Own {
	t.Helper()
	o, err := NewOwn(testGroup, sender, epoch, nil)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func mustSeal(t testing.TB, o *Own, hk *HeaderKey, pt string) []byte {
	t.Helper()
	m, err := o.Seal(hk, []byte(pt))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustAdd(t testing.TB, s *State, sender protocol.DeviceID, dist []byte) {
	t.Helper()
	d, err := ParseDistribution(dist)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Add(sender, d); err != nil {
		t.Fatal(err)
	}
}

func mustOpen(t testing.TB, s *State, hk *HeaderKey, m []byte, from protocol.DeviceID, want string) {
	t.Helper()
	sender, pt, err := s.Open(hk, m)
	if err != nil {
		t.Fatalf("open %q: %v", want, err)
	}
	if sender != from || string(pt) != want {
		t.Fatalf("opened %q from %s, want %q from %s", pt, sender.Short(), want, from.Short())
	}
}

// wantFail opens m and wants err, and the state unchanged.
func wantFail(t testing.TB, s *State, hk *HeaderKey, m []byte, want error) {
	t.Helper()
	before := s.MarshalSecret()
	sender, pt, err := s.Open(hk, m)
	if !errors.Is(err, want) || pt != nil || sender != (protocol.DeviceID{}) {
		t.Fatalf("Open = %v (plaintext %d bytes), want %v", err, len(pt), want)
	}
	if !bytes.Equal(s.MarshalSecret(), before) {
		t.Fatal("a failed Open changed the state")
	}
}

func TestRoundTrip(t *testing.T) {
	hk := mustHeaderKey(t)
	alice, bob := deviceID(1), deviceID(2)
	a := mustOwn(t, alice, 0)
	b := mustOwn(t, bob, 0)
	sa, sb := NewState(testGroup), NewState(testGroup)
	mustAdd(t, sb, alice, a.Distribution())
	mustAdd(t, sa, bob, b.Distribution())
	for i := range 5 {
		for _, pt := range []string{"", fmt.Sprintf("hello %d", i), string(bytes.Repeat([]byte{'x'}, 1024))} {
			m := mustSeal(t, a, hk, pt)
			if len(m) != len(pt)+MessageOverhead {
				t.Fatalf("message is %d bytes for %d of plaintext", len(m), len(pt))
			}
			mustOpen(t, sb, hk, m, alice, pt)
			mustOpen(t, sa, hk, mustSeal(t, b, hk, pt), bob, pt)
		}
	}
	if a.Iteration() != 15 {
		t.Fatalf("iteration %d after 15 messages", a.Iteration())
	}
	// The largest plaintext fits; one more byte does not.
	big := make([]byte, MaxPlaintextSize)
	m, err := a.Seal(hk, big)
	if err != nil || len(m) != MaxMessageSize {
		t.Fatalf("largest message: %d bytes, %v", len(m), err)
	}
	if _, pt, err := sb.Open(hk, m); err != nil || len(pt) != MaxPlaintextSize {
		t.Fatalf("largest message: %v", err)
	}
	if _, err := a.Seal(hk, make([]byte, MaxPlaintextSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Seal too large: %v", err)
	}
}

func TestOutOfOrder(t *testing.T) {
	hk := mustHeaderKey(t)
	alice := deviceID(1)
	a := mustOwn(t, alice, 0)
	s := NewState(testGroup)
	mustAdd(t, s, alice, a.Distribution())
	var ms [][]byte
	for i := range 10 {
		ms = append(ms, mustSeal(t, a, hk, fmt.Sprint(i)))
	}
	for _, i := range []int{9, 3, 0, 8, 1, 2, 7, 4, 6, 5} {
		mustOpen(t, s, hk, ms[i], alice, fmt.Sprint(i))
		// Each one read once: a replay fails and changes nothing.
		wantFail(t, s, hk, ms[i], ErrDecrypt)
	}
	if n := s.SkippedKeys(); n != 0 {
		t.Fatalf("%d skipped keys left after reading every message", n)
	}
}

func TestSkipLimit(t *testing.T) {
	hk := mustHeaderKey(t)
	alice := deviceID(1)
	a := mustOwn(t, alice, 0)
	s := NewState(testGroup)
	mustAdd(t, s, alice, a.Distribution())
	ms := make([][]byte, MaxSkip+2)
	for i := range ms {
		ms[i] = mustSeal(t, a, hk, fmt.Sprint(i))
	}
	// Iteration MaxSkip+1 needs MaxSkip+1 skipped keys: refused.
	wantFail(t, s, hk, ms[MaxSkip+1], ErrSkipLimit)
	// Iteration MaxSkip needs exactly MaxSkip: read.
	mustOpen(t, s, hk, ms[MaxSkip], alice, fmt.Sprint(MaxSkip))
	if n := s.SkippedKeys(); n != MaxSkip {
		t.Fatalf("%d skipped keys, want %d", n, MaxSkip)
	}
	mustOpen(t, s, hk, ms[MaxSkip+1], alice, fmt.Sprint(MaxSkip+1))
	mustOpen(t, s, hk, ms[0], alice, "0")
	mustOpen(t, s, hk, ms[MaxSkip-1], alice, fmt.Sprint(MaxSkip-1))

	// Per sender key, at most MaxSkip keys are kept: the lowest go first.
	more := make([][]byte, 10)
	for i := range more {
		more[i] = mustSeal(t, a, hk, "more")
	}
	mustOpen(t, s, hk, more[9], alice, "more") // 9 more skipped keys
	if n := s.SkippedKeys(); n != MaxSkip {
		t.Fatalf("%d skipped keys, want the cap %d", n, MaxSkip)
	}
	// 998 were held (1 .. MaxSkip-2), 9 were added: the 7 lowest went.
	for i := 1; i <= 7; i++ {
		wantFail(t, s, hk, ms[i], ErrDecrypt)
	}
	mustOpen(t, s, hk, ms[8], alice, "8")
	mustOpen(t, s, hk, more[0], alice, "more")
}

// TestSkippedKeysCap: the group-wide cap evicts from the sender key that
// holds the most, so a flooding sender loses its own keys first.
func TestSkippedKeysCap(t *testing.T) {
	hk := mustHeaderKey(t)
	s := NewState(testGroup)
	const senders = MaxSkippedKeys/MaxSkip + 1 // one more full sender than fits
	owns := make([]*Own, senders)
	first := make([][]byte, senders)
	for i := range owns {
		id := deviceID(byte(i + 1))
		owns[i] = mustOwn(t, id, 0)
		mustAdd(t, s, id, owns[i].Distribution())
		first[i] = mustSeal(t, owns[i], hk, "first")
	}
	// The quiet sender (the last) skips 10 keys.
	quiet := owns[senders-1]
	var quietMs [][]byte
	for range 10 {
		quietMs = append(quietMs, mustSeal(t, quiet, hk, "quiet"))
	}
	mustOpen(t, s, hk, mustSeal(t, quiet, hk, "quiet last"), quiet.Sender(), "quiet last")
	// The others each skip MaxSkip keys: more than the cap in all.
	for _, o := range owns[:senders-1] {
		for range MaxSkip - 1 {
			mustSeal(t, o, hk, "skipped")
		}
		mustOpen(t, s, hk, mustSeal(t, o, hk, "last"), o.Sender(), "last")
	}
	if n := s.SkippedKeys(); n != MaxSkippedKeys {
		t.Fatalf("%d skipped keys, want the cap %d", n, MaxSkippedKeys)
	}
	// The quiet sender kept all of its keys.
	mustOpen(t, s, hk, first[senders-1], quiet.Sender(), "first")
	for _, m := range quietMs {
		mustOpen(t, s, hk, m, quiet.Sender(), "quiet")
	}
	// The state still encodes and loads at the cap.
	if _, err := UnmarshalState(s.MarshalSecret()); err != nil {
		t.Fatal(err)
	}
}

func TestTamper(t *testing.T) {
	hk := mustHeaderKey(t)
	alice := deviceID(1)
	a := mustOwn(t, alice, 0)
	s := NewState(testGroup)
	mustAdd(t, s, alice, a.Distribution())
	m := mustSeal(t, a, hk, "tamper with me")

	// Every bit flipped anywhere.
	for i := range len(m) * 8 {
		c := bytes.Clone(m)
		c[i/8] ^= 1 << (i % 8)
		wantFail(t, s, hk, c, ErrDecrypt)
	}
	// Truncated at every length, and extended.
	for n := range len(m) {
		wantFail(t, s, hk, m[:n], ErrDecrypt)
	}
	wantFail(t, s, hk, append(bytes.Clone(m), 0), ErrDecrypt)
	// Another header key.
	wantFail(t, s, mustHeaderKey(t), m, ErrDecrypt)
	// A state of another group with the same sender key.
	other := NewState(GroupID{9})
	d, _ := ParseDistribution(a.Distribution())
	d.group = other.group
	if err := other.Add(alice, d); err != nil {
		t.Fatal(err)
	}
	wantFail(t, other, hk, m, ErrDecrypt)
	// A distribution for another group is refused outright.
	d2, _ := ParseDistribution(a.Distribution())
	if err := other.Add(alice, d2); !errors.Is(err, ErrWrongGroup) {
		t.Fatalf("Add of another group's distribution: %v", err)
	}
	mustOpen(t, s, hk, m, alice, "tamper with me")
}

// TestForgery: every member holds every sender's chain key; only the
// signature stops one member writing as another.
func TestForgery(t *testing.T) {
	hk := mustHeaderKey(t)
	alice, mallory := deviceID(1), deviceID(2)
	a := mustOwn(t, alice, 0)
	m := mustOwn(t, mallory, 0)
	s := NewState(testGroup) // bob's
	mustAdd(t, s, alice, a.Distribution())
	mustAdd(t, s, mallory, m.Distribution())

	// 1. Mallory seals with her own key and chain under Alice's ID.
	forged := *m
	forged.sender = alice
	wantFail(t, s, hk, mustSeal(t, &forged, hk, "from alice, honest"), ErrDecrypt)

	// 2. Mallory uses Alice's chain, which she received as a member, and
	// signs with her own key.
	aliceDist, _ := ParseDistribution(a.Distribution())
	genuine := mustSeal(t, a, hk, "genuine") // iteration 0
	withChain := *m
	withChain.sender, withChain.ck, withChain.next, withChain.epoch = alice, aliceDist.ck, aliceDist.iteration, aliceDist.epoch
	wantFail(t, s, hk, mustSeal(t, &withChain, hk, "from alice, honest"), ErrDecrypt)

	// 3. Mallory takes Alice's genuine message, puts another body under
	// the message key she can derive, keeps Alice's signature and seals
	// the header again: the signature covers the body ciphertext.
	inner, err := hk.aead.Open(nil, genuine[1:1+HeaderNonceSize], genuine[1+HeaderNonceSize:], genuine[:1])
	if err != nil {
		t.Fatal(err)
	}
	_, mk := chainStep(&aliceDist.ck)
	body, bnonce := bodyAEAD(&mk)
	ad := appendAD(nil, &testGroup, &alice, 0, 0)
	sig := inner[len(inner)-SignatureSize:]
	// Control: with the genuine plaintext this rebuilds the genuine inner
	// bytes exactly.
	control := append(bytes.Clone(inner[:SenderIDSize+8]), body.Seal(nil, bnonce[:], []byte("genuine"), ad)...)
	if !bytes.Equal(append(control, sig...), inner) {
		t.Fatal("the forgery's construction does not match Seal's")
	}
	swapped := append(bytes.Clone(inner[:SenderIDSize+8]), body.Seal(nil, bnonce[:], []byte("not genuine"), ad)...)
	swapped = append(swapped, sig...)
	forgedMsg := append(bytes.Clone(genuine[:1+HeaderNonceSize]), hk.aead.Seal(nil, genuine[1:1+HeaderNonceSize], swapped, genuine[:1])...)
	wantFail(t, s, hk, forgedMsg, ErrDecrypt)
	mustOpen(t, s, hk, genuine, alice, "genuine")

	// The construction of case 2 with Alice's signing key opens: the
	// signature is all that failed there.
	withKey := withChain
	withKey.priv, withKey.ck, withKey.next = a.priv, a.ck, a.next
	mustOpen(t, s, hk, mustSeal(t, &withKey, hk, "really alice"), alice, "really alice")
	mustOpen(t, s, hk, mustSeal(t, m, hk, "mallory as herself"), mallory, "mallory as herself")
}

// TestRemoval: after a removal, the remaining members rotate; a removed
// member who keeps the old distributions and the old header key reads
// nothing sent in the new epoch, even given the new header key.
func TestRemoval(t *testing.T) {
	hk0, hk1 := mustHeaderKey(t), mustHeaderKey(t)
	alice := deviceID(1) // Bob holds sb, Carol sc
	a0 := mustOwn(t, alice, 0)
	sb, sc := NewState(testGroup), NewState(testGroup)
	mustAdd(t, sb, alice, a0.Distribution())
	mustAdd(t, sc, alice, a0.Distribution())
	before := mustSeal(t, a0, hk0, "before")
	mustOpen(t, sc, hk0, before, alice, "before")
	mustOpen(t, sb, hk0, before, alice, "before")

	// Carol is removed: Alice rotates and tells only Bob.
	a1, err := a0.Rotate(nil)
	if err != nil {
		t.Fatal(err)
	}
	mustAdd(t, sb, alice, a1.Distribution())
	after := mustSeal(t, a1, hk1, "after")
	mustOpen(t, sb, hk1, after, alice, "after")

	wantFail(t, sc, hk0, after, ErrDecrypt)     // old header key
	wantFail(t, sc, hk1, after, ErrNoSenderKey) // even with the new one
	var mk *MissingKeyError
	if _, _, err := sc.Open(hk1, after); !errors.As(err, &mk) || mk.Sender != alice || mk.Epoch != 1 {
		t.Fatalf("missing key error: %v", err)
	}
	// The new chain is not the old one continued: Carol, deriving forward
	// from epoch 0, finds no key that opens the new body.
	ck0 := a0.ck
	d1, _ := ParseDistribution(a1.Distribution())
	for range 2 * MaxSkip {
		if ck0 == d1.ck {
			t.Fatal("the new epoch's chain key follows from the old one")
		}
		ck0, _ = chainStep(&ck0)
	}
	// Nor does she hold the new signing key.
	if bytes.Equal(a0.PublicKey(), a1.PublicKey()) {
		t.Fatal("the new epoch kept the signing key")
	}
}

// TestStragglers: messages of the previous epoch are read up to the end
// the new distribution declares, and nothing beyond; two epochs back,
// nothing.
func TestStragglers(t *testing.T) {
	hk := mustHeaderKey(t)
	alice := deviceID(1)
	a0 := mustOwn(t, alice, 0)
	s := NewState(testGroup)
	mustAdd(t, s, alice, a0.Distribution())
	var old [][]byte
	for i := range 5 {
		old = append(old, mustSeal(t, a0, hk, fmt.Sprint("old ", i)))
	}
	mustOpen(t, s, hk, old[0], alice, "old 0")
	mustOpen(t, s, hk, old[3], alice, "old 3") // 1 and 2 skipped
	a1, err := a0.Rotate(nil)
	if err != nil {
		t.Fatal(err)
	}
	// A copy of the old key seals past the end it declared.
	late := mustSeal(t, a0, hk, "beyond the end")
	d1, _ := ParseDistribution(a1.Distribution())
	if d1.PrevEnd() != 5 || d1.Epoch() != 1 || d1.Iteration() != 0 {
		t.Fatalf("distribution: prevEnd %d epoch %d iteration %d", d1.PrevEnd(), d1.Epoch(), d1.Iteration())
	}
	mustAdd(t, s, alice, a1.Distribution())
	mustOpen(t, s, hk, mustSeal(t, a1, hk, "new 0"), alice, "new 0")
	mustOpen(t, s, hk, old[4], alice, "old 4")
	mustOpen(t, s, hk, old[1], alice, "old 1")
	wantFail(t, s, hk, late, ErrDecrypt)
	wantFail(t, s, hk, old[3], ErrDecrypt) // replay in the previous epoch

	// A skipped key at or beyond the end is deleted when the epoch ends.
	s2 := NewState(testGroup)
	b0 := mustOwn(t, alice, 0)
	mustAdd(t, s2, alice, b0.Distribution())
	bm := [][]byte{mustSeal(t, b0, hk, "0"), mustSeal(t, b0, hk, "1"), mustSeal(t, b0, hk, "2")}
	mustOpen(t, s2, hk, bm[2], alice, "2")
	d := Distribution{group: testGroup, epoch: 1, prevEnd: 1}
	if err := s2.Add(alice, &d); err != nil {
		t.Fatal(err)
	}
	if n := s2.SkippedKeys(); n != 1 {
		t.Fatalf("%d skipped keys after the end 1, want 1", n)
	}
	wantFail(t, s2, hk, bm[1], ErrDecrypt)
	mustOpen(t, s2, hk, bm[0], alice, "0")

	// Epoch 2: epoch 0 is dropped.
	a2, _ := a1.Rotate(nil)
	mustAdd(t, s, alice, a2.Distribution())
	wantFail(t, s, hk, old[2], ErrDecrypt)
	if cur, prev, hasPrev, ok := s.Epochs(alice); !ok || cur != 2 || !hasPrev || prev != 1 {
		t.Fatalf("epochs held: %d %d %v %v", cur, prev, hasPrev, ok)
	}
}

func TestAddRules(t *testing.T) {
	alice := deviceID(1)
	a0 := mustOwn(t, alice, 5)
	a1, _ := a0.Rotate(nil)
	a2, _ := a1.Rotate(nil)
	other5 := mustOwn(t, alice, 5)
	dist := func(o *Own) *Distribution {
		d, err := ParseDistribution(o.Distribution())
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	hk := mustHeaderKey(t)

	s := NewState(testGroup)
	if err := s.Add(alice, dist(a1)); err != nil {
		t.Fatal(err)
	}
	// Out of order: epoch 5 arrives after 6 and becomes the previous.
	m5 := mustSeal(t, a0, hk, "five")
	wantFail(t, s, hk, m5, ErrNoSenderKey)
	if err := s.Add(alice, dist(a0)); err != nil {
		t.Fatal(err)
	}
	// a1 declared the end of epoch 5 as 0 (a0 had sealed nothing then).
	wantFail(t, s, hk, m5, ErrDecrypt)
	for _, c := range []struct {
		name string
		d    *Distribution
		want error
	}{
		{"repeat of the current epoch", dist(a1), nil},
		{"repeat of the previous epoch", dist(a0), nil},
		{"another key for the previous epoch", dist(other5), ErrStaleDistribution},
		{"another key for the current epoch", func() *Distribution { d := dist(a1); d.pub[0] ^= 1; return d }(), ErrStaleDistribution},
		{"an epoch before the previous", func() *Distribution { d := dist(a0); d.epoch = 4; return d }(), ErrStaleDistribution},
	} {
		before := s.MarshalSecret()
		if err := s.Add(alice, c.d); !errors.Is(err, c.want) && err != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if !bytes.Equal(before, s.MarshalSecret()) {
			t.Errorf("%s: the state changed", c.name)
		}
	}
	// A jump of two epochs drops both held ones.
	d8 := dist(a2)
	d8.epoch = 8
	if err := s.Add(alice, d8); err != nil {
		t.Fatal(err)
	}
	if cur, _, hasPrev, _ := s.Epochs(alice); cur != 8 || hasPrev {
		t.Fatalf("after a jump: epoch %d, previous held %v", cur, hasPrev)
	}
	// Removing a sender.
	s.Remove(alice)
	if s.Senders() != 0 {
		t.Fatal("Remove kept the sender")
	}
	// MaxSenders.
	for i := range MaxSenders {
		var id protocol.DeviceID
		id[0], id[1] = byte(i>>8), byte(i)
		if err := s.Add(id, dist(a0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Add(deviceID(0xff), dist(a0)); !errors.Is(err, ErrTooManySenders) {
		t.Fatalf("sender %d: %v", MaxSenders+1, err)
	}
	if got, err := UnmarshalState(s.MarshalSecret()); err != nil || got.Senders() != MaxSenders {
		t.Fatalf("a full state does not load: %v", err)
	}
}

// TestLateJoiner: a device that receives a distribution at iteration n
// reads from n on, not before.
func TestLateJoiner(t *testing.T) {
	hk := mustHeaderKey(t)
	alice := deviceID(1)
	a := mustOwn(t, alice, 0)
	early := mustSeal(t, a, hk, "early")
	s := NewState(testGroup)
	mustAdd(t, s, alice, a.Distribution())
	wantFail(t, s, hk, early, ErrDecrypt)
	mustOpen(t, s, hk, mustSeal(t, a, hk, "late"), alice, "late")
}

func TestExhausted(t *testing.T) {
	hk := mustHeaderKey(t)
	alice := deviceID(1)
	a := mustOwn(t, alice, 0)
	s := NewState(testGroup)
	a.next = MaxIteration
	mustAdd(t, s, alice, a.Distribution())
	mustOpen(t, s, hk, mustSeal(t, a, hk, "last"), alice, "last")
	if _, err := a.Seal(hk, nil); !errors.Is(err, ErrExhausted) {
		t.Fatalf("Seal past MaxIteration: %v", err)
	}
	a.epoch = ^uint32(0)
	if _, err := a.Rotate(nil); !errors.Is(err, ErrExhausted) {
		t.Fatalf("Rotate past the last epoch: %v", err)
	}
}

func TestRedaction(t *testing.T) {
	hk := mustHeaderKey(t)
	a := mustOwn(t, deviceID(1), 0)
	d, _ := ParseDistribution(a.Distribution())
	s := NewState(testGroup)
	s.Add(deviceID(1), d)
	for _, v := range []any{hk, *hk, a, *a, d, *d, s, *s} {
		for _, f := range []string{"%v", "%+v", "%#v", "%x", "%s"} {
			out := fmt.Sprintf(f, v)
			for _, secret := range [][]byte{hk.k[:], a.ck[:], a.seed[:], a.priv} {
				if bytes.Contains([]byte(out), secret) || bytes.Contains([]byte(out), []byte(fmt.Sprintf("%x", secret[:8]))) {
					t.Fatalf("%s of %T shows a secret: %s", f, v, out)
				}
			}
		}
	}
}

func TestEncodings(t *testing.T) {
	hk := mustHeaderKey(t)
	alice, bob := deviceID(1), deviceID(2)
	a := mustOwn(t, alice, 3)
	mustSeal(t, a, hk, "advance")
	a2, err := UnmarshalOwn(a.MarshalSecret())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a2.MarshalSecret(), a.MarshalSecret()) || !bytes.Equal(a2.PublicKey(), a.PublicKey()) {
		t.Fatal("own key does not survive an encoding")
	}
	s := NewState(testGroup)
	mustAdd(t, s, alice, a.Distribution())
	m0, m1, m2 := mustSeal(t, a2, hk, "0"), mustSeal(t, a2, hk, "1"), mustSeal(t, a2, hk, "2")
	mustOpen(t, s, hk, m2, alice, "2")
	b := mustOwn(t, bob, 0)
	mustAdd(t, s, bob, b.Distribution())
	a3, _ := a2.Rotate(nil)
	mustAdd(t, s, alice, a3.Distribution())
	enc := s.MarshalSecret()
	s2, err := UnmarshalState(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s2.MarshalSecret(), enc) {
		t.Fatal("state does not survive an encoding")
	}
	mustOpen(t, s2, hk, m0, alice, "0")
	mustOpen(t, s2, hk, m1, alice, "1")
	mustOpen(t, s2, hk, mustSeal(t, a3, hk, "3"), alice, "3")

	// Each malformed input is refused.
	dist := a.Distribution()
	for _, c := range []struct {
		name string
		b    []byte
		load func([]byte) error
	}{
		{"distribution short", dist[:len(dist)-1], loadDist},
		{"distribution long", append(bytes.Clone(dist), 0), loadDist},
		{"distribution tag", set(dist, 0, tagOwn), loadDist},
		{"distribution version", set(dist, 1, 2), loadDist},
		{"own short", a.MarshalSecret()[:OwnStateSize-1], loadOwn},
		{"own tag", set(a.MarshalSecret(), 0, tagState), loadOwn},
		{"state trailing", append(bytes.Clone(enc), 0), loadState},
		{"state short", enc[:len(enc)-1], loadState},
		{"state version", set(enc, 1, 2), loadState},
		{"state count", set(enc, stateFixedSize-1, 3), loadState},
		{"state flags", set(enc, stateFixedSize+SenderIDSize, 2), loadState},
		{"state order", swapSenders(t, enc), loadState},
		{"state too big", make([]byte, MaxStateSize+1), loadState},
	} {
		if err := c.load(c.b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if _, err := ParseHeaderKey(make([]byte, 31)); !errors.Is(err, ErrMalformed) {
		t.Error("a 31-byte header key parsed")
	}
	if hk2, err := ParseHeaderKey(hk.MarshalSecret()); err != nil || !hk2.Equal(hk) || hk2.Equal(mustHeaderKey(t)) {
		t.Error("header key encoding")
	}
}

func loadDist(b []byte) error  { _, err := ParseDistribution(b); return err }
func loadOwn(b []byte) error   { _, err := UnmarshalOwn(b); return err }
func loadState(b []byte) error { _, err := UnmarshalState(b); return err }

func set(b []byte, i int, v byte) []byte {
	c := bytes.Clone(b)
	c[i] = v
	return c
}

// swapSenders makes a two-sender state list its senders in descending
// order.
func swapSenders(t *testing.T, enc []byte) []byte {
	s, err := UnmarshalState(enc)
	if err != nil || s.Senders() != 2 {
		t.Fatal("swapSenders needs a two-sender state")
	}
	ids := s.sortedSenders()
	var parts [2][]byte
	for i, id := range ids {
		one := &State{group: s.group, senders: map[protocol.DeviceID]*senderKeys{id: s.senders[id]}}
		parts[i] = one.MarshalSecret()[stateFixedSize:]
	}
	out := bytes.Clone(enc[:stateFixedSize])
	return append(append(out, parts[1]...), parts[0]...)
}

// TestPublicKeyUsed: a distribution's key is the one Seal signs with.
func TestPublicKeyUsed(t *testing.T) {
	a := mustOwn(t, deviceID(1), 0)
	d, _ := ParseDistribution(a.Distribution())
	if !bytes.Equal(d.PublicKey(), a.priv.Public().(ed25519.PublicKey)) {
		t.Fatal("distribution carries another public key")
	}
}

// TestRandomFailure: a failing random source is ErrRandom, and Seal then
// leaves the key as it was (the iteration is not spent).
func TestRandomFailure(t *testing.T) {
	if _, err := NewOwn(testGroup, deviceID(1), 0, bytes.NewReader(make([]byte, 40))); !errors.Is(err, ErrRandom) {
		t.Fatalf("NewOwn with 40 random bytes: %v", err)
	}
	if _, err := NewHeaderKey(bytes.NewReader(nil)); !errors.Is(err, ErrRandom) {
		t.Fatalf("NewHeaderKey with no random bytes: %v", err)
	}
	hk := mustHeaderKey(t)
	a := mustOwn(t, deviceID(1), 0)
	s := NewState(testGroup)
	mustAdd(t, s, a.Sender(), a.Distribution())
	before := a.MarshalSecret()
	a.rand = bytes.NewReader(make([]byte, HeaderNonceSize-1))
	if _, err := a.Seal(hk, []byte("x")); !errors.Is(err, ErrRandom) {
		t.Fatalf("Seal with a short random source: %v", err)
	}
	if !bytes.Equal(a.MarshalSecret(), before) {
		t.Fatal("a failed Seal changed the key")
	}
	a.rand = bytes.NewReader(make([]byte, HeaderNonceSize))
	mustOpen(t, s, hk, mustSeal(t, a, hk, "x"), a.Sender(), "x")
}
