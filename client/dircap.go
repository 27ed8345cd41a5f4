package client

import (
	"bytes"
	"context"
	"crypto/subtle"
	"slices"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/directory"
	"github.com/postern/postern/protocol"
)

// Sharing the organisation's publishing capability among its
// administrators (protocol/SPEC.md 15.7, "Publishing"): after each
// publish, the publishing device sends the capability, end to end
// encrypted in a session content of type 0x29, to this person's other
// devices and to every device of each administrator of the published
// directory who is a contact, so that any administrator can publish the
// next version from any of their devices. Staff are never sent it.

// contentDirCapability carries the organisation's ID (16 bytes) and its
// publishing capability (32 bytes).
const contentDirCapability byte = 0x29

const dirCapabilityBodySize = 16 + 32

// shareCapability sends capability to d's other administrators and this
// person's other devices. It returns how many administrators it reached
// and how many it could not.
func (c *Client) shareCapability(ctx context.Context, d *directory.Directory, capability protocol.CapabilityToken) (sent, unreached int, err error) {
	targets, unreached, err := c.peopleTargets(d.Admins)
	if err != nil {
		return 0, unreached, err
	}
	body := make([]byte, 0, dirCapabilityBodySize)
	body = append(body, d.Org[:]...)
	body = append(body, capability.SecretBytes()...)
	sent, more := c.sendToStaff(ctx, targets, "the directory publishing capability", func() *content {
		return &content{Type: contentDirCapability, DirCapability: bytes.Clone(body)}
	})
	clear(body)
	return sent, unreached + more, nil
}

// receiveDirCapability keeps a publishing capability sent by an
// administrator, in the receiving transaction. It is kept only on a
// device enrolled in that organisation whose person is an administrator
// of the held directory (or of the enrolment, before any), only from an
// administrator of it (or from this person's other device), and only if
// this device holds no capability the relay has accepted from it: one
// that worked is never replaced. Anything else is logged, without the
// capability, and changes nothing.
func (c *Client) receiveDirCapability(t *tx, from *contactRecord, ct *content) error {
	if c.dirEnrol == nil || len(ct.DirCapability) != dirCapabilityBodySize {
		return nil
	}
	org, capability := ct.DirCapability[:16], ct.DirCapability[16:]
	if !bytes.Equal(org, c.dirEnrol.Organisation[:]) {
		c.log.Info("ignored a directory publishing capability of another organisation")
		return nil
	}
	admins := c.dirEnrol.Administrators
	d, _, err := c.heldDirectory(t)
	if err != nil {
		return err
	}
	if d != nil {
		admins = d.Admins
	}
	sender := fpOf(from.Person.Identity)
	if !slices.Contains(admins, c.idFP) || (!from.Person.Self && !slices.Contains(admins, sender)) {
		c.log.Info("ignored a directory publishing capability: sender or receiver is not an administrator")
		return nil
	}
	rec, err := t.Directory()
	if err != nil {
		return err
	}
	if rec == nil {
		rec = &store.DirectoryRecord{}
	}
	switch {
	case len(rec.Capability) == len(capability) && subtle.ConstantTimeCompare(rec.Capability, capability) == 1:
		return nil
	case rec.CapabilityLogged:
		c.log.Info("ignored a directory publishing capability: this device's own was accepted by its relay")
		return nil
	}
	rec.Capability = bytes.Clone(capability)
	return t.PutDirectory(rec)
}
