package client

import (
	"context"
	"fmt"

	"github.com/postern/postern/protocol"
)

// Unblock lets a contact blocked with Block write to this client again:
// the relay accepts the capability they send with once more, and what
// arrives from them is stored again. Messages they tried to send while
// blocked were refused by the relay (they were told) and are not
// delivered now. Unblocking a contact who is not blocked does nothing.
func (c *Client) Unblock(ctx context.Context, contact string) error {
	r, err := c.lookupContact(contact)
	if err != nil {
		return err
	}
	if !r.Blocked {
		return nil
	}
	tok, err := protocol.CapabilityTokenFromBytes(r.RecvCap)
	if err != nil {
		return errStoreCorrupt
	}
	var mb protocol.MailboxID
	copy(mb[:], r.RecvMbx)
	cn, err := c.authConn(ctx)
	if err != nil {
		return err
	}
	// The relay makes a revoked capability live again only when the
	// mailbox's owner adds it (SPEC.md section 7).
	if err := cn.ok(ctx, &protocol.AddCapability{Mailbox: mb, Hash: tok.Hash()}); err != nil {
		return fmt.Errorf("client: unblock: %w", err)
	}
	return c.st.update(func(t *tx) error {
		var rec contactRecord
		ok, err := t.get(bucketContacts, r.ID, &rec)
		if err != nil || !ok {
			return err
		}
		rec.Blocked = false
		return t.putContact(&rec)
	})
}

// sendable is lookupContact for sending: a contact this client blocked is
// refused (ErrContactBlocked), since they could not answer.
func (c *Client) sendable(contact string) (*contactRecord, error) {
	r, err := c.lookupContact(contact)
	if err != nil {
		return nil, err
	}
	if r.Blocked {
		return nil, &contactBlockedError{name: r.Name}
	}
	return r, nil
}
