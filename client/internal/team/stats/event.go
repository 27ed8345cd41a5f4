package stats

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/postern/postern/client/internal/team/hours"
)

// Sizes of identifiers and encodings (protocol/SPEC.md section 15.8).
const (
	// EventIDSize is the size of an event's ID.
	EventIDSize = 16
	// QueueIDSize is the size of a queue's ID (the team's group ID).
	QueueIDSize = 16
	// TokenSize is the size of a conversation token (the claim token of
	// SPEC 15.4) and of a log entry's subject.
	TokenSize = 32
	// EventSize is the size of an encoded event.
	EventSize = 2 + EventIDSize + 8 + QueueIDSize + TokenSize + 1

	// eventVersion is the first byte of an encoded event.
	eventVersion = 1
)

// maxMillis is 9999-12-31T23:59:59.999Z in Unix milliseconds, the last
// time an event or log entry may carry.
const maxMillis = 253402300799999

// EventID identifies an event: counting an event whose ID was already
// counted changes nothing.
type EventID [EventIDSize]byte

// QueueID identifies a team queue.
type QueueID [QueueIDSize]byte

// Token is a conversation token: opaque, the same on every staff device
// for one conversation of one queue, and telling nothing about it.
type Token [TokenSize]byte

// EventType says what happened.
type EventType uint8

// The event types. Their numbers are part of the encoding.
const (
	// MessageArrived: a message from outside reached the queue.
	MessageArrived EventType = 1
	// Claimed: a staff member claimed the conversation.
	Claimed EventType = 2
	// FirstResponse: the team answered the conversation for the first
	// time since it was opened or reopened.
	FirstResponse EventType = 3
	// Resolved: the owner resolved the conversation.
	Resolved EventType = 4
	// Archived: the conversation was archived.
	Archived EventType = 5
	// Reopened: the patient wrote again after the conversation was
	// resolved or archived.
	Reopened EventType = 6
	// Escalated: a wake-up was sent about the conversation
	// (Event.Escalation says why).
	Escalated EventType = 7
	// DeliveryFailed: a message of the team to the conversation could not
	// be delivered.
	DeliveryFailed EventType = 8
	// ExportMade: the conversation, or one message of it, was exported
	// for the record.
	ExportMade EventType = 9
)

var eventNames = [...]string{
	MessageArrived: "message_arrived",
	Claimed:        "claimed",
	FirstResponse:  "first_response",
	Resolved:       "resolved",
	Archived:       "archived",
	Reopened:       "reopened",
	Escalated:      "escalated",
	DeliveryFailed: "delivery_failed",
	ExportMade:     "export_made",
}

func (t EventType) valid() bool { return t >= MessageArrived && t <= ExportMade }

func (t EventType) String() string {
	if t.valid() {
		return eventNames[t]
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// Escalation is the reason of an Escalated event.
type Escalation uint8

// The escalation types. Their numbers are part of the encoding.
const (
	// EscalationUnclaimed: the window passed and nobody claimed the
	// conversation.
	EscalationUnclaimed Escalation = 1
	// EscalationUnanswered: the window passed; it was claimed but not
	// answered.
	EscalationUnanswered Escalation = 2
	// EscalationUrgentReminder: a reminder that an urgent message is not
	// read yet.
	EscalationUrgentReminder Escalation = 3
)

// escalationNames are the values of the type label and the JSON members.
var escalationNames = [...]string{
	EscalationUnclaimed:      "unclaimed",
	EscalationUnanswered:     "unanswered",
	EscalationUrgentReminder: "urgent_reminder",
}

func (e Escalation) valid() bool { return e >= EscalationUnclaimed && e <= EscalationUrgentReminder }

func (e Escalation) String() string {
	if e.valid() {
		return escalationNames[e]
	}
	return fmt.Sprintf("Escalation(%d)", uint8(e))
}

// EscalationOf is the escalation type that counts a wake-up of package
// hours for the reason r.
func EscalationOf(r hours.Reason) (Escalation, bool) {
	switch r {
	case hours.Unclaimed:
		return EscalationUnclaimed, true
	case hours.Unanswered:
		return EscalationUnanswered, true
	case hours.Unread:
		return EscalationUrgentReminder, true
	}
	return 0, false
}

// Event is one content-free fact about a queue's conversation: what, when,
// in which queue and for which conversation token. It never holds
// content, names or who did it. Times are kept to the millisecond.
type Event struct {
	ID           EventID
	Type         EventType
	Time         time.Time
	Queue        QueueID
	Conversation Token
	// Escalation is set on an Escalated event only.
	Escalation Escalation
}

// NewEvent returns an event with a fresh random ID, its time cut to the
// millisecond. The caller then sets Escalation on an Escalated event.
func NewEvent(typ EventType, at time.Time, q QueueID, conv Token) (Event, error) {
	e := Event{Type: typ, Time: time.UnixMilli(at.UnixMilli()).UTC(), Queue: q, Conversation: conv}
	if _, err := rand.Read(e.ID[:]); err != nil {
		return Event{}, fmt.Errorf("stats: event ID: %w", err)
	}
	return e, nil
}

// millis returns t in Unix milliseconds if it is in the range events and
// log entries may carry (after 1970-01-01T00:00:00Z, up to the end of year
// 9999).
func millis(t time.Time) (int64, bool) {
	if t.IsZero() {
		return 0, false
	}
	ms := t.UnixMilli()
	return ms, ms >= 1 && ms <= maxMillis
}

// Validate checks the rules of SPEC 15.8 that Add and MarshalBinary apply.
func (e Event) Validate() error {
	switch {
	case !e.Type.valid():
		return fmt.Errorf("%w: unknown type %d", ErrEvent, uint8(e.Type))
	case e.ID == EventID{}:
		return fmt.Errorf("%w: zero ID", ErrEvent)
	case e.Queue == QueueID{}:
		return fmt.Errorf("%w: zero queue", ErrEvent)
	case e.Conversation == Token{}:
		return fmt.Errorf("%w: zero conversation token", ErrEvent)
	case e.Type == Escalated && !e.Escalation.valid():
		return fmt.Errorf("%w: escalation of unknown type %d", ErrEvent, uint8(e.Escalation))
	case e.Type != Escalated && e.Escalation != 0:
		return fmt.Errorf("%w: escalation type on a %v event", ErrEvent, e.Type)
	}
	if _, ok := millis(e.Time); !ok {
		return fmt.Errorf("%w: time out of range", ErrEvent)
	}
	return nil
}

// MarshalBinary returns the EventSize bytes of SPEC 15.8:
// version (1) || type || ID || time (u64 Unix ms) || queue || conversation
// || escalation. A time is cut to the millisecond.
func (e Event) MarshalBinary() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e.appendTo(make([]byte, 0, EventSize)), nil
}

func (e Event) appendTo(b []byte) []byte {
	ms, _ := millis(e.Time)
	b = append(b, eventVersion, byte(e.Type))
	b = append(b, e.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(ms))
	b = append(b, e.Queue[:]...)
	b = append(b, e.Conversation[:]...)
	return append(b, byte(e.Escalation))
}

// ParseEvent decodes an event. It accepts exactly the bytes MarshalBinary
// writes for a valid event, and nothing else.
func ParseEvent(b []byte) (Event, error) {
	if len(b) != EventSize {
		return Event{}, fmt.Errorf("%w: event of %d bytes, want %d", ErrMalformed, len(b), EventSize)
	}
	if b[0] != eventVersion {
		return Event{}, fmt.Errorf("%w: event version %d", ErrMalformed, b[0])
	}
	var e Event
	e.Type = EventType(b[1])
	p := b[2:]
	copy(e.ID[:], p)
	p = p[EventIDSize:]
	ms := binary.BigEndian.Uint64(p)
	p = p[8:]
	copy(e.Queue[:], p)
	p = p[QueueIDSize:]
	copy(e.Conversation[:], p)
	p = p[TokenSize:]
	e.Escalation = Escalation(p[0])
	if ms < 1 || ms > maxMillis {
		return Event{}, fmt.Errorf("%w: event time out of range", ErrMalformed)
	}
	e.Time = time.UnixMilli(int64(ms)).UTC()
	if err := e.Validate(); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return e, nil
}
