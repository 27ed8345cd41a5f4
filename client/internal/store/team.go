package store

import (
	"bytes"
	"fmt"
	"time"
)

// TeamRecord is this device's record of a team (client team.go;
// protocol/SPEC.md section 15.9), in BucketTeams under the staff group's
// conversation ID. It is SECRET: the claim space's capabilities, the
// claim key and the team keys.
type TeamRecord struct {
	V  int    `json:"v"`
	ID []byte `json:"id"` // the staff group's conversation ID, GroupConversationID(Group)
	// Group is the staff group's 16-byte ID, Name the team's name.
	Group []byte `json:"group"`
	Name  string `json:"name"`
	// Intake: this device is the team's intake (its person is the team).
	Intake bool `json:"intake,omitempty"`
	// IntakeIdentity is the team person's identity fingerprint.
	IntakeIdentity []byte `json:"intake_identity"`
	// Relay, Space, WriteCap: the claim space and its write capability;
	// SpaceAdmin its admin capability (the intake only).
	Relay      string `json:"relay"`
	Space      []byte `json:"space"`
	WriteCap   []byte `json:"write_cap"`
	SpaceAdmin []byte `json:"space_admin,omitempty"`
	// ClaimKey and Keys: the claim key and every team key epoch held.
	ClaimKey []byte    `json:"claim_key"`
	Keys     []TeamKey `json:"keys"`
	// Secrets counts the secrets this device accepted (staff) or sent
	// (intake): a staff device takes only a higher count.
	Secrets uint64 `json:"secrets"`
	// Outgoing is what the intake still has to send: patients' messages
	// to forward into the staff group, staff replies to forward to the
	// patient, reopens to write.
	Outgoing []TeamOutgoing `json:"outgoing,omitempty"`
	// The intake's team notice (client teamnotice.go): NoticeVersion the
	// version of what it says now (0 reads as 1, no windows), Windows the
	// response windows the agent last ran with, NoticeDue set while some
	// outsider may hold an older version than NoticeVersion.
	NoticeVersion uint32       `json:"notice_version,omitempty"`
	Windows       *TeamWindows `json:"windows,omitempty"`
	NoticeDue     bool         `json:"notice_due,omitempty"`
	// History is the staff devices the intake still owes the team's open
	// conversations (queue history): each newly joined staff device, kept
	// until the history went into its session.
	History []TeamHistory `json:"history,omitempty"`
	Created time.Time     `json:"created"`
	// StaffLogCap is the capability that publishes the staff list's
	// leaves (SPEC.md 15.9), StaffLogged and StaffLogHash the version
	// and hash last published: the intake only. The capability never
	// leaves this record but on the intake's authenticated connection.
	StaffLogCap  []byte `json:"staff_log_cap,omitempty"`
	StaffLogged  uint64 `json:"staff_logged,omitempty"`
	StaffLogHash []byte `json:"staff_log_hash,omitempty"`
	// RotateOwed: the intake owes the team a new claim space write
	// capability and team key epoch (a staff device or member was
	// dropped from the staff group). Set in the transaction that keeps
	// the state dropping it, cleared in the one that keeps the new
	// secrets once the relay took the capability (client teamrotate.go).
	// NextWrite and NextKey are the replacement prepared for it: a
	// retry after a replacement whose answer was lost sets the same
	// capability again.
	RotateOwed bool     `json:"rotate_owed,omitempty"`
	NextWrite  []byte   `json:"next_write,omitempty"`
	NextKey    *TeamKey `json:"next_key,omitempty"`
}

// TeamHistory is one staff device owed the queue history: its device ID
// and its person's identity fingerprint; Tries counts failed sends.
type TeamHistory struct {
	Device   []byte `json:"device"`
	Identity []byte `json:"identity"`
	Tries    int    `json:"tries,omitempty"`
}

// TeamKey is one epoch of a team key.
type TeamKey struct {
	Epoch uint32 `json:"epoch"`
	Key   []byte `json:"key"`
}

// TeamOutgoing is one thing the intake has to send after the receive
// that decided it committed. Kind is the client's; Content an encoded
// content; Conversation the queue conversation; Person the outsider's
// person record ID.
type TeamOutgoing struct {
	Kind         int    `json:"kind"`
	Conversation []byte `json:"conversation"`
	Person       []byte `json:"person,omitempty"`
	Content      []byte `json:"content,omitempty"`
	Sent         uint64 `json:"sent,omitempty"`
	Urgent       bool   `json:"urgent,omitempty"`
	// Device is, for a read receipt to the outsider, the device record
	// of the outsider's device that sent the messages (Content: their
	// content message IDs, 16 bytes each).
	Device []byte `json:"device,omitempty"`
	// Actor is the identity of the staff member whose request it is
	// (block, unblock), for the team log; or who wrote a staff reply, for
	// the queue history.
	Actor []byte `json:"actor,omitempty"`
}

// MaxQueueSenders bounds QueueRecord.Senders: beyond it the oldest goes.
const MaxQueueSenders = 16

// MaxTeamOutgoing bounds what waits in a team record: beyond it the
// oldest goes (the client logs it).
const MaxTeamOutgoing = 1024

// MaxTeamHistory bounds the staff devices waiting for the queue history:
// every device a staff group can list (200 people, 8 devices each).
const MaxTeamHistory = 1600

// Team returns the team record of the staff group conversation id, or
// nil.
func (t *Tx) Team(id []byte) (*TeamRecord, error) {
	var r TeamRecord
	ok, err := t.Get(BucketTeams, id, &r)
	if err != nil || !ok {
		return nil, err
	}
	if !bytes.Equal(r.ID, id) {
		return nil, ErrCorrupt
	}
	return &r, nil
}

// PutTeam stores r under its ID, which must be its staff group's
// conversation ID.
func (t *Tx) PutTeam(r *TeamRecord) error {
	if len(r.Group) != 16 || !bytes.Equal(r.ID, t.GroupConversationID(r.Group)) {
		return fmt.Errorf("store: a team's record ID is its staff group's conversation: %w", ErrCorrupt)
	}
	if len(r.Outgoing) > MaxTeamOutgoing {
		r.Outgoing = r.Outgoing[len(r.Outgoing)-MaxTeamOutgoing:]
	}
	if len(r.History) > MaxTeamHistory {
		r.History = r.History[len(r.History)-MaxTeamHistory:]
	}
	r.V = 1
	return t.Put(BucketTeams, r.ID, r)
}

// Teams returns every team record, in key order.
func (t *Tx) Teams() ([]*TeamRecord, error) {
	var out []*TeamRecord
	err := t.Each(BucketTeams, func(_, v []byte) error {
		r := new(TeamRecord)
		if err := Unmarshal(v, r); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// QueueRecord is a queue conversation as this device knows it, in
// BucketQueues under its conversation's ID (QueueConversationID).
type QueueRecord struct {
	V  int    `json:"v"`
	ID []byte `json:"id"`
	// Team is the staff group's ID, Conversation the queue conversation's
	// team-wide 16-byte ID.
	Team         []byte `json:"team"`
	Conversation []byte `json:"conversation"`
	// Outsider is the outsider's name as the intake forwarded it; Person
	// (the intake only) the outsider's person record ID.
	Outsider string `json:"outsider"`
	Person   []byte `json:"person,omitempty"`
	// Opened and Urgent: the sent time and urgent flag of the patient's
	// first message (the register's value while it was never written).
	Opened uint64 `json:"opened"`
	Urgent bool   `json:"urgent,omitempty"`
	// Version and Sealed: the register as this device last saw it.
	Version uint64 `json:"version,omitempty"`
	Sealed  []byte `json:"sealed,omitempty"`
	// Senders (staff devices) are the device IDs of the outsider's
	// devices whose messages the intake forwarded, newest last, at most
	// MaxQueueSenders: a queue receipt names a message by its content
	// message ID, and its stored ID is made with its sender's device ID.
	Senders [][]byte `json:"senders,omitempty"`
	// ReadSent and ReadAt (the intake): the sent time (Unix ms) of the
	// newest of the outsider's messages that a queue receipt reported
	// read, and when that receipt arrived (the team agent's "read").
	ReadSent uint64    `json:"read_sent,omitempty"`
	ReadAt   time.Time `json:"read_at,omitzero"`
	// Last is when the conversation's newest message arrived.
	Last time.Time `json:"last"`
	// NoticeSent (the intake only): the version of the team notice sent
	// to the outsider, 0 if none yet.
	NoticeSent uint32 `json:"notice_sent,omitempty"`
	// NoticeDevices (the intake only): devices (record IDs) of the
	// outsider that got their first route after the notice NoticeSent
	// was sent (linked later), due that notice; at most MaxQueueSenders.
	NoticeDevices [][]byte `json:"notice_devices,omitempty"`
	// Role is the role account (its 16-byte ID in the organisation
	// directory) the conversation is addressed to; empty: none.
	Role    []byte    `json:"role,omitempty"`
	Created time.Time `json:"created"`
}

// QueueConversationID is the ID of queue conversation conv of the team
// whose staff group is gid: Kidx-index of ("queue", gid, conv).
func (t *Tx) QueueConversationID(gid, conv []byte) []byte {
	return t.Index(BucketConversations, []byte("queue"), gid, conv)
}

// Queue returns the queue record of conversation id, or nil.
func (t *Tx) Queue(id []byte) (*QueueRecord, error) {
	var q QueueRecord
	ok, err := t.Get(BucketQueues, id, &q)
	if err != nil || !ok {
		return nil, err
	}
	if !bytes.Equal(q.ID, id) {
		return nil, ErrCorrupt
	}
	return &q, nil
}

// PutQueue stores q under its ID with its conversation (type TeamQueue,
// made at q.Created, titled with the outsider's name).
func (t *Tx) PutQueue(q *QueueRecord) error {
	if len(q.Team) != 16 || len(q.Conversation) != 16 || !bytes.Equal(q.ID, t.QueueConversationID(q.Team, q.Conversation)) {
		return fmt.Errorf("store: a queue record's ID is its conversation's index: %w", ErrCorrupt)
	}
	c, err := t.Conversation(q.ID)
	if err != nil {
		return err
	}
	if c == nil {
		c = &Conversation{ID: q.ID, Type: TeamQueue, Created: q.Created}
	}
	if c.Type != TeamQueue {
		return fmt.Errorf("store: a queue's conversation of type %d: %w", c.Type, ErrCorrupt)
	}
	if c.Title != q.Outsider {
		c.Title = q.Outsider
		if err := c.check(); err != nil {
			return err
		}
		c.V = 1
		if err := t.Put(BucketConversations, c.ID, c); err != nil {
			return err
		}
	}
	if len(q.Senders) > MaxQueueSenders {
		q.Senders = q.Senders[len(q.Senders)-MaxQueueSenders:]
	}
	q.V = 1
	return t.Put(BucketQueues, q.ID, q)
}

// Queues returns the queue records of the team whose staff group is gid
// (every team's if gid is nil), in key order.
func (t *Tx) Queues(gid []byte) ([]*QueueRecord, error) {
	var out []*QueueRecord
	err := t.Each(BucketQueues, func(_, v []byte) error {
		q := new(QueueRecord)
		if err := Unmarshal(v, q); err != nil {
			return err
		}
		if gid == nil || bytes.Equal(q.Team, gid) {
			out = append(out, q)
		}
		return nil
	})
	return out, err
}
