package queue

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/postern/postern/protocol"
)

// View is a device's view of a team queue: per conversation, the register
// (version and value) it last saw. It moves only forward: Apply replaces a
// conversation's register only with a higher version, whatever the order
// or the number of times state changes arrive (SPEC.md 15.4, the
// convergence rule). Its zero value is not usable; use NewView. It is safe
// for concurrent use.
type View struct {
	mu   sync.Mutex
	regs map[ConversationID]Register
}

// NewView returns an empty view.
func NewView() *View { return &View{regs: map[ConversationID]Register{}} }

// Len is the number of conversations the view holds.
func (v *View) Len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.regs)
}

// Get returns the register of conversation c, and false if the view has
// none (the register is then at version 0: use Initial).
func (v *View) Get(c ConversationID) (Register, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	r, ok := v.regs[c]
	return r.clone(), ok
}

// Conversations returns the conversations the view holds, in ascending
// order of ID.
func (v *View) Conversations() []ConversationID {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]ConversationID, 0, len(v.regs))
	for c := range v.regs {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b ConversationID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// Changes returns the view's registers for which keep returns true (every
// one if keep is nil) as state changes of at most MaxChanges entries, in
// ascending order of conversation: what an admin sends new staff (the
// open conversations) or the team after reading every register. Registers
// at version 0 are never included.
func (v *View) Changes(keep func(ConversationID, Register) bool) []Change {
	var out []Change
	var cur Change
	for _, c := range v.Conversations() {
		r, ok := v.Get(c)
		if !ok || r.Version == 0 || keep != nil && !keep(c, r) {
			continue
		}
		cur = append(cur, Entry{Conversation: c, Version: r.Version, Sealed: r.Sealed})
		if len(cur) == MaxChanges {
			out, cur = append(out, cur), nil
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// Current returns the register of conversation c, or version 0 with
// initial as its value if the view has none.
func (v *View) Current(c ConversationID, initial Value) Register {
	if r, ok := v.Get(c); ok {
		return r
	}
	return Register{Value: initial}
}

// Apply makes r the register of conversation c if its version is higher
// than the one the view holds (a conversation not held is at version 0),
// and reports whether it did. r must be a register OpenRegister (or this
// package) produced. A new conversation beyond MaxConversations is
// ErrLimit.
func (v *View) Apply(c ConversationID, r Register) (bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	old, ok := v.regs[c]
	if r.Version <= old.Version {
		return false, nil
	}
	if !ok && len(v.regs) >= MaxConversations {
		return false, ErrLimit
	}
	v.regs[c] = r.clone()
	return true, nil
}

func (r Register) clone() Register {
	r.Sealed = bytes.Clone(r.Sealed)
	return r
}

// Request is a SetClaim a device makes for one operation: from the
// version in its view (Expected) to the value the operation decided
// (Value, sealed as Sealed) in the register named by Token.
type Request struct {
	Conversation ConversationID
	Op           Op
	Expected     uint64
	Token        protocol.ClaimToken
	Sealed       []byte
	Value        Value
}

// Request seals next, the value an operation op decided from cur (the
// register in the device's view of conversation c), as a SetClaim from
// cur's version.
func (s *Space) Request(c ConversationID, cur Register, op Op, next Value) (*Request, error) {
	if cur.Version == math.MaxUint64 {
		return nil, fmt.Errorf("%w: register version", ErrLimit)
	}
	sealed, err := s.Seal(c, next)
	if err != nil {
		return nil, err
	}
	return &Request{Conversation: c, Op: op, Expected: cur.Version, Token: s.Token(c), Sealed: sealed, Value: next}, nil
}

// Outcome is what a device does after a SetClaim's answer, or after the
// GetClaim that follows a lost answer.
type Outcome struct {
	// Won says that the request's value is the register's at version
	// Expected+1.
	Won bool
	// Register is the register the answer gave (the request's, if won).
	Register Register
	// Applied says that the view took Register (false when it already
	// held a higher version).
	Applied bool
	// Announce, when not nil, is the state change to send to every other
	// staff device.
	Announce *Entry
	// Retry says that the request was a reopen and the conversation is
	// still closed in the view: decide the reopen again (SPEC.md 15.4).
	Retry bool
}

// Answer handles the relay's ClaimState answer (ok, version, value) to
// req and updates the view:
//   - ok: the write won; the view takes it and it is announced. An ok
//     answer at another version than Expected+1, or with another value,
//     is ErrAnswer;
//   - not ok: someone wrote first; the view adopts the returned version
//     and value together (only if higher than its own), nothing is
//     announced. A version equal to Expected is ErrAnswer, a lower one
//     ErrBehind; the view is unchanged on every error.
func (s *Space) Answer(v *View, req *Request, ok bool, version uint64, value []byte) (Outcome, error) {
	if ok {
		if version != req.Expected+1 || !bytes.Equal(value, req.Sealed) {
			return Outcome{}, ErrAnswer
		}
		r := Register{Version: version, Sealed: bytes.Clone(req.Sealed), Value: req.Value}
		applied, err := v.Apply(req.Conversation, r)
		if err != nil {
			return Outcome{}, err
		}
		return Outcome{Won: true, Register: r, Applied: applied, Announce: &Entry{req.Conversation, version, r.Sealed}}, nil
	}
	switch {
	case version == req.Expected:
		return Outcome{}, ErrAnswer
	case version < req.Expected:
		return Outcome{}, ErrBehind
	}
	r, err := s.OpenRegister(req.Conversation, version, value, Value{})
	if err != nil {
		return Outcome{}, err
	}
	applied, err := v.Apply(req.Conversation, r)
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Register: r, Applied: applied, Retry: s.retry(v, req)}, nil
}

// AfterLost handles the GetClaim answer (version, value) read after req's
// answer was lost (the relay restarted, the connection failed): the view
// applies what was read, and if the version moved past Expected what was
// read is announced, since the request may have landed and only this
// device knows. Won says that it did (the value read is the request's, at
// Expected+1). A version below Expected is ErrBehind; the version
// Expected with another value than the view's at that version ErrAnswer.
func (s *Space) AfterLost(v *View, req *Request, version uint64, value []byte) (Outcome, error) {
	if version < req.Expected {
		return Outcome{}, ErrBehind
	}
	if version == req.Expected {
		if version == 0 && len(value) != 0 {
			return Outcome{}, fmt.Errorf("%w: a value at version 0", ErrMalformed)
		}
		// Nothing landed: the register is where the view was. If the view
		// is still there, the two must hold one value.
		r, _ := v.Get(req.Conversation)
		if r.Version == version && !bytes.Equal(r.Sealed, value) {
			return Outcome{}, ErrAnswer
		}
		return Outcome{Register: r, Retry: s.retry(v, req)}, nil
	}
	r, err := s.OpenRegister(req.Conversation, version, value, Value{})
	if err != nil {
		return Outcome{}, err
	}
	applied, err := v.Apply(req.Conversation, r)
	if err != nil {
		return Outcome{}, err
	}
	won := version == req.Expected+1 && bytes.Equal(value, req.Sealed)
	return Outcome{Won: won, Register: r, Applied: applied, Announce: &Entry{req.Conversation, version, r.Sealed}, Retry: s.retry(v, req)}, nil
}

func (s *Space) retry(v *View, req *Request) bool {
	if req.Op != OpReopen {
		return false
	}
	r, ok := v.Get(req.Conversation)
	return ok && r.Value.State.Closed()
}

// Learn opens a register read from the relay (GetClaim) or received in a
// state change, and applies it to the view. It reports whether the view
// took it. Version 0 is ErrMalformed here: nobody reads or announces a
// register never written.
func (s *Space) Learn(v *View, c ConversationID, version uint64, sealed []byte) (Register, bool, error) {
	if version == 0 {
		return Register{}, false, fmt.Errorf("%w: version 0", ErrMalformed)
	}
	r, err := s.OpenRegister(c, version, sealed, Value{})
	if err != nil {
		return Register{}, false, err
	}
	applied, err := v.Apply(c, r)
	if err != nil {
		return Register{}, false, err
	}
	return r, applied, nil
}

// Receive applies a state change received from a staff device (the
// client checks that it came from current staff) and reports how many of
// its entries moved the view. Every entry is opened first: if one does not
// open, none is applied.
func (s *Space) Receive(v *View, ch Change) (int, error) {
	regs := make([]Register, len(ch))
	for i, e := range ch {
		if e.Version == 0 {
			return 0, fmt.Errorf("%w: version 0", ErrMalformed)
		}
		r, err := s.OpenRegister(e.Conversation, e.Version, e.Sealed, Value{})
		if err != nil {
			return 0, err
		}
		regs[i] = r
	}
	n := 0
	for i, e := range ch {
		applied, err := v.Apply(e.Conversation, regs[i])
		if err != nil {
			return n, err
		}
		if applied {
			n++
		}
	}
	return n, nil
}
