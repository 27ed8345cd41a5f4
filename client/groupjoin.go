package client

import (
	"context"

	"github.com/postern/postern/client/internal/team/group"
)

// retryGroupJoins joins, again, every group whose newest state lists this
// device as not joined: a join is decided once, when a state arrives, and
// is lost if the Client closes (or the relay refuses) between making the
// group mailbox and the admin's admission. Run at each connection and
// Sync (maintain); a join the admin already handled is a no-op on its side
// (admitDevice), and one per group and maintenance is the cost of waiting.
func (c *Client) retryGroupJoins(ctx context.Context) {
	var due []group.ID
	err := c.st.view(func(t *tx) error {
		gs, err := t.Groups()
		if err != nil {
			return err
		}
		for _, rec := range gs {
			if rec.Removed {
				continue
			}
			s, err := groupOf(rec)
			if err != nil {
				return err
			}
			if _, d := s.Device(c.devID); d != nil && !d.Joined {
				due = append(due, s.Group)
			}
		}
		return nil
	})
	if err != nil {
		c.log.Warn("could not read the groups", "err", err)
		return
	}
	for _, gid := range due {
		if err := c.joinGroup(ctx, gid); err != nil {
			c.log.Warn("could not join a group yet", "err", err)
		}
	}
}
