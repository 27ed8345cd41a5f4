package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Revoking a device of this person from another of its devices
// (protocol/SPEC.md section 9 "Devices"): a new signed device list
// without it is published, which the relay enforces at once (it closes
// the device's connections and refuses it, code 13, as after the
// operator's revoke); the list goes to every device of every contact and
// to the person's other devices, which stop writing to it; the routes it
// wrote to are deleted. The revoked device, when it next reaches the
// relay, is told so and deletes its keys and store (devices.go).

var (
	// ErrNoSuchDevice: no device of this person has that name or ID.
	ErrNoSuchDevice = errors.New("client: this person has no device of that name or ID (see postern device list)")
	// ErrRevokeSelf: a device cannot revoke itself; another of the
	// person's devices must.
	ErrRevokeSelf = errors.New("client: a device cannot revoke itself; revoke it from another of your devices")
)

// RevokeDevice revokes the device of this person named nameOrID (its name,
// or its ID in hex, whole or at least 8 digits of its start) from this
// device, and returns it.
func (c *Client) RevokeDevice(ctx context.Context, nameOrID string) (DeviceInfo, error) {
	cn, err := c.authConn(ctx)
	if err != nil {
		return DeviceInfo{}, err
	}
	cur, err := c.fetchOwnList(ctx, cn)
	if err != nil {
		return DeviceInfo{}, err
	}
	var names []deviceName
	err = c.st.view(func(t *tx) error {
		self, err := t.self()
		if err != nil {
			return err
		}
		names, err = t.allOwnNames(self)
		return err
	})
	if err != nil {
		return DeviceInfo{}, err
	}
	target, err := pickDevice(cur, names, nameOrID)
	if err != nil {
		return DeviceInfo{}, err
	}
	if target.ID == c.devID {
		return DeviceInfo{}, ErrRevokeSelf
	}
	now := c.now().UTC().Truncate(time.Second)
	next := &keys.DeviceList{Version: cur.Version + 1, Created: now}
	for _, d := range cur.Devices {
		if d.ID != target.ID {
			next.Devices = append(next.Devices, d)
		}
	}
	signed, err := c.id.SignDeviceList(next)
	if err != nil {
		return DeviceInfo{}, err
	}
	if _, err := cn.request(ctx, &protocol.PublishDeviceList{List: signed}); err != nil {
		return DeviceInfo{}, fmt.Errorf("client: publish device list: %w", err)
	}
	info := DeviceInfo{ID: target.ID, Linked: target.Linked, Relay: target.Relay}
	for _, n := range names {
		if n.ID == target.ID {
			info.Name = n.Name
		}
	}
	// Keep the new list here: the revoked device's records are marked,
	// its session deleted, and the alert stored, as on every sibling.
	l, err := c.fetchOwnList(ctx, cn)
	if err != nil {
		return info, err
	}
	var res received
	err = c.st.update(func(t *tx) error {
		res = received{}
		self, err := t.self()
		if err != nil {
			return err
		}
		return c.ownListChanged(t, self, cur, l, names, &res)
	})
	if err != nil {
		return info, err
	}
	c.emit(res.events...)
	c.queue(res.msgs)
	c.log.Info("revoked a device of this person", "device", target.ID.Short())
	c.closeRoutes(ctx, res.closeRoutes)
	c.announceList(ctx, signed, true, keys.Fingerprint{})
	// The groups that list the revoked device drop it (groupdevices.go).
	c.maintainGroupDevices(ctx)
	return info, nil
}

// pickDevice finds the device nameOrID in list l: by name (names), or by
// its ID in hex (at least 8 digits of its start, one device only).
func pickDevice(l *keys.DeviceList, names []deviceName, nameOrID string) (keys.ListedDevice, error) {
	for _, n := range names {
		if n.Name == nameOrID {
			for _, d := range l.Devices {
				if d.ID == n.ID {
					return d, nil
				}
			}
		}
	}
	p := strings.ToLower(nameOrID)
	if len(p) >= 8 && len(p) <= 2*keys.FingerprintSize {
		var found []keys.ListedDevice
		for _, d := range l.Devices {
			if strings.HasPrefix(hex.EncodeToString(d.ID[:]), p) {
				found = append(found, d)
			}
		}
		if len(found) == 1 {
			return found[0], nil
		}
	}
	return keys.ListedDevice{}, fmt.Errorf("%w: %q", ErrNoSuchDevice, nameOrID)
}

// ownListChanged applies, on this device, this person's list l that
// replaced old here (this device linked or revoked a device): a dropped
// device's records are revoked, and the alert is stored as on the
// person's other devices.
func (c *Client) ownListChanged(t *tx, self *store.Person, old, l *keys.DeviceList, names []deviceName, res *received) error {
	// newDeviceList compares against the kept list, which fetchOwnList
	// has already replaced: put the old one back for the comparison.
	b, err := old.Bytes()
	if err != nil {
		return err
	}
	nb, err := l.Bytes()
	if err != nil {
		return err
	}
	self.DeviceList, self.DeviceListVersion = b, old.Version
	return c.newDeviceList(t, self, nb, l, names, c.now().UTC(), res)
}

// allOwnNames are the names of every device of this person that has one,
// revoked or not (for finding a device to revoke by name).
func (t *tx) allOwnNames(self *store.Person) ([]deviceName, error) {
	ds, err := t.DevicesOf(self.ID)
	if err != nil {
		return nil, err
	}
	var out []deviceName
	for _, d := range ds {
		if d.OwnName != "" && len(d.DeviceID) == keys.FingerprintSize {
			out = append(out, deviceName{ID: fpOf(d.DeviceID), Name: d.OwnName})
		}
	}
	return out, nil
}

// announceList sends this person's device list signed (content 0x12) to
// each of its other devices but skip, with the names of its devices, and
// with contacts also to every device of every contact not blocked: so
// that siblings show an alert for a device linked or revoked, and
// contacts stop writing to a revoked one with their next message.
// Failures are logged: a linked device introduces itself anyway, and
// contacts check the list with the relay before they send
// (contactlist.go).
func (c *Client) announceList(ctx context.Context, signed []byte, contacts bool, skip keys.Fingerprint) {
	var targets []*contactRecord
	var names []deviceName
	err := c.st.view(func(t *tx) error {
		ps, err := t.Persons()
		if err != nil {
			return err
		}
		for _, p := range ps {
			if p.Blocked || (!p.Self && !contacts) {
				continue
			}
			ts, err := c.targets(t, p)
			if err != nil {
				return err
			}
			targets = append(targets, ts...)
			if p.Self {
				if names, err = t.ownNames(p); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		c.log.Warn("could not read the devices to tell of the new device list", "err", err)
		return
	}
	for _, d := range targets {
		if fpOf(d.DeviceID) == skip {
			continue // it has the list: it came with its link response
		}
		ct := &content{Type: contentDeviceList, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()), List: signed}
		if d.Person.Self {
			ct.Names = names
		}
		copy(ct.MsgID[:], randomID(msgIDSize))
		if err := c.sendSession(ctx, d, ct); err != nil && !errors.Is(err, ErrQueued) {
			c.log.Warn("could not send the new device list to a device", "device", fpOf(d.DeviceID).Short(), "err", err)
		}
	}
}

// closeRoutes deletes, on the relay, the mailboxes the devices ids (record
// IDs, revoked) wrote to, and forgets them. Failures are logged; the
// mailboxes are then only unused.
func (c *Client) closeRoutes(ctx context.Context, ids [][]byte) {
	if len(ids) == 0 {
		return
	}
	cn, err := c.authConn(ctx)
	if err != nil {
		c.log.Warn("could not close the routes of revoked devices", "err", err)
		return
	}
	for _, id := range ids {
		r, err := c.contactByID(id)
		if err != nil {
			continue
		}
		for _, mbb := range [][]byte{r.RecvMbx, r.PrevRecvMbx, r.ReplyRecvMbx} { // and a team's reply route (teamroutes.go)
			if len(mbb) != 16 {
				continue
			}
			var mb protocol.MailboxID
			copy(mb[:], mbb)
			if err := c.deleteRoute(ctx, cn, mb); err != nil {
				c.log.Warn("could not delete a revoked device's route", "err", err)
			}
		}
		if _, err := c.updateContact(id, func(r *contactRecord) {
			r.RecvMbx, r.RecvCap, r.PrevRecvMbx, r.PrevRecvCap = nil, nil, nil, nil
			r.ReplyRecvMbx, r.ReplyRecvCap = nil, nil
		}); err != nil {
			c.log.Warn("could not forget a revoked device's route", "err", err)
		}
	}
}

// deleteRoute deletes our mailbox mb on the relay (a route a device that
// is gone wrote to) and forgets it.
func (c *Client) deleteRoute(ctx context.Context, cn *conn, mb protocol.MailboxID) error {
	if err := cn.ok(ctx, &protocol.DeleteMailbox{Mailbox: mb}); err != nil && !protocol.IsCode(err, protocol.CodeUnknownMailbox) {
		return err
	}
	return c.st.update(func(t *tx) error {
		list, err := t.mailboxes()
		if err != nil {
			return err
		}
		return t.putMailboxes(slices.DeleteFunc(list, func(m mailboxRecord) bool { return bytes.Equal(m.ID, mb[:]) }))
	})
}
