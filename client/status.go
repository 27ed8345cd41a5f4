package client

// Availability and do-not-disturb (protocol/SPEC.md section 15.7,
// "Availability" and "Transport and the transparency log"): a staff
// member signs their own status with their identity key
// (client/internal/team/directory) and sends it in a session content of
// type 0x25 to every device of each staff member of the held directory
// who is a contact, and to their own other devices. A receiver accepts
// it only from a device of its subject (or of its own person), only
// under its held directory (directory.AcceptStatus: the subject is
// staff, the signature is theirs, the time is later than the held
// status's and not ahead of the clock) and keeps the newest one per
// person in the directory bucket. When the sender of a message holds a
// status of its recipient that forwards now (directory.Route), Send
// delivers the message to its recipient and a copy, marked as forwarded
// for them, to the colleague the status names. The relay sees nothing of
// this: statuses and forwarded copies are ordinary session envelopes.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/directory"
	"github.com/postern/postern/keys"
)

// contentStatus carries an encoded status (directory.StatusSize bytes).
const contentStatus byte = 0x25

// Availability is what a staff member says of themselves.
type Availability uint8

// Availabilities (the values of the status, SPEC.md section 15.7).
const (
	Available Availability = Availability(directory.Available)
	Busy      Availability = Availability(directory.Busy)
	OffDuty   Availability = Availability(directory.OffDuty)
)

// String is "available", "busy" or "off duty".
func (a Availability) String() string { return directory.Availability(a).String() }

// ParseAvailability reads "available", "busy" or "off" ("off duty",
// "off-duty").
func ParseAvailability(s string) (Availability, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "available":
		return Available, nil
	case "busy":
		return Busy, nil
	case "off", "off duty", "off-duty", "offduty":
		return OffDuty, nil
	}
	return 0, fmt.Errorf("%w: availability %q (want available, busy or off)", ErrInvalidStatus, s)
}

// Errors of availability statuses.
var (
	// ErrInvalidStatus: SetStatus's options do not make a valid status
	// (an availability out of range, a do-not-disturb end in the past,
	// forwarding to oneself or to someone who is not staff of the
	// directory), or this person is not staff of the held directory.
	ErrInvalidStatus = errors.New("client: invalid availability status")
	// ErrNoStatus: no status is held for that person.
	ErrNoStatus = errors.New("client: no availability status")
)

// StatusOptions is SetStatus's input.
type StatusOptions struct {
	// Availability is Available, Busy or OffDuty (required).
	Availability Availability
	// DNDUntil is when do-not-disturb ends; zero: none. It must be in
	// the future.
	DNDUntil time.Time
	// ForwardTo names the colleague who receives this person's messages
	// while do-not-disturb runs or they are off duty: a contact's name,
	// or a staff member's name in the directory. Empty: nobody.
	ForwardTo string
}

// Status is a staff member's availability as this device holds it.
type Status struct {
	// Name is the person's contact name (Me for this person), else their
	// name in the directory.
	Name     string
	Identity keys.Fingerprint
	// Set is when the status was set (the sender's clock, to the
	// second); a later one replaces it.
	Set          time.Time
	Availability Availability
	// DNDUntil is when do-not-disturb ends (zero: none set); DoNotDisturb
	// whether it runs now.
	DNDUntil     time.Time
	DoNotDisturb bool
	// ForwardTo is the colleague named (a contact's name, else their
	// directory name; empty: nobody); Forwarding whether the status
	// forwards messages to them now (do-not-disturb runs or off duty).
	ForwardTo         string
	ForwardToIdentity keys.Fingerprint
	Forwarding        bool
}

// StatusSet is what SetStatus did.
type StatusSet struct {
	Status Status
	// Sent is how many staff members (besides this person) it went to,
	// on at least one of their devices; Unreached how many staff members
	// of the directory this client cannot reach (not a contact, or no
	// device).
	Sent, Unreached int
}

// heldStatus parses the status held for identity (nil: none). A stored
// status was checked when it was accepted; it is parsed again (and its
// signature verified) as every value read from the store is, once per
// stored version: the parsed status is kept by the SHA-256 of its bytes,
// so that compose's Statuses over thousands of staff does not verify
// thousands of signatures at each call.
func (c *Client) heldStatus(t *tx, identity keys.Fingerprint) (*directory.Status, error) {
	rec, err := t.Status(identity)
	if err != nil || rec == nil {
		return nil, err
	}
	h := sha256.Sum256(rec.Status)
	c.statuses.mu.Lock()
	hit, ok := c.statuses.m[identity]
	c.statuses.mu.Unlock()
	if ok && hit.hash == h {
		return hit.s, nil
	}
	s, err := directory.ParseStatus(rec.Status)
	if err != nil || s.Subject != identity {
		return nil, fmt.Errorf("%w: held status", store.ErrCorrupt)
	}
	c.statuses.mu.Lock()
	if c.statuses.m == nil || len(c.statuses.m) >= directory.MaxStaff {
		// Bounded by the directory's staff: a cache that grew past it
		// (statuses of people since removed) starts again.
		c.statuses.m = make(map[keys.Fingerprint]statusCacheEntry)
	}
	c.statuses.m[identity] = statusCacheEntry{hash: h, s: s}
	c.statuses.mu.Unlock()
	return s, nil
}

// statusCache keeps parsed held statuses (heldStatus). A parsed status is
// never changed by its readers.
type statusCache struct {
	mu sync.Mutex
	m  map[keys.Fingerprint]statusCacheEntry
}

type statusCacheEntry struct {
	hash [sha256.Size]byte
	s    *directory.Status
}

// nameOf is how this client names the person of identity: Me, a
// contact's name, their directory name, or the first 16 hex digits of
// the fingerprint.
func (c *Client) nameOf(t *tx, d *directory.Directory, identity keys.Fingerprint) (string, error) {
	if identity == c.idFP {
		return Me, nil
	}
	p, err := t.personByIdentity(identity)
	if err != nil {
		return "", err
	}
	if p != nil {
		if p.Self {
			return Me, nil
		}
		return p.Name, nil
	}
	if d == nil {
		if d, _, err = c.heldDirectory(t); err != nil {
			return "", err
		}
	}
	if d != nil {
		if s := d.Person(identity); s != nil {
			return s.Name, nil
		}
	}
	return identity.String()[:16], nil
}

// publicStatus describes s at now.
func (c *Client) publicStatus(t *tx, d *directory.Directory, s *directory.Status, now time.Time) (Status, error) {
	out := Status{
		Identity: s.Subject, Set: s.Time.UTC(), Availability: Availability(s.State),
		DNDUntil: s.DNDUntil, DoNotDisturb: s.DoNotDisturb(now), Forwarding: s.Forwarding(now),
	}
	if !out.DNDUntil.IsZero() {
		out.DNDUntil = out.DNDUntil.UTC()
	}
	var err error
	if out.Name, err = c.nameOf(t, d, s.Subject); err != nil {
		return out, err
	}
	if s.Forward != (keys.Fingerprint{}) {
		out.ForwardToIdentity = s.Forward
		if out.ForwardTo, err = c.nameOf(t, d, s.Forward); err != nil {
			return out, err
		}
	}
	return out, nil
}

// resolveStaff finds the staff member of d a name means: a contact's
// name, else a staff name of d (the only one so named).
func (c *Client) resolveStaff(t *tx, d *directory.Directory, name string) (keys.Fingerprint, error) {
	cs, err := t.contacts()
	if err != nil {
		return keys.Fingerprint{}, err
	}
	for _, r := range cs {
		if r.Person.Name == name && !r.Person.ViaGroup {
			id := fpOf(r.Person.Identity)
			if d.Person(id) == nil {
				return id, fmt.Errorf("%w: %s is not staff of the organisation directory", ErrInvalidStatus, name)
			}
			return id, nil
		}
	}
	var found []keys.Fingerprint
	for _, s := range d.Staff {
		if s.Name == name {
			found = append(found, s.Identity)
		}
	}
	switch len(found) {
	case 0:
		return keys.Fingerprint{}, fmt.Errorf("%w: %q", ErrUnknownContact, name)
	case 1:
		return found[0], nil
	}
	return keys.Fingerprint{}, fmt.Errorf("%w: %d staff members are named %q: name the contact", ErrInvalidStatus, len(found), name)
}

// SetStatus signs this person's availability status with their identity
// key (this device must hold it) and sends it to every device of each
// staff member of the held directory who is a contact, and to this
// person's other devices; this person must be staff of the directory.
// The status's time is this client's clock to the second, or one second
// after the status held when that is not later (a status's time is its
// version).
func (c *Client) SetStatus(ctx context.Context, o StatusOptions) (StatusSet, error) {
	var out StatusSet
	if c.id == nil {
		return out, errors.New("client: this device does not hold its person's identity key, which signs the status")
	}
	if o.Availability < Available || o.Availability > OffDuty {
		return out, fmt.Errorf("%w: availability %d", ErrInvalidStatus, o.Availability)
	}
	now := c.now()
	if !o.DNDUntil.IsZero() && !o.DNDUntil.After(now) {
		return out, fmt.Errorf("%w: do-not-disturb would end in the past", ErrInvalidStatus)
	}
	var (
		b []byte
		d *directory.Directory
	)
	err := c.st.update(func(t *tx) error {
		var err error
		if d, _, err = c.heldDirectory(t); err != nil {
			return err
		}
		if d == nil {
			return ErrNoDirectory
		}
		if d.Person(c.idFP) == nil {
			return fmt.Errorf("%w: this person is not staff of the organisation directory", ErrInvalidStatus)
		}
		s := &directory.Status{Org: d.Org, Time: now.Truncate(time.Second), State: directory.Availability(o.Availability)}
		if !o.DNDUntil.IsZero() {
			// Rounded up: do-not-disturb runs at least until the time
			// asked for.
			s.DNDUntil = o.DNDUntil.Add(time.Second - 1).Truncate(time.Second)
		}
		if o.ForwardTo != "" {
			if s.Forward, err = c.resolveStaff(t, d, o.ForwardTo); err != nil {
				return err
			}
			if s.Forward == c.idFP {
				return fmt.Errorf("%w: forwarding to oneself", ErrInvalidStatus)
			}
		}
		held, err := c.heldStatus(t, c.idFP)
		if err != nil {
			return err
		}
		if held != nil && !s.Time.After(held.Time) {
			s.Time = held.Time.Add(time.Second)
		}
		if b, err = s.Sign(c.id); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidStatus, err)
		}
		// Checked as every colleague's device will check it.
		if _, err := d.AcceptStatus(held, b, s.Time); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidStatus, err)
		}
		if err := t.PutStatus(c.idFP, &store.StatusRecord{Status: b}); err != nil {
			return err
		}
		ps, err := directory.ParseStatus(b)
		if err != nil {
			return err
		}
		out.Status, err = c.publicStatus(t, d, ps, now)
		return err
	})
	if err != nil {
		return out, err
	}
	c.emit(Event{Kind: EventStatus, Contact: Me})
	out.Sent, out.Unreached, err = c.sendStatus(ctx, d, b)
	return out, err
}

// sendStatus sends an encoded status to every device of the directory's
// staff who are contacts (not blocked), and to this person's other
// devices. It returns how many staff members it went to and how many it
// could not reach.
func (c *Client) sendStatus(ctx context.Context, d *directory.Directory, b []byte) (sent, unreached int, err error) {
	targets, unreached, err := c.staffTargets(d)
	if err != nil {
		return 0, unreached, err
	}
	sent, more := c.sendToStaff(ctx, targets, "an availability status", func() *content {
		return &content{Type: contentStatus, Status: b}
	})
	return sent, unreached + more, nil
}

// Status returns the status held for a person: name is a contact's
// name, a staff member's name in the directory, or "" or Me for this
// person. ErrNoStatus if none is held, ErrNoDirectory without a
// directory.
func (c *Client) Status(name string) (Status, error) {
	var out Status
	err := c.st.view(func(t *tx) error {
		d, _, err := c.heldDirectory(t)
		if err != nil {
			return err
		}
		if d == nil {
			return ErrNoDirectory
		}
		id := c.idFP
		if name != "" && name != Me {
			if id, err = c.resolveStaff(t, d, name); err != nil {
				return err
			}
		}
		s, err := c.heldStatus(t, id)
		if err != nil {
			return err
		}
		if s == nil || s.Org != d.Org {
			return fmt.Errorf("%w: %s", ErrNoStatus, name)
		}
		out, err = c.publicStatus(t, d, s, c.now())
		return err
	})
	return out, err
}

// Statuses returns the statuses held for the staff of the held
// directory, this person's included, by name. Without a directory it
// returns none.
func (c *Client) Statuses() ([]Status, error) {
	var out []Status
	now := c.now()
	err := c.st.view(func(t *tx) error {
		d, _, err := c.heldDirectory(t)
		if err != nil || d == nil {
			return err
		}
		for _, p := range d.Staff {
			s, err := c.heldStatus(t, p.Identity)
			if err != nil {
				return err
			}
			if s == nil || s.Org != d.Org {
				continue
			}
			ps, err := c.publicStatus(t, d, s, now)
			if err != nil {
				return err
			}
			out = append(out, ps)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return out, err
}

// receiveStatus accepts a received status, in the receiving
// transaction: only on a device with a held directory, only the sender's
// person's own status (or one from this person's other device), and only
// what directory.AcceptStatus accepts against the held status. Anything
// else is logged and changes nothing.
func (c *Client) receiveStatus(t *tx, from *contactRecord, ct *content, now time.Time, res *received) error {
	if c.dirEnrol == nil {
		return nil
	}
	d, _, err := c.heldDirectory(t)
	if err != nil || d == nil {
		return err
	}
	s, err := directory.ParseStatus(ct.Status)
	if err == nil && !from.Person.Self && s.Subject != fpOf(from.Person.Identity) {
		err = fmt.Errorf("%w: a status of another person than its sender", directory.ErrNotEntitled)
	}
	var held *directory.Status
	if err == nil {
		held, err = c.heldStatus(t, s.Subject)
	}
	if err == nil {
		s, err = d.AcceptStatus(held, ct.Status, now)
	}
	if err != nil {
		if errors.Is(err, store.ErrCorrupt) {
			return err
		}
		c.log.Info("refused an availability status", "err", err)
		return nil
	}
	if err := t.PutStatus(s.Subject, &store.StatusRecord{Status: ct.Status}); err != nil {
		return err
	}
	name, err := c.nameOf(t, d, s.Subject)
	if err != nil {
		return err
	}
	res.events = append(res.events, Event{Kind: EventStatus, Contact: name})
	return nil
}

// forwardPlan is where a message to a staff member also goes.
type forwardPlan struct {
	to     *contactRecord // the colleague (nil: nobody reachable)
	name   string         // the colleague's name (when to is nil: NotForwarded)
	reason string         // why: the addressee's status
	// colleague is the identity the message is forwarded to.
	colleague keys.Fingerprint
}

// forwarding decides whether a message to r is forwarded now: r's
// person is staff of the held directory, and directory.Route over the
// held statuses answers someone else. The rule for a colleague this
// client cannot write to (not a contact, blocked, restricted, or this
// person): the message goes to its recipient only, and the plan names
// the colleague (Message.NotForwarded) unless it is this person.
func (c *Client) forwarding(r *contactRecord) (*forwardPlan, error) {
	if c.dirEnrol == nil || r.Person.Self {
		return nil, nil
	}
	var plan *forwardPlan
	now := c.now()
	err := c.st.view(func(t *tx) error {
		d, _, err := c.heldDirectory(t)
		if err != nil || d == nil {
			return err
		}
		to := fpOf(r.Person.Identity)
		if d.Person(to) == nil {
			return nil
		}
		var serr error
		statusOf := func(id keys.Fingerprint) *directory.Status {
			s, err := c.heldStatus(t, id)
			if err != nil {
				serr = err
				return nil
			}
			return s
		}
		dl, err := d.Route(to, now, statusOf)
		if serr != nil {
			return serr
		}
		if err != nil {
			c.log.Info("a forwarding chain was not followed", "err", err)
			return nil
		}
		if dl.To == to || dl.To == c.idFP {
			return nil
		}
		first := statusOf(to)
		plan = &forwardPlan{colleague: dl.To}
		if plan.name, err = c.nameOf(t, d, dl.To); err != nil {
			return err
		}
		switch {
		case first.State == directory.OffDuty:
			plan.reason = fmt.Sprintf("%s is off duty", r.Person.Name)
		default:
			plan.reason = fmt.Sprintf("%s has do not disturb until %s", r.Person.Name, first.DNDUntil.UTC().Format("2006-01-02 15:04 MST"))
		}
		p, err := t.personByIdentity(dl.To)
		if err != nil || p == nil || p.ViaGroup || p.Self {
			return err
		}
		plan.name = p.Name
		return nil
	})
	if err != nil || plan == nil {
		return nil, err
	}
	// sendable: a contact this client may write to (not blocked, not
	// restricted, no unconfirmed identity change).
	if cr, err := c.sendable(plan.name); err == nil && fpOf(cr.Person.Identity) == plan.colleague {
		plan.to = cr
	}
	return plan, nil
}

// sendForwarded sends the forwarded copy of orig (a text to r, stored as
// m) to the colleague of plan: a text with headers marked forwarded for
// r's person, stored in the conversation with the colleague. The copy
// keeps the subject and urgency, not the reply-to (it names a message of
// another conversation), and disappears with the shorter of the two
// conversations' timers. If it cannot be sent (a refusal; a relay that
// cannot be reached only queues it), m and its record say that the
// message went to its recipient only.
func (c *Client) sendForwarded(ctx context.Context, plan *forwardPlan, r *contactRecord, orig *content, m *Message) {
	to := plan.to
	err := c.contactDevicesFresh(ctx, to.Person.ID)
	if err == nil {
		now := c.now()
		ct := &content{
			Type: contentTextHeaders, Sender: c.devID, SentMS: uint64(now.UnixMilli()), Text: orig.Text,
			Subject: orig.Subject, Urgent: orig.Urgent, ForwardedFor: fpOf(r.Person.Identity),
		}
		if err = c.setTimer(to, ct); err == nil {
			if orig.Timer != 0 && (ct.Timer == 0 || orig.Timer < ct.Timer) {
				ct.Timer = orig.Timer
			}
			copy(ct.MsgID[:], randomID(msgIDSize))
			fm := Message{
				ID: localMessageID(c.devID, ct.MsgID), From: Me, To: to.Person.Name, Text: ct.Text,
				Time: time.UnixMilli(int64(ct.SentMS)).UTC(), Received: now.UTC(), Outgoing: true,
				Subject: ct.Subject, Urgent: ct.Urgent, Expires: expiryOf(ct, now), ForwardedFor: r.Person.Name,
			}
			if err = c.sendSessionMessage(ctx, to, ct, &fm, nil); errors.Is(err, ErrQueued) {
				err = nil
			}
		}
	}
	if err == nil {
		return
	}
	c.log.Warn("could not forward a message to the colleague its recipient's status names", "err", err)
	m.ForwardedTo, m.NotForwarded = "", to.Person.Name
	if uerr := c.st.update(func(t *tx) error {
		_, err := t.UpdateMessage(m.ID, func(rec *messageRecord) {
			rec.ForwardedTo, rec.NotForwarded = "", to.Person.Name
		})
		return err
	}); uerr != nil {
		c.log.Warn("could not note a failed forwarding on the message", "err", uerr)
	}
}
