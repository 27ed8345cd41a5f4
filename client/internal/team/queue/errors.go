package queue

import "errors"

// Sentinel errors. Test with errors.Is. No error of this package carries
// a key, a token, a value's content or the raw input it was given.
var (
	// ErrMalformed reports an encoding (value, state change, receipt) that
	// does not follow SPEC.md section 15.6: wrong length, unknown tag,
	// version or state, a field that breaks the value's rules, non-zero
	// padding, an unordered or repeated list, trailing bytes. It depends
	// only on the bytes given.
	ErrMalformed = errors.New("queue: malformed encoding")

	// ErrDecrypt reports a sealed value that does not open under the team
	// key of its epoch for this claim space and token: altered, moved to
	// another register or space, or sealed under another key.
	ErrDecrypt = errors.New("queue: value does not open")

	// ErrUnknownKey reports a sealed value under a team key epoch this
	// device does not hold.
	ErrUnknownKey = errors.New("queue: value sealed under a team key not held")

	// ErrInvalid reports an argument that is not allowed: a zero identity
	// or key, a time above MaxTime, two keys of one epoch, a version out of
	// range.
	ErrInvalid = errors.New("queue: invalid argument")

	// ErrObserver reports an operation by (or an assignment to) an
	// observer: observers read a queue but change nothing in it.
	ErrObserver = errors.New("queue: observers cannot change a queue conversation")

	// ErrOwned reports a claim of a conversation someone else owns.
	ErrOwned = errors.New("queue: conversation owned by another staff member")

	// ErrNotOwner reports an assign or resolve by someone who does not own
	// the conversation.
	ErrNotOwner = errors.New("queue: only the conversation's owner may do this")

	// ErrState reports an operation the conversation's state does not
	// allow: a claim of a resolved or archived conversation, an assign or
	// resolve of one nobody owns, an archive of one not resolved, a reopen
	// of one not closed, a flag change of a closed one.
	ErrState = errors.New("queue: not allowed in the conversation's state")

	// ErrNoChange reports an operation that would leave the value as it
	// is (a claim by the owner, the urgent flag already so, a first
	// response already recorded): no write is needed.
	ErrNoChange = errors.New("queue: nothing to change")

	// ErrSelf reports an assignment of a conversation to its own owner.
	ErrSelf = errors.New("queue: cannot assign a conversation to its owner")

	// ErrNotAdmin reports a reassignment by someone who is not an admin.
	ErrNotAdmin = errors.New("queue: only an admin may reassign a removed member's conversation")

	// ErrNotRemovedOwner reports a reassignment of a conversation the
	// removed member does not own.
	ErrNotRemovedOwner = errors.New("queue: conversation not owned by the removed member")

	// ErrLimit reports a count or version at its limit: a register at
	// version 2^64-1, a reopen count at 2^32-1, a view holding
	// MaxConversations.
	ErrLimit = errors.New("queue: limit reached")

	// ErrAnswer reports a SetClaim or GetClaim answer that cannot be the
	// relay's for the request: a won write at another version or with
	// another value, a lost one at the expected version.
	ErrAnswer = errors.New("queue: answer does not match the request")

	// ErrBehind reports a register whose version is below this device's
	// view of it: the relay lost writes (restored from an old copy), or a
	// staff member announced a version the register never had. The view
	// is not moved back; an operation from it cannot succeed.
	ErrBehind = errors.New("queue: register behind this device's view")

	// ErrRandom reports a failure of the randomness source.
	ErrRandom = errors.New("queue: random source failed")
)
