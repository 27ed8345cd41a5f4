package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/postern/postern/client/internal/session"
	"github.com/postern/postern/protocol"
)

// Events for front-ends. Everything that changes what a front-end shows
// is emitted once, after it is committed to the store, to every
// subscriber (Subscribe) and to the Client's own inbox, which Receive and
// Sync read. Emitting never blocks: each subscriber has a bounded queue,
// and a subscriber that does not keep up loses events (it is told, with
// EventMissed) rather than slowing the receive loop, the store or other
// subscribers.

// EventQueueSize is how many events a subscriber's queue holds. When it is
// full, further events are dropped for that subscriber only, and it gets
// one EventMissed in their place.
const EventQueueSize = 256

// inboxQueueSize is how many new messages the Client keeps in memory for
// Receive and Sync. Past it they are not kept but read back from the store
// when the inbox is next read (refillInbox), so that a Client whose
// Receive and Sync are never called (a front-end that subscribes) does not
// grow.
const inboxQueueSize = 1024

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventMessage: a new message or notice was stored (Event.Message):
	// one received, a notice this client wrote into a conversation
	// (Message.Notice), or a message this Client sent (Message.Outgoing).
	EventMessage EventKind = iota + 1
	// EventContact: a contact (Event.Contact, by name) was added, blocked,
	// unblocked or refused, or one of its routes changed (Event.Change).
	EventContact
	// EventSessionReset: the secure session with a contact (Event.Contact)
	// was lost (on either side) and a new one replaces it. The notice
	// stored for it (Message.Notice, SessionResetNotice) follows as an
	// EventMessage; this event saves reading its text.
	EventSessionReset
	// EventStoreError: a received envelope could not be stored (Event.Err
	// matches ErrStore, for example a full disk). It was not
	// acknowledged: the relay keeps it and delivers it again.
	EventStoreError
	// EventConnection: the authenticated connection to the relay changed
	// state (Event.State; Event.Err for ConnOffline).
	EventConnection
	// EventMissed: the subscriber's queue was full and events were
	// dropped here. Resynchronise from the store: Inbox, Contacts. The
	// events that follow may repeat what that read returns (deduplicate
	// messages by ID).
	EventMissed
	// EventAlert: something the person must see at once happened to
	// their own devices (Event.Message, a notice): a device was linked
	// ("NAME's new device OFFICE-PC was linked on ... If this was not you,
	// revoke it: postern device revoke OFFICE-PC") or revoked.
	EventAlert
	// EventTransparency: the device list of a contact (Event.Contact)
	// could not be verified with the key-transparency log of their relay,
	// or gossip showed that the relay shows different logs (Event.Err
	// matches ErrTransparency and says why). Nothing is sent to the
	// contact while their list does not verify; a notice in the
	// conversation says so. Or a team's staff list (Event.Team, the
	// team's name) was refused by the team's log (Event.Err matches
	// ErrStaffListRefused; stafflog.go): the staff list held is kept.
	EventTransparency
	// EventSent: an outgoing message that was queued (Message.Queued,
	// ErrQueued) left the outbox: every recipient device's relay now
	// holds it, or it was given up (Message.SendError says why).
	// Event.Message is the message as stored now.
	EventSent
	// EventReceipt: a device of the recipient of an outgoing message
	// reported it delivered or read, for the first time (its
	// Message.Delivered or Message.ReadReceipt is set now; receipts.go).
	// Event.Message is the message as stored now.
	EventReceipt
	// EventExpired: a disappearing message reached its expiry and was
	// deleted from this device's store with its attachments
	// (disappear.go). Event.Message is the message as it was stored:
	// remove it from view.
	EventExpired
	// EventRecalled: a message was deleted for everyone by its sender
	// (Recall; recall.go). Event.Message is the message as stored now,
	// with Recalled and RecalledBy set and no text or files: show it so.
	EventRecalled
	// EventDirectory: this device accepted a new version of its
	// organisation's directory, or refused one (Event.Err matches
	// ErrDirectoryRefused and says why; directory.go).
	EventDirectory
	// EventQueue: a state change of a team's queue conversation (a claim,
	// an assignment, a resolve, a reopening) arrived from another staff
	// device or the team's intake, and this device took it (Event.Team,
	// the team's name). Read Queue again. A change this Client made
	// itself is not reported: its call returned the conversation; the
	// writes of a role's handover carried out here, which no call made,
	// are (roles.go). A
	// colleague's read of a patient's messages (a queue receipt, ReadQueue)
	// is reported the same way: read QueueThread again for Message.ReadBy.
	EventQueue
	// EventStatus: this device took a new availability status of a staff
	// member (Event.Contact: their name, Me for this person; status.go).
	// Read Status or Statuses again.
	EventStatus
	// EventRole: this device took a new holding of a role account
	// (Event.Role: its name; Event.Team: its team's name in the
	// directory): a colleague's or an administrator's role record
	// arrived, or this Client changed the holder (TakeRole, LeaveRole,
	// SetRoleHolder; roles.go). Read Roles again. The role's queue
	// conversations that move follow as EventQueue.
	EventRole
)

func (k EventKind) String() string {
	switch k {
	case EventMessage:
		return "message"
	case EventContact:
		return "contact"
	case EventSessionReset:
		return "session-reset"
	case EventStoreError:
		return "store-error"
	case EventConnection:
		return "connection"
	case EventMissed:
		return "missed"
	case EventAlert:
		return "alert"
	case EventTransparency:
		return "transparency"
	case EventSent:
		return "sent"
	case EventReceipt:
		return "receipt"
	case EventExpired:
		return "expired"
	case EventRecalled:
		return "recalled"
	case EventDirectory:
		return "directory"
	case EventQueue:
		return "queue"
	case EventStatus:
		return "status"
	case EventRole:
		return "role"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// ContactChange says how a contact changed (EventContact).
type ContactChange uint8

const (
	// ContactAdded: a new contact, from an invitation this client made
	// (their introduction arrived) or accepted (Accept).
	ContactAdded ContactChange = iota + 1
	// ContactBlocked: this client blocked the contact (Block).
	ContactBlocked
	// ContactUnblocked: this client unblocked the contact (Unblock).
	ContactUnblocked
	// ContactRefused: the invitation this client accepted had been used by
	// someone else; the contact receives nothing from this client. A
	// notice in the conversation says so.
	ContactRefused
	// ContactRouteChanged: the mailbox one side writes to was replaced
	// (the invitation's route retired, SPEC section 9 "Routes"). Nothing
	// to show; a front-end may refresh the contact.
	ContactRouteChanged
	// ContactVerified: the user confirmed the contact's safety number
	// (VerifyContact).
	ContactVerified
	// ContactDevicesChanged: the contact linked or removed a device (a
	// newer signed device list); a notice in the conversation says which.
	ContactDevicesChanged
	// ContactIdentityChanged: an accepted invitation replaced the
	// contact's identity key (AcceptOptions.Replace); the contact is
	// Changed, and nothing is sent to it until VerifyContact. A notice in
	// the conversation says so.
	ContactIdentityChanged
	// ContactDisappearing: the disappearing-message timer of the
	// conversation with the contact changed, here, on another device of
	// this person or by the contact (Disappearing reads it).
	ContactDisappearing
	// ContactPatientContext: the patient context of the conversation
	// with the contact was set or cleared on this device
	// (SetPatientContext).
	ContactPatientContext
	// ContactTeam: the contact said it is a team, or its response windows
	// changed (a team notice, Contact.Team); a compose to it shows
	// TeamNoticeText.
	ContactTeam
)

func (c ContactChange) String() string {
	switch c {
	case ContactAdded:
		return "added"
	case ContactBlocked:
		return "blocked"
	case ContactUnblocked:
		return "unblocked"
	case ContactRefused:
		return "refused"
	case ContactRouteChanged:
		return "route-changed"
	case ContactVerified:
		return "verified"
	case ContactDevicesChanged:
		return "devices-changed"
	case ContactIdentityChanged:
		return "identity-changed"
	case ContactDisappearing:
		return "disappearing"
	case ContactPatientContext:
		return "patient-context"
	case ContactTeam:
		return "team"
	}
	return fmt.Sprintf("ContactChange(%d)", uint8(c))
}

// ConnState is the state of the authenticated connection (EventConnection).
type ConnState uint8

const (
	// ConnOnline: connected, authenticated and subscribed to every
	// mailbox; envelopes are received, stored and acknowledged.
	ConnOnline ConnState = iota + 1
	// ConnReconnecting: the connection was lost; the Client reconnects by
	// itself, with backoff. What is sent to this device waits on the relay.
	ConnReconnecting
	// ConnOffline: the Client stopped receiving for good; Event.Err says
	// why (the relay no longer accepts this device).
	ConnOffline
)

func (s ConnState) String() string {
	switch s {
	case ConnOnline:
		return "online"
	case ConnReconnecting:
		return "reconnecting"
	case ConnOffline:
		return "offline"
	}
	return fmt.Sprintf("ConnState(%d)", uint8(s))
}

// Event is one thing that happened on a Client; Kind says which fields
// are set. Every subscriber gets the same Message: treat its Attachments
// as read-only.
type Event struct {
	Kind    EventKind
	Message Message       // EventMessage, EventAlert, EventSent, EventReceipt, EventExpired, EventRecalled
	Contact string        // EventContact, EventSessionReset, EventTransparency, EventStatus: the contact's name
	Change  ContactChange // EventContact
	State   ConnState     // EventConnection
	Err     error         // EventStoreError; EventConnection with ConnOffline; EventTransparency
	Team    string        // EventQueue, EventTransparency for a staff list, EventRole: the team's name
	Role    string        // EventRole: the role account's name
}

// events is a Client's event hub.
type events struct {
	// order is held across a store transaction that stores messages and
	// the emission of their events, so that every subscriber sees
	// messages in the order they were committed (the order of Inbox).
	order sync.Mutex
	// sentHook, if set (tests), runs in sealSessionEmit between the commit and
	// the emission, with order held.
	sentHook func()

	mu        sync.Mutex
	subs      []*subscriber
	closed    bool
	conn      ConnState // last state emitted; 0 before the first connection
	connErr   error
	queueSize int // EventQueueSize; lowered by tests
	inboxSize int // inboxQueueSize; lowered by tests

	// The inbox's overflow, guarded by Client.mu with Client.inbox:
	// messages stored after inboxAfter (an ID) were not kept in memory.
	inboxGap   bool
	inboxAfter string
}

// subscriber is one subscription's queue: a channel with one slot more
// than its size, so that an EventMissed always fits after a full queue.
// It is written only under events.mu.
type subscriber struct {
	ch   chan Event
	size int
	gap  bool        // the last event queued is an EventMissed
	done bool        // ch is closed
	stop func() bool // stops the context.AfterFunc that unsubscribes
}

// Subscribe returns a stream of this Client's events, from now until ctx
// ends or the Client is closed (then the channel is closed). The first
// event is the connection's state (EventConnection) if the Client has
// connected before. Subscribe does not connect: use Dial, or on a Client
// from Open call Sync or Receive, to receive from the relay.
//
// Each subscription has its own queue of EventQueueSize events. A
// subscriber that does not read never slows receiving, storing or other
// subscribers: when its queue is full, events are dropped for it alone,
// and once it reads again it gets an EventMissed where they were dropped,
// telling it to resynchronise from the store (Inbox, Contacts). Events
// that happened before Subscribe are not replayed either: to show a
// conversation, subscribe first, then read Inbox, then apply the events
// (deduplicating messages by ID).
//
// Receive and Sync are unaffected by subscriptions: they read the
// Client's own queue of incoming messages, which loses nothing.
func (c *Client) Subscribe(ctx context.Context) (<-chan Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e := &c.ev
	s := &subscriber{}
	stop := context.AfterFunc(ctx, func() { e.unsubscribe(s) })
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		stop()
		return nil, ErrClosed
	}
	if s.done { // ctx ended in between: unsubscribe found nothing to close
		return nil, ctx.Err()
	}
	s.size = e.queueSize
	if s.size <= 0 {
		s.size = EventQueueSize
	}
	s.ch, s.stop = make(chan Event, s.size+1), stop
	if e.conn != 0 {
		s.ch <- Event{Kind: EventConnection, State: e.conn, Err: e.connErr}
	}
	e.subs = append(e.subs, s)
	return s.ch, nil
}

func (e *events) unsubscribe(s *subscriber) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.done {
		return
	}
	s.done = true
	for i, x := range e.subs {
		if x == s {
			e.subs = append(e.subs[:i], e.subs[i+1:]...)
			close(s.ch)
			break
		}
	}
}

// close ends every stream (Client.Close); later events go nowhere.
func (e *events) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	for _, s := range e.subs {
		s.done = true
		s.stop()
		close(s.ch)
	}
	e.subs = nil
}

// put queues ev for s without blocking: only emitters (under events.mu)
// add to s.ch, so a length below s.size leaves room, and the one slot
// beyond it is for the EventMissed.
func (s *subscriber) put(ev Event) {
	switch {
	case len(s.ch) < s.size:
		s.ch <- ev
		s.gap = false
	case !s.gap:
		s.ch <- Event{Kind: EventMissed}
		s.gap = true
	}
}

// emit hands events, in order, to the inbox and every subscriber. It
// never blocks on a reader. It must not be called with c.mu held.
func (c *Client) emit(evs ...Event) {
	e := &c.ev
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	for _, ev := range evs {
		if ev.Kind == EventConnection {
			if ev.State == e.conn {
				continue // a Sync's fresh subscription is no change
			}
			e.conn, e.connErr = ev.State, ev.Err
		}
		if ev.Kind == EventMessage && !ev.Message.Expires.IsZero() {
			c.kickExpiry() // it may be due before the expiry loop wakes
		}
		c.toInbox(ev)
		for _, s := range e.subs {
			s.put(ev)
		}
	}
}

// emitConn reports a connection state (emit drops repeats).
func (c *Client) emitConn(s ConnState, err error) {
	c.emit(Event{Kind: EventConnection, State: s, Err: err})
}

// toInbox is the Client's own subscriber, which Receive and Sync read:
// new incoming messages and notices in store order, and the first store
// failure not yet reported. It runs under events.mu.
func (c *Client) toInbox(ev Event) {
	size := c.ev.inboxSize
	if size <= 0 {
		size = inboxQueueSize
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ev.Kind {
	case EventMessage:
		switch {
		case ev.Message.Outgoing:
			return // the caller of Send has it
		case c.ev.inboxGap:
			return // read back from the store (refillInbox)
		case len(c.inbox) < size:
			c.inbox = append(c.inbox, ev.Message)
		default:
			c.ev.inboxGap, c.ev.inboxAfter = true, c.inbox[len(c.inbox)-1].ID
		}
	case EventStoreError:
		if c.storeErr == nil {
			c.storeErr = ev.Err
		}
	case EventExpired:
		// Not handed out after it was deleted (disappear.go).
		c.inbox = slices.DeleteFunc(c.inbox, func(m Message) bool { return m.ID == ev.Message.ID })
		return
	case EventRecalled:
		// Handed out as it is now, if not handed out yet (recall.go).
		for i := range c.inbox {
			if c.inbox[i].ID == ev.Message.ID {
				c.inbox[i] = ev.Message
			}
		}
		return
	default:
		return
	}
	c.broadcastLocked()
}

// refillInbox reads back from the store the incoming messages and notices
// the inbox did not keep (those stored after inboxAfter) and appends them
// to it. It holds the order lock, so that no message is stored and
// emitted meanwhile: what it reads and what is emitted after it are
// disjoint. Messages are never deleted from the store, so inboxAfter is
// there; what another process on the same home stored after it is
// included (it is new to this Client too).
func (c *Client) refillInbox() error {
	c.ev.order.Lock()
	defer c.ev.order.Unlock()
	c.mu.Lock()
	gap, after := c.ev.inboxGap, c.ev.inboxAfter
	c.mu.Unlock()
	if !gap {
		return nil
	}
	all, err := c.Inbox()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	i := len(all) - 1
	for i >= 0 && all[i].ID != after {
		i--
	}
	if i < 0 {
		return fmt.Errorf("%w: %w", ErrStore, errStoreCorrupt)
	}
	var rest []Message
	for _, m := range all[i+1:] {
		if !m.Outgoing {
			rest = append(rest, m)
		}
	}
	c.mu.Lock()
	c.inbox = append(c.inbox, rest...)
	c.ev.inboxGap, c.ev.inboxAfter = false, ""
	c.broadcastLocked()
	c.mu.Unlock()
	return nil
}

// queue emits new stored incoming messages and notices (EventMessage),
// which makes them available to Receive and Sync. The caller holds the
// order lock across their commit and this call.
func (c *Client) queue(msgs []Message) {
	if len(msgs) == 0 {
		return
	}
	c.received.Add(uint64(len(msgs)))
	c.emit(messageEvents(msgs)...)
}

// messageEvents are the events of new messages: each one, preceded by an
// EventSessionReset for a session-reset notice. Every lost session gives
// one such notice, stored by whichever side starts the new session
// (receiveSession or sealSession), so the notice is the event's source.
func messageEvents(msgs []Message) []Event {
	var evs []Event
	for _, m := range msgs {
		if isResetNotice(&m) {
			evs = append(evs, Event{Kind: EventSessionReset, Contact: m.From})
		}
		evs = append(evs, Event{Kind: EventMessage, Message: m})
	}
	return evs
}

func isResetNotice(m *Message) bool {
	return m.Notice && !m.Outgoing && m.Text == SessionResetNotice(m.From)
}

// receiveAndQueue is receive for the receive loop: it stores one envelope
// and emits what storing it produced, holding the order lock across both.
func (c *Client) receiveAndQueue(mb protocol.MailboxID, id protocol.EnvelopeID, env []byte) (received, error) {
	c.ev.order.Lock()
	defer c.ev.order.Unlock()
	res, err := c.receive(mb, id, env)
	if errors.Is(err, errStoreFailed) {
		c.emit(Event{Kind: EventStoreError, Err: err})
		return res, err
	}
	// An envelope that stored no message is reported as errDuplicate, yet
	// may have produced events (a team's queue change): emit those. A
	// true duplicate produced none.
	if err != nil && !errors.Is(err, errDuplicate) {
		return res, err
	}
	evs := res.events
	if res.routeAck != nil {
		if r, err := c.contactByID(res.routeAck); err == nil {
			evs = append(evs, Event{Kind: EventContact, Contact: r.Person.Name, Change: ContactRouteChanged})
		}
	}
	c.emit(evs...)
	c.queue(res.msgs)
	return res, err
}

// sealSessionEmit is sealSessionOutbox under the order lock: the notice
// of a session it starts anew, and the message it stores (ob.msg, stored
// as queued with its envelope in the outbox), are emitted right after the
// commit, so that subscribers see messages in the store's order even while
// the envelope is still on its way.
func (c *Client) sealSessionEmit(r *contactRecord, plain []byte, pb *session.PeerBundle, ob *outboxSpec) ([]byte, error) {
	c.ev.order.Lock()
	defer c.ev.order.Unlock()
	env, notice, err := c.sealSessionOutbox(r, plain, pb, ob)
	if err != nil {
		return nil, err
	}
	if notice != nil {
		c.queue([]Message{*notice})
	}
	if ob != nil && ob.msg != nil {
		if c.ev.sentHook != nil {
			c.ev.sentHook()
		}
		c.emit(Event{Kind: EventMessage, Message: *ob.msg})
	}
	return env, nil
}

// contactChanged emits an EventContact for the contact named name.
func (c *Client) contactChanged(name string, ch ContactChange) {
	c.emit(Event{Kind: EventContact, Contact: name, Change: ch})
}
