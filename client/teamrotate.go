package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/group"
	"github.com/postern/postern/client/internal/team/queue"
	"github.com/postern/postern/protocol"
)

// The replacement of a team's secrets that the intake owes (SPEC.md 15.5
// "Devices linked or revoked later", 15.9). A staff device dropped from
// the staff group (revoked, or its member removed) still holds the claim
// space's write capability and the team keys: until the relay takes a
// new capability it can write registers. So the replacement is recorded
// as owed in the transaction that keeps the state dropping the device,
// and carried out at once and again at every flush of the intake's teams
// until the relay has answered it.

// noteStaffRotation, on a team's intake in the transaction that keeps
// next, the staff group's state after held, records the replacement of
// the team's secrets as owed when next drops a device held lists.
func (c *Client) noteStaffRotation(t *tx, held, next *group.State) error {
	if held == nil || len(removedDevices(held, next)) == 0 {
		return nil
	}
	team, err := t.Team(t.GroupConversationID(next.Group[:]))
	if err != nil || team == nil || !team.Intake || team.RotateOwed {
		return err
	}
	team.RotateOwed = true
	return t.PutTeam(team)
}

// rotateTeamLocked carries out the replacement team gid is owed, if it
// is; the caller holds teamMu. The new capability and key are prepared
// and kept first, so that a retry after a replacement the relay made but
// whose answer was lost sets the same capability again, and the epoch is
// added once. It reports whether it replaced them now.
func (c *Client) rotateTeamLocked(ctx context.Context, gid []byte) (bool, error) {
	var rec *store.TeamRecord
	err := c.st.update(func(t *tx) error {
		r, err := t.Team(t.GroupConversationID(gid))
		if err != nil {
			return err
		}
		if r == nil || !r.Intake {
			return ErrNotTeamAdmin
		}
		rec = r
		if !r.RotateOwed || (len(r.NextWrite) != 0 && r.NextKey != nil) {
			return nil
		}
		if len(r.Keys) >= maxTeamKeys {
			return fmt.Errorf("client: the team has used its %d team key epochs", maxTeamKeys)
		}
		tk, err := queue.NewTeamKey(r.Keys[len(r.Keys)-1].Epoch + 1)
		if err != nil {
			return err
		}
		r.NextWrite = protocol.NewCapabilityToken().SecretBytes()
		r.NextKey = &store.TeamKey{Epoch: tk.Epoch(), Key: tk.SecretBytes()}
		return t.PutTeam(r)
	})
	if err != nil || !rec.RotateOwed {
		return false, err
	}
	admin, err := protocol.CapabilityTokenFromBytes(rec.SpaceAdmin)
	if err != nil {
		return false, errStoreCorrupt
	}
	write, err := protocol.CapabilityTokenFromBytes(rec.NextWrite)
	if err != nil {
		return false, errStoreCorrupt
	}
	if h := c.rotateHook.Load(); h != nil {
		(*h)()
	}
	resp, err := c.anonRequest(ctx, rec.Relay, teamConnKey(gid), &protocol.UpdateClaimSpace{
		Space: protocol.ClaimSpaceID(rec.Space), Admin: admin, Op: protocol.ClaimSpaceSetWrite, Hash: write.Hash()})
	if err != nil {
		return false, fmt.Errorf("client: replace the claim space's write capability: %w", err)
	}
	if _, ok := resp.(*protocol.OK); !ok {
		return false, unexpected(resp)
	}
	err = c.st.update(func(t *tx) error {
		r, err := t.Team(rec.ID)
		if err != nil || r == nil {
			return errors.Join(err, ErrUnknownTeam)
		}
		if !r.RotateOwed || !bytes.Equal(r.NextWrite, rec.NextWrite) || r.NextKey == nil {
			return nil // carried out meanwhile
		}
		r.WriteCap = r.NextWrite
		if last := r.Keys[len(r.Keys)-1]; r.NextKey.Epoch > last.Epoch {
			r.Keys = append(r.Keys, *r.NextKey)
		}
		r.Secrets++
		r.RotateOwed, r.NextWrite, r.NextKey = false, nil, nil
		return t.PutTeam(r)
	})
	return err == nil, err
}

// flushRotations carries out, on each team this device is the intake
// of, the replacement of its secrets it owes, and sends the new ones to
// the staff; the caller holds teamMu. A failure is logged: the next
// flush tries again.
func (c *Client) flushRotations(ctx context.Context) {
	var owed [][]byte
	if err := c.st.view(func(t *tx) error {
		ts, err := t.Teams()
		for _, r := range ts {
			if r.Intake && r.RotateOwed {
				owed = append(owed, r.Group)
			}
		}
		return err
	}); err != nil {
		c.log.Warn("could not read the teams", "err", err)
		return
	}
	for _, gid := range owed {
		done, err := c.rotateTeamLocked(ctx, gid)
		if err != nil {
			c.log.Warn("could not replace a team's secrets yet; will retry", "err", err)
			continue
		}
		if done {
			c.log.Info("replaced a team's secrets")
			c.sendTeamSecrets(ctx, gid, nil)
		}
	}
}
