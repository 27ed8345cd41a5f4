package client

import (
	"context"
	"fmt"

	"github.com/postern/postern/client/internal/team/queue"
)

// Blocking an outsider (protocol/SPEC.md 15.9 "Blocking"): the intake
// restricts the outsider's routes to it (Restrict, section 9
// "Restrictions"); a staff device asks the intake to, with a team
// request in the staff group (contentTeamRequest).

// BlockOutsider restricts the outsider named contact from team at level
// (RestrictedNew, RestrictedReplies or RestrictedService): on the team's
// intake directly; on a staff device, contact is the outsider's name as
// the queue shows it, and the intake is asked with a team request (it
// restricts at its next sync).
func (c *Client) BlockOutsider(ctx context.Context, team, contact string, level Restriction) error {
	if level < RestrictedService || level > RestrictedReplies {
		return ErrRestrictionLevel
	}
	return c.teamRequest(ctx, team, contact, teamBlock, level)
}

// UnblockOutsider restores the access of an outsider BlockOutsider
// restricted (the outsider's client asks them to opt in again).
func (c *Client) UnblockOutsider(ctx context.Context, team, contact string) error {
	return c.teamRequest(ctx, team, contact, teamUnblock, 0)
}

func (c *Client) teamRequest(ctx context.Context, team, contact string, op byte, level Restriction) error {
	var (
		intake bool
		gid    []byte
		conv   queue.ConversationID
	)
	err := c.st.view(func(t *tx) error {
		rec, err := t.lookupTeam(team)
		if err != nil {
			return err
		}
		intake, gid = rec.Intake, rec.Group
		if intake {
			return nil
		}
		qs, err := t.Queues(rec.Group)
		if err != nil {
			return err
		}
		n := 0
		for _, q := range qs {
			if q.Outsider == contact {
				copy(conv[:], q.Conversation)
				n++
			}
		}
		switch n {
		case 0:
			return fmt.Errorf("%w: no conversation with %q in %s", ErrUnknownQueueItem, contact, rec.Name)
		case 1:
			return nil
		}
		return fmt.Errorf("%w: several conversations are with %q", ErrUnknownQueueItem, contact)
	})
	if err != nil {
		return err
	}
	if intake {
		// As the flush of staff requests does (flushTeams), so that the
		// team log holds restrictions in the order they were made.
		c.teamMu.Lock()
		defer c.teamMu.Unlock()
		// Carried out, then logged once in this team's log.
		return c.restrictFor(ctx, contact, op == teamBlock, level, restrictionBy{team: team, actor: c.idFP})
	}
	ct := &content{Type: contentTeamRequest, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()),
		Team: &teamContent{Op: op, Level: byte(level), Conversation: conv}}
	return c.sendTeamGroup(ctx, gid, ct, nil)
}

// TeamInvite returns an invitation for outsiders to team (run on the
// team's intake profile): the team person's invitation, as Invite makes
// it. An outsider who accepts it has the team as one contact; what they
// write reaches the staff's queue.
func (c *Client) TeamInvite(ctx context.Context, team string) (string, error) {
	if _, err := c.intakeTeam(team); err != nil {
		return "", err
	}
	return c.Invite(ctx)
}
