package directory

import (
	"errors"
	"fmt"
)

// Sentinel errors. Test with errors.Is. Messages name fields, counts and
// positions, never names, identities or the raw input.
var (
	// ErrMalformed reports bytes or a value that do not follow
	// protocol/SPEC.md section 15.7: wrong length, tag or version, a count
	// above its limit, entries out of order or repeated, a name that is not
	// clean UTF-8 of the allowed length, a reference to a team not listed,
	// trailing bytes. It depends only on the bytes given.
	ErrMalformed = errors.New("directory: malformed")

	// ErrBadSignature reports a hybrid signature that does not verify under
	// the signer key the record carries.
	ErrBadSignature = errors.New("directory: bad signature")

	// ErrWrongOrganisation reports a record of another organisation than
	// the one held.
	ErrWrongOrganisation = errors.New("directory: record of another organisation")

	// ErrNotAdmin reports a directory whose signer is not an administrator
	// of the directory (or trust anchor) held.
	ErrNotAdmin = errors.New("directory: signer is not an administrator of the held directory")

	// ErrRollback reports a directory whose version is not above the one
	// held, a role record that does not supersede the holding kept, or a
	// status not newer than the one held.
	ErrRollback = errors.New("directory: not newer than the one held (rollback)")

	// ErrFork reports a directory with the held version but other bytes:
	// two directories signed under one version. It also matches
	// ErrRollback.
	ErrFork = &forkError{}

	// ErrUnchanged reports the very directory held, received again.
	ErrUnchanged = errors.New("directory: the directory held, received again")

	// ErrUnknown reports a role, team or person the directory does not
	// list.
	ErrUnknown = errors.New("directory: not in the directory")

	// ErrNotEntitled reports a role record or status whose signer may not
	// make it: a role record by someone who is neither an administrator nor
	// a staff member of the role's team, naming a holder who is not such a
	// staff member; a status signed by someone else than its subject.
	ErrNotEntitled = errors.New("directory: signer not entitled to this record")

	// ErrFuture reports a status dated more than MaxClockSkew after now.
	ErrFuture = errors.New("directory: status dated in the future")

	// ErrForwardLoop reports forwarding that comes back to a person
	// already on the way.
	ErrForwardLoop = errors.New("directory: forwarding loop")

	// ErrForwardChain reports forwarding longer than MaxForwardHops, or to
	// someone not in the directory.
	ErrForwardChain = errors.New("directory: forwarding chain too long or leaves the directory")
)

type forkError struct{}

func (*forkError) Error() string        { return "directory: another directory under the held version (fork)" }
func (*forkError) Is(target error) bool { return target == ErrRollback }

// detailError carries a specific, non-secret message and matches its
// sentinel under errors.Is.
type detailError struct {
	msg      string
	sentinel error
}

func (e *detailError) Error() string { return e.msg }
func (e *detailError) Unwrap() error { return e.sentinel }

// fail builds an error matching sentinel whose text adds public detail
// (field names, counts, positions) to the sentinel's.
func fail(sentinel error, format string, args ...any) error {
	return &detailError{msg: sentinel.Error() + ": " + fmt.Sprintf(format, args...), sentinel: sentinel}
}
