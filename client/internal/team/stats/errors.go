package stats

import (
	"errors"
	"fmt"
)

var (
	// ErrEvent reports an event that cannot be counted or encoded: an
	// unknown type, a zero ID, queue or conversation token, a time out of
	// range, or an escalation type on an event that is not an escalation.
	ErrEvent = errors.New("stats: invalid event")

	// ErrMalformed reports bytes that are not the exact encoding of an
	// event, a log record or a log (wrong length, unknown version, a field
	// out of range).
	ErrMalformed = errors.New("stats: malformed encoding")

	// ErrConflict reports an event whose ID was already counted with other
	// contents. Nothing is changed: the first event stands.
	ErrConflict = errors.New("stats: event ID already used by another event")

	// ErrFull reports an event beyond a limit (MaxEvents, MaxQueues,
	// MaxConversationEvents) or a log beyond MaxLogEntries. Nothing is
	// changed.
	ErrFull = errors.New("stats: limit reached")

	// ErrQueueName reports a queue name that is empty, longer than
	// MaxQueueName, not UTF-8, has a control character, or is already the
	// name of another queue.
	ErrQueueName = errors.New("stats: invalid queue name")

	// ErrEntry reports a log entry that cannot be appended: an unknown
	// kind, a detail the kind does not allow, a zero actor or subject, or
	// a time out of range.
	ErrEntry = errors.New("stats: invalid log entry")

	// The findings of VerifyLog. A *LogError carries the entry.

	// ErrLogEdited: an entry's stored hash is not the hash of its own
	// contents and stored previous hash.
	ErrLogEdited = errors.New("stats: team log entry was edited")
	// ErrLogBroken: an entry's stored previous hash is not the hash of
	// the entry before it: an earlier entry was rewritten (with its hash
	// recomputed), or the log was spliced.
	ErrLogBroken = errors.New("stats: team log chain is broken")
	// ErrLogRemoved: entries are missing between two entries.
	ErrLogRemoved = errors.New("stats: team log entries were removed")
	// ErrLogReordered: an entry is out of its place, or repeated.
	ErrLogReordered = errors.New("stats: team log entries were reordered")
	// ErrLogInserted: two different entries have the same sequence number.
	ErrLogInserted = errors.New("stats: team log entry was inserted")
	// ErrLogTruncated: the log ends before the trusted head.
	ErrLogTruncated = errors.New("stats: team log was cut off before the trusted head")
	// ErrLogRewritten: the log is a valid chain but does not contain the
	// trusted head, or belongs to another team.
	ErrLogRewritten = errors.New("stats: team log does not contain the trusted head")
)

// LogError is a finding of VerifyLog about one entry: Err is one of the
// ErrLog… sentinels (errors.Is works), Index the record's position in the
// log (from 0) and Seq the sequence number it holds (0 when not read).
type LogError struct {
	Err   error
	Index int
	Seq   uint64
	Msg   string
}

func (e *LogError) Error() string {
	return fmt.Sprintf("%v: record %d (entry %d): %s", e.Err, e.Index, e.Seq, e.Msg)
}

func (e *LogError) Unwrap() error { return e.Err }
