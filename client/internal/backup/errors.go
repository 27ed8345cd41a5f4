package backup

import (
	"errors"
	"fmt"
)

// Sentinel errors. Test with errors.Is. No error of this package carries
// the recovery key, a derived key or record content.
var (
	// ErrRecoveryKey is a recovery key that does not parse; the error is a
	// *RecoveryKeyError naming the group at fault when there is one.
	ErrRecoveryKey = errors.New("backup: invalid recovery key")

	// ErrNotBackup is a file that does not start with the backup magic.
	ErrNotBackup = errors.New("backup: not a Postern backup file")

	// ErrUnsupportedVersion is a backup of another format version (made by
	// another release).
	ErrUnsupportedVersion = errors.New("backup: backup format version not supported (made by another release of Postern)")

	// ErrWrongKey is a recovery key that is not the one this backup was
	// made with: the header is intact (its checksum matches) but the key
	// check value does not. Nothing was decrypted.
	ErrWrongKey = errors.New("backup: wrong recovery key for this backup")

	// ErrDamaged is a backup whose bytes changed: the header checksum does
	// not match, or a chunk does not authenticate. Records from chunks
	// before the damaged one may already have been returned; none from it
	// or after it are.
	ErrDamaged = errors.New("backup: the backup file is damaged")

	// ErrOutOfOrder is a chunk that authenticates, but at another position:
	// chunks were reordered or duplicated. It also matches ErrDamaged.
	ErrOutOfOrder = fmt.Errorf("%w: chunks reordered or duplicated", ErrDamaged)

	// ErrTruncated is a backup that ends early: in its header, before its
	// first chunk, or after a chunk that is not the final one.
	ErrTruncated = errors.New("backup: the backup file is incomplete (cut short)")

	// ErrMalformed is a backup that authenticates but breaks the format
	// (record type 0, a record above MaxRecordSize, a record cut by the
	// end, an empty final chunk after others), or a header with values this
	// version does not allow. Only a holder of the key can make the former.
	ErrMalformed = errors.New("backup: malformed backup")

	// ErrTooLarge is a record above MaxRecordSize or a backup above
	// MaxChunks chunks, refused by the Writer.
	ErrTooLarge = errors.New("backup: too large")

	// ErrClosed is a write to a Writer after Close.
	ErrClosed = errors.New("backup: writer closed")
)

// RecoveryKeyError says which group of a recovery key is wrong.
type RecoveryKeyError struct {
	Group  int    // 1..Groups, or 0 when the key as a whole is wrong (count of groups)
	Reason string // what is wrong, never the digits themselves
}

func (e *RecoveryKeyError) Error() string {
	if e.Group == 0 {
		return "backup: invalid recovery key: " + e.Reason
	}
	return fmt.Sprintf("backup: invalid recovery key: group %d of %d %s", e.Group, Groups, e.Reason)
}

// Is makes errors.Is(err, ErrRecoveryKey) true.
func (e *RecoveryKeyError) Is(target error) bool { return target == ErrRecoveryKey }

func wrapf(base error, format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{base}, a...)...)
}
