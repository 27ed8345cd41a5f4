package session

import "errors"

// Sentinel errors. Test with errors.Is. No error of this package carries
// secret material or the raw input it was given.
var (
	// ErrDecrypt is the one error of Open and Respond for anything that
	// depends on secrets: a message or Init that does not authenticate, a
	// header no key opens, a replayed or already-read message, a message
	// outside the skip window, a bad initiator signature, a corrupted or
	// truncated message. The session is left exactly as it was.
	ErrDecrypt = errors.New("session: decryption failed")

	// ErrMalformed reports an encoding (Init, message framing, serialized
	// state) that does not follow SPEC.md section 11: wrong length, unknown tag
	// or version, non-canonical field, trailing bytes, a size above a cap.
	// It depends only on public bytes.
	ErrMalformed = errors.New("session: malformed encoding")

	// ErrBundle reports a peer bundle that cannot be used: a missing field,
	// a certificate or prekey whose signature does not verify, a prekey of
	// the wrong kind (last-resort vs one-time).
	ErrBundle = errors.New("session: unusable peer bundle")

	// ErrPrekey reports prekeys given to Respond that do not match the Init:
	// wrong IDs, a one-time prekey missing (already consumed) or unexpected,
	// a prekey signed by another device. A caller error or a replayed Init.
	ErrPrekey = errors.New("session: prekeys do not match the Init")

	// ErrTooLarge reports a plaintext that does not fit in padTo bytes, or a
	// message above MaxMessageSize.
	ErrTooLarge = errors.New("session: message too large")

	// ErrExhausted reports a sending chain that reached 2^32-1 messages.
	ErrExhausted = errors.New("session: sending chain exhausted")

	// ErrRandom reports a failure of the randomness source or of a primitive
	// while sealing; it never depends on the plaintext.
	ErrRandom = errors.New("session: random source or primitive failed")
)
