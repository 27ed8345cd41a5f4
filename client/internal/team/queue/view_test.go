package queue

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"
)

func TestViewApply(t *testing.T) {
	s := newTestSpace(t)
	v := NewView()
	if _, ok := v.Get(conv(1)); ok {
		t.Fatal("an empty view holds a conversation")
	}
	init := Initial(t0, true)
	if r := v.Current(conv(1), init); r.Version != 0 || r.Value != init || r.Sealed != nil {
		t.Fatalf("Current of an unknown conversation: %+v", r)
	}
	reg := func(ver uint64, val Value) Register {
		r, err := s.OpenRegister(conv(1), ver, mustSeal(t, s, conv(1), val), Value{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r2, r3 := reg(2, vClaimed), reg(3, vAssigned)
	for _, step := range []struct {
		r    Register
		want bool
		hold uint64
	}{
		{Register{Value: init}, false, 0}, // version 0 never applies
		{r2, true, 2},
		{r2, false, 2}, // a repeat
		{r3, true, 3},
		{r2, false, 3},                // older, late
		{reg(3, vResolved), false, 3}, // same version: the first one seen stays
	} {
		got, err := v.Apply(conv(1), step.r)
		if err != nil || got != step.want {
			t.Fatalf("Apply version %d: %v, %v; want %v", step.r.Version, got, err, step.want)
		}
		if r, _ := v.Get(conv(1)); r.Version != step.hold {
			t.Fatalf("view at version %d, want %d", r.Version, step.hold)
		}
	}
	if r, _ := v.Get(conv(1)); r.Value != vAssigned || !bytes.Equal(r.Sealed, r3.Sealed) {
		t.Fatal("the view does not hold version 3's value")
	}
	// The view keeps its own copy of the bytes.
	r, _ := v.Get(conv(1))
	r.Sealed[0] ^= 1
	if again, _ := v.Get(conv(1)); again.Sealed[0] != valueFormat {
		t.Fatal("Get shares the view's bytes")
	}
	if v.Len() != 1 {
		t.Fatalf("Len %d", v.Len())
	}
}

func TestViewLimit(t *testing.T) {
	v := NewView()
	r := Register{Version: 1, Value: vNew}
	for i := range MaxConversations {
		var c ConversationID
		c[0], c[1], c[2] = byte(i>>16), byte(i>>8), byte(i)
		v.regs[c] = r // filled directly: opening 100 000 values adds nothing here
	}
	if ok, err := v.Apply(conv(0xff), r); ok || !errors.Is(err, ErrLimit) {
		t.Fatalf("conversation %d: %v, %v; want ErrLimit", MaxConversations+1, ok, err)
	}
	var held ConversationID // {0,0,0,...} is held: a newer version still applies
	if ok, err := v.Apply(held, Register{Version: 2, Value: vNew}); !ok || err != nil {
		t.Fatalf("a held conversation at the limit: %v, %v", ok, err)
	}
}

// claimFor makes alice's claim request for conversation 1 from the view.
func claimFor(t *testing.T, s *Space, v *View, by Actor) *Request {
	t.Helper()
	cur := v.Current(conv(1), vNew)
	next, err := Claim(cur.Value, by)
	if err != nil {
		t.Fatal(err)
	}
	req, err := s.Request(conv(1), cur, OpClaim, next)
	if err != nil {
		t.Fatal(err)
	}
	if req.Token != s.Token(conv(1)) || req.Expected != cur.Version || len(req.Sealed) != SealedValueSize {
		t.Fatalf("request %+v", req)
	}
	return req
}

func TestAnswerWon(t *testing.T) {
	s, v := newTestSpace(t), NewView()
	req := claimFor(t, s, v, alice)
	for _, bad := range []struct {
		ver uint64
		val []byte
	}{{2, req.Sealed}, {0, req.Sealed}, {1, mustSeal(t, s, conv(1), req.Value)}, {1, nil}} {
		if _, err := s.Answer(v, req, true, bad.ver, bad.val); !errors.Is(err, ErrAnswer) {
			t.Fatalf("ok at version %d: %v, want ErrAnswer", bad.ver, err)
		}
		if v.Len() != 0 {
			t.Fatal("a refused answer changed the view")
		}
	}
	out, err := s.Answer(v, req, true, 1, req.Sealed)
	if err != nil || !out.Won || !out.Applied || out.Retry || out.Announce == nil {
		t.Fatalf("won: %+v, %v", out, err)
	}
	if e := out.Announce; e.Conversation != conv(1) || e.Version != 1 || !bytes.Equal(e.Sealed, req.Sealed) {
		t.Fatalf("announce %+v", e)
	}
	if r, _ := v.Get(conv(1)); r.Version != 1 || r.Value.Owner != alice.Identity {
		t.Fatalf("view after winning: %+v", r)
	}
}

func TestAnswerLost(t *testing.T) {
	s := newTestSpace(t)
	va, vb := NewView(), NewView()
	ra, rb := claimFor(t, s, va, alice), claimFor(t, s, vb, bob)
	// bob wins version 1; alice's compare-and-set from 0 loses and gets
	// bob's.
	if _, err := s.Answer(vb, rb, true, 1, rb.Sealed); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Answer(va, ra, false, 0, nil); !errors.Is(err, ErrAnswer) {
		t.Fatalf("lost at the expected version: %v", err)
	}
	if _, err := s.Answer(va, ra, false, 1, []byte("garbage")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("lost with a bad value: %v", err)
	}
	if va.Len() != 0 {
		t.Fatal("a refused answer changed the view")
	}
	out, err := s.Answer(va, ra, false, 1, rb.Sealed)
	if err != nil || out.Won || !out.Applied || out.Announce != nil || out.Retry {
		t.Fatalf("lost: %+v, %v", out, err)
	}
	// Adopted: the version with the value, equal to the winner's view.
	a, _ := va.Get(conv(1))
	b, _ := vb.Get(conv(1))
	if a.Version != 1 || a.Value != b.Value || a.Value.Owner != bob.Identity {
		t.Fatalf("alice adopted %+v, bob holds %+v", a, b)
	}
	// alice now sees it claimed by bob: a second claim is refused before
	// any write.
	if _, err := Claim(a.Value, alice); !errors.Is(err, ErrOwned) {
		t.Fatalf("claim after adopting: %v", err)
	}
	// A register behind the request's version.
	next, _ := Resolve(b.Value, bob, t0+1)
	req, err := s.Request(conv(1), b, OpResolve, next)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Answer(vb, req, false, 0, nil); !errors.Is(err, ErrBehind) {
		t.Fatalf("register behind: %v", err)
	}
	if r, _ := vb.Get(conv(1)); r.Version != 1 {
		t.Fatal("ErrBehind moved the view")
	}
}

// TestReopenRetry: a reopen that loses to another write is tried again
// only while the adopted state is still closed.
func TestReopenRetry(t *testing.T) {
	s := newTestSpace(t)
	v := NewView()
	resolved := mustSeal(t, s, conv(1), vResolved)
	if _, _, err := s.Learn(v, conv(1), 4, resolved); err != nil {
		t.Fatal(err)
	}
	reopen := func() *Request {
		cur := v.Current(conv(1), vNew)
		next, err := Reopen(cur.Value, carol, t0+50, false)
		if err != nil {
			t.Fatal(err)
		}
		req, err := s.Request(conv(1), cur, OpReopen, next)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	// Someone archived it first: still closed, try again.
	req := reopen()
	out, err := s.Answer(v, req, false, 5, mustSeal(t, s, conv(1), vArchived))
	if err != nil || !out.Retry {
		t.Fatalf("lost to an archive: %+v, %v", out, err)
	}
	// Another device's reopen landed first: new, nothing to retry.
	req = reopen()
	other, _ := Reopen(vArchived, bob, t0+50, false)
	out, err = s.Answer(v, req, false, 6, mustSeal(t, s, conv(1), other))
	if err != nil || out.Retry {
		t.Fatalf("lost to another reopen: %+v, %v", out, err)
	}
	// A claim that loses never asks for a retry.
	creq := claimFor(t, s, v, carol)
	out, err = s.Answer(v, creq, false, 7, mustSeal(t, s, conv(1), vResolved))
	if err != nil || out.Retry {
		t.Fatalf("a lost claim: %+v, %v", out, err)
	}
}

func TestAfterLost(t *testing.T) {
	s := newTestSpace(t)
	t.Run("landed", func(t *testing.T) {
		v := NewView()
		req := claimFor(t, s, v, alice)
		out, err := s.AfterLost(v, req, 1, req.Sealed)
		if err != nil || !out.Won || !out.Applied || out.Announce == nil || out.Announce.Version != 1 {
			t.Fatalf("%+v, %v", out, err)
		}
	})
	t.Run("not landed", func(t *testing.T) {
		v := NewView()
		req := claimFor(t, s, v, alice)
		out, err := s.AfterLost(v, req, 0, nil)
		if err != nil || out.Won || out.Applied || out.Announce != nil || v.Len() != 0 {
			t.Fatalf("%+v, %v", out, err)
		}
		if _, err := s.AfterLost(v, req, 0, []byte{1}); !errors.Is(err, ErrMalformed) {
			t.Fatalf("a value at version 0: %v", err)
		}
	})
	t.Run("not landed, another value at the view's version", func(t *testing.T) {
		v := NewView()
		if _, _, err := s.Learn(v, conv(1), 3, mustSeal(t, s, conv(1), vClaimed)); err != nil {
			t.Fatal(err)
		}
		cur, _ := v.Get(conv(1))
		next, _ := Resolve(cur.Value, alice, t0+1)
		req, _ := s.Request(conv(1), cur, OpResolve, next)
		if _, err := s.AfterLost(v, req, 3, mustSeal(t, s, conv(1), vClaimed)); !errors.Is(err, ErrAnswer) {
			t.Fatalf("%v", err)
		}
		out, err := s.AfterLost(v, req, 3, cur.Sealed)
		if err != nil || out.Won || out.Applied || out.Announce != nil || out.Register.Version != 3 {
			t.Fatalf("%+v, %v", out, err)
		}
	})
	t.Run("someone else's landed, then more", func(t *testing.T) {
		v := NewView()
		req := claimFor(t, s, v, alice)
		bobs := mustSeal(t, s, conv(1), Value{State: Claimed, Owner: bob.Identity, Opened: t0})
		// Read at version 2: not ours (another value) - announced anyway,
		// since the team may not know it.
		out, err := s.AfterLost(v, req, 2, bobs)
		if err != nil || out.Won || !out.Applied || out.Announce == nil || out.Announce.Version != 2 || !bytes.Equal(out.Announce.Sealed, bobs) {
			t.Fatalf("%+v, %v", out, err)
		}
	})
	t.Run("ours at a later version is not won", func(t *testing.T) {
		v := NewView()
		req := claimFor(t, s, v, alice)
		out, err := s.AfterLost(v, req, 2, req.Sealed) // impossible in practice; not ours at Expected+1
		if err != nil || out.Won {
			t.Fatalf("%+v, %v", out, err)
		}
	})
	t.Run("behind", func(t *testing.T) {
		v := NewView()
		if _, _, err := s.Learn(v, conv(1), 3, mustSeal(t, s, conv(1), vClaimed)); err != nil {
			t.Fatal(err)
		}
		cur, _ := v.Get(conv(1))
		next, _ := Resolve(cur.Value, alice, t0+1)
		req, _ := s.Request(conv(1), cur, OpResolve, next)
		if _, err := s.AfterLost(v, req, 2, mustSeal(t, s, conv(1), vNew)); !errors.Is(err, ErrBehind) {
			t.Fatalf("%v", err)
		}
	})
}

func TestRequestLimit(t *testing.T) {
	s := newTestSpace(t)
	if _, err := s.Request(conv(1), Register{Version: ^uint64(0), Value: vClaimed}, OpResolve, vResolved); !errors.Is(err, ErrLimit) {
		t.Fatalf("%v", err)
	}
	if _, err := s.Request(conv(1), Register{}, OpClaim, Value{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("%v", err)
	}
}

func TestReceive(t *testing.T) {
	s := newTestSpace(t)
	v := NewView()
	e1 := Entry{conv(1), 2, mustSeal(t, s, conv(1), vClaimed)}
	e2 := Entry{conv(2), 1, mustSeal(t, s, conv(2), vNew)}
	bad := Entry{conv(3), 1, mustSeal(t, s, conv(1), vNew)} // sealed for another conversation
	if n, err := s.Receive(v, Change{e1, e2, bad}); !errors.Is(err, ErrDecrypt) || n != 0 || v.Len() != 0 {
		t.Fatalf("a change with an entry that does not open: %d, %v, view of %d", n, err, v.Len())
	}
	if n, err := s.Receive(v, Change{e1, Entry{conv(2), 0, nil}}); !errors.Is(err, ErrMalformed) || n != 0 || v.Len() != 0 {
		t.Fatalf("version 0: %d, %v", n, err)
	}
	if n, err := s.Receive(v, Change{e1, e2}); err != nil || n != 2 {
		t.Fatalf("%d, %v", n, err)
	}
	if n, err := s.Receive(v, Change{e1, e2}); err != nil || n != 0 {
		t.Fatalf("a repeat moved the view: %d, %v", n, err)
	}
}

// relayRegister is the relay's side of one claim space as section 10
// "Claim spaces" states it (compare-and-set, the write capability),
// enough to drive the client side here; the relay's own implementation
// and its tests are relay/claims.go's.
type relayRegister struct {
	mu   sync.Mutex
	cap  int
	regs map[[32]byte]struct {
		ver uint64
		val []byte
	}
}

const answerRefused = -1

// set answers SetClaim: 1 ok, 0 lost, answerRefused.
func (r *relayRegister) set(cap int, token [32]byte, expected uint64, value []byte) (int, uint64, []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cap != r.cap {
		return answerRefused, 0, nil
	}
	cur := r.regs[token]
	if cur.ver != expected {
		return 0, cur.ver, bytes.Clone(cur.val)
	}
	cur.ver, cur.val = expected+1, bytes.Clone(value)
	r.regs[token] = cur
	return 1, cur.ver, bytes.Clone(value)
}

func (r *relayRegister) get(token [32]byte) (uint64, []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.regs[token]
	return cur.ver, bytes.Clone(cur.val)
}

func newRelayRegister() *relayRegister {
	return &relayRegister{regs: map[[32]byte]struct {
		ver uint64
		val []byte
	}{}}
}

// TestConcurrentClaims: two staff members claim one conversation at the
// same moment, 100 times (a conversation each round): exactly one wins
// each time, and both views, and a third device that only receives the
// state change, agree on the owner.
func TestConcurrentClaims(t *testing.T) {
	s := newTestSpace(t)
	relay := newRelayRegister()
	views := []*View{NewView(), NewView(), NewView()}
	claimers := []Actor{alice, bob}
	for round := range 100 {
		c := conv(byte(round))
		c[1] = byte(round >> 8)
		var wg sync.WaitGroup
		outs := make([]Outcome, 2)
		errs := make([]error, 2)
		for i, who := range claimers {
			wg.Go(func() {
				cur := views[i].Current(c, vNew)
				next, err := Claim(cur.Value, who)
				if err != nil {
					errs[i] = err
					return
				}
				req, err := s.Request(c, cur, OpClaim, next)
				if err != nil {
					errs[i] = err
					return
				}
				res, ver, val := relay.set(0, req.Token, req.Expected, req.Sealed)
				outs[i], errs[i] = s.Answer(views[i], req, res == 1, ver, val)
			})
		}
		wg.Wait()
		won := 0
		for i := range outs {
			if errs[i] != nil {
				t.Fatalf("round %d: %v", round, errs[i])
			}
			if outs[i].Won {
				won++
				if _, err := s.Receive(views[2], Change{*outs[i].Announce}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d claims won", round, won)
		}
		ver, val := relay.get(s.Token(c))
		for i, v := range views {
			r, _ := v.Get(c)
			if r.Version != ver || !bytes.Equal(r.Sealed, val) || !r.Value.State.Open() {
				t.Fatalf("round %d: device %d holds version %d, the register %d", round, i, r.Version, ver)
			}
		}
	}
}

func TestViewChanges(t *testing.T) {
	s := newTestSpace(t)
	v := NewView()
	if got := v.Changes(nil); len(got) != 0 {
		t.Fatalf("an empty view gives %d changes", len(got))
	}
	n := MaxChanges + 3
	for i := n - 1; i >= 0; i-- { // applied in descending order: the changes are sorted
		c := ConversationID{byte(i >> 8), byte(i)}
		val := vClaimed
		if i%2 == 1 {
			val = vResolved
		}
		if _, _, err := s.Learn(v, c, uint64(i+1), mustSeal(t, s, c, val)); err != nil {
			t.Fatal(err)
		}
	}
	all := v.Changes(nil)
	if len(all) != 2 || len(all[0]) != MaxChanges || len(all[1]) != 3 {
		t.Fatalf("changes of %d registers: %d messages", n, len(all))
	}
	other := NewView()
	for _, ch := range all {
		b, err := ch.MarshalBinary() // refuses unordered entries
		if err != nil {
			t.Fatal(err)
		}
		parsed, _ := ParseChange(b)
		if _, err := s.Receive(other, parsed); err != nil {
			t.Fatal(err)
		}
	}
	if other.Len() != n || !slices.Equal(other.Conversations(), v.Conversations()) {
		t.Fatal("a new device does not end with the same conversations")
	}
	open := v.Changes(func(_ ConversationID, r Register) bool { return r.Value.State.Open() })
	if len(open) != 1 || len(open[0]) != (n+1)/2 {
		t.Fatalf("open conversations: %d messages", len(open))
	}
	for _, e := range open[0] {
		if r, _ := v.Get(e.Conversation); r.Value.State != Claimed || r.Version != e.Version {
			t.Fatal("a closed conversation among the open ones")
		}
	}
}
