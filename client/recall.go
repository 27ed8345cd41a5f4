package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/protocol"
)

// Deleting a message for everyone (protocol/SPEC.md section 9 "Recall").
// The person who sent a message may delete it on every device of both
// people: the sending device turns its copy into a tombstone at once and
// sends a recall content (0x19) naming the message to every device of the
// recipient and to its own siblings. A device that receives it keeps the
// message's place in the conversation with who deleted it and when, and
// nothing of its text, subject or files: the search entry goes, the
// attachment keys go, and the device that uploaded the files deletes them
// on the relay. Only the sender's person can recall: a recall from anyone
// else changes nothing. A recall that arrives before its message (from a
// sibling of the sender, on another route) is kept, bounded, and applied
// when the message arrives.

// contentRecall: u8(n) || n × message ID [replyIDSize].
const contentRecall byte = 0x19

// MaxRecallIDs is the most messages one recall content names.
const MaxRecallIDs = 64

const (
	// maxPendingRecalls bounds the recalls kept for messages not arrived
	// yet; the oldest goes first.
	maxPendingRecalls = 1000
	// pendingRecallAge is how long such a recall is kept: its message
	// cannot arrive later than the relay keeps an envelope.
	pendingRecallAge = 30 * 24 * time.Hour
)

// ErrNotSender: only the person who sent a message can delete it for
// everyone (an incoming message or a notice was named). Nothing changed.
var ErrNotSender = errors.New("client: only the person who sent a message can delete it for everyone")

func appendRecallBody(b []byte, c *content) ([]byte, error) {
	if len(c.Recalls) == 0 || len(c.Recalls) > MaxRecallIDs {
		return nil, ErrDecrypt
	}
	b = append(b, byte(len(c.Recalls)))
	for _, id := range c.Recalls {
		b = append(b, id[:]...)
	}
	return b, nil
}

func parseRecallBody(r *protocol.Reader, c *content) bool {
	n := int(r.U8("recall count"))
	if r.Err() != nil || n == 0 || n > MaxRecallIDs {
		return false
	}
	c.Recalls = make([][replyIDSize]byte, n)
	for i := range c.Recalls {
		r.Array(c.Recalls[i][:], "recalled message id")
	}
	return r.Err() == nil
}

// Recall deletes this person's message id for everyone: on this device at
// once (it stays in the conversation as "deleted", with no text, subject or
// files; Message.Recalled says when), then on every device of its
// recipient and of this person, which it tells with a recall. What of the
// message still waits in the outbox is not sent; the files this device
// uploaded are deleted on the relay. An incoming message or a notice gives
// ErrNotSender, an unknown ID ErrNoMessage; a message already deleted is
// told again (a device that missed the first recall learns it). It returns
// the message as stored now; an error after the local deletion (a device
// that could not be told) comes with it, and the outbox retries what is
// queued.
func (c *Client) Recall(ctx context.Context, id string) (Message, error) {
	now := c.now().UTC()
	var (
		m    Message
		devs []*contactRecord
		mid  [replyIDSize]byte
	)
	if b, err := hex.DecodeString(id); err != nil || len(b) != replyIDSize {
		return Message{}, fmt.Errorf("%w: %q", ErrNoMessage, id)
	} else {
		copy(mid[:], b)
	}
	err := c.st.update(func(t *tx) error {
		r, err := t.MessageByID(id)
		if err != nil {
			return err
		}
		if r == nil {
			return fmt.Errorf("%w: %q", ErrNoMessage, id)
		}
		if !r.Outgoing || r.Notice {
			return ErrNotSender
		}
		conv, err := t.Conversation(r.Conversation)
		if err != nil {
			return err
		}
		if conv == nil || conv.Type != store.Direct {
			return fmt.Errorf("%w: %q", ErrNoMessage, id)
		}
		p, err := t.Person(conv.Person)
		if err != nil {
			return err
		}
		if p != nil {
			if devs, err = c.targets(t, p); err != nil {
				return err
			}
		}
		self, err := t.self()
		if err != nil {
			return err
		}
		sibs, err := c.targets(t, self)
		if err != nil {
			return err
		}
		devs = append(devs, sibs...)
		if r.Recalled.IsZero() {
			if err := t.recallMessage(r, Me, now); err != nil {
				return err
			}
		}
		stored, err := t.MessageByID(id)
		if err != nil || stored == nil {
			return cmpErr(err, ErrNoMessage)
		}
		m, err = c.publicMessage(t, stored)
		return err
	})
	if err != nil {
		return Message{}, err
	}
	c.emit(Event{Kind: EventRecalled, Message: m})
	c.kickExpiry() // the blobs' deletion on the relay
	var errs []error
	for _, d := range devs {
		ct := &content{Type: contentRecall, Sender: c.devID, SentMS: uint64(now.UnixMilli()), Recalls: [][replyIDSize]byte{mid}}
		copy(ct.MsgID[:], randomID(msgIDSize))
		if err := c.sendSession(ctx, d, ct); err != nil && !errors.Is(err, ErrQueued) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		c.log.Info("could not tell every device of a deleted message", "devices", len(errs))
		return m, fmt.Errorf("client: the message is deleted here, but %d device(s) could not be told: %w", len(errs), errors.Join(errs...))
	}
	return m, nil
}

// cmpErr is err, or fallback when err is nil.
func cmpErr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

// recallMessage turns stored message r into a tombstone deleted by by
// ("me" or a contact's name) at at, in transaction t: no text, subject or
// attachment keys, out of the search index and the outbox, read; the blobs
// this device uploaded for it are queued for deletion on the relay (the
// expiry loop's queue, disappear.go).
func (t *tx) recallMessage(r *messageRecord, by string, at time.Time) error {
	s, err := t.expiryState()
	if err != nil {
		return err
	}
	for _, a := range r.Attachments {
		if len(a.Token) == len(protocol.BlobToken{}) && len(a.Blob) == len(protocol.BlobID{}) && len(s.Blobs) < maxPendingBlobDeletes {
			s.Blobs = append(s.Blobs, blobDeletion{Blob: a.Blob, Token: a.Token, Since: at})
		}
	}
	if len(s.Blobs) > 0 {
		if err := t.putExpiryState(s); err != nil {
			return err
		}
	}
	if _, err := t.UpdateMessage(r.ID, func(m *messageRecord) {
		m.Text, m.Subject, m.Attachments = "", "", nil
		m.Recalled, m.RecalledBy = at, by
		if !m.Outgoing && !m.Read {
			m.Read, m.ReadAt = true, at
		}
	}); err != nil {
		return err
	}
	if t.ch != nil {
		t.ch.deleted = append(t.ch.deleted, r.ID)
	}
	if r.Outgoing {
		items, err := t.Outbox()
		if err != nil {
			return err
		}
		for _, it := range items {
			if it.Message == r.ID {
				if err := t.DeleteOutbox(it.Seq); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// receiveRecall applies a recall from device from, inside the receive
// transaction: each message it names is deleted if from's person sent it
// (an incoming message from that person, or, from a sibling, an outgoing
// one of this person); a message not stored yet is remembered for when it
// arrives; anything else is ignored.
func (c *Client) receiveRecall(t *tx, from *contactRecord, ct *content, now time.Time, res *received) error {
	by := from.Person.Name
	if from.Person.Self {
		by = Me
	}
	for _, mid := range ct.Recalls {
		id := hex.EncodeToString(mid[:])
		r, err := t.MessageByID(id)
		if err != nil {
			return err
		}
		if r == nil {
			if err := t.pendRecall(id, from.Person.ID, by, now); err != nil {
				return err
			}
			continue
		}
		ok, err := t.sentBy(r, from.Person)
		if err != nil {
			return err
		}
		if !ok || !r.Recalled.IsZero() {
			continue
		}
		at := receiptTime(ct.SentMS, r.Time, now)
		if err := t.recallMessage(r, by, at); err != nil {
			return err
		}
		stored, err := t.MessageByID(id)
		if err != nil {
			return err
		}
		if stored != nil {
			m, err := c.publicMessage(t, stored)
			if err != nil {
				return err
			}
			res.events = append(res.events, Event{Kind: EventRecalled, Message: m})
		}
	}
	return nil
}

// sentBy reports whether stored message r was sent by person p: an
// incoming message from one of p's devices, or an outgoing one when p is
// this person.
func (t *tx) sentBy(r *messageRecord, p *store.Person) (bool, error) {
	if r.Notice {
		return false, nil
	}
	if p.Self {
		return r.Outgoing, nil
	}
	if r.Outgoing || len(r.Sender) == 0 {
		return false, nil
	}
	d, err := t.Device(r.Sender)
	if err != nil || d == nil {
		return false, err
	}
	return bytes.Equal(d.Person, p.ID), nil
}

// ---- recalls that arrive before their message ----

var keyPendingRecalls = []byte("pending-recalls")

type pendingRecall struct {
	ID     string    `json:"id"`
	Person []byte    `json:"person"` // who recalled: a person record ID
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

type pendingRecalls struct {
	V     int             `json:"v"`
	Items []pendingRecall `json:"items,omitempty"`
}

func (t *tx) pendingRecalls() (*pendingRecalls, error) {
	var p pendingRecalls
	_, err := t.Get(bucketMeta, t.Index(bucketMeta, keyPendingRecalls), &p)
	return &p, err
}

func (t *tx) putPendingRecalls(p *pendingRecalls) error {
	p.V = 1
	return t.Put(bucketMeta, t.Index(bucketMeta, keyPendingRecalls), p)
}

// pendRecall remembers a recall of message id, not stored yet, by person.
func (t *tx) pendRecall(id string, person []byte, by string, now time.Time) error {
	p, err := t.pendingRecalls()
	if err != nil {
		return err
	}
	p.Items = slices.DeleteFunc(p.Items, func(r pendingRecall) bool { return now.Sub(r.At) > pendingRecallAge || r.ID == id })
	if len(p.Items) >= maxPendingRecalls {
		p.Items = p.Items[len(p.Items)-maxPendingRecalls+1:]
	}
	p.Items = append(p.Items, pendingRecall{ID: id, Person: bytes.Clone(person), By: by, At: now})
	return t.putPendingRecalls(p)
}

// applyPendingRecall deletes message r, just stored, if a recall of it by
// its sender came first. It reports whether it did.
func (t *tx) applyPendingRecall(r *messageRecord) (bool, error) {
	p, err := t.pendingRecalls()
	if err != nil || len(p.Items) == 0 {
		return false, err
	}
	i := slices.IndexFunc(p.Items, func(x pendingRecall) bool { return x.ID == r.ID })
	if i < 0 {
		return false, nil
	}
	pr := p.Items[i]
	person, err := t.Person(pr.Person)
	if err != nil || person == nil {
		return false, err
	}
	ok, err := t.sentBy(r, person)
	if err != nil || !ok {
		return false, err
	}
	p.Items = slices.Delete(p.Items, i, i+1)
	if err := t.putPendingRecalls(p); err != nil {
		return false, err
	}
	return true, t.recallMessage(r, pr.By, pr.At)
}
