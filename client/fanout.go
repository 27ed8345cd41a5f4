package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/postern/postern/client/internal/people"
	"github.com/postern/postern/client/internal/store"
)

// Sending to a person with several devices (protocol/SPEC.md section 9
// "Devices"): a message is sealed once per device of the recipient's
// person that is in the person's verified device list, each in its own
// session and outbox entry, and copied to each of this person's other
// devices (contentSentCopy), so that it shows on all of them. It is
// stored once, with the first envelope; it counts as sent when the relay
// of one of the recipient's devices holds it.

// ErrNoDevice: the contact has no device this device can write to (every
// one revoked, or none introduced yet). Nothing was sent.
var ErrNoDevice = errors.New("client: the contact has no device this device can write to")

// targets are the devices of person p to send to: not revoked, with a
// route, in p's verified device list if it has one, and not this device.
func (c *Client) targets(t *tx, p *store.Person) ([]*contactRecord, error) {
	l, err := people.Current(p)
	if err != nil {
		return nil, err
	}
	ds, err := t.DevicesOf(p.ID)
	if err != nil {
		return nil, err
	}
	var out []*contactRecord
	for _, d := range ds {
		switch {
		case d.Revoked, d.Refused, len(d.SendMbx) != 16, len(d.SendCap) != 32:
		case bytes.Equal(d.DeviceID, c.devID[:]):
		case l != nil && !l.Contains(fpOf(d.DeviceID)):
		default:
			out = append(out, &contactRecord{Device: *d, Person: p})
		}
	}
	return out, nil
}

// sendToPerson sends message m (content ct) to every device of r's person
// and copies it to this person's other devices.
func (c *Client) sendToPerson(ctx context.Context, r *contactRecord, ct *content, m *Message, atts []attachmentRecord) error {
	var devs, sibs []*contactRecord
	err := c.st.view(func(t *tx) error {
		p, err := t.Person(r.Person.ID)
		if err != nil {
			return err
		}
		if p == nil {
			return ErrUnknownContact
		}
		if devs, err = c.targets(t, p); err != nil {
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
	if len(devs) == 0 {
		if r.Refused {
			return &invitationSpentError{name: r.Person.Name, refused: true}
		}
		return fmt.Errorf("%w (%s)", ErrNoDevice, r.Person.Name)
	}
	plain, err := ct.marshalSession()
	if err != nil {
		return err
	}
	own := map[uint64]bool{}
	var seqs []uint64
	var firstErr error
	stored := false
	for _, d := range devs {
		if err := c.helloFirst(ctx, d); err != nil {
			c.log.Warn("could not introduce this device to a contact's device", "err", err)
		}
		ob := &outboxSpec{atts: atts}
		if stored {
			ob.msgID = m.ID
		} else {
			ob.msg = m
		}
		if err := c.sealFor(ctx, d, plain, ob); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		stored = true
		own[ob.seq] = true
		seqs = append(seqs, ob.seq)
	}
	if !stored {
		return firstErr
	}
	if len(sibs) > 0 {
		cp := &content{Type: contentSentCopy, Sender: c.devID, SentMS: ct.SentMS, CopyTo: fpOf(r.Person.Identity), Inner: ct}
		copy(cp.MsgID[:], randomID(msgIDSize))
		cplain, err := cp.marshalSession()
		if err != nil {
			return err
		}
		for _, s := range sibs {
			if err := c.sealFor(ctx, s, cplain, &outboxSpec{}); err != nil {
				c.log.Warn("could not copy a sent message to another device of this person", "err", err)
			}
		}
	}
	res := c.flushOutboxSet(ctx, own, false)
	var queued, refused error
	sent := false
	for _, seq := range seqs {
		switch err := res[seq]; {
		case err == nil:
			sent = true
		case errors.Is(err, ErrQueued) || errors.Is(err, ErrStore):
			if queued == nil {
				queued = err
			}
		case refused == nil:
			refused = err
		}
	}
	switch {
	case sent:
		m.Queued = queued != nil
		if queued != nil {
			c.kickOutbox()
		}
		for _, d := range devs {
			c.sendGossip(ctx, d, ct) // the kept heads of the relays both use (gossip.go)
		}
		return nil
	case queued != nil:
		c.kickOutbox()
		return queued
	}
	// Refused for every device: nothing was sent, the message goes.
	if err := c.st.update(func(t *tx) error { return t.DeleteMessage(m.ID) }); err != nil {
		c.log.Warn("could not delete a message that was not sent", "err", err)
	}
	return refused
}

// helloFirst introduces this device to device d first if d's route is a
// sibling's (borrowed) and no hello went to it yet.
func (c *Client) helloFirst(ctx context.Context, d *contactRecord) error {
	if !d.Borrowed || len(d.RecvMbx) != 0 {
		return nil
	}
	return c.sendHello(ctx, d.ID)
}

// sendHellos introduces this device to every device it holds a borrowed
// route to and has not yet introduced itself to (a new device, after
// linking or a restore). Failures are logged; maintain tries again.
func (c *Client) sendHellos(ctx context.Context) {
	var ids [][]byte
	err := c.st.view(func(t *tx) error {
		ds, err := t.Devices()
		for _, d := range ds {
			if d.Borrowed && len(d.RecvMbx) == 0 && !d.Revoked && len(d.SendMbx) == 16 {
				ids = append(ids, d.ID)
			}
		}
		return err
	})
	if err != nil {
		c.log.Warn("could not read the devices to introduce this device to", "err", err)
		return
	}
	for _, id := range ids {
		if err := c.sendHello(ctx, id); err != nil && !errors.Is(err, ErrQueued) {
			c.log.Warn("could not introduce this device to another device", "err", err)
		}
	}
}

// sendHello gives device id (its route borrowed from a sibling) a route
// to this device, a spare mailbox, in a new session whose first content is
// this person's signed device list: the device checks that this device is
// in it before it answers (devicelink.go acceptHello).
func (c *Client) sendHello(ctx context.Context, id []byte) error {
	cn, err := c.authConn(ctx)
	if err != nil {
		return err
	}
	mb, tok, fromSpare, err := c.takeSpare(ctx, cn)
	if err != nil {
		return err
	}
	taken := false
	rec, err := c.updateContact(id, func(r *contactRecord) {
		if len(r.RecvMbx) == 0 {
			r.RecvMbx, r.RecvCap, taken = mb[:], tok.SecretBytes(), true
		}
	})
	if !taken {
		c.returnSpare(mb, tok, fromSpare)
	}
	if err != nil || !taken {
		return ignoreGone(err)
	}
	var list []byte
	var names []deviceName
	err = c.st.view(func(t *tx) error {
		self, err := t.self()
		if err != nil {
			return err
		}
		list = self.DeviceList
		if rec.Person.Self {
			names, err = t.ownNames(self)
		}
		return err
	})
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return fmt.Errorf("client: this device holds no device list of its person yet")
	}
	ct := &content{
		Type: contentDeviceList, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()),
		List: list, HasRoute: true, ReplyRelay: c.relay, Names: names,
	}
	copy(ct.MsgID[:], randomID(msgIDSize))
	copy(ct.ReplyMailbox[:], rec.RecvMbx)
	copy(ct.ReplyCap[:], rec.RecvCap)
	if err := c.sendSession(ctx, rec, ct); err != nil && !errors.Is(err, ErrQueued) {
		return err
	}
	c.log.Info("introduced this device to another device", "device", fpOf(rec.DeviceID).Short())
	return nil
}

// ownNames are the names of this person's devices that have one, this
// device's included, for siblings (contentDeviceList).
func (t *tx) ownNames(self *store.Person) ([]deviceName, error) {
	ds, err := t.DevicesOf(self.ID)
	if err != nil {
		return nil, err
	}
	var out []deviceName
	for _, d := range ds {
		if d.OwnName != "" && !d.Revoked && len(out) < maxListedNames && checkName(d.OwnName) == nil {
			out = append(out, deviceName{ID: fpOf(d.DeviceID), Name: d.OwnName})
		}
	}
	return out, nil
}
