package store

import (
	"bytes"
	"fmt"
	"time"
)

// GroupRecord is this device's record of a group it belongs to (client
// group.go; protocol/SPEC.md section 15.5), in BucketGroups under its
// conversation's ID. It is SECRET: header keys, capabilities and sender
// keys.
type GroupRecord struct {
	V  int    `json:"v"`
	ID []byte `json:"id"` // the conversation's ID, GroupConversationID(Group)
	// Group is the group's 16-byte ID; State the newest signed state this
	// device accepted (group.Parse), Version its version.
	Group   []byte `json:"group"`
	State   []byte `json:"state"`
	Version uint64 `json:"version"`
	// AdminCap: the fan-out list's admin capability, held by admins only.
	AdminCap []byte `json:"admin_cap,omitempty"`
	// PrevHeaderKey: the header key the state before the last one named,
	// for messages sealed before the change (SPEC.md 15.1).
	PrevHeaderKey []byte `json:"prev_header_key,omitempty"`
	// Mailbox, MailboxCap: this device's group mailbox on the group's
	// relay and its send capability (empty until it made one).
	Mailbox    []byte `json:"mailbox,omitempty"`
	MailboxCap []byte `json:"mailbox_cap,omitempty"`
	// Own is this device's sender key (senderkey.Own, secret encoding);
	// Keys the received sender keys (senderkey.State).
	Own  []byte `json:"own,omitempty"`
	Keys []byte `json:"keys,omitempty"`
	// Pending are group envelopes that arrived before the distribution
	// of their sender key: tried again when a distribution arrives.
	Pending []PendingEnvelope `json:"pending,omitempty"`
	// From is the device the newest state came from: a join goes to it
	// (this device's own ID when it published the state itself).
	From []byte `json:"from,omitempty"`
	// Removed: this person is no longer in the group (the newest state
	// does not list it); nothing is sent or read any more.
	Removed bool      `json:"removed,omitempty"`
	Created time.Time `json:"created"`
	// StaffLog is the identity fingerprint of the team whose staff list
	// this group is (SPEC.md 15.9 "The staff list in the transparency
	// log"): set when a state of the group was first checked against the
	// team's log, and from then on every state is.
	StaffLog []byte `json:"staff_log,omitempty"`
}

// PendingEnvelope is a group envelope kept for a later try.
type PendingEnvelope struct {
	Envelope []byte    `json:"envelope"`
	ID       []byte    `json:"id"` // the relay's envelope ID
	Received time.Time `json:"received"`
}

// GroupConversationID is the ID of the conversation of group gid:
// Kidx-index of ("group", gid).
func (t *Tx) GroupConversationID(gid []byte) []byte {
	return t.Index(BucketConversations, []byte("group"), gid)
}

// groupMailboxKey is the mailbox index key of a group mailbox: apart from
// the devices' (Kidx of the mailbox alone), so that one index answers both.
func (t *Tx) groupMailboxKey(mb []byte) []byte {
	return t.Index(BucketMailboxIndex, []byte("group"), mb)
}

// Group returns the group record of conversation id, or nil.
func (t *Tx) Group(id []byte) (*GroupRecord, error) {
	var g GroupRecord
	ok, err := t.Get(BucketGroups, id, &g)
	if err != nil || !ok {
		return nil, err
	}
	if !bytes.Equal(g.ID, id) {
		return nil, ErrCorrupt
	}
	return &g, nil
}

// PutGroup stores g under its ID with its conversation (made at
// g.Created, titled name, if there is none) and keeps the mailbox index
// in step with its mailbox: a mailbox the index gives to another group is
// refused.
func (t *Tx) PutGroup(g *GroupRecord, name string) error {
	if len(g.Group) != 16 || !bytes.Equal(g.ID, t.GroupConversationID(g.Group)) {
		return fmt.Errorf("store: a group's record ID is its group's index: %w", ErrCorrupt)
	}
	old, err := t.Group(g.ID)
	if err != nil {
		return err
	}
	if len(g.Mailbox) != 0 {
		key := t.groupMailboxKey(g.Mailbox)
		owner, err := t.GetRaw(BucketMailboxIndex, key)
		if err != nil {
			return err
		}
		switch {
		case owner == nil:
			if err := t.PutRaw(BucketMailboxIndex, key, g.ID); err != nil {
				return err
			}
		case !bytes.Equal(owner, g.ID):
			return fmt.Errorf("store: a mailbox of another group: %w", ErrCorrupt)
		}
	}
	if old != nil && len(old.Mailbox) != 0 && !bytes.Equal(old.Mailbox, g.Mailbox) {
		if err := t.Delete(BucketMailboxIndex, t.groupMailboxKey(old.Mailbox)); err != nil {
			return err
		}
	}
	c, err := t.Conversation(g.ID)
	if err != nil {
		return err
	}
	if c == nil {
		c = &Conversation{ID: g.ID, Type: Group, Created: g.Created}
	}
	if c.Type != Group {
		return fmt.Errorf("store: a group's conversation of type %d: %w", c.Type, ErrCorrupt)
	}
	if c.Title != name {
		c.Title = name
		if err := t.PutConversation(c); err != nil {
			return err
		}
	}
	g.V = 1
	return t.Put(BucketGroups, g.ID, g)
}

// Groups returns every group record, in key order.
func (t *Tx) Groups() ([]*GroupRecord, error) {
	var out []*GroupRecord
	err := t.Each(BucketGroups, func(_, v []byte) error {
		g := new(GroupRecord)
		if err := Unmarshal(v, g); err != nil {
			return err
		}
		out = append(out, g)
		return nil
	})
	return out, err
}

// GroupByMailbox returns the group whose mailbox of this device's is mb,
// or nil: one index lookup.
func (t *Tx) GroupByMailbox(mb []byte) (*GroupRecord, error) {
	id, err := t.GetRaw(BucketMailboxIndex, t.groupMailboxKey(mb))
	if err != nil || id == nil {
		return nil, err
	}
	g, err := t.Group(id)
	if err != nil {
		return nil, err
	}
	if g == nil {
		return nil, fmt.Errorf("store: the mailbox index names a group that is gone: %w", ErrCorrupt)
	}
	return g, nil
}

// GroupPending is what arrived for a group before it could be used, in
// BucketGroupPending under Kidx(group ID): parts of a state split in
// several contents, and distributions from devices the held state does
// not list (yet), or of a group not held yet.
type GroupPending struct {
	V     int           `json:"v"`
	Parts []PendingPart `json:"parts,omitempty"`
	Keys  []PendingKey  `json:"keys,omitempty"`
	// Held are states of a team's staff group that the team's
	// transparency log does not show yet; Secrets the team's secrets
	// that came while the state they need was held.
	Held    []HeldState     `json:"held,omitempty"`
	Secrets *PendingSecrets `json:"secrets,omitempty"`
}

// HeldState is a whole signed state of a staff group kept until the
// team's log shows its staff list: who sent it and what came with it.
type HeldState struct {
	Group      []byte    `json:"group"`
	Team       []byte    `json:"team"` // the team's identity fingerprint (the log's)
	From       []byte    `json:"from"` // the sending device's ID
	FromPerson []byte    `json:"from_person"`
	Version    uint64    `json:"version"`
	State      []byte    `json:"state"`
	AdminCap   []byte    `json:"admin_cap,omitempty"`
	Received   time.Time `json:"received"`
}

// PendingSecrets is a team-secrets content (its session encoding) and
// the identity of the person whose device sent it.
type PendingSecrets struct {
	Person  []byte `json:"person"`
	Content []byte `json:"content"`
}

// PendingPart is one part of a signed group state.
type PendingPart struct {
	From     []byte `json:"from"` // the sending device's ID
	Version  uint64 `json:"version"`
	Part     int    `json:"part"`
	Parts    int    `json:"parts"`
	Chunk    []byte `json:"chunk"`
	AdminCap []byte `json:"admin_cap,omitempty"`
	// Logged: part 0 said the group is a team's staff list.
	Logged bool `json:"logged,omitempty"`
}

// PendingKey is a sender-key distribution with its sending device.
type PendingKey struct {
	From     []byte    `json:"from"`
	Dist     []byte    `json:"dist"`
	Received time.Time `json:"received"`
}

func (t *Tx) pendingKey(gid []byte) []byte { return t.Index(BucketGroupPending, gid) }

// GroupPending returns what waits for group gid (empty if nothing).
func (t *Tx) GroupPending(gid []byte) (*GroupPending, error) {
	var p GroupPending
	_, err := t.Get(BucketGroupPending, t.pendingKey(gid), &p)
	return &p, err
}

// PutGroupPending stores p for group gid, or deletes the record when p
// holds nothing.
func (t *Tx) PutGroupPending(gid []byte, p *GroupPending) error {
	if len(p.Parts) == 0 && len(p.Keys) == 0 && len(p.Held) == 0 && p.Secrets == nil {
		return t.Delete(BucketGroupPending, t.pendingKey(gid))
	}
	p.V = 1
	return t.Put(BucketGroupPending, t.pendingKey(gid), p)
}

// GroupPendingCount returns how many groups have something waiting.
func (t *Tx) GroupPendingCount() (int, error) {
	n := 0
	err := t.Each(BucketGroupPending, func(_, _ []byte) error { n++; return nil })
	return n, err
}

// HeldGroupStates returns the groups' pending records that hold states
// waiting for a team's transparency log (GroupPending.Held).
func (t *Tx) HeldGroupStates() ([]*GroupPending, error) {
	var out []*GroupPending
	err := t.Each(BucketGroupPending, func(_, v []byte) error {
		p := new(GroupPending)
		if err := Unmarshal(v, p); err != nil {
			return err
		}
		if len(p.Held) > 0 {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}
