package client

// Role accounts and their handover (protocol/SPEC.md section 15.7, "Role
// accounts", "Handover" and "Role accounts over the relay"). A role
// account ("Pharmacy on call") is listed in the organisation directory
// with its team; who holds it changes by a role record
// (client/internal/team/directory) that a staff member of the team signs
// to take it (the on-call handover) or leave it, or an administrator
// signs to set any holder. The record is sent, as a session content of
// type 0x26, to every staff member of the directory who is a contact and
// to this person's other devices, as availability statuses are
// (status.go); each device keeps the newest holding per role.
//
// Outsiders reach a role through an invitation the team's intake makes
// for it (TeamInviteRole): the intake remembers the role for the outsider
// who arrives through it and names it in every message of theirs it
// forwards to the staff. The holder's devices claim a new conversation
// addressed to the role as it arrives. When the holder changes from A to
// B, B's devices carry the handover out as claim-register writes
// (queue.HandOver: A's open conversations of the role become B's; new
// ones are claimed); when the role becomes vacant, A's devices put A's
// conversations of the role back to new (queue.Release). A conversation
// A assigned to a colleague stays with them. The history follows by
// itself: the role's conversations live in its team's staff group, whose
// members all hold them.

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
	"github.com/postern/postern/client/internal/team/directory"
	"github.com/postern/postern/client/internal/team/queue"
	"github.com/postern/postern/keys"
)

// contentRole carries an encoded role record (directory.RoleRecordSize
// bytes).
const contentRole byte = 0x26

// Errors of role accounts.
var (
	// ErrUnknownRole: the held directory lists no role account of that
	// name.
	ErrUnknownRole = errors.New("client: no role account of that name in the organisation directory")
	// ErrRoleRefused: the change of holder is not one this person may
	// make (not staff of the role's team, taking it for someone else
	// without being an administrator, a holder who is not staff of the
	// role's team).
	ErrRoleRefused = errors.New("client: role change refused")
)

// RoleInfo is a role account as this device holds it.
type RoleInfo struct {
	Name string
	Team string // the role's team's name
	// Holder is who holds it now (Me for this person, a contact's name,
	// else their directory name); "" when it is vacant.
	Holder         string
	HolderIdentity keys.Fingerprint
	// Seq is the held holding's sequence: a record that changes the
	// holder is signed with Seq + 1.
	Seq uint64
}

// roleRecordKey is where a role's holding is kept: the directory bucket,
// beside the held directory and the statuses, one record per role.
func roleRecordKey(t *tx, id directory.RoleID) []byte {
	return t.Index(store.BucketDirectory, []byte("role"), id[:])
}

// roleState is what a device keeps of one role account.
type roleState struct {
	V int `json:"v"`
	// Record is the newest role record this device accepted for the
	// role (empty: none; the directory's own entry holds).
	Record []byte `json:"record,omitempty"`
	// Settled is the holder whose handover this device carried out last
	// (32 bytes; empty: nobody): the "from" of the next one.
	Settled []byte `json:"settled,omitempty"`
	// Owed: this device's part of the handover to the holder now is not
	// finished (a write the relay did not answer or refused for a
	// capability this device does not hold yet, or conversations of a
	// team whose secrets it does not hold yet): Settled stays, and the
	// handover is tried again at every maintenance and when team
	// secrets arrive, until it is done or the holding changes.
	Owed bool `json:"owed,omitempty"`
}

func getRoleState(t *tx, id directory.RoleID) (*roleState, error) {
	var r roleState
	ok, err := t.Get(store.BucketDirectory, roleRecordKey(t, id), &r)
	if err != nil || !ok {
		return &roleState{V: 1}, err
	}
	if r.V != 1 || (len(r.Settled) != 0 && len(r.Settled) != len(keys.Fingerprint{})) ||
		(len(r.Record) != 0 && len(r.Record) != directory.RoleRecordSize) {
		return nil, fmt.Errorf("%w: a role record", store.ErrCorrupt)
	}
	return &r, nil
}

func putRoleState(t *tx, id directory.RoleID, r *roleState) error {
	r.V = 1
	return t.Put(store.BucketDirectory, roleRecordKey(t, id), r)
}

// heldHolding is the holding this device keeps for role under d: the
// newest of the directory's own entry and the record accepted last
// (directory.Merge). A stored record was checked when it was accepted;
// it is parsed again, and its signature verified, as everything read
// from the store is.
func heldHolding(t *tx, d *directory.Directory, id directory.RoleID) (directory.RoleHolding, *roleState, error) {
	st, err := getRoleState(t, id)
	if err != nil {
		return directory.RoleHolding{}, nil, err
	}
	h, _ := d.Holding(id)
	if len(st.Record) > 0 {
		r, err := directory.ParseRoleRecord(st.Record)
		if err != nil || r.Role != id {
			return h, nil, fmt.Errorf("%w: a held role record", store.ErrCorrupt)
		}
		if r.Org == d.Org {
			h = d.Merge(r.Holding())
		}
	}
	return h, st, nil
}

// Roles returns the role accounts of the held directory with their
// holders, by name. Without a directory it returns none.
func (c *Client) Roles() ([]RoleInfo, error) {
	var out []RoleInfo
	err := c.st.view(func(t *tx) error {
		d, _, err := c.heldDirectory(t)
		if err != nil || d == nil {
			return err
		}
		for _, r := range d.Roles {
			h, _, err := heldHolding(t, d, r.ID)
			if err != nil {
				return err
			}
			ri := RoleInfo{Name: r.Name, Seq: h.Seq, HolderIdentity: d.Holder(h)}
			if tm := d.Team(r.Team); tm != nil {
				ri.Team = tm.Name
			}
			if ri.HolderIdentity != (keys.Fingerprint{}) {
				if ri.Holder, err = c.nameOf(t, d, ri.HolderIdentity); err != nil {
					return err
				}
			}
			out = append(out, ri)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b RoleInfo) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return out, err
}

// TakeRole makes this person the holder of the role account named role
// (they must be staff of its team): the on-call handover. The role's
// open conversations of the previous holder, and its new ones, become
// this person's.
func (c *Client) TakeRole(ctx context.Context, role string) (RoleInfo, error) {
	return c.setRole(ctx, role, func(*tx, *directory.Directory) (keys.Fingerprint, error) { return c.idFP, nil })
}

// LeaveRole leaves the role account named role vacant: this person's
// open conversations of the role go back to new.
func (c *Client) LeaveRole(ctx context.Context, role string) (RoleInfo, error) {
	return c.setRole(ctx, role, func(*tx, *directory.Directory) (keys.Fingerprint, error) { return keys.Fingerprint{}, nil })
}

// SetRoleHolder, for an administrator of the organisation, makes the
// staff member named staff (a contact's name or a staff name of the
// directory) the holder of the role account named role; "" leaves it
// vacant.
func (c *Client) SetRoleHolder(ctx context.Context, role, staff string) (RoleInfo, error) {
	return c.setRole(ctx, role, func(t *tx, d *directory.Directory) (keys.Fingerprint, error) {
		if staff == "" {
			return keys.Fingerprint{}, nil
		}
		return c.staffNamed(t, d, staff)
	})
}

// staffNamed finds the staff member of d a name means: a contact's name,
// else a staff name of d (the only one so named), else Me.
func (c *Client) staffNamed(t *tx, d *directory.Directory, name string) (keys.Fingerprint, error) {
	if name == Me {
		return c.idFP, nil
	}
	id, err := c.resolveStaff(t, d, name)
	if errors.Is(err, ErrInvalidStatus) {
		// resolveStaff's words are the status's; the fault is the same.
		return id, fmt.Errorf("%w: %q is not one staff member of the organisation directory", ErrRoleRefused, name)
	}
	return id, err
}

// setRole signs a role record naming the holder who decides, with the
// held holding's sequence + 1, checks it as every receiver will, keeps
// it, sends it to the staff and carries out this device's part of the
// handover.
func (c *Client) setRole(ctx context.Context, role string, who func(*tx, *directory.Directory) (keys.Fingerprint, error)) (RoleInfo, error) {
	if c.id == nil {
		return RoleInfo{}, errors.New("client: this device does not hold its person's identity key, which signs the role record")
	}
	var (
		b  []byte
		d  *directory.Directory
		ev Event
	)
	err := c.st.update(func(t *tx) error {
		var err error
		if d, _, err = c.heldDirectory(t); err != nil {
			return err
		}
		if d == nil {
			return ErrNoDirectory
		}
		r := heldRole(d, role)
		if r == nil {
			return fmt.Errorf("%w: %q", ErrUnknownRole, role)
		}
		holder, err := who(t, d)
		if err != nil {
			return err
		}
		cur, st, err := heldHolding(t, d, r.ID)
		if err != nil {
			return err
		}
		if cur.Seq == ^uint64(0) {
			return fmt.Errorf("%w: the role's sequence is exhausted", ErrRoleRefused)
		}
		rec := &directory.RoleRecord{Org: d.Org, Role: r.ID, Seq: cur.Seq + 1, Time: c.now().Truncate(time.Second), Holder: holder}
		if b, err = rec.Sign(c.id); err != nil {
			return fmt.Errorf("%w: %v", ErrRoleRefused, err)
		}
		parsed, err := directory.ParseRoleRecord(b)
		if err != nil {
			return err
		}
		// Checked as every colleague's device will check it.
		if _, err := d.ApplyRoleRecord(cur, parsed); err != nil {
			return fmt.Errorf("%w: %v", ErrRoleRefused, err)
		}
		st.Record = b
		ev = roleEvent(d, r.ID)
		return putRoleState(t, r.ID, st)
	})
	if err != nil {
		return RoleInfo{}, err
	}
	// Other front-ends of this Client (another tab) show the new holder.
	c.emit(ev)
	targets, _, err := c.staffTargets(d)
	if err != nil {
		return RoleInfo{}, err
	}
	c.sendToStaff(ctx, targets, "a role record", func() *content { return &content{Type: contentRole, Role: b} })
	c.settleRoles(ctx)
	rs, err := c.Roles()
	for _, ri := range rs {
		if ri.Name == role {
			return ri, err
		}
	}
	return RoleInfo{}, errors.Join(err, fmt.Errorf("%w: %q", ErrUnknownRole, role))
}

// receiveRole accepts a received role record, in the receiving
// transaction: only on a device with a held directory, only from a staff
// member or an administrator of the directory (never an outsider), only
// the sender's own record (or one from this person's other device), and
// only what directory.ApplyRoleRecord accepts against the held holding
// (the directory's rules; a record not ordered after the holding is a
// rollback). Anything else is logged and changes nothing.
func (c *Client) receiveRole(t *tx, from *contactRecord, ct *content, res *received) error {
	if c.dirEnrol == nil {
		return nil
	}
	d, _, err := c.heldDirectory(t)
	if err != nil || d == nil {
		return err
	}
	sender := fpOf(from.Person.Identity)
	var r *directory.RoleRecord
	switch {
	case !from.Person.Self && d.Person(sender) == nil && !d.IsAdmin(sender):
		err = fmt.Errorf("%w: a role record from someone outside the directory", directory.ErrNotEntitled)
	default:
		r, err = directory.ParseRoleRecord(ct.Role)
	}
	if err == nil && !from.Person.Self && r.Signer.Fingerprint() != sender {
		err = fmt.Errorf("%w: a role record signed by another person than its sender", directory.ErrNotEntitled)
	}
	var (
		cur directory.RoleHolding
		st  *roleState
	)
	if err == nil {
		if d.Role(r.Role) == nil {
			err = fmt.Errorf("%w: role", directory.ErrUnknown)
		} else {
			cur, st, err = heldHolding(t, d, r.Role)
		}
	}
	if err == nil {
		_, err = d.ApplyRoleRecord(cur, r)
	}
	if err != nil {
		if errors.Is(err, store.ErrCorrupt) {
			return err
		}
		c.log.Info("refused a role record", "err", err)
		return nil
	}
	st.Record = bytes.Clone(ct.Role)
	if err := putRoleState(t, r.Role, st); err != nil {
		return err
	}
	res.roles = true
	res.events = append(res.events, roleEvent(d, r.Role))
	return nil
}

// roleEvent is the EventRole of role under d.
func roleEvent(d *directory.Directory, role directory.RoleID) Event {
	ev := Event{Kind: EventRole}
	if r := d.Role(role); r != nil {
		ev.Role = r.Name
		if tm := d.Team(r.Team); tm != nil {
			ev.Team = tm.Name
		}
	}
	return ev
}

// ---- conversations addressed to a role ----

// TeamInviteRole is TeamInvite for the role account named role, run on
// the team's intake profile, which must hold the organisation directory
// listing the role in a team whose staff group is this team's: the
// intake remembers the role for the outsider who accepts it, and every
// message of theirs reaches the staff addressed to the role, where its
// holder answers it.
func (c *Client) TeamInviteRole(ctx context.Context, team, role string) (string, error) {
	rec, err := c.intakeTeam(team)
	if err != nil {
		return "", err
	}
	var id directory.RoleID
	err = c.st.view(func(t *tx) error {
		d, _, err := c.heldDirectory(t)
		if err != nil {
			return err
		}
		if d == nil {
			return ErrNoDirectory
		}
		r := heldRole(d, role)
		if r == nil {
			return fmt.Errorf("%w: %q", ErrUnknownRole, role)
		}
		// The role's team must be this one, by its staff group: a role of
		// another team is not this intake's to invite for.
		if tm := d.Team(r.Team); tm == nil || !bytes.Equal(tm.Group[:], rec.Group) {
			return fmt.Errorf("%w: %q is not a role of this team (the directory must name the team's staff group)", ErrUnknownRole, role)
		}
		id = r.ID
		return nil
	})
	if err != nil {
		return "", err
	}
	code, err := c.Invite(ctx)
	if err != nil {
		return "", err
	}
	inv, err := ParseInvitation(code)
	if err != nil {
		return "", err
	}
	err = c.st.update(func(t *tx) error {
		k := invitationKey(t, inv.Mailbox[:])
		var ir invitationRecord
		ok, err := t.Get(bucketInvitations, k, &ir)
		if err != nil || !ok {
			return errors.Join(err, errors.New("client: the invitation just made is not stored"))
		}
		ir.Role = bytes.Clone(id[:])
		return t.Put(bucketInvitations, k, &ir)
	})
	if err != nil {
		return "", err
	}
	return code, nil
}

// invitedRole, on an intake, is the role account (its ID) of the
// invitation the outsider of identity came through; nil if none.
func invitedRole(t *tx, identity keys.Fingerprint) ([]byte, error) {
	var role []byte
	err := t.Each(bucketInvitations, func(_, v []byte) error {
		var ir invitationRecord
		if err := jsonUnmarshal(v, &ir); err != nil {
			return err
		}
		if ir.Used && len(ir.Role) == len(directory.RoleID{}) && bytes.Equal(ir.UsedBy, identity[:]) {
			role = bytes.Clone(ir.Role)
		}
		return nil
	})
	return role, err
}

// queueRole is the role ID a forward of q names (zero: none).
func queueRole(q *store.QueueRecord) [16]byte {
	var id [16]byte
	if len(q.Role) == len(id) {
		copy(id[:], q.Role)
	}
	return id
}

// roleName is how this device shows the role account id ("" for none):
// its name in the held directory, else the start of its ID.
func (c *Client) roleName(t *tx, id []byte) (string, error) {
	if len(id) != len(directory.RoleID{}) {
		return "", nil
	}
	d, _, err := c.heldDirectory(t)
	if err != nil {
		return "", err
	}
	if d != nil {
		if r := d.Role(directory.RoleID(id)); r != nil {
			return r.Name, nil
		}
	}
	return "role " + hex.EncodeToString(id[:4]), nil
}

// noteQueueRole keeps on a staff device's queue record the role account
// a forward from the intake names, and reports whether the conversation
// is addressed to a role (its holder's devices may claim it now).
func (c *Client) noteQueueRole(q *store.QueueRecord, tc *teamContent) bool {
	if tc.Role == ([16]byte{}) {
		return len(q.Role) != 0
	}
	if len(q.Role) == 0 {
		q.Role = bytes.Clone(tc.Role[:])
	}
	return true
}

// ---- the handover ----

// roleJob is one role whose conversations this device may have to move.
type roleJob struct {
	role     directory.RoleID
	from, to keys.Fingerprint // the holder settled last, the holder now
	owed     bool             // the handover was left owed
}

// errHandoverOwed marks a role's handover this device could not finish
// yet for a reason that may mend (roleState.Owed).
var errHandoverOwed = errors.New("client: a role's handover waits for the team's secrets")

// settleRoles carries out this device's part of every role's handover:
// for each role of the held directory, the effective holder now against
// the holder whose handover it settled last. It is safe to run at any
// time and again: every write decides from the register. Failures are
// logged; a role whose handover could not be finished is tried again at
// the next settle, at the next maintenance (settleOwedRoles) or when team
// secrets arrive.
func (c *Client) settleRoles(ctx context.Context) {
	c.settleRolesOf(ctx, false)
}

// settleOwedRoles settles only the roles whose handover this device left
// owed, or has not carried out yet: at every maintenance.
func (c *Client) settleOwedRoles(ctx context.Context) {
	c.settleRolesOf(ctx, true)
}

func (c *Client) settleRolesOf(ctx context.Context, owedOnly bool) {
	if c.dirEnrol == nil {
		return
	}
	var jobs []roleJob
	err := c.st.view(func(t *tx) error {
		d, _, err := c.heldDirectory(t)
		if err != nil || d == nil {
			return err
		}
		for _, r := range d.Roles {
			h, st, err := heldHolding(t, d, r.ID)
			if err != nil {
				return err
			}
			j := roleJob{role: r.ID, from: fpOf(st.Settled), to: d.Holder(h), owed: st.Owed}
			if owedOnly && !j.owed && j.from == j.to {
				continue
			}
			jobs = append(jobs, j)
		}
		return nil
	})
	if err != nil {
		c.log.Warn("could not read the role accounts", "err", err)
		return
	}
	for _, j := range jobs {
		err := c.handOver(ctx, j)
		owed := err != nil
		if owed {
			c.log.Warn("could not carry out a role's handover yet; will retry", "err", err)
		}
		if owed == j.owed && (owed || j.from == j.to) {
			continue // nothing to note
		}
		if err := c.st.update(func(t *tx) error {
			st, err := getRoleState(t, j.role)
			if err != nil {
				return err
			}
			// Settled moves only once the handover is done: an owed
			// one is tried again from the same holder.
			st.Owed = owed
			if !owed {
				st.Settled = nil
				if j.to != (keys.Fingerprint{}) {
					st.Settled = bytes.Clone(j.to[:])
				}
			}
			return putRoleState(t, j.role, st)
		}); err != nil {
			c.log.Warn("could not note a role's handover", "err", err)
		}
	}
}

// roleConversations returns the open (new, claimed or assigned) queue
// conversations addressed to role, with their values in this device's
// view, and how many of its conversations are of a team whose secrets
// this device does not hold (yet).
func (c *Client) roleConversations(role directory.RoleID) ([]*queueTarget, []queue.Value, int, error) {
	var (
		qts     []*queueTarget
		vs      []queue.Value
		waiting int
	)
	err := c.st.view(func(t *tx) error {
		qs, err := t.Queues(nil)
		if err != nil {
			return err
		}
		for _, q := range qs {
			if !bytes.Equal(q.Role, role[:]) {
				continue
			}
			qt := &queueTarget{q: q}
			copy(qt.conv[:], q.Conversation)
			if err := c.completeTarget(t, qt); err != nil {
				if errors.Is(err, ErrNotStaff) {
					if qt.team == nil {
						waiting++ // no secrets yet; a removed member's group stays removed
					}
					continue
				}
				return err
			}
			v := queue.Initial(q.Opened, q.Urgent)
			if q.Version > 0 {
				if v, err = qt.space.Open(qt.conv, q.Sealed); err != nil {
					return fmt.Errorf("client: a queue register held: %w", err)
				}
			}
			if v.State.Closed() {
				continue
			}
			qts, vs = append(qts, qt), append(vs, v)
		}
		return nil
	})
	return qts, vs, waiting, err
}

// handOver moves role j's conversations as this device's part:
//   - this person holds the role: its new conversations are claimed, and,
//     when the holding came from someone else (j.from), their open
//     conversations of the role become this person's (queue.HandOver);
//   - the role became vacant and this person held it: this person's open
//     conversations of the role go back to new (queue.Release).
//
// Conversations owned by anyone else (a colleague the previous holder
// assigned one to) stay. It returns an error only for what a retry may
// mend (the relay, the store, the team's secrets not held yet): the
// handover is then owed.
func (c *Client) handOver(ctx context.Context, j roleJob) error {
	var zero keys.Fingerprint
	mine := j.to == c.idFP
	leaving := j.to == zero && j.from == c.idFP
	if !mine && !leaving {
		return nil
	}
	from := j.from
	if from == c.idFP {
		from = zero // this person held it already: only new conversations to take
	}
	qts, vs, waiting, err := c.roleConversations(j.role)
	if err != nil {
		return err
	}
	convs := make([]directory.RoleConversation, len(qts))
	byID := make(map[string]*queueTarget, len(qts))
	for i, v := range vs {
		convs[i] = directory.RoleConversation{ID: qts[i].q.ID, Role: j.role, Open: true}
		byID[string(qts[i].q.ID)] = qts[i]
		if v.State.Open() {
			convs[i].Owner = v.Owner
		}
	}
	var moves []directory.Move
	if mine {
		moves = directory.Handover(j.role, from, c.idFP, convs)
	} else {
		moves = directory.Handover(j.role, c.idFP, zero, convs)
	}
	var (
		errs  []error
		moved []string // the teams whose queue this device's writes changed
	)
	for _, m := range moves {
		qt := byID[string(m.ID)]
		me, err := actorOf(qt.state, c.idFP)
		if err != nil {
			continue // not (or no longer) staff of the role's team's queue
		}
		op, decide := queue.OpRelease, func(v queue.Value) (queue.Value, error) { return queue.Release(v, me) }
		if mine {
			op = queue.OpHandover
			decide = func(v queue.Value) (queue.Value, error) {
				if v.State == queue.New || from == zero {
					return queue.Claim(v, me)
				}
				return queue.HandOver(v, me, from)
			}
		}
		err = c.queueWrite(ctx, qt, op, decide)
		switch {
		case err == nil:
			if !slices.Contains(moved, qt.team.Name) {
				moved = append(moved, qt.team.Name)
			}
		case errors.Is(err, ErrNotStaff):
			// The relay refused the write capability held: the team's
			// new secrets have not reached this device yet. Owed.
			errs = append(errs, err)
		case errors.Is(err, ErrOwned), errors.Is(err, ErrNotOwner), errors.Is(err, ErrQueueState),
			errors.Is(err, ErrObserver):
			// Someone else's now (taken, assigned, resolved meanwhile):
			// not this device's to move.
			c.log.Info("a role's conversation was not moved", "err", err)
		default:
			errs = append(errs, err)
		}
	}
	// No call of a front-end made these writes (a role record did): its
	// queue is told, as of a colleague's change.
	for _, team := range moved {
		c.emit(Event{Kind: EventQueue, Team: team})
	}
	if waiting > 0 {
		errs = append(errs, fmt.Errorf("%w: %d conversations", errHandoverOwed, waiting))
	}
	return errors.Join(errs...)
}
