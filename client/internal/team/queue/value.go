package queue

import (
	"encoding/binary"
	"fmt"

	"github.com/postern/postern/keys"
)

// State is where a queue conversation stands (SPEC.md 15.4 and 15.6).
type State uint8

// States. A register never written is New (its version is 0).
const (
	New      State = 1 // waiting for someone to claim it; no owner
	Claimed  State = 2 // owned by the staff member who claimed it
	Assigned State = 3 // owned by a colleague its previous owner (or an admin) gave it to
	Resolved State = 4 // closed by its owner; no owner
	Archived State = 5 // put away after it was resolved; no owner
)

var stateNames = [...]string{"", "new", "claimed", "assigned", "resolved", "archived"}

func (s State) String() string {
	if s >= New && s <= Archived {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Open reports whether the state has an owner: claimed or assigned.
func (s State) Open() bool { return s == Claimed || s == Assigned }

// Closed reports whether the state is resolved or archived: a message of
// the patient reopens it.
func (s State) Closed() bool { return s == Resolved || s == Archived }

// Identity is a staff member's identity fingerprint (section 8
// "Fingerprints"). The zero value means nobody.
type Identity = keys.Fingerprint

// Value is the state of one queue conversation: what a claim register
// holds, sealed. Times are Unix milliseconds, 0 for none, at most MaxTime.
// A valid value (Check) has an Owner exactly when it is claimed or
// assigned, an AssignedBy exactly when it is assigned, and a Resolved time
// exactly when it is resolved or archived.
type Value struct {
	State State
	// Urgent is the conversation's urgent flag (SPEC.md 15.2: the urgent
	// response window).
	Urgent bool
	// Owner is the staff member who owns the conversation.
	Owner Identity
	// AssignedBy is who assigned it to Owner: its previous owner, or the
	// admin who reassigned a removed member's conversation.
	AssignedBy Identity
	// Opened is the sent time of the patient's message that opened the
	// conversation, or reopened it last.
	Opened uint64
	// FirstResponse is when staff first answered since it was (re)opened.
	FirstResponse uint64
	// Resolved is when it was resolved.
	Resolved uint64
	// Reopens counts the reopens: messages of the patient after it was
	// resolved.
	Reopens uint32
}

// Initial is the value of a conversation whose register was never
// written (version 0): new, opened at the sent time of the patient's
// first message, urgent if that message was.
func Initial(opened uint64, urgent bool) Value {
	return Value{State: New, Opened: opened, Urgent: urgent}
}

// Check reports whether v is a value a register may hold (ErrMalformed
// otherwise).
func (v Value) Check() error {
	var zero Identity
	switch {
	case v.State < New || v.State > Archived:
		return fmt.Errorf("%w: unknown state %d", ErrMalformed, v.State)
	case v.State.Open() == (v.Owner == zero):
		return fmt.Errorf("%w: owner and state %s disagree", ErrMalformed, v.State)
	case (v.State == Assigned) == (v.AssignedBy == zero):
		return fmt.Errorf("%w: assigner and state %s disagree", ErrMalformed, v.State)
	case v.State.Closed() == (v.Resolved == 0):
		return fmt.Errorf("%w: resolved time and state %s disagree", ErrMalformed, v.State)
	case v.Opened > MaxTime || v.FirstResponse > MaxTime || v.Resolved > MaxTime:
		return fmt.Errorf("%w: time above MaxTime", ErrMalformed)
	}
	return nil
}

// MarshalBinary encodes v in its fixed ValuePlaintextSize bytes (the
// plaintext of a sealed value). It refuses a value that fails Check.
func (v Value) MarshalBinary() ([]byte, error) {
	if err := v.Check(); err != nil {
		return nil, err
	}
	return v.appendTo(make([]byte, 0, ValuePlaintextSize)), nil
}

// appendTo appends the encoding of a checked value:
//
//	state u8 || flags u8 (bit 0 urgent) || owner [32] || assigned by [32] ||
//	opened u64 || first response u64 || resolved u64 || reopens u32 ||
//	zeros to 128 bytes
func (v Value) appendTo(b []byte) []byte {
	var flags byte
	if v.Urgent {
		flags |= 1
	}
	b = append(b, byte(v.State), flags)
	b = append(b, v.Owner[:]...)
	b = append(b, v.AssignedBy[:]...)
	b = binary.BigEndian.AppendUint64(b, v.Opened)
	b = binary.BigEndian.AppendUint64(b, v.FirstResponse)
	b = binary.BigEndian.AppendUint64(b, v.Resolved)
	b = binary.BigEndian.AppendUint32(b, v.Reopens)
	return append(b, make([]byte, ValuePlaintextSize-valueFieldsSize)...)
}

// UnmarshalBinary decodes exactly ValuePlaintextSize bytes into v, which
// is left unchanged on error. It accepts only what MarshalBinary writes.
func (v *Value) UnmarshalBinary(b []byte) error {
	if len(b) != ValuePlaintextSize {
		return fmt.Errorf("%w: value of %d bytes, want %d", ErrMalformed, len(b), ValuePlaintextSize)
	}
	if b[1]&^1 != 0 {
		return fmt.Errorf("%w: unknown value flags", ErrMalformed)
	}
	if !isZero(b[valueFieldsSize:]) {
		return fmt.Errorf("%w: value padding not zero", ErrMalformed)
	}
	var n Value
	n.State = State(b[0])
	n.Urgent = b[1]&1 != 0
	p := 2
	p += copy(n.Owner[:], b[p:])
	p += copy(n.AssignedBy[:], b[p:])
	n.Opened = binary.BigEndian.Uint64(b[p:])
	n.FirstResponse = binary.BigEndian.Uint64(b[p+8:])
	n.Resolved = binary.BigEndian.Uint64(b[p+16:])
	n.Reopens = binary.BigEndian.Uint32(b[p+24:])
	if err := n.Check(); err != nil {
		return err
	}
	*v = n
	return nil
}
