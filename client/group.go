package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/group"
	"github.com/postern/postern/client/internal/team/senderkey"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Groups (protocol/SPEC.md section 15.5). A group's membership is a state
// signed by one of its admins' identity keys and sent to every member
// device in the pairwise sessions (contentGroupState); each member device
// makes a group mailbox on the group's relay and sends it to the admin
// (contentGroupJoin), who puts it in the group's fan-out list and
// publishes the next state. Each member device has a sender key per group
// and sends its distribution to every other member device
// (contentGroupKey); a message is sealed once with it and uploaded once
// (SendFanout), and the relay stores a copy in every member mailbox.

var (
	// ErrUnknownGroup: no group of this person has that name or ID.
	ErrUnknownGroup = errors.New("client: no such group")
	// ErrAmbiguousGroup: several groups have that name; name it by ID.
	ErrAmbiguousGroup = errors.New("client: several groups have that name; use the group's ID")
	// ErrObserver: this person observes the group: it reads, and cannot
	// send.
	ErrObserver = errors.New("client: an observer of a group cannot send to it")
	// ErrNotGroupAdmin: only the group's admins change its membership.
	ErrNotGroupAdmin = errors.New("client: only the group's admins can change it")
	// ErrNotGroupMember: this person is not (or no longer) in the group,
	// or the contact named is not in it.
	ErrNotGroupMember = errors.New("client: not a member of the group")
	// ErrGroupRelay: a member device is homed on another relay than the
	// group's; in this version every member device must be on the
	// group's relay (the relay of the admin who made it).
	ErrGroupRelay = errors.New("client: every device of a group's members must be on the group's relay")
	// ErrGroupSize: a group of more than group.MaxMembers people.
	ErrGroupSize = errors.New("client: a group has at most 200 people")
)

// Internal drop reasons of group envelopes.
var (
	errGroupNoKey    = errors.New("client: group message whose sender key has not arrived")
	errGroupObserver = errors.New("client: group message from an observer")
)

const (
	// maxGroupPending bounds the group envelopes kept per group while
	// their sender key's distribution has not arrived, maxPendingKeys
	// the distributions kept per group for devices the state does not
	// list yet, maxPendingParts the parts of states kept per group.
	maxGroupPending = 256
	maxPendingKeys  = 64
	maxPendingParts = 4 * maxStateParts
	// maxPendingGroups bounds the groups something waits for: a contact
	// cannot fill the store with distributions or parts for groups that
	// do not exist.
	maxPendingGroups = 32
)

// GroupRole is a member's role in a group.
type GroupRole int

const (
	GroupAdmin    GroupRole = GroupRole(group.RoleAdmin)    // changes the membership
	GroupMember   GroupRole = GroupRole(group.RoleMember)   // reads and writes
	GroupObserver GroupRole = GroupRole(group.RoleObserver) // reads only
	GroupDelegate GroupRole = GroupRole(group.RoleDelegate) // writes for another member, shown as "DELEGATE for MEMBER"
)

func (r GroupRole) String() string { return group.Role(r).String() }

// Group describes a group of this person's.
type Group struct {
	ID           string // 32 hex digits
	Name         string
	Conversation string // the group conversation's ID (Message.Conversation)
	Version      uint64 // of the newest state accepted
	Role         GroupRole
	Removed      bool // this person was removed: nothing is sent or read any more
	Members      []GroupMemberInfo
}

// GroupMemberInfo is one member of a group as its newest state lists it.
type GroupMemberInfo struct {
	Name     string // this person's name for a contact, or the state's; Me for this person
	Identity keys.Fingerprint
	Role     GroupRole
	For      string // a delegate: the name of the member it acts for
	Devices  int    // devices listed
	Joined   int    // devices with a group mailbox
	// Contact: the member is this person (Me) or one of its contacts;
	// false for someone known only through a group (groupintro.go).
	Contact bool
}

// groupTask is what accepting or publishing a state, a join or a
// distribution leaves to do after the commit (afterReceive).
type groupTask struct {
	gid  group.ID
	join bool // make this device's group mailbox and send the join
	// dist is a distribution of this device's sender key, to send to the
	// devices in to.
	dist []byte
	to   []keys.Fingerprint
	// joined: a member device's join, for this admin to publish.
	joined *groupJoin
	from   keys.Fingerprint
	// intro: devices to introduce this device to (groupintro.go), as
	// answers to their introductions with introAnswer.
	intro       []keys.Fingerprint
	introAnswer bool
	// staffLog: states of this staff group wait for the team's
	// transparency log (stafflog.go).
	staffLog bool
	// devices: a device list or a route changed; routed, a device that
	// gave this device a route (groupdevices.go).
	devices bool
	routed  keys.Fingerprint
}

// storeGroupRecord is a group's record (store.GroupRecord).
type storeGroupRecord = store.GroupRecord

// groupHex is a group ID as shown.
func groupHex(g group.ID) string { return hex.EncodeToString(g[:]) }

// groupConnKey names the unauthenticated connection used for a group.
func groupConnKey(g group.ID) string { return "group:" + groupHex(g) }

// groupOf reads the state of a group record (stored only after it was
// verified: its signature is not checked again; a record that does not
// parse is a damaged store).
func groupOf(rec *store.GroupRecord) (*group.State, error) {
	s, err := group.ParseStored(rec.State)
	if err != nil {
		return nil, fmt.Errorf("%w: a group's state: %v", errStoreCorrupt, err)
	}
	return s, nil
}

func senderKeysOf(rec *store.GroupRecord, gid group.ID) (*senderkey.State, error) {
	if len(rec.Keys) == 0 {
		return senderkey.NewState(senderkey.GroupID(gid)), nil
	}
	s, err := senderkey.UnmarshalState(rec.Keys)
	if err != nil {
		return nil, errStoreCorrupt
	}
	return s, nil
}

// lookupGroup finds a group by its ID (hex) or its name.
func (t *tx) lookupGroup(name string) (*store.GroupRecord, error) {
	if id, err := hex.DecodeString(name); err == nil && len(id) == group.IDSize {
		rec, err := t.Group(t.GroupConversationID(id))
		if err != nil || rec != nil {
			return rec, err
		}
	}
	gs, err := t.Groups()
	if err != nil {
		return nil, err
	}
	var found *store.GroupRecord
	for _, g := range gs {
		s, err := groupOf(g)
		if err != nil {
			return nil, err
		}
		if s.Name == name {
			if found != nil {
				return nil, ErrAmbiguousGroup
			}
			found = g
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownGroup, name)
	}
	return found, nil
}

// contactPerson is lookupContact inside a transaction: the person of the
// contact named name.
func (t *tx) contactPerson(name string) (*store.Person, error) {
	cs, err := t.contacts()
	if err != nil {
		return nil, err
	}
	for _, r := range cs {
		if r.Person.Name == name && !r.Person.ViaGroup {
			return r.Person, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownContact, name)
}

// personByIdentity returns the person (a contact, or this person) whose
// identity is id, or nil.
func (t *tx) personByIdentity(id keys.Fingerprint) (*store.Person, error) {
	ps, err := t.Persons()
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if fpOf(p.Identity) == id {
			return p, nil
		}
	}
	return nil, nil
}

// memberName is how this device shows a member: Me, its contact name, or
// the name the state gives; a delegate as "DELEGATE for MEMBER".
func (c *Client) memberName(t *tx, s *group.State, m *group.Member) (string, error) {
	one := func(m *group.Member) (string, error) {
		if m.Identity == c.idFP {
			return c.name, nil
		}
		p, err := t.personByIdentity(m.Identity)
		if err != nil || p == nil {
			return m.Name, err
		}
		return p.Name, nil
	}
	n, err := one(m)
	if err != nil || m.Role != group.RoleDelegate {
		return n, err
	}
	if f := s.Member(m.For); f != nil {
		fn, err := one(f)
		return n + " for " + fn, err
	}
	return n, nil
}

// ---- making and changing a group (admins) ----

// CreateGroup makes a group named name with this person as its admin and
// the contacts named in members as members, on this device's relay. Every
// device of every member must be homed on that relay (ErrGroupRelay). The
// members' devices receive the group's state and join it by themselves
// (their next Sync); messages reach each device once it has joined.
func (c *Client) CreateGroup(ctx context.Context, name string, members ...string) (Group, error) {
	return c.createGroup(ctx, name, members, nil)
}

// createGroup is CreateGroup; a team's staff group (team.go) passes
// staffLog, which logs the first state's staff list (stafflog.go) before
// anything is made on the relay, and the group is marked a staff list.
func (c *Client) createGroup(ctx context.Context, name string, members []string, staffLog func(context.Context, *group.State) error) (Group, error) {
	if name == "" || len(name) > group.MaxNameSize || !utf8.ValidString(name) || checkName(name) != nil {
		return Group{}, ErrInvalidName
	}
	if len(members)+1 > group.MaxMembers {
		return Group{}, ErrGroupSize
	}
	c.groupMu.Lock()
	defer c.groupMu.Unlock()
	var gid group.ID
	rand.Read(gid[:])
	s := &group.State{Group: gid, Version: 1, Name: name, Relay: c.relay}
	rand.Read(s.HeaderKey[:])
	sendTok, adminTok := protocol.NewCapabilityToken(), protocol.NewCapabilityToken()
	copy(s.SendCap[:], sendTok.SecretBytes())
	err := c.st.view(func(t *tx) error {
		self, err := t.self()
		if err != nil {
			return err
		}
		me, err := c.stateMember(t, self, group.RoleAdmin)
		if err != nil {
			return err
		}
		s.Members = append(s.Members, me)
		seen := map[keys.Fingerprint]bool{c.idFP: true}
		for _, n := range members {
			p, err := t.contactPerson(n)
			if err != nil {
				return err
			}
			if seen[fpOf(p.Identity)] {
				continue
			}
			seen[fpOf(p.Identity)] = true
			m, err := c.stateMember(t, p, group.RoleMember)
			if err != nil {
				return err
			}
			s.Members = append(s.Members, m)
		}
		return nil
	})
	if err != nil {
		return Group{}, err
	}
	sortMembers(s)
	if staffLog != nil {
		if err := staffLog(ctx, s); err != nil {
			return Group{}, err
		}
	}
	// This device's group mailbox first, then the fan-out list with it.
	mb, tok, err := c.makeGroupMailbox(ctx, nil, s)
	if err != nil {
		return Group{}, err
	}
	_, d := s.Device(c.devID)
	d.Joined, d.Mailbox = true, mb
	copy(d.Capability[:], tok.SecretBytes())
	cn, err := c.authConn(ctx)
	if err != nil {
		return Group{}, err
	}
	resp, err := cn.request(ctx, &protocol.CreateFanout{Admin: adminTok, Send: sendTok,
		Entries: []protocol.FanoutEntry{{Mailbox: mb, Capability: tok}}})
	if err != nil {
		return Group{}, fmt.Errorf("client: create the group's fan-out list: %w", err)
	}
	fc, ok := resp.(*protocol.FanoutCreated)
	if !ok {
		return Group{}, unexpected(resp)
	}
	s.Fanout = fc.Fanout
	if _, err := group.Sign(s, c.id); err != nil {
		return Group{}, err
	}
	now := c.now().UTC()
	var tasks []groupTask
	err = c.st.update(func(t *tx) error {
		tasks = nil
		rec := &store.GroupRecord{ID: t.GroupConversationID(gid[:]), Group: gid[:], Created: now,
			AdminCap: adminTok.SecretBytes(), Mailbox: mb[:], MailboxCap: tok.SecretBytes()}
		if staffLog != nil {
			rec.StaffLog = bytes.Clone(c.idFP[:])
		}
		var err error
		tasks, err = c.applyGroupState(t, rec, nil, s, nil, c.devID)
		return err
	})
	if err != nil {
		return Group{}, err
	}
	c.sendGroupState(ctx, s, adminTok.SecretBytes(), nil, nil)
	c.runGroupTasks(ctx, tasks)
	c.log.Info("made a group", "members", len(s.Members))
	return c.groupInfo(gid)
}

// stateMember is person p as a member of a new state: its devices this
// device writes to (and this device, for this person), none joined.
func (c *Client) stateMember(t *tx, p *store.Person, role group.Role) (group.Member, error) {
	m := group.Member{Identity: fpOf(p.Identity), Name: p.Name, Role: role}
	if p.Self {
		m.Name = c.name
		m.Devices = append(m.Devices, group.Device{ID: c.devID})
	}
	ds, err := c.targets(t, p)
	if err != nil {
		return m, err
	}
	for _, d := range ds {
		if d.Relay != c.relay {
			return m, fmt.Errorf("%w (%s)", ErrGroupRelay, p.Name)
		}
		if len(m.Devices) < group.MaxDevices {
			m.Devices = append(m.Devices, group.Device{ID: fpOf(d.DeviceID)})
		}
	}
	if len(m.Devices) == 0 {
		return m, fmt.Errorf("%w (%s)", ErrNoDevice, p.Name)
	}
	slices.SortFunc(m.Devices, func(a, b group.Device) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return m, nil
}

func sortMembers(s *group.State) {
	slices.SortFunc(s.Members, func(a, b group.Member) int { return bytes.Compare(a.Identity[:], b.Identity[:]) })
}

// makeGroupMailbox makes this device's group mailbox on its relay (which
// must be the group's) and subscribes to it, on cn (nil: the
// authenticated connection).
func (c *Client) makeGroupMailbox(ctx context.Context, cn *conn, s *group.State) (protocol.MailboxID, protocol.CapabilityToken, error) {
	tok := protocol.NewCapabilityToken()
	if s.Relay != c.relay {
		return protocol.MailboxID{}, tok, ErrGroupRelay
	}
	cn, mb, err := c.newMailbox(ctx, cn, tok)
	if err != nil {
		return mb, tok, err
	}
	now := c.now().UTC()
	if err := c.st.update(func(t *tx) error {
		return t.addMailbox(mailboxRecord{ID: mb[:], Purpose: "group", Created: now})
	}); err != nil {
		return mb, tok, err
	}
	if err := c.subscribe(ctx, cn, mb); err != nil {
		c.log.Warn("could not subscribe to a group mailbox yet", "err", err)
	}
	return mb, tok, nil
}

// AddGroupMember adds the contact named contact to the group with role
// (GroupMember if zero); a delegate acts for the member named forName
// (a contact's name, or Me). Only an admin may (ErrNotGroupAdmin).
func (c *Client) AddGroupMember(ctx context.Context, grp, contact string, role GroupRole, forName string) (Group, error) {
	if role == 0 {
		role = GroupMember
	}
	r, err := c.lookupContact(contact)
	if err != nil {
		return Group{}, err
	}
	gid, err := c.publishGroup(ctx, grp, false, func(t *tx, s *group.State, _ *protocol.UpdateFanout) error {
		if s.Member(fpOf(r.Person.Identity)) != nil {
			return fmt.Errorf("client: %s is in the group already", r.Person.Name)
		}
		if len(s.Members) >= group.MaxMembers {
			return ErrGroupSize
		}
		m, err := c.stateMember(t, r.Person, group.Role(role))
		if err != nil {
			return err
		}
		if m.For, err = c.forIdentity(t, s, role, forName); err != nil {
			return err
		}
		s.Members = append(s.Members, m)
		sortMembers(s)
		return nil
	})
	if err != nil {
		return Group{}, err
	}
	return c.groupInfo(gid)
}

// forIdentity is the identity a delegate acts for.
func (c *Client) forIdentity(t *tx, s *group.State, role GroupRole, forName string) (keys.Fingerprint, error) {
	if role != GroupDelegate {
		return keys.Fingerprint{}, nil
	}
	if forName == Me {
		return c.idFP, nil
	}
	p, err := t.contactPerson(forName)
	if err != nil {
		return keys.Fingerprint{}, err
	}
	if s.Member(fpOf(p.Identity)) == nil {
		return keys.Fingerprint{}, fmt.Errorf("%w (%s)", ErrNotGroupMember, forName)
	}
	return fpOf(p.Identity), nil
}

// SetGroupRole changes the role of the member named contact (a contact's
// name, or Me); a delegate acts for forName. Only an admin may.
func (c *Client) SetGroupRole(ctx context.Context, grp, contact string, role GroupRole, forName string) (Group, error) {
	id, err := c.identityOfName(contact)
	if err != nil {
		return Group{}, err
	}
	gid, err := c.publishGroup(ctx, grp, false, func(t *tx, s *group.State, _ *protocol.UpdateFanout) error {
		m := s.Member(id)
		if m == nil {
			return fmt.Errorf("%w (%s)", ErrNotGroupMember, contact)
		}
		m.Role = group.Role(role)
		var err error
		m.For, err = c.forIdentity(t, s, role, forName)
		return err
	})
	if err != nil {
		return Group{}, err
	}
	return c.groupInfo(gid)
}

func (c *Client) identityOfName(name string) (keys.Fingerprint, error) {
	if name == Me {
		return c.idFP, nil
	}
	r, err := c.lookupContact(name)
	if err != nil {
		return keys.Fingerprint{}, err
	}
	return fpOf(r.Person.Identity), nil
}

// RemoveGroupMember removes the member named contact from the group. The
// removal replaces the group's header key and the fan-out list's send
// capability, takes the member's mailboxes out of the list, and every
// remaining device starts a new epoch of its sender key, sent only to the
// remaining devices: the removed member reads nothing sent afterwards.
func (c *Client) RemoveGroupMember(ctx context.Context, grp, contact string) (Group, error) {
	id, err := c.identityOfName(contact)
	if err != nil {
		return Group{}, err
	}
	gid, err := c.publishGroup(ctx, grp, true, func(t *tx, s *group.State, u *protocol.UpdateFanout) error {
		m := s.Member(id)
		if m == nil {
			return fmt.Errorf("%w (%s)", ErrNotGroupMember, contact)
		}
		for _, d := range m.Devices {
			if d.Joined {
				u.Remove = append(u.Remove, d.Mailbox)
			}
		}
		// A delegate acting for the removed member goes with it.
		var keep []group.Member
		for _, o := range s.Members {
			if o.Identity != id && !(o.Role == group.RoleDelegate && o.For == id) {
				keep = append(keep, o)
				continue
			}
			if o.Identity != id {
				for _, d := range o.Devices {
					if d.Joined {
						u.Remove = append(u.Remove, d.Mailbox)
					}
				}
			}
		}
		s.Members = keep
		return nil
	})
	if err != nil {
		return Group{}, err
	}
	return c.groupInfo(gid)
}

// publishGroup makes, as an admin, the next state of group grp: edit
// changes a copy of the held one (and the fan-out update); with rotate,
// a new header key and send capability. The fan-out list is changed
// first, then the state is signed, stored and sent to every member
// device.
func (c *Client) publishGroup(ctx context.Context, grp string, rotate bool,
	edit func(*tx, *group.State, *protocol.UpdateFanout) error) (group.ID, error) {
	c.groupMu.Lock()
	defer c.groupMu.Unlock()
	var (
		held, next *group.State
		adminCap   []byte
		upd        protocol.UpdateFanout
	)
	err := c.st.view(func(t *tx) error {
		rec, err := t.lookupGroup(grp)
		if err != nil {
			return err
		}
		if held, err = groupOf(rec); err != nil {
			return err
		}
		if rec.Removed || !held.IsAdmin(c.idFP) || len(rec.AdminCap) != 32 {
			return ErrNotGroupAdmin
		}
		adminCap = rec.AdminCap
		next = held.Clone()
		next.Version++
		upd = protocol.UpdateFanout{Fanout: held.Fanout}
		return edit(t, next, &upd)
	})
	if err != nil {
		return group.ID{}, err
	}
	return next.Group, c.publishState(ctx, held, next, adminCap, &upd, rotate)
}

// publishState puts the fan-out change upd on the relay, then signs,
// stores and sends next. The caller holds groupMu.
func (c *Client) publishState(ctx context.Context, held, next *group.State, adminCap []byte, upd *protocol.UpdateFanout, rotate bool) error {
	admin, err := protocol.CapabilityTokenFromBytes(adminCap)
	if err != nil {
		return errStoreCorrupt
	}
	// A team's new staff list is logged before anything changes
	// (stafflog.go): a publish that fails leaves the change undone.
	if err := c.logStaffList(ctx, next); err != nil {
		return err
	}
	upd.Admin = admin
	if rotate {
		rand.Read(next.HeaderKey[:])
		tok := protocol.NewCapabilityToken()
		copy(next.SendCap[:], tok.SecretBytes())
		upd.NewSend = &tok
	}
	if upd.NewSend != nil || len(upd.Add) > 0 || len(upd.Remove) > 0 {
		resp, err := c.anonRequest(ctx, held.Relay, groupConnKey(held.Group), upd)
		if err != nil {
			return fmt.Errorf("client: change the group's fan-out list: %w", err)
		}
		if _, ok := resp.(*protocol.OK); !ok {
			return unexpected(resp)
		}
	}
	if _, err := group.Sign(next, c.id); err != nil {
		return err
	}
	var (
		tasks   []groupTask
		history bool
	)
	err = c.st.update(func(t *tx) error {
		tasks = nil
		rec, err := t.Group(t.GroupConversationID(next.Group[:]))
		if err != nil {
			return err
		}
		if rec == nil || rec.Version != held.Version {
			return fmt.Errorf("client: the group changed meanwhile; try again")
		}
		if tasks, err = c.applyGroupState(t, rec, held, next, nil, c.devID); err != nil {
			return err
		}
		// On a team's intake, a staff device that joined is owed the
		// open conversations: recorded with the state, so that a crash
		// before the send does not lose it (teamhistory.go).
		if history, err = c.noteNewStaffDevices(t, held, next); err != nil {
			return err
		}
		// On a team's intake, a dropped staff device still holds the
		// team's secrets: their replacement is owed from this commit
		// on (teamrotate.go).
		return c.noteStaffRotation(t, held, next)
	})
	if err != nil {
		return err
	}
	c.sendGroupState(ctx, next, adminCap, nil, nil)
	if gone := removedDevices(held, next); len(gone) > 0 {
		// The removed devices learn of it from a state of the same
		// version without the new secrets (the header key and the send
		// capability zero): they stop sending and drop their keys.
		tomb := next.Clone()
		tomb.HeaderKey, tomb.SendCap = [group.HeaderKeySize]byte{}, [group.CapabilitySize]byte{}
		if _, err := group.Sign(tomb, c.id); err != nil {
			c.log.Warn("could not sign a removal", "err", err)
		} else {
			c.sendGroupState(ctx, tomb, nil, gone, held)
		}
	}
	c.runGroupTasks(ctx, tasks)
	if history {
		// In the background: flushTeams takes teamMu, which is taken
		// before groupMu (held here) elsewhere.
		c.goBackground(func() {
			ctx, cancel := context.WithTimeout(c.ctx, maintenanceTimeout)
			defer cancel()
			c.flushTeams(ctx)
		})
	}
	return nil
}

// removedDevices are the devices held lists and next does not.
func removedDevices(held, next *group.State) []keys.Fingerprint {
	var out []keys.Fingerprint
	for _, m := range held.Members {
		for _, d := range m.Devices {
			if _, nd := next.Device(d.ID); nd == nil {
				out = append(out, d.ID)
			}
		}
	}
	return out
}

// sendGroupState sends the signed state s to every device it lists (but
// this one), or only to the devices in only; admins' devices get the
// admin capability with it. The devices are looked up in listed (nil: s).
func (c *Client) sendGroupState(ctx context.Context, s *group.State, adminCap []byte, only []keys.Fingerprint, listed *group.State) {
	// A state its devices miss is sent again (groupdevices.go); not a
	// removal's, whose devices are no longer listed.
	owed := listed == nil
	if listed == nil {
		listed = s
	}
	b, err := s.Bytes()
	if err != nil {
		c.log.Warn("could not encode a group state", "err", err)
		return
	}
	type dest struct {
		r     *contactRecord
		admin bool
	}
	var (
		ds     []dest
		logged bool
	)
	err = c.st.view(func(t *tx) error {
		grec, err := t.Group(t.GroupConversationID(s.Group[:]))
		if err != nil {
			return err
		}
		logged = grec != nil && len(grec.StaffLog) > 0
		recs, err := c.groupDevices(t, listed, only)
		for _, r := range recs {
			ds = append(ds, dest{r, s.IsAdmin(fpOf(r.Person.Identity))})
		}
		return err
	})
	if err != nil {
		c.log.Warn("could not read a group's devices", "err", err)
		return
	}
	parts := splitState(s.Group, s.Version, b)
	for _, d := range ds {
		for i, p := range parts {
			p := *p
			p.Logged = i == 0 && logged
			if i == 0 && d.admin && len(adminCap) == 32 {
				p.HasAdmin = true
				copy(p.AdminCap[:], adminCap)
			}
			ct := &content{Type: contentGroupState, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()), GroupPart: &p}
			copy(ct.MsgID[:], randomID(msgIDSize))
			if err := c.sendSession(ctx, d.r, ct); err != nil && !errors.Is(err, ErrQueued) {
				c.log.Warn("could not send a group state to a member device", "err", err)
				if owed {
					c.owedStates.fail(s.Group, fpOf(d.r.DeviceID), c.now())
				}
				break
			}
			if owed && i == len(parts)-1 {
				c.owedStates.done(s.Group, fpOf(d.r.DeviceID))
			}
		}
	}
}

// groupDevices are the devices this device can write to among those s
// lists (all of them, or those in only), this one left out. A listed
// device this device has no route to yet is left out (it is reached
// once a group introduction gives one, groupintro.go).
func (c *Client) groupDevices(t *tx, s *group.State, only []keys.Fingerprint) ([]*contactRecord, error) {
	var out []*contactRecord
	for i := range s.Members {
		m := &s.Members[i]
		p, err := t.personByIdentity(m.Identity)
		if err != nil {
			return nil, err
		}
		if p == nil || p.Blocked {
			continue
		}
		ds, err := c.targets(t, p)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			id := fpOf(d.DeviceID)
			if _, listed := s.Device(id); listed == nil || (only != nil && !slices.Contains(only, id)) {
				continue
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// applyGroupState makes next (accepted: verified and checked against held,
// nil for a first state) the state of rec, and stores rec: the previous
// header key is kept, the admin capability taken (admins) or dropped,
// this device's sender key made (a first state) or rotated (devices were
// removed), the received keys of removed devices forgotten, and what
// waited for the state used. It returns what is left to do after the
// commit. from is the device the state came from.
func (c *Client) applyGroupState(t *tx, rec *store.GroupRecord, held, next *group.State, adminCap []byte, from keys.Fingerprint) ([]groupTask, error) {
	b, err := next.Bytes()
	if err != nil {
		return nil, err
	}
	gid := next.Group
	rec.State, rec.Version, rec.From = b, next.Version, bytes.Clone(from[:])
	if held != nil && held.HeaderKey != next.HeaderKey {
		rec.PrevHeaderKey = bytes.Clone(held.HeaderKey[:])
	}
	me := next.Member(c.idFP)
	_, myDev := next.Device(c.devID)
	if me == nil || myDev == nil {
		// Removed (or this device is not listed): nothing more is read
		// or sent; the keys go.
		rec.Removed = true
		rec.AdminCap, rec.Own, rec.Keys, rec.Pending, rec.PrevHeaderKey = nil, nil, nil, nil, nil
		return nil, t.PutGroup(rec, next.Name)
	}
	switch {
	case me.Role != group.RoleAdmin:
		rec.AdminCap = nil
	case len(adminCap) == 32:
		rec.AdminCap = bytes.Clone(adminCap)
	}
	ks, err := senderKeysOf(rec, gid)
	if err != nil {
		return nil, err
	}
	var removed, added []keys.Fingerprint
	if held != nil {
		removed = removedDevices(held, next)
		for _, d := range removed {
			ks.Remove(protocol.DeviceID(d))
		}
	}
	for _, m := range next.Members {
		for _, d := range m.Devices {
			if held == nil {
				added = append(added, d.ID)
			} else if _, hd := held.Device(d.ID); hd == nil {
				added = append(added, d.ID)
			}
		}
	}
	var task groupTask
	task.gid = gid
	own, err := c.ownKey(rec)
	if err != nil {
		return nil, err
	}
	switch {
	case own == nil:
		if own, err = senderkey.NewOwn(senderkey.GroupID(gid), protocol.DeviceID(c.devID), 0, nil); err != nil {
			return nil, err
		}
		task.dist, task.to = own.Distribution(), others(next, c.devID)
	case len(removed) > 0:
		if own, err = own.Rotate(nil); err != nil {
			return nil, err
		}
		task.dist, task.to = own.Distribution(), others(next, c.devID)
	case len(added) > 0:
		task.dist, task.to = own.Distribution(), added
	}
	if task.dist != nil {
		// This device reads its own messages, fanned out to its own
		// mailbox and to its siblings', with the same key.
		d, err := senderkey.ParseDistribution(task.dist)
		if err != nil {
			return nil, err
		}
		if err := ks.Add(protocol.DeviceID(c.devID), d); err != nil {
			return nil, err
		}
	}
	rec.Own = own.MarshalSecret()
	task.join = !myDev.Joined
	// Distributions that came before the state, or from devices it now
	// lists.
	pend, err := t.GroupPending(gid[:])
	if err != nil {
		return nil, err
	}
	var keep []store.PendingKey
	for _, pk := range pend.Keys {
		if !c.addGroupKey(next, ks, pk.From, pk.Dist) {
			keep = append(keep, pk)
		}
	}
	if len(keep) != len(pend.Keys) {
		pend.Keys = keep
		if err := t.PutGroupPending(gid[:], pend); err != nil {
			return nil, err
		}
	}
	rec.Keys = ks.MarshalSecret()
	if err := t.PutGroup(rec, next.Name); err != nil {
		return nil, err
	}
	task.intro = c.introCandidates(held, next)
	if task.dist == nil && !task.join && task.intro == nil {
		return nil, nil
	}
	return []groupTask{task}, nil
}

// others are the devices s lists, but self.
func others(s *group.State, self keys.Fingerprint) []keys.Fingerprint {
	var out []keys.Fingerprint
	for _, m := range s.Members {
		for _, d := range m.Devices {
			if d.ID != self {
				out = append(out, d.ID)
			}
		}
	}
	return out
}

// ownKey reads this device's sender key of rec, nil if it has none.
func (c *Client) ownKey(rec *store.GroupRecord) (*senderkey.Own, error) {
	if len(rec.Own) == 0 {
		return nil, nil
	}
	o, err := senderkey.UnmarshalOwn(rec.Own)
	if err != nil {
		return nil, errStoreCorrupt
	}
	return o, nil
}

// addGroupKey adds a distribution from device from to ks if s lists
// from for a member that may send; it reports whether it was used
// (a malformed or stale one counts as used: it is dropped).
func (c *Client) addGroupKey(s *group.State, ks *senderkey.State, from, dist []byte) bool {
	m, _ := s.Device(fpOf(from))
	if m == nil {
		return false
	}
	if !m.Role.MaySend() {
		return true // an observer's key: never used
	}
	d, err := senderkey.ParseDistribution(dist)
	if err == nil {
		err = ks.Add(protocol.DeviceID(fpOf(from)), d)
	}
	if err != nil {
		c.log.Info("dropped a group sender key", "err", err)
	}
	return true
}

// runGroupTasks carries out, after a commit, the joins and distributions
// that accepting or publishing states decided.
func (c *Client) runGroupTasks(ctx context.Context, tasks []groupTask) {
	c.runGroupTasksOn(ctx, nil, tasks)
}

// runGroupTasksOn is runGroupTasks with the authenticated work on cn (nil:
// the authenticated connection). Work done on the receive loop's
// goroutine passes the connection it received on (introduction.go
// onConn): waiting there for a new connection would wait for itself.
func (c *Client) runGroupTasksOn(ctx context.Context, cn *conn, tasks []groupTask) {
	for _, tk := range tasks {
		if tk.staffLog {
			c.checkStaffLists(ctx, cn, &tk.gid, false)
			continue
		}
		if tk.devices {
			c.runGroupDevicesTask(ctx, tk)
			continue
		}
		if tk.joined != nil {
			if err := c.admitDevice(ctx, tk.gid, tk.from, tk.joined); err != nil {
				c.log.Warn("could not add a member device to a group", "err", err)
			}
			continue
		}
		// Introductions first: a device reached only through one gets
		// the distribution that follows.
		c.sendGroupIntros(ctx, cn, tk.gid, tk.intro, tk.introAnswer)
		if tk.dist != nil {
			c.sendGroupKey(ctx, tk.gid, tk.dist, tk.to)
		}
		if tk.join {
			if err := c.joinGroup(ctx, cn, tk.gid); err != nil {
				c.log.Warn("could not join a group yet", "err", err)
			}
		}
	}
}

// sendGroupKey sends distribution dist to the devices in to that this
// device can write to.
func (c *Client) sendGroupKey(ctx context.Context, gid group.ID, dist []byte, to []keys.Fingerprint) {
	var recs []*contactRecord
	err := c.st.view(func(t *tx) error {
		rec, err := t.Group(t.GroupConversationID(gid[:]))
		if err != nil || rec == nil {
			return err
		}
		s, err := groupOf(rec)
		if err != nil {
			return err
		}
		recs, err = c.groupDevices(t, s, to)
		return err
	})
	if err != nil {
		c.log.Warn("could not read a group's devices", "err", err)
		return
	}
	for _, r := range recs {
		ct := &content{Type: contentGroupKey, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()), GroupKey: dist}
		copy(ct.MsgID[:], randomID(msgIDSize))
		if err := c.sendSession(ctx, r, ct); err != nil && !errors.Is(err, ErrQueued) {
			c.log.Warn("could not send a group sender key to a member device", "err", err)
		}
	}
}

// joinGroup makes this device's group mailbox (if it has none) and sends
// it to the device the group's state came from (an admin's), or, when
// that is this device, admits it itself.
func (c *Client) joinGroup(ctx context.Context, cn *conn, gid group.ID) error {
	var (
		s    *group.State
		rec  *store.GroupRecord
		from keys.Fingerprint
	)
	load := func() error {
		return c.st.view(func(t *tx) error {
			var err error
			if rec, err = t.Group(t.GroupConversationID(gid[:])); err != nil || rec == nil {
				return err
			}
			s, err = groupOf(rec)
			from = fpOf(rec.From)
			return err
		})
	}
	if err := load(); err != nil || rec == nil || rec.Removed {
		return err
	}
	if len(rec.Mailbox) != 16 {
		mb, tok, err := c.makeGroupMailbox(ctx, cn, s)
		if err != nil {
			return err
		}
		err = c.st.update(func(t *tx) error {
			r, err := t.Group(rec.ID)
			if err != nil || r == nil {
				return err
			}
			if len(r.Mailbox) == 16 {
				return nil // another Client on this home made one first
			}
			r.Mailbox, r.MailboxCap = mb[:], tok.SecretBytes()
			st, err := groupOf(r)
			if err != nil {
				return err
			}
			return t.PutGroup(r, st.Name)
		})
		if err != nil {
			return err
		}
		if err := load(); err != nil {
			return err
		}
	}
	j := &groupJoin{Group: gid}
	copy(j.Mailbox[:], rec.Mailbox)
	copy(j.Capability[:], rec.MailboxCap)
	if from == c.devID {
		return c.admitDevice(ctx, gid, c.devID, j)
	}
	ct := &content{Type: contentGroupJoin, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()), GroupJoin: j}
	copy(ct.MsgID[:], randomID(msgIDSize))
	var to *contactRecord
	err := c.st.view(func(t *tx) error {
		recs, err := c.groupDevices(t, s, []keys.Fingerprint{from})
		if len(recs) > 0 {
			to = recs[0]
		}
		return err
	})
	if err != nil {
		return err
	}
	if to == nil {
		return fmt.Errorf("client: the device that sent the group's state cannot be written to")
	}
	if err := c.sendSession(ctx, to, ct); err != nil && !errors.Is(err, ErrQueued) {
		return err
	}
	return nil
}

// admitDevice, as an admin, puts a member device's group mailbox in the
// fan-out list and publishes the state that lists it joined.
func (c *Client) admitDevice(ctx context.Context, gid group.ID, dev keys.Fingerprint, j *groupJoin) error {
	tok, err := protocol.CapabilityTokenFromBytes(j.Capability[:])
	if err != nil {
		return err
	}
	c.groupMu.Lock()
	defer c.groupMu.Unlock()
	var (
		held, next *group.State
		adminCap   []byte
	)
	err = c.st.view(func(t *tx) error {
		rec, err := t.Group(t.GroupConversationID(gid[:]))
		if err != nil || rec == nil {
			return err
		}
		if held, err = groupOf(rec); err != nil {
			return err
		}
		if rec.Removed || !held.IsAdmin(c.idFP) || len(rec.AdminCap) != 32 {
			held = nil
			return nil
		}
		adminCap = rec.AdminCap
		return nil
	})
	if err != nil || held == nil {
		return err
	}
	_, d := held.Device(dev)
	if d == nil {
		return nil // no longer listed
	}
	if d.Joined && d.Mailbox == j.Mailbox && d.Capability == j.Capability {
		return nil // admitted already: a repeated join
	}
	next = held.Clone()
	next.Version++
	_, nd := next.Device(dev)
	upd := &protocol.UpdateFanout{Fanout: held.Fanout, Add: []protocol.FanoutEntry{{Mailbox: j.Mailbox, Capability: tok}}}
	if nd.Joined && nd.Mailbox != j.Mailbox {
		upd.Remove = []protocol.MailboxID{nd.Mailbox}
	}
	nd.Joined, nd.Mailbox, nd.Capability = true, j.Mailbox, j.Capability
	return c.publishState(ctx, held, next, adminCap, upd, false)
}

// ---- receiving the group contents (in the receive transaction) ----

// pendingRoom reports whether something may wait for a group: it
// already has a pending record, or fewer than maxPendingGroups do.
func pendingRoom(t *tx, pend *store.GroupPending) (bool, error) {
	if len(pend.Parts) > 0 || len(pend.Keys) > 0 {
		return true, nil
	}
	n, err := t.GroupPendingCount()
	return n < maxPendingGroups, err
}

// receiveGroupContent handles a group content from contact device from,
// inside the receive transaction: a part of a state, a distribution or a
// join. What cannot be used is logged and dropped; res collects the
// messages that a distribution unblocked and the work for after the
// commit.
func (c *Client) receiveGroupContent(t *tx, from *contactRecord, ct *content, now time.Time, res *received) error {
	switch ct.Type {
	case contentGroupState:
		return c.receiveGroupPart(t, from, ct.GroupPart, now, res)
	case contentGroupKey:
		return c.receiveGroupKey(t, from, ct.GroupKey, now, res)
	case contentGroupJoin:
		return c.receiveGroupJoin(t, from, ct.GroupJoin, res)
	}
	return nil
}

func (c *Client) receiveGroupPart(t *tx, from *contactRecord, p *groupPart, now time.Time, res *received) error {
	var (
		full     []byte
		adminCap []byte
		logged   = p.Logged
	)
	if p.HasAdmin {
		adminCap = bytes.Clone(p.AdminCap[:])
	}
	if p.Parts == 1 {
		full = p.Chunk
	} else {
		pend, err := t.GroupPending(p.Group[:])
		if err != nil {
			return err
		}
		if ok, err := pendingRoom(t, pend); err != nil || !ok {
			if err == nil {
				c.log.Warn("dropped a part of a group state: too many groups wait")
			}
			return err
		}
		// Parts of another version from this device are stale.
		var keep []store.PendingPart
		for _, q := range pend.Parts {
			if !bytes.Equal(q.From, from.DeviceID) || (q.Version == p.Version && q.Parts == int(p.Parts) && q.Part != int(p.Part)) {
				keep = append(keep, q)
			}
		}
		np := store.PendingPart{From: bytes.Clone(from.DeviceID), Version: p.Version, Part: int(p.Part), Parts: int(p.Parts), Chunk: p.Chunk, AdminCap: adminCap, Logged: logged}
		keep = append(keep, np)
		if len(keep) > maxPendingParts {
			keep = keep[len(keep)-maxPendingParts:]
		}
		chunks := make([][]byte, p.Parts)
		got := 0
		for _, q := range keep {
			if bytes.Equal(q.From, from.DeviceID) && q.Version == p.Version && q.Parts == int(p.Parts) && chunks[q.Part] == nil {
				chunks[q.Part] = q.Chunk
				got++
				if q.Part == 0 {
					adminCap, logged = q.AdminCap, q.Logged
				}
			}
		}
		if got == int(p.Parts) {
			full = bytes.Join(chunks, nil)
			var rest []store.PendingPart
			for _, q := range keep {
				if !bytes.Equal(q.From, from.DeviceID) {
					rest = append(rest, q)
				}
			}
			keep = rest
		}
		pend.Parts = keep
		if err := t.PutGroupPending(p.Group[:], pend); err != nil {
			return err
		}
		if full == nil {
			return nil
		}
	}
	return c.acceptGroupState(t, fpOf(from.Person.Identity), fpOf(from.DeviceID), full, adminCap, logged, now, res)
}

// acceptGroupState checks a received state (from device fromDev of the
// person fromID; logged: the content said the group is a team's staff
// list) against the rules (SPEC 15.5) and applies it, or, for a state of
// a staff list, holds it until the team's transparency log shows it
// (stafflog.go).
func (c *Client) acceptGroupState(t *tx, fromID, fromDev keys.Fingerprint, b, adminCap []byte, logged bool, now time.Time, res *received) error {
	next, err := group.Parse(b)
	if err != nil {
		c.log.Warn("dropped a group state", "err", err)
		return nil
	}
	rec, held, err := c.checkGroupState(t, fromID, next, now)
	if err != nil || rec == nil {
		return err
	}
	team, check, err := c.staffLogOf(t, rec.existing(), held, next, logged)
	if err != nil {
		return err
	}
	if check {
		return c.holdStaffState(t, team, fromID, fromDev, next, b, adminCap, now, res)
	}
	return c.takeGroupState(t, rec, held, next, adminCap, fromDev, team, now, res)
}

// checkGroupState checks next, from a device of the person fromID,
// against the group's rules: against the held state, or as a first
// state. It returns the group's record (a new one for a first state) and
// the held state (nil for a first state); a refused state is logged and
// gives a nil record.
func (c *Client) checkGroupState(t *tx, fromID keys.Fingerprint, next *group.State, now time.Time) (*heldGroup, *group.State, error) {
	rec, err := t.Group(t.GroupConversationID(next.Group[:]))
	if err != nil {
		return nil, nil, err
	}
	if rec == nil {
		if err := group.AcceptFirst(next, fromID, c.idFP); err != nil {
			c.log.Warn("refused a group state", "err", err)
			return nil, nil, nil
		}
		return &heldGroup{GroupRecord: &store.GroupRecord{ID: t.GroupConversationID(next.Group[:]), Group: bytes.Clone(next.Group[:]), Created: now}}, nil, nil
	}
	held, err := groupOf(rec)
	if err != nil {
		return nil, nil, err
	}
	if err := held.Accept(next, fromID); err != nil {
		c.log.Warn("refused a group state", "err", err)
		return nil, nil, nil
	}
	return &heldGroup{GroupRecord: rec, stored: true}, held, nil
}

// heldGroup is a group's record as checkGroupState found it: stored, or
// new for a first state.
type heldGroup struct {
	*store.GroupRecord
	stored bool
}

// existing is the stored record, nil for a first state.
func (h *heldGroup) existing() *store.GroupRecord {
	if !h.stored {
		return nil
	}
	return h.GroupRecord
}

// takeGroupState applies next, checked by checkGroupState (and, for a
// staff list, shown by the team's log: team is then the team's identity),
// to the group's record.
func (c *Client) takeGroupState(t *tx, h *heldGroup, held, next *group.State, adminCap []byte, fromDev, team keys.Fingerprint, now time.Time, res *received) error {
	rec := h.GroupRecord
	// A removed member added again starts afresh (applyGroupState marks
	// it removed again if the state does not list it).
	rec.Removed = false
	if team != (keys.Fingerprint{}) {
		rec.StaffLog = bytes.Clone(team[:])
	}
	tasks, err := c.applyGroupState(t, rec, held, next, adminCap, fromDev)
	if err != nil {
		return err
	}
	res.groups = append(res.groups, tasks...)
	// Messages that waited for a key this state brought (its own).
	return c.retryGroupPending(t, rec, now, res)
}

func (c *Client) receiveGroupKey(t *tx, from *contactRecord, dist []byte, now time.Time, res *received) error {
	d, err := senderkey.ParseDistribution(dist)
	if err != nil {
		return nil
	}
	gid := d.GroupID()
	rec, err := t.Group(t.GroupConversationID(gid[:]))
	if err != nil {
		return err
	}
	var s *group.State
	if rec != nil {
		if rec.Removed {
			return nil
		}
		if s, err = groupOf(rec); err != nil {
			return err
		}
	}
	var m *group.Member
	if s != nil {
		m, _ = s.Device(fpOf(from.DeviceID))
	}
	if m == nil || m.Identity != fpOf(from.Person.Identity) {
		// The state that lists this device has not arrived yet.
		pend, err := t.GroupPending(gid[:])
		if err != nil {
			return err
		}
		if ok, err := pendingRoom(t, pend); err != nil || !ok {
			if err == nil {
				c.log.Warn("dropped a group sender key: too many groups wait")
			}
			return err
		}
		pend.Keys = append(pend.Keys, store.PendingKey{From: bytes.Clone(from.DeviceID), Dist: bytes.Clone(dist), Received: now})
		if len(pend.Keys) > maxPendingKeys {
			pend.Keys = pend.Keys[len(pend.Keys)-maxPendingKeys:]
		}
		return t.PutGroupPending(gid[:], pend)
	}
	ks, err := senderKeysOf(rec, group.ID(gid))
	if err != nil {
		return err
	}
	c.addGroupKey(s, ks, from.DeviceID, dist)
	rec.Keys = ks.MarshalSecret()
	if err := t.PutGroup(rec, s.Name); err != nil {
		return err
	}
	return c.retryGroupPending(t, rec, now, res)
}

func (c *Client) receiveGroupJoin(t *tx, from *contactRecord, j *groupJoin, res *received) error {
	rec, err := t.Group(t.GroupConversationID(j.Group[:]))
	if err != nil || rec == nil || rec.Removed || len(rec.AdminCap) != 32 {
		return err
	}
	s, err := groupOf(rec)
	if err != nil {
		return err
	}
	if m, _ := s.Device(fpOf(from.DeviceID)); m == nil || m.Identity != fpOf(from.Person.Identity) {
		c.log.Info("dropped a group join from a device the group does not list")
		return nil
	}
	res.groups = append(res.groups, groupTask{gid: j.Group, joined: j, from: fpOf(from.DeviceID)})
	return nil
}

// ---- group messages ----

// SendGroup sends text to the group grp (its name or ID): sealed once
// with this device's sender key and uploaded once to the group's fan-out
// list, which stores a copy for every member device. It returns the
// message as stored in the group's conversation (To: the group's name).
// An observer cannot send (ErrObserver), nor a removed member
// (ErrNotGroupMember). opts may set a subject.
func (c *Client) SendGroup(ctx context.Context, grp, text string, opts *SendOptions) (Message, error) {
	var o SendOptions
	if opts != nil {
		o = *opts
	}
	if len(text) > MaxTextSize {
		return Message{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, len(text), MaxTextSize)
	}
	if text == "" || !utf8.ValidString(text) {
		return Message{}, ErrInvalidText
	}
	if !validSubject(o.Subject) {
		return Message{}, ErrInvalidSubject
	}
	if o.ReplyTo != "" {
		return Message{}, fmt.Errorf("%w: replies in groups are not supported by this version", ErrReplyTo)
	}
	now := c.now()
	ct := &content{Type: contentText, Sender: c.devID, SentMS: uint64(now.UnixMilli()), Text: text}
	return c.sendGroup(ctx, grp, ct, &o, nil)
}

// SendGroupFiles sends files (up to MaxAttachments, each uploaded once to
// the group's relay, which every member uses) with an optional text to
// the group grp, as SendGroup does; opts as for SendFiles, without a
// reply-to.
func (c *Client) SendGroupFiles(ctx context.Context, grp, text string, paths []string, opts *SendOptions) (Message, error) {
	var o SendOptions
	if opts != nil {
		o = *opts
	}
	if len(paths) == 0 || len(paths) > MaxAttachments {
		return Message{}, fmt.Errorf("%w: %d files, limit %d", ErrTooManyFiles, len(paths), MaxAttachments)
	}
	if len(text) > MaxTextSize {
		return Message{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, len(text), MaxTextSize)
	}
	if !utf8.ValidString(text) {
		return Message{}, ErrInvalidText
	}
	if !validSubject(o.Subject) {
		return Message{}, ErrInvalidSubject
	}
	if o.ReplyTo != "" {
		return Message{}, fmt.Errorf("%w: replies in groups are not supported by this version", ErrReplyTo)
	}
	// Refused before anything is uploaded.
	if err := c.st.view(func(t *tx) error { _, err := c.mayPost(t, grp); return err }); err != nil {
		return Message{}, err
	}
	refs := make([]attachmentRef, 0, len(paths))
	for _, p := range paths {
		ref, err := c.uploadFile(ctx, fileSource{path: p}, &o)
		if err != nil {
			c.releaseBlobs(ctx, refs)
			return Message{}, err
		}
		refs = append(refs, ref)
	}
	ct := &content{Type: contentAttachment, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()), Text: text, Attachments: refs}
	recs := attachmentRecords(refs)
	m, err := c.sendGroup(ctx, grp, ct, &o, recs)
	if err != nil && m.ID == "" {
		c.releaseBlobs(ctx, refs)
	}
	return m, err
}

// mayPost returns the record of group grp if this person may send to it.
func (c *Client) mayPost(t *tx, grp string) (*store.GroupRecord, error) {
	rec, err := t.lookupGroup(grp)
	if err != nil {
		return nil, err
	}
	if rec.Removed {
		return nil, ErrNotGroupMember
	}
	s, err := groupOf(rec)
	if err != nil {
		return nil, err
	}
	me := s.Member(c.idFP)
	if me == nil {
		return nil, ErrNotGroupMember
	}
	if !me.Role.MaySend() {
		return nil, ErrObserver
	}
	return rec, nil
}

// sendGroup seals ct (a text or files, atts their records) for group grp,
// stores it, and uploads it once to the group's fan-out list.
func (c *Client) sendGroup(ctx context.Context, grp string, ct *content, o *SendOptions, atts []attachmentRecord) (Message, error) {
	env, s, m, err := c.sealGroup(grp, ct, o, atts)
	if err != nil {
		return Message{}, err
	}
	if h := c.envelopeHook.Load(); h != nil {
		(*h)(true, env)
	}
	send, err := protocol.CapabilityTokenFromBytes(s.SendCap[:])
	if err != nil {
		return Message{}, errStoreCorrupt
	}
	resp, err := c.anonRequest(ctx, s.Relay, groupConnKey(s.Group), &protocol.SendFanout{Fanout: s.Fanout, Capability: send, Envelope: env})
	if err == nil {
		if _, ok := resp.(*protocol.FanoutSent); !ok {
			err = unexpected(resp)
		}
	}
	if err != nil {
		reason := err.Error()
		if uerr := c.st.update(func(t *tx) error {
			_, err := t.UpdateMessage(m.ID, func(r *messageRecord) { r.SendError = reason })
			return err
		}); uerr != nil {
			c.log.Warn("could not mark a group message unsent", "err", uerr)
		}
		m.SendError = reason
		return m, fmt.Errorf("client: send to the group: %w", err)
	}
	return m, nil
}

// sealGroup seals text for group grp with this device's sender key and,
// in one transaction, stores the advanced key and the outgoing message;
// it returns the envelope to send and the state it was sealed under.
func (c *Client) sealGroup(grp string, ct *content, o *SendOptions, atts []attachmentRecord) (env []byte, s *group.State, m Message, err error) {
	now := c.now()
	setHeaders(ct, o)
	copy(ct.MsgID[:], randomID(msgIDSize))
	plain, err := groupPlaintext(ct)
	if err != nil {
		return nil, nil, Message{}, err
	}
	c.ev.order.Lock()
	err = c.st.update(func(t *tx) error {
		rec, err := c.mayPost(t, grp)
		if err != nil {
			return err
		}
		if s, err = groupOf(rec); err != nil {
			return err
		}
		if env, err = c.sealGroupEnvelope(t, rec, s, plain, ErrNotGroupMember); err != nil {
			return err
		}
		m = Message{
			ID: localMessageID(c.devID, ct.MsgID), From: Me, To: s.Name, Text: ct.Text, Subject: o.Subject, Urgent: ct.Urgent,
			Time: time.UnixMilli(int64(ct.SentMS)).UTC(), Received: now.UTC(), Outgoing: true,
			Attachments: publicAttachments(atts),
		}
		_, err = storeGroupMessage(t, rec, &m, atts)
		return err
	})
	if err == nil {
		c.emit(Event{Kind: EventMessage, Message: m})
	}
	c.ev.order.Unlock()
	return env, s, m, err
}

// sealGroupEnvelope seals plain with this device's sender key of group
// rec (state s) into a KindGroup envelope, in t, and stores the advanced
// key before the envelope leaves. noKey is the error when this device
// holds no sender key of the group.
func (c *Client) sealGroupEnvelope(t *tx, rec *store.GroupRecord, s *group.State, plain []byte, noKey error) ([]byte, error) {
	own, err := c.ownKey(rec)
	if err != nil {
		return nil, err
	}
	if own == nil {
		return nil, noKey
	}
	hk, err := senderkey.ParseHeaderKey(s.HeaderKey[:])
	if err != nil {
		return nil, errStoreCorrupt
	}
	sealed, err := own.Seal(hk, plain)
	if err != nil {
		return nil, err
	}
	env := append(append(make([]byte, 0, protocol.EnvelopeHeaderSize+len(sealed)), protocol.Version, byte(protocol.KindGroup)), sealed...)
	rec.Own = own.MarshalSecret()
	if err := t.PutGroup(rec, s.Name); err != nil {
		return nil, err
	}
	return env, nil
}

// storeGroupMessage stores m in rec's conversation; it reports whether it
// stored (false: a message with its ID is stored already).
func storeGroupMessage(t *tx, rec *store.GroupRecord, m *Message, atts []attachmentRecord) (bool, error) {
	m.Conversation = hex.EncodeToString(rec.ID)
	r := &messageRecord{
		ID: m.ID, Conversation: rec.ID, From: m.From, To: m.To, Text: m.Text, Subject: m.Subject, Urgent: m.Urgent,
		Time: m.Time, Received: m.Received, Outgoing: m.Outgoing, Attachments: atts, ContentID: m.contentID,
	}
	if m.relayed {
		r.Mailbox, r.Envelope = m.mailbox[:], m.envelope[:]
	}
	stored, err := t.AddMessage(r)
	if err != nil || !stored {
		return stored, err
	}
	m.Read, m.ReadAt = r.Read || !unread(r), r.ReadAt
	m.Folder, err = t.shownFolder(r)
	return true, err
}

// receiveGroup handles a group envelope delivered to this device's group
// mailbox mb, inside the receive transaction.
func (c *Client) receiveGroup(t *tx, mb protocol.MailboxID, envID protocol.EnvelopeID, env []byte, now time.Time, res *received) (drop, err error) {
	rec, err := t.GroupByMailbox(mb[:])
	if err != nil {
		return nil, err
	}
	if rec == nil || rec.Removed {
		return ErrUnknownSender, nil
	}
	s, err := groupOf(rec)
	if err != nil {
		return nil, err
	}
	ks, err := senderKeysOf(rec, s.Group)
	if err != nil {
		return nil, err
	}
	m, drop, err := c.openGroupMessage(t, rec, s, ks, env, mb, envID, now, res)
	if err != nil {
		return nil, err
	}
	if errors.Is(drop, errGroupNoKey) {
		rec.Pending = append(rec.Pending, store.PendingEnvelope{Envelope: bytes.Clone(env), ID: bytes.Clone(envID[:]), Received: now})
		if len(rec.Pending) > maxGroupPending {
			rec.Pending = rec.Pending[len(rec.Pending)-maxGroupPending:]
		}
		return nil, t.PutGroup(rec, s.Name)
	}
	if drop != nil {
		return drop, nil
	}
	rec.Keys = ks.MarshalSecret()
	if err := t.PutGroup(rec, s.Name); err != nil {
		return nil, err
	}
	if m == nil {
		return errDuplicate, nil
	}
	res.msgs = append(res.msgs, *m)
	return nil, nil
}

// retryGroupPending opens again the envelopes of rec that waited for a
// sender key, and stores rec.
func (c *Client) retryGroupPending(t *tx, rec *store.GroupRecord, now time.Time, res *received) error {
	if len(rec.Pending) == 0 || rec.Removed {
		return nil
	}
	s, err := groupOf(rec)
	if err != nil {
		return err
	}
	ks, err := senderKeysOf(rec, s.Group)
	if err != nil {
		return err
	}
	var keep []store.PendingEnvelope
	for _, p := range rec.Pending {
		var mb protocol.MailboxID
		var id protocol.EnvelopeID
		copy(mb[:], rec.Mailbox)
		copy(id[:], p.ID)
		m, drop, err := c.openGroupMessage(t, rec, s, ks, p.Envelope, mb, id, p.Received, res)
		if err != nil {
			return err
		}
		switch {
		case errors.Is(drop, errGroupNoKey):
			keep = append(keep, p)
		case drop != nil:
			c.log.Info("dropped a group message that waited for its sender key", "err", drop)
		case m != nil:
			res.msgs = append(res.msgs, *m)
		}
	}
	rec.Pending = keep
	rec.Keys = ks.MarshalSecret()
	return t.PutGroup(rec, s.Name)
}

// openGroupMessage opens a group envelope with the group's keys (ks is
// advanced on success) and stores its message. It returns the message
// stored (nil for one stored already), or the reason to drop it:
// errGroupNoKey when its sender key has not arrived (keep it), ErrDecrypt,
// ErrUnknownSender, errGroupObserver.
func (c *Client) openGroupMessage(t *tx, rec *store.GroupRecord, s *group.State, ks *senderkey.State, env []byte,
	mb protocol.MailboxID, envID protocol.EnvelopeID, now time.Time, res *received) (*Message, error, error) {
	if protocol.CheckEnvelope(env) != nil || env[1] != byte(protocol.KindGroup) {
		return nil, ErrDecrypt, nil
	}
	msg := env[protocol.EnvelopeHeaderSize:]
	hk, err := senderkey.ParseHeaderKey(s.HeaderKey[:])
	if err != nil {
		return nil, nil, errStoreCorrupt
	}
	sender, plain, err := ks.Open(hk, msg)
	if errors.Is(err, senderkey.ErrDecrypt) && len(rec.PrevHeaderKey) == senderkey.HeaderKeySize {
		prev, perr := senderkey.ParseHeaderKey(rec.PrevHeaderKey)
		if perr != nil {
			return nil, nil, errStoreCorrupt
		}
		sender, plain, err = ks.Open(prev, msg)
	}
	var missing *senderkey.MissingKeyError
	if errors.As(err, &missing) {
		if m, _ := s.Device(keys.Fingerprint(missing.Sender)); m != nil && !m.Role.MaySend() {
			return nil, errGroupObserver, nil
		}
		return nil, errGroupNoKey, nil
	}
	if err != nil {
		return nil, ErrDecrypt, nil
	}
	ct, err := parseSessionContent(plain)
	if err != nil || !(isGroupMessageContent(ct.Type) || isTeamGroupContent(ct.Type)) || ct.Sender != keys.Fingerprint(sender) {
		return nil, ErrDecrypt, nil
	}
	mem, _ := s.Device(keys.Fingerprint(sender))
	if mem == nil {
		return nil, ErrUnknownSender, nil
	}
	if !mem.Role.MaySend() {
		c.log.Info("dropped a group message from an observer")
		return nil, errGroupObserver, nil
	}
	if isTeamGroupContent(ct.Type) {
		return c.receiveTeamGroup(t, rec, s, mem, ct, mb, envID, now, res) // a team's staff group (teamqueue.go)
	}
	var atts []attachmentRecord
	if ct.Type == contentAttachment || ct.Type == contentAttachmentHeaders {
		atts = attachmentRecords(ct.Attachments)
	}
	m := &Message{
		ID: localMessageID(ct.Sender, ct.MsgID), To: s.Name, Text: ct.Text, Subject: ct.Subject, Urgent: ct.Urgent,
		Attachments: publicAttachments(atts),
		Time:        time.UnixMilli(int64(min(ct.SentMS, 1<<62))).UTC(), Received: now,
		mailbox: mb, envelope: envID, relayed: true, contentID: bytes.Clone(ct.MsgID[:]),
	}
	if mem.Identity == c.idFP {
		// Sent by this device (its own copy) or a sibling.
		m.From, m.Outgoing = Me, true
	} else if m.From, err = c.memberName(t, s, mem); err != nil {
		return nil, nil, err
	}
	stored, err := storeGroupMessage(t, rec, m, atts)
	if err != nil || !stored {
		return nil, nil, err
	}
	return m, nil, nil
}

// ---- listing ----

// Groups returns the groups of this person, as their newest states list
// them.
func (c *Client) Groups() ([]Group, error) {
	var out []Group
	err := c.st.view(func(t *tx) error {
		recs, err := t.Groups()
		if err != nil {
			return err
		}
		for _, rec := range recs {
			g, err := c.groupOfRecord(t, rec)
			if err != nil {
				return err
			}
			out = append(out, g)
		}
		return nil
	})
	return out, err
}

func (c *Client) groupInfo(gid group.ID) (Group, error) {
	var g Group
	err := c.st.view(func(t *tx) error {
		rec, err := t.Group(t.GroupConversationID(gid[:]))
		if err != nil {
			return err
		}
		if rec == nil {
			return ErrUnknownGroup
		}
		g, err = c.groupOfRecord(t, rec)
		return err
	})
	return g, err
}

func (c *Client) groupOfRecord(t *tx, rec *store.GroupRecord) (Group, error) {
	s, err := groupOf(rec)
	if err != nil {
		return Group{}, err
	}
	g := Group{ID: groupHex(s.Group), Name: s.Name, Conversation: hex.EncodeToString(rec.ID), Version: s.Version, Removed: rec.Removed}
	if me := s.Member(c.idFP); me != nil && !rec.Removed {
		g.Role = GroupRole(me.Role)
	}
	for i := range s.Members {
		m := &s.Members[i]
		info := GroupMemberInfo{Identity: m.Identity, Role: GroupRole(m.Role), Devices: len(m.Devices)}
		one := *m
		one.Role = group.RoleMember
		if m.Identity == c.idFP {
			info.Name, info.Contact = Me, true
		} else if info.Name, err = c.memberName(t, s, &one); err != nil {
			return Group{}, err
		} else if p, err := t.personByIdentity(m.Identity); err != nil {
			return Group{}, err
		} else {
			info.Contact = p != nil && !p.ViaGroup
		}
		if f := s.Member(m.For); m.Role == group.RoleDelegate && f != nil {
			fo := *f
			fo.Role = group.RoleMember
			if f.Identity == c.idFP {
				info.For = Me
			} else if info.For, err = c.memberName(t, s, &fo); err != nil {
				return Group{}, err
			}
		}
		for _, d := range m.Devices {
			if d.Joined {
				info.Joined++
			}
		}
		g.Members = append(g.Members, info)
	}
	return g, nil
}
