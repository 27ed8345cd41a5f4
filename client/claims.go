package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/group"
	"github.com/postern/postern/client/internal/team/queue"
	"github.com/postern/postern/client/internal/team/stats"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Claims over the relay (protocol/SPEC.md sections 15.6 and 15.9): each
// queue conversation has a compare-and-set register in the team's claim
// space. An operation decides the next value from the register as this
// device last saw it, writes it with SetClaim from that version, and
// either wins (the value is announced to the staff in a state change) or
// adopts the register the relay answered with and decides again.

// maxClaimAttempts bounds the decide-write rounds of one operation: each
// lost round means another staff member wrote the register meanwhile.
const maxClaimAttempts = 8

// queueTarget is what an operation on one queue conversation needs.
type queueTarget struct {
	team  *store.TeamRecord
	q     *store.QueueRecord
	space *queue.Space
	conv  queue.ConversationID
	state *group.State // the staff group's newest state
}

// minQueueIDDigits is the shortest start of a queue conversation's ID
// that names it.
const minQueueIDDigits = 8

// loadQueue finds the queue conversation whose ID (32 hex digits, or a
// start of at least 8 that only it has) is id, with its team.
func (c *Client) loadQueue(id string) (*queueTarget, error) {
	id = strings.ToLower(id)
	if len(id) < minQueueIDDigits || len(id) > 2*queue.ConversationIDSize {
		return nil, fmt.Errorf("%w: %q", ErrUnknownQueueItem, id)
	}
	if _, err := hex.DecodeString(id[:len(id)&^1]); err != nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownQueueItem, id)
	}
	var qt *queueTarget
	err := c.st.view(func(t *tx) error {
		qs, err := t.Queues(nil)
		if err != nil {
			return err
		}
		for _, q := range qs {
			if !strings.HasPrefix(hex.EncodeToString(q.Conversation), id) {
				continue
			}
			if qt != nil {
				return fmt.Errorf("%w: %q names several; give more of it", ErrUnknownQueueItem, id)
			}
			qt = &queueTarget{q: q}
			copy(qt.conv[:], q.Conversation)
		}
		if qt == nil {
			return fmt.Errorf("%w: %q", ErrUnknownQueueItem, id)
		}
		return c.completeTarget(t, qt)
	})
	return qt, err
}

// completeTarget adds the team, its space and its staff group's state.
func (c *Client) completeTarget(t *tx, qt *queueTarget) error {
	var err error
	if qt.team, err = t.Team(t.GroupConversationID(qt.q.Team)); err != nil {
		return err
	}
	if qt.team == nil {
		return ErrNotStaff
	}
	if qt.space, err = spaceOf(qt.team); err != nil {
		return err
	}
	grec, err := t.Group(qt.team.ID)
	if err != nil {
		return err
	}
	if grec == nil || grec.Removed {
		return ErrNotStaff
	}
	qt.state, err = groupOf(grec)
	return err
}

// actorOf is the staff member whose identity is id, with the role the
// staff group gives them.
func actorOf(s *group.State, id keys.Fingerprint) (queue.Actor, error) {
	m := s.Member(id)
	if m == nil {
		return queue.Actor{}, ErrNotStaff
	}
	a := queue.Actor{Identity: id, Role: queue.Staff}
	switch m.Role {
	case group.RoleAdmin:
		a.Role = queue.Admin
	case group.RoleObserver:
		a.Role = queue.Observer
	}
	return a, nil
}

// queueError maps the queue's refusals to the client's sentinels.
func queueError(err error) error {
	switch {
	case errors.Is(err, queue.ErrOwned):
		return ErrOwned
	case errors.Is(err, queue.ErrNotOwner):
		return ErrNotOwner
	case errors.Is(err, queue.ErrState):
		return fmt.Errorf("%w: %v", ErrQueueState, err)
	case errors.Is(err, queue.ErrObserver):
		return ErrObserver
	}
	return err
}

// Claim takes the queue conversation id for this person: the first claim
// wins (a compare-and-set on the relay). A conversation someone else
// owns is ErrOwned; one this person owns already is no error.
func (c *Client) Claim(ctx context.Context, id string) (QueueItem, error) {
	qt, err := c.loadQueue(id)
	if err != nil {
		return QueueItem{}, err
	}
	me, err := actorOf(qt.state, c.idFP)
	if err != nil {
		return QueueItem{}, err
	}
	if err := c.queueWrite(ctx, qt, queue.OpClaim, func(v queue.Value) (queue.Value, error) { return queue.Claim(v, me) }); err != nil {
		return QueueItem{}, err
	}
	return c.queueItem(id)
}

// Assign gives the queue conversation id, which this person owns, to the
// staff member named contact.
func (c *Client) Assign(ctx context.Context, id, contact string) (QueueItem, error) {
	qt, err := c.loadQueue(id)
	if err != nil {
		return QueueItem{}, err
	}
	me, err := actorOf(qt.state, c.idFP)
	if err != nil {
		return QueueItem{}, err
	}
	toID, err := c.identityOfName(contact)
	if err != nil {
		return QueueItem{}, err
	}
	to, err := actorOf(qt.state, toID)
	if err != nil {
		return QueueItem{}, fmt.Errorf("%w (%s)", err, contact)
	}
	if err := c.queueWrite(ctx, qt, queue.OpAssign, func(v queue.Value) (queue.Value, error) { return queue.Assign(v, me, to) }); err != nil {
		return QueueItem{}, err
	}
	return c.queueItem(id)
}

// Resolve closes the queue conversation id, which this person owns. The
// patient's next message reopens it.
func (c *Client) Resolve(ctx context.Context, id string) (QueueItem, error) {
	qt, err := c.loadQueue(id)
	if err != nil {
		return QueueItem{}, err
	}
	me, err := actorOf(qt.state, c.idFP)
	if err != nil {
		return QueueItem{}, err
	}
	at := uint64(c.now().UnixMilli())
	if err := c.queueWrite(ctx, qt, queue.OpResolve, func(v queue.Value) (queue.Value, error) { return queue.Resolve(v, me, at) }); err != nil {
		return QueueItem{}, err
	}
	return c.queueItem(id)
}

// queueWrite runs one operation on qt's register: decide the next value
// from the register in this device's view, SetClaim it from that version,
// and on a lost write adopt the relay's register and decide again. A
// decision of "nothing to change" ends it without a write. Every won
// write is announced to the staff; the view is kept in the store.
func (c *Client) queueWrite(ctx context.Context, qt *queueTarget, op queue.Op, decide func(queue.Value) (queue.Value, error)) error {
	view := queue.NewView()
	if qt.q.Version > 0 {
		if _, _, err := qt.space.Learn(view, qt.conv, qt.q.Version, qt.q.Sealed); err != nil {
			return fmt.Errorf("client: a queue register held: %w", err)
		}
	}
	write, err := protocol.CapabilityTokenFromBytes(qt.team.WriteCap)
	if err != nil {
		return errStoreCorrupt
	}
	initial := queue.Initial(qt.q.Opened, qt.q.Urgent)
	refreshed := false
	for range maxClaimAttempts {
		cur := view.Current(qt.conv, initial)
		next, err := decide(cur.Value)
		if errors.Is(err, queue.ErrNoChange) {
			return nil
		}
		if err != nil && !refreshed {
			// The view may be behind (a state change not received yet):
			// decide once more from the register itself.
			refreshed = true
			st, gerr := c.getClaim(ctx, qt, write, qt.space.Token(qt.conv))
			if gerr == nil && st.Version > cur.Version {
				if _, _, lerr := qt.space.Learn(view, qt.conv, st.Version, st.Value); lerr == nil {
					if err := c.keepRegister(qt, view); err != nil {
						return err
					}
					continue
				}
			}
		}
		if err != nil {
			return queueError(err)
		}
		req, err := qt.space.Request(qt.conv, cur, op, next)
		if err != nil {
			return err
		}
		var out queue.Outcome
		resp, err := c.anonRequest(ctx, qt.team.Relay, teamConnKey(qt.team.Group), &protocol.SetClaim{
			Space: qt.space.ID(), Write: write, Token: req.Token, Expected: req.Expected, Value: req.Sealed})
		var pe *protocol.Error
		switch {
		case errors.As(err, &pe):
			if pe.Code == protocol.CodeClaimCapability {
				return fmt.Errorf("%w: the team's write capability was refused (removed, or new secrets not received yet)", ErrNotStaff)
			}
			return fmt.Errorf("client: claim: %w", err)
		case err != nil:
			// The answer was lost: read what the register holds.
			st, gerr := c.getClaim(ctx, qt, write, req.Token)
			if gerr != nil {
				return fmt.Errorf("client: claim: %w", err)
			}
			out, err = qt.space.AfterLost(view, req, st.Version, st.Value)
		default:
			st, ok := resp.(*protocol.ClaimState)
			if !ok {
				return unexpected(resp)
			}
			out, err = qt.space.Answer(view, req, st.OK, st.Version, st.Value)
		}
		if err != nil {
			return fmt.Errorf("client: claim: %w", err)
		}
		if err := c.keepRegister(qt, view); err != nil {
			return err
		}
		if out.Announce != nil {
			c.announce(ctx, qt.team.Group, queue.Change{*out.Announce})
		}
		if out.Won {
			return nil
		}
	}
	return fmt.Errorf("%w: the register kept changing; try again", ErrQueueState)
}

// getClaim reads a register.
func (c *Client) getClaim(ctx context.Context, qt *queueTarget, write protocol.CapabilityToken, tok protocol.ClaimToken) (*protocol.ClaimState, error) {
	resp, err := c.anonRequest(ctx, qt.team.Relay, teamConnKey(qt.team.Group), &protocol.GetClaim{Space: qt.space.ID(), Write: write, Token: tok})
	if err != nil {
		return nil, err
	}
	st, ok := resp.(*protocol.ClaimState)
	if !ok {
		return nil, unexpected(resp)
	}
	return st, nil
}

// keepRegister stores the view's register of qt's conversation if it is
// newer than the one stored.
func (c *Client) keepRegister(qt *queueTarget, view *queue.View) error {
	r, ok := view.Get(qt.conv)
	if !ok {
		return nil
	}
	return c.st.update(func(t *tx) error {
		q, err := t.Queue(qt.q.ID)
		if err != nil || q == nil {
			return err
		}
		if r.Version > q.Version {
			q.Version, q.Sealed = r.Version, r.Sealed
			if err := t.PutQueue(q); err != nil {
				return err
			}
			if err := c.keepRegisterEvents(t, [16]byte(qt.team.Group), stats.Token(qt.space.Token(qt.conv)), r.Value, time.Now()); err != nil {
				return err
			}
			// On the intake: a closed conversation's reply routes are
			// dropped (teamroutes.go).
			if team, err := t.Team(qt.team.ID); err != nil {
				return err
			} else if team != nil {
				if due, err := c.noteClosedRoutes(t, team, q, r.Value); err != nil {
					return err
				} else if due {
					if err := t.PutTeam(team); err != nil {
						return err
					}
				}
			}
		}
		qt.q = q
		return nil
	})
}

// announce sends a state change to the staff group.
func (c *Client) announce(ctx context.Context, gid []byte, ch queue.Change) {
	b, err := ch.MarshalBinary()
	if err == nil {
		ct := &content{Type: contentQueueChange, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()), Team: &teamContent{Change: b}}
		err = c.sendTeamGroup(ctx, gid, ct, nil)
	}
	if err != nil {
		// The register holds the change; staff learn of it from the
		// relay at their next operation on the conversation.
		c.log.Warn("could not announce a queue change", "err", err)
	}
}

// receiveQueueChange applies a state change from a staff device, in the
// receive transaction: every entry must open under the team's keys for
// its conversation (or none is applied); each register is taken if newer
// than the one held. A conversation not held yet is recorded (its
// messages may follow). It reports whether it took any register.
func (c *Client) receiveQueueChange(t *tx, team *store.TeamRecord, tc *teamContent, now time.Time) (bool, error) {
	ch, err := queue.ParseChange(tc.Change)
	if err != nil {
		return false, nil
	}
	sp, err := spaceOf(team)
	if err != nil {
		return false, err
	}
	regs := make([]queue.Register, len(ch))
	for i, e := range ch {
		if regs[i], err = sp.OpenRegister(e.Conversation, e.Version, e.Sealed, queue.Value{}); err != nil {
			c.log.Info("dropped a queue change that does not open", "err", err)
			return false, nil
		}
	}
	took := false
	for i, e := range ch {
		id := t.QueueConversationID(team.Group, e.Conversation[:])
		q, err := t.Queue(id)
		if err != nil {
			return false, err
		}
		if q == nil {
			q = &store.QueueRecord{ID: id, Team: bytes.Clone(team.Group), Conversation: bytes.Clone(e.Conversation[:]),
				Opened: regs[i].Value.Opened, Urgent: regs[i].Value.Urgent, Created: now.UTC(), Last: now.UTC()}
		} else if e.Version <= q.Version {
			continue
		}
		q.Version, q.Sealed = e.Version, bytes.Clone(e.Sealed)
		if err := t.PutQueue(q); err != nil {
			return false, err
		}
		// The figures' events this register implies, as it is taken
		// (agent.go): a later value no longer shows an earlier opening's.
		if err := c.keepRegisterEvents(t, [16]byte(team.Group), stats.Token(sp.Token(e.Conversation)), regs[i].Value, now); err != nil {
			return false, err
		}
		// On the intake: a closed conversation's reply routes are
		// dropped (teamroutes.go).
		if due, err := c.noteClosedRoutes(t, team, q, regs[i].Value); err != nil {
			return false, err
		} else if due {
			if err := t.PutTeam(team); err != nil {
				return false, err
			}
		}
		took = true
	}
	return took, nil
}

// releaseRemoved, on the intake after a staff removal, puts every
// conversation the removed member owns back to new and announces it.
func (c *Client) releaseRemoved(ctx context.Context, gid []byte, removed keys.Fingerprint) error {
	var targets []*queueTarget
	err := c.st.view(func(t *tx) error {
		qs, err := t.Queues(gid)
		if err != nil {
			return err
		}
		for _, q := range qs {
			qt := &queueTarget{q: q}
			copy(qt.conv[:], q.Conversation)
			if err := c.completeTarget(t, qt); err != nil {
				return err
			}
			if q.Version == 0 {
				continue
			}
			v, err := qt.space.Open(qt.conv, q.Sealed)
			if err != nil {
				return fmt.Errorf("client: a queue register held: %w", err)
			}
			if v.State.Open() && v.Owner == removed {
				targets = append(targets, qt)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, qt := range targets {
		me, err := actorOf(qt.state, c.idFP)
		if err != nil {
			return err
		}
		err = c.queueWrite(ctx, qt, queue.OpReassign, func(v queue.Value) (queue.Value, error) {
			n, err := queue.ReleaseRemoved(v, me, removed)
			if errors.Is(err, queue.ErrNotRemovedOwner) {
				return queue.Value{}, queue.ErrNoChange // released or resolved meanwhile
			}
			return n, err
		})
		if err != nil {
			return err
		}
	}
	return nil
}
