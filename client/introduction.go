package client

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/postern/postern/client/internal/session"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Invitations, introductions and routes (protocol/SPEC.md section 9
// "Invitations", "Introductions" and "Routes").
//
// An invitation carries a secret. The relay sees only the capability
// derived from it (when the invitee fetches the inviter's keys and sends
// the introduction); the introduction is authenticated by a MAC under a
// second key derived from it, which the relay never sees, so that it
// cannot introduce a device of its own. Once the inviter accepted an
// introduction, it gives the new contact a fresh mailbox and capability
// inside their session (a route), and revokes the invitation's capability
// as soon as the contact writes to the new route: a leaked or reused
// invitation then stops working, with a clear error to whoever holds it.
const (
	// spareMailboxes is how many spare mailboxes a device keeps ready.
	spareMailboxes = 2
	// maxRefusals caps the refusals sent for one invitation, so that a
	// leaked invitation cannot make the inviter send without end.
	maxRefusals = 3
	// routeWaitForSession is how long an inviter waits for the accepter's
	// session before it starts one itself to send the route.
	routeWaitForSession = 24 * time.Hour
	// maintenanceTimeout bounds a background route maintenance.
	maintenanceTimeout = time.Minute

	refusalNoticeLabel = protocol.LabelPrefix + "refusal-notice-id"
)

// errBadIntroduction: an introduction whose MAC does not verify under the
// invitation it names: not from a holder of the invitation (a relay that
// saw the capability, or a forgery). Dropped.
var errBadIntroduction = errors.New("client: introduction not authenticated by the invitation")

func invitationKey(t *tx, mb []byte) []byte {
	return t.Index(bucketInvitations, []byte("v2"), mb)
}

// onConn returns cn, or the authenticated connection when cn is nil.
// Work done on the receive loop's goroutine (afterReceive) passes the
// connection it received on: waiting there for a new connection would wait
// for that very goroutine, which is the one that reconnects.
func (c *Client) onConn(ctx context.Context, cn *conn) (*conn, error) {
	if cn != nil {
		return cn, nil
	}
	return c.authConn(ctx)
}

// newMailbox creates a mailbox and a send capability tok for it on the
// relay, on cn (nil: the authenticated connection).
func (c *Client) newMailbox(ctx context.Context, cn *conn, tok protocol.CapabilityToken) (*conn, protocol.MailboxID, error) {
	var mb protocol.MailboxID
	cn, err := c.onConn(ctx, cn)
	if err != nil {
		return nil, mb, err
	}
	mb, err = createMailbox(ctx, cn, fixedCap(tok))
	return cn, mb, err
}

// fixedCap is the capability function of createMailbox for a token chosen
// before the mailbox.
func fixedCap(tok protocol.CapabilityToken) func(protocol.MailboxID) protocol.CapabilityToken {
	return func(protocol.MailboxID) protocol.CapabilityToken { return tok }
}

// createMailbox creates a mailbox on cn and registers capFor(its ID) as a
// send capability for it (an invitation's capability is derived from the
// mailbox the relay chose).
func createMailbox(ctx context.Context, cn *conn, capFor func(protocol.MailboxID) protocol.CapabilityToken) (protocol.MailboxID, error) {
	var mb protocol.MailboxID
	r, err := cn.request(ctx, &protocol.CreateMailbox{})
	if err != nil {
		return mb, fmt.Errorf("client: create mailbox: %w", err)
	}
	mc, ok := r.(*protocol.MailboxCreated)
	if !ok {
		return mb, unexpected(r)
	}
	mb = mc.Mailbox
	if err := cn.ok(ctx, &protocol.AddCapability{Mailbox: mb, Hash: capFor(mb).Hash()}); err != nil {
		return mb, fmt.Errorf("client: add capability: %w", err)
	}
	return mb, nil
}

// Invite creates a mailbox for one new contact and returns the invitation
// line to hand to them (a SECRET until used: whoever holds it can introduce
// themselves once). The new contact appears after their introduction
// arrives (Sync or Receive).
func (c *Client) Invite(ctx context.Context) (string, error) {
	inv := &Invitation{Relay: c.relay, Identity: c.idFP}
	rand.Read(inv.Secret[:])
	cn, err := c.authConn(ctx)
	if err != nil {
		return "", err
	}
	// The relay chooses the mailbox ID, and the capability is derived from
	// it (with the secret).
	_, err = createMailbox(ctx, cn, func(mb protocol.MailboxID) protocol.CapabilityToken {
		inv.Mailbox = mb
		return inv.Capability()
	})
	if err != nil {
		return "", err
	}
	now := c.now().UTC()
	err = c.st.update(func(t *tx) error {
		if err := t.addMailbox(mailboxRecord{ID: inv.Mailbox[:], Purpose: "invitation", Created: now}); err != nil {
			return err
		}
		return t.Put(bucketInvitations, invitationKey(t, inv.Mailbox[:]), &invitationRecord{V: 2, Mailbox: inv.Mailbox[:], Secret: inv.Secret[:], Created: now})
	})
	if err != nil {
		return "", err
	}
	if err := c.subscribe(ctx, cn, inv.Mailbox); err != nil && !isRefusal(err) {
		c.log.Debug("subscribe after invite", "err", err) // the next connection subscribes
	}
	c.log.Info("invitation created", "mailbox", inv.Mailbox.Short())
	return inv.Code(), nil
}

// Accept accepts an invitation under the local name name: it fetches the
// inviter's keys from the relay, checks that their identity is the one the
// invitation names (ErrIdentityMismatch otherwise) and that their signed
// prekey is current (ErrStalePrekey), starts the session with them (using
// the one-time prekey the relay handed out), adds the contact, and sends
// them an introduction (this client's name and certificate, a mailbox for
// their replies, and a MAC under the invitation's introduction key).
//
// An invitation already used by someone else, or withdrawn, gives an error
// matching ErrInvitationSpent when the relay refuses it; if the inviter
// accepted someone else's introduction first and the relay still takes
// this one, the inviter answers with a refusal, which a later Sync turns
// into a notice, and sends to them fail with ErrInvitationSpent.
//
// A contact named name with another identity key is not replaced: the
// error matches ErrOtherIdentity (AcceptWith can replace it).
func (c *Client) Accept(ctx context.Context, code, name string) (Contact, error) {
	return c.AcceptWith(ctx, code, name, nil)
}

// AcceptOptions are the options of AcceptWith.
type AcceptOptions struct {
	// Replace: when a contact named name has another identity key (a
	// contact who lost every device and started over), the invitation
	// replaces that identity (protocol/SPEC.md section 9 "Identity
	// changes"): the contact keeps its name and conversation, its old
	// devices are revoked, and it becomes Changed, with a notice: nothing
	// is sent to it until VerifyContact. Without a contact of that name,
	// Replace changes nothing.
	Replace bool
}

// AcceptWith is Accept with options (nil: none).
func (c *Client) AcceptWith(ctx context.Context, code, name string, opts *AcceptOptions) (Contact, error) {
	var o AcceptOptions
	if opts != nil {
		o = *opts
	}
	inv, err := ParseInvitation(code)
	if err != nil {
		return Contact{}, err
	}
	// check refuses a contact that exists, and returns the contact an
	// Accept with Replace replaces (nil: none).
	check := func(t *tx) (*contactRecord, error) {
		if o.Replace {
			return contactToReplace(t, name, inv.Identity)
		}
		return nil, checkNewContact(t, name, inv.Identity)
	}
	if err := checkName(name); err != nil {
		return Contact{}, err
	}
	if inv.Identity == c.idFP {
		return Contact{}, fmt.Errorf("%w: it is your own invitation", ErrInvalidInvitation)
	}
	if err := c.st.view(func(t *tx) error { _, err := check(t); return err }); err != nil {
		return Contact{}, err
	}
	capTok := inv.Capability()
	recID := randomID(16)
	// The bundle fetch and the introduction share a connection of their
	// own (anonKey of the new contact), opened for this invitation.
	r, err := c.anonRequest(ctx, inv.Relay, anonKey(recID), &protocol.FetchBundle{Mailbox: inv.Mailbox, Capability: capTok})
	if err != nil {
		if protocol.IsCode(err, protocol.CodeUnknownCapability) || protocol.IsCode(err, protocol.CodeCapabilityRevoked) || protocol.IsCode(err, protocol.CodeUnknownMailbox) {
			return Contact{}, fmt.Errorf("%w (the relay no longer knows it)", ErrInvitationSpent)
		}
		if protocol.IsCode(err, protocol.CodeRateLimited) {
			return Contact{}, fmt.Errorf("client: the relay refuses more requests for this invitation for now; try again later: %w", err)
		}
		return Contact{}, fmt.Errorf("client: fetch bundle: %w", err)
	}
	b, ok := r.(*protocol.Bundle)
	if !ok {
		return Contact{}, unexpected(r)
	}
	cert, spk, err := parseBundle(b.Bundle)
	if err != nil {
		return Contact{}, err
	}
	if cert.Identity.Fingerprint() != inv.Identity {
		return Contact{}, ErrIdentityMismatch
	}
	pb, err := c.peerBundle(name, cert, spk, b.Prekey)
	if err != nil {
		return Contact{}, err
	}
	// The session starts now, with the one-time prekey just handed out:
	// a later Send fetching another one would waste this one.
	s, _, err := session.Initiate(c.dev, *pb, c.sessionOptions())
	if err != nil {
		return Contact{}, fmt.Errorf("client: start a session with %s: %w", name, err)
	}

	// The reply route: a spare mailbox made earlier, so that accepting
	// makes no authenticated request now that the relay could tie by
	// timing to the anonymous ones above. Without a spare, one is made.
	reply, replyCap, fromSpare, err := c.takeSpare(ctx, nil)
	if err != nil {
		return Contact{}, err
	}
	now := c.now().UTC()
	rec := newContactRecord(name, inv.Identity[:], cert.Bytes(), fp(cert.DeviceID()), inv.Relay, now)
	rec.ID = recID
	rec.SendMbx, rec.SendCap = inv.Mailbox[:], capTok.SecretBytes()
	rec.RecvMbx, rec.RecvCap = reply[:], replyCap.SecretBytes()
	rec.ViaInvitation = true
	var rp *replaced // the identity this Accept replaces, if any
	err = c.st.update(func(t *tx) error {
		rp = nil
		old, err := check(t)
		if err != nil {
			return err
		}
		if old != nil {
			if rp, err = c.replaceIdentity(t, old, rec, now); err != nil {
				return err
			}
		} else if err := t.newContact(rec, now); err != nil {
			return err
		}
		return t.putSessionRecord(rec.ID, &sessionRecord{State: s.MarshalSecret()})
	})
	if err != nil {
		c.returnSpare(reply, replyCap, fromSpare)
		return Contact{}, err
	}
	if rp == nil {
		c.contactChanged(name, ContactAdded)
	}
	if !fromSpare {
		if cn, err := c.authConn(ctx); err == nil {
			if err := c.subscribe(ctx, cn, reply); err != nil && !isRefusal(err) {
				c.log.Debug("subscribe after accept", "err", err)
			}
		}
	}
	intro := &content{
		Type: contentIntroduction, Sender: c.devID, SentMS: uint64(now.UnixMilli()),
		Name: c.name, Cert: c.dev.Certificate().Bytes(), ReplyMailbox: reply,
	}
	if inv.Relay != c.relay {
		// The reply mailbox is on this device's home relay, not the
		// inviter's: the introduction names it (content type 0x10).
		intro.Type, intro.ReplyRelay = contentIntroRelay, c.relay
	}
	copy(intro.MsgID[:], randomID(msgIDSize))
	copy(intro.ReplyCap[:], replyCap.SecretBytes())
	intro.IntroMAC = introductionMAC(inv.introKey(), inv.Relay, inv.Mailbox, inv.Identity, c.idFP, c.devID, reply, intro.ReplyCap, intro.ReplyRelay)
	if err := c.sendContent(ctx, rec, intro); err != nil {
		// Undo, so that Accept can be retried with the same invitation.
		if rp != nil {
			if uerr := c.undoReplace(rp, rec); uerr != nil {
				c.log.Error("could not undo a replaced identity", "err", uerr)
			}
		} else {
			c.st.update(func(t *tx) error { return t.deleteContact(rec) })
		}
		c.returnSpare(reply, replyCap, fromSpare)
		if errors.Is(err, ErrInvitationSpent) {
			return Contact{}, fmt.Errorf("%w (the relay no longer takes it)", ErrInvitationSpent)
		}
		return Contact{}, err
	}
	if rp != nil {
		c.identityReplaced(ctx, rp, name)
	}
	// The session's first message follows at once, so that the inviter
	// answers this session instead of starting one of its own for the
	// route (two sessions started at once would leave one of its
	// one-time prekeys unused). If it fails, the first text starts it.
	hello := &content{Type: contentHello, Sender: c.devID, SentMS: uint64(now.UnixMilli())}
	copy(hello.MsgID[:], randomID(msgIDSize))
	if err := c.sendSession(ctx, rec, hello); err != nil {
		c.log.Debug("could not send the session's first message; the first text will", "err", err)
	}
	c.log.Info("invitation accepted", "contact", inv.Identity.Short())
	return c.contact(rec), nil
}

// takeSpare takes a spare mailbox for a new route, or makes one when none
// is left. fromSpare says which.
func (c *Client) takeSpare(ctx context.Context, cn *conn) (mb protocol.MailboxID, tok protocol.CapabilityToken, fromSpare bool, err error) {
	err = c.st.update(func(t *tx) error {
		fromSpare = false
		list, err := t.mailboxes()
		if err != nil {
			return err
		}
		for i := range list {
			if list[i].Purpose != "spare" || len(list[i].Cap) != 32 {
				continue
			}
			copy(mb[:], list[i].ID)
			tok, _ = protocol.CapabilityTokenFromBytes(list[i].Cap)
			list[i].Purpose, list[i].Cap = "contact", nil
			fromSpare = true
			return t.putMailboxes(list)
		}
		return nil
	})
	if err != nil || fromSpare {
		return mb, tok, fromSpare, err
	}
	tok = protocol.NewCapabilityToken()
	_, mb, err = c.newMailbox(ctx, cn, tok)
	if err != nil {
		return mb, tok, false, err
	}
	now := c.now().UTC()
	err = c.st.update(func(t *tx) error {
		return t.addMailbox(mailboxRecord{ID: mb[:], Purpose: "contact", Created: now})
	})
	return mb, tok, false, err
}

// returnSpare puts a mailbox taken by takeSpare back (a failed Accept).
func (c *Client) returnSpare(mb protocol.MailboxID, tok protocol.CapabilityToken, fromSpare bool) {
	err := c.st.update(func(t *tx) error {
		list, err := t.mailboxes()
		if err != nil {
			return err
		}
		for i := range list {
			if bytes.Equal(list[i].ID, mb[:]) {
				list[i].Purpose, list[i].Cap = "spare", tok.SecretBytes()
				return t.putMailboxes(list)
			}
		}
		return nil
	})
	if err != nil {
		c.log.Warn("could not return a spare mailbox", "err", err)
	}
}

// fillSpares makes spare mailboxes on cn until spareMailboxes are ready.
func (c *Client) fillSpares(ctx context.Context, cn *conn) error {
	var have int
	if err := c.st.view(func(t *tx) error {
		list, err := t.mailboxes()
		for _, m := range list {
			if m.Purpose == "spare" {
				have++
			}
		}
		return err
	}); err != nil {
		return err
	}
	for ; have < spareMailboxes; have++ {
		tok := protocol.NewCapabilityToken()
		mb, err := createMailbox(ctx, cn, fixedCap(tok))
		if err != nil {
			return err
		}
		now := c.now().UTC()
		if err := c.st.update(func(t *tx) error {
			return t.addMailbox(mailboxRecord{ID: mb[:], Purpose: "spare", Created: now, Cap: tok.SecretBytes()})
		}); err != nil {
			return err
		}
		if err := c.subscribe(ctx, cn, mb); err != nil && !isRefusal(err) {
			return err
		}
	}
	return nil
}

// introduce adds the sender of an introduction as a contact, if its MAC
// verifies under a pending invitation for the mailbox it came to. For an
// invitation already used by someone else it schedules a refusal.
func (c *Client) introduce(t *tx, cs []*contactRecord, mb protocol.MailboxID, ct *content, cert *keys.DeviceCertificate, now time.Time, res *received) error {
	if handled, err := c.introduceColleague(t, cs, mb, ct, cert, now, res); handled { // reach.go
		return err
	}
	invKey := invitationKey(t, mb[:])
	var inv invitationRecord
	ok, err := t.Get(bucketInvitations, invKey, &inv)
	if err != nil || !ok || inv.V != 2 || len(inv.Secret) != InvitationSecretSize {
		return ErrInvitationUsed
	}
	full := &Invitation{Relay: c.relay, Mailbox: mb, Identity: c.idFP}
	copy(full.Secret[:], inv.Secret)
	introducer := cert.Identity.Fingerprint()
	// Where the introducer receives: the relay its introduction names
	// (0x10, checked by the parser), or the invitation's, ours (0x05).
	replyRelay := c.relay
	if ct.Type == contentIntroRelay {
		if !c.peerRelayAllowed(ct.ReplyRelay) {
			return ErrDecrypt
		}
		replyRelay = ct.ReplyRelay
	}
	want := introductionMAC(full.introKey(), c.relay, mb, c.idFP, introducer, ct.Sender, ct.ReplyMailbox, ct.ReplyCap, ct.ReplyRelay)
	if !hmac.Equal(want[:], ct.IntroMAC[:]) {
		return errBadIntroduction
	}
	if inv.Used {
		if bytes.Equal(inv.UsedBy, introducer[:]) {
			return ErrContactExists // the same person again (a retried Accept)
		}
		if inv.Refusals < maxRefusals {
			inv.Refusals++
			if err := t.Put(bucketInvitations, invKey, &inv); err != nil {
				return err
			}
			res.refuse = &refusal{cert: cert, relay: replyRelay, mailbox: ct.ReplyMailbox, capability: ct.ReplyCap, invitation: mb}
		}
		return ErrInvitationUsed
	}
	for _, r := range cs {
		if bytes.Equal(r.DeviceID, ct.Sender[:]) || bytes.Equal(r.Person.Identity, introducer[:]) {
			return ErrContactExists
		}
	}
	name := uniqueName(cs, ct.Name)
	rec := newContactRecord(name, fp(introducer), ct.Cert, ct.Sender[:], replyRelay, now)
	rec.SendMbx, rec.SendCap = ct.ReplyMailbox[:], ct.ReplyCap[:]
	rec.RecvMbx, rec.RecvCap = mb[:], full.Capability().SecretBytes()
	rec.NeedRoute = true
	if err := t.newContact(rec, now); err != nil {
		return err
	}
	if err := nameCollision(t, cs, rec, ct.Name, now, res); err != nil {
		return err
	}
	inv.Used, inv.UsedBy = true, introducer[:]
	if err := t.Put(bucketInvitations, invKey, &inv); err != nil {
		return err
	}
	res.route, res.share = rec.ID, rec.Person.ID
	res.events = append(res.events, Event{Kind: EventContact, Contact: name, Change: ContactAdded})
	c.log.Info("contact added from invitation", "mailbox", mb.Short())
	return nil
}

// refusal is an introduction to refuse: where to tell its sender.
type refusal struct {
	cert       *keys.DeviceCertificate
	relay      string // the relay of mailbox (the introducer's home)
	mailbox    protocol.MailboxID
	capability [32]byte
	invitation protocol.MailboxID
}

// sendRefusal tells the sender of an introduction for an invitation that
// was already used that it was refused: a sealed, signed content to the
// reply mailbox their introduction named.
func (c *Client) sendRefusal(ctx context.Context, rf *refusal) error {
	ct := &content{Type: contentRefusal, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()), Invitation: rf.invitation}
	copy(ct.MsgID[:], randomID(msgIDSize))
	signed, err := ct.marshalSigned(c.dev, rf.cert.DeviceID(), rf.mailbox)
	if err != nil {
		return err
	}
	env, err := sealEnvelope(rf.cert.KEM, rf.mailbox, signed)
	if err != nil {
		return err
	}
	tok, err := protocol.CapabilityTokenFromBytes(rf.capability[:])
	if err != nil {
		return err
	}
	resp, err := c.anonRequest(ctx, rf.relay, "refusal:"+hex.EncodeToString(rf.mailbox[:]), &protocol.Send{Mailbox: rf.mailbox, Capability: tok, Envelope: env})
	if err != nil {
		return err
	}
	if _, ok := resp.(*protocol.Sent); !ok {
		return unexpected(resp)
	}
	c.log.Info("refused an introduction for a used invitation", "mailbox", rf.invitation.Short())
	return nil
}

// refused handles a refusal from the inviter of contact invitation: the
// contact is marked refused and a notice is stored. from is the contact
// that writes to mb (nil: none).
func (c *Client) refused(t *tx, from *contactRecord, ct *content, signed []byte, now time.Time, res *received) error {
	if from == nil || !bytes.Equal(from.DeviceID, ct.Sender[:]) {
		return ErrUnknownSender
	}
	cert, err := c.certificate(from)
	if err != nil {
		return ErrUnknownSender
	}
	if cert.Signing.Verify(SealedSignatureContext, signed, ct.Signature) != nil {
		return ErrBadSignature
	}
	if !from.ViaInvitation || !bytes.Equal(from.SendMbx, ct.Invitation[:]) || from.Refused {
		return ErrDecrypt // not about the invitation we hold: nothing to do
	}
	from.Refused = true
	if err := t.putContact(from); err != nil {
		return err
	}
	res.events = append(res.events, Event{Kind: EventContact, Contact: from.Person.Name, Change: ContactRefused})
	h := sha256.New()
	h.Write([]byte(refusalNoticeLabel))
	h.Write(ct.Invitation[:])
	m := &Message{
		ID: hex.EncodeToString(h.Sum(nil)[:8]), From: from.Person.Name, To: Me, Time: now, Received: now, Notice: true,
		Text: from.Person.Name + "'s invitation had already been used by someone else, so " + from.Person.Name +
			" did not receive your introduction or your messages. Ask " + from.Person.Name + " for a new invitation.",
	}
	stored, err := storeMessage(t, from, m)
	if err != nil {
		return err
	}
	if stored {
		res.msgs = append(res.msgs, *m)
	}
	return nil
}

// rotateRoute gives contact id a fresh route (a spare mailbox and its
// capability) inside their session, if they still write with a capability
// that was in an invitation. The new route is recorded before it is
// announced, so that what they send to it is read at once; the old one is
// read until its capability is revoked (revokePrevRoute).
func (c *Client) rotateRoute(ctx context.Context, cn *conn, id []byte) error {
	rec, err := c.contactByID(id)
	if err != nil {
		return ignoreGone(err)
	}
	if !rec.NeedRoute || rec.Person.Blocked || rec.Refused {
		return nil
	}
	if !rec.Session && c.now().Sub(rec.Added) < routeWaitForSession {
		// The accepter started the session and its first message is on
		// its way (Accept sends it after the introduction): the route
		// goes in that session once it arrives (receiveSession), rather
		// than in a second one started from here.
		return nil
	}
	if !rec.RouteChosen {
		mb, tok, _, err := c.takeSpare(ctx, cn)
		if err != nil {
			return err
		}
		rec, err = c.updateContact(id, func(r *contactRecord) {
			if !r.RouteChosen { // else chosen meanwhile: that one stands
				r.PrevRecvMbx, r.PrevRecvCap = r.RecvMbx, r.RecvCap
				r.RecvMbx, r.RecvCap = mb[:], tok.SecretBytes()
				r.RouteChosen = true
			}
		})
		if err != nil {
			return ignoreGone(err)
		}
	}
	ct := &content{Type: contentRoute, Sender: c.devID, SentMS: uint64(c.now().UnixMilli())}
	if rec.Relay != "" && rec.Relay != c.relay {
		// A contact on another relay: the route names ours (0x11).
		ct.Type, ct.ReplyRelay = contentRouteRelay, c.relay
	}
	copy(ct.MsgID[:], randomID(msgIDSize))
	copy(ct.ReplyMailbox[:], rec.RecvMbx)
	copy(ct.ReplyCap[:], rec.RecvCap)
	// Queued is as good as sent here: the outbox delivers it in order.
	if err := c.sendSession(ctx, rec, ct); err != nil && !errors.Is(err, ErrQueued) {
		return err
	}
	rec, err = c.updateContact(id, func(r *contactRecord) { r.NeedRoute = false })
	if err == nil {
		c.log.Info("gave a contact a fresh route", "contact", fpOf(rec.Person.Identity).Short())
		c.contactChanged(rec.Person.Name, ContactRouteChanged)
	}
	return err
}

// revokePrevRoute revokes the capability of contact id's previous route on
// the relay, once they write to the new one.
func (c *Client) revokePrevRoute(ctx context.Context, cn *conn, id []byte) error {
	rec, err := c.contactByID(id)
	if err != nil {
		return ignoreGone(err)
	}
	if !rec.PrevRevokeDue || rec.PrevRevoked || len(rec.PrevRecvMbx) != 16 {
		return nil
	}
	tok, err := protocol.CapabilityTokenFromBytes(rec.PrevRecvCap)
	if err != nil {
		return errStoreCorrupt
	}
	var mb protocol.MailboxID
	copy(mb[:], rec.PrevRecvMbx)
	cn, err = c.onConn(ctx, cn)
	if err != nil {
		return err
	}
	err = cn.ok(ctx, &protocol.RevokeCapability{Mailbox: mb, Hash: tok.Hash()})
	if err != nil && !protocol.IsCode(err, protocol.CodeUnknownCapability) && !protocol.IsCode(err, protocol.CodeUnknownMailbox) {
		return fmt.Errorf("client: revoke the previous route: %w", err)
	}
	_, err = c.updateContact(id, func(r *contactRecord) { r.PrevRevoked, r.PrevRecvCap = true, nil })
	if err == nil {
		c.log.Info("revoked an invitation's capability", "mailbox", mb.Short())
	}
	return err
}

// afterReceive carries out, after the commit and the acknowledgement, what
// storing an envelope decided: a session reset, a route, a route
// acknowledgement, a revocation or a refusal. Failures are logged; routes
// and revocations are retried by maintain.
func (c *Client) afterReceive(ctx context.Context, cn *conn, res *received) {
	if res.reset != nil {
		// Before the Drained that follows is handled, so that a Sync
		// returns after it: the contact learns of the new session now.
		if err := c.sendControl(ctx, res.reset, contentReset); err != nil {
			c.log.Warn("could not send a session reset; the next message starts the session", "err", err)
		}
	}
	if res.route != nil {
		if err := c.rotateRoute(ctx, cn, res.route); err != nil {
			c.log.Warn("could not give a new contact a fresh route yet; will retry", "err", err)
		}
	}
	if res.routeAck != nil {
		// So that they can revoke the old route without waiting for a
		// message of ours.
		if err := c.sendControl(ctx, res.routeAck, contentRouteAck); err != nil {
			c.log.Debug("could not acknowledge a route; the next message does", "err", err)
		}
	}
	if res.revoke != nil {
		if err := c.revokePrevRoute(ctx, cn, res.revoke); err != nil {
			c.log.Warn("could not revoke an invitation's capability yet; will retry", "err", err)
		}
	}
	c.closeRoutes(ctx, res.closeRoutes)
	if res.share != nil {
		c.shareContact(ctx, res.share)
	}
	if res.hellos {
		c.sendHellos(ctx)
	}
	if res.refuse != nil {
		if err := c.sendRefusal(ctx, res.refuse); err != nil {
			c.log.Warn("could not tell the sender of an introduction that the invitation was used", "err", err)
		}
	}
	// Group joins and sender keys (group.go).
	c.runGroupTasksOn(ctx, cn, res.groups)
	if res.teams {
		// What a team's intake forwards (teamqueue.go), in the background:
		// a restriction it carries out needs the authenticated
		// connection, which this receive may be holding up. Sync's
		// maintenance flushes too, after this one.
		c.goBackground(func() {
			ctx, cancel := context.WithTimeout(c.ctx, maintenanceTimeout)
			defer cancel()
			c.flushTeams(ctx)
		})
	}
	c.runDirectoryTask(ctx, res.directory) // directory.go
	if res.roles {
		c.settleRoles(ctx) // roles.go
	}
	if res.reach {
		if err := c.maintainReach(ctx, cn); err != nil { // reach.go
			c.log.Warn("could not publish this device's colleague mailbox yet; will retry", "err", err)
		}
	}
	// A device just linked may have introduced itself (inboxsnapshot.go).
	c.flushInboxSnapshots(ctx)
}

// maintain does the route work that could not be done when it was decided
// (offline, or a home made by an earlier version): spare mailboxes, the
// retirement of format-1 invitations, fresh routes and revocations due.
// Failures are logged and retried at the next connection or Sync.
func (c *Client) maintain(ctx context.Context, cn *conn) {
	if err := c.fillSpares(ctx, cn); err != nil {
		c.log.Warn("could not prepare spare mailboxes", "err", err)
	}
	if err := c.retireOldInvitations(ctx, cn); err != nil {
		c.log.Warn("could not retire old invitations", "err", err)
	}
	// What waits for a relay that could not be reached (outbox.go).
	c.flushOutboxLog(ctx)
	c.flushInboxSnapshots(ctx)
	// Group joins and introductions a closed connection cut short
	// (groupintro.go).
	c.maintainGroups(ctx, cn)
	c.flushTeams(ctx)
	// Role handovers left owed (roles.go).
	c.settleOwedRoles(ctx)
	// The colleague mailbox and register (reach.go).
	if err := c.maintainReach(ctx, cn); err != nil {
		c.log.Warn("could not maintain this device's colleague mailbox", "err", err)
	}
	var routes, revokes [][]byte
	err := c.st.view(func(t *tx) error {
		cs, err := t.contacts()
		for _, r := range cs {
			if r.NeedRoute && !r.Person.Blocked && !r.Refused {
				routes = append(routes, r.ID)
			}
			if r.PrevRevokeDue && !r.PrevRevoked {
				revokes = append(revokes, r.ID)
			}
		}
		return err
	})
	if err != nil {
		c.log.Warn("route maintenance", "err", err)
		return
	}
	for _, id := range routes {
		if err := c.rotateRoute(ctx, cn, id); err != nil {
			c.log.Warn("could not give a contact a fresh route yet", "err", err)
		}
	}
	for _, id := range revokes {
		if err := c.revokePrevRoute(ctx, cn, id); err != nil {
			c.log.Warn("could not revoke an invitation's capability yet", "err", err)
		}
	}
}

// retireOldInvitations deletes on the relay the mailboxes of unused
// invitations of format 1 (whose capability the relay has seen and could
// use to introduce itself), and marks contacts made from used ones for a
// fresh route: they still write with the invitation's capability.
func (c *Client) retireOldInvitations(ctx context.Context, cn *conn) error {
	type old struct {
		key []byte
		rec invitationRecord
	}
	var olds []old
	err := c.st.view(func(t *tx) error {
		return t.Each(bucketInvitations, func(k, p []byte) error {
			var r invitationRecord
			if err := jsonUnmarshal(p, &r); err != nil {
				return err
			}
			if r.V < 2 && !r.Retired {
				olds = append(olds, old{append([]byte(nil), k...), r})
			}
			return nil
		})
	})
	if err != nil || len(olds) == 0 {
		return err
	}
	for _, o := range olds {
		if o.rec.Used {
			continue
		}
		var mb protocol.MailboxID
		copy(mb[:], o.rec.Mailbox)
		if err := cn.ok(ctx, &protocol.DeleteMailbox{Mailbox: mb}); err != nil && !protocol.IsCode(err, protocol.CodeUnknownMailbox) {
			return fmt.Errorf("delete an old invitation's mailbox: %w", err)
		}
	}
	err = c.st.update(func(t *tx) error {
		cs, err := t.contacts()
		if err != nil {
			return err
		}
		for _, o := range olds {
			if o.rec.Used {
				// Its contact still writes with the invitation's
				// capability: give them a fresh route.
				for _, r := range cs {
					if bytes.Equal(r.RecvMbx, o.rec.Mailbox) && !r.RouteChosen && !r.NeedRoute {
						r.NeedRoute = true
						if err := t.putContact(r); err != nil {
							return err
						}
					}
				}
			}
			o.rec.Retired, o.rec.Used = true, true
			if err := t.Put(bucketInvitations, o.key, &o.rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		c.log.Info("retired invitations of format 1", "count", len(olds))
	}
	return err
}

// goMaintain runs maintain on cn in the background (after connecting).
func (c *Client) goMaintain(cn *conn) {
	c.goBackground(func() {
		ctx, cancel := context.WithTimeout(c.ctx, maintenanceTimeout)
		defer cancel()
		c.maintainOnce(ctx, cn)
	})
}

// maintainOnce runs maintain unless another one runs (it holds
// c.maintaining), in which case it waits for that one.
func (c *Client) maintainOnce(ctx context.Context, cn *conn) {
	select {
	case c.maintaining <- struct{}{}:
		defer func() { <-c.maintaining }()
	case <-ctx.Done():
		return
	}
	c.maintain(ctx, cn)
}

// peerRelayAllowed reports whether a relay URL a peer named (a valid,
// canonical one: the parser checked it) may be dialled. ws:// (loopback
// only) is taken from a peer only by a client whose own relay is ws://, a
// local test or development set-up: otherwise anyone holding an
// invitation could make this client open connections to services on its
// own host.
func (c *Client) peerRelayAllowed(relay string) bool {
	return !strings.HasPrefix(relay, "ws://") || strings.HasPrefix(c.relay, "ws://")
}
