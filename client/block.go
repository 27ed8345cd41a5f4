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
	verb := map[bool]string{true: "block", false: "unblock"}[blocked]
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
		if blocked {
			f = &protocol.RevokeCapability{Mailbox: mb, Hash: tok.Hash()}
		}
		// The relay makes a revoked capability live again only when the
		// mailbox's owner adds it (SPEC.md section 7).
		if err := cn.ok(ctx, f); err != nil && !(blocked && protocol.IsCode(err, protocol.CodeUnknownCapability)) {
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
		if blocked && len(d.PrevRecvMbx) == 16 && !d.PrevRevoked {
			// They may still write to the route they had before.
			if err := op(d.PrevRecvMbx, d.PrevRecvCap); err != nil {
				return err
			}
		}
	}
	if _, err = c.updateContact(r.ID, func(rec *contactRecord) { rec.Person.Blocked = blocked }); err != nil {
		return ignoreGone(err)
	}
	if r.Person.Blocked != blocked {
		c.contactChanged(r.Person.Name, map[bool]ContactChange{true: ContactBlocked, false: ContactUnblocked}[blocked])
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
	if r.Person.Restricted != 0 {
		return nil, &RestrictedError{Level: Restriction(r.Person.Restricted), Organisation: c.organisation, OptIn: true}
	}
	return r, nil
}
