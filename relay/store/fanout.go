package store

import (
	"context"
	"errors"

	"github.com/postern/postern/protocol"
)

// Fan-out refusals.
var (
	// ErrUnknownFanout: no such fan-out list.
	ErrUnknownFanout = errors.New("store: unknown fan-out list")
	// ErrFanoutCapability: the admin or send capability is not the list's.
	ErrFanoutCapability = errors.New("store: wrong fan-out capability")
	// ErrFanoutLimit: lists per device, or entries per list, would pass
	// their limit.
	ErrFanoutLimit = errors.New("store: fan-out limit reached")
)

func init() { refusals = append(refusals, ErrUnknownFanout, ErrFanoutCapability, ErrFanoutLimit) }

// FanoutEntry is a member mailbox of a list and the hash of the send
// capability the relay checks, at each send, as it checks a Send's.
type FanoutEntry struct {
	Mailbox    protocol.MailboxID
	Capability protocol.CapabilityHash
}

// FanoutChange is what UpdateFanout applies, in one transaction:
// removals, then additions (an added mailbox already in the list takes
// the new capability), then the new send capability if NewSend is set.
type FanoutChange struct {
	NewSend *protocol.CapabilityHash
	Add     []FanoutEntry
	Remove  []protocol.MailboxID
}

// FanoutRefusal is an entry a fan-out send did not store into: its index
// in the list (ascending order of mailbox) and the refusal a Append to it
// would have returned (ErrUnknownCapability, ErrCapabilityRevoked,
// ErrQueueFull, ...).
type FanoutRefusal struct {
	Index int
	Err   error
}

// FanoutResult is the outcome of a fan-out send: the stored copies (each
// with its own sequence and ID), and the refused entries in index order.
type FanoutResult struct {
	Stored  []Envelope
	Refused []FanoutRefusal
}

// FanoutStore keeps fan-out lists. The capability hashes it is given are
// CapabilityToken.Hash of the tokens; it compares them in constant time.
type FanoutStore interface {
	// CreateFanout stores a new list created by creator with the hashes
	// of its admin and send capabilities. ErrFanoutLimit when creator has
	// protocol.MaxFanoutsPerDevice lists or entries exceed
	// protocol.MaxFanoutEntries. A mailbox listed twice keeps its last
	// entry. Entries are not checked: a send reports those it refuses.
	CreateFanout(ctx context.Context, creator protocol.DeviceID, id protocol.FanoutID, admin, send protocol.CapabilityHash, entries []FanoutEntry) error
	// UpdateFanout applies c with the list's admin capability:
	// ErrUnknownFanout, ErrFanoutCapability, or ErrFanoutLimit when the
	// list would hold more than protocol.MaxFanoutEntries; then nothing
	// changes.
	UpdateFanout(ctx context.Context, id protocol.FanoutID, admin protocol.CapabilityHash, c FanoutChange) error
	// DeleteFanout deletes the list with its admin capability
	// (ErrUnknownFanout, ErrFanoutCapability).
	DeleteFanout(ctx context.Context, id protocol.FanoutID, admin protocol.CapabilityHash) error
	// CheckFanout returns nil when send is the list's send capability,
	// and the list's size; else ErrUnknownFanout or ErrFanoutCapability.
	// Read-only: a refused send costs no commit.
	CheckFanout(ctx context.Context, id protocol.FanoutID, send protocol.CapabilityHash) (entries int, err error)
	// AppendFanout checks the list and its send capability again, then,
	// in one durable commit, stores a copy of e (its Mailbox ignored) in
	// every entry's mailbox whose capability is live and whose queue is
	// not full, as Append does for each, with its own sequence and ID.
	// The other entries are refused, not failed: their refusals are in
	// the result and the call succeeds even if every entry is refused.
	AppendFanout(ctx context.Context, id protocol.FanoutID, send protocol.CapabilityHash, e Envelope) (FanoutResult, error)
}
