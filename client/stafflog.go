package client

// A team's staff list in the transparency log (protocol/SPEC.md section
// 15.9, "The staff list in the transparency log"). The staff group's
// states are signed by the team's identity (team.go); the intake also
// logs each new staff list, by hash only, in its relay's transparency
// log with the frames that log organisation directories (PublishDirectory,
// FetchDirectory; directory.go verifies the answers), under a log key of
// the team's own. It publishes before the state leaves, and a publish
// that fails leaves the change undone. A device that receives a state of
// a staff group takes it only once that relay's log, checked against the
// heads the device keeps, shows its staff list: a state the log does not
// show yet is held and checked again after each receive and at
// maintenance; one the log shows as replaced (a rollback) or under
// another hash (a fork) is refused and reported, changing nothing. So a
// staff list that a stolen team key signs cannot reach a staff device
// without leaving a leaf the team's intake and every staff device see.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/postern/postern/client/internal/people"
	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/group"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/protocol"
)

// Labels of the staff list's log key and hash (SPEC.md 15.9).
const (
	labelStaffListLog = protocol.LabelPrefix + "staff-list-log"
	labelStaffList    = protocol.LabelPrefix + "staff-list"
)

const (
	// maxHeldStates bounds the states of one staff group held while the
	// team's log does not show them (the highest versions are kept).
	maxHeldStates = 4
	// staffLogAnonKey names the unauthenticated connection that fetches
	// staff-list leaves.
	staffLogAnonKey = "staff-log"
)

var (
	// ErrStaffListRefused: a state of a team's staff group that the
	// team's transparency log refuses: the log shows a newer staff list
	// (a rollback), another staff list under its version (a fork), or
	// its answer does not verify. Nothing was changed; EventTransparency
	// reports it (Event.Team). The wrapped error says which.
	ErrStaffListRefused = errors.New("client: a team's staff list refused by its transparency log")
	// ErrStaffListLog: the intake could not log a new staff list in its
	// relay's transparency log (the relay could not be reached, refused
	// the publish, or rate-limits it), so the change was not made. Try
	// again later.
	ErrStaffListLog = errors.New("client: the team's new staff list could not be logged; nothing was changed")
)

// Reasons of ErrStaffListRefused.
var (
	errStaffListRollback = fmt.Errorf("%w: the relay's transparency log shows a newer staff list", kt.ErrRollback)
	errStaffListFork     = fmt.Errorf("%w: the relay's transparency log shows another staff list under this version", kt.ErrFork)
)

// staffLogKey is the log key of the staff list of team (its identity
// fingerprint) whose staff group is gid:
//
//	SHA-256("postern.v1 staff-list-log" || team fingerprint || group ID)
//
// The label keeps it apart from every organisation's LogKey and every
// identity fingerprint; the group ID, which the relay never sees, keeps
// anyone who knows the team's identity from taking the key first.
func staffLogKey(team keys.Fingerprint, gid group.ID) keys.Fingerprint {
	h := sha256.New()
	h.Write([]byte(labelStaffListLog))
	h.Write(team[:])
	h.Write(gid[:])
	return keys.Fingerprint(h.Sum(nil))
}

// staffListHash is the hash of the staff list a state carries: its
// members, roles and devices, not the version (the leaf has it), the
// fan-out list, secrets, joins or signature, so that a device joining
// (a new state, the same staff list) needs no new leaf, and the state a
// removed member is sent (secrets zero) has the hash of the one the
// others are sent:
//
//	SHA-256("postern.v1 staff-list" || group ID [16] || u8 n || name || u16 n || relay
//	        || u16 k || k × (identity [32] || u8 n || name || role u8 || [for [32], delegates only]
//	                         || u8 d || d × device ID [32]))
func staffListHash(s *group.State) [32]byte {
	b := make([]byte, 0, 64+len(s.Members)*(32+1+64+1+32+1+group.MaxDevices*32))
	b = append(b, s.Group[:]...)
	b = append(b, byte(len(s.Name)))
	b = append(b, s.Name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.Relay)))
	b = append(b, s.Relay...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.Members)))
	for _, m := range s.Members {
		b = append(b, m.Identity[:]...)
		b = append(b, byte(len(m.Name)))
		b = append(b, m.Name...)
		b = append(b, byte(m.Role))
		if m.Role == group.RoleDelegate {
			b = append(b, m.For[:]...)
		}
		b = append(b, byte(len(m.Devices)))
		for _, d := range m.Devices {
			b = append(b, d.ID[:]...)
		}
	}
	h := sha256.New()
	h.Write([]byte(labelStaffList))
	h.Write(b)
	return [32]byte(h.Sum(nil))
}

// ---- the intake: publishing ----

// logStaffList logs the staff list of next in the team's log before next
// is signed and sent, when next is a state of the staff group of a team
// this device is the intake of; it may raise next.Version above a
// version logged by a publish whose change did not complete. Nothing is
// published for another group, or when next's staff list is the one
// logged last (a device joining). A group that is a staff list but not
// this device's to log (another device of the team's person) is refused:
// its staff would hold that state back for ever. The caller holds
// groupMu.
func (c *Client) logStaffList(ctx context.Context, next *group.State) error {
	var (
		rec    *store.TeamRecord
		marked bool
	)
	err := c.st.view(func(t *tx) error {
		id := t.GroupConversationID(next.Group[:])
		grec, err := t.Group(id)
		if err != nil {
			return err
		}
		marked = grec != nil && len(grec.StaffLog) > 0
		rec, err = t.Team(id)
		return err
	})
	if err != nil {
		return err
	}
	if rec == nil || !rec.Intake {
		if marked {
			return fmt.Errorf("%w: the team's staff list is changed by its intake device only", ErrNotTeamAdmin)
		}
		return nil
	}
	h := staffListHash(next)
	if bytes.Equal(h[:], rec.StaffLogHash) {
		// The staff list logged last: staff take it at the logged
		// version or above.
		next.Version = max(next.Version, rec.StaffLogged)
		return nil
	}
	capability, err := c.staffLogCapability(rec.ID)
	if err != nil {
		return err
	}
	next.Version = max(next.Version, rec.StaffLogged+1)
	v, err := c.publishStaffLeaf(ctx, capability, staffLogKey(c.idFP, next.Group), next.Version, h)
	if err != nil {
		return err
	}
	next.Version = v
	// Kept before the state leaves: the next change goes above it.
	return c.st.update(func(t *tx) error {
		r, err := t.Team(rec.ID)
		if err != nil || r == nil {
			return errors.Join(err, ErrUnknownTeam)
		}
		r.StaffLogged, r.StaffLogHash = v, h[:]
		return t.PutTeam(r)
	})
}

// staffLogCapability returns the publishing capability of the team
// record id, making one (crypto/rand) for a team that has none yet.
func (c *Client) staffLogCapability(id []byte) (protocol.CapabilityToken, error) {
	var capability protocol.CapabilityToken
	err := c.st.update(func(t *tx) error {
		r, err := t.Team(id)
		if err != nil || r == nil {
			return errors.Join(err, ErrUnknownTeam)
		}
		if len(r.StaffLogCap) == 0 {
			capability = protocol.NewCapabilityToken()
			r.StaffLogCap = capability.SecretBytes()
			return t.PutTeam(r)
		}
		capability, err = protocol.CapabilityTokenFromBytes(r.StaffLogCap)
		if err != nil {
			return errStoreCorrupt
		}
		return nil
	})
	return capability, err
}

// publishStaffLeaf logs (logKey, version, h) on this device's relay with
// the team's publishing capability, and returns the version logged. When
// the relay holds that version already (a publish whose answer was lost,
// or whose change failed after it), it goes above it, or keeps the
// logged version when that leaf is this staff list already.
func (c *Client) publishStaffLeaf(ctx context.Context, capability protocol.CapabilityToken, logKey keys.Fingerprint, version uint64, h [32]byte) (uint64, error) {
	cn, err := c.authConn(ctx)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrStaffListLog, err)
	}
	for attempt := 0; ; attempt++ {
		resp, err := cn.request(ctx, &protocol.PublishDirectory{LogKey: logKey, Version: version, Hash: h, Capability: capability})
		switch {
		case protocol.IsCode(err, protocol.CodeStaleDirectory) && attempt == 0:
			// Only a version to go above is taken from this answer:
			// the staff devices verify what is logged.
			resp, err := c.anonRequest(ctx, c.relay, staffLogAnonKey, &protocol.FetchDirectory{LogKey: logKey})
			if err != nil {
				return 0, fmt.Errorf("%w: %w", ErrStaffListLog, err)
			}
			leaf, ok := resp.(*protocol.DirectoryLeaf)
			if !ok {
				return 0, unexpected(resp)
			}
			if leaf.Hash == h && leaf.Version >= version {
				return leaf.Version, nil
			}
			version = max(version, leaf.Version+1)
			continue
		case protocol.IsCode(err, protocol.CodeDirectoryCapability):
			return 0, fmt.Errorf("%w: the relay logs this team's staff list under another capability", ErrStaffListLog)
		case err != nil:
			return 0, fmt.Errorf("%w: %w", ErrStaffListLog, err)
		}
		if _, ok := resp.(*protocol.DirectoryLeaf); !ok {
			return 0, unexpected(resp)
		}
		c.log.Info("logged a team's staff list", "version", version)
		return version, nil
	}
}

// ---- receivers: holding and checking ----

// staffLogOf says whether group state next (checked against the group's
// rules; rec and held nil for a first state) belongs to a team's staff
// list, and whether it must wait for the team's log: team is the team's
// identity (zero: an ordinary group) and check whether the log must show
// next's staff list before it is taken. A group is a staff list once a
// device took a state of it checked against the log (rec.StaffLog), when
// this device holds the team's secrets for it, or when the state came
// flagged so (logged, part 0 of the content). A state with the staff
// list of the held state, which was checked, needs no new check.
func (c *Client) staffLogOf(t *tx, rec *store.GroupRecord, held, next *group.State, logged bool) (team keys.Fingerprint, check bool, err error) {
	switch {
	case rec != nil && len(rec.StaffLog) == len(team):
		team = keys.Fingerprint(rec.StaffLog)
		if held != nil && staffListHash(held) == staffListHash(next) {
			return team, false, nil
		}
		return team, true, nil
	case rec != nil:
		tr, err := t.Team(rec.ID)
		if err != nil {
			return team, false, err
		}
		if tr != nil && !tr.Intake && len(tr.IntakeIdentity) == len(team) {
			return keys.Fingerprint(tr.IntakeIdentity), true, nil
		}
	}
	if logged && next.Signer != nil {
		return next.Signer.Fingerprint(), true, nil
	}
	return team, false, nil
}

// holdStaffState keeps next (b, its encoding, from device fromDev of
// person fromID) until the team's log shows it, and asks for a check
// after the commit.
func (c *Client) holdStaffState(t *tx, team, fromID, fromDev keys.Fingerprint, next *group.State, b, adminCap []byte, now time.Time, res *received) error {
	pend, err := t.GroupPending(next.Group[:])
	if err != nil {
		return err
	}
	if ok, err := pendingRoom(t, pend); err != nil || !ok {
		if err == nil {
			c.log.Warn("dropped a team's staff list: too many groups wait")
		}
		return err
	}
	for _, h := range pend.Held {
		if bytes.Equal(h.State, b) {
			res.groups = append(res.groups, groupTask{gid: next.Group, staffLog: true})
			return nil // held already
		}
	}
	pend.Held = append(pend.Held, store.HeldState{Group: bytes.Clone(next.Group[:]), Team: bytes.Clone(team[:]), From: bytes.Clone(fromDev[:]),
		FromPerson: bytes.Clone(fromID[:]), Version: next.Version, State: bytes.Clone(b), AdminCap: bytes.Clone(adminCap), Received: now})
	slices.SortStableFunc(pend.Held, func(a, b store.HeldState) int { return cmpU64(a.Version, b.Version) })
	if len(pend.Held) > maxHeldStates {
		pend.Held = pend.Held[len(pend.Held)-maxHeldStates:]
	}
	if err := t.PutGroupPending(next.Group[:], pend); err != nil {
		return err
	}
	c.log.Info("holding a team's staff list until its transparency log shows it", "version", next.Version)
	res.groups = append(res.groups, groupTask{gid: next.Group, staffLog: true})
	return nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkStaffLists checks the held states of staff groups (of only gid, or
// of every group when gid is nil) against their teams' logs, takes those
// the log shows, refuses the forks, and leaves the others held. A state
// below the logged version is usually one the intake replaced before it
// arrived, followed by the newer one in the same receive pass: it stays
// held until the check at maintenance (final), which refuses it as a
// rollback unless a newer state was taken meanwhile (then it is dropped
// quietly). Failures to reach the relay are logged: maintenance tries
// again.
func (c *Client) checkStaffLists(ctx context.Context, cn *conn, gid *group.ID, final bool) {
	var groups []group.ID
	err := c.st.view(func(t *tx) error {
		ps, err := t.HeldGroupStates()
		for _, p := range ps {
			g := group.ID(p.Held[0].Group)
			if gid == nil || g == *gid {
				groups = append(groups, g)
			}
		}
		return err
	})
	if err != nil {
		c.log.Warn("could not read the held staff lists", "err", err)
		return
	}
	for _, g := range groups {
		if err := c.checkStaffList(ctx, cn, g, final); err != nil {
			c.log.Warn("could not check a team's staff list with its transparency log yet", "err", err)
		}
	}
}

// staffLogOwner is whose log, on which relay, a held state waits for.
type staffLogOwner struct {
	team  keys.Fingerprint
	relay string
}

// heldOwner is the owner of held state hs (s, parsed).
func heldOwner(hs *store.HeldState, s *group.State) staffLogOwner {
	return staffLogOwner{team: keys.Fingerprint(hs.Team), relay: s.Relay}
}

// checkStaffList checks the held states of staff group gid, against the
// log of the team each names: states of one group ID from another signer
// (a member who knows the ID) are never judged by the team's leaf.
func (c *Client) checkStaffList(ctx context.Context, cn *conn, gid group.ID, final bool) error {
	var owners []staffLogOwner
	err := c.st.view(func(t *tx) error {
		p, err := t.GroupPending(gid[:])
		if err != nil {
			return err
		}
		for i := range p.Held {
			s, err := group.ParseStored(p.Held[i].State)
			if err != nil {
				return errStoreCorrupt
			}
			if o := heldOwner(&p.Held[i], s); !slices.Contains(owners, o) {
				owners = append(owners, o)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range owners {
		errs = append(errs, c.checkStaffListOf(ctx, cn, gid, o, final))
	}
	return errors.Join(errs...)
}

// checkStaffListOf checks the held states of gid that wait for owner's log.
func (c *Client) checkStaffListOf(ctx context.Context, cn *conn, gid group.ID, owner staffLogOwner, final bool) error {
	relay, logKey := owner.relay, staffLogKey(owner.team, gid)
	if err := c.pinLogKeyOf(ctx, relay); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		var known uint64
		if err := c.st.view(func(t *tx) (err error) { known, err = people.KnownSize(t.Tx, relay); return err }); err != nil {
			return err
		}
		resp, err := c.anonRequest(ctx, relay, staffLogAnonKey, &protocol.FetchDirectory{LogKey: logKey, KnownSize: known})
		if protocol.IsCode(err, protocol.CodeUnknownDirectory) {
			c.log.Info("a team's staff list is not logged yet: held")
			return nil
		}
		if err != nil {
			return err
		}
		leaf, ok := resp.(*protocol.DirectoryLeaf)
		if !ok {
			return unexpected(resp)
		}
		var (
			res     received
			refused []Event
			moved   bool
		)
		c.ev.order.Lock()
		err = c.st.update(func(t *tx) error {
			res, refused, moved = received{}, nil, false
			now, err := people.KnownSize(t.Tx, relay)
			if err != nil {
				return err
			}
			if now != known {
				moved = true
				return nil
			}
			refused, err = c.settleStaffStates(t, gid, owner, logKey, leaf, final, &res)
			return err
		})
		if err == nil && !moved {
			c.emit(refused...)
			c.emit(res.events...)
			c.queue(res.msgs)
		}
		c.ev.order.Unlock()
		switch {
		case err != nil:
			return err
		case moved && attempt < listFetchAttempts:
			continue
		case moved:
			return errors.New("client: the relay's log moved during every check of a team's staff list")
		}
		c.runGroupTasksOn(ctx, cn, res.groups)
		return nil
	}
}

// settleStaffStates decides, in one transaction, every held state of gid
// against the leaf the team's log answered (verified here against the
// relay's pinned key and the head this device keeps): a state whose
// staff list is the logged one, at the logged version or above (a join
// after it), is taken; one above the logged version with another staff
// list stays held; one at the logged version with another list is a fork,
// refused; one below it that is not below a state this device holds or
// takes now stays held until the final check refuses it as a rollback
// (checkStaffLists). Refusals are reported by the events returned. A
// leaf that does not verify refuses them all.
func (c *Client) settleStaffStates(t *tx, gid group.ID, owner staffLogOwner, logKey keys.Fingerprint, leaf *protocol.DirectoryLeaf, final bool, res *received) ([]Event, error) {
	pend, err := t.GroupPending(gid[:])
	if err != nil || len(pend.Held) == 0 {
		return nil, err
	}
	relay := owner.relay
	// The held states that wait for this log; the others stay as they are.
	var mine, keep []store.HeldState
	for _, hs := range pend.Held {
		s, err := group.ParseStored(hs.State)
		if err != nil {
			return nil, errStoreCorrupt
		}
		if heldOwner(&hs, s) == owner {
			mine = append(mine, hs)
		} else {
			keep = append(keep, hs)
		}
	}
	var events []Event
	refuse := func(h *store.HeldState, why error) {
		err := fmt.Errorf("%w: %w", ErrStaffListRefused, why)
		name := ""
		if s, perr := group.ParseStored(h.State); perr == nil {
			name = s.Name
		}
		c.log.Warn("refused a team's staff list", "version", h.Version, "err", err)
		events = append(events, Event{Kind: EventTransparency, Team: name, Err: err})
	}
	key, head, err := people.Kept(t.Tx, relay)
	if err != nil {
		return nil, err
	}
	h, verr := verifyDirectoryLeaf(leaf, key, logKey, head)
	if verr != nil {
		for i := range mine {
			refuse(&mine[i], fmt.Errorf("%w: %w", people.ErrTransparency, verr))
		}
		pend.Held = keep
		return events, t.PutGroupPending(gid[:], pend)
	}
	if head == nil || h.Size > head.Size {
		tr, err := t.RelayTrust(relay)
		if err != nil {
			return nil, err
		}
		tr.Head = h.Bytes()
		if err := t.PutRelayTrust(tr); err != nil {
			return nil, err
		}
	}
	taken := uint64(0)
	// Ascending versions: a join state taken after the change it follows.
	for i := range mine {
		hs := &mine[i]
		s, err := group.ParseStored(hs.State)
		if err != nil {
			return nil, errStoreCorrupt
		}
		sum := staffListHash(s)
		switch {
		case sum == leaf.Hash && s.Version >= leaf.Version:
			ok, err := c.takeHeldState(t, hs, s, res)
			if err != nil {
				return nil, err
			}
			if ok {
				taken = s.Version
			}
		case s.Version > leaf.Version:
			keep = append(keep, *hs)
		case s.Version == leaf.Version:
			refuse(hs, errStaffListFork)
		case c.staleStaffState(t, s, taken):
			c.log.Info("dropped a team's staff list that a newer one replaced", "version", s.Version)
		case final:
			refuse(hs, errStaffListRollback)
		default:
			keep = append(keep, *hs)
		}
	}
	slices.SortStableFunc(keep, func(a, b store.HeldState) int { return cmpU64(a.Version, b.Version) })
	pend.Held = keep
	if err := t.PutGroupPending(gid[:], pend); err != nil {
		return nil, err
	}
	if taken > 0 {
		if err := c.retryPendingSecrets(t, gid, res); err != nil {
			return nil, err
		}
	}
	return events, nil
}

// staleStaffState reports whether s is below a state this device holds of
// its group, or below the one it took (version taken) in this check.
func (c *Client) staleStaffState(t *tx, s *group.State, taken uint64) bool {
	if s.Version < taken {
		return true
	}
	rec, err := t.Group(t.GroupConversationID(s.Group[:]))
	return err == nil && rec != nil && rec.Version >= s.Version
}

// takeHeldState takes a held state the log shows, checking it again
// against the group's rules and the state held now. It reports whether
// it was taken (false: it no longer follows the held one, dropped).
func (c *Client) takeHeldState(t *tx, hs *store.HeldState, next *group.State, res *received) (bool, error) {
	rec, held, err := c.checkGroupState(t, keys.Fingerprint(hs.FromPerson), next, c.now().UTC())
	if err != nil || rec == nil {
		return false, err
	}
	team := keys.Fingerprint(hs.Team)
	if len(rec.StaffLog) == len(team) && keys.Fingerprint(rec.StaffLog) != team {
		c.log.Warn("dropped a staff list logged under another team")
		return false, nil
	}
	return true, c.takeGroupState(t, rec, held, next, hs.AdminCap, keys.Fingerprint(hs.From), team, c.now().UTC(), res)
}

// keepPendingSecrets keeps a team's secrets (ct, from person fromID, who
// the secrets say is the intake) that name a staff group this device does
// not hold as the team's log showed it, or not with this person in it
// (its state is held, was replaced before it arrived, or is still on its
// way), for when a state of the group is taken; it reports whether it
// kept them. Of several, the highest count is kept; all the checks are
// made when they are taken.
func (c *Client) keepPendingSecrets(t *tx, fromID keys.Fingerprint, ct *content) (bool, error) {
	s := ct.Team.Secrets
	if fromID != s.Intake {
		return false, nil // never the intake's: not worth a place
	}
	// Once the team is known (the group checked against its log, or a
	// state of it held for its log), only its secrets wait.
	grec, err := t.Group(t.GroupConversationID(s.Group[:]))
	if err != nil {
		return false, err
	}
	if grec != nil && len(grec.StaffLog) > 0 && !bytes.Equal(grec.StaffLog, fromID[:]) {
		return false, nil
	}
	pend, err := t.GroupPending(s.Group[:])
	if err != nil {
		return false, err
	}
	for _, h := range pend.Held {
		if !bytes.Equal(h.Team, fromID[:]) {
			return false, nil
		}
	}
	if ok, err := pendingRoom(t, pend); err != nil || !ok {
		return false, err
	}
	if pend.Secrets != nil && bytes.Equal(pend.Secrets.Person, fromID[:]) {
		if old, err := parseSessionContent(pend.Secrets.Content); err == nil && old.Team != nil && old.Team.Secrets != nil && old.Team.Secrets.Count >= s.Count {
			return true, nil
		}
	}
	b, err := ct.marshalSession()
	if err != nil {
		return false, nil
	}
	pend.Secrets = &store.PendingSecrets{Person: bytes.Clone(fromID[:]), Content: b}
	return true, t.PutGroupPending(s.Group[:], pend)
}

// retryPendingSecrets takes the team's secrets kept for group gid, now
// that a state of it was taken.
func (c *Client) retryPendingSecrets(t *tx, gid group.ID, res *received) error {
	pend, err := t.GroupPending(gid[:])
	if err != nil || pend.Secrets == nil {
		return err
	}
	ps := pend.Secrets
	pend.Secrets = nil
	if err := t.PutGroupPending(gid[:], pend); err != nil {
		return err
	}
	ct, err := parseSessionContent(ps.Content)
	if err != nil || ct.Type != contentTeamSecrets || ct.Team == nil || ct.Team.Secrets == nil {
		return nil
	}
	p, err := t.personByIdentity(keys.Fingerprint(ps.Person))
	if err != nil || p == nil {
		return err
	}
	return c.receiveTeamSecrets(t, &contactRecord{Person: p}, ct, c.now().UTC())
}

// pinLogKeyOf pins relay's log key if none is pinned for it, asking on the
// staff-log connection.
func (c *Client) pinLogKeyOf(ctx context.Context, relay string) error {
	var pinned *keys.SigningPublicKey
	if err := c.st.view(func(t *tx) (err error) { pinned, err = people.Pinned(t.Tx, relay); return err }); err != nil || pinned != nil {
		return err
	}
	resp, err := c.anonRequest(ctx, relay, staffLogAnonKey, &protocol.FetchLogKey{})
	if err != nil {
		return err
	}
	lk, ok := resp.(*protocol.LogKey)
	if !ok {
		return unexpected(resp)
	}
	return c.st.update(func(t *tx) error { _, err := people.Pin(t.Tx, relay, lk.Key); return err })
}
