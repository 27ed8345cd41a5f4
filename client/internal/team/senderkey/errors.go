package senderkey

import (
	"errors"

	"github.com/postern/postern/protocol"
)

// Sentinel errors. Test with errors.Is. No error of this package carries
// secret material or the raw input it was given.
var (
	// ErrDecrypt is the one error of Open for anything that depends on
	// secrets or on the authenticity of a message: a header the group
	// header key does not open, an unknown version, a body that does not
	// authenticate, a signature that does not verify, a replayed message
	// (its iteration already read), a message whose skipped key was
	// evicted, a straggler of the previous epoch beyond its end, an epoch
	// older than the two kept, a truncated or altered message. The state
	// is left exactly as it was.
	ErrDecrypt = errors.New("senderkey: decryption failed")

	// ErrNoSenderKey reports a message whose header opened under the group
	// header key but whose (sender, epoch) has no sender key here yet: the
	// sender is unknown or the epoch is newer than the one held (its
	// distribution has not arrived). The caller may keep the message and
	// try again when the distribution comes. Open returns it as a
	// *MissingKeyError, which names the sender and the epoch.
	ErrNoSenderKey = errors.New("senderkey: no sender key for this sender and epoch")

	// ErrSkipLimit reports a message more than MaxSkip iterations ahead of
	// the next one expected from its sender key. The state is unchanged.
	ErrSkipLimit = errors.New("senderkey: message too far ahead in its chain")

	// ErrMalformed reports an encoding (distribution, own or received
	// state) that does not follow SPEC.md section 15.1: wrong length,
	// unknown tag or version, non-canonical order, trailing bytes, a count
	// above its cap. It depends only on the bytes given.
	ErrMalformed = errors.New("senderkey: malformed encoding")

	// ErrWrongGroup reports a distribution for another group than the
	// state's.
	ErrWrongGroup = errors.New("senderkey: distribution for another group")

	// ErrStaleDistribution reports a distribution of an epoch older than
	// the previous one held for its sender, or one of an epoch held already
	// with another signing key. The state is unchanged.
	ErrStaleDistribution = errors.New("senderkey: distribution older than or conflicting with the sender key held")

	// ErrTooManySenders reports a distribution from a new sender when the
	// state already holds MaxSenders senders.
	ErrTooManySenders = errors.New("senderkey: too many senders in the group state")

	// ErrTooLarge reports a plaintext above MaxPlaintextSize.
	ErrTooLarge = errors.New("senderkey: message too large")

	// ErrExhausted reports an own sender key that has sealed 2^32-1
	// messages, or an epoch that cannot advance further.
	ErrExhausted = errors.New("senderkey: sender key exhausted")

	// ErrRandom reports a failure of the randomness source.
	ErrRandom = errors.New("senderkey: random source failed")
)

// MissingKeyError is the error of Open for a message that authenticated
// under the group header key but needs a sender key not held yet. It
// matches ErrNoSenderKey under errors.Is. Its text names neither the
// sender nor the epoch.
type MissingKeyError struct {
	Sender protocol.DeviceID
	Epoch  uint32
}

func (e *MissingKeyError) Error() string { return ErrNoSenderKey.Error() }

func (e *MissingKeyError) Is(target error) bool { return target == ErrNoSenderKey }
