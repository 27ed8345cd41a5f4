package client

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Restrictions (protocol/SPEC.md section 9 "Sending and blocking",
// "Restrictions"): an organisation restricts a person who misuses its
// service by revoking, with a reason, the capabilities that person writes
// to it with; the relay refuses their sends with the reason's code. The
// restricted person's client remembers it and opts them out: it refuses
// to send to that contact until they opt in again, accepting the terms of
// use anew, so that access restored on the organisation's side is taken
// up only by someone who agreed to the terms again.

// ErrNotRestricted: OptIn for a contact that did not restrict this person.
var ErrNotRestricted = errors.New("client: that contact has not restricted your access")

// ErrRestrictionLevel: Restrict with a level that is not one of the three.
var ErrRestrictionLevel = errors.New("client: a restriction is RestrictedService, RestrictedNew or RestrictedReplies")

// Restrict restricts contact at level: the capability each of their
// devices writes to this device with is revoked on the relay with the
// level's reason, so that their sends are refused with its code (and its
// sentence on their side). Unlike Block, this device still writes to
// them. Restricting again at another level replaces the level. On a
// team's intake, a contact who is in the team's queue is blocked from
// the team as BlockOutsider does: the team log records it, by this
// person (SPEC 15.9 "The team log on the intake").
func (c *Client) Restrict(ctx context.Context, contact string, level Restriction) error {
	if level < RestrictedService || level > RestrictedReplies {
		return ErrRestrictionLevel
	}
	// As the team blocks do, so that a team log holds restrictions in
	// the order they were made.
	c.teamMu.Lock()
	defer c.teamMu.Unlock()
	return c.setRestricted(ctx, contact, level, nil)
}

// Unrestrict restores the access of a contact restricted with Restrict:
// the relay accepts their capabilities again. Their client asks them to
// opt in again before it sends (OptIn). On a team's intake it is logged
// as Restrict is.
func (c *Client) Unrestrict(ctx context.Context, contact string) error {
	c.teamMu.Lock()
	defer c.teamMu.Unlock()
	return c.setRestricted(ctx, contact, 0, nil)
}

// restrictionBy is the team block a restriction carries out (on the
// team's intake: BlockOutsider there, or a staff member's request): its
// team log entry names team (a name or the staff group's ID in hex) and
// actor, and no other entry is made for it.
type restrictionBy struct {
	team  string
	actor keys.Fingerprint
}

// restrictFor is Restrict (block) or Unrestrict of contact carried out
// for a team block by: logged once, in by's team log, by by's actor. The
// caller holds teamMu.
func (c *Client) restrictFor(ctx context.Context, contact string, block bool, level Restriction, by restrictionBy) error {
	switch {
	case !block:
		level = 0
	case level < RestrictedService || level > RestrictedReplies:
		return ErrRestrictionLevel
	}
	return c.setRestricted(ctx, contact, level, &by)
}

// setRestricted carries out a restriction (level 0: its lifting) and
// logs it in the team logs it belongs in (logRestrictions): by's, or,
// for a plain one (by nil), those of the teams this profile is the
// intake of whose queues hold the contact. A plain lifting that changes
// nothing is not logged. The caller holds teamMu.
func (c *Client) setRestricted(ctx context.Context, contact string, level Restriction, by *restrictionBy) error {
	r, err := c.lookupContact(contact)
	if err != nil {
		return err
	}
	if level == 0 && r.Person.RestrictedByMe == 0 {
		if by != nil {
			c.logRestrictions(r.Person, level, by) // the team's request, carried out
		}
		return nil
	}
	if r.Person.Blocked {
		// Blocking revoked the same capabilities; unblocking restores them.
		return &contactBlockedError{name: r.Person.Name}
	}
	// Which routes each level stops: teamroutes.go.
	if err := c.setRestrictionRoutes(ctx, r, level); err != nil {
		return err
	}
	_, err = c.updateContact(r.ID, func(rec *contactRecord) { rec.Person.RestrictedByMe = uint8(level) })
	if err := ignoreGone(err); err != nil {
		return err
	}
	// Carried out: now in the team log (a log entry that cannot be
	// written is logged, the restriction stands).
	c.logRestrictions(r.Person, level, by)
	return nil
}

// revokeReason is the relay's reason for a restriction level.
func revokeReason(l Restriction) protocol.RevokeReason {
	switch l {
	case RestrictedNew:
		return protocol.RevokeRestrictedNew
	case RestrictedReplies:
		return protocol.RevokeRestrictedReplies
	}
	return protocol.RevokeRestrictedService
}

// noteRestricted records that contact person's relay refused a send of
// this device with a restriction: the person is opted out, and sends to
// them are refused here until OptIn. It runs after the refusal, outside
// any transaction; a failure to record is logged (the refusal itself is
// returned all the same). onReply: the send went to a team's reply route
// (teamroutes.go).
func (c *Client) noteRestricted(person []byte, level Restriction, onReply bool) {
	now := c.now().UTC().Truncate(time.Second)
	err := c.st.update(func(t *tx) error {
		p, err := t.Person(person)
		if err != nil || p == nil {
			return err
		}
		if p.Restricted == uint8(level) && p.RestrictedOnReply == onReply {
			return nil
		}
		p.Restricted, p.RestrictedAt, p.RestrictedOnReply = uint8(level), now, onReply
		return t.PutPerson(p)
	})
	if err != nil {
		c.log.Warn("could not record a restriction", "err", err)
	}
}

// OptIn opts this person in again to writing to contact after a
// restriction, accepting the terms of use of termsVersion (the version
// the application showed): the acceptance is recorded with its time and
// version, and sends to contact go to the relay again. If the
// organisation has not restored access, the next send is refused again
// and the person is opted out again.
func (c *Client) OptIn(contact, termsVersion string) error {
	if termsVersion == "" || len(termsVersion) > maxTermsVersion || !utf8.ValidString(termsVersion) {
		return ErrTermsVersion
	}
	r, err := c.lookupContact(contact)
	if err != nil {
		return err
	}
	if r.Person.Restricted == 0 {
		return fmt.Errorf("%w: %s", ErrNotRestricted, r.Person.Name)
	}
	now := c.now().UTC().Truncate(time.Second)
	if _, err := c.AcceptTerms(termsVersion); err != nil {
		return err
	}
	_, err = c.updateContact(r.ID, func(rec *contactRecord) {
		rec.Person.Restricted, rec.Person.OptedIn, rec.Person.OptInTerms = 0, now, termsVersion
	})
	return err
}
