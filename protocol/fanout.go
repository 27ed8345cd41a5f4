package protocol

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"slices"
)

// Fan-out lists (SPEC.md section 4 and section 10 "Fan-out lists"): a
// group's list of member mailboxes on the relay, so that a sender uploads
// one envelope and the relay stores a copy in every member's mailbox. A
// list has two capabilities: the admin capability changes or deletes it,
// the send capability sends through it. The relay stores only their
// hashes (CapabilityToken.Hash), as for mailbox capabilities; each entry
// carries the member mailbox's own send capability, which the relay
// checks at every send exactly as it checks a Send.

// FanoutID names a fan-out list: 128 random bits chosen by the relay.
type FanoutID [16]byte

// NewFanoutID returns a fresh random list ID.
func NewFanoutID() FanoutID {
	var f FanoutID
	rand.Read(f[:]) // crypto/rand.Read never fails (Go 1.24+)
	return f
}

func (f FanoutID) String() string { return hex.EncodeToString(f[:]) }

// Short is the first four bytes in hex, for logs.
func (f FanoutID) Short() string { return hex.EncodeToString(f[:4]) }

// FanoutEntry is one member mailbox of a list with a send capability for
// it. The token reaches the relay (which stores its hash) so that only
// someone able to Send to a mailbox can put it in a list.
type FanoutEntry struct {
	Mailbox    MailboxID
	Capability CapabilityToken
}

// FanoutRefusal is an entry a SendFanout did not store into: Index is the
// entry's position in the list, in ascending order of mailbox ID, at the
// time of the send; Code says why (the code a Send to that mailbox with
// that capability would have been refused with).
type FanoutRefusal struct {
	Index uint16
	Code  Code
}

// Update flags of UpdateFanout.
const (
	// FanoutNewSend: a new send capability follows; the old one is
	// refused from the moment the update is durable.
	FanoutNewSend = 0x01
	// FanoutDelete: delete the list (nothing else may be in the frame).
	FanoutDelete = 0x02
)

// fanoutEntrySize is one entry on the wire: mailbox (16) and capability (32).
const fanoutEntrySize = 16 + 32

// newFanoutFrame is newFrame for the fan-out frames.
func newFanoutFrame(t FrameType) Frame {
	switch t {
	case TypeCreateFanout:
		return new(CreateFanout)
	case TypeUpdateFanout:
		return new(UpdateFanout)
	case TypeSendFanout:
		return new(SendFanout)
	case TypeFanoutCreated:
		return new(FanoutCreated)
	case TypeFanoutSent:
		return new(FanoutSent)
	}
	return nil
}

// sortedEntries returns a copy of entries in ascending order of mailbox
// (the canonical order), or an error for a count above the frame limit
// or a mailbox listed twice.
func sortedEntries(entries []FanoutEntry) ([]FanoutEntry, error) {
	if len(entries) > MaxFanoutEntriesPerFrame {
		return nil, errorf(ErrTooLarge, "%d fan-out entries, limit %d per frame", len(entries), MaxFanoutEntriesPerFrame)
	}
	s := slices.Clone(entries)
	slices.SortFunc(s, func(a, b FanoutEntry) int { return bytes.Compare(a.Mailbox[:], b.Mailbox[:]) })
	for i := 1; i < len(s); i++ {
		if s[i].Mailbox == s[i-1].Mailbox {
			return nil, errorf(ErrMalformed, "mailbox listed twice in a fan-out frame")
		}
	}
	return s, nil
}

func appendEntries(b []byte, entries []FanoutEntry) ([]byte, error) {
	s, err := sortedEntries(entries)
	if err != nil {
		return nil, err
	}
	b = appendU16(b, uint16(len(s)))
	for _, e := range s {
		b = append(b, e.Mailbox[:]...)
		b = append(b, e.Capability.b[:]...)
	}
	return b, nil
}

// parseEntries reads a u16 count and that many entries, refusing a count
// above MaxFanoutEntriesPerFrame before reading them and mailboxes not in
// strictly ascending order (which is also how duplicates are refused).
func parseEntries(r *Reader, what string) []FanoutEntry {
	n := int(r.U16(what + " count"))
	if r.Err() != nil {
		return nil
	}
	if n > MaxFanoutEntriesPerFrame {
		r.SetErr(errorf(ErrTooLarge, "%s: %d entries, limit %d per frame", what, n, MaxFanoutEntriesPerFrame))
		return nil
	}
	if r.Len() < n*fanoutEntrySize {
		r.Failf("%s: %d bytes for %d entries", what, r.Len(), n)
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]FanoutEntry, n)
	for i := range out {
		r.Array(out[i].Mailbox[:], "mailbox")
		r.Array(out[i].Capability.b[:], "capability")
		if i > 0 && bytes.Compare(out[i-1].Mailbox[:], out[i].Mailbox[:]) >= 0 {
			r.Failf("%s: mailboxes not in strictly ascending order", what)
			return nil
		}
	}
	return out
}

// CreateFanout creates a fan-out list with the authenticated device's
// allowance (MaxFanoutsPerDevice). The relay answers FanoutCreated.
type CreateFanout struct {
	Admin   CapabilityToken // changes or deletes the list
	Send    CapabilityToken // sends through the list
	Entries []FanoutEntry   // at most MaxFanoutEntriesPerFrame; more with UpdateFanout
}

func (*CreateFanout) Type() FrameType { return TypeCreateFanout }
func (f *CreateFanout) appendBody(b []byte) ([]byte, error) {
	b = append(b, f.Admin.b[:]...)
	b = append(b, f.Send.b[:]...)
	return appendEntries(b, f.Entries)
}
func (f *CreateFanout) parseBody(r *Reader) {
	r.Array(f.Admin.b[:], "admin capability")
	r.Array(f.Send.b[:], "send capability")
	f.Entries = parseEntries(r, "entries")
}

// UpdateFanout changes a list: with the admin capability, it replaces the
// send capability (NewSend non-nil), removes mailboxes and adds entries
// (an added mailbox already in the list gets the new capability), all in
// one durable change; or, with Delete, deletes the list. A mailbox may
// not be both added and removed in one frame.
type UpdateFanout struct {
	Fanout  FanoutID
	Admin   CapabilityToken
	NewSend *CapabilityToken
	Delete  bool
	Add     []FanoutEntry // at most MaxFanoutEntriesPerFrame
	Remove  []MailboxID   // at most MaxFanoutEntriesPerFrame
}

func (*UpdateFanout) Type() FrameType { return TypeUpdateFanout }
func (f *UpdateFanout) appendBody(b []byte) ([]byte, error) {
	if f.Delete && (f.NewSend != nil || len(f.Add) != 0 || len(f.Remove) != 0) {
		return nil, errorf(ErrMalformed, "a fan-out delete carries no other change")
	}
	if len(f.Remove) > MaxFanoutEntriesPerFrame {
		return nil, errorf(ErrTooLarge, "%d fan-out removals, limit %d per frame", len(f.Remove), MaxFanoutEntriesPerFrame)
	}
	b = append(b, f.Fanout[:]...)
	b = append(b, f.Admin.b[:]...)
	var flags byte
	if f.NewSend != nil {
		flags |= FanoutNewSend
	}
	if f.Delete {
		flags |= FanoutDelete
	}
	b = append(b, flags)
	if f.NewSend != nil {
		b = append(b, f.NewSend.b[:]...)
	}
	add, err := sortedEntries(f.Add)
	if err != nil {
		return nil, err
	}
	rm := slices.Clone(f.Remove)
	slices.SortFunc(rm, func(a, b MailboxID) int { return bytes.Compare(a[:], b[:]) })
	for i := 1; i < len(rm); i++ {
		if rm[i] == rm[i-1] {
			return nil, errorf(ErrMalformed, "mailbox removed twice in a fan-out frame")
		}
	}
	if overlap(add, rm) {
		return nil, errorf(ErrMalformed, "a mailbox both added and removed in a fan-out frame")
	}
	if b, err = appendEntries(b, add); err != nil {
		return nil, err
	}
	b = appendU16(b, uint16(len(rm)))
	for _, m := range rm {
		b = append(b, m[:]...)
	}
	return b, nil
}
func (f *UpdateFanout) parseBody(r *Reader) {
	r.Array(f.Fanout[:], "fan-out id")
	r.Array(f.Admin.b[:], "admin capability")
	flags := r.U8("flags")
	if r.Err() != nil {
		return
	}
	if flags&^(FanoutNewSend|FanoutDelete) != 0 {
		r.Failf("fan-out update flags 0x%02x: undefined bits", flags)
		return
	}
	f.Delete = flags&FanoutDelete != 0
	if flags&FanoutNewSend != 0 {
		var t CapabilityToken
		r.Array(t.b[:], "new send capability")
		f.NewSend = &t
	}
	f.Add = parseEntries(r, "added entries")
	n := int(r.U16("removal count"))
	if r.Err() != nil {
		return
	}
	if n > MaxFanoutEntriesPerFrame {
		r.SetErr(errorf(ErrTooLarge, "removals: %d mailboxes, limit %d per frame", n, MaxFanoutEntriesPerFrame))
		return
	}
	if r.Len() != n*16 {
		r.Failf("removals: %d bytes for %d mailboxes", r.Len(), n)
		return
	}
	if n > 0 {
		f.Remove = make([]MailboxID, n)
	}
	for i := range f.Remove {
		r.Array(f.Remove[i][:], "mailbox")
		if i > 0 && bytes.Compare(f.Remove[i-1][:], f.Remove[i][:]) >= 0 {
			r.Failf("removals: mailboxes not in strictly ascending order")
			return
		}
	}
	switch {
	case f.Delete && (f.NewSend != nil || len(f.Add) != 0 || len(f.Remove) != 0):
		r.Failf("a fan-out delete carries no other change")
	case overlap(f.Add, f.Remove):
		r.Failf("a mailbox both added and removed in a fan-out frame")
	}
}

// overlap reports whether a sorted entry list and a sorted mailbox list
// share a mailbox.
func overlap(add []FanoutEntry, rm []MailboxID) bool {
	i, j := 0, 0
	for i < len(add) && j < len(rm) {
		switch c := bytes.Compare(add[i].Mailbox[:], rm[j][:]); {
		case c == 0:
			return true
		case c < 0:
			i++
		default:
			j++
		}
	}
	return false
}

// SendFanout stores one envelope in every mailbox of a list. Like Send it
// needs only a capability (the list's send capability) and no
// authentication. The relay answers FanoutSent once every copy is durable.
type SendFanout struct {
	Fanout     FanoutID
	Capability CapabilityToken
	Envelope   []byte // the last field: the rest of the frame
}

func (*SendFanout) Type() FrameType { return TypeSendFanout }
func (f *SendFanout) appendBody(b []byte) ([]byte, error) {
	if err := CheckEnvelope(f.Envelope); err != nil {
		return nil, err
	}
	b = append(b, f.Fanout[:]...)
	b = append(b, f.Capability.b[:]...)
	return append(b, f.Envelope...), nil
}
func (f *SendFanout) parseBody(r *Reader) {
	r.Array(f.Fanout[:], "fan-out id")
	r.Array(f.Capability.b[:], "capability")
	f.Envelope = r.Rest()
}

// FanoutCreated answers CreateFanout.
type FanoutCreated struct{ Fanout FanoutID }

func (*FanoutCreated) Type() FrameType { return TypeFanoutCreated }
func (f *FanoutCreated) appendBody(b []byte) ([]byte, error) {
	return append(b, f.Fanout[:]...), nil
}
func (f *FanoutCreated) parseBody(r *Reader) { r.Array(f.Fanout[:], "fan-out id") }

// FanoutSent answers SendFanout once every stored copy is durable: how
// many copies were stored, and the entries that were refused, in
// ascending order of index.
type FanoutSent struct {
	Stored  uint16
	Refused []FanoutRefusal
}

func (*FanoutSent) Type() FrameType { return TypeFanoutSent }
func (f *FanoutSent) appendBody(b []byte) ([]byte, error) {
	if int(f.Stored)+len(f.Refused) > MaxFanoutEntries {
		return nil, errorf(ErrTooLarge, "%d stored and %d refused entries, limit %d", f.Stored, len(f.Refused), MaxFanoutEntries)
	}
	b = appendU16(b, f.Stored)
	b = appendU16(b, uint16(len(f.Refused)))
	for i, x := range f.Refused {
		if int(x.Index) >= MaxFanoutEntries || (i > 0 && x.Index <= f.Refused[i-1].Index) {
			return nil, errorf(ErrMalformed, "refused entries not in strictly ascending order below %d", MaxFanoutEntries)
		}
		b = appendU16(appendU16(b, x.Index), uint16(x.Code))
	}
	return b, nil
}
func (f *FanoutSent) parseBody(r *Reader) {
	f.Stored = r.U16("stored count")
	n := int(r.U16("refused count"))
	if r.Err() != nil {
		return
	}
	if int(f.Stored)+n > MaxFanoutEntries {
		r.SetErr(errorf(ErrTooLarge, "%d stored and %d refused entries, limit %d", f.Stored, n, MaxFanoutEntries))
		return
	}
	if r.Len() != n*4 {
		r.Failf("refused entries: %d bytes for %d entries", r.Len(), n)
		return
	}
	if n > 0 {
		f.Refused = make([]FanoutRefusal, n)
	}
	for i := range f.Refused {
		f.Refused[i].Index = r.U16("index")
		f.Refused[i].Code = Code(r.U16("code"))
		if int(f.Refused[i].Index) >= MaxFanoutEntries || (i > 0 && f.Refused[i].Index <= f.Refused[i-1].Index) {
			r.Failf("refused entries not in strictly ascending order below %d", MaxFanoutEntries)
			return
		}
	}
}
