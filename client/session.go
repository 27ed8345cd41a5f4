package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/postern/postern/client/internal/session"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
)

// Sessions in the client (protocol/SPEC.md section 9 "Sessions in the
// client"). Each contact has at most one current session with this device,
// stored encrypted in bucketSessions under the contact's record ID. Texts
// travel only in sessions (KindSession envelopes); introductions stay
// sealed (KindSealed). Every use of a session (load, Seal or Open, store)
// happens inside one store transaction, so that two processes on one home
// never use the same state twice.
const (
	// sessionResetFailures is how many session messages in a row from a
	// contact may fail to open before the client gives its session up and
	// starts a new one (with a notice). One failure never disturbs the
	// session: it may be a tampered or replayed envelope.
	sessionResetFailures = 3
	// sessionResetInterval is the least time between two forced resets of
	// one contact's session.
	sessionResetInterval = time.Hour
	// maxAnsweredInits caps the Init IDs remembered per contact (SPEC
	// section 11.3 "Init replay"). A contact starts a new session rarely:
	// this covers far more than a last-resort prekey's lifetime.
	maxAnsweredInits = 256

	noticeIDLabel = protocol.LabelPrefix + "notice-id"
)

var (
	// errDuplicate: an envelope already processed (same envelope ID, or the
	// same session message bytes again). Acknowledged, counted, not stored.
	errDuplicate = errors.New("client: duplicate envelope")
	// errNoSession: sealSession without a session and without a bundle to
	// start one.
	errNoSession = errors.New("client: no session")
	// errReplayedInit: a message carrying an Init this client already
	// answered, for a session it no longer holds: a replay. Dropped without
	// counting towards a reset.
	errReplayedInit = errors.New("client: replayed session handshake")
)

// SessionResetNotice is the text of the notice stored when the session
// with contact name was replaced by a new one (Message.Notice).
func SessionResetNotice(name string) string {
	return "Your secure session with " + name + " was reset. Compare safety numbers if you did not expect this."
}

// sessionRecord is the session state kept for one contact.
type sessionRecord struct {
	V int `json:"v"`
	// State is Session.MarshalSecret of the current session, nil if none.
	State []byte `json:"state,omitempty"`
	// Losing is the session built from the contact's Init that lost a
	// simultaneous initiation: used only to read what they sealed on it,
	// never to seal. Dropped once the current session reads a message.
	Losing []byte `json:"losing,omitempty"`
	// Answered are the IDs of the Inits this client responded to, oldest
	// first (at most maxAnsweredInits): a replayed Init is ignored.
	Answered [][]byte `json:"answered,omitempty"`
	// Failures counts the session messages in a row that did not open.
	Failures int `json:"failures,omitempty"`
	// LastReset is when this client last gave the session up after
	// failures (forced resets are rate-limited).
	LastReset time.Time `json:"last_reset,omitzero"`
}

func (t *tx) sessionRecord(contactID []byte) (*sessionRecord, error) {
	var r sessionRecord
	if _, err := t.Get(bucketSessions, contactID, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func (t *tx) putSessionRecord(contactID []byte, r *sessionRecord) error {
	r.V = 1
	return t.Put(bucketSessions, contactID, r)
}

func (r *sessionRecord) answered(id [32]byte) bool {
	for _, a := range r.Answered {
		if bytes.Equal(a, id[:]) {
			return true
		}
	}
	return false
}

func (r *sessionRecord) addAnswered(id [32]byte) {
	r.Answered = append(r.Answered, bytes.Clone(id[:]))
	if n := len(r.Answered) - maxAnsweredInits; n > 0 {
		r.Answered = r.Answered[n:]
	}
}

func (c *Client) sessionOptions() *session.Options { return &session.Options{Now: c.now} }

// loadSession parses a stored session state; nil for none.
func (c *Client) loadSession(b []byte) (*session.Session, error) {
	if b == nil {
		return nil, nil
	}
	s, err := session.UnmarshalSecret(b, c.sessionOptions())
	if err != nil {
		return nil, errStoreCorrupt
	}
	return s, nil
}

// noticeID is the ID of the notice for the session started by Init id:
// the same on both sides, so each side shows it once.
func noticeID(initID [32]byte) string {
	h := sha256.New()
	h.Write([]byte(noticeIDLabel))
	h.Write(initID[:])
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// storeNotice stores the reset notice for the session started by Init id
// with contact r, unless it is stored already; it returns it if stored.
func storeNotice(t *tx, r *contactRecord, initID [32]byte, now time.Time) (*Message, error) {
	m := &Message{
		ID: noticeID(initID), From: r.Person.Name, To: Me, Text: SessionResetNotice(r.Person.Name),
		Time: now, Received: now, Notice: true,
	}
	stored, err := storeMessage(t, r, m)
	if err != nil || !stored {
		return nil, err
	}
	return m, nil
}

// sendSession sends a text or reset content to contact r in their session,
// starting one first if there is none.
func (c *Client) sendSession(ctx context.Context, r *contactRecord, ct *content) error {
	return c.sendSessionMessage(ctx, r, ct, nil, nil)
}

// sendSessionMessage is sendSession for a message to store as outgoing:
// m (with its attachments atts) is stored in the transaction that seals
// it and puts its envelope in the outbox (outbox.go), marked queued until
// the relay holds it. A message goes to every device of the contact's
// person, with a copy to each of this person's other devices
// (sendToPerson, fanout.go); a control content (m nil) only to r's device.
// When the recipient's relay cannot be reached the error matches
// ErrQueued and m stays stored, queued; when the relay refuses it, m is
// deleted again (nothing was sent) and the error says why.
func (c *Client) sendSessionMessage(ctx context.Context, r *contactRecord, ct *content, m *Message, atts []attachmentRecord) error {
	if m != nil {
		return c.sendToPerson(ctx, r, ct, m, atts)
	}
	plain, err := ct.marshalSession()
	if err != nil {
		return err
	}
	ob := &outboxSpec{}
	if err := c.sealFor(ctx, r, plain, ob); err != nil {
		return err
	}
	return c.deliverOutbox(ctx, ob)
}

// sealFor seals plain for device r (starting a session from its fetched
// prekey bundle if there is none) and puts it in the outbox with ob.
func (c *Client) sealFor(ctx context.Context, r *contactRecord, plain []byte, ob *outboxSpec) error {
	if r.Refused {
		return &invitationSpentError{name: r.Person.Name, refused: true}
	}
	env, err := c.sealSessionEmit(r, plain, nil, ob)
	if errors.Is(err, errNoSession) {
		var pb *session.PeerBundle
		if pb, err = c.fetchPeerBundle(ctx, r); err != nil {
			return err
		}
		env, err = c.sealSessionEmit(r, plain, pb, ob)
	}
	if err != nil {
		return err
	}
	if h := c.envelopeHook.Load(); h != nil {
		(*h)(true, env)
	}
	return nil
}

// sealSession seals plain for contact r in one store transaction: it loads
// the session (or, without one, starts one from pb: errNoSession if pb is
// nil), seals, and stores the advanced state. It returns the envelope and,
// when the new session replaces one this client had, the notice it stored.
// The state is stored before the envelope is sent: a message key is never
// used twice, and an envelope that is never sent only leaves a gap the
// receiver skips.
func (c *Client) sealSession(r *contactRecord, plain []byte, pb *session.PeerBundle) ([]byte, *Message, error) {
	return c.sealSessionOutbox(r, plain, pb, nil)
}

// sealSessionOutbox is sealSession that, with ob, also puts the envelope
// in the outbox and stores ob's message, in the same transaction.
func (c *Client) sealSessionOutbox(r *contactRecord, plain []byte, pb *session.PeerBundle, ob *outboxSpec) ([]byte, *Message, error) {
	var env []byte
	var notice *Message
	err := c.st.update(func(t *tx) error {
		env, notice = nil, nil
		rec, err := t.sessionRecord(r.ID)
		if err != nil {
			return err
		}
		s, err := c.loadSession(rec.State)
		if err != nil {
			return err
		}
		if s == nil {
			if pb == nil {
				return errNoSession
			}
			if s, _, err = session.Initiate(c.dev, *pb, c.sessionOptions()); err != nil {
				return fmt.Errorf("client: start a session with %s: %w", r.Person.Name, err)
			}
			rec.Losing, rec.Failures = nil, 0
			cur, err := t.contact(r.ID)
			if err == nil && cur == nil {
				err = ErrUnknownContact
			}
			if err != nil {
				return err
			}
			if cur.Session {
				// There was a session: it was lost here (wiped or
				// restored state, or given up after failures).
				if notice, err = storeNotice(t, cur, s.InitID(), c.now().UTC()); err != nil {
					return err
				}
			}
			c.log.Info("started a session", "contact", fpOf(r.Person.Identity).Short())
		}
		n, err := protocol.BucketFor(protocol.EnvelopeHeaderSize + s.Overhead() + len(plain))
		if err != nil {
			return ErrTooLong
		}
		// The envelope header, then the session message sealed behind it:
		// one buffer of the envelope's size.
		hdr := append(make([]byte, 0, n), protocol.Version, byte(protocol.KindSession))
		msg, err := s.SealAppend(hdr, plain, n-protocol.EnvelopeHeaderSize)
		if err != nil {
			return fmt.Errorf("client: seal: %w", err)
		}
		env = msg
		rec.State = s.MarshalSecret()
		if err := t.putSessionRecord(r.ID, rec); err != nil {
			return err
		}
		if ob != nil {
			return c.enqueue(t, r, env, ob)
		}
		return nil
	})
	return env, notice, err
}

// fpOf reads a stored fingerprint (a short one reads as zero-padded and
// then matches nothing).
func fpOf(b []byte) keys.Fingerprint {
	var f keys.Fingerprint
	copy(f[:], b)
	return f
}

// fetchPeerBundle fetches contact r's prekey bundle (and a one-time prekey
// if the relay has one left) over the unauthenticated connection, and
// checks that it is the contact's known device.
func (c *Client) fetchPeerBundle(ctx context.Context, r *contactRecord) (*session.PeerBundle, error) {
	var mb protocol.MailboxID
	sendMbx, sendCap := sendRouteOf(r) // a team's reply route, while held (teamroutes.go)
	copy(mb[:], sendMbx)
	tok, err := protocol.CapabilityTokenFromBytes(sendCap)
	if err != nil {
		return nil, errStoreCorrupt
	}
	if r.Refused {
		return nil, &invitationSpentError{name: r.Person.Name, refused: true}
	}
	resp, err := c.anonRequest(ctx, r.Relay, anonKey(r.ID), &protocol.FetchBundle{Mailbox: mb, Capability: tok})
	if err != nil {
		if serr := c.sendError(r, err); !errors.Is(serr, errSendFailed) {
			return nil, serr
		}
		return nil, fmt.Errorf("client: fetch %s's prekeys: %w", r.Person.Name, err)
	}
	b, ok := resp.(*protocol.Bundle)
	if !ok {
		return nil, unexpected(resp)
	}
	cert, spk, err := parseBundle(b.Bundle)
	if err != nil {
		return nil, err
	}
	if cert.DeviceID() != fpOf(r.DeviceID) || cert.Identity.Fingerprint() != fpOf(r.Person.Identity) {
		return nil, &deviceMismatchError{name: r.Person.Name}
	}
	return c.peerBundle(r.Person.Name, cert, spk, b.Prekey)
}

// peerBundle checks the lifetimes of a fetched bundle (protocol/SPEC.md
// section 9 "Prekey lifecycle") and builds the handshake input: a signed
// prekey older than MaxSignedPrekeyAge is refused (a relay must not keep
// serving a stale bundle, whose secret the owner may long have deleted or
// lost), and a one-time prekey older than maxOneTimePrekeyUse is not used
// (its secret may have expired) — the handshake goes ahead on the signed
// prekey alone.
func (c *Client) peerBundle(name string, cert *keys.DeviceCertificate, spk *keys.SignedPrekey, otp []byte) (*session.PeerBundle, error) {
	now := c.now()
	if now.Sub(spk.Created) > MaxSignedPrekeyAge {
		return nil, &stalePrekeyError{name: name, age: now.Sub(spk.Created)}
	}
	pb := &session.PeerBundle{Cert: cert, SignedPrekey: spk}
	if len(otp) > 0 {
		opk, err := keys.ParseSignedPrekey(cert.Signing, otp)
		if err != nil || !opk.OneTime {
			return nil, fmt.Errorf("client: prekey bundle: the one-time prekey the relay returned for %s does not verify", name)
		}
		if now.Sub(opk.Created) <= maxOneTimePrekeyUse {
			pb.OneTime = opk
		} else {
			c.log.Info("ignored an expired one-time prekey")
		}
	}
	return pb, nil
}

// sendControl sends a content of type typ without a body (a session
// reset, a route acknowledgement) to the contact with record ID id, in
// their session (starting one if there is none). Nothing is sent to a
// contact this client blocked.
func (c *Client) sendControl(ctx context.Context, id []byte, typ byte) error {
	r, err := c.contactByID(id)
	if err != nil || r.Person.Blocked {
		return err
	}
	ct := &content{Type: typ, Sender: c.devID, SentMS: uint64(c.now().UnixMilli())}
	copy(ct.MsgID[:], randomID(msgIDSize))
	return c.sendSession(ctx, r, ct)
}

// receiveSession handles a KindSession envelope delivered to mailbox mb,
// inside the store transaction t: it finds the contact who owns mb, opens
// the message with their session (or responds to the Init it carries),
// stores the advanced or new session, the message and any notice, and
// deletes a one-time prekey the new session used. It returns the reason
// to drop the envelope, or an error that aborts the transaction.
func (c *Client) receiveSession(t *tx, mb protocol.MailboxID, envID protocol.EnvelopeID, env []byte, now time.Time, res *received) (drop, err error) {
	from, err := t.contactByMailbox(mb[:])
	if err != nil {
		return nil, err
	}
	if from == nil {
		// A colleague writing on this device's colleague mailbox
		// before it has a route of its own (reach.go).
		if from, err = c.colleagueSender(t, mb, env); err != nil {
			return nil, err
		}
	}
	if from == nil || from.Person.Blocked {
		return ErrUnknownSender, nil
	}
	// The same message in another envelope (a relay replaying it): the
	// session would refuse it, but it must not count as a failure.
	digest := sha256.Sum256(env)
	digestKey := t.Index(bucketSeen, []byte("session"), mb[:], digest[:])
	if t.Has(bucketSeen, digestKey) {
		return errDuplicate, nil
	}
	var (
		rec         *sessionRecord
		cur, losing *session.Session
	)
	// load makes d the sender: its session record and sessions.
	load := func(d *contactRecord) error {
		from = d
		var err error
		if rec, err = t.sessionRecord(from.ID); err != nil {
			return err
		}
		if cur, err = c.loadSession(rec.State); err != nil {
			return err
		}
		losing, err = c.loadSession(rec.Losing)
		return err
	}
	msg := env[protocol.EnvelopeHeaderSize:]
	in, initErr := session.MessageInit(msg)
	if initErr == nil && in != nil {
		// A device that introduced itself on a sibling's route writes
		// there until it has a route of its own: an Init it started
		// names it (devicelink.go).
		alt, err := c.helloSenderByInit(t, from, mb, in.ID())
		if err != nil {
			return nil, err
		}
		if alt != nil {
			from = alt
		}
	}
	if err := load(from); err != nil {
		return nil, err
	}

	// fail records a message that did not open. With no session where
	// there was one, or after sessionResetFailures in a row, the session
	// is given up: a new one starts now (res.reset) or at the next Send.
	// Forced resets are rate-limited (sessionResetInterval): whoever can
	// put envelopes in the mailbox (the relay) could otherwise reset the
	// conversation at will with garbage.
	fail := func() (error, error) {
		rec.Failures = min(rec.Failures+1, sessionResetFailures)
		if (cur == nil && from.Session) || rec.Failures >= sessionResetFailures {
			if !rec.LastReset.IsZero() && now.Sub(rec.LastReset) < sessionResetInterval && !now.Before(rec.LastReset) {
				c.log.Warn("session messages from a contact do not open; a reset was made recently, so none now", "mailbox", mb.Short())
				return ErrDecrypt, t.putSessionRecord(from.ID, rec)
			}
			rec.State, rec.Losing, rec.Failures, rec.LastReset = nil, nil, 0, now
			res.reset = from.ID
			c.log.Warn("session with a contact lost; starting a new one", "mailbox", mb.Short())
		}
		return ErrDecrypt, t.putSessionRecord(from.ID, rec)
	}

	if initErr != nil {
		return fail()
	}
	var (
		plain  []byte
		opened *session.Session // the session that opened msg
		fresh  bool             // opened is new, from in
		opkID  uint32
		hasOPK bool
	)
	switch {
	case in == nil || (cur != nil && in.ID() == cur.InitID()):
		if cur != nil {
			plain, err = cur.Open(msg)
		}
		if cur == nil || err != nil {
			// Perhaps a device that introduced itself on this route
			// and has read our answer (devicelink.go).
			alt, s, p, aerr := c.openAsHelloSender(t, from, mb, msg)
			if aerr != nil {
				return nil, aerr
			}
			if alt == nil {
				return fail()
			}
			if err := load(alt); err != nil {
				return nil, err
			}
			cur, plain = s, p
		}
		opened = cur
	case losing != nil && in.ID() == losing.InitID():
		if plain, err = losing.Open(msg); err != nil {
			return fail()
		}
		opened = losing
	case rec.answered(in.ID()):
		return errReplayedInit, nil
	default:
		s, err := c.respond(t, in, from)
		if errors.Is(err, ErrUnknownSender) {
			return err, nil
		}
		if err != nil {
			return fail()
		}
		if plain, err = s.Open(msg); err != nil {
			return fail()
		}
		if pc := s.PeerCertificate(); pc.DeviceID() != fpOf(from.DeviceID) {
			// Another device of the person, introducing itself on
			// the route of from's (a hello, devicelink.go).
			alt, err := c.acceptHello(t, from, mb, pc, plain, now, res)
			if err != nil {
				return nil, err
			}
			if alt == nil {
				return ErrUnknownSender, nil
			}
			if err := load(alt); err != nil {
				return nil, err
			}
			if rec.answered(in.ID()) {
				return errReplayedInit, nil
			}
		}
		opened, fresh = s, true
		opkID, hasOPK = in.OneTimePrekeyID()
	}
	ct, err := parseSessionContent(plain)
	if err != nil || ct.Sender != fpOf(from.DeviceID) {
		// Authentic but not a content this version knows: dropped with
		// nothing changed (the session reads the next message anyway).
		return ErrDecrypt, nil
	}
	reset := ct.Type == contentReset

	// The message is genuine: update the sessions.
	rec.Failures = 0
	notice := reset
	switch {
	case fresh:
		rec.addAnswered(in.ID())
		if hasOPK {
			if err := t.deletePrekey(opkID); err != nil {
				return nil, err
			}
		}
		switch {
		case cur == nil:
			// Their first session, or one after ours was lost.
			cur, losing = opened, nil
			notice = notice || from.Session
		case cur.NeedsInit():
			// Simultaneous initiation (SPEC 11.3): the smaller Init ID
			// wins. A reset means they could not use our Init: theirs
			// stands.
			if reset || cur.YieldsTo(in) {
				cur, losing = opened, nil
			} else {
				losing = opened
			}
		default:
			// They started a new session while ours worked: they lost
			// theirs.
			cur, losing = opened, nil
			notice = true
		}
		if notice && !reset && cur == opened {
			res.reset = from.ID // tell them too: their side may not know
		}
	case opened == losing:
		if reset {
			cur, losing = losing, nil
		}
	default:
		if in == nil {
			losing = nil // they answered or read ours: the losing one is over
		}
	}
	rec.State, rec.Losing = nil, nil
	if cur != nil {
		rec.State = cur.MarshalSecret()
	}
	if losing != nil {
		rec.Losing = losing.MarshalSecret()
	}
	if err := t.putSessionRecord(from.ID, rec); err != nil {
		return nil, err
	}
	if err := t.Put(bucketSeen, digestKey, &seenRecord{At: now}); err != nil {
		return nil, err
	}
	dirty := false
	if !from.Session && cur != nil {
		from.Session, dirty = true, true
	}
	// Routes (introduction.go): a message on the route we gave them means
	// they have it, so the route they wrote to before can be revoked.
	if len(from.PrevRecvMbx) == 16 && bytes.Equal(from.RecvMbx, mb[:]) && !from.PrevRevoked {
		if !from.PrevRevokeDue || from.NeedRoute {
			from.PrevRevokeDue, from.NeedRoute, dirty = true, false, true
		}
		res.revoke = from.ID
	}
	if from.NeedRoute && !from.RouteChosen {
		res.route = from.ID // their session is here: the route can go in it (introduction.go)
	}
	if ct.Type == contentRouteRelay && !c.peerRelayAllowed(ct.ReplyRelay) {
		c.log.Warn("ignored a route to a relay this client does not dial", "mailbox", mb.Short())
	} else if ct.Type == contentRoute || ct.Type == contentRouteRelay {
		if from.ViaInvitation && !from.Person.Self {
			// Our acceptance has a route of its own now: the contact can
			// go to this person's other devices (share.go).
			res.share = from.Person.ID
		}
		from.SendMbx, from.SendCap = bytes.Clone(ct.ReplyMailbox[:]), bytes.Clone(ct.ReplyCap[:])
		if ct.Type == contentRouteRelay {
			from.Relay = ct.ReplyRelay // valid and canonical: checked by the parser
		}
		from.ViaInvitation, from.Borrowed, dirty = false, false, true
		res.routeAck = from.ID
	}
	if ct.Type == contentHeads {
		c.receiveHeads(t, from, ct.Heads) // checked after the commit (gossip.go)
	}
	if dirty {
		if err := t.putContact(from); err != nil {
			return nil, err
		}
	}
	if from.Person.ViaGroup && !fromGroupPerson(ct.Type) {
		// Known through a group only: its group contents are read, what
		// it would send a contact is not (groupintro.go).
		c.log.Info("dropped a content from a person known only through a group", "type", ct.Type)
		return ErrUnknownSender, nil
	}
	switch ct.Type {
	case contentDeviceList:
		if err := c.applyDeviceList(t, from, ct, now, res); err != nil {
			return nil, err
		}
		if from.NeedRoute && !from.RouteChosen {
			res.route = from.ID
		}
	case contentSentCopy:
		if drop, err := c.receiveSentCopy(t, from, ct, now, res); err != nil || drop != nil {
			return drop, err
		}
	case contentContactShare:
		if drop, err := c.receiveShare(t, from, ct, now, res); err != nil || drop != nil {
			return drop, err
		}
	case contentSync:
		if drop, err := c.receiveSync(t, from, ct, now); err != nil || drop != nil {
			return drop, err
		}
	case contentReceipt:
		if err := c.receiveReceipt(t, from, ct, now, res); err != nil {
			return nil, err
		}
	case contentDisappear:
		if drop, err := c.receiveTimer(t, from, ct, now, res); err != nil || drop != nil {
			return drop, err
		}
	case contentRecall:
		if err := c.receiveRecall(t, from, ct, now, res); err != nil {
			return nil, err
		}
	case contentGroupState, contentGroupKey, contentGroupJoin:
		if err := c.receiveGroupContent(t, from, ct, now, res); err != nil {
			return nil, err
		}
	case contentTeamSecrets:
		if err := c.receiveTeamSecrets(t, from, ct, now); err != nil {
			return nil, err
		}
		// A role handover may have waited for them (roles.go).
		res.roles = true
	case contentTeamNotice:
		took, err := c.receiveTeamNotice(t, from, ct, now) // teamnotice.go
		if err != nil {
			return nil, err
		}
		if took {
			res.events = append(res.events, Event{Kind: EventContact, Contact: from.Person.Name, Change: ContactTeam})
		}
	case contentQueueHistory:
		if err := c.receiveQueueHistory(t, from, ct, now, res); err != nil {
			return nil, err
		}
	case contentDirectory:
		c.receiveDirectory(from, ct, res) // directory.go
	case contentStatus:
		if err := c.receiveStatus(t, from, ct, now, res); err != nil { // status.go
			return nil, err
		}
	case contentRole:
		if err := c.receiveRole(t, from, ct, res); err != nil { // roles.go
			return nil, err
		}
	case contentDirCapability:
		if err := c.receiveDirCapability(t, from, ct); err != nil { // dircap.go
			return nil, err
		}
	case contentReach:
		if err := c.receiveReach(t, from, ct, res); err != nil { // reach.go
			return nil, err
		}
	case contentReplyRoute:
		if _, err := c.receiveReplyRoute(t, from, ct); err != nil { // teamroutes.go
			return nil, err
		}
	}
	if notice && !from.Person.ViaGroup {
		m, err := storeNotice(t, from, opened.InitID(), now)
		if err != nil {
			return nil, err
		}
		if m != nil {
			res.msgs = append(res.msgs, *m)
			c.log.Info("session reset", "mailbox", mb.Short())
		}
	}
	if isMessageContent(ct.Type) {
		var atts []attachmentRecord
		if ct.Type == contentAttachment || ct.Type == contentAttachmentHeaders {
			atts = attachmentRecords(ct.Attachments)
		}
		m := &Message{
			ID: localMessageID(ct.Sender, ct.MsgID), From: from.Person.Name, To: Me, Text: ct.Text,
			Time: time.UnixMilli(int64(min(ct.SentMS, 1<<62))).UTC(), Received: now,
			Attachments: publicAttachments(atts), Subject: ct.Subject, Urgent: ct.Urgent, Expires: expiryOf(ct, now),
			mailbox: mb, envelope: envID, relayed: true, contentID: bytes.Clone(ct.MsgID[:]),
		}
		if m.ReplyTo, err = t.replyIn(ct, from.Person.ID); err != nil {
			return nil, err
		}
		if ct.ForwardedFor != (keys.Fingerprint{}) {
			if m.ForwardedFor, err = c.nameOf(t, nil, ct.ForwardedFor); err != nil {
				return nil, err
			}
		}
		if expiredOnArrival(m, now) {
			c.log.Info("a disappearing message arrived after its time; not stored")
			return nil, nil
		}
		stored, err := storeMessageRecord(t, from, m, atts)
		if err != nil {
			return nil, err
		}
		if stored {
			res.msgs = append(res.msgs, *m)
			if !from.Person.Self {
				res.delivered, res.deliveredID = from.ID, ct.MsgID // receipts.go
				// On a team's intake: forwarded to the staff (teamqueue.go).
				if err := c.intakeMessage(t, from, ct, now, res); err != nil {
					return nil, err
				}
			}
		} else if len(res.msgs) == 0 {
			return errDuplicate, nil
		}
	}
	return nil, nil
}

// respond builds the session that Init in starts, with this device's
// prekeys it names, and checks that the initiator is a device of contact
// from's person (ErrUnknownSender otherwise); the caller checks which.
// Any other failure is ErrDecrypt.
func (c *Client) respond(t *tx, in *session.Init, from *contactRecord) (*session.Session, error) {
	spk, err := t.prekey(in.SignedPrekeyID())
	if err != nil {
		return nil, ErrDecrypt
	}
	var opk *identity.Prekey
	if id, ok := in.OneTimePrekeyID(); ok {
		if opk, err = t.prekey(id); err != nil {
			return nil, ErrDecrypt // consumed: a replay, or our state is older than theirs
		}
	}
	s, err := session.Respond(c.dev, spk, opk, in, c.sessionOptions())
	if err != nil {
		return nil, ErrDecrypt
	}
	// The initiator must be the person's: from's device, or another of
	// the person's devices introducing itself (the caller checks it).
	if s.PeerCertificate().Identity.Fingerprint() != fpOf(from.Person.Identity) {
		return nil, ErrUnknownSender
	}
	return s, nil
}
