package audit

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed: Append on a closed Log.
	ErrClosed = errors.New("audit: log closed")
	// ErrCorrupt: Open found a last entry it cannot continue the chain
	// from. Run `postern-relay audit verify`.
	ErrCorrupt = errors.New("audit: log is corrupt")
	// ErrKeyFile: the relay key file is malformed or too open.
	ErrKeyFile = errors.New("audit: relay key file")
	// ErrBundle: an export bundle does not parse.
	ErrBundle = errors.New("audit: malformed bundle")
)

// Problem says what is wrong at a position of the log.
type Problem int

// Problems Verify reports.
const (
	// Edited: the entry's bytes do not hash to its hash (or do not parse).
	Edited Problem = iota + 1
	// Removed: sequence numbers jump, or entries are missing at the end.
	Removed
	// Reordered: an entry appears before one that precedes it.
	Reordered
	// Rechained: the entry's prev does not match the previous entry's
	// hash with sequence numbers in order.
	Rechained
	// BadSignature: a head's signature does not verify: entries at or
	// before it were changed (hashes recomputed) or it is forged.
	BadSignature
)

func (p Problem) String() string {
	switch p {
	case Edited:
		return "edited"
	case Removed:
		return "removed"
	case Reordered:
		return "reordered"
	case Rechained:
		return "rechained"
	case BadSignature:
		return "bad signature"
	}
	return fmt.Sprintf("problem(%d)", int(p))
}

// Error is what Verify returns for a log that was tampered with: the first
// problem found and where.
type Error struct {
	Problem Problem
	Seq     uint64 // the entry's sequence number (the expected one if it is missing or unreadable)
	Line    int    // 1-based line in the log (or position in the bundle)
	Msg     string // the whole sentence, e.g. "entry 17 (line 17) was edited"
}

func (e *Error) Error() string { return "audit log: " + e.Msg }
