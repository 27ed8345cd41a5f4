package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/queue"
	"github.com/postern/postern/protocol"
)

// Reply routes (protocol/SPEC.md section 15.9 "Two routes to the
// intake"). An outsider's first route to a team's intake is its
// new-conversation route (the contact's route of section 9 "Routes").
// When the intake forwards a staff reply to the outsider, it gives each
// of the outsider's devices a second mailbox, the reply route
// (contentReplyRoute, op give); the outsider's client writes to the reply
// route while it holds one and to the new route otherwise. When the
// conversation is resolved or archived the intake tells the devices to
// drop it (op drop) and deletes the mailbox. So the two restriction
// levels of a team can stop different sends: level 2 (RestrictedNew)
// revokes the new route only, level 3 (RestrictedReplies) the reply route
// and, while a conversation is answered, the new route too (else an
// outsider could reply on it); level 1 both. Messages on either route
// reach the same queue conversation (the intake's mailbox index names the
// outsider's device for both).

// contentReplyRoute is a team's reply route, given or dropped: pairwise,
// from a team's intake to an outsider's device.
const contentReplyRoute byte = 0x27

// Ops of a contentReplyRoute.
const (
	routeGive byte = 1 // the route: mailbox and send capability
	routeDrop byte = 2 // the conversation was closed: stop writing to mailbox
)

const (
	replyRouteVersion = 1
	mailboxIDSize     = len(protocol.MailboxID{})
	capabilitySize    = 32 // a send capability token

	// maxReplyRouteSize is the longest body: a give.
	maxReplyRouteSize = 1 + 1 + mailboxIDSize + capabilitySize
)

// outDropRoute is a team outgoing item (teamqueue.go): the outsider's
// conversation was closed; drop its reply routes.
const outDropRoute = 6

// replyRouteWire is the body of a contentReplyRoute.
type replyRouteWire struct {
	Op      byte
	Mailbox protocol.MailboxID
	Cap     [capabilitySize]byte // routeGive only
}

// appendReplyRoute encodes a reply route's body (SPEC 15.9 "Two routes to
// the intake"):
//
//	0x01 || op u8 || mailbox [16] [|| capability [32], op 1 only]
func appendReplyRoute(b []byte, w *replyRouteWire) ([]byte, error) {
	if w == nil || w.Mailbox == (protocol.MailboxID{}) {
		return nil, ErrDecrypt
	}
	switch w.Op {
	case routeGive:
		if w.Cap == ([capabilitySize]byte{}) {
			return nil, ErrDecrypt
		}
		b = append(b, replyRouteVersion, w.Op)
		b = append(b, w.Mailbox[:]...)
		return append(b, w.Cap[:]...), nil
	case routeDrop:
		if w.Cap != ([capabilitySize]byte{}) {
			return nil, ErrDecrypt
		}
		b = append(b, replyRouteVersion, w.Op)
		return append(b, w.Mailbox[:]...), nil
	}
	return nil, ErrDecrypt
}

// parseReplyRoute reads what appendReplyRoute writes; nil for anything
// else.
func parseReplyRoute(r *protocol.Reader) *replyRouteWire {
	if r.U8("reply route version") != replyRouteVersion {
		return nil
	}
	w := &replyRouteWire{Op: r.U8("reply route op")}
	r.Array(w.Mailbox[:], "reply route mailbox")
	switch w.Op {
	case routeGive:
		r.Array(w.Cap[:], "reply route capability")
		if w.Cap == ([capabilitySize]byte{}) {
			return nil
		}
	case routeDrop:
	default:
		return nil
	}
	if r.Err() != nil || w.Mailbox == (protocol.MailboxID{}) {
		return nil
	}
	return w
}

// sendRouteOf is the route a session envelope to device r goes to: the
// team's reply route while this device holds one, else the contact's
// route.
func sendRouteOf(r *contactRecord) (mbx, capBytes []byte) {
	if len(r.ReplySendMbx) == mailboxIDSize && len(r.ReplySendCap) == capabilitySize {
		return r.ReplySendMbx, r.ReplySendCap
	}
	return r.SendMbx, r.SendCap
}

// holdsReplyRoute reports whether device r writes to a team's reply route.
func holdsReplyRoute(r *contactRecord) bool {
	mb, _ := sendRouteOf(r)
	return len(mb) > 0 && !bytes.Equal(mb, r.SendMbx)
}

// optedOut reports whether this person's opt-out (section 9 "Opting out
// and in") refuses a send to device r: level 1 every send; level 2 (new
// messages) a send on the new route only; level 3 (replies), when the
// relay refused a reply route, a send on a reply route only. A contact
// with one route (not a team, or a team of an earlier version) is
// refused every send at every level, as the relay refused its only one.
func optedOut(r *contactRecord) bool {
	switch Restriction(r.Person.Restricted) {
	case 0:
		return false
	case RestrictedNew:
		return !holdsReplyRoute(r)
	case RestrictedReplies:
		return !r.Person.RestrictedOnReply || holdsReplyRoute(r)
	}
	return true
}

// receiveReplyRoute takes a reply route given or dropped by device from,
// in the receive transaction (the session authenticated it): only from a
// contact (not this person, not known only through a group) who did not
// accept one of this device's invitations (outsiders accept the team's
// invitation, never the other way round: an outsider cannot hand the
// intake a route), and never on a team's intake. A drop names the route
// it drops, so a late drop of an earlier route leaves a newer one. It
// reports whether it changed anything.
func (c *Client) receiveReplyRoute(t *tx, from *contactRecord, ct *content) (bool, error) {
	p, w := from.Person, ct.RouteOp
	if p.Self || p.ViaGroup {
		c.log.Info("dropped a reply route from a person who is not a contact")
		return false, nil
	}
	invited, err := invitedBy(t, p.Identity)
	if err != nil {
		return false, err
	}
	if invited {
		c.log.Info("dropped a reply route from a contact who accepted this device's invitation")
		return false, nil
	}
	ts, err := t.Teams()
	if err != nil {
		return false, err
	}
	for _, team := range ts {
		if team.Intake {
			c.log.Info("dropped a reply route sent to a team's intake")
			return false, nil
		}
	}
	switch w.Op {
	case routeGive:
		if bytes.Equal(from.ReplySendMbx, w.Mailbox[:]) && bytes.Equal(from.ReplySendCap, w.Cap[:]) {
			return false, nil // a repeat: the intake gives it with every reply
		}
		from.ReplySendMbx, from.ReplySendCap = bytes.Clone(w.Mailbox[:]), bytes.Clone(w.Cap[:])
	case routeDrop:
		if !bytes.Equal(from.ReplySendMbx, w.Mailbox[:]) {
			return false, nil
		}
		from.ReplySendMbx, from.ReplySendCap = nil, nil
	}
	return true, t.putContact(from)
}

// giveReplyRoutes, on the intake before a staff reply is forwarded to
// contact r's person, gives each of the person's devices its reply route:
// a spare mailbox, recorded on the device, and a contentReplyRoute give in
// its session (again with every reply, so that a device that lost it, or
// a give that was lost, heals). A restriction in force is applied to the
// new route at once. A relay that refuses the mailbox (the mailbox limit)
// is logged: the outsider keeps one route. Other errors are returned, and
// the reply waits for the next flush.
func (c *Client) giveReplyRoutes(ctx context.Context, r *contactRecord) error {
	if r.Person.Blocked {
		return nil
	}
	var devs []*contactRecord
	err := c.st.view(func(t *tx) error {
		p, err := t.Person(r.Person.ID)
		if err != nil || p == nil {
			return err
		}
		devs, err = c.targets(t, p)
		return err
	})
	if err != nil {
		return err
	}
	for _, d := range devs {
		if len(d.ReplyRecvMbx) != mailboxIDSize || len(d.ReplyRecvCap) != capabilitySize {
			cn, err := c.authConn(ctx)
			if err != nil {
				return err
			}
			mb, tok, fromSpare, err := c.takeSpare(ctx, cn)
			if isRefusal(err) {
				c.log.Warn("the relay gave no mailbox for a reply route; the outsider keeps one route", "err", err)
				return nil
			}
			if err != nil {
				return err
			}
			if err := c.subscribe(ctx, cn, mb); err != nil && !isRefusal(err) {
				c.returnSpare(mb, tok, fromSpare)
				return err
			}
			nd, err := c.updateContact(d.ID, func(rec *contactRecord) {
				if len(rec.ReplyRecvMbx) == 0 {
					rec.ReplyRecvMbx, rec.ReplyRecvCap = bytes.Clone(mb[:]), tok.SecretBytes()
				}
			})
			if err != nil {
				c.returnSpare(mb, tok, fromSpare)
				return ignoreGone(err)
			}
			if !bytes.Equal(nd.ReplyRecvMbx, mb[:]) {
				c.returnSpare(mb, tok, fromSpare) // one was made meanwhile
			}
		}
	}
	if level := Restriction(r.Person.RestrictedByMe); level != 0 {
		// Before the route is given: a level 3 restriction closes the new
		// route now that the conversation is answered.
		rr, err := c.contactByID(r.ID)
		if err != nil {
			return ignoreGone(err)
		}
		if err := c.setRestrictionRoutes(ctx, rr, level); err != nil {
			return err
		}
	}
	for _, d := range devs {
		d, err := c.contactByID(d.ID)
		if err != nil {
			continue
		}
		if len(d.ReplyRecvMbx) != mailboxIDSize {
			continue
		}
		w := &replyRouteWire{Op: routeGive}
		copy(w.Mailbox[:], d.ReplyRecvMbx)
		copy(w.Cap[:], d.ReplyRecvCap)
		if err := c.sendReplyRoute(ctx, d, w); err != nil {
			return err
		}
	}
	return nil
}

// sendReplyRoute sends w to device d; nil also when it can never arrive
// (the outsider blocked the team), logged.
func (c *Client) sendReplyRoute(ctx context.Context, d *contactRecord, w *replyRouteWire) error {
	ct := &content{Type: contentReplyRoute, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()), RouteOp: w}
	copy(ct.MsgID[:], randomID(msgIDSize))
	err := c.sendSession(ctx, d, ct)
	switch {
	case err == nil, errors.Is(err, ErrQueued):
		// Queued is as good as sent: the outbox delivers it in order.
		return nil
	case errors.Is(err, ErrBlocked), errors.Is(err, ErrInvitationSpent), errors.Is(err, ErrRestricted),
		errors.Is(err, ErrContactBlocked), errors.Is(err, ErrNoDevice), !retryLater(err):
		// It can never arrive (the outsider blocked the team, for one):
		// the reply that follows is refused and counted as a staff
		// reply is.
		c.log.Info("a reply route cannot be delivered", "err", err)
		return nil
	}
	return err
}

// noteClosedRoutes, on the intake in the transaction that takes register
// value v of outsider conversation q, records that the outsider's reply
// routes are to be dropped once v closes the conversation. It reports
// whether it recorded anything. team is the record the caller holds and
// stores.
func (c *Client) noteClosedRoutes(t *tx, team *store.TeamRecord, q *store.QueueRecord, v queue.Value) (bool, error) {
	if !team.Intake || !v.State.Closed() || len(q.Person) == 0 {
		return false, nil
	}
	ds, err := t.DevicesOf(q.Person)
	if err != nil {
		return false, err
	}
	held := false
	for _, d := range ds {
		held = held || len(d.ReplyRecvMbx) > 0
	}
	if !held {
		return false, nil
	}
	for _, o := range team.Outgoing {
		if o.Kind == outDropRoute && bytes.Equal(o.Conversation, q.Conversation) {
			return false, nil // due already
		}
	}
	team.Outgoing = append(team.Outgoing, store.TeamOutgoing{Kind: outDropRoute, Conversation: bytes.Clone(q.Conversation),
		Person: bytes.Clone(q.Person)})
	return true, nil
}

// dropReplyRoutes carries out an outDropRoute item: if the register held
// for conversation q is still closed (a new message may have reopened it
// since), each of the outsider's devices is told to drop its reply route,
// whose mailbox is then deleted; a level 3 restriction then opens the new
// route again (only replies are restricted).
func (c *Client) dropReplyRoutes(ctx context.Context, team *store.TeamRecord, q *store.QueueRecord, r *contactRecord) error {
	if r == nil || q.Version == 0 {
		return nil
	}
	sp, err := spaceOf(team)
	if err != nil {
		c.log.Warn("dropped a reply route drop: the team's keys do not load", "err", err)
		return nil // never better: it must not hold back the team's later items
	}
	var conv queue.ConversationID
	copy(conv[:], q.Conversation)
	v, err := sp.Open(conv, q.Sealed)
	if err != nil {
		c.log.Warn("dropped a reply route drop: the register held does not open", "err", err)
		return nil
	}
	if !v.State.Closed() {
		return nil
	}
	var ds []*store.Device
	if err := c.st.view(func(t *tx) (err error) { ds, err = t.DevicesOf(r.Person.ID); return err }); err != nil {
		return err
	}
	dropped := false
	for _, d := range ds {
		if len(d.ReplyRecvMbx) != mailboxIDSize {
			continue
		}
		dr := &contactRecord{Device: *d, Person: r.Person}
		if !d.Revoked && !r.Person.Blocked {
			w := &replyRouteWire{Op: routeDrop}
			copy(w.Mailbox[:], d.ReplyRecvMbx)
			if err := c.sendReplyRoute(ctx, dr, w); err != nil {
				return err
			}
		}
		cn, err := c.authConn(ctx)
		if err != nil {
			return err
		}
		var mb protocol.MailboxID
		copy(mb[:], d.ReplyRecvMbx)
		if err := c.deleteRoute(ctx, cn, mb); err != nil && !isRefusal(err) {
			return err // the relay unreachable: the next flush
		} else if err != nil {
			c.log.Warn("the relay refused to delete a reply route", "err", err)
		}
		if _, err := c.updateContact(d.ID, func(rec *contactRecord) {
			if bytes.Equal(rec.ReplyRecvMbx, mb[:]) {
				rec.ReplyRecvMbx, rec.ReplyRecvCap = nil, nil
			}
		}); ignoreGone(err) != nil {
			return err
		}
		dropped = true
	}
	if dropped && Restriction(r.Person.RestrictedByMe) == RestrictedReplies {
		rr, err := c.contactByID(r.ID)
		if err != nil {
			return ignoreGone(err)
		}
		return c.setRestrictionRoutes(ctx, rr, RestrictedReplies)
	}
	return nil
}

// setRestrictionRoutes sets the capabilities of the routes of each of r's
// person's devices for restriction level (0: none) on the relay. On a
// team's intake:
//
//	level        new route (and a previous one still live)   reply route
//	1 service    revoked (1)                                  revoked (1)
//	2 new        revoked (2)                                  live
//	3 replies    revoked (3) while a reply route is held,     revoked (3)
//	             else live
//	0            live (a previous route stays revoked)        live
//
// Elsewhere the contact has one route, which every level revokes.
func (c *Client) setRestrictionRoutes(ctx context.Context, r *contactRecord, level Restriction) error {
	cn, err := c.authConn(ctx)
	if err != nil {
		return err
	}
	var (
		ds     []*store.Device
		intake bool
	)
	if err := c.st.view(func(t *tx) (err error) {
		if ds, err = t.DevicesOf(r.Person.ID); err != nil {
			return err
		}
		ts, err := t.Teams()
		for _, team := range ts {
			intake = intake || team.Intake
		}
		return err
	}); err != nil {
		return err
	}
	answered := false
	for _, d := range ds {
		answered = answered || (!d.Revoked && len(d.ReplyRecvMbx) == mailboxIDSize)
	}
	reason := revokeReason(level)
	newRevoked := level == RestrictedService || level == RestrictedNew || (level == RestrictedReplies && answered)
	replyRevoked := level == RestrictedService || level == RestrictedReplies
	if !intake {
		// Not a team's intake: the contact has one route, and every
		// level stops it (section 9 "Restrictions").
		newRevoked, replyRevoked = level != 0, level != 0
	}
	for _, d := range ds {
		if d.Revoked || len(d.RecvMbx) != mailboxIDSize {
			continue
		}
		if err := routeCapability(ctx, cn, d.RecvMbx, d.RecvCap, newRevoked, reason); err != nil {
			return err
		}
		if newRevoked && len(d.PrevRecvMbx) == mailboxIDSize && !d.PrevRevoked {
			if err := routeCapability(ctx, cn, d.PrevRecvMbx, d.PrevRecvCap, true, reason); err != nil {
				return err
			}
		}
		if len(d.ReplyRecvMbx) == mailboxIDSize {
			if err := routeCapability(ctx, cn, d.ReplyRecvMbx, d.ReplyRecvCap, replyRevoked, reason); err != nil {
				return err
			}
		}
	}
	return nil
}

// routeCapability revokes (with reason) or registers again the capability
// capBytes of our mailbox mbx on cn.
func routeCapability(ctx context.Context, cn *conn, mbx, capBytes []byte, revoke bool, reason protocol.RevokeReason) error {
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
	if err := cn.ok(ctx, f); err != nil && !(revoke && protocol.IsCode(err, protocol.CodeUnknownCapability)) {
		return fmt.Errorf("client: restrict: %w", err)
	}
	return nil
}

// forgetStaleReplyRoute forgets device r's reply route when the relay
// refused a send to it as an unknown capability: the intake deleted it
// (the conversation was closed) and its drop has not arrived, or was
// lost. The next send goes to the new route. A relay that lies only moves
// this device's sends to the route it would write to anyway.
func (c *Client) forgetStaleReplyRoute(r *contactRecord, mbx []byte, err error) {
	if !protocol.IsCode(err, protocol.CodeUnknownCapability) || len(mbx) == 0 || !bytes.Equal(r.ReplySendMbx, mbx) {
		return
	}
	if _, err := c.updateContact(r.ID, func(rec *contactRecord) {
		if bytes.Equal(rec.ReplySendMbx, mbx) {
			rec.ReplySendMbx, rec.ReplySendCap = nil, nil
		}
	}); ignoreGone(err) != nil {
		c.log.Warn("could not forget a team's reply route", "err", err)
	}
}

// moveFromStaleReplyRoute, after the relay refused outbox entry it as an
// unknown capability on a reply route (the intake deleted the route when
// it closed the conversation, and its drop has not arrived), forgets the
// route and moves the entry to the device's route now (the new route, or
// a reply route given since) in one transaction: a crash after it leaves
// the entry on the route the next flush sends it to, and the message is
// still the one message, sent at least once. The envelope is moved as it
// is: a session envelope is not bound to its mailbox (the session names
// the device, and the intake's mailbox index names the same device for
// both routes). It reports whether it moved the entry, updating it and
// returning the device's record; a sealed envelope (bound to its
// mailbox), an entry already finished, or any other refusal is not moved.
func (c *Client) moveFromStaleReplyRoute(r *contactRecord, it *store.OutboxItem, sendErr error) (*contactRecord, bool, error) {
	if !protocol.IsCode(sendErr, protocol.CodeUnknownCapability) || len(it.Mailbox) == 0 ||
		len(it.Envelope) < protocol.EnvelopeHeaderSize || it.Envelope[1] != byte(protocol.KindSession) {
		return nil, false, nil
	}
	// An entry written before entries recorded their route is a reply
	// route's when it names the one the device holds.
	if !it.ReplyRoute && (len(r.ReplySendMbx) == 0 || !bytes.Equal(it.Mailbox, r.ReplySendMbx)) {
		return nil, false, nil
	}
	var (
		nr    *contactRecord
		moved *store.OutboxEntry
	)
	err := c.st.update(func(t *tx) error {
		nr, moved = nil, nil
		if !t.OutboxHas(it.Seq) {
			return nil // another process on this home finished it
		}
		rec, err := t.contact(r.ID)
		if err != nil || rec == nil {
			return err // gone: the entry is given up as before
		}
		if bytes.Equal(rec.ReplySendMbx, it.Mailbox) {
			rec.ReplySendMbx, rec.ReplySendCap = nil, nil
			if err := t.putContact(rec); err != nil {
				return err
			}
		}
		mbx, capBytes := sendRouteOf(rec)
		if len(mbx) != mailboxIDSize || bytes.Equal(mbx, it.Mailbox) {
			return nil
		}
		e := *it.OutboxEntry
		e.Mailbox, e.Capability = bytes.Clone(mbx), bytes.Clone(capBytes)
		e.ReplyRoute = !bytes.Equal(mbx, rec.SendMbx)
		if err := t.PutOutbox(it.Seq, &e); err != nil {
			return err
		}
		nr, moved = rec, &e
		return nil
	})
	if err != nil || moved == nil {
		return nil, false, err
	}
	c.log.Info("a team's reply route was deleted; the send goes to the new route")
	it.OutboxEntry = moved
	return nr, true, nil
}

// readRouteRegisters, on the intake at the team agent's sweeps, reads
// from the relay the register of each conversation of the team whose
// staff group is gid that it holds open while the outsider holds a reply
// route, and takes a newer one (keepRegister): a close it learns only so
// (the staff device's state change lost or never sent) notes the routes'
// drop as a received state change does (noteClosedRoutes). It reports
// whether it took any register. A read that fails ends the round: the
// next sweep reads again.
func (c *Client) readRouteRegisters(ctx context.Context, gid []byte) (bool, error) {
	var (
		team    *store.TeamRecord
		targets []*queueTarget
	)
	err := c.st.view(func(t *tx) error {
		var err error
		if team, err = t.Team(t.GroupConversationID(gid)); err != nil || team == nil || !team.Intake {
			return err
		}
		qs, err := t.Queues(gid)
		if err != nil {
			return err
		}
		for _, q := range qs {
			if len(q.Person) == 0 {
				continue
			}
			ds, err := t.DevicesOf(q.Person)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(ds, func(d *store.Device) bool { return len(d.ReplyRecvMbx) > 0 }) {
				continue
			}
			qt := &queueTarget{q: q}
			copy(qt.conv[:], q.Conversation)
			if err := c.completeTarget(t, qt); err != nil {
				return err
			}
			if _, v, err := c.itemOf(t, qt); err != nil {
				return err
			} else if !v.State.Closed() {
				targets = append(targets, qt)
			}
		}
		return nil
	})
	if err != nil || len(targets) == 0 {
		return false, err
	}
	write, err := protocol.CapabilityTokenFromBytes(team.WriteCap)
	if err != nil {
		return false, errStoreCorrupt
	}
	took := false
	for _, qt := range targets {
		st, err := c.getClaim(ctx, qt, write, qt.space.Token(qt.conv))
		if err != nil {
			return took, fmt.Errorf("client: read a queue register: %w", err)
		}
		if st.Version <= qt.q.Version {
			continue
		}
		view := queue.NewView()
		if _, _, err := qt.space.Learn(view, qt.conv, st.Version, st.Value); err != nil {
			c.log.Info("a queue register read does not open; the one held stays", "err", err)
			continue
		}
		if err := c.keepRegister(qt, view); err != nil {
			return took, err
		}
		took = true
	}
	return took, nil
}
