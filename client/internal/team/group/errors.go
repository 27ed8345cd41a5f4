package group

import "errors"

// Sentinel errors. Test with errors.Is. None carries secret material or
// the input it was given.
var (
	// ErrMalformed reports an encoding that does not follow SPEC.md
	// section 15.5: wrong tag or version, a length out of range, fields
	// out of canonical order, trailing bytes.
	ErrMalformed = errors.New("group: malformed group state")

	// ErrRule reports a state whose fields break a rule: no admin, more
	// than MaxMembers people or MaxDevices devices for one, a device or
	// mailbox listed twice, a delegate acting for someone who is not an
	// admin or member of the group, an invalid name or relay URL.
	ErrRule = errors.New("group: group state breaks a rule")

	// ErrSignature reports a state whose signature does not verify under
	// the key it names.
	ErrSignature = errors.New("group: group state signature does not verify")

	// ErrRollback reports a state whose version is not above the held
	// one's (an old state replayed, or a fork).
	ErrRollback = errors.New("group: group state is not newer than the one held")

	// ErrNotAdmin reports a state signed by someone who is not an admin
	// of the held state (of the new state, for a first state).
	ErrNotAdmin = errors.New("group: group state not signed by an admin")

	// ErrWrongGroup reports a state of another group than the one held.
	ErrWrongGroup = errors.New("group: group state of another group")

	// ErrFirstState reports a first state that does not name the
	// receiver.
	ErrFirstState = errors.New("group: first group state does not name this person")

	// ErrNotFromSigner reports a state that did not come from a device of
	// the person who signed it.
	ErrNotFromSigner = errors.New("group: group state not sent by its signer")
)
