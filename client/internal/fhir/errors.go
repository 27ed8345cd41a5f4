package fhir

import (
	"errors"
	"fmt"
)

// Sentinel errors. Test with errors.Is; the returned errors wrap one of
// these with the detail that failed (a field, a position, a size), never
// a message's text or an attachment's bytes.
var (
	// ErrInvalid is an export whose input breaks a rule of SPEC section
	// 15.3: no messages, a missing or malformed message ID or identifier,
	// a name that is too long, a party with neither name nor identity, two
	// messages with one ID, no signer. Nothing is signed.
	ErrInvalid = errors.New("fhir: invalid export input")

	// ErrTooLarge is an export or a part of one over a limit of SPEC
	// section 15.3 (MaxExportSize, MaxMessages, MaxAttachments,
	// MaxAttachmentSize, MaxTextSize, MaxRecipients). Export the
	// conversation in parts (one message at a time if need be).
	ErrTooLarge = errors.New("fhir: export too large")

	// ErrAttachment is an attachment whose reader failed; the reader's
	// error is wrapped too.
	ErrAttachment = errors.New("fhir: attachment could not be read")

	// ErrSign is a failure of the signer (its randomness, in practice);
	// the signer's error is wrapped too.
	ErrSign = errors.New("fhir: signing failed")

	// ErrMalformed is a file that is not an export of this package: not
	// JSON, a member this format does not have or lacks, a value out of
	// range, an attachment whose size or hash does not match its data.
	ErrMalformed = errors.New("fhir: malformed export")

	// ErrNotCanonical is an export that parses but is not byte for byte
	// the encoding this package writes (whitespace, member order, string
	// escapes, duplicate members): the signed file was changed, perhaps
	// only reformatted. Keep exports as the bytes Export wrote.
	ErrNotCanonical = fmt.Errorf("%w: not in canonical form (the file was changed or reformatted after export)", ErrMalformed)

	// ErrWrongSigner is an export whose signature names another identity
	// than the key it is checked against.
	ErrWrongSigner = errors.New("fhir: export signed by another identity")

	// ErrBadSignature is an export whose signature does not verify: some
	// byte of it was changed after signing.
	ErrBadSignature = errors.New("fhir: bad signature (the export was changed after it was signed)")
)

// detailError is a sentinel with the detail of what failed and where:
// "fhir: invalid export input: message 2: sender: name: 300 bytes, at
// most 256". cause is a wrapped error of another package (a reader's).
type detailError struct {
	sentinel error
	detail   string
	cause    error
}

func (e *detailError) Error() string {
	s := e.sentinel.Error() + ": " + e.detail
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

func (e *detailError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.sentinel, e.cause}
	}
	return []error{e.sentinel}
}

func detailf(sentinel error, format string, a ...any) error {
	return &detailError{sentinel: sentinel, detail: fmt.Sprintf(format, a...)}
}

func invalidf(format string, a ...any) error   { return detailf(ErrInvalid, format, a...) }
func tooLargef(format string, a ...any) error  { return detailf(ErrTooLarge, format, a...) }
func malformedf(format string, a ...any) error { return detailf(ErrMalformed, format, a...) }

// in says where err happened ("message 2", "sender"), keeping the
// sentinel first in the message.
func in(where string, err error) error {
	var d *detailError
	if errors.As(err, &d) {
		return &detailError{sentinel: d.sentinel, detail: where + ": " + d.detail, cause: d.cause}
	}
	return fmt.Errorf("%s: %w", where, err)
}
