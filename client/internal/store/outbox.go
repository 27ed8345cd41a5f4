package store

import (
	"encoding/binary"
	"fmt"
	"time"
)

// OutboxEntry is a sealed envelope waiting to be sent (protocol/SPEC.md
// section 9 "Local state", "Outbox"). It holds no key: the session state
// that sealed it is already committed, and the envelope is what goes on
// the wire, so it is sealed under Kenc like the messages.
type OutboxEntry struct {
	V int `json:"v"`
	// Device is the record ID of the device it goes to.
	Device []byte `json:"device"`
	// Relay, Mailbox and Capability are where it goes and how.
	Relay      string `json:"relay"`
	Mailbox    []byte `json:"mailbox"`
	Capability []byte `json:"cap"`
	Envelope   []byte `json:"envelope"`
	// Message is the ID of the outgoing message it carries, "" for a
	// content that is not a message (a route, a reset).
	Message string    `json:"message,omitempty"`
	Created time.Time `json:"created"`
	// Group, when set, makes it a group envelope (a team's queue
	// receipt) for that group's fan-out list, read when it is sent;
	// Device, Mailbox and Capability are then empty.
	Group []byte `json:"group,omitempty"`
	// ReplyRoute: Mailbox is a team's reply route (client/teamroutes.go),
	// which the intake may delete before this device learns it: the
	// entry then moves to the device's other route.
	ReplyRoute bool `json:"reply_route,omitempty"`
}

// OutboxItem is an entry with its key: its place in the order of sends.
type OutboxItem struct {
	Seq uint64
	*OutboxEntry
}

func outboxKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// AddOutbox stores e after every entry already queued and returns its
// sequence number.
func (t *Tx) AddOutbox(e *OutboxEntry) (uint64, error) {
	seq, err := t.NextSequence(BucketOutbox)
	if err != nil {
		return 0, err
	}
	e.V = 1
	return seq, t.Put(BucketOutbox, outboxKey(seq), e)
}

// Outbox returns every queued entry, oldest first.
func (t *Tx) Outbox() ([]OutboxItem, error) {
	var out []OutboxItem
	err := t.Each(BucketOutbox, func(k, v []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("store: outbox key of %d bytes: %w", len(k), ErrCorrupt)
		}
		e := new(OutboxEntry)
		if err := Unmarshal(v, e); err != nil {
			return err
		}
		out = append(out, OutboxItem{Seq: binary.BigEndian.Uint64(k), OutboxEntry: e})
		return nil
	})
	return out, err
}

// PutOutbox replaces entry seq with e (the entry moved to another
// route), keeping its place in the order. The caller checks OutboxHas.
func (t *Tx) PutOutbox(seq uint64, e *OutboxEntry) error {
	e.V = 1
	return t.Put(BucketOutbox, outboxKey(seq), e)
}

// OutboxHas reports whether entry seq is still queued.
func (t *Tx) OutboxHas(seq uint64) bool { return t.Has(BucketOutbox, outboxKey(seq)) }

// DeleteOutbox removes entry seq (sent, refused or expired).
func (t *Tx) DeleteOutbox(seq uint64) error {
	if b := t.bt.Bucket(BucketOutbox); b == nil {
		return nil
	}
	return t.Delete(BucketOutbox, outboxKey(seq))
}
