package queue

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

const t0 = 1_765_000_000_000 // a time in Unix ms

var (
	alice, bob, carol = staff(1), staff(2), staff(3)
	dana              = admin(4)
	olga              = Actor{Identity: ident(5), Role: Observer}

	vNew      = Initial(t0, false)
	vClaimed  = Value{State: Claimed, Owner: alice.Identity, Opened: t0}
	vAssigned = Value{State: Assigned, Owner: bob.Identity, AssignedBy: alice.Identity, Opened: t0, FirstResponse: t0 + 5}
	vResolved = Value{State: Resolved, Opened: t0, FirstResponse: t0 + 5, Resolved: t0 + 9, Reopens: 2}
	vArchived = Value{State: Archived, Urgent: true, Opened: t0, Resolved: t0 + 9}
)

func TestTransitions(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func() (Value, error)
		want Value
		err  error
	}{
		// claim
		{"claim new", func() (Value, error) { return Claim(vNew, bob) }, Value{State: Claimed, Owner: bob.Identity, Opened: t0}, nil},
		{"admin claims new", func() (Value, error) { return Claim(vNew, dana) }, Value{State: Claimed, Owner: dana.Identity, Opened: t0}, nil},
		{"claim keeps flags and times", func() (Value, error) {
			return Claim(Value{State: New, Urgent: true, Opened: t0, FirstResponse: t0 + 1, Reopens: 4}, bob)
		}, Value{State: Claimed, Urgent: true, Owner: bob.Identity, Opened: t0, FirstResponse: t0 + 1, Reopens: 4}, nil},
		{"claim of a claimed one", func() (Value, error) { return Claim(vClaimed, bob) }, Value{}, ErrOwned},
		{"claim of an assigned one", func() (Value, error) { return Claim(vAssigned, alice) }, Value{}, ErrOwned},
		{"claim by its owner", func() (Value, error) { return Claim(vClaimed, alice) }, Value{}, ErrNoChange},
		{"claim by its assignee", func() (Value, error) { return Claim(vAssigned, bob) }, Value{}, ErrNoChange},
		{"claim of a resolved one", func() (Value, error) { return Claim(vResolved, bob) }, Value{}, ErrState},
		{"claim of an archived one", func() (Value, error) { return Claim(vArchived, bob) }, Value{}, ErrState},
		{"claim by an observer", func() (Value, error) { return Claim(vNew, olga) }, Value{}, ErrObserver},
		{"claim by nobody", func() (Value, error) { return Claim(vNew, Actor{Role: Staff}) }, Value{}, ErrInvalid},
		{"claim with no role", func() (Value, error) { return Claim(vNew, Actor{Identity: ident(9)}) }, Value{}, ErrInvalid},
		{"claim of an invalid value", func() (Value, error) { return Claim(Value{}, bob) }, Value{}, ErrMalformed},

		// assign
		{"assign by owner", func() (Value, error) { return Assign(vClaimed, alice, bob) },
			Value{State: Assigned, Owner: bob.Identity, AssignedBy: alice.Identity, Opened: t0}, nil},
		{"assign on by the assignee", func() (Value, error) { return Assign(vAssigned, bob, carol) },
			Value{State: Assigned, Owner: carol.Identity, AssignedBy: bob.Identity, Opened: t0, FirstResponse: t0 + 5}, nil},
		{"assign back to the assigner", func() (Value, error) { return Assign(vAssigned, bob, alice) },
			Value{State: Assigned, Owner: alice.Identity, AssignedBy: bob.Identity, Opened: t0, FirstResponse: t0 + 5}, nil},
		{"assign by another", func() (Value, error) { return Assign(vClaimed, bob, carol) }, Value{}, ErrNotOwner},
		{"assign by an admin not owning it", func() (Value, error) { return Assign(vClaimed, dana, carol) }, Value{}, ErrNotOwner},
		{"assign by the assigner", func() (Value, error) { return Assign(vAssigned, alice, carol) }, Value{}, ErrNotOwner},
		{"assign to oneself", func() (Value, error) { return Assign(vClaimed, alice, alice) }, Value{}, ErrSelf},
		{"assign to an observer", func() (Value, error) { return Assign(vClaimed, alice, olga) }, Value{}, ErrObserver},
		{"assign to nobody", func() (Value, error) { return Assign(vClaimed, alice, Actor{Role: Staff}) }, Value{}, ErrInvalid},
		{"assign a new one", func() (Value, error) { return Assign(vNew, alice, bob) }, Value{}, ErrState},
		{"assign a resolved one", func() (Value, error) { return Assign(vResolved, alice, bob) }, Value{}, ErrState},

		// resolve
		{"resolve by owner", func() (Value, error) { return Resolve(vClaimed, alice, t0+7) },
			Value{State: Resolved, Opened: t0, Resolved: t0 + 7}, nil},
		{"resolve by assignee", func() (Value, error) { return Resolve(vAssigned, bob, t0+7) },
			Value{State: Resolved, Opened: t0, FirstResponse: t0 + 5, Resolved: t0 + 7}, nil},
		{"resolve by the assigner", func() (Value, error) { return Resolve(vAssigned, alice, t0+7) }, Value{}, ErrNotOwner},
		{"resolve by an admin", func() (Value, error) { return Resolve(vClaimed, dana, t0+7) }, Value{}, ErrNotOwner},
		{"resolve a new one", func() (Value, error) { return Resolve(vNew, alice, t0+7) }, Value{}, ErrState},
		{"resolve a resolved one", func() (Value, error) { return Resolve(vResolved, alice, t0+7) }, Value{}, ErrState},
		{"resolve at time 0", func() (Value, error) { return Resolve(vClaimed, alice, 0) }, Value{}, ErrInvalid},
		{"resolve after MaxTime", func() (Value, error) { return Resolve(vClaimed, alice, MaxTime+1) }, Value{}, ErrInvalid},
		{"resolve by an observer", func() (Value, error) { return Resolve(vClaimed, olga, t0) }, Value{}, ErrObserver},

		// archive
		{"archive a resolved one", func() (Value, error) { return Archive(vResolved, carol) },
			Value{State: Archived, Opened: t0, FirstResponse: t0 + 5, Resolved: t0 + 9, Reopens: 2}, nil},
		{"archive an archived one", func() (Value, error) { return Archive(vArchived, carol) }, Value{}, ErrNoChange},
		{"archive a new one", func() (Value, error) { return Archive(vNew, carol) }, Value{}, ErrState},
		{"archive a claimed one", func() (Value, error) { return Archive(vClaimed, alice) }, Value{}, ErrState},
		{"archive by an observer", func() (Value, error) { return Archive(vResolved, olga) }, Value{}, ErrObserver},

		// reopen
		{"reopen a resolved one", func() (Value, error) { return Reopen(vResolved, carol, t0+100, false) },
			Value{State: New, Opened: t0 + 100, Reopens: 3}, nil},
		{"reopen an archived one, urgent", func() (Value, error) { return Reopen(vArchived, carol, t0+100, true) },
			Value{State: New, Urgent: true, Opened: t0 + 100, Reopens: 1}, nil},
		{"reopen a new one", func() (Value, error) { return Reopen(vNew, carol, t0+100, false) }, Value{}, ErrState},
		{"reopen a claimed one", func() (Value, error) { return Reopen(vClaimed, carol, t0+100, false) }, Value{}, ErrState},
		{"reopen at time 0", func() (Value, error) { return Reopen(vResolved, carol, 0, false) }, Value{}, ErrInvalid},
		{"reopen count at its limit", func() (Value, error) {
			v := vResolved
			v.Reopens = math.MaxUint32
			return Reopen(v, carol, t0+100, false)
		}, Value{}, ErrLimit},

		// urgent
		{"set urgent on a new one", func() (Value, error) { return SetUrgent(vNew, carol, true) }, Value{State: New, Urgent: true, Opened: t0}, nil},
		{"clear urgent on an archived one", func() (Value, error) { return SetUrgent(vArchived, carol, false) }, Value{}, ErrState},
		{"set urgent on an assigned one", func() (Value, error) { return SetUrgent(vAssigned, carol, true) },
			Value{State: Assigned, Urgent: true, Owner: bob.Identity, AssignedBy: alice.Identity, Opened: t0, FirstResponse: t0 + 5}, nil},
		{"urgent already clear", func() (Value, error) { return SetUrgent(vClaimed, carol, false) }, Value{}, ErrNoChange},
		{"urgent by an observer", func() (Value, error) { return SetUrgent(vNew, olga, true) }, Value{}, ErrObserver},

		// respond
		{"first response", func() (Value, error) { return Respond(vClaimed, alice, t0+3) },
			Value{State: Claimed, Owner: alice.Identity, Opened: t0, FirstResponse: t0 + 3}, nil},
		{"first response to a new one", func() (Value, error) { return Respond(vNew, carol, t0+3) },
			Value{State: New, Opened: t0, FirstResponse: t0 + 3}, nil},
		{"second response", func() (Value, error) { return Respond(vAssigned, bob, t0+30) }, Value{}, ErrNoChange},
		{"response to a resolved one", func() (Value, error) { return Respond(vResolved, bob, t0+30) }, Value{}, ErrState},
		{"response at time 0", func() (Value, error) { return Respond(vClaimed, alice, 0) }, Value{}, ErrInvalid},

		// the admins' reassignment after a removal (alice removed)
		{"reassign a removed member's claim", func() (Value, error) { return ReassignRemoved(vClaimed, dana, alice.Identity, carol) },
			Value{State: Assigned, Owner: carol.Identity, AssignedBy: dana.Identity, Opened: t0}, nil},
		{"admin reassigns to themself", func() (Value, error) { return ReassignRemoved(vClaimed, dana, alice.Identity, dana) },
			Value{State: Assigned, Owner: dana.Identity, AssignedBy: dana.Identity, Opened: t0}, nil},
		{"release a removed member's assignment", func() (Value, error) { return ReleaseRemoved(vAssigned, dana, bob.Identity) },
			Value{State: New, Opened: t0, FirstResponse: t0 + 5}, nil},
		{"reassign by staff", func() (Value, error) { return ReassignRemoved(vClaimed, carol, alice.Identity, carol) }, Value{}, ErrNotAdmin},
		{"release by staff", func() (Value, error) { return ReleaseRemoved(vClaimed, bob, alice.Identity) }, Value{}, ErrNotAdmin},
		{"reassign one the removed does not own", func() (Value, error) { return ReassignRemoved(vClaimed, dana, bob.Identity, carol) }, Value{}, ErrNotRemovedOwner},
		{"reassign the assigner's", func() (Value, error) { return ReassignRemoved(vAssigned, dana, alice.Identity, carol) }, Value{}, ErrNotRemovedOwner},
		{"reassign a new one", func() (Value, error) { return ReassignRemoved(vNew, dana, alice.Identity, carol) }, Value{}, ErrNotRemovedOwner},
		{"release a resolved one", func() (Value, error) { return ReleaseRemoved(vResolved, dana, alice.Identity) }, Value{}, ErrNotRemovedOwner},
		{"reassign to the removed", func() (Value, error) { return ReassignRemoved(vClaimed, dana, alice.Identity, alice) }, Value{}, ErrInvalid},
		{"reassign to an observer", func() (Value, error) { return ReassignRemoved(vClaimed, dana, alice.Identity, olga) }, Value{}, ErrObserver},
		{"reassign for nobody removed", func() (Value, error) { return ReleaseRemoved(vClaimed, dana, Identity{}) }, Value{}, ErrInvalid},

		// a role account's handover (alice held the role, carol holds it now)
		{"handover of the previous holder's claim", func() (Value, error) { return HandOver(vClaimed, carol, alice.Identity) },
			Value{State: Assigned, Owner: carol.Identity, AssignedBy: alice.Identity, Opened: t0}, nil},
		{"handover of an assignment to the previous holder", func() (Value, error) { return HandOver(vAssigned, carol, bob.Identity) },
			Value{State: Assigned, Owner: carol.Identity, AssignedBy: bob.Identity, Opened: t0, FirstResponse: t0 + 5}, nil},
		{"handover of a new one", func() (Value, error) { return HandOver(vNew, carol, alice.Identity) },
			Value{State: Claimed, Owner: carol.Identity, Opened: t0}, nil},
		{"handover of one handed to a colleague", func() (Value, error) { return HandOver(vAssigned, carol, alice.Identity) }, Value{}, ErrOwned},
		{"handover of one the holder owns", func() (Value, error) { return HandOver(vClaimed, alice, bob.Identity) }, Value{}, ErrNoChange},
		{"handover of a resolved one", func() (Value, error) { return HandOver(vResolved, carol, alice.Identity) }, Value{}, ErrState},
		{"handover of an archived one", func() (Value, error) { return HandOver(vArchived, carol, alice.Identity) }, Value{}, ErrState},
		{"handover to oneself", func() (Value, error) { return HandOver(vClaimed, alice, alice.Identity) }, Value{}, ErrSelf},
		{"handover from nobody", func() (Value, error) { return HandOver(vClaimed, carol, Identity{}) }, Value{}, ErrInvalid},
		{"handover to an observer", func() (Value, error) { return HandOver(vClaimed, olga, alice.Identity) }, Value{}, ErrObserver},
		{"handover of an invalid value", func() (Value, error) { return HandOver(Value{}, carol, alice.Identity) }, Value{}, ErrMalformed},

		// release by the owner (a role account left vacant)
		{"release a claim", func() (Value, error) { return Release(vClaimed, alice) }, Value{State: New, Opened: t0}, nil},
		{"release an assignment", func() (Value, error) { return Release(vAssigned, bob) }, Value{State: New, Opened: t0, FirstResponse: t0 + 5}, nil},
		{"release by the assigner", func() (Value, error) { return Release(vAssigned, alice) }, Value{}, ErrNotOwner},
		{"release by another", func() (Value, error) { return Release(vClaimed, dana) }, Value{}, ErrNotOwner},
		{"release a new one", func() (Value, error) { return Release(vNew, alice) }, Value{}, ErrState},
		{"release a resolved one", func() (Value, error) { return Release(vResolved, alice) }, Value{}, ErrState},
		{"release by an observer", func() (Value, error) { return Release(vClaimed, olga) }, Value{}, ErrObserver},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.do()
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want %v", err, tc.err)
				}
				if got != (Value{}) {
					t.Fatalf("a refused operation returned a value: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			if err := got.Check(); err != nil {
				t.Fatalf("result does not Check: %v", err)
			}
		})
	}
}

// op is one operation with its arguments, for the property tests.
type op struct {
	kind    Op
	by, to  Actor
	removed Identity
	from    Identity // OpHandover: the role's previous holder
	release bool
	at      uint64
	flag    bool
}

func (o op) apply(cur Value) (Value, error) {
	switch o.kind {
	case OpClaim:
		return Claim(cur, o.by)
	case OpAssign:
		return Assign(cur, o.by, o.to)
	case OpResolve:
		return Resolve(cur, o.by, o.at)
	case OpArchive:
		return Archive(cur, o.by)
	case OpReopen:
		return Reopen(cur, o.by, o.at, o.flag)
	case OpUrgent:
		return SetUrgent(cur, o.by, o.flag)
	case OpRespond:
		return Respond(cur, o.by, o.at)
	case OpReassign:
		if o.release {
			return ReleaseRemoved(cur, o.by, o.removed)
		}
		return ReassignRemoved(cur, o.by, o.removed, o.to)
	case OpHandover:
		return HandOver(cur, o.by, o.from)
	case OpRelease:
		return Release(cur, o.by)
	}
	panic("unknown op")
}

// checkWrite is the model's check_write (model/claim.pml, stays_claimed):
// a write that changes the owner of a claimed or assigned conversation,
// or takes it out of claimed/assigned, is an assign or resolve by its
// owner or an admin's reassignment of a removed member's conversation;
// claim is from new, archive from resolved, reopen from resolved or
// archived; assign, resolve and reassign from claimed or assigned. The
// fields the model does not have (urgent, first response) change the
// state of nothing.
func checkWrite(cur, next Value, o op) bool {
	ok := true
	if cur.State.Open() && (next.Owner != cur.Owner || !next.State.Open()) {
		ok = (o.kind == OpAssign || o.kind == OpResolve || o.kind == OpRelease) && o.by.Identity == cur.Owner ||
			o.kind == OpReassign && o.by.Role == Admin && cur.Owner == o.removed ||
			o.kind == OpHandover && cur.Owner == o.from && next.Owner == o.by.Identity && next.AssignedBy == o.from
	}
	switch o.kind {
	case OpClaim:
		return ok && cur.State == New
	case OpAssign, OpResolve, OpReassign, OpRelease:
		return ok && cur.State.Open()
	case OpHandover:
		return ok && (cur.State == New && next.State == Claimed && next.Owner == o.by.Identity || cur.State.Open())
	case OpArchive:
		return ok && cur.State == Resolved
	case OpReopen:
		return ok && cur.State.Closed()
	case OpUrgent, OpRespond:
		return ok && next.State == cur.State && next.Owner == cur.Owner && next.AssignedBy == cur.AssignedBy
	}
	return false
}

func randomOp(r *rand.Rand) op {
	people := []Actor{alice, bob, carol, dana, olga, {Identity: ident(6), Role: Admin}}
	pick := func() Actor { return people[r.IntN(len(people))] }
	return op{
		kind:    Op(1 + r.IntN(int(OpRelease))),
		by:      pick(),
		to:      pick(),
		removed: pick().Identity,
		from:    pick().Identity,
		release: r.IntN(2) == 0,
		at:      t0 + uint64(r.IntN(1000)),
		flag:    r.IntN(2) == 0,
	}
}

// TestModelRules runs random operations by random actors and checks that
// every accepted one follows the model's rules and gives a valid value,
// and that a refused one gives no value.
func TestModelRules(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	accepted := map[Op]int{}
	for run := 0; run < 2000; run++ {
		cur := Initial(t0, false)
		for step := 0; step < 30; step++ {
			o := randomOp(r)
			next, err := o.apply(cur)
			if err != nil {
				if next != (Value{}) {
					t.Fatalf("%s refused with %v returned %+v", o.kind, err, next)
				}
				continue
			}
			if err := next.Check(); err != nil {
				t.Fatalf("%s from %+v gave an invalid value: %v", o.kind, cur, err)
			}
			if !checkWrite(cur, next, o) {
				t.Fatalf("%s by %x (role %d) from %+v to %+v breaks the model's rules", o.kind, o.by.Identity[:1], o.by.Role, cur, next)
			}
			accepted[o.kind]++
			cur = next
		}
	}
	for k := OpClaim; k <= OpRelease; k++ {
		if accepted[k] == 0 {
			t.Errorf("no %s was ever accepted: the test checks nothing for it", k)
		}
	}
}
