package keys

import "errors"

// Sentinel errors. Callers should test with errors.Is: the returned errors
// usually wrap one of these with a message naming the object and the field
// that failed (never the secret or the raw input).
var (
	// ErrMalformed reports an encoding that does not follow the layout in
	// SPEC.md: wrong length, unknown type tag or version, trailing bytes,
	// a field out of range, or a key the underlying library refuses.
	ErrMalformed = errors.New("keys: malformed encoding")

	// ErrBadSignature reports a hybrid signature that does not verify: the
	// Ed25519 half, the ML-DSA-65 half, or both. Which half failed is not
	// reported, on purpose: a caller must not behave differently.
	ErrBadSignature = errors.New("keys: bad signature")

	// ErrInvalidContext reports a signature context string that is empty or
	// longer than MaxContextSize bytes. It is a programming error, not an
	// attack, so it is kept apart from ErrBadSignature.
	ErrInvalidContext = errors.New("keys: invalid signature context")

	// ErrSeal reports a failure of the randomness source or the HPKE
	// library while sealing; it never depends on the plaintext.
	ErrSeal = errors.New("keys: seal failed")
)

// detailError carries a specific, non-secret message while matching a
// sentinel with errors.Is. It exists so that messages read
// "keys: device certificate: length 12, want 8567" rather than a chain of
// repeated prefixes.
type detailError struct {
	msg      string
	sentinel error
}

func (e *detailError) Error() string { return e.msg }
func (e *detailError) Unwrap() error { return e.sentinel }

// malformed builds an ErrMalformed with a specific message. Callers must
// only pass lengths, offsets, tags and other public metadata as args.
func malformed(object, format string, args ...any) error {
	return &detailError{msg: "keys: " + object + ": " + sprintf(format, args...), sentinel: ErrMalformed}
}

// badSignature returns ErrBadSignature itself for a bare signature, or a
// wrapped one naming the signed object.
func badSignature(object string) error {
	if object == "" {
		return ErrBadSignature
	}
	return &detailError{msg: "keys: " + object + ": bad signature", sentinel: ErrBadSignature}
}
