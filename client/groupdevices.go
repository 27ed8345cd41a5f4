package client

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/group"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Members' devices that change after they were added (protocol/SPEC.md
// section 15.5 "Devices linked or revoked later"). A state lists each
// member's devices; a device a member links later is not in it, and one
// the member revokes stays in it, until an admin publishes a state that
// says otherwise. The admin device that published the held state (its
// publisher, below) compares, for every member, the devices the state
// lists with those this device writes to in the member's verified device
// list, and publishes the difference: a new device is listed not joined
// (it is sent the state, joins and gets the sender keys as any device
// does; on a team's staff group its join brings the team's secrets and
// the queue history, teamhistory.go), a revoked one is dropped as a
// removal drops it (its mailbox out of the fan-out list, the header key
// and the send capability replaced, every sender key rotated). The
// comparison needs no record of its own: it is made again whenever a
// device list or a route changes here and at every maintenance, so a
// publish that failed is made at the next one.

// errNoDeviceChange: a group's state lists every member's devices as this
// device knows them.
var errNoDeviceChange = errors.New("client: the group's devices are up to date")

// deviceChange is what refreshMemberDevices changed in a state.
type deviceChange struct {
	added   int
	removed int
}

// refreshMemberDevices changes s (the next state) so that each member's
// devices are those this device knows: a device of a member in the
// member's verified device list that this device writes to, on the
// group's relay, and in no entry of s is added (not joined), while the
// member has fewer than group.MaxDevices; a listed device whose record
// here is revoked is removed, its mailbox added to u.Remove. A member
// this device knows nothing of (no person record: an admin that is not
// its contact) or has blocked is left as it is, as is a device this
// device has no record of: only what this device knows for certain
// changes the state. This device is never removed.
func (c *Client) refreshMemberDevices(t *tx, s *group.State, persons map[keys.Fingerprint]*store.Person, u *protocol.UpdateFanout) (deviceChange, error) {
	var ch deviceChange
	for i := range s.Members {
		m := &s.Members[i]
		p := persons[m.Identity]
		if p == nil || (p.Blocked && !p.Self) {
			continue
		}
		ds, err := t.DevicesOf(p.ID)
		if err != nil {
			return ch, err
		}
		revoked := func(id keys.Fingerprint) bool {
			return slices.ContainsFunc(ds, func(d *store.Device) bool { return d.Revoked && bytes.Equal(d.DeviceID, id[:]) })
		}
		keep := m.Devices[:0:0]
		for _, d := range m.Devices {
			if d.ID != c.devID && revoked(d.ID) {
				if d.Joined {
					u.Remove = append(u.Remove, d.Mailbox)
				}
				ch.removed++
				continue
			}
			keep = append(keep, d)
		}
		ts, err := c.targets(t, p)
		if err != nil {
			return ch, err
		}
		for _, d := range ts {
			id := fpOf(d.DeviceID)
			if len(keep) >= group.MaxDevices {
				break
			}
			if d.Relay != s.Relay {
				// Refused at making or adding, too (ErrGroupRelay): such a
				// device could not join.
				continue
			}
			if om, _ := s.Device(id); om != nil {
				continue
			}
			keep = append(keep, group.Device{ID: id})
			ch.added++
		}
		slices.SortFunc(keep, func(a, b group.Device) int { return bytes.Compare(a.ID[:], b.ID[:]) })
		m.Devices = keep
	}
	return ch, nil
}

// personsByIdentity maps the identity of every person this device knows
// to its record.
func personsByIdentity(t *tx) (map[keys.Fingerprint]*store.Person, error) {
	ps, err := t.Persons()
	if err != nil {
		return nil, err
	}
	out := make(map[keys.Fingerprint]*store.Person, len(ps))
	for _, p := range ps {
		out[fpOf(p.Identity)] = p
	}
	return out, nil
}

// devicePublisher reports whether this device publishes the device
// changes of group rec (state s): it holds the admin capability, and
// either published s itself, or the device that did is no longer an
// admin's device or is revoked here, and this device is the admins'
// lowest listed device not revoked here. One device per group publishes,
// so that two devices of an admin (both holding the admin capability)
// do not sign two states of one version. A team's staff list is changed
// by the team's intake device only (stafflog.go).
func (c *Client) devicePublisher(t *tx, rec *store.GroupRecord, s *group.State, persons map[keys.Fingerprint]*store.Person) (bool, error) {
	if rec.Removed || len(rec.AdminCap) != 32 || !s.IsAdmin(c.idFP) {
		return false, nil
	}
	if len(rec.StaffLog) > 0 {
		team, err := t.Team(rec.ID)
		return err == nil && team != nil && team.Intake, err
	}
	from := fpOf(rec.From)
	if from == c.devID {
		return true, nil
	}
	live := func(m *group.Member, id keys.Fingerprint) (bool, error) {
		p := persons[m.Identity]
		if p == nil || id == c.devID {
			return true, nil
		}
		d, err := t.deviceOf(p, id)
		return d == nil || !d.Revoked, err
	}
	if m, _ := s.Device(from); m != nil && s.IsAdmin(m.Identity) {
		ok, err := live(m, from)
		if err != nil || ok {
			return false, err
		}
	}
	var first *keys.Fingerprint
	for i := range s.Members {
		m := &s.Members[i]
		if m.Role != group.RoleAdmin {
			continue
		}
		for _, d := range m.Devices {
			ok, err := live(m, d.ID)
			if err != nil {
				return false, err
			}
			if ok && (first == nil || bytes.Compare(d.ID[:], first[:]) < 0) {
				id := d.ID
				first = &id
			}
		}
	}
	return first != nil && *first == c.devID, nil
}

// maintainGroupDevices publishes, for each group this device is the
// device publisher of, a state listing its members' devices as this
// device knows them, where the held one does not. Failures are logged:
// the next maintenance (or device list) tries again.
func (c *Client) maintainGroupDevices(ctx context.Context) {
	c.resendOwedStates(ctx)
	var due []group.ID
	err := c.st.view(func(t *tx) error {
		recs, err := t.Groups()
		if err != nil || len(recs) == 0 {
			return err
		}
		persons, err := personsByIdentity(t)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if rec.Removed || len(rec.AdminCap) != 32 {
				continue
			}
			s, err := groupOf(rec)
			if err != nil {
				return err
			}
			if ok, err := c.devicePublisher(t, rec, s, persons); err != nil || !ok {
				if err != nil {
					return err
				}
				continue
			}
			next := s.Clone()
			ch, err := c.refreshMemberDevices(t, next, persons, &protocol.UpdateFanout{})
			if err != nil {
				return err
			}
			if ch.added > 0 || ch.removed > 0 {
				due = append(due, s.Group)
			}
		}
		return nil
	})
	if err != nil {
		c.log.Warn("could not read the groups' devices", "err", err)
		return
	}
	for _, gid := range due {
		if err := c.publishGroupDevices(ctx, gid); err != nil && !errors.Is(err, errNoDeviceChange) {
			c.log.Warn("could not publish a group's member devices yet; will retry", "err", err)
		}
	}
}

// publishGroupDevices publishes the next state of group gid with its
// members' devices as this device knows them (refreshMemberDevices); a
// removed device rotates the group's keys as a removal does, and on a
// team's staff list, as the team's intake, the team's secrets too
// (RemoveStaff). errNoDeviceChange when there is nothing to publish.
func (c *Client) publishGroupDevices(ctx context.Context, gid group.ID) error {
	ch, staff, err := c.publishGroupDevicesLocked(ctx, gid)
	if err != nil {
		return err
	}
	c.log.Info("published a group's member devices", "added", ch.added, "removed", ch.removed)
	if staff && ch.removed > 0 {
		// A revoked staff device held the claim space's write capability
		// and the team keys: they are replaced, and the new ones go to the
		// staff that remain. The state's commit recorded the replacement
		// as owed: one that fails now is made at the next flush
		// (teamrotate.go). In the background, as flushTeams is
		// (publishState): rotateTeam takes teamMu, whose holder may wait
		// for the receive loop this may run on.
		c.goBackground(func() {
			ctx, cancel := context.WithTimeout(c.ctx, maintenanceTimeout)
			defer cancel()
			done, err := c.rotateTeam(ctx, gid[:])
			if err != nil {
				c.log.Warn("could not replace a team's secrets after a staff device was revoked; will retry", "err", err)
				return
			}
			if done {
				c.sendTeamSecrets(ctx, gid[:], nil)
			}
		})
	}
	return nil
}

func (c *Client) publishGroupDevicesLocked(ctx context.Context, gid group.ID) (deviceChange, bool, error) {
	c.groupMu.Lock()
	defer c.groupMu.Unlock()
	var (
		held, next *group.State
		adminCap   []byte
		upd        protocol.UpdateFanout
		ch         deviceChange
		staff      bool
	)
	err := c.st.view(func(t *tx) error {
		rec, err := t.Group(t.GroupConversationID(gid[:]))
		if err != nil {
			return err
		}
		if rec == nil {
			return ErrUnknownGroup
		}
		if held, err = groupOf(rec); err != nil {
			return err
		}
		persons, err := personsByIdentity(t)
		if err != nil {
			return err
		}
		if ok, err := c.devicePublisher(t, rec, held, persons); err != nil || !ok {
			return errors.Join(err, errNoDeviceChange)
		}
		staff = len(rec.StaffLog) > 0
		adminCap = rec.AdminCap
		next = held.Clone()
		next.Version++
		upd = protocol.UpdateFanout{Fanout: held.Fanout}
		if ch, err = c.refreshMemberDevices(t, next, persons, &upd); err != nil {
			return err
		}
		if ch.added == 0 && ch.removed == 0 {
			return errNoDeviceChange
		}
		return nil
	})
	if err != nil {
		return ch, false, err
	}
	return ch, staff, c.publishState(ctx, held, next, adminCap, &upd, ch.removed > 0)
}

// sendGroupKeysTo sends this device's sender key distribution, at its
// current iteration, to device dev for every group that lists dev and
// this device: dev just gave this device a route (a member's device
// linked later, introducing itself), and the state that listed it may
// have come before the route, when dev could not be written to.
// A repeated distribution changes nothing for its receiver.
func (c *Client) sendGroupKeysTo(ctx context.Context, dev keys.Fingerprint) {
	type send struct {
		gid  group.ID
		dist []byte
	}
	var sends []send
	err := c.st.view(func(t *tx) error {
		recs, err := t.Groups()
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if rec.Removed {
				continue
			}
			s, err := groupOf(rec)
			if err != nil {
				return err
			}
			if _, d := s.Device(dev); d == nil {
				continue
			}
			if _, me := s.Device(c.devID); me == nil {
				continue
			}
			own, err := c.ownKey(rec)
			if err != nil {
				return err
			}
			if own == nil {
				continue // made with the join, and sent to every listed device then
			}
			sends = append(sends, send{s.Group, own.Distribution()})
		}
		return nil
	})
	if err != nil {
		c.log.Warn("could not read the groups", "err", err)
		return
	}
	for _, s := range sends {
		c.sendGroupKey(ctx, s.gid, s.dist, []keys.Fingerprint{dev})
	}
}

// groupDevicesTask is the group work a received device list or route
// leaves for after the commit (runGroupTasksOn): routed, when not zero,
// is a device that gave this device a route.
func groupDevicesTask(routed keys.Fingerprint) groupTask {
	return groupTask{devices: true, routed: routed}
}

// runGroupDevicesTask carries out a groupDevicesTask.
func (c *Client) runGroupDevicesTask(ctx context.Context, tk groupTask) {
	if tk.routed != (keys.Fingerprint{}) {
		c.sendGroupKeysTo(ctx, tk.routed)
	}
	c.maintainGroupDevices(ctx)
}

// owedGroupStates are the listed devices this device could not send a
// group state to (sendGroupState): the device's prekey bundle could not
// be fetched (a device just linked publishes its prekeys only once it has
// set itself up, so the state its linking published goes nowhere), or
// its relay could not be reached. A device that never receives a state
// never joins, so the state is sent again at each maintenance until a
// send succeeds or the device is no longer listed not joined. Kept in
// memory: at the first maintenance after the Client starts, every device
// not joined of a group whose held state this device published is owed
// one, so a Client closed before its retry loses nothing (a receiver
// holding that version already refuses the repeat).
type owedGroupStates struct {
	mu     sync.Mutex
	seeded bool
	m      map[owedState]owedTry
}

type owedState struct {
	gid group.ID
	dev keys.Fingerprint
}

type owedTry struct {
	tries int
	next  time.Time
}

// owedFreeTries failed sends are tried again at every maintenance; then
// one waits owedBackoff more per failure, at most owedMaxWait.
const (
	owedFreeTries = 8
	owedBackoff   = 30 * time.Second
	owedMaxWait   = 10 * time.Minute
)

func (o *owedGroupStates) fail(gid group.ID, dev keys.Fingerprint, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[owedState]owedTry{}
	}
	k := owedState{gid, dev}
	t := o.m[k]
	t.tries++
	t.next = now
	if t.tries > owedFreeTries {
		t.next = now.Add(min(time.Duration(t.tries-owedFreeTries)*owedBackoff, owedMaxWait))
	}
	o.m[k] = t
}

func (o *owedGroupStates) done(gid group.ID, dev keys.Fingerprint) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, owedState{gid, dev})
}

// needsSeed reports whether seed has not run yet on this Client.
func (o *owedGroupStates) needsSeed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.seeded
}

// seed owes a state to each device of ks not owed one yet, once per
// Client.
func (o *owedGroupStates) seed(ks []owedState) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seeded {
		return
	}
	o.seeded = true
	if o.m == nil {
		o.m = map[owedState]owedTry{}
	}
	for _, k := range ks {
		if _, ok := o.m[k]; !ok {
			o.m[k] = owedTry{}
		}
	}
}

// due are the owed sends whose time has come, by group.
func (o *owedGroupStates) due(now time.Time) map[group.ID][]keys.Fingerprint {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[group.ID][]keys.Fingerprint{}
	for k, t := range o.m {
		if !t.next.After(now) {
			out[k.gid] = append(out[k.gid], k.dev)
		}
	}
	return out
}

// resendOwedStates sends the held state of each group again to the
// devices owed it (owedGroupStates), when this device published that
// state and still lists them not joined; one that no longer needs it is
// forgotten.
func (c *Client) resendOwedStates(ctx context.Context) {
	if c.owedStates.needsSeed() {
		var ks []owedState
		err := c.st.view(func(t *tx) error {
			recs, err := t.Groups()
			if err != nil {
				return err
			}
			for _, rec := range recs {
				if rec.Removed || !bytes.Equal(rec.From, c.devID[:]) {
					continue
				}
				s, err := groupOf(rec)
				if err != nil {
					return err
				}
				for _, m := range s.Members {
					for _, d := range m.Devices {
						if !d.Joined && d.ID != c.devID {
							ks = append(ks, owedState{s.Group, d.ID})
						}
					}
				}
			}
			return nil
		})
		if err != nil {
			c.log.Warn("could not read the groups", "err", err)
			return
		}
		c.owedStates.seed(ks)
	}
	for gid, devs := range c.owedStates.due(c.now()) {
		var (
			s        *group.State
			adminCap []byte
			send     []keys.Fingerprint
		)
		err := c.st.view(func(t *tx) error {
			rec, err := t.Group(t.GroupConversationID(gid[:]))
			if err != nil || rec == nil || rec.Removed || !bytes.Equal(rec.From, c.devID[:]) {
				return err
			}
			if s, err = groupOf(rec); err != nil {
				return err
			}
			adminCap = rec.AdminCap
			for _, dev := range devs {
				if _, d := s.Device(dev); d != nil && !d.Joined {
					send = append(send, dev)
				}
			}
			return nil
		})
		if err != nil {
			c.log.Warn("could not read a group", "err", err)
			continue
		}
		for _, dev := range devs {
			if !slices.Contains(send, dev) {
				c.owedStates.done(gid, dev)
			}
		}
		if len(send) > 0 {
			c.sendGroupState(ctx, s, adminCap, send, nil)
		}
	}
}
