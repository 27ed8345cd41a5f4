package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Contacts made on one device reach the person's other devices
// (protocol/SPEC.md section 9 "Devices"): when a contact is added (an
// introduction arrives for an invitation of ours, or our acceptance gets
// its own route), the device sends each sibling a contact share (content
// 0x15): a contacts snapshot of that one person, without certificates.
// The sibling adds the person, borrowing this device's routes, and
// introduces itself to each of their devices (hellos), so that the
// contact's messages reach it too.

const contentContactShare byte = 0x15

// maxShareSize bounds the snapshot in a contact share: it travels in one
// session message.
const maxShareSize = 60 << 10

// appendShareBody encodes a contact share: u32 len || snapshot.
func appendShareBody(b []byte, c *content) ([]byte, error) {
	if len(c.List) == 0 || len(c.List) > maxShareSize {
		return nil, ErrDecrypt
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.List)))
	return append(b, c.List...), nil
}

// parseShareBody reads what appendShareBody writes (the snapshot is
// checked by the receiver).
func parseShareBody(r *protocol.Reader, c *content) bool {
	n := r.U32("share length")
	if n == 0 || n > maxShareSize {
		return false
	}
	c.List = bytes.Clone(r.Take(int(n), "share"))
	return r.Err() == nil
}

// exportPerson is the contacts snapshot of contact person id alone,
// without certificates (a device fetches a certificate with the bundle).
func (t *tx) exportPerson(id []byte) ([]byte, error) {
	p, err := t.Person(id)
	if err != nil || p == nil || p.Self {
		return nil, err
	}
	sp := snapshotPerson{
		Identity: p.Identity, Name: p.Name, Verification: p.Verification, Blocked: p.Blocked,
		DeviceList: p.DeviceList, Added: p.Added,
	}
	ds, err := t.DevicesOf(p.ID)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if d.Revoked {
			continue
		}
		sd := snapshotDevice{DeviceID: d.DeviceID, Relay: d.Relay, Added: d.Added}
		if len(d.SendMbx) == 16 && len(d.SendCap) == 32 && !d.Refused && !d.Borrowed && !d.ViaInvitation {
			sd.Mailbox, sd.Cap = d.SendMbx, d.SendCap
		}
		sp.Devices = append(sp.Devices, sd)
	}
	if len(sp.Devices) == 0 {
		return nil, nil
	}
	return json.Marshal(&contactsSnapshot{V: snapshotVersion, Persons: []snapshotPerson{sp}})
}

// shareContact sends contact person id to each of this person's other
// devices. Failures are logged: a device that misses a share learns the
// contact with the next link or backup.
func (c *Client) shareContact(ctx context.Context, id []byte) {
	var snap []byte
	var sibs []*contactRecord
	err := c.st.view(func(t *tx) error {
		var err error
		if snap, err = t.exportPerson(id); err != nil || snap == nil {
			return err
		}
		self, err := t.self()
		if err != nil {
			return err
		}
		sibs, err = c.targets(t, self)
		return err
	})
	if err != nil || snap == nil || len(sibs) == 0 {
		if err != nil {
			c.log.Warn("could not share a new contact with this person's other devices", "err", err)
		}
		return
	}
	if len(snap) > maxShareSize {
		c.log.Warn("a new contact is too large to share with this person's other devices", "bytes", len(snap))
		return
	}
	for _, s := range sibs {
		ct := &content{Type: contentContactShare, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()), List: snap}
		copy(ct.MsgID[:], randomID(msgIDSize))
		if err := c.sendSession(ctx, s, ct); err != nil && !errors.Is(err, ErrQueued) {
			c.log.Warn("could not share a new contact with another device of this person", "err", err)
		}
	}
}

// receiveShare adds the person of a contact share from a sibling (from):
// a new person, or the devices of a known one this device lacks, with the
// sibling's routes to borrow. The hellos go after the commit.
func (c *Client) receiveShare(t *tx, from *contactRecord, ct *content, now time.Time, res *received) (error, error) {
	if !from.Person.Self {
		return ErrUnknownSender, nil
	}
	snap, err := parseShare(ct.List, c.idFP)
	if err != nil {
		c.log.Warn("ignored a contact share that does not check", "err", err)
		return nil, nil
	}
	sp := &snap.Persons[0]
	ps, err := t.Persons()
	if err != nil {
		return nil, err
	}
	var p *store.Person
	for _, x := range ps {
		if bytes.Equal(x.Identity, sp.Identity) {
			p = x
		}
	}
	if p == nil {
		cs, err := t.contacts()
		if err != nil {
			return nil, err
		}
		p = &store.Person{
			ID: store.NewID(), Identity: sp.Identity, Name: uniqueName(cs, sp.Name), Verification: sp.Verification,
			Blocked: sp.Blocked, Added: now,
		}
		if len(sp.DeviceList) > 0 {
			l, err := keys.ParseDeviceList(sp.DeviceList)
			if err != nil {
				return nil, nil
			}
			p.DeviceList, p.DeviceListVersion = sp.DeviceList, l.Version
		}
		if err := t.PutPerson(p); err != nil {
			return nil, err
		}
		if _, err := t.DirectConversation(p.ID, now); err != nil {
			return nil, err
		}
		res.events = append(res.events, Event{Kind: EventContact, Contact: p.Name, Change: ContactAdded})
	}
	ds, err := t.DevicesOf(p.ID)
	if err != nil {
		return nil, err
	}
	for _, sd := range sp.Devices {
		var d *store.Device
		for _, x := range ds {
			if bytes.Equal(x.DeviceID, sd.DeviceID) {
				d = x
			}
		}
		switch {
		case d == nil:
			d = &store.Device{ID: store.NewID(), Person: p.ID, DeviceID: sd.DeviceID, Relay: sd.Relay, Added: now}
		case d.Revoked || len(d.SendMbx) != 0:
			continue
		}
		if len(sd.Mailbox) == 16 {
			d.SendMbx, d.SendCap, d.Borrowed = sd.Mailbox, sd.Cap, true
			d.Relay = sd.Relay
			res.hellos = true
		}
		if err := t.PutDevice(d); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// parseShare checks a contact share: a snapshot of exactly one person,
// a contact (not this person).
func parseShare(b []byte, idFP keys.Fingerprint) (*contactsSnapshot, error) {
	return decodeSnapshot(b, idFP, true)
}
