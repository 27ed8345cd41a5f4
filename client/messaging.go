package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// errStoreFailed wraps a local store failure while receiving: the envelope
// is not acknowledged, so the relay delivers it again, and Sync or Receive
// return the error.
var errStoreFailed = ErrStore

func fp(f keys.Fingerprint) []byte { return f[:] }

func checkNewContact(t *tx, name string, id keys.Fingerprint) error {
	cs, err := t.contacts()
	if err != nil {
		return err
	}
	for _, c := range cs {
		if bytes.Equal(c.Person.Identity, id[:]) {
			if c.Person.ViaGroup {
				return fmt.Errorf("%w: known through a group as %q; make them a contact from the group (MakeContact)", ErrContactExists, c.Person.Name)
			}
			return fmt.Errorf("%w: already a contact as %q", ErrContactExists, c.Person.Name)
		}
	}
	for _, c := range cs {
		if c.Person.Name == name && !c.Person.ViaGroup {
			// Another identity under this name: a contact who started
			// over, or someone else (idchange.go).
			return &otherIdentityError{rec: c}
		}
	}
	return nil
}

func (c *Client) contact(r *contactRecord) Contact {
	var id keys.Fingerprint
	copy(id[:], r.Person.Identity)
	return Contact{
		Name: r.Person.Name, Identity: id, SafetyNumber: keys.SafetyNumber(c.idFP, id), Added: r.Added,
		Blocked: r.Person.Blocked, Verification: Verification(r.Person.Verification),
		Restricted: Restriction(r.Person.Restricted), RestrictedAt: r.Person.RestrictedAt,
		OptedIn: r.Person.OptedIn, OptInTerms: r.Person.OptInTerms, RestrictedByMe: Restriction(r.Person.RestrictedByMe),
		SendsRefused: optedOut(r), Team: publicTeamNotice(r.Person.Team),
	}
}

// Contacts lists the contacts, oldest first.
func (c *Client) Contacts() ([]Contact, error) {
	var out []Contact
	err := c.st.view(func(t *tx) error {
		cs, err := t.contacts()
		for _, r := range cs {
			if r.Person.ViaGroup {
				continue // known through a group only (groupintro.go)
			}
			ct := c.contact(r)
			conv, err := t.Conversation(t.DirectConversationID(r.Person.ID))
			if err != nil {
				return err
			}
			if conv != nil {
				ct.Disappearing = time.Duration(conv.Disappear) * time.Second
			}
			out = append(out, ct)
		}
		return err
	})
	slices.SortStableFunc(out, func(a, b Contact) int {
		if d := a.Added.Compare(b.Added); d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, err
}

// contactByID reads the record of contact id (ErrUnknownContact if it is
// gone).
func (c *Client) contactByID(id []byte) (*contactRecord, error) {
	var r *contactRecord
	err := c.st.view(func(t *tx) (err error) {
		r, err = t.contact(id)
		if err == nil && r == nil {
			err = ErrUnknownContact
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// updateContact applies fn to the record of contact id in one store
// transaction and returns the record as stored (ErrUnknownContact if it is
// gone).
func (c *Client) updateContact(id []byte, fn func(*contactRecord)) (*contactRecord, error) {
	var r *contactRecord
	err := c.st.update(func(t *tx) (err error) {
		r, err = t.contact(id)
		if err == nil && r == nil {
			err = ErrUnknownContact
		}
		if err != nil {
			return err
		}
		fn(r)
		return t.putContact(r)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// ignoreGone is err, except that a contact deleted meanwhile is no error
// for work done on it in the background.
func ignoreGone(err error) error {
	if errors.Is(err, ErrUnknownContact) {
		return nil
	}
	return err
}

func (c *Client) lookupContact(name string) (*contactRecord, error) {
	var found *contactRecord
	err := c.st.view(func(t *tx) error {
		cs, err := t.contacts()
		for _, r := range cs {
			if r.Person.Name == name && !r.Person.ViaGroup {
				found = r
			}
		}
		return err
	})
	if err == nil && found == nil {
		err = fmt.Errorf("%w: %q", ErrUnknownContact, name)
	}
	return found, err
}

// certificate returns the parsed certificate of a contact (cached).
func (c *Client) certificate(r *contactRecord) (*keys.DeviceCertificate, error) {
	var dev keys.Fingerprint
	copy(dev[:], r.DeviceID)
	c.mu.Lock()
	cert := c.certs[dev]
	c.mu.Unlock()
	if cert != nil {
		return cert, nil
	}
	cert, err := keys.ParseDeviceCertificate(r.Cert)
	if err != nil {
		return nil, err
	}
	if cert.DeviceID() != dev {
		return nil, errStoreCorrupt
	}
	c.mu.Lock()
	c.certs[dev] = cert
	c.mu.Unlock()
	return cert, nil
}

// sendContent signs, seals (KindSealed) and sends a content to a contact
// over the unauthenticated connection, and returns once the relay holds it
// durably. Only introductions travel this way; texts go in sessions
// (sendSession).
func (c *Client) sendContent(ctx context.Context, r *contactRecord, ct *content) error {
	cert, err := c.certificate(r)
	if err != nil {
		return err
	}
	var mb protocol.MailboxID
	copy(mb[:], r.SendMbx)
	signed, err := ct.marshalSigned(c.dev, cert.DeviceID(), mb)
	if err != nil {
		return err
	}
	env, err := sealEnvelope(cert.KEM, mb, signed)
	if err != nil {
		return err
	}
	return c.sendEnvelope(ctx, r, env)
}

// sendEnvelope sends env to the contact's mailbox over the unauthenticated
// connection and returns once the relay holds it durably.
func (c *Client) sendEnvelope(ctx context.Context, r *contactRecord, env []byte) error {
	var mb protocol.MailboxID
	copy(mb[:], r.SendMbx)
	tok, err := protocol.CapabilityTokenFromBytes(r.SendCap)
	if err != nil {
		return errStoreCorrupt
	}
	if h := c.envelopeHook.Load(); h != nil {
		(*h)(true, env)
	}
	if r.Refused {
		return &invitationSpentError{name: r.Person.Name, refused: true}
	}
	resp, err := c.anonRequest(ctx, r.Relay, anonKey(r.ID), &protocol.Send{Mailbox: mb, Capability: tok, Envelope: env})
	if err != nil {
		return c.sendError(r, err)
	}
	if _, ok := resp.(*protocol.Sent); !ok {
		return unexpected(resp)
	}
	return nil
}

// Send sends text to the contact named contact, in the session with their
// device, and stores it as an outgoing message. It returns once the relay
// has stored the envelope durably. Without a session, Send first fetches
// the contact's prekeys from the relay and starts one; keys that are not
// the contact's known device give ErrDeviceMismatch. A recipient who
// blocked this client gives an error matching ErrBlocked ("NAME no longer
// accepts messages from you"); a contact this client blocked, one matching
// ErrContactBlocked, and nothing is sent. When the contact's relay cannot
// be reached, the message is stored, queued in the local outbox, and Send
// returns it with an error matching ErrQueued ("queued: HOST is
// unreachable; it will be sent when it is back"): the next Sync, Listen
// or Send sends it.
func (c *Client) Send(ctx context.Context, contact, text string) (Message, error) {
	return c.SendWith(ctx, contact, text, nil)
}

// SendWith is Send with options: a subject and the message replied to
// (SendOptions.Subject, SendOptions.ReplyTo; the other fields are for
// SendFiles). A reply to a message that is not in the conversation with
// contact is refused with ErrReplyTo, and nothing is sent.
func (c *Client) SendWith(ctx context.Context, contact, text string, opts *SendOptions) (Message, error) {
	var o SendOptions
	if opts != nil {
		o = *opts
	}
	if len(text) > MaxTextSize {
		return Message{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, len(text), MaxTextSize)
	}
	if text == "" || !utf8.ValidString(text) {
		return Message{}, ErrInvalidText
	}
	r, err := c.sendable(contact)
	if err != nil {
		return Message{}, err
	}
	if err := c.checkHeaders(r, &o); err != nil {
		return Message{}, err
	}
	if err := c.contactDevicesFresh(ctx, r.Person.ID); err != nil {
		return Message{}, err
	}
	// The recipient's availability status may forward it (status.go).
	plan, err := c.forwarding(r)
	if err != nil {
		return Message{}, err
	}
	now := c.now()
	ct := &content{Type: contentText, Sender: c.devID, SentMS: uint64(now.UnixMilli()), Text: text}
	setHeaders(ct, &o)
	if err := c.setTimer(r, ct); err != nil {
		return Message{}, err
	}
	copy(ct.MsgID[:], randomID(msgIDSize))
	m := Message{
		ID: localMessageID(c.devID, ct.MsgID), From: Me, To: r.Person.Name, Text: text,
		Time: time.UnixMilli(int64(ct.SentMS)).UTC(), Received: now.UTC(), Outgoing: true,
		Subject: o.Subject, ReplyTo: o.ReplyTo, Urgent: o.Urgent, Expires: expiryOf(ct, now),
	}
	if plan != nil {
		m.ForwardReason = plan.reason
		if plan.to != nil {
			m.ForwardedTo = plan.to.Person.Name
		} else {
			m.NotForwarded = plan.name
		}
	}
	// The message is stored with the session state and its envelope in
	// the outbox, in one transaction (outbox.go).
	err = c.sendSessionMessage(ctx, r, ct, &m, nil)
	if err != nil && !errors.Is(err, ErrQueued) {
		return Message{}, err
	}
	if plan != nil && plan.to != nil {
		c.sendForwarded(ctx, plan, r, ct, &m)
	}
	return m, err // ErrQueued: stored, queued, sent when the relay is back
}

// isMessageContent reports whether a content type is a message to store
// (a text or files, with or without headers).
func isMessageContent(t byte) bool {
	switch t {
	case contentText, contentAttachment, contentTextHeaders, contentAttachmentHeaders:
		return true
	}
	return false
}

// validSubject: at most MaxSubjectSize bytes of UTF-8 without control
// characters.
func validSubject(s string) bool {
	return len(s) <= MaxSubjectSize && utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

// setHeaders moves a text or attachment content to its type with headers
// when o sets a subject or a reply-to (checked by checkHeaders).
func setHeaders(ct *content, o *SendOptions) {
	if o.Subject == "" && o.ReplyTo == "" && !o.Urgent {
		return
	}
	if ct.Type == contentText {
		ct.Type = contentTextHeaders
	} else {
		ct.Type = contentAttachmentHeaders
	}
	ct.Subject, ct.Urgent = o.Subject, o.Urgent
	if id, err := hex.DecodeString(o.ReplyTo); err == nil && len(id) == replyIDSize {
		ct.HasReply = true
		copy(ct.ReplyTo[:], id)
	}
}

// checkHeaders checks a subject and a reply-to before anything is sent:
// the message replied to must be stored, in the conversation with r.
func (c *Client) checkHeaders(r *contactRecord, o *SendOptions) error {
	if !validSubject(o.Subject) {
		return ErrInvalidSubject
	}
	if o.ReplyTo == "" {
		return nil
	}
	return c.st.view(func(t *tx) error {
		m, err := t.MessageByID(o.ReplyTo)
		if err != nil {
			return err
		}
		if m == nil || !bytes.Equal(m.Conversation, t.DirectConversationID(r.Person.ID)) {
			return fmt.Errorf("%w: %q", ErrReplyTo, o.ReplyTo)
		}
		return nil
	})
}

// storeMessage stores m unless a message with its ID is stored already;
// it reports whether it stored.
func storeMessage(t *tx, r *contactRecord, m *Message) (bool, error) {
	return storeMessageRecord(t, r, m, nil)
}

// storeMessageRecord is storeMessage for a message with attachments (their
// keys are kept in the record, inside the store's encryption).
// The message belongs to the direct conversation with r's person (m's
// Conversation is set); an incoming one names r's device as its sender.
func storeMessageRecord(t *tx, r *contactRecord, m *Message, atts []attachmentRecord) (bool, error) {
	conv, err := t.DirectConversation(r.Person.ID, m.Received)
	if err != nil {
		return false, err
	}
	m.Conversation = hex.EncodeToString(conv.ID)
	rec := &messageRecord{
		ID: m.ID, Conversation: conv.ID, From: m.From, To: m.To, Text: m.Text,
		Subject: m.Subject, ReplyTo: m.ReplyTo, Urgent: m.Urgent,
		Time: m.Time, Received: m.Received, Outgoing: m.Outgoing, Notice: m.Notice,
		Attachments: atts, Queued: m.Queued, ContentID: m.contentID, Expires: m.Expires,
		ForwardedTo: m.ForwardedTo, ForwardReason: m.ForwardReason, NotForwarded: m.NotForwarded, ForwardedFor: m.ForwardedFor,
		Staff: m.staff,
	}
	if !m.Outgoing && !m.Notice {
		rec.Sender = r.ID
	}
	if m.relayed {
		rec.Mailbox, rec.Envelope = m.mailbox[:], m.envelope[:]
	}
	stored, err := t.AddMessage(rec)
	if err == nil && stored && !rec.Expires.IsZero() {
		err = t.noteExpiry(rec.Expires)
	}
	// Its folder and read state, as stored (another device of this person
	// may have placed it already, folders.go).
	if err != nil {
		return stored, err
	}
	if stored {
		// A recall by its sender that came first (recall.go).
		recalled, err := t.applyPendingRecall(rec)
		if err != nil {
			return stored, err
		}
		if recalled {
			r, err := t.MessageByID(rec.ID)
			if err != nil {
				return stored, err
			}
			if r != nil {
				rec = r
				m.Text, m.Subject, m.Attachments = "", "", nil
				m.Recalled, m.RecalledBy = r.Recalled, r.RecalledBy
			}
		}
	}
	m.Read, m.ReadAt = rec.Read || !unread(rec), rec.ReadAt
	m.Folder, err = t.shownFolder(rec)
	return stored, err
}

// received is what storing one delivered envelope produced, and what is
// to be done after the commit (afterReceive).
type received struct {
	msgs     []Message // new messages and notices, stored
	reset    []byte    // a contact (record ID) to send a session reset to
	route    []byte    // a new contact (record ID) to give a fresh route
	routeAck []byte    // a contact (record ID) whose route we now use
	revoke   []byte    // a contact (record ID) whose previous route to revoke
	refuse   *refusal  // an introduction for a used invitation, to refuse
	events   []Event   // contact changes decided in the transaction (events.go)
	// closeRoutes are devices (record IDs) dropped from their person's
	// device list: the mailboxes they wrote to are deleted on the relay.
	closeRoutes [][]byte
	// introduced is a device that introduced itself in this envelope.
	introduced keys.Fingerprint
	// hellos: devices to introduce this device to (a sibling shared a
	// contact); share: a new contact (person record ID) to share with
	// this person's other devices (share.go).
	hellos bool
	share  []byte
	// delivered is the device (record ID) that sent the message stored,
	// deliveredID its content message ID: a delivered receipt is due
	// (receipts.go).
	delivered   []byte
	deliveredID [msgIDSize]byte
	// groups: joins, distributions and admissions to carry out (group.go).
	groups []groupTask
	// teams: a team's intake has something to send (teamqueue.go).
	teams bool
	// directory: a received organisation directory to fetch and check
	// (directory.go).
	directory *directoryTask
	// roles: a role's holder or a role's conversation changed; this
	// device may have conversations to take, hand over or release
	// (roles.go).
	roles bool
	// reach: a new organisation reach generation was kept; this
	// device's colleague mailbox and register are due (reach.go).
	reach bool
}

// receiveEnvelope is receive for tests: the first new message, or nil and
// no error for a duplicate or an envelope that stored no message.
func (c *Client) receiveEnvelope(mb protocol.MailboxID, envID protocol.EnvelopeID, env []byte) (*Message, error) {
	res, err := c.receive(mb, envID, env)
	if errors.Is(err, errDuplicate) {
		err = nil
	}
	for _, m := range res.msgs {
		if !m.Notice {
			return &m, err
		}
	}
	return nil, err
}

// receive opens, checks and stores one delivered envelope, in one store
// transaction. It returns the new messages and notices; errDuplicate for
// an envelope already processed; an error for an envelope that must be
// dropped (ErrDecrypt, ErrUnknownSender, ErrBadSignature,
// ErrInvitationUsed) or not acknowledged (errStoreFailed).
func (c *Client) receive(mb protocol.MailboxID, envID protocol.EnvelopeID, env []byte) (received, error) {
	if h := c.envelopeHook.Load(); h != nil {
		(*h)(false, env)
	}
	now := c.now().UTC()
	seenKey := c.st.Index(bucketSeen, mb[:], envID[:])
	isSession := protocol.CheckEnvelope(env) == nil && env[1] == byte(protocol.KindSession)
	isGroup := protocol.CheckEnvelope(env) == nil && env[1] == byte(protocol.KindGroup)
	isGroupIntro := protocol.CheckEnvelope(env) == nil && env[1] == byte(protocol.KindGroupIntro)
	var (
		ct        *content
		signed    []byte
		introCert *keys.DeviceCertificate
		dropErr   error
	)
	if !isSession && !isGroup && !isGroupIntro {
		ct, signed, introCert, dropErr = c.openAndCheck(mb, env)
	}
	var res received
	err := c.st.update(func(t *tx) error {
		res = received{}
		if t.Has(bucketSeen, seenKey) {
			dropErr = errDuplicate // already stored or already dropped
			return nil
		}
		// Dropped envelopes are marked seen too, so that a redelivery (an
		// acknowledgement lost with its connection) counts as a duplicate.
		if err := t.Put(bucketSeen, seenKey, &seenRecord{At: now}); err != nil {
			return err
		}
		if isSession {
			var err error
			dropErr, err = c.receiveSession(t, mb, envID, env, now, &res)
			return err
		}
		if isGroup {
			var err error
			dropErr, err = c.receiveGroup(t, mb, envID, env, now, &res)
			return err
		}
		if isGroupIntro {
			var err error
			dropErr, err = c.receiveGroupIntro(t, mb, env, now, &res)
			return err
		}
		if dropErr != nil {
			return nil
		}
		cs, err := t.contacts()
		if err != nil {
			return err
		}
		switch ct.Type {
		case contentIntroduction, contentIntroRelay:
			dropErr = c.introduce(t, cs, mb, ct, introCert, now, &res)
		case contentRefusal:
			from, err := t.contactByMailbox(mb[:])
			if err != nil {
				return err
			}
			dropErr = c.refused(t, from, ct, signed, now, &res)
		default:
			// Texts travel only in sessions (SPEC section 9).
			dropErr = ErrDecrypt
		}
		return nil
	})
	if err != nil {
		return received{}, fmt.Errorf("%w: %w", errStoreFailed, err)
	}
	return res, dropErr
}

// openAndCheck does the work that needs no store: decrypt, parse and, for
// an introduction, verify the embedded certificate and the signature (two
// hybrid verifications, kept out of the store transaction).
func (c *Client) openAndCheck(mb protocol.MailboxID, env []byte) (*content, []byte, *keys.DeviceCertificate, error) {
	plain, err := openEnvelope(c.dev, mb, env)
	if err != nil {
		return nil, nil, nil, err
	}
	ct, unsigned, err := parseContent(plain)
	if err != nil {
		return nil, nil, nil, err
	}
	signed := signedMessage(c.devID, mb, unsigned)
	if !isIntroduction(ct.Type) {
		return ct, signed, nil, nil
	}
	cert, err := keys.ParseDeviceCertificate(ct.Cert)
	if err != nil || cert.DeviceID() != ct.Sender {
		return nil, nil, nil, ErrBadSignature
	}
	if cert.Signing.Verify(SealedSignatureContext, signed, ct.Signature) != nil {
		return nil, nil, nil, ErrBadSignature
	}
	return ct, signed, cert, nil
}

// uniqueName returns name, or name-2, name-3... if a contact has it.
func uniqueName(cs []*contactRecord, name string) string {
	taken := func(n string) bool {
		for _, r := range cs {
			if r.Person.Name == n {
				return true
			}
		}
		return false
	}
	if !taken(name) {
		return name
	}
	for i := 2; ; i++ {
		n := name + "-" + strconv.Itoa(i)
		if len(n) <= MaxNameSize && !taken(n) {
			return n
		}
		if len(n) > MaxNameSize {
			name = name[:len(name)-1]
			for !utf8.ValidString(name) {
				name = name[:len(name)-1]
			}
		}
	}
}

// Sync receives everything queued for this device: it starts a fresh
// subscription to every mailbox (reconnecting the authenticated
// connection), waits until the relay has reported each of them drained
// with every envelope stored and acknowledged, and returns the messages
// that are new since the last Sync or Receive, oldest first. Introductions
// are processed on the way: the contacts they add appear in Contacts. On a
// Client from Open, the first Sync connects (and fails if it cannot). If
// an envelope could not be stored (ErrStore: a full disk), Sync returns
// the messages stored before the failure with the error; the relay keeps
// what was not stored, and a later Sync receives it.
func (c *Client) Sync(ctx context.Context) ([]Message, error) {
	fresh, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	g0, cur := c.gen, c.cur
	if fresh == 0 {
		// What failed to store before is delivered again on the new
		// subscription this Sync waits for: only its failures count.
		c.storeErr = nil
	}
	c.mu.Unlock()
	switch {
	case fresh != 0:
		// This call just made the connection: its subscriptions are new.
		g0 = fresh - 1
	case cur != nil:
		// A subscription that reported drained before now says nothing
		// about what was queued since: start a new one.
		c.resubscribe.Store(true)
		cur.close()
	}
	for {
		c.mu.Lock()
		if err := c.stateErrLocked(); err != nil {
			c.mu.Unlock()
			return nil, err
		}
		if c.cur != nil && c.gen > g0 && allDrained(c.subs) {
			if c.ev.inboxGap {
				c.mu.Unlock()
				if err := c.refillInbox(); err != nil {
					return nil, err
				}
				continue
			}
			msgs, serr := c.inbox, c.storeErr
			c.inbox, c.storeErr = nil, nil
			c.mu.Unlock()
			if serr != nil {
				return msgs, serr
			}
			c.syncPrekeys(ctx)
			if n, err := c.resumeHistory(ctx); err != nil {
				c.log.Warn("the message history of this device's link is still missing", "err", err)
			} else if n > 0 {
				c.log.Info("imported the message history", "messages", n)
			}
			if cur := c.current(); cur != nil {
				c.maintainOnce(ctx, cur)
			}
			c.expireNow(ctx)
			if n, err := c.pruneSeen(); err != nil {
				c.log.Warn("pruning processed-envelope records failed", "err", err)
			} else if n > 0 {
				c.log.Info("pruned processed-envelope records", "records", n)
			}
			return msgs, nil
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func allDrained(m map[protocol.MailboxID]bool) bool {
	for _, d := range m {
		if !d {
			return false
		}
	}
	return true
}

// Receive returns the next new message, already stored locally and
// acknowledged, blocking until one arrives or ctx ends. On a Client from
// Open, the first Receive connects (and fails if it cannot). An envelope
// that could not be stored makes it return an error matching ErrStore
// (once per failure); the relay keeps that envelope. Receive and Sync read
// the Client's own subscriber to its events (events.go), which, unlike
// Subscribe's, loses nothing: what it does not keep in memory it reads
// back from the store.
func (c *Client) Receive(ctx context.Context) (Message, error) {
	if _, err := c.connect(ctx); err != nil {
		return Message{}, err
	}
	for {
		c.mu.Lock()
		if len(c.inbox) > 0 {
			m := c.inbox[0]
			c.inbox = c.inbox[1:]
			c.mu.Unlock()
			return m, nil
		}
		if c.ev.inboxGap {
			c.mu.Unlock()
			if err := c.refillInbox(); err != nil {
				return Message{}, err
			}
			continue
		}
		err, ch := c.stateErrLocked(), c.changed
		if err == nil && c.storeErr != nil {
			err, c.storeErr = c.storeErr, nil
		}
		c.mu.Unlock()
		if err != nil {
			return Message{}, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Message{}, ctx.Err()
		}
	}
}

// Ack deletes the relay's copy of an incoming message. Sync and Receive
// already acknowledge every envelope once it is stored; Ack is idempotent
// and does nothing for outgoing messages.
func (c *Client) Ack(ctx context.Context, m Message) error {
	if !m.relayed {
		var rec *messageRecord
		err := c.st.view(func(t *tx) (err error) { rec, err = t.MessageByID(m.ID); return err })
		if err != nil || rec == nil || len(rec.Envelope) != 16 {
			return err
		}
		copy(m.mailbox[:], rec.Mailbox)
		copy(m.envelope[:], rec.Envelope)
	}
	cn, err := c.authConn(ctx)
	if err != nil {
		return err
	}
	return cn.ok(ctx, &protocol.Ack{Mailbox: m.mailbox, IDs: []protocol.EnvelopeID{m.envelope}})
}

func (c *Client) messageFromRecord(r *messageRecord) Message {
	m := Message{
		ID: r.ID, From: r.From, To: r.To, Text: r.Text, Time: r.Time, Received: r.Received, Outgoing: r.Outgoing, Notice: r.Notice,
		Attachments: publicAttachments(r.Attachments), Subject: r.Subject, ReplyTo: r.ReplyTo, Urgent: r.Urgent,
		Queued: r.Queued, SendError: r.SendError, Delivered: r.Delivered, ReadReceipt: r.ReadReceipt,
		Folder: r.Folder, Read: r.Read || !unread(r), ReadAt: r.ReadAt, Expires: r.Expires,
		Recalled: r.Recalled, RecalledBy: r.RecalledBy,
		ForwardedTo: r.ForwardedTo, ForwardReason: r.ForwardReason, NotForwarded: r.NotForwarded, ForwardedFor: r.ForwardedFor,
	}
	if m.Folder == "" {
		m.Folder = defaultFolder(r)
	}
	if len(r.Conversation) > 0 {
		m.Conversation = hex.EncodeToString(r.Conversation)
	}
	if len(r.Mailbox) == 16 && len(r.Envelope) == 16 {
		copy(m.mailbox[:], r.Mailbox)
		copy(m.envelope[:], r.Envelope)
		m.relayed = true
	}
	return m
}

// Inbox returns every stored message, incoming and outgoing, in the order
// they were stored (oldest first). Messages reads them by folder and page.
func (c *Client) Inbox() ([]Message, error) {
	var out []Message
	err := c.st.view(func(t *tx) error {
		return t.Messages(func(r *messageRecord) error {
			m, err := c.publicMessage(t, r)
			out = append(out, m)
			return err
		})
	})
	return out, err
}

// Message returns the stored message with the given ID (ErrNoMessage).
func (c *Client) Message(id string) (Message, error) {
	var m Message
	err := c.st.view(func(t *tx) error {
		r, err := t.MessageByID(id)
		if err != nil {
			return err
		}
		if r == nil {
			return ErrNoMessage
		}
		m, err = c.publicMessage(t, r)
		return err
	})
	return m, err
}

// messageRecordByID reads the stored record of message id through the
// message-ID index (ErrNoMessage if there is none).
func (c *Client) messageRecordByID(id string) (*messageRecord, error) {
	var r *messageRecord
	err := c.st.view(func(t *tx) (err error) { r, err = t.MessageByID(id); return err })
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, ErrNoMessage
	}
	return r, nil
}
