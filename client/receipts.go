package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/protocol"
)

// Receipts (protocol/SPEC.md section 9 "Receipts"). A device that stores
// a message sends its sender device a delivered receipt, and a read
// receipt when the person reads it (MarkRead) unless they turned read
// receipts off. A receipt is a session content like any other: the relay
// sees an ordinary padded envelope. The device that sent the message
// records, on its outgoing copy, the first receipt of each kind from any
// device of the recipient (Message.Delivered, Message.ReadReceipt) and
// emits EventReceipt.
//
// Receipts are best effort: a receipt that cannot be sent is logged and
// dropped (one that waits for an unreachable relay waits in the outbox
// like any envelope), and it never fails the receive or the read it
// reports.

// contentReceipt: u8(kind) || u8(n) || n × message id [16].
const contentReceipt byte = 0x16

// Receipt kinds.
const (
	receiptDelivered byte = 1
	receiptRead      byte = 2
)

// MaxReceiptIDs is the most messages one receipt names; more are split
// over several receipts.
const MaxReceiptIDs = 64

// receiptSendTimeout bounds the sending of the delivered receipts of one
// receive pass.
const receiptSendTimeout = 30 * time.Second

// appendReceiptBody encodes contentReceipt's body.
func appendReceiptBody(b []byte, c *content) ([]byte, error) {
	if !validReceiptKind(c.ReceiptKind) || len(c.Receipts) == 0 || len(c.Receipts) > MaxReceiptIDs {
		return nil, ErrDecrypt
	}
	b = append(b, c.ReceiptKind, byte(len(c.Receipts)))
	for _, id := range c.Receipts {
		b = append(b, id[:]...)
	}
	return b, nil
}

// parseReceiptBody reads what appendReceiptBody writes: a known kind and
// 1..MaxReceiptIDs message IDs.
func parseReceiptBody(r *protocol.Reader, c *content) bool {
	c.ReceiptKind = r.U8("receipt kind")
	n := int(r.U8("receipt count"))
	if r.Err() != nil || !validReceiptKind(c.ReceiptKind) || n == 0 || n > MaxReceiptIDs {
		return false
	}
	c.Receipts = make([][msgIDSize]byte, n)
	for i := range c.Receipts {
		r.Array(c.Receipts[i][:], "receipt message id")
	}
	return r.Err() == nil
}

func validReceiptKind(k byte) bool { return k == receiptDelivered || k == receiptRead }

// ---- the setting ----

// keyReceiptSettings is the meta record of the receipt settings.
var keyReceiptSettings = []byte("receipts")

// receiptSettings is this device's receipt setting. The zero value is the
// default: read receipts are sent.
type receiptSettings struct {
	V int `json:"v"`
	// NoRead: read receipts are not sent. Delivered receipts always are.
	NoRead bool `json:"no_read,omitempty"`
}

func (t *tx) receiptSettings() (*receiptSettings, error) {
	var r receiptSettings
	if _, err := t.Get(bucketMeta, t.Index(bucketMeta, keyReceiptSettings), &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// SetReadReceipts turns the sending of read receipts on or off on this
// device (it is on by default). Off, MarkRead tells nobody that a message
// was read; delivered receipts are still sent, and receipts from others
// are still shown. The setting is kept in this device's encrypted store.
func (c *Client) SetReadReceipts(on bool) error {
	return c.st.update(func(t *tx) error {
		r, err := t.receiptSettings()
		if err != nil {
			return err
		}
		r.V, r.NoRead = 1, !on
		return t.Put(bucketMeta, t.Index(bucketMeta, keyReceiptSettings), r)
	})
}

// ReadReceipts reports whether this device sends read receipts. When the
// store cannot be read it reports false: nothing is sent then anyway.
func (c *Client) ReadReceipts() bool {
	on, err := c.readReceiptsOn()
	return err == nil && on
}

func (c *Client) readReceiptsOn() (bool, error) {
	var on bool
	err := c.st.view(func(t *tx) error {
		r, err := t.receiptSettings()
		if err == nil {
			on = !r.NoRead
		}
		return err
	})
	return on, err
}

// ---- sending ----

// receiptBatch is the message IDs to acknowledge to one device (record ID).
type receiptBatch struct {
	dev []byte
	ids [][msgIDSize]byte
}

// deliveredQueue holds the delivered receipts of what the receive loop
// stored and has not acknowledged to its senders yet, by sender device, so
// that the messages of one receive pass go in one receipt per device.
type deliveredQueue struct {
	mu      sync.Mutex
	batches []receiptBatch
}

// add queues id for dev and returns how many wait for dev.
func (q *deliveredQueue) add(dev []byte, id [msgIDSize]byte) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := range q.batches {
		if bytes.Equal(q.batches[i].dev, dev) {
			q.batches[i].ids = append(q.batches[i].ids, id)
			return len(q.batches[i].ids)
		}
	}
	q.batches = append(q.batches, receiptBatch{dev: bytes.Clone(dev), ids: [][msgIDSize]byte{id}})
	return 1
}

// take empties the queue and returns what was in it.
func (q *deliveredQueue) take() []receiptBatch {
	q.mu.Lock()
	defer q.mu.Unlock()
	b := q.batches
	q.batches = nil
	return b
}

// queueDelivered runs on the receive loop after an envelope is stored and
// acknowledged: the delivered receipt it made due waits until nothing
// more is pushed on cn (the end of a receive pass), until its mailbox is
// drained (flushDelivered before the Drained is handled) or until a
// receipt is full.
func (c *Client) queueDelivered(cn *conn, res *received) {
	full := false
	if res.delivered != nil {
		full = c.delivered.add(res.delivered, res.deliveredID) >= MaxReceiptIDs
	}
	if full || cn.push == nil || cn.push.idle() {
		c.flushDelivered()
	}
}

// flushDelivered sends the queued delivered receipts, one per device.
func (c *Client) flushDelivered() {
	batches := c.delivered.take()
	if len(batches) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, receiptSendTimeout)
	defer cancel()
	for _, b := range batches {
		if err := c.sendReceipt(ctx, b.dev, receiptDelivered, b.ids); err != nil {
			c.log.Info("could not send a delivered receipt", "messages", len(b.ids), "err", err)
		}
	}
}

// sendReceipt sends a receipt of kind for ids to device dev (record ID),
// in as many receipts as MaxReceiptIDs needs. Nothing is sent to a device
// that is gone or revoked, to a person this device blocked or whose
// identity changed, or to this person's own devices. A receipt that waits
// in the outbox is sent.
func (c *Client) sendReceipt(ctx context.Context, dev []byte, kind byte, ids [][msgIDSize]byte) error {
	r, err := c.contactByID(dev)
	if errors.Is(err, ErrUnknownContact) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.Revoked || r.Person.Blocked || r.Person.Self || r.Person.Verification == store.Changed {
		return nil
	}
	for len(ids) > 0 {
		n := min(len(ids), MaxReceiptIDs)
		ct := &content{Type: contentReceipt, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()), ReceiptKind: kind, Receipts: ids[:n]}
		copy(ct.MsgID[:], randomID(msgIDSize))
		if err := c.sendSession(ctx, r, ct); err != nil && !errors.Is(err, ErrQueued) {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// sendReadReceipts sends read receipts for the incoming messages among
// ids, one receipt (or more, past MaxReceiptIDs) per sender device, unless
// this device does not send read receipts (SetReadReceipts). IDs of
// outgoing messages, notices, messages stored before receipts or
// unknown are skipped. MarkRead calls it after the read state is stored;
// its error is for the caller to log, not to undo the read.
func (c *Client) sendReadReceipts(ctx context.Context, ids []string) error {
	on, err := c.readReceiptsOn()
	if err != nil || !on {
		return err
	}
	var batches []receiptBatch
	err = c.st.view(func(t *tx) error {
		for _, id := range ids {
			m, err := t.MessageByID(id)
			if err != nil {
				return err
			}
			if m == nil || m.Outgoing || m.Notice || len(m.Sender) == 0 || len(m.ContentID) != msgIDSize {
				continue
			}
			var mid [msgIDSize]byte
			copy(mid[:], m.ContentID)
			i := 0
			for i < len(batches) && !bytes.Equal(batches[i].dev, m.Sender) {
				i++
			}
			if i == len(batches) {
				batches = append(batches, receiptBatch{dev: m.Sender})
			}
			batches[i].ids = append(batches[i].ids, mid)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, b := range batches {
		if err := c.sendReceipt(ctx, b.dev, receiptRead, b.ids); err != nil {
			c.log.Info("could not send a read receipt", "messages", len(b.ids), "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SendReadReceipts tells the senders of the incoming messages ids that
// they were read, unless this device does not send read receipts
// (SetReadReceipts), and returns once their relays hold the receipts (or
// they wait in the outbox for a relay that cannot be reached). MarkRead
// does this for the messages it marks; SendReadReceipts is for a
// front-end that keeps read state of its own. An ID that is not stored
// gives ErrNoMessage and nothing is sent; outgoing messages and notices
// are skipped.
func (c *Client) SendReadReceipts(ctx context.Context, ids ...string) error {
	err := c.st.view(func(t *tx) error {
		for _, id := range ids {
			m, err := t.MessageByID(id)
			if err != nil {
				return err
			}
			if m == nil {
				return fmt.Errorf("%w: %q", ErrNoMessage, id)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.sendReadReceipts(ctx, ids)
}

// ---- receiving ----

// receiveReceipt applies a receipt from contact device from, inside the
// receive transaction: each message it names that is an outgoing message
// of this device to from's person gets the receipt's time as its
// Delivered or ReadReceipt if it has none yet (a read receipt also
// delivers), and an EventReceipt. Anything else it names (another
// contact's message, an incoming one, an unknown ID) changes nothing.
// Receipts from this person's own devices are ignored: they learn the
// read state by the own-devices sync.
func (c *Client) receiveReceipt(t *tx, from *contactRecord, ct *content, now time.Time, res *received) error {
	if from.Person.Self {
		return nil
	}
	conv := t.DirectConversationID(from.Person.ID)
	for _, mid := range ct.Receipts {
		id := localMessageID(c.devID, mid)
		m, err := t.MessageByID(id)
		if err != nil {
			return err
		}
		if m == nil || !m.Outgoing || m.Notice || !bytes.Equal(m.Conversation, conv) {
			continue
		}
		at := receiptTime(ct.SentMS, m.Time, now)
		changed := false
		apply := func(r *messageRecord) {
			if r.Delivered.IsZero() {
				r.Delivered, changed = at, true
			}
			if ct.ReceiptKind == receiptRead && r.ReadReceipt.IsZero() {
				r.ReadReceipt, changed = at, true
			}
		}
		apply(m)
		if !changed {
			continue
		}
		if _, err := t.UpdateMessage(id, apply); err != nil {
			return err
		}
		pm, err := c.publicMessage(t, m)
		if err != nil {
			return err
		}
		res.events = append(res.events, Event{Kind: EventReceipt, Message: pm})
	}
	return nil
}

// receiptTime is the time a receipt reports: the reader's clock (when the
// message was delivered or read there), kept between the sending of the
// message (sent, this device's clock) and the receipt's arrival (now), so
// that a wrong or hostile clock cannot date it before the message or in
// the future.
func receiptTime(sentMS uint64, sent, now time.Time) time.Time {
	at := time.UnixMilli(int64(min(sentMS, 1<<62))).UTC()
	if at.After(now) {
		at = now
	}
	if at.Before(sent) {
		at = sent
	}
	return at
}
