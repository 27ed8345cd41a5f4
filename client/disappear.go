package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Disappearing messages (protocol/SPEC.md section 9 "Disappearing
// messages"). Each direct conversation has a timer, off by default. While
// it is set, every message sent in the conversation carries it (content
// 0x18, kind 2) and is deleted on every device that holds it, with its
// attachments, once the timer has run from the time it was sent; the
// device that uploaded its files deletes their blobs on the relay. A
// change of the timer (content 0x18, kind 1) goes to the contact's devices
// and to this person's other devices, stamped like the inbox sync so that
// the latest change wins everywhere, whatever the order of arrival.
const (
	// MinDisappearing and MaxDisappearing bound a timer that is set.
	MinDisappearing = 5 * time.Second
	MaxDisappearing = 28 * 24 * time.Hour

	// contentDisappear carries a timer change (kind disappearTimer) or a
	// message with its timer (kind disappearMessage).
	contentDisappear byte = 0x18
	disappearTimer   byte = 1
	disappearMessage byte = 2

	// expirySweepEvery is the longest the expiry loop sleeps: it wakes
	// sooner for a message due sooner, and at once for a new one.
	expirySweepEvery = time.Minute
	// blobDeleteKeep bounds how long a blob deletion the relay could not
	// take is retried: past the relay's retention (section 12.5, 14 days
	// by default) the blob is gone anyway.
	blobDeleteKeep = 15 * 24 * time.Hour
	// maxPendingBlobDeletes bounds the deletions kept for retry.
	maxPendingBlobDeletes = 4096
	// maxTimerSkew is how far ahead of the receiver's clock a timer
	// change may be stamped.
	maxTimerSkew = 24 * time.Hour
)

// ErrDisappearing: a disappearing-message timer outside MinDisappearing ..
// MaxDisappearing (0 turns it off), or not a whole number of seconds.
var ErrDisappearing = errors.New("client: invalid disappearing-message timer")

// validTimer: a timer that is set, in seconds, within the limits.
func validTimer(s uint32) bool {
	return s >= uint32(MinDisappearing/time.Second) && s <= uint32(MaxDisappearing/time.Second)
}

// ---- encoding ----

// appendTimedPrefix writes what follows the common header of a message
// with a timer: u8(2) || u32(seconds) || u8(message type); the message
// type's own body follows.
func appendTimedPrefix(b []byte, c *content) []byte {
	b = append(b, disappearMessage)
	b = binary.BigEndian.AppendUint32(b, c.Timer)
	return append(b, c.Type)
}

// appendTimerBody encodes a timer change: u8(1) || u32(seconds) ||
// u64(stamp ms) || peer identity [32].
func appendTimerBody(b []byte, c *content) ([]byte, error) {
	if c.Timer != 0 && !validTimer(c.Timer) {
		return nil, ErrDisappearing
	}
	b = append(b, disappearTimer)
	b = binary.BigEndian.AppendUint32(b, c.Timer)
	b = binary.BigEndian.AppendUint64(b, c.TimerMS)
	return append(b, c.TimerPeer[:]...), nil
}

// parseDisappearPrefix reads the body of a 0x18 content after its common
// header. For a timer change it reads it all (done); for a message it
// reads the timer and the message type, sets c.Type to it, and the
// caller reads that type's body. ok is false for anything else.
func parseDisappearPrefix(r *protocol.Reader, c *content) (done, ok bool) {
	switch r.U8("disappearing kind") {
	case disappearTimer:
		c.Timer = r.U32("timer")
		c.TimerMS = r.U64("timer stamp")
		r.Array(c.TimerPeer[:], "timer peer")
		return true, r.Err() == nil && (c.Timer == 0 || validTimer(c.Timer)) && c.TimerMS != 0
	case disappearMessage:
		c.Timer = r.U32("timer")
		c.Type = r.U8("message type")
		return false, r.Err() == nil && validTimer(c.Timer) && isMessageContent(c.Type)
	}
	return false, false
}

// expiryOf is when a message content with a timer expires: its timer
// after it was sent, by the sender's clock but never later than the
// timer after now (its arrival), so that a sender's clock ahead cannot
// keep it longer. Zero for a message without a timer.
func expiryOf(ct *content, now time.Time) time.Time {
	if ct.Timer == 0 {
		return time.Time{}
	}
	sent := time.UnixMilli(int64(min(ct.SentMS, 1<<62)))
	if sent.After(now) {
		sent = now
	}
	return sent.Add(time.Duration(ct.Timer) * time.Second).UTC()
}

// expiredOnArrival reports whether a received message's time was up
// before it arrived (its device was offline longer than the timer): it
// is not stored, shown or announced at all.
func expiredOnArrival(m *Message, now time.Time) bool {
	return !m.Expires.IsZero() && !m.Expires.After(now)
}

// ---- the setting ----

// SetDisappearing sets the disappearing-message timer of the conversation
// with contact to d (0 turns it off): messages sent from now on, by
// either person from any of their devices, are deleted d after they were
// sent, on every device of both people. d must be 0 or a whole number of
// seconds from MinDisappearing to MaxDisappearing (ErrDisappearing). The
// change is stored here, then sent to the contact's devices and to this
// person's other devices; a relay that cannot be reached gets it from the
// outbox later (the error then matches ErrQueued, and the change stands).
// Messages already sent keep the timer they were sent with.
func (c *Client) SetDisappearing(ctx context.Context, contact string, d time.Duration) error {
	if d != 0 && (d < MinDisappearing || d > MaxDisappearing || d%time.Second != 0) {
		return fmt.Errorf("%w: %v (from %v to %v, or off)", ErrDisappearing, d, MinDisappearing, MaxDisappearing)
	}
	r, err := c.lookupContact(contact)
	if err != nil {
		return err
	}
	secs := uint32(d / time.Second)
	var devs, sibs []*contactRecord
	var ms uint64
	err = c.st.update(func(t *tx) error {
		conv, err := t.DirectConversation(r.Person.ID, c.now().UTC())
		if err != nil {
			return err
		}
		ms = stampMS(c.now(), conv.DisappearStamp)
		conv.Disappear, conv.DisappearStamp = secs, store.Stamp{MS: ms, Device: bytes.Clone(c.devID[:])}
		if err := t.PutConversation(conv); err != nil {
			return err
		}
		if devs, err = c.targets(t, r.Person); err != nil {
			return err
		}
		self, err := t.self()
		if err != nil {
			return err
		}
		sibs, err = c.targets(t, self)
		return err
	})
	if err != nil {
		return err
	}
	c.contactChanged(r.Person.Name, ContactDisappearing)
	send := func(to []*contactRecord, peer keys.Fingerprint) error {
		var first error
		for _, d := range to {
			ct := &content{Type: contentDisappear, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()), Timer: secs, TimerMS: ms, TimerPeer: peer}
			copy(ct.MsgID[:], randomID(msgIDSize))
			if err := c.sendSession(ctx, d, ct); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	// The peer is the person the conversation is with, seen from this
	// side: the contact, who checks that it is itself; siblings look it
	// up among their contacts.
	peer := fpOf(r.Person.Identity)
	errContact := send(devs, peer)
	if err := send(sibs, peer); err != nil && !errors.Is(err, ErrQueued) {
		c.log.Warn("could not send a disappearing-message timer to another device of this person", "err", err)
	}
	return errContact
}

// Disappearing returns the disappearing-message timer of the conversation
// with contact: 0 when it is off.
func (c *Client) Disappearing(contact string) (time.Duration, error) {
	r, err := c.lookupContact(contact)
	if err != nil {
		return 0, err
	}
	var secs uint32
	err = c.st.view(func(t *tx) error {
		conv, err := t.Conversation(t.DirectConversationID(r.Person.ID))
		if err == nil && conv != nil {
			secs = conv.Disappear
		}
		return err
	})
	return time.Duration(secs) * time.Second, err
}

// timerOf is the timer, in seconds, that a message to person p is sent
// with now (0: none).
func (c *Client) timerOf(p *store.Person) (uint32, error) {
	var secs uint32
	err := c.st.view(func(t *tx) error {
		conv, err := t.Conversation(t.DirectConversationID(p.ID))
		if err == nil && conv != nil {
			secs = conv.Disappear
		}
		return err
	})
	return secs, err
}

// setTimer gives message content ct the timer of the conversation with
// r's person, if one is set.
func (c *Client) setTimer(r *contactRecord, ct *content) error {
	secs, err := c.timerOf(r.Person)
	ct.Timer = secs
	return err
}

// keepTokens keeps the upload tokens of the blobs this device made for a
// message, so that they can be deleted at its expiry or when it is
// deleted for everyone (recall.go).
func keepTokens(refs []attachmentRef, recs []attachmentRecord) {
	for i := range refs {
		if refs[i].created {
			recs[i].Token = bytes.Clone(refs[i].token[:])
		}
	}
}

// receiveTimer applies a timer change from device from. From a contact,
// it must name this person as its peer and changes the conversation with
// the contact; from another device of this person, it changes the
// conversation with the person it names, if this device knows them. It
// takes effect only if its stamp (ms, sender device ID) is later than the
// conversation's: a change delivered late, or replayed, changes nothing.
func (c *Client) receiveTimer(t *tx, from *contactRecord, ct *content, now time.Time, res *received) (error, error) {
	p := from.Person
	if p.Self {
		ps, err := t.Persons()
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(ps, func(q *store.Person) bool { return bytes.Equal(q.Identity, ct.TimerPeer[:]) && !q.Self })
		if i < 0 {
			c.log.Info("a sibling's disappearing-message timer for a person this device does not know was ignored")
			return nil, nil
		}
		p = ps[i]
	} else if ct.TimerPeer != c.idFP {
		return ErrDecrypt, nil
	}
	if ct.TimerMS > uint64(now.Add(maxTimerSkew).UnixMilli()) {
		// A stamp far ahead would win over every later change: whoever
		// sent it could freeze the timer. Honest devices stamp with their
		// clock, or just after the change they replace.
		c.log.Warn("ignored a disappearing-message timer stamped far in the future")
		return nil, nil
	}
	conv, err := t.DirectConversation(p.ID, now)
	if err != nil {
		return nil, err
	}
	stamp := store.Stamp{MS: ct.TimerMS, Device: bytes.Clone(ct.Sender[:])}
	if !stamp.After(conv.DisappearStamp) {
		return nil, nil
	}
	conv.Disappear, conv.DisappearStamp = ct.Timer, stamp
	if err := t.PutConversation(conv); err != nil {
		return nil, err
	}
	res.events = append(res.events, Event{Kind: EventContact, Contact: p.Name, Change: ContactDisappearing})
	return nil, nil
}

// ---- expiry ----

// keyExpiry is the meta record of the expiry sweep.
var keyExpiry = []byte("disappear")

// expiryState is the store's bookkeeping of disappearing messages: when
// the next one is due (zero: none is stored), and the blob deletions the
// relay has not taken yet.
type expiryState struct {
	V     int            `json:"v"`
	Next  time.Time      `json:"next,omitzero"`
	Blobs []blobDeletion `json:"blobs,omitempty"`
}

// blobDeletion is a blob this device uploaded for a message that expired.
type blobDeletion struct {
	Blob  []byte    `json:"blob"`
	Token []byte    `json:"token"`
	Since time.Time `json:"since"`
}

func (t *tx) expiryState() (*expiryState, error) {
	var s expiryState
	if _, err := t.Get(bucketMeta, t.Index(bucketMeta, keyExpiry), &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func (t *tx) putExpiryState(s *expiryState) error {
	s.V = 1
	return t.Put(bucketMeta, t.Index(bucketMeta, keyExpiry), s)
}

// noteExpiry records that a message expiring at at was stored.
func (t *tx) noteExpiry(at time.Time) error {
	s, err := t.expiryState()
	if err != nil {
		return err
	}
	if !s.Next.IsZero() && !at.Before(s.Next) {
		return nil
	}
	s.Next = at
	return t.putExpiryState(s)
}

// expire deletes every stored message whose expiry is not after now:
// the message, its attachments' keys, its search index entry, what of it
// waits in the outbox; the blobs this device uploaded for it are queued
// for deletion on the relay (deleteExpiredBlobs). It reads only the
// bookkeeping record when nothing is due, and walks the messages once
// when something is. It emits EventExpired for each message deleted.
func (c *Client) expire() (int, error) {
	now := c.now().UTC()
	// Most sweeps find nothing due: a read transaction says so without
	// the write lock and commit of an update.
	if next := c.nextExpiry(); next.IsZero() || next.After(now) {
		return 0, nil
	}
	var gone []Message
	err := c.st.update(func(t *tx) error {
		gone = nil
		s, err := t.expiryState()
		if err != nil {
			return err
		}
		if s.Next.IsZero() || s.Next.After(now) {
			return nil
		}
		var due []*messageRecord
		next := time.Time{}
		err = t.Messages(func(m *messageRecord) error {
			switch {
			case m.Expires.IsZero():
			case !m.Expires.After(now):
				due = append(due, m)
			case next.IsZero() || m.Expires.Before(next):
				next = m.Expires
			}
			return nil
		})
		if err != nil {
			return err
		}
		ids := make(map[string]bool, len(due))
		for _, m := range due {
			if err := t.DeleteMessage(m.ID); err != nil {
				return err
			}
			ids[m.ID] = true
			for _, a := range m.Attachments {
				if len(a.Token) == len(protocol.BlobToken{}) && len(a.Blob) == len(protocol.BlobID{}) && len(s.Blobs) < maxPendingBlobDeletes {
					s.Blobs = append(s.Blobs, blobDeletion{Blob: a.Blob, Token: a.Token, Since: now})
				}
			}
			gone = append(gone, c.messageFromRecord(m))
		}
		if len(ids) > 0 {
			// An envelope of an expired message not sent yet is not sent.
			items, err := t.Outbox()
			if err != nil {
				return err
			}
			for _, it := range items {
				if ids[it.Message] {
					if err := t.DeleteOutbox(it.Seq); err != nil {
						return err
					}
				}
			}
		}
		s.Next = next
		return t.putExpiryState(s)
	})
	if err != nil {
		return 0, err
	}
	evs := make([]Event, len(gone))
	for i, m := range gone {
		evs[i] = Event{Kind: EventExpired, Message: m}
	}
	c.emit(evs...)
	if len(gone) > 0 {
		c.log.Info("deleted expired disappearing messages", "messages", len(gone))
	}
	return len(gone), nil
}

// deleteExpiredBlobs asks the relay to delete the blobs of expired
// messages that this device uploaded. A blob the relay no longer has is
// done; one it could not be asked about now is tried again later, until
// blobDeleteKeep.
func (c *Client) deleteExpiredBlobs(ctx context.Context) {
	var todo []blobDeletion
	if err := c.st.view(func(t *tx) error {
		s, err := t.expiryState()
		if err == nil {
			todo = s.Blobs
		}
		return err
	}); err != nil || len(todo) == 0 {
		return
	}
	done := map[string]bool{}
	for _, b := range todo {
		var id protocol.BlobID
		var tok protocol.BlobToken
		copy(id[:], b.Blob)
		copy(tok[:], b.Token)
		err := c.deleteBlob(ctx, id, tok)
		switch {
		case err == nil, protocol.IsCode(err, protocol.CodeUnknownBlob):
			done[string(b.Blob)] = true
			c.log.Debug("deleted the blob of an expired message", "blob", id.Short())
		case c.now().Sub(b.Since) > blobDeleteKeep:
			done[string(b.Blob)] = true
		default:
			c.log.Debug("could not delete the blob of an expired message; trying again later", "blob", id.Short(), "err", err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if len(done) == 0 {
		return
	}
	if err := c.st.update(func(t *tx) error {
		s, err := t.expiryState()
		if err != nil {
			return err
		}
		s.Blobs = slices.DeleteFunc(s.Blobs, func(b blobDeletion) bool { return done[string(b.Blob)] })
		return t.putExpiryState(s)
	}); err != nil {
		c.log.Warn("could not record the deletion of expired messages' blobs", "err", err)
	}
}

// expireNow deletes what is due and the blobs of what expired (Sync and
// the expiry loop).
func (c *Client) expireNow(ctx context.Context) {
	if _, err := c.expire(); err != nil {
		c.log.Warn("could not delete expired disappearing messages", "err", err)
	}
	c.deleteExpiredBlobs(ctx)
}

// nextExpiry is when the next stored message expires (zero: none). A
// store that cannot be read says "now", so that the sweep runs and
// reports the error.
func (c *Client) nextExpiry() time.Time {
	var next time.Time
	err := c.st.view(func(t *tx) error {
		s, err := t.expiryState()
		if err == nil {
			next = s.Next
		}
		return err
	})
	if err != nil {
		return c.now()
	}
	return next
}

// kickExpiry wakes the expiry loop (a message with a timer was stored).
func (c *Client) kickExpiry() {
	select {
	case c.expiryKick <- struct{}{}:
	default:
	}
}

// goExpiryLoop starts, once, the loop that deletes messages as they
// expire while the Client runs.
func (c *Client) goExpiryLoop() {
	c.expiryLoop.Do(func() { c.goBackground(c.runExpiry) })
}

func (c *Client) runExpiry() {
	for {
		wait := expirySweepEvery
		if next := c.nextExpiry(); !next.IsZero() {
			// The clock may be a test's: wait by its reckoning, at least
			// a little, at most expirySweepEvery.
			wait = min(max(next.Sub(c.now()), 10*time.Millisecond), expirySweepEvery)
		}
		tm := time.NewTimer(wait)
		select {
		case <-c.ctx.Done():
			tm.Stop()
			return
		case <-c.expiryKick:
			tm.Stop()
		case <-tm.C:
		}
		ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
		c.expireNow(ctx)
		cancel()
	}
}
