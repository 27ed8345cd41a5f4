package client

import (
	"context"
	"fmt"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/protocol"
)

// Block stops the contact named contact from writing to this client: the
// relay revokes the capability they send with (they get ErrBlocked), and
// anything still arriving from them is dropped. This client does not send
// to them either (ErrContactBlocked) until Unblock.
func (c *Client) Block(ctx context.Context, contact string) error {
	return c.setBlocked(ctx, contact, true)
}

// Unblock lets a contact blocked with Block write to this client again:
// the relay accepts the capability they send with once more, and what
// arrives from them is stored again. Messages they tried to send while
// blocked were refused by the relay (they were told) and are not
// delivered now. Unblocking a contact who is not blocked does nothing.
func (c *Client) Unblock(ctx context.Context, contact string) error {
	return c.setBlocked(ctx, contact, false)
}

// setBlocked revokes (blocking) or registers again (unblocking) the
// capability of the route of each of the contact's devices on the relay,
// then records the state.
// Blocking also revokes the route they wrote to before, if it is still
// live (introduction.go); unblocking leaves it revoked: the contact has
// the current route, or gets it in their session.
func (c *Client) setBlocked(ctx context.Context, contact string, blocked bool) error {
	r, err := c.lookupContact(contact)
	if err != nil {
		return err
	}
	if !blocked && !r.Person.Blocked {
		return nil
	}
	if err := c.setRouteCapabilities(ctx, r, blocked, 0, map[bool]string{true: "block", false: "unblock"}[blocked]); err != nil {
		return err
	}
	if _, err := c.updateContact(r.ID, func(rec *contactRecord) { rec.Person.Blocked = blocked }); err != nil {
		return ignoreGone(err)
	}
	if r.Person.Blocked != blocked {
		c.contactChanged(r.Person.Name, map[bool]ContactChange{true: ContactBlocked, false: ContactUnblocked}[blocked])
	}
	return nil
}

// setRouteCapabilities revokes (with reason) or registers again the
// capability of the route each of r's person's devices writes to this
// device with, on the relay: what blocking and restricting are. Revoking
// also revokes the route a device wrote to before, if it is still live
// (introduction.go), so that it cannot be written to instead; registering
// again leaves that one revoked: the contact has the current route, or
// gets it in their session.
func (c *Client) setRouteCapabilities(ctx context.Context, r *contactRecord, revoke bool, reason protocol.RevokeReason, verb string) error {
	cn, err := c.authConn(ctx)
	if err != nil {
		return err
	}
	op := func(mbx, capBytes []byte) error {
		tok, err := protocol.CapabilityTokenFromBytes(capBytes)
		if err != nil {
			return errStoreCorrupt
		}
		var mb protocol.MailboxID
		copy(mb[:], mbx)
		var f protocol.Frame = &protocol.AddCapability{Mailbox: mb, Hash: tok.Hash()}
		if revoke {
			f = &protocol.RevokeCapability{Mailbox: mb, Hash: tok.Hash(), Reason: reason}
		}
		// The relay makes a revoked capability live again only when the
		// mailbox's owner adds it (SPEC.md section 7).
		if err := cn.ok(ctx, f); err != nil && !(revoke && protocol.IsCode(err, protocol.CodeUnknownCapability)) {
			return fmt.Errorf("client: %s: %w", verb, err)
		}
		return nil
	}
	// Every device of the person writes to a route of its own.
	var ds []*store.Device
	if err := c.st.view(func(t *tx) (err error) { ds, err = t.DevicesOf(r.Person.ID); return err }); err != nil {
		return err
	}
	for _, d := range ds {
		if d.Revoked || len(d.RecvMbx) != 16 {
			continue
		}
		if err := op(d.RecvMbx, d.RecvCap); err != nil {
			return err
		}
		if revoke && len(d.PrevRecvMbx) == 16 && !d.PrevRevoked {
			if err := op(d.PrevRecvMbx, d.PrevRecvCap); err != nil {
				return err
			}
		}
		if len(d.ReplyRecvMbx) == 16 { // a team's reply route (teamroutes.go)
			if err := op(d.ReplyRecvMbx, d.ReplyRecvCap); err != nil {
				return err
			}
		}
	}
	return nil
}

// sendable is lookupContact for sending: a contact this client blocked is
// refused (ErrContactBlocked), since they could not answer.
func (c *Client) sendable(contact string) (*contactRecord, error) {
	r, err := c.lookupContact(contact)
	if err != nil {
		return nil, err
	}
	if r.Person.Blocked {
		return nil, &contactBlockedError{name: r.Person.Name}
	}
	if r.Person.Verification == store.Changed {
		return nil, &identityChangedError{name: r.Person.Name}
	}
	if optedOut(r) { // teamroutes.go: levels 2 and 3 stop different routes
		return nil, &RestrictedError{Level: Restriction(r.Person.Restricted), Organisation: c.organisation, OptIn: true}
	}
	return r, nil
}
