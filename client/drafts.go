package client

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/postern/postern/client/internal/store"
)

// Drafts (protocol/SPEC.md section 9 "Inbox"): a message being written,
// saved as it is written (SaveDraft on every change is what an editor
// does) and kept in step across the person's devices (syncops.go). A
// draft names its recipient by identity, so that each device shows it
// under its own name for the person. Drafts carry no files.

// MaxDrafts is how many drafts a person may keep.
const MaxDrafts = 1000

var (
	// ErrNoDraft: no draft has this ID.
	ErrNoDraft = errors.New("client: no such draft")
	// ErrTooManyDrafts: the person keeps MaxDrafts drafts.
	ErrTooManyDrafts = errors.New("client: too many drafts (at most 1000)")
	// ErrDraftIncomplete: a draft is sent only with a recipient and a
	// text.
	ErrDraftIncomplete = errors.New("client: the draft has no recipient or no text")
)

// Draft is a message being written.
type Draft struct {
	// ID is the draft's ID (32 hex digits); "" in SaveDraft makes a new
	// draft.
	ID string
	// To is the contact it is to, "" if none was chosen yet (or if the
	// person is no longer a contact of this device).
	To      string
	Subject string
	Text    string
	// ReplyTo is the ID of the message it answers, "" if none.
	ReplyTo string
	Created time.Time
	Updated time.Time
}

// liveDrafts returns the drafts that are not deleted.
func (t *tx) liveDrafts() ([]*store.Draft, error) {
	ds, err := t.Drafts()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(ds, func(d *store.Draft) bool { return d.Deleted }), nil
}

// draftFromRecord is the public draft of d; names maps identity
// fingerprints to contact names.
func draftFromRecord(d *store.Draft, names map[string]string) Draft {
	return Draft{
		ID: hex.EncodeToString(d.ID), To: names[string(d.To)], Subject: d.Subject, Text: d.Text,
		ReplyTo: d.ReplyTo, Created: d.Created, Updated: d.Updated,
	}
}

// contactNames maps the identity fingerprint of each contact to its name.
func (t *tx) contactNames() (map[string]string, error) {
	ps, err := t.Persons()
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(ps))
	for _, p := range ps {
		if !p.Self {
			out[string(p.Identity)] = p.Name
		}
	}
	return out, nil
}

// Drafts returns the drafts, the most recently changed first.
func (c *Client) Drafts() ([]Draft, error) {
	var out []Draft
	err := c.st.view(func(t *tx) error {
		ds, err := t.liveDrafts()
		if err != nil {
			return err
		}
		names, err := t.contactNames()
		if err != nil {
			return err
		}
		for _, d := range ds {
			out = append(out, draftFromRecord(d, names))
		}
		return nil
	})
	slices.SortStableFunc(out, func(a, b Draft) int { return cmp.Or(b.Updated.Compare(a.Updated), cmp.Compare(a.ID, b.ID)) })
	return out, err
}

// Draft returns draft id (ErrNoDraft).
func (c *Client) Draft(id string) (Draft, error) {
	ds, err := c.Drafts()
	if err != nil {
		return Draft{}, err
	}
	for _, d := range ds {
		if d.ID == id {
			return d, nil
		}
	}
	return Draft{}, fmt.Errorf("%w: %q", ErrNoDraft, id)
}

// SaveDraft saves d, a new draft if d.ID is "", on this device and on the
// person's other devices, and returns it as saved. To must be a contact
// (ErrUnknownContact) or ""; the subject and text follow the limits of a
// message (ErrInvalidSubject, ErrTooLong, ErrInvalidText for text that is
// not UTF-8; an empty text is a draft too); ReplyTo must name a stored
// message (ErrNoMessage). Saving a draft that another device deleted
// brings it back.
func (c *Client) SaveDraft(ctx context.Context, d Draft) (Draft, error) {
	switch {
	case !validSubject(d.Subject):
		return Draft{}, ErrInvalidSubject
	case len(d.Text) > MaxTextSize:
		return Draft{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, len(d.Text), MaxTextSize)
	case !utf8.ValidString(d.Text):
		return Draft{}, ErrInvalidText
	}
	op := syncOp{Kind: syncDraftSave, Subject: d.Subject, Text: d.Text}
	if d.ID == "" {
		copy(op.ID[:], store.NewID())
	} else if id, err := hex.DecodeString(d.ID); err != nil || len(id) != store.RecordIDSize {
		return Draft{}, fmt.Errorf("%w: %q", ErrNoDraft, d.ID)
	} else {
		copy(op.ID[:], id)
	}
	if d.To != "" {
		r, err := c.lookupContact(d.To)
		if err != nil {
			return Draft{}, err
		}
		op.HasTo, op.Person = true, fpOf(r.Person.Identity)
	}
	if d.ReplyTo != "" {
		if !messageIDBytes(d.ReplyTo, op.ReplyTo[:]) {
			return Draft{}, fmt.Errorf("%w: %q", ErrNoMessage, d.ReplyTo)
		}
		op.HasReply = true
	}
	now := c.now()
	var saved Draft
	err := c.st.update(func(t *tx) error {
		if op.HasReply {
			m, err := t.MessageByID(d.ReplyTo)
			if err != nil {
				return err
			}
			if m == nil {
				return fmt.Errorf("%w: %q", ErrNoMessage, d.ReplyTo)
			}
		}
		old, err := t.Draft(op.ID[:])
		if err != nil {
			return err
		}
		prev := store.Stamp{}
		switch {
		case old != nil:
			prev = old.Stamp
		case d.ID != "":
			return fmt.Errorf("%w: %q", ErrNoDraft, d.ID)
		default:
			live, err := t.liveDrafts()
			if err != nil {
				return err
			}
			if len(live) >= MaxDrafts {
				return ErrTooManyDrafts
			}
		}
		op.MS = stampMS(now, prev)
		if err := t.applySyncOp(&op, c.devID, now, c.log.Warn); err != nil {
			return err
		}
		rec, err := t.Draft(op.ID[:])
		if err != nil {
			return err
		}
		if rec == nil {
			return ErrTooManyDrafts // dropped at the record limit (tombstones included)
		}
		names, err := t.contactNames()
		saved = draftFromRecord(rec, names)
		return err
	})
	if err != nil {
		return Draft{}, err
	}
	c.syncToSiblings(ctx, []syncOp{op})
	return saved, nil
}

// DeleteDraft deletes draft id, on this device and on the person's other
// devices (ErrNoDraft).
func (c *Client) DeleteDraft(ctx context.Context, id string) error {
	op := syncOp{Kind: syncDraftDelete}
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != store.RecordIDSize {
		return fmt.Errorf("%w: %q", ErrNoDraft, id)
	}
	copy(op.ID[:], b)
	now := c.now()
	err = c.st.update(func(t *tx) error {
		d, err := t.Draft(b)
		if err != nil {
			return err
		}
		if d == nil || d.Deleted {
			return fmt.Errorf("%w: %q", ErrNoDraft, id)
		}
		op.MS = stampMS(now, d.Stamp)
		return t.applySyncOp(&op, c.devID, now, c.log.Warn)
	})
	if err != nil {
		return err
	}
	c.syncToSiblings(ctx, []syncOp{op})
	return nil
}

// SendDraft sends draft id as SendWith sends a message (with its subject
// and reply-to) and then deletes the draft. A draft without a recipient or
// text is ErrDraftIncomplete. When the message is queued (ErrQueued) the
// draft is deleted too: the message is stored and will be sent. On any
// other error the draft is kept.
func (c *Client) SendDraft(ctx context.Context, id string) (Message, error) {
	d, err := c.Draft(id)
	if err != nil {
		return Message{}, err
	}
	if d.To == "" || d.Text == "" {
		return Message{}, ErrDraftIncomplete
	}
	m, err := c.SendWith(ctx, d.To, d.Text, &SendOptions{Subject: d.Subject, ReplyTo: d.ReplyTo})
	if err != nil && !errors.Is(err, ErrQueued) {
		return m, err
	}
	if derr := c.DeleteDraft(ctx, id); derr != nil && !errors.Is(derr, ErrNoDraft) {
		c.log.Warn("a draft was sent but could not be deleted", "err", derr)
	}
	return m, err
}
