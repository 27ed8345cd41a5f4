package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"

	"github.com/postern/postern/client/internal/people"
	"github.com/postern/postern/client/internal/session"
	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Several devices per person, receiving side (protocol/SPEC.md section 9
// "Devices"). Every pair (device of ours, device of theirs) has its own
// session and a route each way, so a mailbox names one device. A device
// new to its person (linked, or restored from a backup) does not have
// routes yet: it borrows the route of a sibling once, to introduce itself
// with a session whose first content is the person's signed device list
// and its own route (a hello). The receiver checks that the device is in a
// list signed by the person's identity, gives it a route of its own, and
// until the device writes there reads its messages on the borrowed
// mailbox with its own session.

const noticeIDDeviceLabel = protocol.LabelPrefix + "device-notice-id"

// helloSenderByInit returns the device of from's person that started the
// session whose Init ID is id and introduced itself on mailbox mb, or
// nil when from's own device (or nobody known) did.
func (c *Client) helloSenderByInit(t *tx, from *contactRecord, mb protocol.MailboxID, id [32]byte) (*contactRecord, error) {
	alts, err := t.helloSenders(from, mb)
	if err != nil || len(alts) == 0 {
		return nil, err
	}
	for _, d := range alts {
		rec, err := t.sessionRecord(d.ID)
		if err != nil {
			return nil, err
		}
		if rec.answered(id) {
			return d, nil
		}
	}
	return nil, nil
}

// helloSenders are the devices of from's person, other than from's, not
// revoked, that introduced themselves on mailbox mb.
func (t *tx) helloSenders(from *contactRecord, mb protocol.MailboxID) ([]*contactRecord, error) {
	ds, err := t.DevicesOf(from.Person.ID)
	if err != nil {
		return nil, err
	}
	var out []*contactRecord
	for _, d := range ds {
		if d.Revoked || bytes.Equal(d.ID, from.ID) || !bytes.Equal(d.HelloMbx, mb[:]) {
			continue
		}
		out = append(out, &contactRecord{Device: *d, Person: from.Person})
	}
	return out, nil
}

// openAsHelloSender tries msg, which from's session did not open, with
// the sessions of the devices that introduced themselves on mb. It
// returns the device whose session opened it, that session (advanced) and
// the plaintext; a nil device if none did.
func (c *Client) openAsHelloSender(t *tx, from *contactRecord, mb protocol.MailboxID, msg []byte) (*contactRecord, *session.Session, []byte, error) {
	alts, err := t.helloSenders(from, mb)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, d := range alts {
		rec, err := t.sessionRecord(d.ID)
		if err != nil {
			return nil, nil, nil, err
		}
		s, err := c.loadSession(rec.State)
		if err != nil {
			return nil, nil, nil, err
		}
		if s == nil {
			continue
		}
		if p, err := s.Open(msg); err == nil {
			return d, s, p, nil
		}
	}
	return nil, nil, nil, nil
}

// acceptHello decides on a session that device pc of from's person
// started on mb, the mailbox of from's device: it is accepted when pc is
// in the person's current verified device list, or when its first content
// (plain) is a device list signed by the person's identity, newer than the
// one kept (or the same list), that names pc. It returns pc's device record (made if
// new, marked to be given a route of its own), or nil to drop the
// envelope.
func (c *Client) acceptHello(t *tx, from *contactRecord, mb protocol.MailboxID, pc *keys.DeviceCertificate, plain []byte, now time.Time, res *received) (*contactRecord, error) {
	id := pc.DeviceID()
	listed := false
	if cur, err := people.Current(from.Person); err != nil {
		return nil, err
	} else if cur != nil && cur.Contains(id) {
		listed = true
	}
	if !listed {
		ct, err := parseSessionContent(plain)
		if err != nil || ct.Type != contentDeviceList || ct.Sender != id {
			return nil, nil
		}
		l, err := keys.ParseDeviceList(ct.List)
		if err != nil || l.Identity.Fingerprint() != fpOf(from.Person.Identity) || !l.Contains(id) || l.Version < from.Person.DeviceListVersion ||
			(l.Version == from.Person.DeviceListVersion && !bytes.Equal(ct.List, from.Person.DeviceList)) {
			c.log.Warn("refused a device's introduction: not in its person's device list", "mailbox", mb.Short())
			return nil, nil
		}
	}
	ds, err := t.DevicesOf(from.Person.ID)
	if err != nil {
		return nil, err
	}
	var d *store.Device
	for _, x := range ds {
		if bytes.Equal(x.DeviceID, id[:]) {
			d = x
		}
	}
	switch {
	case d == nil:
		d = &store.Device{ID: store.NewID(), Person: from.Person.ID, DeviceID: bytes.Clone(id[:]), Relay: from.Relay, Added: now}
	case d.Revoked:
		c.log.Warn("refused a session from a revoked device", "mailbox", mb.Short())
		return nil, nil
	}
	d.Cert = pc.Bytes()
	d.HelloMbx = bytes.Clone(mb[:])
	if len(d.RecvMbx) == 0 {
		d.NeedRoute = true
	}
	if err := t.PutDevice(d); err != nil {
		return nil, err
	}
	res.introduced = id
	c.log.Info("a contact's device introduced itself", "contact", fpOf(from.Person.Identity).Short(), "device", id.Short())
	return &contactRecord{Device: *d, Person: from.Person}, nil
}

// applyDeviceList handles a contentDeviceList from device from: a newer
// list signed by the person's identity replaces the kept one (devices it
// drops are revoked here: no more messages to them, and their routes are
// closed), with a notice, or for this person's own list an alert; the
// route, if any, becomes from's; the names, from a sibling, name this
// person's devices.
func (c *Client) applyDeviceList(t *tx, from *contactRecord, ct *content, now time.Time, res *received) error {
	l, err := keys.ParseDeviceList(ct.List)
	if err != nil || l.Identity.Fingerprint() != fpOf(from.Person.Identity) || !l.Contains(fpOf(from.DeviceID)) {
		c.log.Warn("ignored a device list that is not its sender's person's", "device", fpOf(from.DeviceID).Short())
		return nil
	}
	changed := l.Version > from.Person.DeviceListVersion
	if changed {
		if err := c.newDeviceList(t, from.Person, ct.List, l, ct.Names, now, res); err != nil {
			return err
		}
	}
	if from.Person.Self {
		for _, n := range ct.Names {
			if err := t.nameSibling(from.Person, n, now); err != nil {
				return err
			}
		}
	}
	d, err := t.Device(from.ID)
	if err != nil || d == nil {
		return err
	}
	var routed keys.Fingerprint
	if ct.HasRoute && c.peerRelayAllowed(ct.ReplyRelay) {
		if len(d.SendMbx) != 16 {
			routed = fpOf(d.DeviceID)
		}
		d.SendMbx, d.SendCap = bytes.Clone(ct.ReplyMailbox[:]), bytes.Clone(ct.ReplyCap[:])
		d.Relay, d.ViaInvitation, d.Borrowed = ct.ReplyRelay, false, false
	}
	if changed || routed != (keys.Fingerprint{}) {
		// The groups' member devices follow (groupdevices.go).
		res.groups = append(res.groups, groupDevicesTask(routed))
	}
	if routed != (keys.Fingerprint{}) {
		// A team's outsider linked it: it is owed the team's notice
		// (teamnotice.go).
		if err := c.noticeForNewDevice(t, from.Person, d.ID, res); err != nil {
			return err
		}
	}
	from.Device = *d
	return t.PutDevice(d)
}

// newDeviceList keeps l (encoded b), newer than p's kept list: devices it
// no longer holds are revoked, and a notice (an alert for this person's
// own devices, named from names or the records) says what changed.
func (c *Client) newDeviceList(t *tx, p *store.Person, b []byte, l *keys.DeviceList, names []deviceName, now time.Time, res *received) error {
	old, err := people.Current(p)
	if err != nil {
		return err
	}
	p.DeviceList, p.DeviceListVersion = bytes.Clone(b), l.Version
	if err := t.PutPerson(p); err != nil {
		return err
	}
	ds, err := t.DevicesOf(p.ID)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if d.Revoked || l.Contains(fpOf(d.DeviceID)) || (p.Self && bytes.Equal(d.DeviceID, c.devID[:])) {
			continue
		}
		d.Revoked = true
		if err := t.PutDevice(d); err != nil {
			return err
		}
		if err := t.Delete(bucketSessions, d.ID); err != nil {
			return err
		}
		if err := t.dropOutboxFor(d.ID); err != nil {
			return err
		}
		res.closeRoutes = append(res.closeRoutes, d.ID)
	}
	// known: was the device of this person before this list? Without an
	// older list, the devices this device had records of (but the one
	// introducing itself right now) were.
	known := func(id keys.Fingerprint) bool {
		if old != nil {
			return old.Contains(id)
		}
		if res.introduced == id {
			return false
		}
		return slices.ContainsFunc(ds, func(d *store.Device) bool { return bytes.Equal(d.DeviceID, id[:]) })
	}
	for _, dev := range l.Devices {
		if !known(dev.ID) && !(p.Self && dev.ID == c.devID) {
			if err := c.deviceNotice(t, p, dev.ID, names, dev.Linked, true, l.Version, now, res); err != nil {
				return err
			}
		}
	}
	if old == nil {
		return nil
	}
	for _, dev := range old.Devices {
		if !l.Contains(dev.ID) {
			if err := c.deviceNotice(t, p, dev.ID, names, l.Created, false, l.Version, now, res); err != nil {
				return err
			}
		}
	}
	return nil
}

// deviceNotice stores the notice that device id of p was linked (added)
// or removed at when, once per list version; for this person's own
// devices it is an alert (EventAlert).
func (c *Client) deviceNotice(t *tx, p *store.Person, id keys.Fingerprint, names []deviceName, when time.Time, added bool, version uint64, now time.Time, res *received) error {
	name := ""
	for _, n := range names {
		if n.ID == id {
			name = n.Name
		}
	}
	if p.Self && name == "" {
		ds, err := t.DevicesOf(p.ID)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if bytes.Equal(d.DeviceID, id[:]) {
				name = d.OwnName
			}
		}
	}
	m := &Message{
		ID: deviceNoticeID(p.Identity, id, version, added), From: p.Name, To: Me,
		Text: deviceNoticeText(p, name, id, when, added), Time: now, Received: now, Notice: true,
	}
	if p.Self {
		m.From = Me
	}
	stored, err := storeMessage(t, &contactRecord{Person: p}, m)
	if err != nil || !stored {
		return err
	}
	res.msgs = append(res.msgs, *m)
	if p.Self && added {
		// Kept until acknowledged (devicealerts.go).
		if err := t.recordDeviceAlert(m.ID, id, name, when, now); err != nil {
			return err
		}
	}
	if p.Self {
		res.events = append(res.events, Event{Kind: EventAlert, Message: *m})
	} else {
		res.events = append(res.events, Event{Kind: EventContact, Contact: p.Name, Change: ContactDevicesChanged})
	}
	return nil
}

// deviceNoticeText is what a device notice says.
func deviceNoticeText(p *store.Person, name string, id keys.Fingerprint, when time.Time, added bool) string {
	at := when.Local().Format("2 Jan at 15:04")
	if !p.Self {
		if added {
			return p.Name + " linked a new device on " + at + ". Your messages to " + p.Name + " now go to it too."
		}
		return p.Name + " removed a device on " + at + ". It gets no more of your messages."
	}
	label := name
	if label == "" {
		label = id.Short()
	}
	if added {
		return p.Name + "'s new device " + label + " was linked on " + at + ". If this was not you, revoke it: postern device revoke " + label
	}
	return p.Name + "'s device " + label + " was revoked on " + at + "."
}

// deviceNoticeID names the notice of one change of one list version: the
// same on every device of the person, so each shows it once.
func deviceNoticeID(identity []byte, id keys.Fingerprint, version uint64, added bool) string {
	h := sha256.New()
	h.Write([]byte(noticeIDDeviceLabel))
	h.Write(identity)
	h.Write(id[:])
	h.Write([]byte{byte(version >> 56), byte(version >> 48), byte(version >> 40), byte(version >> 32), byte(version >> 24), byte(version >> 16), byte(version >> 8), byte(version)})
	if added {
		h.Write([]byte{1})
	} else {
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// nameSibling records the name of a device of this person (from a
// sibling), making a record for it if there is none: a device of the
// person's list without a route yet.
func (t *tx) nameSibling(self *store.Person, n deviceName, now time.Time) error {
	ds, err := t.DevicesOf(self.ID)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if bytes.Equal(d.DeviceID, n.ID[:]) {
			if d.OwnName == n.Name {
				return nil
			}
			d.OwnName = n.Name
			return t.PutDevice(d)
		}
	}
	l, err := people.Current(self)
	if err != nil || l == nil || !l.Contains(n.ID) {
		return err
	}
	return t.PutDevice(&store.Device{ID: store.NewID(), Person: self.ID, DeviceID: bytes.Clone(n.ID[:]), OwnName: n.Name, Added: now})
}

// receiveSentCopy stores a message a sibling (from) sent to a contact, as
// outgoing in the conversation with that contact. A copy from anyone but
// this person's devices, or to a person this device does not know, is
// dropped.
func (c *Client) receiveSentCopy(t *tx, from *contactRecord, ct *content, now time.Time, res *received) (error, error) {
	if !from.Person.Self || ct.Inner.Sender != ct.Sender {
		return ErrUnknownSender, nil
	}
	ps, err := t.Persons()
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(ps, func(p *store.Person) bool { return bytes.Equal(p.Identity, ct.CopyTo[:]) && !p.Self })
	if i < 0 {
		c.log.Info("a sibling's sent message to a person this device does not know was not stored")
		return nil, nil
	}
	to := &contactRecord{Person: ps[i]}
	in := ct.Inner
	var atts []attachmentRecord
	if in.Type == contentAttachment || in.Type == contentAttachmentHeaders {
		atts = attachmentRecords(in.Attachments)
	}
	m := &Message{
		ID: localMessageID(in.Sender, in.MsgID), From: Me, To: to.Person.Name, Text: in.Text,
		Time: time.UnixMilli(int64(min(in.SentMS, 1<<62))).UTC(), Received: now, Outgoing: true,
		Attachments: publicAttachments(atts), Subject: in.Subject, Urgent: in.Urgent, Expires: expiryOf(in, now),
	}
	if m.ReplyTo, err = t.replyIn(in, to.Person.ID); err != nil {
		return nil, err
	}
	if in.ForwardedFor != (keys.Fingerprint{}) {
		if m.ForwardedFor, err = c.nameOf(t, nil, in.ForwardedFor); err != nil {
			return nil, err
		}
	}
	if expiredOnArrival(m, now) {
		return nil, nil
	}
	stored, err := storeMessageRecord(t, to, m, atts)
	if err != nil {
		return nil, err
	}
	if stored {
		res.msgs = append(res.msgs, *m)
	}
	return nil, nil
}

// dropOutboxFor deletes what waits in the outbox for device record id (a
// revoked device gets nothing more); a message none of whose envelopes
// waits any longer is no longer queued.
func (t *tx) dropOutboxFor(id []byte) error {
	items, err := t.Outbox()
	if err != nil {
		return err
	}
	var msgs []string
	for _, it := range items {
		if !bytes.Equal(it.Device, id) {
			continue
		}
		if err := t.DeleteOutbox(it.Seq); err != nil {
			return err
		}
		if it.Message != "" {
			msgs = append(msgs, it.Message)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	rest, err := t.Outbox()
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if slices.ContainsFunc(rest, func(o store.OutboxItem) bool { return o.Message == m }) {
			continue
		}
		if _, err := t.UpdateMessage(m, func(r *messageRecord) { r.Queued = false }); err != nil {
			return err
		}
	}
	return nil
}

// replyIn is the reply-to of a received message content ct in the direct
// conversation with person, or "": it is kept only if it names a message
// of that conversation, since a reference to anything else would point
// the reader astray.
func (t *tx) replyIn(ct *content, person []byte) (string, error) {
	if !ct.HasReply {
		return "", nil
	}
	id := hex.EncodeToString(ct.ReplyTo[:])
	orig, err := t.MessageByID(id)
	if err != nil || orig == nil || !bytes.Equal(orig.Conversation, t.DirectConversationID(person)) {
		return "", err
	}
	return id, nil
}
