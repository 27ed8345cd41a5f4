package store

import (
	"bytes"
	"time"
)

// contactV2 is a contact record of schema 2 (and 1): one person with one
// device, in the bucket "contacts" keyed by a random 16-byte ID.
type contactV2 struct {
	ID            []byte    `json:"id"`
	Name          string    `json:"name"`
	Identity      []byte    `json:"identity"`
	Cert          []byte    `json:"cert"`
	Device        []byte    `json:"device"`
	SendMbx       []byte    `json:"send_mailbox"`
	SendCap       []byte    `json:"send_cap"`
	RecvMbx       []byte    `json:"recv_mailbox"`
	RecvCap       []byte    `json:"recv_cap"`
	Added         time.Time `json:"added"`
	Blocked       bool      `json:"blocked,omitempty"`
	Session       bool      `json:"session,omitempty"`
	ViaInvitation bool      `json:"via_invitation,omitempty"`
	Refused       bool      `json:"refused,omitempty"`
	NeedRoute     bool      `json:"need_route,omitempty"`
	RouteChosen   bool      `json:"route_chosen,omitempty"`
	PrevRecvMbx   []byte    `json:"prev_recv_mailbox,omitempty"`
	PrevRecvCap   []byte    `json:"prev_recv_cap,omitempty"`
	PrevRevokeDue bool      `json:"prev_revoke_due,omitempty"`
	PrevRevoked   bool      `json:"prev_revoked,omitempty"`
}

// messageV2 is the part of a schema 2 message record that changes: the
// contact it belongs to. Every other field is the same in schema 3.
type messageV2 struct {
	Contact []byte `json:"contact"`
}

// profileV2 is the part of the profile (meta, Kidx-index of "profile")
// the migration reads: this device and its relay.
type profileV2 struct {
	Name     string    `json:"name"`
	Relay    string    `json:"relay"`
	Identity []byte    `json:"identity"`
	Device   []byte    `json:"device"`
	Created  time.Time `json:"created"`
}

// bucketContactsV2 is schema 2's contacts bucket, gone in schema 3.
var bucketContactsV2 = []byte("contacts")

// migrate2to3 moves to the model of people, devices and conversations:
// this device becomes a device of a person marked Self; each contact
// becomes a person and one device (the device record keeps the contact
// record's ID, so the sessions, keyed by it, are the device's without
// being re-sealed: no ephemeral value changes and no epoch moves), with a
// direct conversation; each message gets the conversation of its contact
// and, if incoming, its sender device; the mailbox index is built from the
// devices' receiving routes; the contacts bucket is deleted.
func migrate2to3(t *Tx, _ *Record) error {
	var prof profileV2
	ok, err := t.Get(BucketMeta, t.Index(BucketMeta, []byte("profile")), &prof)
	if err != nil {
		return err
	}
	if ok && len(prof.Identity) > 0 {
		self := &Person{ID: NewID(), Identity: prof.Identity, Name: prof.Name, Self: true, Verification: Verified, Added: prof.Created}
		if err := t.PutPerson(self); err != nil {
			return err
		}
		dev := &Device{ID: NewID(), Person: self.ID, DeviceID: prof.Device, Relay: prof.Relay, Added: prof.Created}
		if err := t.PutDevice(dev); err != nil {
			return err
		}
	}
	var contacts []contactV2
	if b := t.bt.Bucket(bucketContactsV2); b != nil {
		err := t.Each(bucketContactsV2, func(k, v []byte) error {
			var c contactV2
			if err := Unmarshal(v, &c); err != nil {
				return err
			}
			if len(c.ID) != RecordIDSize || !bytes.Equal(c.ID, k) {
				return ErrCorrupt
			}
			contacts = append(contacts, c)
			return nil
		})
		if err != nil {
			return err
		}
	}
	// contact record ID -> (conversation ID, device record ID)
	convOf := make(map[string][]byte, len(contacts))
	for _, c := range contacts {
		p := &Person{ID: NewID(), Identity: c.Identity, Name: c.Name, Blocked: c.Blocked, Added: c.Added}
		if err := t.PutPerson(p); err != nil {
			return err
		}
		d := &Device{
			ID: c.ID, Person: p.ID, DeviceID: c.Device, Cert: c.Cert, Relay: prof.Relay, Added: c.Added,
			SendMbx: c.SendMbx, SendCap: c.SendCap, ViaInvitation: c.ViaInvitation, Refused: c.Refused,
			RecvMbx: c.RecvMbx, RecvCap: c.RecvCap, NeedRoute: c.NeedRoute, RouteChosen: c.RouteChosen,
			PrevRecvMbx: c.PrevRecvMbx, PrevRecvCap: c.PrevRecvCap, PrevRevokeDue: c.PrevRevokeDue, PrevRevoked: c.PrevRevoked,
			Session: c.Session,
		}
		if err := t.PutDevice(d); err != nil {
			return err
		}
		conv, err := t.DirectConversation(p.ID, c.Added)
		if err != nil {
			return err
		}
		convOf[string(c.ID)] = conv.ID
	}
	// Messages: rewritten in place, under the same keys (the message-ID
	// index stays valid).
	type kv struct{ k, v []byte }
	var msgs []kv
	err = t.Each(BucketMessages, func(k, v []byte) error {
		var old messageV2
		if err := Unmarshal(v, &old); err != nil {
			return err
		}
		var m Message
		if err := Unmarshal(v, &m); err != nil {
			return err
		}
		if conv, ok := convOf[string(old.Contact)]; ok {
			m.Conversation = conv
			if !m.Outgoing && !m.Notice {
				m.Sender = bytes.Clone(old.Contact)
			}
		}
		m.V = 1
		b, err := marshal(&m)
		if err != nil {
			return err
		}
		msgs = append(msgs, kv{bytes.Clone(k), b})
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := t.PutRaw(BucketMessages, m.k, m.v); err != nil {
			return err
		}
	}
	if t.bt.Bucket(bucketContactsV2) != nil {
		return t.bt.DeleteBucket(bucketContactsV2)
	}
	return nil
}
