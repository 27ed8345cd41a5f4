package client

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/group"
	"github.com/postern/postern/client/internal/team/queue"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Teams (protocol/SPEC.md section 15.9). A team is a person of its own
// ("Pharmacy") whose device is the team's intake: outsiders reach it as a
// contact. Its staff are the members of a group of section 15.5 (the
// staff group, the team person its admin), and its queue's claims live
// in a claim space on the intake's relay. The intake gives every staff
// device the team's secrets (contentTeamSecrets): the claim space, its
// write capability, the claim key and the team keys.

var (
	// ErrUnknownTeam: no team of this device has that name or ID.
	ErrUnknownTeam = errors.New("client: no such team")
	// ErrNotTeamAdmin: only the team's intake profile changes its staff.
	ErrNotTeamAdmin = errors.New("client: only the team's own profile (its intake) can do this")
	// ErrNotStaff: the person named is not (or no longer) on the team's
	// staff, or this device holds no secrets of the team.
	ErrNotStaff = errors.New("client: not on the team's staff")
	// ErrUnknownQueueItem: no queue conversation has that ID (or the ID
	// given is the start of several).
	ErrUnknownQueueItem = errors.New("client: no such queue conversation")
	// ErrTeamExists: this profile is a team already, or the name is
	// taken by one of its groups.
	ErrTeamExists = errors.New("client: this profile is a team already")
	// ErrOwned: the conversation is owned by another staff member
	// (queue.ErrOwned).
	ErrOwned = errors.New("client: the conversation is owned by another staff member")
	// ErrNotOwner: only the conversation's owner may assign or resolve it
	// (queue.ErrNotOwner).
	ErrNotOwner = errors.New("client: only the conversation's owner can do this")
	// ErrQueueState: not allowed in the conversation's state
	// (queue.ErrState): a claim of a resolved one, a resolve of one
	// nobody owns.
	ErrQueueState = errors.New("client: not allowed in the conversation's state")
)

// Team describes a team this device belongs to.
type Team struct {
	ID     string // the staff group's ID, 32 hex digits
	Name   string
	Intake bool   // this device is the team's intake (its person is the team)
	Epoch  uint32 // the current team key epoch
	// Staff are the staff group's members (the team person its admin).
	Staff []GroupMemberInfo
	// Conversations counts the queue conversations this device holds.
	Conversations int
}

// teamConnKey names the unauthenticated connection used for a team's
// claim space.
func teamConnKey(g []byte) string { return "team:" + hex.EncodeToString(g) }

// lookupTeam finds a team by its name or its staff group's ID (hex).
func (t *tx) lookupTeam(name string) (*store.TeamRecord, error) {
	ts, err := t.Teams()
	if err != nil {
		return nil, err
	}
	for _, r := range ts {
		if r.Name == name || hex.EncodeToString(r.Group) == name {
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownTeam, name)
}

// spaceOf is the queue.Space of team record r.
func spaceOf(r *store.TeamRecord) (*queue.Space, error) {
	ck, err := queue.ClaimKeyFromSecret(r.ClaimKey)
	if err != nil || len(r.Keys) == 0 || len(r.Space) != 16 {
		return nil, errStoreCorrupt
	}
	var ks []queue.TeamKey
	for _, k := range r.Keys {
		tk, err := queue.TeamKeyFromSecret(k.Epoch, k.Key)
		if err != nil {
			return nil, errStoreCorrupt
		}
		ks = append(ks, tk)
	}
	sp, err := queue.NewSpace(protocol.ClaimSpaceID(r.Space), ck, ks[len(ks)-1], ks[:len(ks)-1]...)
	if err != nil {
		return nil, errStoreCorrupt
	}
	return sp, nil
}

// queueConversationOf is the queue conversation of the outsider whose
// identity is id:
//
//	first 16 bytes of HMAC-SHA256(claim key, "postern.v1 queue-conversation" || identity)
func queueConversationOf(claimKey []byte, id keys.Fingerprint) queue.ConversationID {
	m := hmac.New(sha256.New, claimKey)
	m.Write([]byte(labelQueueConversation))
	m.Write(id[:])
	var c queue.ConversationID
	copy(c[:], m.Sum(nil))
	return c
}

// labelQueueConversation is the HMAC prefix of a queue conversation's ID
// (SPEC.md 15.9).
const labelQueueConversation = protocol.LabelPrefix + "queue-conversation"

// CreateTeam makes this profile the team named name: its person is the
// team, this device its intake. It makes a claim space on this device's
// relay, the claim key and team key epoch 1, and the staff group (named
// name, this person its admin, no staff yet). A profile is one team
// (ErrTeamExists).
func (c *Client) CreateTeam(ctx context.Context, name string) (Team, error) {
	if name == "" || len(name) > group.MaxNameSize || checkName(name) != nil {
		return Team{}, ErrInvalidName
	}
	c.teamMu.Lock()
	defer c.teamMu.Unlock()
	err := c.st.view(func(t *tx) error {
		ts, err := t.Teams()
		if err != nil {
			return err
		}
		for _, r := range ts {
			if r.Intake {
				return fmt.Errorf("%w (%s)", ErrTeamExists, r.Name)
			}
		}
		if _, err := t.lookupGroup(name); err == nil {
			return fmt.Errorf("%w: a group is named %q", ErrTeamExists, name)
		}
		return nil
	})
	if err != nil {
		return Team{}, err
	}
	// The claim space first: a space without a team costs the relay a
	// few bytes; a team without a space could not be used.
	admin, write := protocol.NewCapabilityToken(), protocol.NewCapabilityToken()
	cn, err := c.authConn(ctx)
	if err != nil {
		return Team{}, err
	}
	resp, err := cn.request(ctx, &protocol.CreateClaimSpace{Admin: admin.Hash(), Write: write.Hash()})
	if err != nil {
		return Team{}, fmt.Errorf("client: create the team's claim space: %w", err)
	}
	sc, ok := resp.(*protocol.ClaimSpaceCreated)
	if !ok {
		return Team{}, unexpected(resp)
	}
	ck, err := queue.NewClaimKey()
	if err != nil {
		return Team{}, err
	}
	tk, err := queue.NewTeamKey(1)
	if err != nil {
		return Team{}, err
	}
	// The staff group's first state is logged before the group is made
	// (stafflog.go), with a fresh publishing capability that only this
	// team record keeps.
	logCap := protocol.NewCapabilityToken()
	var (
		logged uint64
		hash   [32]byte
	)
	g, err := c.createGroup(ctx, name, nil, func(ctx context.Context, s *group.State) error {
		hash = staffListHash(s)
		v, err := c.publishStaffLeaf(ctx, logCap, staffLogKey(c.idFP, s.Group), s.Version, hash)
		s.Version, logged = v, v
		return err
	})
	if err != nil {
		return Team{}, err
	}
	gid, err := hex.DecodeString(g.ID)
	if err != nil {
		return Team{}, err
	}
	err = c.st.update(func(t *tx) error {
		return t.PutTeam(&store.TeamRecord{
			ID: t.GroupConversationID(gid), Group: gid, Name: name, Intake: true, IntakeIdentity: bytes.Clone(c.idFP[:]),
			Relay: c.relay, Space: bytes.Clone(sc.Space[:]), WriteCap: write.SecretBytes(), SpaceAdmin: admin.SecretBytes(),
			ClaimKey: ck.SecretBytes(), Keys: []store.TeamKey{{Epoch: 1, Key: tk.SecretBytes()}}, Secrets: 1,
			Created: c.now().UTC(), StaffLogCap: logCap.SecretBytes(), StaffLogged: logged, StaffLogHash: hash[:],
		})
	})
	if err != nil {
		return Team{}, err
	}
	c.log.Info("made a team", "space", sc.Space.Short())
	return c.teamInfo(name)
}

// intakeTeam returns the record of team name if this device is its
// intake (ErrNotTeamAdmin otherwise).
func (c *Client) intakeTeam(name string) (*store.TeamRecord, error) {
	var rec *store.TeamRecord
	err := c.st.view(func(t *tx) error {
		var err error
		rec, err = t.lookupTeam(name)
		if err == nil && !rec.Intake {
			err = ErrNotTeamAdmin
		}
		return err
	})
	return rec, err
}

// AddStaff adds the contact named contact to team's staff (run on the
// team's intake profile): a member of the staff group, then the team's
// secrets to each of the contact's devices. Every device of the contact
// must be on the team's relay (ErrGroupRelay).
func (c *Client) AddStaff(ctx context.Context, team, contact string) (Team, error) {
	rec, err := c.intakeTeam(team)
	if err != nil {
		return Team{}, err
	}
	if _, err := c.AddGroupMember(ctx, hex.EncodeToString(rec.Group), contact, GroupMember, ""); err != nil {
		return Team{}, err
	}
	id, err := c.identityOfName(contact)
	if err != nil {
		return Team{}, err
	}
	if err := c.logStaff(rec.Group, id, true); err != nil {
		return Team{}, err
	}
	c.sendTeamSecrets(ctx, rec.Group, []keys.Fingerprint{id})
	return c.teamInfo(team)
}

// RemoveStaff removes the contact named contact from team's staff (run
// on the intake profile): out of the staff group (its keys rotated, its
// mailboxes out of the fan-out list), then the claim space's write
// capability is replaced and a new team key epoch begins, sent to the
// remaining staff only; the removed member's conversations go back to
// new, announced to the staff.
func (c *Client) RemoveStaff(ctx context.Context, team, contact string) (Team, error) {
	rec, err := c.intakeTeam(team)
	if err != nil {
		return Team{}, err
	}
	removed, err := c.identityOfName(contact)
	if err != nil {
		return Team{}, err
	}
	if removed == c.idFP {
		return Team{}, fmt.Errorf("%w: the team's own person stays", ErrNotTeamAdmin)
	}
	if _, err := c.RemoveGroupMember(ctx, hex.EncodeToString(rec.Group), contact); err != nil {
		return Team{}, err
	}
	if err := c.logStaff(rec.Group, removed, false); err != nil {
		return Team{}, err
	}
	// The removal's state recorded the replacement as owed: a failure
	// here is retried at every flush (teamrotate.go).
	if _, err := c.rotateTeam(ctx, rec.Group); err != nil {
		return Team{}, err
	}
	c.sendTeamSecrets(ctx, rec.Group, nil)
	if err := c.releaseRemoved(ctx, rec.Group, removed); err != nil {
		return Team{}, err
	}
	return c.teamInfo(team)
}

// rotateTeam carries out the replacement of team gid's secrets that the
// intake owes (teamrotate.go): the claim space's write capability on the
// relay (the old one is refused from the answer on) and a team key epoch.
// It reports whether it replaced them now.
func (c *Client) rotateTeam(ctx context.Context, gid []byte) (bool, error) {
	c.teamMu.Lock()
	defer c.teamMu.Unlock()
	return c.rotateTeamLocked(ctx, gid)
}

// sendTeamSecrets sends the team's secrets to the devices of the staff
// in only (every staff member if nil) that the staff group lists.
func (c *Client) sendTeamSecrets(ctx context.Context, gid []byte, only []keys.Fingerprint) {
	var (
		ct   *content
		recs []*contactRecord
	)
	err := c.st.view(func(t *tx) error {
		rec, err := t.Team(t.GroupConversationID(gid))
		if err != nil || rec == nil {
			return errors.Join(err, ErrUnknownTeam)
		}
		grec, err := t.Group(rec.ID)
		if err != nil || grec == nil {
			return errors.Join(err, ErrUnknownGroup)
		}
		s, err := groupOf(grec)
		if err != nil {
			return err
		}
		ct = c.teamSecretsContent(rec)
		all, err := c.groupDevices(t, s, nil)
		for _, r := range all {
			id := fpOf(r.Person.Identity)
			if id == c.idFP || (only != nil && !containsFP(only, id)) {
				continue
			}
			recs = append(recs, r)
		}
		return err
	})
	if err != nil {
		c.log.Warn("could not prepare a team's secrets", "err", err)
		return
	}
	for _, r := range recs {
		one := *ct
		copy(one.MsgID[:], randomID(msgIDSize))
		if err := c.sendSession(ctx, r, &one); err != nil && !errors.Is(err, ErrQueued) {
			c.log.Warn("could not send a team's secrets to a staff device", "err", err)
		}
	}
}

// teamSecretsContent is the team secrets content of the intake's team
// record rec (its message ID left to the sender).
func (c *Client) teamSecretsContent(rec *store.TeamRecord) *content {
	sec := &teamSecrets{Count: rec.Secrets, Name: rec.Name, Relay: rec.Relay}
	copy(sec.Group[:], rec.Group)
	copy(sec.Space[:], rec.Space)
	copy(sec.Write[:], rec.WriteCap)
	copy(sec.ClaimKey[:], rec.ClaimKey)
	copy(sec.Intake[:], rec.IntakeIdentity)
	for _, k := range rec.Keys {
		w := teamKeyWire{Epoch: k.Epoch}
		copy(w.Key[:], k.Key)
		sec.Keys = append(sec.Keys, w)
	}
	return &content{Type: contentTeamSecrets, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()), Team: &teamContent{Secrets: sec}}
}

func containsFP(l []keys.Fingerprint, f keys.Fingerprint) bool {
	for _, x := range l {
		if x == f {
			return true
		}
	}
	return false
}

// receiveTeamSecrets takes a team's secrets from device from, in the
// receive transaction: only from a device of the staff group's admin
// person that the secrets name as the intake, for a staff group this
// person is a member of whose state the team's transparency log showed
// (stafflog.go), and newer than those held. Secrets for a staff group
// whose state is held until the log shows it are kept for then.
func (c *Client) receiveTeamSecrets(t *tx, from *contactRecord, ct *content, now time.Time) error {
	s := ct.Team.Secrets
	gconv := t.GroupConversationID(s.Group[:])
	grec, err := t.Group(gconv)
	if err != nil {
		return err
	}
	sender := fpOf(from.Person.Identity)
	var gs *group.State
	if grec != nil && !grec.Removed && bytes.Equal(grec.StaffLog, s.Intake[:]) {
		if gs, err = groupOf(grec); err != nil {
			return err
		}
	}
	if gs == nil || gs.Member(c.idFP) == nil {
		if kept, err := c.keepPendingSecrets(t, sender, ct); err != nil || kept {
			return err
		}
		c.log.Info("dropped a team's secrets for a staff group this device does not hold, or not as its team's log shows it")
		return nil
	}
	if from.Person.Self || sender != s.Intake || !gs.IsAdmin(sender) {
		c.log.Info("dropped a team's secrets from a device that is not the team's intake")
		return nil
	}
	old, err := t.Team(gconv)
	if err != nil {
		return err
	}
	if old != nil && (old.Intake || old.Secrets >= s.Count) {
		return nil // older, or repeated
	}
	if _, err := queue.ClaimKeyFromSecret(s.ClaimKey[:]); err != nil {
		return nil
	}
	r := &store.TeamRecord{ID: gconv, Group: bytes.Clone(s.Group[:]), Name: s.Name, IntakeIdentity: bytes.Clone(s.Intake[:]),
		Relay: s.Relay, Space: bytes.Clone(s.Space[:]), WriteCap: bytes.Clone(s.Write[:]), ClaimKey: bytes.Clone(s.ClaimKey[:]),
		Secrets: s.Count, Created: now}
	if old != nil {
		r.Created = old.Created
	}
	for _, k := range s.Keys {
		r.Keys = append(r.Keys, store.TeamKey{Epoch: k.Epoch, Key: bytes.Clone(k.Key[:])})
	}
	if _, err := spaceOf(r); err != nil {
		c.log.Info("dropped a team's secrets that do not make a claim space")
		return nil
	}
	return t.PutTeam(r)
}

// Teams returns the teams this device belongs to: the one it is the
// intake of, and those whose secrets it holds as staff.
func (c *Client) Teams() ([]Team, error) {
	var out []Team
	err := c.st.view(func(t *tx) error {
		ts, err := t.Teams()
		if err != nil {
			return err
		}
		for _, r := range ts {
			tm, err := c.teamOfRecord(t, r)
			if err != nil {
				return err
			}
			out = append(out, tm)
		}
		return nil
	})
	return out, err
}

func (c *Client) teamInfo(name string) (Team, error) {
	var tm Team
	err := c.st.view(func(t *tx) error {
		r, err := t.lookupTeam(name)
		if err != nil {
			return err
		}
		tm, err = c.teamOfRecord(t, r)
		return err
	})
	return tm, err
}

func (c *Client) teamOfRecord(t *tx, r *store.TeamRecord) (Team, error) {
	tm := Team{ID: hex.EncodeToString(r.Group), Name: r.Name, Intake: r.Intake}
	if len(r.Keys) > 0 {
		tm.Epoch = r.Keys[len(r.Keys)-1].Epoch
	}
	grec, err := t.Group(r.ID)
	if err != nil {
		return Team{}, err
	}
	if grec != nil {
		g, err := c.groupOfRecord(t, grec)
		if err != nil {
			return Team{}, err
		}
		tm.Staff = g.Members
	}
	qs, err := t.Queues(r.Group)
	tm.Conversations = len(qs)
	return tm, err
}
