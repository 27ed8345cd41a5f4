package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

// setQueues sets the size of the next subscriptions' queues and of the
// inbox (0: the defaults).
func setQueues(c *Client, queue, inbox int) {
	c.ev.mu.Lock()
	c.ev.queueSize, c.ev.inboxSize = queue, inbox
	c.ev.mu.Unlock()
}

// hangGuard bounds a wait that should end; it is not a timing assertion.
const hangGuard = time.Minute

func nextEvent(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the event stream ended")
		}
		return ev
	case <-time.After(hangGuard):
		t.Fatal("no event")
	}
	panic("unreachable")
}

// waitEvent skips events until one for which match is true.
func waitEvent(t *testing.T, ch <-chan Event, what string, match func(Event) bool) Event {
	t.Helper()
	for {
		ev := nextEvent(t, ch)
		if ev.Kind == EventMissed {
			t.Fatalf("waiting for %s: missed events", what)
		}
		if match(ev) {
			return ev
		}
	}
}

// messageEventsN reads until n message events and returns their messages.
func messageEventsN(t *testing.T, ch <-chan Event, n int) []Message {
	t.Helper()
	var out []Message
	for len(out) < n {
		ev := waitEvent(t, ch, "a message", func(ev Event) bool { return ev.Kind == EventMessage })
		out = append(out, ev.Message)
	}
	return out
}

func waitClosed(t *testing.T, ch <-chan Event) {
	t.Helper()
	timeout := time.After(hangGuard)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("the event stream did not end")
		}
	}
}

func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return out
}

func ids(ms []Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// TestSubscribeSlowSubscriber: a subscriber that never reads does not
// hold up storing or another subscriber; when it reads again it finds
// what fitted in its queue, then EventMissed, and resynchronises from
// Inbox with nothing lost; after that its queue works again. Receive and
// Sync (the Client's own queue) lose nothing either.
func TestSubscribeSlowSubscriber(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	const queue, n = 4, 20
	setQueues(alice, queue, 0)
	slow, err := alice.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	setQueues(alice, 0, 0)
	fast, err := alice.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	texts := numbered("m", n)
	for _, s := range texts {
		send(t, bob, "alice", s)
	}
	// The fast subscriber gets every message, in order, while the slow one
	// reads nothing: emitting to the slow one never waited.
	got := messageEventsN(t, fast, n)
	wantTexts(t, "fast subscriber", got, prefixed("bob>me:", texts)...)
	inbox, err := alice.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "stored", inbox, prefixed("bob>me:", texts)...)

	// Every message was offered to the slow subscriber before the fast
	// one (emit goes through subscribers in order): its queue is final.
	var seen []Message
	for {
		ev := nextEvent(t, slow)
		if ev.Kind == EventMissed {
			break
		}
		if ev.Kind == EventMessage {
			seen = append(seen, ev.Message)
		}
	}
	if len(seen) >= queue {
		t.Fatalf("the slow subscriber's queue held %d messages, more than its size %d", len(seen), queue)
	}
	// Resynchronise: what it saw is the start of the inbox, the rest is
	// there too.
	inbox, err = alice.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	if len(inbox) != n || !slices.Equal(ids(seen), ids(inbox[:len(seen)])) {
		t.Fatalf("resynchronised: saw %v, inbox %v", texts2(seen), texts2(inbox))
	}
	select {
	case ev := <-slow:
		t.Fatalf("after EventMissed and nothing new: %v", ev.Kind)
	default:
	}

	// Its queue has room again: the next message arrives as an event.
	send(t, bob, "alice", "after")
	ev := waitEvent(t, slow, "the next message", func(ev Event) bool { return ev.Kind == EventMessage })
	if ev.Message.Text != "after" {
		t.Fatalf("next message on the slow subscriber: %q", ev.Message.Text)
	}
	messageEventsN(t, fast, 1)

	// The Client's own queue lost nothing.
	all, err := alice.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "Sync", all, prefixed("bob>me:", append(texts, "after"))...)
}

func prefixed(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}

func texts2(ms []Message) string { return strings.Join(texts(ms), "|") }

// TestSubscribeStoreOrder: messages stored by the receive loop and by
// Send at the same time reach a subscriber in the order they were stored
// (the order of Inbox).
func TestSubscribeStoreOrder(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	evs, err := alice.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, s := range numbered("b", n) {
			if _, err := bob.Send(ctx, "alice", s); err != nil {
				errs <- err
			}
		}
	}()
	for _, s := range numbered("a", n) {
		send(t, alice, "bob", s)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := messageEventsN(t, evs, 2*n)
	inbox, err := alice.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), ids(inbox)) {
		t.Fatalf("events %v\ninbox  %v", texts2(got), texts2(inbox))
	}
	var in, out []string
	for _, m := range got {
		if m.Outgoing {
			out = append(out, m.Text)
		} else {
			in = append(in, m.Text)
		}
	}
	if !slices.Equal(in, numbered("b", n)) || !slices.Equal(out, numbered("a", n)) {
		t.Fatalf("received %v, sent %v", in, out)
	}
}

// TestSubscribeContextCancel: a subscription ends when its context ends;
// the Client and its other subscribers go on.
func TestSubscribeContextCancel(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx, cancel := context.WithCancel(testCtx(t))
	evs, err := alice.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other, err := alice.Subscribe(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	// The Client is connected (Init): the first event says so.
	if ev := nextEvent(t, evs); ev.Kind != EventConnection || ev.State != ConnOnline {
		t.Fatalf("first event %v %v, want connection online", ev.Kind, ev.State)
	}
	cancel()
	waitClosed(t, evs)
	if _, err := alice.Subscribe(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe with an ended context: %v", err)
	}
	send(t, bob, "alice", "still here")
	if m := messageEventsN(t, other, 1); m[0].Text != "still here" {
		t.Fatalf("the other subscriber got %q", m[0].Text)
	}
	alice.ev.mu.Lock()
	subs := len(alice.ev.subs)
	alice.ev.mu.Unlock()
	if subs != 1 {
		t.Fatalf("%d subscriptions left, want 1", subs)
	}
}

// TestSubscribeClose: Close ends every stream; Subscribe after it is
// refused.
func TestSubscribeClose(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, _ := newTestClient(t, srv, "alice")
	ctx := testCtx(t)
	a, err := alice.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := alice.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Close(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, a)
	waitClosed(t, b)
	if _, err := alice.Subscribe(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
	if _, err := alice.Receive(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Receive after Close: %v", err)
	}
}

// TestSubscribeReceiveOnce: Receive and Sync return each new message once
// and in order, also when the Client's own queue overflowed and the rest
// is read back from the store.
func TestSubscribeReceiveOnce(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	setQueues(alice, 0, 3)
	evs, err := alice.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := numbered("r", 10)
	for _, s := range first {
		send(t, bob, "alice", s)
	}
	messageEventsN(t, evs, len(first)) // all stored: the inbox overflowed
	send(t, alice, "bob", "an outgoing one is not received")
	send(t, bob, "alice", "r10")
	messageEventsN(t, evs, 2)
	var got []Message
	for range 11 {
		m, err := alice.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	wantTexts(t, "Receive", got, prefixed("bob>me:", append(first, "r10"))...)
	if got, err := alice.Sync(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Sync after Receive: %v, %v; want nothing new", texts(got), err)
	}

	// The same through Sync, and Receive goes on after it.
	second := numbered("s", 8)
	for _, s := range second {
		send(t, bob, "alice", s)
	}
	messageEventsN(t, evs, len(second))
	got, err = alice.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "Sync", got, prefixed("bob>me:", second)...)
	send(t, bob, "alice", "last")
	m, err := alice.Receive(ctx)
	if err != nil || m.Text != "last" {
		t.Fatalf("Receive = %q, %v", m.Text, err)
	}
	if s := alice.Stats(); s.Received != 20 {
		t.Fatalf("stats %+v, want 20 received", s)
	}
}

// TestSubscribeConnectionState: the connection's state changes are
// events: a relay restart is reconnecting then online; a revoked device
// is offline with the relay's reason.
func TestSubscribeConnectionState(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, _ := newTestClient(t, srv, "alice")
	ctx := testCtx(t)
	evs, err := alice.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(want ConnState) Event {
		t.Helper()
		ev := waitEvent(t, evs, want.String(), func(ev Event) bool { return ev.Kind == EventConnection })
		if ev.State != want {
			t.Fatalf("connection %v, want %v", ev.State, want)
		}
		return ev
	}
	conn(ConnOnline)
	srv.Restart()
	conn(ConnReconnecting)
	conn(ConnOnline)
	// A Sync's fresh subscription is no change of state.
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.Relay().RevokeDevice(ctx, protocol.DeviceID(alice.Whoami().Device)); err != nil {
		t.Fatal(err)
	}
	// The relay closes the connection with code 13: no reconnecting, the
	// device wipes itself (devices.go).
	ev := conn(ConnOffline)
	if !protocol.IsCode(ev.Err, protocol.CodeDeviceRevoked) || !errors.Is(ev.Err, ErrDeviceRevoked) {
		t.Fatalf("offline because %v, want the device revoked", ev.Err)
	}
	// A new subscriber learns the state first.
	late, err := alice.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, late); ev.Kind != EventConnection || ev.State != ConnOffline || ev.Err == nil {
		t.Fatalf("first event of a late subscriber: %+v", ev)
	}
}

// TestSubscribeContactEvents: adding (both sides), route changes,
// blocking, unblocking and a refused invitation are contact events.
func TestSubscribeContactEvents(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	ctx := testCtx(t)
	alice, aliceHome := newTestClient(t, srv, "alice")
	bob, _ := newTestClient(t, srv, "bob")
	carol, _ := newTestClient(t, srv, "carol")
	subscribe := func(c *Client) <-chan Event {
		ch, err := c.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	be, ce := subscribe(bob), subscribe(carol)
	contact := func(ch <-chan Event, name string, want ContactChange) {
		t.Helper()
		waitEvent(t, ch, name+" "+want.String(), func(ev Event) bool {
			return ev.Kind == EventContact && ev.Contact == name && ev.Change == want
		})
	}
	code, err := alice.Invite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Alice is offline until both have accepted: were she receiving, she
	// could give bob his route, and revoke the invitation, before carol
	// uses it, and carol would get no refusal but ErrInvitationSpent.
	alice.Close()
	if _, err := bob.Accept(ctx, code, "alice"); err != nil {
		t.Fatal(err)
	}
	contact(be, "alice", ContactAdded)
	if _, err := carol.Accept(ctx, code, "alice"); err != nil {
		t.Fatal(err)
	}
	alice, err = Open(aliceHome, testPass, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.Close() })
	ae := subscribe(alice)
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	contact(ae, "bob", ContactAdded)
	settleRoutes(t, alice, bob)
	contact(ae, "bob", ContactRouteChanged) // alice gave bob a fresh route
	contact(be, "alice", ContactRouteChanged)
	if _, err := carol.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	contact(ce, "alice", ContactAdded)
	contact(ce, "alice", ContactRefused)
	if ev := nextEvent(t, ce); ev.Kind != EventMessage || !ev.Message.Notice {
		t.Fatalf("after the refusal: %v, want its notice", ev.Kind)
	}
	if err := bob.Block(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	contact(be, "alice", ContactBlocked)
	if err := bob.Unblock(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	contact(be, "alice", ContactUnblocked)
}

// TestSubscribeSessionReset: a lost session gives an EventSessionReset
// naming the contact, then the notice, on both sides.
func TestSubscribeSessionReset(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	send(t, alice, "bob", "hello")
	syncWant(t, bob, "bob", "alice>me:hello")
	ctx := testCtx(t)
	ae, err := alice.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	be, err := bob.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := bob.lookupContact("alice")
	if err := bob.st.update(func(t *tx) error { return t.Delete(bucketSessions, r.ID) }); err != nil {
		t.Fatal(err)
	}
	send(t, alice, "bob", "lost")
	for _, s := range []struct {
		c     *Client
		ch    <-chan Event
		other string
	}{{bob, be, "alice"}, {alice, ae, "bob"}} {
		if _, err := s.c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		ev := waitEvent(t, s.ch, "a reset", func(ev Event) bool { return ev.Kind == EventSessionReset })
		if ev.Contact != s.other {
			t.Fatalf("reset with %q, want %q", ev.Contact, s.other)
		}
		ev = waitEvent(t, s.ch, "the notice", func(ev Event) bool { return ev.Kind == EventMessage && !ev.Message.Outgoing })
		if !ev.Message.Notice || ev.Message.Text != SessionResetNotice(s.other) {
			t.Fatalf("after the reset: %+v, want the notice", ev.Message)
		}
	}
}

// TestSubscribeStoreError: an envelope that cannot be stored is an
// EventStoreError, and Receive reports it once (as before); once the store
// works again, Sync receives the message.
func TestSubscribeStoreError(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	evs, err := alice.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The store file made unusable: a directory in its place.
	aside := alice.st.Path() + ".aside"
	if err := os.Rename(alice.st.Path(), aside); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(alice.st.Path(), 0o700); err != nil {
		t.Fatal(err)
	}
	send(t, bob, "alice", "kept by the relay")
	ev := waitEvent(t, evs, "a store error", func(ev Event) bool { return ev.Kind == EventStoreError })
	if !errors.Is(ev.Err, ErrStore) {
		t.Fatalf("store error event: %v, want ErrStore", ev.Err)
	}
	if _, err := alice.Receive(ctx); !errors.Is(err, ErrStore) {
		t.Fatalf("Receive: %v, want ErrStore", err)
	}
	if err := os.Remove(alice.st.Path()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, alice.st.Path()); err != nil {
		t.Fatal(err)
	}
	syncWant(t, alice, "after the store is back", "bob>me:kept by the relay")
	if m := messageEventsN(t, evs, 1); m[0].Text != "kept by the relay" {
		t.Fatalf("message event %q", m[0].Text)
	}
}

// TestSubscribeOrderHeld: while a sent message is committed but not yet
// emitted, a message arriving meanwhile is not stored and emitted ahead
// of it. (The wait below only gives a wrong order the chance to show; the
// test cannot fail because a machine is slow.)
func TestSubscribeOrderHeld(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	evs, err := alice.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, evs); ev.Kind != EventConnection {
		t.Fatalf("first event %v, want the connection's state", ev.Kind)
	}
	committed, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock() // before the Clients close: their loops may wait for it
	alice.ev.order.Lock()
	alice.ev.sentHook = func() {
		alice.ev.sentHook = nil
		close(committed)
		<-release
	}
	alice.ev.order.Unlock()
	sent := make(chan error, 1)
	go func() {
		_, err := alice.Send(ctx, "bob", "sent first")
		sent <- err
	}()
	<-committed
	send(t, bob, "alice", "arrived meanwhile")
	select {
	case ev := <-evs:
		t.Fatalf("while a sent message waits to be emitted: %v %q", ev.Kind, ev.Message.Text)
	case <-time.After(time.Second):
	}
	unblock()
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	got := messageEventsN(t, evs, 2)
	wantTexts(t, "events", got, "me>bob:sent first", "bob>me:arrived meanwhile")
	inbox, err := alice.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), ids(inbox)) {
		t.Fatalf("events %v, inbox %v", texts2(got), texts2(inbox))
	}
}
