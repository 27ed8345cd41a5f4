package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Identity changes (protocol/SPEC.md section 9 "Identity changes"). A
// contact who lost every device starts over with a new identity key. An
// invitation from the new identity under the name of the contact replaces
// the contact's identity only when the user says so (AcceptOptions.Replace):
// the person record stays (its name and conversation), its old devices are
// revoked (sessions deleted, the routes they wrote to deleted on the
// relay), and the person becomes Changed, with a notice in the
// conversation. Nothing is sealed for a Changed person's messages until the
// user compares the new safety number (VerifyContact).

const identityNoticeLabel = protocol.LabelPrefix + "identity-change-notice"

// ErrOtherIdentity: Accept under the name of a contact that has another
// identity key. Nothing was changed. If the contact started over with a new
// identity, accept with AcceptOptions.Replace and compare safety numbers.
// Errors matching it also match ErrContactExists.
var ErrOtherIdentity = errors.New("client: a contact of this name has another identity")

// otherIdentityError is ErrOtherIdentity naming the contact; rec is the
// contact a replacing Accept replaces.
type otherIdentityError struct {
	rec *contactRecord
}

func (e *otherIdentityError) Error() string {
	n := e.rec.Person.Name
	return "client: a contact named " + n + " with another identity exists; if " + n +
		" started over, accept replacing it and compare safety numbers"
}

func (e *otherIdentityError) Is(target error) bool {
	return target == ErrOtherIdentity || target == ErrContactExists
}

// IdentityChangedNotice is the text of the notice stored in the
// conversation with contact name when an accepted invitation replaced
// their identity key.
func IdentityChangedNotice(name string) string {
	return name + "'s safety number has changed: " + name + " may have reinstalled Postern, or someone may be impersonating " +
		name + ". Nothing is sent to " + name + " until you compare the new safety number: postern contacts verify " + name
}

// NameCollisionNotice is the text of the notice stored in the conversation
// with a new contact (named name) who introduced themselves with the name
// of the contact other, who has another identity key.
func NameCollisionNotice(name, other string) string {
	return name + " has the name of your contact " + other + " but another identity: if " + other +
		" started over, compare safety numbers before you trust it."
}

// contactToReplace is checkNewContact for an Accept that may replace: the
// contact named name when its identity is not id (nil when the name is
// free). A contact with identity id, or a blocked contact named name, is
// refused.
func contactToReplace(t *tx, name string, id keys.Fingerprint) (*contactRecord, error) {
	err := checkNewContact(t, name, id)
	var oe *otherIdentityError
	if !errors.As(err, &oe) {
		return nil, err
	}
	if oe.rec.Person.Blocked {
		// Blocking was about this person: unblocking is a decision of
		// its own, not a side effect of an invitation.
		return nil, fmt.Errorf("%w: unblock %s before replacing it", ErrContactBlocked, oe.rec.Person.Name)
	}
	return oe.rec, nil
}

// replaced is what replaceIdentity changed, to undo it when the
// introduction cannot be sent, and the routes to close after the commit.
type replaced struct {
	person   store.Person
	devices  []store.Device
	sessions map[string]*sessionRecord // by device record ID
	notice   *Message
	close    []protocol.MailboxID // mailboxes the old devices wrote to
}

// replaceIdentity gives old's person the identity, device and routes of
// rec (a new contact record made by Accept): the old devices are revoked
// and their sessions deleted, the mailboxes they wrote to leave the index
// at once (what still arrives there is dropped) and are listed to delete
// on the relay; the person becomes Changed, forgets the old identity's
// device list, and a notice is stored. rec is made a device of the person.
func (c *Client) replaceIdentity(t *tx, old *contactRecord, rec *contactRecord, now time.Time) (*replaced, error) {
	p, err := t.Person(old.Person.ID)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, ErrUnknownContact
	}
	rp := &replaced{person: *p, sessions: map[string]*sessionRecord{}}
	ds, err := t.DevicesOf(p.ID)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		rp.devices = append(rp.devices, *d)
		if t.Has(bucketSessions, d.ID) {
			s, err := t.sessionRecord(d.ID)
			if err != nil {
				return nil, err
			}
			rp.sessions[string(d.ID)] = s
		}
		for _, mb := range [][]byte{d.RecvMbx, d.PrevRecvMbx} {
			if len(mb) == len(protocol.MailboxID{}) {
				rp.close = append(rp.close, protocol.MailboxID(mb))
			}
		}
		d.Revoked = true
		d.RecvMbx, d.RecvCap, d.PrevRecvMbx, d.PrevRecvCap = nil, nil, nil, nil
		d.SendMbx, d.SendCap, d.HelloMbx = nil, nil, nil
		d.NeedRoute, d.PrevRevokeDue, d.Session = false, false, false
		if err := t.PutDevice(d); err != nil {
			return nil, err
		}
		if err := t.Delete(bucketSessions, d.ID); err != nil {
			return nil, err
		}
	}
	p.Identity = bytes.Clone(rec.Person.Identity)
	p.Verification = store.Changed
	p.DeviceList, p.DeviceListVersion = nil, 0
	if err := t.PutPerson(p); err != nil {
		return nil, err
	}
	rec.Person = p
	rec.Device.Person = p.ID
	if err := t.PutDevice(&rec.Device); err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write([]byte(identityNoticeLabel))
	h.Write(p.ID)
	h.Write(p.Identity)
	m := &Message{
		ID: hex.EncodeToString(h.Sum(nil)[:8]), From: p.Name, To: Me, Time: now, Received: now, Notice: true,
		Text: IdentityChangedNotice(p.Name),
	}
	stored, err := storeMessage(t, rec, m)
	if err != nil {
		return nil, err
	}
	if stored {
		rp.notice = m
	}
	return rp, nil
}

// undoReplace puts back what replaceIdentity changed (the introduction
// could not be sent): the old person, devices and sessions; rec's device
// and the notice are deleted.
func (c *Client) undoReplace(rp *replaced, rec *contactRecord) error {
	return c.st.update(func(t *tx) error {
		if err := t.DeleteDevice(rec.ID); err != nil {
			return err
		}
		for i := range rp.devices {
			if err := t.PutDevice(&rp.devices[i]); err != nil {
				return err
			}
			if s := rp.sessions[string(rp.devices[i].ID)]; s != nil {
				if err := t.putSessionRecord(rp.devices[i].ID, s); err != nil {
					return err
				}
			}
		}
		if err := t.PutPerson(&rp.person); err != nil {
			return err
		}
		if rp.notice != nil {
			return t.DeleteMessage(rp.notice.ID)
		}
		return nil
	})
}

// identityReplaced finishes a replacing Accept once the introduction went
// out: the notice and EventContact (ContactIdentityChanged) are emitted,
// the person's device list is checked again at the next send, and the
// mailboxes the old devices wrote to are deleted on the relay (failures
// are logged: nothing reads them any more).
func (c *Client) identityReplaced(ctx context.Context, rp *replaced, name string) {
	c.lists.forget(rp.person.ID)
	c.ev.order.Lock()
	if rp.notice != nil {
		c.queue([]Message{*rp.notice})
	}
	c.contactChanged(name, ContactIdentityChanged)
	c.ev.order.Unlock()
	c.log.Info("a contact's identity was replaced; nothing is sent until it is verified")
	if len(rp.close) == 0 {
		return
	}
	cn, err := c.authConn(ctx)
	if err != nil {
		c.log.Warn("could not close the routes of a replaced identity's devices", "err", err)
		return
	}
	for _, mb := range rp.close {
		if err := c.deleteRoute(ctx, cn, mb); err != nil {
			c.log.Warn("could not delete a replaced device's route", "err", err)
		}
	}
}

// nameCollision stores, in the conversation with rec (a new contact made
// from an introduction), NameCollisionNotice when the name its sender
// gave (introduced) is the name of another contact of cs. The inviter
// does not replace: the introducer chose that name, not the user.
func nameCollision(t *tx, cs []*contactRecord, rec *contactRecord, introduced string, now time.Time, res *received) error {
	if rec.Person.Name == introduced {
		return nil
	}
	i := slices.IndexFunc(cs, func(r *contactRecord) bool { return r.Person.Name == introduced })
	if i < 0 {
		return nil
	}
	h := sha256.New()
	h.Write([]byte(identityNoticeLabel))
	h.Write([]byte("name"))
	h.Write(rec.Person.ID)
	m := &Message{
		ID: hex.EncodeToString(h.Sum(nil)[:8]), From: rec.Person.Name, To: Me, Time: now, Received: now, Notice: true,
		Text: NameCollisionNotice(rec.Person.Name, cs[i].Person.Name),
	}
	stored, err := storeMessage(t, rec, m)
	if err == nil && stored {
		res.msgs = append(res.msgs, *m)
	}
	return err
}
