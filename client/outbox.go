package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/protocol"
)

// The outbox (protocol/SPEC.md section 9 "Outbox"). Every session envelope
// is put in the local store's outbox in the transaction that commits the
// session state it was sealed with (and, for a message, stores the message
// as outgoing and queued); it is deleted when the relay answers Sent. A
// recipient relay that cannot be reached leaves it there: Send returns an
// error matching ErrQueued, and the next Sync, the receive loop (at
// connect and then with backoff) or Send sends it, in order, also from a
// new Client on the same home. A refusal removes it with the reason
// recorded on the message; so does its expiry. A team's queue receipts
// wait here too, as group entries (queuereceipts.go).
const (
	// MaxOutboxEntries and MaxOutboxBytes bound what waits in one home's
	// outbox; a send beyond them fails with ErrOutboxFull, nothing sealed.
	MaxOutboxEntries = 1000
	MaxOutboxBytes   = 64 << 20
	// OutboxExpiry is how long an envelope may wait; after that it is
	// given up and its message says so.
	OutboxExpiry = 7 * 24 * time.Hour

	outboxRetryMin   = 5 * time.Second
	outboxRetryMax   = 5 * time.Minute
	outboxRetryLimit = 2 * time.Minute // bounds one background flush
)

var (
	// ErrQueued: the recipient's relay could not be reached; the message
	// is stored, marked queued (Message.Queued), and will be sent when the
	// relay is back. Not a failure: nothing is lost.
	ErrQueued = errors.New("client: queued")
	// ErrOutboxFull: the outbox holds MaxOutboxEntries envelopes or
	// MaxOutboxBytes; nothing was sent or stored.
	ErrOutboxFull = errors.New("client: the outbox is full: too many messages wait for relays that cannot be reached; nothing was sent")
)

// queuedError is ErrQueued naming the relay's host.
type queuedError struct {
	host  string
	cause error
}

func (e *queuedError) Error() string {
	return "queued: " + e.host + " is unreachable; it will be sent when it is back"
}
func (e *queuedError) Unwrap() []error { return []error{ErrQueued, e.cause} }

// relayHost is the host[:port] of a relay URL, for messages.
func relayHost(relay string) string {
	if u, err := url.Parse(relay); err == nil && u.Host != "" {
		return u.Host
	}
	return relay
}

// outboxSpec is what a send puts in the outbox with its envelope: the
// message to store (nil for a control content, or when another device's
// envelope stored it: then msgID names it), and after the commit the
// entry's sequence number.
type outboxSpec struct {
	msg   *Message
	msgID string
	atts  []attachmentRecord
	seq   uint64
}

// enqueue puts env for r in the outbox inside t (the transaction that
// stored the session state env was sealed with) and stores ob's message,
// queued.
func (c *Client) enqueue(t *tx, r *contactRecord, env []byte, ob *outboxSpec) error {
	if err := outboxRoom(t, len(env)); err != nil {
		return err
	}
	relay := r.Relay
	if relay == "" {
		relay = c.relay
	}
	// A team's reply route while this device holds one (teamroutes.go).
	mbx, capBytes := sendRouteOf(r)
	e := &store.OutboxEntry{
		Device: r.ID, Relay: relay, Mailbox: mbx, Capability: capBytes,
		Envelope: env, Created: c.now().UTC(), Message: ob.msgID,
		ReplyRoute: !bytes.Equal(mbx, r.SendMbx),
	}
	if ob.msg != nil {
		ob.msg.Queued = true
		if _, err := storeMessageRecord(t, r, ob.msg, ob.atts); err != nil {
			return err
		}
		e.Message = ob.msg.ID
	}
	var err error
	ob.seq, err = t.AddOutbox(e)
	return err
}

// outboxRoom returns ErrOutboxFull unless the outbox has room for one
// more envelope of n bytes.
func outboxRoom(t *tx, n int) error {
	items, err := t.Outbox()
	if err != nil {
		return err
	}
	size := n
	for _, it := range items {
		size += len(it.Envelope)
	}
	if len(items) >= MaxOutboxEntries || size > MaxOutboxBytes {
		return ErrOutboxFull
	}
	return nil
}

// deliverOutbox sends what waits in the outbox, ob's entry among them, and
// reports what became of ob's: nil (sent), an error matching ErrQueued
// (still waiting), or why it was refused (ob's message, never sent, is
// deleted again).
func (c *Client) deliverOutbox(ctx context.Context, ob *outboxSpec) error {
	err := c.flushOutbox(ctx, ob.seq)
	switch {
	case err == nil:
		if ob.msg != nil {
			ob.msg.Queued = false
		}
	case errors.Is(err, ErrQueued):
		c.kickOutbox()
	}
	return err
}

// flushOutbox sends the queued envelopes in order and returns the outcome
// of entry own (0: none); a refused own entry's message is deleted.
func (c *Client) flushOutbox(ctx context.Context, own uint64) error {
	res := c.flushOutboxSet(ctx, map[uint64]bool{own: own != 0}, true)
	return res[own]
}

// flushOutboxSet sends the queued envelopes in order and returns the
// outcome of each entry in own. After a relay could not be reached, later
// entries for it wait for the next flush, so that they keep their order;
// entries for other relays go on. deleteRefused: the message of a refused
// own entry is deleted (it was never sent); otherwise the caller decides.
func (c *Client) flushOutboxSet(ctx context.Context, own map[uint64]bool, deleteRefused bool) map[uint64]error {
	c.outboxMu.Lock()
	defer c.outboxMu.Unlock()
	out := make(map[uint64]error, len(own))
	var items []store.OutboxItem
	if err := c.st.view(func(t *tx) (err error) { items, err = t.Outbox(); return err }); err != nil {
		for seq := range own {
			out[seq] = err
		}
		return out
	}
	down := make(map[string]error)
	for _, it := range items {
		var err error
		switch {
		case down[it.Relay] != nil:
			err = down[it.Relay]
		case c.now().Sub(it.Created) > OutboxExpiry:
			err = fmt.Errorf("not sent: %s was unreachable for %d days", relayHost(it.Relay), int(OutboxExpiry/(24*time.Hour)))
		default:
			err = c.sendOutboxEntry(ctx, it)
		}
		if errors.Is(err, ErrQueued) || errors.Is(err, ErrStore) {
			down[it.Relay] = err // kept, and what follows for that relay waits
		} else if ferr := c.finishOutbox(it, err, own[it.Seq], deleteRefused); ferr != nil {
			err = ferr
		}
		if own[it.Seq] {
			out[it.Seq] = err
		}
	}
	return out
}

// sendOutboxEntry sends one entry; an error matching ErrQueued if its
// relay cannot be reached or asks to retry later.
func (c *Client) sendOutboxEntry(ctx context.Context, it store.OutboxItem) error {
	if len(it.Group) > 0 {
		return c.sendOutboxFanout(ctx, it) // queuereceipts.go
	}
	r, err := c.contactByID(it.Device)
	if errors.Is(err, ErrUnknownContact) {
		return err // deleted meanwhile: given up
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err) // kept: a local failure is no refusal
	}
	if r.Person.Blocked {
		return &contactBlockedError{name: r.Person.Name}
	}
	if r.Refused {
		return &invitationSpentError{name: r.Person.Name, refused: true}
	}
	for moves := 0; ; moves++ {
		var mb protocol.MailboxID
		copy(mb[:], it.Mailbox)
		tok, err := protocol.CapabilityTokenFromBytes(it.Capability)
		if err != nil || len(it.Mailbox) != len(mb) {
			return errStoreCorrupt
		}
		resp, err := c.anonRequest(ctx, it.Relay, anonKey(r.ID), &protocol.Send{Mailbox: mb, Capability: tok, Envelope: it.Envelope})
		if err == nil {
			if _, ok := resp.(*protocol.Sent); !ok {
				return unexpected(resp)
			}
			return nil
		}
		if retryLater(err) {
			return &queuedError{host: relayHost(it.Relay), cause: err}
		}
		// A team's reply route the intake deleted (teamroutes.go): the
		// same envelope goes to the device's other route, in this send.
		// Bounded: each move forgets a route, and a device holds two.
		if moves < 2 {
			nr, moved, merr := c.moveFromStaleReplyRoute(r, &it, err)
			if merr != nil {
				return fmt.Errorf("%w: %w", ErrStore, merr) // kept, on its old route
			}
			if moved {
				r = nr
				if optedOut(r) { // the other route is one this person was refused
					return &RestrictedError{Level: Restriction(r.Person.Restricted), Organisation: c.organisation, OptIn: true}
				}
				continue
			}
		}
		c.forgetStaleReplyRoute(r, it.Mailbox, err) // teamroutes.go
		return c.sendError(r, err)
	}
}

// retryLater reports whether a failed send may succeed later: the relay
// could not be reached (or the Client closed, or the caller gave up), or
// it asked to retry. Any other refusal is final.
func retryLater(err error) bool {
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		return true
	}
	switch pe.Code {
	case protocol.CodeRateLimited, protocol.CodeTooManyConnections, protocol.CodeInternal,
		protocol.CodeShuttingDown, protocol.CodeStorageFull, protocol.CodeQueueFull:
		return true
	}
	return false
}

// finishOutbox removes entry it, sent (sendErr nil) or given up, and
// updates its message in the same transaction: no longer queued once no
// other entry holds it (a message to several devices has one entry per
// device), with the reason it was not sent. An own entry (one whose send
// waits for it) that was refused leaves the message to its send: deleted
// here with deleteRefused (nothing was sent), else the send decides.
func (c *Client) finishOutbox(it store.OutboxItem, sendErr error, own, deleteRefused bool) error {
	var done Message
	err := c.st.update(func(t *tx) error {
		done = Message{}
		if !t.OutboxHas(it.Seq) {
			return nil // another process on this home finished it
		}
		if err := t.DeleteOutbox(it.Seq); err != nil {
			return err
		}
		if it.Message == "" {
			return nil
		}
		if sendErr != nil && own {
			if deleteRefused {
				return t.DeleteMessage(it.Message)
			}
			return nil
		}
		if sendErr != nil {
			// On a team's intake, a staff reply given up is a failed
			// delivery of the team's (SPEC 15.8 "delivery failures").
			if err := c.outboxGaveUp(t, it.Message, c.now()); err != nil {
				return err
			}
		}
		rest, err := t.Outbox()
		if err != nil {
			return err
		}
		waiting := slices.ContainsFunc(rest, func(o store.OutboxItem) bool { return o.Message == it.Message })
		var rec *messageRecord
		_, err = t.UpdateMessage(it.Message, func(m *messageRecord) {
			m.Queued = waiting
			if sendErr != nil {
				m.SendError = sendErr.Error()
			}
			rec = m
		})
		if err == nil && !waiting && rec != nil {
			done, err = c.publicMessage(t, rec)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	if done.ID != "" && !own {
		// A front-end showed it queued: now the relays hold it (or it
		// was given up, SendError).
		c.emit(Event{Kind: EventSent, Message: done})
	}
	switch {
	case sendErr == nil:
		c.log.Debug("sent from the outbox", "relay", relayHost(it.Relay))
	case !own:
		c.log.Warn("gave up a queued envelope", "relay", relayHost(it.Relay), "err", sendErr)
	}
	return nil
}

// kickOutbox wakes the outbox loop (a send was just queued).
func (c *Client) kickOutbox() {
	select {
	case c.outboxKick <- struct{}{}:
	default:
	}
}

// outboxPending reports whether anything waits in the outbox.
func (c *Client) outboxPending() bool {
	var n int
	err := c.st.view(func(t *tx) error {
		items, err := t.Outbox()
		n = len(items)
		return err
	})
	return err == nil && n > 0
}

// flushOutboxLog is a flush whose failures are only logged (maintenance).
func (c *Client) flushOutboxLog(ctx context.Context) {
	if err := c.flushOutbox(ctx, 0); err != nil {
		c.log.Warn("outbox", "err", err)
	}
}

// goOutboxLoop starts, once, the loop that retries the outbox while the
// Client lives: after outboxRetryMin, then doubling up to outboxRetryMax
// (with jitter) while envelopes still wait; a queued send starts over.
func (c *Client) goOutboxLoop() {
	c.outboxLoop.Do(func() { c.goBackground(c.runOutbox) })
}

func (c *Client) runOutbox() {
	wait := outboxRetryMin
	for {
		var fire <-chan time.Time
		var tm *time.Timer
		if c.outboxPending() {
			d := wait/2 + rand.N(wait/2+1)
			tm = time.NewTimer(d)
			fire = tm.C
		}
		select {
		case <-c.ctx.Done():
			if tm != nil {
				tm.Stop()
			}
			return
		case <-c.outboxKick:
			if tm != nil {
				tm.Stop()
			}
			wait = outboxRetryMin
			continue
		case <-fire:
		}
		ctx, cancel := context.WithTimeout(c.ctx, outboxRetryLimit)
		c.flushOutboxLog(ctx)
		cancel()
		if c.outboxPending() {
			wait = min(2*wait, outboxRetryMax)
		} else {
			wait = outboxRetryMin
		}
	}
}
