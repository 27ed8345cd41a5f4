package stats

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/postern/postern/protocol"
)

// Labels of the team log's hash chain (SPEC 15.8).
const (
	logEntryLabel = protocol.LabelPrefix + "team-log"
	logStartLabel = protocol.LabelPrefix + "team-log-start"
)

// Sizes and limits of the team log (SPEC 15.8).
const (
	// TeamIDSize is the size of the team ID a log is bound to (the team's
	// group ID).
	TeamIDSize = 16
	// FingerprintSize is the size of an actor's identity fingerprint.
	FingerprintSize = 32
	// EntrySize is the size of an encoded entry, the bytes a hash covers.
	EntrySize = 1 + 8 + 8 + 1 + 1 + FingerprintSize + TokenSize
	// RecordSize is the size of a stored record: the entry, the previous
	// entry's hash and its own hash.
	RecordSize = EntrySize + 2*sha256.Size
	// MaxLogEntries is the number of entries a log may hold.
	MaxLogEntries = 1 << 24

	entryVersion = 1
)

// TeamID identifies the team a log belongs to.
type TeamID [TeamIDSize]byte

// LogKind says what an entry records.
type LogKind uint8

// The entry kinds and the details each allows. Their numbers are part of
// the encoding.
const (
	// LogExport: a staff member exported for the record; Detail
	// ExportConversation or ExportMessage; Subject the conversation token.
	LogExport LogKind = 1
	// LogBlock: a contact was restricted; Detail BlockNew, BlockReplies or
	// BlockAll; Subject a token of the contact (never a name).
	LogBlock LogKind = 2
	// LogUnblock: a restriction was lifted; Detail 0; Subject as LogBlock.
	LogUnblock LogKind = 3
	// LogStaffAdded: a staff member was added; Detail 0; Subject the
	// member's identity fingerprint.
	LogStaffAdded LogKind = 4
	// LogStaffRemoved: a staff member was removed; as LogStaffAdded.
	LogStaffRemoved LogKind = 5
	// LogEscalation: a wake-up was sent; Detail an Escalation; Subject
	// the conversation token; Actor the agent's identity.
	LogEscalation LogKind = 6
)

// Details of LogExport and LogBlock entries.
const (
	ExportConversation uint8 = 1
	ExportMessage      uint8 = 2

	BlockNew     uint8 = 1 // from sending new messages to the team
	BlockReplies uint8 = 2 // from replying in the team's conversations
	BlockAll     uint8 = 3 // from the whole service
)

var logKindNames = [...]string{
	LogExport: "export", LogBlock: "block", LogUnblock: "unblock",
	LogStaffAdded: "staff_added", LogStaffRemoved: "staff_removed", LogEscalation: "escalation",
}

func (k LogKind) String() string {
	if k >= LogExport && k <= LogEscalation {
		return logKindNames[k]
	}
	return fmt.Sprintf("LogKind(%d)", uint8(k))
}

// maxDetail is the largest detail each kind allows (0: none).
func (k LogKind) maxDetail() (uint8, bool) {
	switch k {
	case LogExport:
		return ExportMessage, true
	case LogBlock:
		return BlockAll, true
	case LogUnblock, LogStaffAdded, LogStaffRemoved:
		return 0, true
	case LogEscalation:
		return uint8(EscalationUrgentReminder), true
	}
	return 0, false
}

// Entry is one content-free entry of a team's log: when, what, who did it
// (an identity fingerprint) and what it was about (a token). Times are kept
// to the millisecond.
type Entry struct {
	Time    time.Time
	Kind    LogKind
	Detail  uint8
	Actor   [FingerprintSize]byte
	Subject Token
}

// Validate checks the rules of SPEC 15.8 for an entry.
func (e Entry) Validate() error {
	max, ok := e.Kind.maxDetail()
	switch {
	case !ok:
		return fmt.Errorf("%w: unknown kind %d", ErrEntry, uint8(e.Kind))
	case max == 0 && e.Detail != 0, max != 0 && (e.Detail < 1 || e.Detail > max):
		return fmt.Errorf("%w: detail %d on a %v entry", ErrEntry, e.Detail, e.Kind)
	case e.Actor == [FingerprintSize]byte{}:
		return fmt.Errorf("%w: zero actor", ErrEntry)
	case e.Subject == Token{}:
		return fmt.Errorf("%w: zero subject", ErrEntry)
	}
	if _, ok := millis(e.Time); !ok {
		return fmt.Errorf("%w: time out of range", ErrEntry)
	}
	return nil
}

// Record is an entry as the log stores it: its sequence number (from 1),
// the previous entry's hash and its own.
type Record struct {
	Seq   uint64
	Entry Entry
	Prev  [sha256.Size]byte
	Hash  [sha256.Size]byte
}

// appendEntry appends the EntrySize bytes the hash covers:
// version || seq || time (u64 Unix ms) || kind || detail || actor || subject.
func appendEntry(b []byte, seq uint64, e Entry) []byte {
	ms, _ := millis(e.Time)
	b = append(b, entryVersion)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint64(b, uint64(ms))
	b = append(b, byte(e.Kind), e.Detail)
	b = append(b, e.Actor[:]...)
	return append(b, e.Subject[:]...)
}

// chainHash is SHA-256("postern.v1 team-log" || 0x00 || prev || entry).
func chainHash(prev [sha256.Size]byte, entry []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(logEntryLabel))
	h.Write([]byte{0})
	h.Write(prev[:])
	h.Write(entry)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// StartHash is the hash a team's log starts from (the "previous hash" of
// its first entry): SHA-256("postern.v1 team-log-start" || 0x00 || team).
// It binds the chain to the team.
func StartHash(team TeamID) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(logStartLabel))
	h.Write([]byte{0})
	h.Write(team[:])
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// MarshalBinary returns the RecordSize bytes: entry || prev || hash. It
// does not check the hash (VerifyLog does).
func (r Record) MarshalBinary() ([]byte, error) {
	if err := r.Entry.Validate(); err != nil {
		return nil, err
	}
	if r.Seq == 0 || r.Seq > MaxLogEntries {
		return nil, fmt.Errorf("%w: sequence number %d", ErrEntry, r.Seq)
	}
	return r.appendTo(make([]byte, 0, RecordSize)), nil
}

func (r Record) appendTo(b []byte) []byte {
	b = appendEntry(b, r.Seq, r.Entry)
	b = append(b, r.Prev[:]...)
	return append(b, r.Hash[:]...)
}

// ParseRecord decodes a record. It accepts exactly the bytes MarshalBinary
// writes, and nothing else; it does not check the hashes.
func ParseRecord(b []byte) (Record, error) {
	if len(b) != RecordSize {
		return Record{}, fmt.Errorf("%w: log record of %d bytes, want %d", ErrMalformed, len(b), RecordSize)
	}
	if b[0] != entryVersion {
		return Record{}, fmt.Errorf("%w: log record version %d", ErrMalformed, b[0])
	}
	var r Record
	r.Seq = binary.BigEndian.Uint64(b[1:])
	ms := binary.BigEndian.Uint64(b[9:])
	r.Entry.Kind = LogKind(b[17])
	r.Entry.Detail = b[18]
	p := b[19:]
	copy(r.Entry.Actor[:], p)
	p = p[FingerprintSize:]
	copy(r.Entry.Subject[:], p)
	p = p[TokenSize:]
	copy(r.Prev[:], p)
	copy(r.Hash[:], p[sha256.Size:])
	if r.Seq == 0 || r.Seq > MaxLogEntries {
		return Record{}, fmt.Errorf("%w: log record sequence number %d", ErrMalformed, r.Seq)
	}
	if ms < 1 || ms > maxMillis {
		return Record{}, fmt.Errorf("%w: log record time out of range", ErrMalformed)
	}
	r.Entry.Time = time.UnixMilli(int64(ms)).UTC()
	if err := r.Entry.Validate(); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return r, nil
}

// ParseLog splits a log file, records back to back, and decodes each.
func ParseLog(b []byte) ([]Record, error) {
	if len(b)%RecordSize != 0 {
		return nil, fmt.Errorf("%w: log of %d bytes is not whole records", ErrMalformed, len(b))
	}
	n := len(b) / RecordSize
	if n > MaxLogEntries {
		return nil, fmt.Errorf("%w: more than %d log entries", ErrFull, MaxLogEntries)
	}
	out := make([]Record, n)
	for i := range out {
		r, err := ParseRecord(b[i*RecordSize : (i+1)*RecordSize])
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		out[i] = r
	}
	return out, nil
}

// Head names the newest entry of a log: its sequence number and hash. The
// head of an empty log is (0, StartHash(team)). A verifier that kept an
// earlier head checks that the log still contains it (VerifyLog).
type Head struct {
	Seq  uint64
	Hash [sha256.Size]byte
}

// Log appends entries to a team's log. It keeps only the head; the caller
// stores each record Append returns, in order (a file of records back to
// back is what ParseLog reads). It is not safe for concurrent use.
type Log struct {
	head Head
}

// NewLog starts the log of team.
func NewLog(team TeamID) *Log { return &Log{head: Head{Hash: StartHash(team)}} }

// ResumeLog continues a log from its head, as VerifyLog returned it.
func ResumeLog(head Head) *Log { return &Log{head: head} }

// Head returns the head of the log.
func (l *Log) Head() Head { return l.head }

// Append chains entry e after the head and returns the record to store.
// An invalid entry (ErrEntry) or a full log (ErrFull) changes nothing.
func (l *Log) Append(e Entry) (Record, error) {
	if err := e.Validate(); err != nil {
		return Record{}, err
	}
	if l.head.Seq >= MaxLogEntries {
		return Record{}, fmt.Errorf("%w: %d log entries", ErrFull, MaxLogEntries)
	}
	ms, _ := millis(e.Time)
	e.Time = time.UnixMilli(ms).UTC()
	r := Record{Seq: l.head.Seq + 1, Entry: e, Prev: l.head.Hash}
	r.Hash = chainHash(r.Prev, appendEntry(make([]byte, 0, EntrySize), r.Seq, e))
	l.head = Head{Seq: r.Seq, Hash: r.Hash}
	return r, nil
}

// VerifyLog checks the log of team, its records in stored order, and
// returns its head. It reports the first finding as a *LogError:
//   - a record whose hash is not that of its entry and previous hash:
//     ErrLogEdited;
//   - a record whose sequence number is not its position: ErrLogRemoved
//     (entries before it are missing), ErrLogReordered (an entry out of
//     place, or repeated), ErrLogInserted (another entry with the same
//     number);
//   - a record whose previous hash is not the hash of the record before
//     it (the first: StartHash(team)): ErrLogBroken;
//   - if trusted is not nil, a log that ends before trusted.Seq
//     (ErrLogTruncated) or whose entry trusted.Seq has another hash
//     (ErrLogRewritten).
//
// A chain proves only that nobody changed the log without recomputing
// every hash after the change: someone who can write the log can rewrite
// its end, or the whole of it, consistently. Only a head kept elsewhere
// (trusted) shows that; SPEC 15.8 "What the log proves".
func VerifyLog(team TeamID, records []Record, trusted *Head) (Head, error) {
	if len(records) > MaxLogEntries {
		return Head{}, fmt.Errorf("%w: more than %d log entries", ErrFull, MaxLogEntries)
	}
	// position returns where sequence number seq first appears, to name
	// a finding; only a log that fails needs it.
	position := func(seq uint64) (int, bool) {
		for j, r := range records {
			if r.Seq == seq {
				return j, true
			}
		}
		return 0, false
	}
	head := Head{Hash: StartHash(team)}
	buf := make([]byte, 0, EntrySize)
	for i, r := range records {
		want := uint64(i) + 1
		fail := func(err error, format string, a ...any) (Head, error) {
			return Head{}, &LogError{Err: err, Index: i, Seq: r.Seq, Msg: fmt.Sprintf(format, a...)}
		}
		if r.Entry.Validate() != nil || r.Seq == 0 {
			return fail(ErrLogEdited, "not a valid entry")
		}
		buf = appendEntry(buf[:0], r.Seq, r.Entry)
		if chainHash(r.Prev, buf) != r.Hash {
			return fail(ErrLogEdited, "its hash does not match its contents")
		}
		switch {
		case r.Seq > want:
			if j, ok := position(want); ok && j > i {
				return fail(ErrLogReordered, "entry %d is at record %d", want, j)
			}
			return fail(ErrLogRemoved, "entries %d to %d are missing", want, r.Seq-1)
		case r.Seq < want:
			j, _ := position(r.Seq)
			if bytes.Equal(records[j].appendTo(nil), r.appendTo(nil)) {
				return fail(ErrLogReordered, "repeats record %d", j)
			}
			return fail(ErrLogInserted, "record %d has another entry %d", j, r.Seq)
		}
		if r.Prev != head.Hash {
			return fail(ErrLogBroken, "does not follow the entry before it")
		}
		head = Head{Seq: r.Seq, Hash: r.Hash}
		if trusted != nil && r.Seq == trusted.Seq && r.Hash != trusted.Hash {
			return fail(ErrLogRewritten, "is not the trusted head")
		}
	}
	if trusted != nil {
		switch {
		case trusted.Seq > head.Seq:
			return Head{}, &LogError{Err: ErrLogTruncated, Index: len(records), Seq: head.Seq,
				Msg: fmt.Sprintf("the log ends at entry %d, the trusted head is entry %d", head.Seq, trusted.Seq)}
		case trusted.Seq == 0 && trusted.Hash != StartHash(team):
			return Head{}, &LogError{Err: ErrLogRewritten, Index: 0, Msg: "the trusted head is of another team's log"}
		}
	}
	return head, nil
}
