package store

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"time"
)

// The model (schema 3 and 4, protocol/SPEC.md section 9 "Local state"): a
// person has devices; each device has its certificate, its relay, the
// route this device writes to it and the route it writes to us; messages
// belong to conversations. Every record is JSON sealed under the store key
// (a local format, not wire); records are keyed by random 16-byte IDs,
// except a direct conversation, whose ID is the keyed index of its person
// (one lookup, no scan), and a message, keyed by insertion sequence.

// RecordIDSize is the size of the random ID of a person, device or
// conversation record.
const RecordIDSize = 16

// NewID returns a random record ID.
func NewID() []byte {
	b := make([]byte, RecordIDSize)
	rand.Read(b)
	return b
}

// Verification is what the user knows of a person's identity key.
type Verification int

const (
	// Unverified: the key came with an invitation or an introduction and
	// its safety number was not compared.
	Unverified Verification = 0
	// Verified: the user compared the safety number.
	Verified Verification = 1
	// Changed: the person's identity key changed since it was verified or
	// first seen; nothing is sent until the user confirms.
	Changed Verification = 2
)

// Person is someone this device knows: a contact, or (Self) the person
// this device belongs to.
type Person struct {
	V  int    `json:"v"`
	ID []byte `json:"id"` // random, the record key
	// Identity is the fingerprint of the person's identity key.
	Identity     []byte       `json:"identity"`
	Name         string       `json:"name"` // chosen by this device's user; unique among contacts
	Verification Verification `json:"verification,omitempty"`
	// DeviceList is the newest verified signed device list of the person
	// (keys.ParseDeviceList), DeviceListVersion its version; empty until
	// device lists are published.
	DeviceList        []byte `json:"device_list,omitempty"`
	DeviceListVersion uint64 `json:"device_list_version,omitempty"`
	Blocked           bool   `json:"blocked,omitempty"`
	Self              bool   `json:"self,omitempty"` // this device's own person
	// Restricted: the person's relay refused this device's sends with a
	// restriction (client.Restriction, at RestrictedAt); sends stay
	// refused here until the user opts in again (OptedIn, with the terms
	// version OptInTerms). RestrictedByMe: this device restricted them.
	Restricted     uint8     `json:"restricted,omitempty"`
	RestrictedAt   time.Time `json:"restricted_at,omitzero"`
	OptedIn        time.Time `json:"opted_in,omitzero"`
	OptInTerms     string    `json:"opt_in_terms,omitempty"`
	RestrictedByMe uint8     `json:"restricted_by_me,omitempty"`
	// RestrictedOnReply: the refusal came on a team's reply route
	// (client/teamroutes.go): a replies restriction then covers that
	// route only.
	RestrictedOnReply bool `json:"restricted_on_reply,omitempty"`
	// ViaGroup: known only as a member of a group this person is in (a
	// group introduction, SPEC 15.10), not a contact: not listed among
	// the contacts and not written to outside the group until the user
	// makes them one.
	ViaGroup bool `json:"via_group,omitempty"`
	// Team: the person said it is a team (a team notice, protocol/SPEC.md
	// section 15.9 "The outsider's side"), nil if it never did.
	Team  *TeamNotice `json:"team,omitempty"`
	Added time.Time   `json:"added"`
}

// TeamNotice is the newest team notice a contact sent (client
// teamnotice.go). A field added without a schema change: a store written
// by a version that does not know it reads as "not a team" there.
type TeamNotice struct {
	Version uint32    `json:"version"`
	Name    string    `json:"name"`
	Sent    uint64    `json:"sent"` // the notice's sent time (ms, the team's clock)
	At      time.Time `json:"at"`   // when this device took it
	// Windows, if set: the team's response windows as it stated them.
	Windows *TeamWindows `json:"windows,omitempty"`
}

// TeamWindows are a team's response windows as plain figures.
type TeamWindows struct {
	BusinessDays    int    `json:"business_days,omitempty"`    // n business days, or
	BusinessMinutes int    `json:"business_minutes,omitempty"` // business time in minutes
	Days            uint8  `json:"days"`                       // bit d: time.Weekday d is a business day
	Open            int    `json:"open"`                       // minutes after midnight
	Close           int    `json:"close"`                      // minutes after midnight, up to 1440
	Zone            string `json:"zone"`
	UrgentMinutes   int    `json:"urgent_minutes"`
}

// Device is one device of a person: for a contact's device, the routes
// between it and this device; for a device of Self, its own name.
type Device struct {
	V      int    `json:"v"`
	ID     []byte `json:"id"` // random, the record key; sessions are keyed by it
	Person []byte `json:"person"`
	// DeviceID is the device's ID (keys.DeviceCertificate.DeviceID), Cert
	// its certificate, Relay the URL of the relay it receives on.
	DeviceID []byte    `json:"device"`
	Cert     []byte    `json:"cert,omitempty"`
	Relay    string    `json:"relay,omitempty"`
	OwnName  string    `json:"own_name,omitempty"` // a device of Self: its name (OFFICE-PC)
	Revoked  bool      `json:"revoked,omitempty"`
	Added    time.Time `json:"added"`

	// Our route to it: the mailbox of the device's we write to, with its
	// send capability. ViaInvitation: it came from the device's invitation
	// and is replaced by the route the device gives us. Refused: the
	// device answered our introduction with a refusal; nothing is sent.
	SendMbx       []byte `json:"send_mailbox,omitempty"`
	SendCap       []byte `json:"send_cap,omitempty"`
	ViaInvitation bool   `json:"via_invitation,omitempty"`
	Refused       bool   `json:"refused,omitempty"`

	// Its route to us: our mailbox it writes to, and the capability it
	// uses. NeedRoute: it writes with a capability that was in an
	// invitation and must be given a fresh one (RouteChosen: chosen, in
	// RecvMbx/RecvCap, the old one in PrevRecv*). The previous route is
	// still read; PrevRevokeDue once the device wrote to the new one,
	// PrevRevoked once its capability is revoked on the relay.
	RecvMbx       []byte `json:"recv_mailbox,omitempty"`
	RecvCap       []byte `json:"recv_cap,omitempty"`
	NeedRoute     bool   `json:"need_route,omitempty"`
	RouteChosen   bool   `json:"route_chosen,omitempty"`
	PrevRecvMbx   []byte `json:"prev_recv_mailbox,omitempty"`
	PrevRecvCap   []byte `json:"prev_recv_cap,omitempty"`
	PrevRevokeDue bool   `json:"prev_revoke_due,omitempty"`
	PrevRevoked   bool   `json:"prev_revoked,omitempty"`

	// Session: a session with this device opened a message once, so that
	// having none now means it was lost.
	Session bool `json:"session,omitempty"`

	// Borrowed: SendMbx/SendCap are a route of a sibling of this device's
	// (from a link response or a backup), used only to introduce this
	// device to it (a hello) until it gives this device a route of its
	// own. HelloMbx: a device of a contact that introduced itself on the
	// route of one of its siblings, the mailbox that was: its messages
	// there, until it writes to a route of its own, are read with its
	// session (not the sibling's the mailbox index names).
	Borrowed bool   `json:"borrowed,omitempty"`
	HelloMbx []byte `json:"hello_mailbox,omitempty"`

	// Reply routes of a team (client/teamroutes.go). On a team's intake,
	// ReplyRecvMbx/ReplyRecvCap: the second mailbox of ours an outsider's
	// device writes to while its conversation is answered. On the
	// outsider's device, ReplySendMbx/ReplySendCap: the team's reply
	// route this device writes to instead of SendMbx while it holds one.
	ReplyRecvMbx []byte `json:"reply_recv_mailbox,omitempty"`
	ReplyRecvCap []byte `json:"reply_recv_cap,omitempty"`
	ReplySendMbx []byte `json:"reply_send_mailbox,omitempty"`
	ReplySendCap []byte `json:"reply_send_cap,omitempty"`
}

// receiveMailboxes are the mailboxes of ours the device writes to.
func (d *Device) receiveMailboxes() [][]byte {
	var out [][]byte
	for _, mb := range [][]byte{d.RecvMbx, d.PrevRecvMbx, d.ReplyRecvMbx} {
		if len(mb) > 0 {
			out = append(out, mb)
		}
	}
	return out
}

// ConversationType is the kind of a conversation.
type ConversationType int

const (
	// Direct is a conversation with one other person.
	Direct ConversationType = 1
	// Group is a group's conversation (group.go): its ID is the group's
	// index (GroupConversationID), its record in BucketGroups.
	Group ConversationType = 2
	// TeamQueue is a team queue's conversation with one outsider, on a
	// staff device (schema 7, team.go): its ID is QueueConversationID, its
	// record in BucketQueues, its title the outsider's name.
	TeamQueue ConversationType = 3
)

// Conversation is what messages belong to.
type Conversation struct {
	V       int              `json:"v"`
	ID      []byte           `json:"id"`
	Type    ConversationType `json:"type"`
	Person  []byte           `json:"person,omitempty"` // Direct: the other person
	Title   string           `json:"title,omitempty"`
	Created time.Time        `json:"created"`
	// Disappear is the conversation's disappearing-message timer in
	// seconds (0: off), set by the change stamped DisappearStamp
	// (client/disappear.go).
	Disappear      uint32 `json:"disappear,omitempty"`
	DisappearStamp Stamp  `json:"disappear_stamp,omitzero"`
	// Patient is the conversation's patient context (client/patient.go),
	// set by the change stamped PatientStamp; nil: none, or cleared.
	Patient      *PatientRef `json:"patient,omitempty"`
	PatientStamp Stamp       `json:"patient_stamp,omitzero"`
}

// PatientRef is a conversation's patient context: FHIR identifiers of the
// Patient and, if set, the Encounter, each written "system|value".
type PatientRef struct {
	Patient   string `json:"patient"`
	Encounter string `json:"encounter,omitempty"`
}

// check refuses a conversation this version cannot handle.
func (c *Conversation) check() error {
	switch c.Type {
	case Direct:
		if len(c.Person) != RecordIDSize {
			return ErrCorrupt
		}
		return nil
	case Group:
		if len(c.Person) != 0 || len(c.ID) != RecordIDSize {
			return ErrCorrupt
		}
		return nil
	case TeamQueue:
		if len(c.Person) != 0 || len(c.ID) != RecordIDSize {
			return ErrCorrupt
		}
		return nil
	}
	return fmt.Errorf("store: conversation of unknown type %d: %w", c.Type, ErrCorrupt)
}

// Attachment is a file attached to a message, with its key.
type Attachment struct {
	Blob       []byte `json:"blob"`
	Key        []byte `json:"key"`
	Digest     []byte `json:"digest"`
	PlainSize  uint64 `json:"size"`
	CipherSize uint64 `json:"cipher_size"`
	Name       string `json:"name"`
	MediaType  string `json:"type,omitempty"`
	// Token is the upload token of a blob this device uploaded for a
	// disappearing message: what deletes the blob on the relay when the
	// message expires (client/disappear.go). Empty otherwise.
	Token []byte `json:"token,omitempty"`
}

// Message is a stored message, incoming or outgoing, or a notice.
type Message struct {
	V            int    `json:"v"`
	ID           string `json:"id"`
	Conversation []byte `json:"conversation,omitempty"`
	// Sender is the device record of an incoming message's sender (nil
	// for this device's own messages and for notices).
	Sender   []byte    `json:"sender,omitempty"`
	From     string    `json:"from"`
	To       string    `json:"to"`
	Text     string    `json:"text"`
	Subject  string    `json:"subject,omitempty"`
	ReplyTo  string    `json:"reply_to,omitempty"` // a message ID in the same conversation
	Urgent   bool      `json:"urgent,omitempty"`   // marked urgent by its sender
	Time     time.Time `json:"time"`
	Received time.Time `json:"received"`
	Outgoing bool      `json:"outgoing,omitempty"`
	Notice   bool      `json:"notice,omitempty"`   // a notice from this client, not a message
	Mailbox  []byte    `json:"mailbox,omitempty"`  // incoming: where it arrived
	Envelope []byte    `json:"envelope,omitempty"` // incoming: relay envelope ID
	// Attachments of a message with files, with their keys.
	Attachments []Attachment `json:"attachments,omitempty"`
	// Queued: an outgoing message whose envelope waits in the outbox.
	Queued bool `json:"queued,omitempty"`
	// SendError: why an outgoing message left the outbox unsent.
	SendError string `json:"send_error,omitempty"`

	// Folder is the message's folder: "" its default one (Inbox for an
	// incoming message, Sent for an outgoing one), "archive", or the ID
	// (32 hex digits) of a folder of the user's own; FolderStamp the
	// stamp of the move that put it there (inbox.go).
	Folder      string `json:"folder,omitempty"`
	FolderStamp Stamp  `json:"folder_stamp,omitzero"`
	// Read: an incoming message this person read (on any of its
	// devices), first at ReadAt.
	Read   bool      `json:"read,omitempty"`
	ReadAt time.Time `json:"read_at,omitzero"`
	// Receipts (protocol/SPEC.md section 9 "Receipts"). ContentID: an
	// incoming message's content message ID (16 bytes, the sender's),
	// which a read receipt names. Delivered, ReadReceipt: when an
	// outgoing message was first reported delivered and read by a device
	// of its recipient; later receipts do not move them.
	ContentID   []byte    `json:"content_id,omitempty"`
	Delivered   time.Time `json:"delivered,omitzero"`
	ReadReceipt time.Time `json:"read_receipt,omitzero"`
	// ReadBy: an outsider's message in a queue conversation, the staff
	// members whom queue receipts (protocol/SPEC.md section 15.9 "Queue
	// receipts") report read it, each once, first first.
	ReadBy []ReadBy `json:"read_by,omitempty"`
	// Expires: a disappearing message is deleted, with its attachments,
	// at this time (client/disappear.go); zero for every other message.
	Expires time.Time `json:"expires,omitzero"`
	// Recalled: the message was deleted for everyone by its sender at
	// this time (client/recall.go); RecalledBy names who ("me" or the
	// contact). Its text, subject and attachments are gone.
	Recalled   time.Time `json:"recalled,omitzero"`
	RecalledBy string    `json:"recalled_by,omitempty"`
	// Forwarding by availability status (client/status.go): an outgoing
	// message a colleague also received (ForwardedTo, ForwardReason), or
	// that went to its recipient only because the colleague their status
	// names cannot be reached (NotForwarded); ForwardedFor: a copy
	// forwarded for that person.
	ForwardedTo   string `json:"forwarded_to,omitempty"`
	ForwardReason string `json:"forward_reason,omitempty"`
	NotForwarded  string `json:"not_forwarded,omitempty"`
	ForwardedFor  string `json:"forwarded_for,omitempty"`
	// Staff is, on a team's intake, the identity fingerprint of the staff
	// member who wrote an outgoing message it forwarded (a staff reply);
	// nil for the team person's own.
	Staff []byte `json:"staff,omitempty"`
}

// ReadBy is one staff member's read of a queue message: their identity
// fingerprint and when they read it.
type ReadBy struct {
	Identity []byte    `json:"identity"`
	At       time.Time `json:"at"`
}

// ---- persons ----

// Person returns the person record id, or nil if there is none.
func (t *Tx) Person(id []byte) (*Person, error) {
	var p Person
	ok, err := t.Get(BucketPersons, id, &p)
	if err != nil || !ok {
		return nil, err
	}
	if !bytes.Equal(p.ID, id) {
		return nil, ErrCorrupt
	}
	return &p, nil
}

// PutPerson stores p under its ID.
func (t *Tx) PutPerson(p *Person) error {
	if len(p.ID) != RecordIDSize {
		return fmt.Errorf("store: person record ID of %d bytes", len(p.ID))
	}
	p.V = 1
	return t.Put(BucketPersons, p.ID, p)
}

// Persons returns every person record, in key order.
func (t *Tx) Persons() ([]*Person, error) {
	var out []*Person
	err := t.Each(BucketPersons, func(_, v []byte) error {
		p := new(Person)
		if err := Unmarshal(v, p); err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// DeletePerson deletes person id with its devices (and their mailbox
// index entries and sessions) and its direct conversation record.
// Messages are kept.
func (t *Tx) DeletePerson(id []byte) error {
	ds, err := t.DevicesOf(id)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if err := t.DeleteDevice(d.ID); err != nil {
			return err
		}
	}
	if err := t.Delete(BucketConversations, t.DirectConversationID(id)); err != nil {
		return err
	}
	return t.Delete(BucketPersons, id)
}

// ---- devices and the mailbox index ----

// Device returns the device record id, or nil if there is none.
func (t *Tx) Device(id []byte) (*Device, error) {
	var d Device
	ok, err := t.Get(BucketDevices, id, &d)
	if err != nil || !ok {
		return nil, err
	}
	if !bytes.Equal(d.ID, id) {
		return nil, ErrCorrupt
	}
	return &d, nil
}

// Devices returns every device record, in key order.
func (t *Tx) Devices() ([]*Device, error) {
	var out []*Device
	err := t.Each(BucketDevices, func(_, v []byte) error {
		d := new(Device)
		if err := Unmarshal(v, d); err != nil {
			return err
		}
		out = append(out, d)
		return nil
	})
	return out, err
}

// DevicesOf returns the device records of person, in key order (the order
// of Devices): the index entries under person's prefix, each record
// opened. An entry whose record is gone or belongs to another person is
// ErrCorrupt, as a mailbox index entry naming a device that is gone is:
// the index is written only with the records, in their transactions.
func (t *Tx) DevicesOf(person []byte) ([]*Device, error) {
	b := t.bt.Bucket(BucketPersonDevices)
	if b == nil {
		return nil, nil
	}
	prefix := t.personDevicesPrefix(person)
	var ids [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) != len(prefix)+RecordIDSize {
			return nil, fmt.Errorf("store: a person's device index entry of %d bytes: %w", len(k), ErrCorrupt)
		}
		ids = append(ids, bytes.Clone(k[len(prefix):]))
	}
	var out []*Device
	for _, id := range ids {
		d, err := t.Device(id)
		if err != nil {
			return nil, err
		}
		if d == nil || !bytes.Equal(d.Person, person) {
			return nil, fmt.Errorf("store: the person's device index names a device that is gone: %w", ErrCorrupt)
		}
		out = append(out, d)
	}
	return out, nil
}

// PutDevice stores d under its ID and keeps the mailbox index in step:
// each of its receiving mailboxes (route and previous route) names it,
// and a mailbox it no longer receives on no longer does. A mailbox that
// the index gives to another device is refused: one mailbox, one device.
// The person -> devices index (persondevices.go) follows d's person.
func (t *Tx) PutDevice(d *Device) error {
	if len(d.ID) != RecordIDSize {
		return fmt.Errorf("store: device record ID of %d bytes", len(d.ID))
	}
	old, err := t.Device(d.ID)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, mb := range d.receiveMailboxes() {
		keep[string(mb)] = true
		owner, err := t.mailboxOwner(mb)
		if err != nil {
			return err
		}
		switch {
		case owner == nil:
			if err := t.PutRaw(BucketMailboxIndex, t.Index(BucketMailboxIndex, mb), d.ID); err != nil {
				return err
			}
		case !bytes.Equal(owner, d.ID):
			return fmt.Errorf("store: a mailbox of another device: %w", ErrCorrupt)
		}
	}
	if old != nil {
		for _, mb := range old.receiveMailboxes() {
			if !keep[string(mb)] {
				if err := t.Delete(BucketMailboxIndex, t.Index(BucketMailboxIndex, mb)); err != nil {
					return err
				}
			}
		}
		// A device moved to another person leaves the old person's index.
		if !bytes.Equal(old.Person, d.Person) {
			if err := t.deletePersonDevice(old); err != nil {
				return err
			}
		}
	}
	if !t.Has(BucketPersonDevices, t.personDeviceKey(d.Person, d.ID)) {
		if err := t.putPersonDevice(d); err != nil {
			return err
		}
	}
	d.V = 1
	return t.Put(BucketDevices, d.ID, d)
}

// DeleteDevice deletes device record id, its mailbox index entries, its
// person -> devices index entry and its session.
func (t *Tx) DeleteDevice(id []byte) error {
	d, err := t.Device(id)
	if err != nil || d == nil {
		return err
	}
	for _, mb := range d.receiveMailboxes() {
		if err := t.Delete(BucketMailboxIndex, t.Index(BucketMailboxIndex, mb)); err != nil {
			return err
		}
	}
	if err := t.deletePersonDevice(d); err != nil {
		return err
	}
	if err := t.Delete(BucketSessions, id); err != nil {
		return err
	}
	return t.Delete(BucketDevices, id)
}

func (t *Tx) mailboxOwner(mb []byte) ([]byte, error) {
	id, err := t.GetRaw(BucketMailboxIndex, t.Index(BucketMailboxIndex, mb))
	if err != nil || id == nil {
		return nil, err
	}
	if len(id) != RecordIDSize {
		return nil, ErrCorrupt
	}
	return id, nil
}

// DeviceByMailbox returns the device that writes to our mailbox mb (its
// route or its previous one), or nil if none does: one index lookup.
func (t *Tx) DeviceByMailbox(mb []byte) (*Device, error) {
	id, err := t.mailboxOwner(mb)
	if err != nil || id == nil {
		return nil, err
	}
	d, err := t.Device(id)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, fmt.Errorf("store: the mailbox index names a device that is gone: %w", ErrCorrupt)
	}
	return d, nil
}

// ---- conversations ----

// DirectConversationID is the ID of the direct conversation with person:
// Kidx-index of ("direct", person ID), so that it is found in one lookup.
func (t *Tx) DirectConversationID(person []byte) []byte {
	return t.Index(BucketConversations, []byte("direct"), person)
}

// Conversation returns conversation id, nil if there is none.
func (t *Tx) Conversation(id []byte) (*Conversation, error) {
	var c Conversation
	ok, err := t.Get(BucketConversations, id, &c)
	if err != nil || !ok {
		return nil, err
	}
	if !bytes.Equal(c.ID, id) {
		return nil, ErrCorrupt
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return &c, nil
}

// PutConversation stores c under its ID; a team queue's is refused
// (ErrConversationType): it is stored with its queue record (PutQueue).
func (t *Tx) PutConversation(c *Conversation) error {
	if err := c.check(); err != nil {
		return err
	}
	if c.Type == TeamQueue {
		return fmt.Errorf("%w (type %d)", ErrConversationType, c.Type)
	}
	if c.Type == Direct && !bytes.Equal(c.ID, t.DirectConversationID(c.Person)) {
		return fmt.Errorf("store: a direct conversation's ID is its person's index: %w", ErrCorrupt)
	}
	c.V = 1
	return t.Put(BucketConversations, c.ID, c)
}

// DirectConversation returns the direct conversation with person, made
// (at now) if there is none.
func (t *Tx) DirectConversation(person []byte, now time.Time) (*Conversation, error) {
	id := t.DirectConversationID(person)
	c, err := t.Conversation(id)
	if err != nil || c != nil {
		return c, err
	}
	c = &Conversation{ID: id, Type: Direct, Person: bytes.Clone(person), Created: now}
	return c, t.PutConversation(c)
}

// ---- messages ----

// AddMessage stores m unless a message with its ID is stored already, and
// reports whether it stored. Messages keep the order they were stored in.
func (t *Tx) AddMessage(m *Message) (bool, error) {
	idx := t.Index(BucketMessageIDs, []byte(m.ID))
	if t.Has(BucketMessageIDs, idx) {
		return false, nil
	}
	seq, err := t.NextSequence(BucketMessages)
	if err != nil {
		return false, err
	}
	key := messageKey(seq)
	// A move or read state from another device of this person that came
	// before the message (inbox.go).
	pidx := t.Index(BucketPlacements, []byte(m.ID))
	if t.Has(BucketPlacements, pidx) {
		p, err := t.Placement(m.ID)
		if err != nil {
			return false, err
		}
		p.Apply(m)
		if err := t.Delete(BucketPlacements, pidx); err != nil {
			return false, err
		}
	}
	// Counted before it is stored: a store without counts yet counts
	// its messages first (counts.go).
	if err := t.recount(nil, m); err != nil {
		return false, err
	}
	m.V = 1
	if err := t.Put(BucketMessages, key, m); err != nil {
		return false, err
	}
	return true, t.PutRaw(BucketMessageIDs, idx, key)
}

// MessageByID returns the message with ID id, or nil if there is none.
func (t *Tx) MessageByID(id string) (*Message, error) {
	key, err := t.GetRaw(BucketMessageIDs, t.Index(BucketMessageIDs, []byte(id)))
	if err != nil || key == nil {
		return nil, err
	}
	var m Message
	ok, err := t.Get(BucketMessages, key, &m)
	if err != nil {
		return nil, err
	}
	if !ok || m.ID != id {
		return nil, fmt.Errorf("store: the message index names a message that is gone: %w", ErrCorrupt)
	}
	return &m, nil
}

// Messages calls fn with every message in the order they were stored;
// fn returning ErrStop ends the walk.
func (t *Tx) Messages(fn func(*Message) error) error {
	return t.Each(BucketMessages, func(_, v []byte) error {
		m := new(Message)
		if err := Unmarshal(v, m); err != nil {
			return err
		}
		return fn(m)
	})
}

// UpdateMessage applies fn to the stored message with ID id and stores it
// again under the same key; it reports whether there was one.
func (t *Tx) UpdateMessage(id string, fn func(*Message)) (bool, error) {
	key, err := t.GetRaw(BucketMessageIDs, t.Index(BucketMessageIDs, []byte(id)))
	if err != nil || key == nil {
		return false, err
	}
	var m Message
	ok, err := t.Get(BucketMessages, key, &m)
	if err != nil {
		return false, err
	}
	if !ok || m.ID != id {
		return false, fmt.Errorf("store: the message index names a message that is gone: %w", ErrCorrupt)
	}
	old := m
	fn(&m)
	if err := t.recount(&old, &m); err != nil {
		return false, err
	}
	m.V = 1
	return true, t.Put(BucketMessages, key, &m)
}

// DeleteMessage deletes the message with ID id (an outgoing message that
// was never sent), if there is one.
func (t *Tx) DeleteMessage(id string) error {
	idx := t.Index(BucketMessageIDs, []byte(id))
	key, err := t.GetRaw(BucketMessageIDs, idx)
	if err != nil || key == nil {
		return err
	}
	var m Message
	ok, err := t.Get(BucketMessages, key, &m)
	if err != nil {
		return err
	}
	if ok {
		if err := t.recount(&m, nil); err != nil {
			return err
		}
	}
	if err := t.Delete(BucketMessages, key); err != nil {
		return err
	}
	return t.Delete(BucketMessageIDs, idx)
}
