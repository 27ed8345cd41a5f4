package queue

import (
	"fmt"
	"math"
)

// Role is what a person may do in a team queue, from the team's staff
// list.
type Role uint8

// Roles.
const (
	// Staff claim, are assigned, answer, resolve, archive and reopen.
	Staff Role = 1
	// Admin is staff who may also reassign a removed member's
	// conversations.
	Admin Role = 2
	// Observer reads the queue and changes nothing in it.
	Observer Role = 3
)

// Actor is who makes an operation (or is assigned a conversation): a
// person of the team's staff list, with the role it gives them. A
// delegate acts with its own identity and role.
type Actor struct {
	Identity Identity
	Role     Role
}

func (a Actor) check() error {
	var zero Identity
	switch {
	case a.Identity == zero:
		return fmt.Errorf("%w: no identity", ErrInvalid)
	case a.Role == Observer:
		return ErrObserver
	case a.Role != Staff && a.Role != Admin:
		return fmt.Errorf("%w: role %d", ErrInvalid, a.Role)
	}
	return nil
}

func checkTime(t uint64) error {
	if t == 0 || t > MaxTime {
		return fmt.Errorf("%w: time", ErrInvalid)
	}
	return nil
}

// Op names an operation on a queue conversation (SPEC.md 15.6).
type Op uint8

// Operations.
const (
	OpClaim    Op = 1  // Claim
	OpAssign   Op = 2  // Assign
	OpResolve  Op = 3  // Resolve
	OpArchive  Op = 4  // Archive
	OpReopen   Op = 5  // Reopen
	OpUrgent   Op = 6  // SetUrgent
	OpRespond  Op = 7  // Respond
	OpReassign Op = 8  // ReassignRemoved, ReleaseRemoved
	OpHandover Op = 9  // HandOver
	OpRelease  Op = 10 // Release
)

var opNames = [...]string{"", "claim", "assign", "resolve", "archive", "reopen", "urgent", "respond", "reassign", "handover", "release"}

func (o Op) String() string {
	if o >= OpClaim && o <= OpRelease {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// The transitions. Each is pure: it takes the value in the device's view
// and the actor, and returns the value the operation writes, or a
// specific error and no value. They follow SPEC.md 15.4 and
// model/claim.pml: only assign and resolve by the owner, and an admin's
// reassignment of a removed member's conversation, change the owner of a
// claimed or assigned conversation. A value that fails Check is refused
// with its error.

// Claim takes a new conversation: claimed, owned by by.
func Claim(cur Value, by Actor) (Value, error) {
	if err := start(cur, by); err != nil {
		return Value{}, err
	}
	switch {
	case cur.State.Open() && cur.Owner == by.Identity:
		return Value{}, ErrNoChange
	case cur.State.Open():
		return Value{}, ErrOwned
	case cur.State != New:
		return Value{}, fmt.Errorf("%w: claim of a %s conversation", ErrState, cur.State)
	}
	n := cur
	n.State, n.Owner = Claimed, by.Identity
	return n, nil
}

// Assign gives a conversation by owns to the colleague to: assigned,
// owned by to, assigned by by. The caller checks that to is current staff
// (its role comes from the staff list).
func Assign(cur Value, by, to Actor) (Value, error) {
	if err := owned(cur, by); err != nil {
		return Value{}, err
	}
	if err := to.check(); err != nil {
		return Value{}, err
	}
	if to.Identity == by.Identity {
		return Value{}, ErrSelf
	}
	n := cur
	n.State, n.Owner, n.AssignedBy = Assigned, to.Identity, by.Identity
	return n, nil
}

// Resolve closes a conversation by owns, at time at: resolved, no owner.
func Resolve(cur Value, by Actor, at uint64) (Value, error) {
	if err := owned(cur, by); err != nil {
		return Value{}, err
	}
	if err := checkTime(at); err != nil {
		return Value{}, err
	}
	n := cur
	n.State, n.Owner, n.AssignedBy, n.Resolved = Resolved, Identity{}, Identity{}, at
	return n, nil
}

// Archive puts a resolved conversation away; any staff member may.
func Archive(cur Value, by Actor) (Value, error) {
	if err := start(cur, by); err != nil {
		return Value{}, err
	}
	switch cur.State {
	case Resolved:
	case Archived:
		return Value{}, ErrNoChange
	default:
		return Value{}, fmt.Errorf("%w: archive of a %s conversation", ErrState, cur.State)
	}
	n := cur
	n.State = Archived
	return n, nil
}

// Reopen takes a resolved or archived conversation back to new, when a
// staff device by receives a new message of the patient in it, sent at
// opened (urgent if that message is). The first response and resolved
// times restart; Reopens counts it. An open or new conversation needs no
// reopen (ErrState).
func Reopen(cur Value, by Actor, opened uint64, urgent bool) (Value, error) {
	if err := start(cur, by); err != nil {
		return Value{}, err
	}
	if err := checkTime(opened); err != nil {
		return Value{}, err
	}
	if !cur.State.Closed() {
		return Value{}, fmt.Errorf("%w: reopen of a %s conversation", ErrState, cur.State)
	}
	if cur.Reopens == math.MaxUint32 {
		return Value{}, fmt.Errorf("%w: reopen count", ErrLimit)
	}
	return Value{State: New, Urgent: urgent, Opened: opened, Reopens: cur.Reopens + 1}, nil
}

// SetUrgent sets or clears the urgent flag of a conversation that is not
// closed; any staff member may.
func SetUrgent(cur Value, by Actor, urgent bool) (Value, error) {
	if err := start(cur, by); err != nil {
		return Value{}, err
	}
	if cur.State.Closed() {
		return Value{}, fmt.Errorf("%w: urgent flag of a %s conversation", ErrState, cur.State)
	}
	if cur.Urgent == urgent {
		return Value{}, ErrNoChange
	}
	n := cur
	n.Urgent = urgent
	return n, nil
}

// Respond records at as the first response to a conversation that is not
// closed, when staff answer it for the first time since it was (re)opened;
// any staff member may. Later answers change nothing (ErrNoChange).
func Respond(cur Value, by Actor, at uint64) (Value, error) {
	if err := start(cur, by); err != nil {
		return Value{}, err
	}
	if err := checkTime(at); err != nil {
		return Value{}, err
	}
	if cur.State.Closed() {
		return Value{}, fmt.Errorf("%w: response to a %s conversation", ErrState, cur.State)
	}
	if cur.FirstResponse != 0 {
		return Value{}, ErrNoChange
	}
	n := cur
	n.FirstResponse = at
	return n, nil
}

// ReassignRemoved gives a conversation owned by the removed member to the
// colleague to, by an admin after the removal (SPEC.md 15.4): assigned,
// owned by to, assigned by the admin (who may assign it to themselves).
func ReassignRemoved(cur Value, admin Actor, removed Identity, to Actor) (Value, error) {
	if err := removedOwns(cur, admin, removed); err != nil {
		return Value{}, err
	}
	if err := to.check(); err != nil {
		return Value{}, err
	}
	if to.Identity == removed {
		return Value{}, fmt.Errorf("%w: assignment to the removed member", ErrInvalid)
	}
	n := cur
	n.State, n.Owner, n.AssignedBy = Assigned, to.Identity, admin.Identity
	return n, nil
}

// ReleaseRemoved puts a conversation owned by the removed member back to
// new, by an admin after the removal, for anyone to claim.
func ReleaseRemoved(cur Value, admin Actor, removed Identity) (Value, error) {
	if err := removedOwns(cur, admin, removed); err != nil {
		return Value{}, err
	}
	n := cur
	n.State, n.Owner, n.AssignedBy = New, Identity{}, Identity{}
	return n, nil
}

// HandOver gives a role account's conversation to by, the role's new
// holder, from from, its previous holder (SPEC.md 15.6, 15.7
// "Handover"): an open conversation owned by from becomes assigned to by,
// assigned by from; a new one becomes claimed by by. Only the client
// knows who holds a role: it calls HandOver only when its held role
// holding says that by holds the role and from held it before. A
// conversation from handed to a colleague is not from's any more
// (ErrOwned), and one by owns already is ErrNoChange.
func HandOver(cur Value, by Actor, from Identity) (Value, error) {
	if err := start(cur, by); err != nil {
		return Value{}, err
	}
	if from == (Identity{}) {
		return Value{}, fmt.Errorf("%w: no previous holder", ErrInvalid)
	}
	if from == by.Identity {
		return Value{}, ErrSelf
	}
	switch {
	case cur.State == New:
		n := cur
		n.State, n.Owner = Claimed, by.Identity
		return n, nil
	case cur.State.Closed():
		return Value{}, fmt.Errorf("%w: handover of a %s conversation", ErrState, cur.State)
	case cur.Owner == by.Identity:
		return Value{}, ErrNoChange
	case cur.Owner != from:
		return Value{}, ErrOwned
	}
	n := cur
	n.State, n.Owner, n.AssignedBy = Assigned, by.Identity, from
	return n, nil
}

// Release puts a conversation by owns back to new, for anyone to claim:
// what the holder of a role account does with the role's conversations
// when the role becomes vacant (SPEC.md 15.7 "Handover").
func Release(cur Value, by Actor) (Value, error) {
	if err := owned(cur, by); err != nil {
		return Value{}, err
	}
	n := cur
	n.State, n.Owner, n.AssignedBy = New, Identity{}, Identity{}
	return n, nil
}

func start(cur Value, by Actor) error {
	if err := cur.Check(); err != nil {
		return err
	}
	return by.check()
}

// owned checks that by may assign or resolve cur: it is claimed or
// assigned, and by owns it.
func owned(cur Value, by Actor) error {
	if err := start(cur, by); err != nil {
		return err
	}
	if !cur.State.Open() {
		return fmt.Errorf("%w: nobody owns a %s conversation", ErrState, cur.State)
	}
	if cur.Owner != by.Identity {
		return ErrNotOwner
	}
	return nil
}

func removedOwns(cur Value, admin Actor, removed Identity) error {
	if err := start(cur, admin); err != nil {
		return err
	}
	if admin.Role != Admin {
		return ErrNotAdmin
	}
	if removed == (Identity{}) {
		return fmt.Errorf("%w: no removed member", ErrInvalid)
	}
	if !cur.State.Open() || cur.Owner != removed {
		return ErrNotRemovedOwner
	}
	return nil
}
