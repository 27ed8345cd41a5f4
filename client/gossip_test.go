package client

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

// eventLog collects the EventTransparency events of a Client.
type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func transparencyEvents(t *testing.T, c *Client) *eventLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l := &eventLog{}
	go func() {
		for ev := range ch {
			if ev.Kind == EventTransparency {
				l.mu.Lock()
				l.evs = append(l.evs, ev)
				l.mu.Unlock()
			}
		}
	}()
	return l
}

func (l *eventLog) get() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.evs...)
}

// gossipNotices returns the gossip notices c stored.
func gossipNotices(t *testing.T, c *Client) []Message {
	t.Helper()
	var out []Message
	for _, m := range inboxOf(t, c) {
		if m.Notice && strings.HasPrefix(m.Text, "Postern found that the relay") {
			out = append(out, m)
		}
	}
	return out
}

// exchange has alice and bob write to each other, each reading what the
// other wrote, and waits until the heads they gossiped are checked.
func exchange(t *testing.T, alice, bob *Client, rounds int) {
	t.Helper()
	ctx := testCtx(t)
	for range rounds {
		for _, p := range [][2]*Client{{alice, bob}, {bob, alice}} {
			from, to := p[0], p[1]
			name := "bob"
			if from == bob {
				name = "alice"
			}
			if _, err := from.Send(ctx, name, "hello"); err != nil {
				t.Fatalf("Send to %s: %v", name, err)
			}
			if _, err := to.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			to.lists.checks.Wait()
		}
	}
}

// TestGossipNormalExchange: contacts on two honest relays gossip their
// heads with their messages, check them against the relays and find
// nothing wrong.
func TestGossipNormalExchange(t *testing.T) {
	t.Parallel()
	a, b := relaytest.New(t, nil), relaytest.New(t, nil)
	alice, bob, _, _ := crossRelayPair(t, a, b)
	aliceEvs, bobEvs := transparencyEvents(t, alice), transparencyEvents(t, bob)
	heads := map[*Client]int{}
	exchange(t, alice, bob, 2)
	// A new leaf on each relay (other people), then more messages: each
	// checks the other's list again, keeps a newer head of the other's
	// relay, and gossips it.
	newTestClient(t, a, "carol")
	newTestClient(t, b, "dave")
	alice.lists.forget(personOf(t, alice, "bob").Person.ID)
	bob.lists.forget(personOf(t, bob, "alice").Person.ID)
	exchange(t, alice, bob, 1)
	for _, c := range []*Client{alice, bob} {
		c.lists.mu.Lock()
		heads[c] = len(c.lists.verified)
		c.lists.mu.Unlock()
	}
	if heads[alice] == 0 || heads[bob] == 0 {
		t.Fatalf("heads checked: alice %d, bob %d; want some on both sides", heads[alice], heads[bob])
	}
	if evs := append(aliceEvs.get(), bobEvs.get()...); len(evs) != 0 {
		t.Fatalf("transparency warnings in a normal exchange: %v", evs[0].Err)
	}
	if n := len(gossipNotices(t, alice)) + len(gossipNotices(t, bob)) + len(transparencyNotices(t, alice)) + len(transparencyNotices(t, bob)); n != 0 {
		t.Fatalf("%d transparency notices in a normal exchange", n)
	}
}

// TestGossipCatchesSplitView: bob's relay shows alice (an unauthenticated
// sender) another log, signed with its real key, than it shows bob. Each
// verifies what the relay shows them; the heads they gossip show both
// that the two views are not one log.
func TestGossipCatchesSplitView(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srvA, srv := relaytest.New(t, nil), relaytest.New(t, nil)
	d := newKTDouble(t, srv.URL)
	alice, bob := pairOn(t, srvA.URL, d.URL)
	other := forkedRelay(t, srv, bob, 1, true)
	d.set(bob.Whoami().Identity, func(f *protocol.FetchDeviceList, _ protocol.Frame) protocol.Frame {
		return askRelay(t, other.URL, f)
	})
	aliceEvs, bobEvs := transparencyEvents(t, alice), transparencyEvents(t, bob)

	// Alice checks bob's list (in the other log) and sends; bob gets her
	// heads with the message.
	if _, err := alice.Send(ctx, "bob", "hello"); err != nil {
		t.Fatalf("alice's first send (the split view verifies on its own): %v", err)
	}
	if _, err := bob.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	bob.lists.checks.Wait()
	// Bob answers; alice gets his heads.
	if _, err := bob.Send(ctx, "alice", "hi"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	alice.lists.checks.Wait()

	for _, c := range []struct {
		name, contact string
		c             *Client
		evs           *eventLog
	}{{"alice", "bob", alice, aliceEvs}, {"bob", "alice", bob, bobEvs}} {
		waitFor(t, func() bool { return len(c.evs.get()) > 0 })
		ev := c.evs.get()[0]
		if ev.Contact != c.contact || !errors.Is(ev.Err, ErrTransparency) || !(errors.Is(ev.Err, kt.ErrFork) || errors.Is(ev.Err, kt.ErrRollback)) {
			t.Errorf("%s: event %+v (%v), want a fork found by %s's heads", c.name, ev, ev.Err, c.contact)
		}
		ns := gossipNotices(t, c.c)
		if len(ns) != 1 || ns[0].From != c.contact || !strings.Contains(ns[0].Text, relayHost(d.URL)) {
			t.Errorf("%s: notices %+v, want one naming %s and %s", c.name, ns, c.contact, relayHost(d.URL))
		}
	}
}

// waitFor polls cond: events are emitted after the commit (a hang guard
// only).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	ctx := testCtx(t)
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("condition not reached")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestGossipCatchesOtherLogKey: a contact gossips a head under a log key
// that neither relay showed this device, though it pinned one for each:
// one of the relays shows different people different keys. Warned as a
// fork.
func TestGossipCatchesOtherLogKey(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	evs := transparencyEvents(t, alice)
	r, err := bob.lookupContact("alice")
	if err != nil {
		t.Fatal(err)
	}
	var other kt.Head
	other.Size, other.Root, other.Time = 3, kt.EmptyRoot(), time.Now().UTC().Truncate(time.Second)
	other.RelayKey[0] = 0x5a // a key neither side pinned
	other.Signature = make([]byte, keys.SignatureSize)
	ct := &content{Type: contentHeads, Sender: bob.devID, SentMS: uint64(time.Now().UnixMilli()), Heads: [][]byte{other.Bytes()}}
	copy(ct.MsgID[:], randomID(msgIDSize))
	if err := bob.sendSession(ctx, r, ct); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(evs.get()) > 0 })
	if ev := evs.get()[0]; ev.Contact != "bob" || !errors.Is(ev.Err, kt.ErrFork) {
		t.Fatalf("event %+v (%v), want a fork found by bob's heads", ev, ev.Err)
	}
}
