package relay

// Fan-out lists (SPEC.md section 10, "Fan-out lists"): a group's sender
// uploads one envelope and the relay stores a copy in the mailbox of
// every device of the group, in one commit, and answers once every copy
// is durable. CreateFanout needs an authenticated device (it counts
// against the device's allowance); UpdateFanout and SendFanout need only
// the list's admin or send capability, so that, like Send, they may come
// on a connection that never authenticates.

import (
	"errors"
	"fmt"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// fanoutRequest handles CreateFanout, UpdateFanout and SendFanout.
func (c *conn) fanoutRequest(id uint32, f protocol.Frame) {
	switch f := f.(type) {
	case *protocol.CreateFanout:
		c.createFanout(id, f)
	case *protocol.UpdateFanout:
		c.updateFanout(id, f)
	case *protocol.SendFanout:
		c.sendFanout(id, f)
	}
}

// fanoutRefusal answers a refused fan-out request: the fan-out codes
// here, every other refusal as storeRefusal does.
func (c *conn) fanoutRefusal(id uint32, err error) {
	switch {
	case errors.Is(err, store.ErrUnknownFanout):
		c.refuse(id, protocol.CodeUnknownFanout, "")
	case errors.Is(err, store.ErrFanoutCapability):
		c.refuse(id, protocol.CodeFanoutCapability, "")
	case errors.Is(err, store.ErrFanoutLimit):
		c.refuse(id, protocol.CodeFanoutLimit, fmt.Sprintf("at most %d lists per device and %d entries per list", protocol.MaxFanoutsPerDevice, protocol.MaxFanoutEntries))
	default:
		c.storeRefusal(id, err)
	}
}

func fanoutEntries(in []protocol.FanoutEntry) []store.FanoutEntry {
	out := make([]store.FanoutEntry, len(in))
	for i, e := range in {
		out[i] = store.FanoutEntry{Mailbox: e.Mailbox, Capability: e.Capability.Hash()}
	}
	return out
}

func (c *conn) createFanout(id uint32, f *protocol.CreateFanout) {
	if !c.authed {
		c.refuse(id, protocol.CodeAuthRequired, "authenticate first")
		return
	}
	fid := protocol.NewFanoutID()
	if err := c.r.st.CreateFanout(c.ctx, c.device, fid, f.Admin.Hash(), f.Send.Hash(), fanoutEntries(f.Entries)); err != nil {
		c.fanoutRefusal(id, err)
		return
	}
	// As for a mailbox: a log line with the short ID, nothing audited.
	c.log.Info("fan-out list created", "fanout", fid.Short(), "entries", len(f.Entries))
	c.send(id, &protocol.FanoutCreated{Fanout: fid})
}

func (c *conn) updateFanout(id uint32, f *protocol.UpdateFanout) {
	admin := f.Admin.Hash()
	var err error
	if f.Delete {
		if err = c.r.st.DeleteFanout(c.ctx, f.Fanout, admin); err == nil {
			c.log.Info("fan-out list deleted", "fanout", f.Fanout.Short())
		}
	} else {
		ch := store.FanoutChange{Add: fanoutEntries(f.Add), Remove: f.Remove}
		if f.NewSend != nil {
			h := f.NewSend.Hash()
			ch.NewSend = &h
		}
		if err = c.r.st.UpdateFanout(c.ctx, f.Fanout, admin, ch); err == nil {
			c.log.Info("fan-out list updated", "fanout", f.Fanout.Short(), "added", len(f.Add), "removed", len(f.Remove), "new_send_capability", f.NewSend != nil)
		}
	}
	if err != nil {
		c.fanoutRefusal(id, err)
		return
	}
	c.send(id, &protocol.OK{})
}

func (c *conn) sendFanout(id uint32, f *protocol.SendFanout) {
	h := f.Capability.Hash()
	// The list's capability first: a sender without it learns nothing
	// else. Read-only, so a refused send costs no commit.
	n, err := c.r.st.CheckFanout(c.ctx, f.Fanout, h)
	if err != nil {
		c.fanoutRefusal(id, err)
		return
	}
	if err := protocol.CheckEnvelope(f.Envelope); err != nil {
		c.refuse(id, protocol.CodeBadEnvelope, err.Error())
		return
	}
	if n*len(f.Envelope) > protocol.MaxFanoutSendBytes {
		c.refuse(id, protocol.CodeFanoutLimit, fmt.Sprintf("%d copies of %d bytes exceed %d bytes per fan-out send", n, len(f.Envelope), protocol.MaxFanoutSendBytes))
		return
	}
	e := c.newEnvelope(protocol.MailboxID{}, f.Envelope)
	// As a Send: a pipelining slot, then durable off the read loop.
	c.durably(func() {
		// AppendFanout returns once every copy is durable, in one commit.
		res, err := c.r.st.AppendFanout(c.ctx, f.Fanout, h, e)
		if err != nil {
			c.fanoutRefusal(id, err)
			return
		}
		for _, cp := range res.Stored {
			c.r.cfg.Metrics.Sent(cp.ID, c.r.hub.subscribed(cp.Mailbox))
			c.r.hub.wake(cp.Mailbox)
		}
		out := &protocol.FanoutSent{Stored: uint16(len(res.Stored))}
		if len(res.Refused) > 0 {
			out.Refused = make([]protocol.FanoutRefusal, len(res.Refused))
			for i, r := range res.Refused {
				out.Refused[i] = protocol.FanoutRefusal{Index: uint16(r.Index), Code: storeCode(r.Err)}
			}
		}
		c.send(id, out)
	})
}
