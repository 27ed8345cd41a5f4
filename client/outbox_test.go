package client

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/relay/relaytest"
)

// queuedMessage checks that m is stored on c as outgoing and queued.
func wantQueued(t *testing.T, c *Client, id string, queued bool) {
	t.Helper()
	m, err := c.Message(id)
	if err != nil {
		t.Fatalf("Message(%s): %v", id, err)
	}
	if !m.Outgoing || m.Queued != queued || m.SendError != "" {
		t.Fatalf("message %s: outgoing %v queued %v (want %v) error %q", id, m.Outgoing, m.Queued, queued, m.SendError)
	}
}

func outboxLen(t *testing.T, c *Client) int {
	t.Helper()
	var n int
	if err := c.st.view(func(t *tx) error {
		items, err := t.Outbox()
		n = len(items)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOutboxRelayDown: alice (relay A) writes to bob (relay B) while B is
// down. Send says the message is queued and stores it as such; when B is
// back the next Sync sends it, and bob receives it exactly once. Then the
// same across a restart of alice's client, and bob's direction.
func TestOutboxRelayDown(t *testing.T) {
	t.Parallel()
	srvA := relaytest.New(t, nil)
	srvB := relaytest.New(t, nil)
	alice, bob, aliceHome, _ := crossRelayPair(t, srvA, srvB)
	ctx := testCtx(t)

	srvB.Stop()
	m, err := alice.Send(ctx, "bob", "while B is down")
	if !errors.Is(err, ErrQueued) {
		t.Fatalf("Send with B down: %v, want ErrQueued", err)
	}
	host := strings.TrimPrefix(srvB.URL, "ws://")
	if want := "queued: " + host + " is unreachable; it will be sent when it is back"; err.Error() != want {
		t.Fatalf("error text %q, want %q", err.Error(), want)
	}
	if !m.Queued || m.ID == "" {
		t.Fatalf("Send returned %+v", m)
	}
	wantQueued(t, alice, m.ID, true)
	// A second one keeps its place behind the first.
	m2, err := alice.Send(ctx, "bob", "second while down")
	if !errors.Is(err, ErrQueued) {
		t.Fatalf("second Send: %v", err)
	}
	if n := outboxLen(t, alice); n != 2 {
		t.Fatalf("outbox holds %d, want 2", n)
	}

	srvB.Start()
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := outboxLen(t, alice); n != 0 {
		t.Fatalf("outbox holds %d after the relay came back", n)
	}
	wantQueued(t, alice, m.ID, false)
	wantQueued(t, alice, m2.ID, false)
	got, err := bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "bob after B is back", got, "alice>me:while B is down", "alice>me:second while down")
	if got[0].ID != m.ID {
		t.Fatalf("ids differ: %s, %s", got[0].ID, m.ID)
	}

	// Across a restart: alice's client closes while the message waits; a
	// new one on the same home sends it.
	srvB.Stop()
	m3, err := alice.Send(ctx, "bob", "before a restart")
	if !errors.Is(err, ErrQueued) {
		t.Fatalf("Send with B down: %v", err)
	}
	alice.Close()
	srvB.Start()
	alice2 := dial(t, aliceHome)
	if _, err := alice2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	wantQueued(t, alice2, m3.ID, false)
	got, err = bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "bob after alice's restart", got, "alice>me:before a restart")
	// Exactly once: nothing more arrives, and nothing is left to send.
	if _, err := alice2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := bob.Sync(ctx); err != nil || len(got) != 0 {
		t.Fatalf("bob's next Sync: %v, %v", texts(got), err)
	}
	// (A redelivery by the relay is counted as a duplicate and stored
	// once: what matters is what bob holds.)
	in, err := bob.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, m := range in {
		seen[m.Text]++
	}
	for _, txt := range []string{"while B is down", "second while down", "before a restart"} {
		if seen[txt] != 1 {
			t.Fatalf("bob holds %q %d times", txt, seen[txt])
		}
	}

	// The other direction: bob writes to alice on A while A is down; the
	// next Send, once A is back, sends the queued one first.
	srvA.Stop()
	if _, err := bob.Send(ctx, "alice", "while A is down"); !errors.Is(err, ErrQueued) {
		t.Fatalf("bob Send with A down: %v", err)
	}
	srvA.Start()
	if _, err := bob.Send(ctx, "alice", "after A is back"); err != nil {
		t.Fatalf("bob Send: %v", err)
	}
	got, err = alice2.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "alice", got, "bob>me:while A is down", "bob>me:after A is back")

	// And with no call on bob at all: his receive loop's outbox retry
	// sends it once A is back (testCtx is only a hang guard).
	srvA.Stop()
	if _, err := bob.Send(ctx, "alice", "retried in the background"); !errors.Is(err, ErrQueued) {
		t.Fatalf("bob Send with A down: %v", err)
	}
	srvA.Start()
	rm, err := alice2.Receive(ctx)
	if err != nil || rm.Text != "retried in the background" {
		t.Fatalf("alice Receive: %+v, %v", rm, err)
	}
}

// TestOutboxRefusedLeaves: a queued envelope that the relay refuses when it
// is back (bob blocked alice meanwhile) leaves the outbox with the reason
// on the message, and is not tried again.
func TestOutboxRefusedLeaves(t *testing.T) {
	t.Parallel()
	srvA := relaytest.New(t, nil)
	srvB := relaytest.New(t, nil)
	alice, bob, _, _ := crossRelayPair(t, srvA, srvB)
	ctx := testCtx(t)
	if err := bob.Block(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	srvB.Stop()
	m, err := alice.Send(ctx, "bob", "refused later")
	if !errors.Is(err, ErrQueued) {
		t.Fatalf("Send: %v", err)
	}
	srvB.Start()
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := outboxLen(t, alice); n != 0 {
		t.Fatalf("outbox holds %d after a refusal", n)
	}
	got, err := alice.Message(m.ID)
	if err != nil || got.Queued || !strings.Contains(got.SendError, "no longer accepts messages from you") {
		t.Fatalf("message after the refusal: %+v, %v", got, err)
	}
}

// TestOutboxExpiry: an entry older than OutboxExpiry is given up at the
// next flush, not sent, and its message says why.
func TestOutboxExpiry(t *testing.T) {
	t.Parallel()
	srvA := relaytest.New(t, nil)
	srvB := relaytest.New(t, nil)
	alice, bob, _, _ := crossRelayPair(t, srvA, srvB)
	ctx := testCtx(t)
	srvB.Stop()
	m, err := alice.Send(ctx, "bob", "too late")
	if !errors.Is(err, ErrQueued) {
		t.Fatalf("Send: %v", err)
	}
	// Age the entry as if it had waited longer than OutboxExpiry.
	if err := alice.st.update(func(t *tx) error {
		items, err := t.Outbox()
		if err != nil {
			return err
		}
		for _, it := range items {
			if err := t.DeleteOutbox(it.Seq); err != nil {
				return err
			}
			it.Created = it.Created.Add(-OutboxExpiry - time.Minute)
			if _, err := t.AddOutbox(it.OutboxEntry); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	srvB.Start()
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := outboxLen(t, alice); n != 0 {
		t.Fatalf("outbox holds %d after the expiry", n)
	}
	got, err := alice.Message(m.ID)
	if err != nil || got.Queued || !strings.Contains(got.SendError, "was unreachable for 7 days") {
		t.Fatalf("expired message: %+v, %v", got, err)
	}
	if msgs, err := bob.Sync(ctx); err != nil || len(msgs) != 0 {
		t.Fatalf("bob received %v, %v", texts(msgs), err)
	}
}

// TestOutboxFull: with MaxOutboxEntries waiting, a send fails with
// ErrOutboxFull and nothing is committed: no message, no new entry, and
// the session state is the one before (the next send still works).
func TestOutboxFull(t *testing.T) {
	t.Parallel()
	srvA := relaytest.New(t, nil)
	srvB := relaytest.New(t, nil)
	alice, bob, _, _ := crossRelayPair(t, srvA, srvB)
	ctx := testCtx(t)
	r, err := alice.lookupContact("bob")
	if err != nil {
		t.Fatal(err)
	}
	var before []byte
	if err := alice.st.view(func(t *tx) error {
		s, err := t.sessionRecord(r.ID)
		before = s.State
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// Fill the outbox with entries for a contact that is gone (given up
	// at the next flush).
	if err := alice.st.update(func(t *tx) error {
		for range MaxOutboxEntries {
			if _, err := t.AddOutbox(&store.OutboxEntry{Device: []byte("gone"), Relay: srvB.URL, Mailbox: make([]byte, 16), Capability: make([]byte, 32), Envelope: []byte{1}, Created: time.Now()}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	inBefore, _ := alice.Inbox()
	if _, err := alice.Send(ctx, "bob", "no room"); !errors.Is(err, ErrOutboxFull) {
		t.Fatalf("Send with a full outbox: %v", err)
	}
	inAfter, _ := alice.Inbox()
	if len(inAfter) != len(inBefore) || outboxLen(t, alice) != MaxOutboxEntries {
		t.Fatalf("a refused send left a message (%d, was %d) or an entry (%d)", len(inAfter), len(inBefore), outboxLen(t, alice))
	}
	var after []byte
	if err := alice.st.view(func(t *tx) error {
		s, err := t.sessionRecord(r.ID)
		after = s.State
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("the session advanced for a send that was refused")
	}
	// The next flush gives the entries of the gone contact up; then there
	// is room again.
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, "bob", "room again"); err != nil {
		t.Fatalf("Send after the flush: %v", err)
	}
	got, err := bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "bob", got, "alice>me:room again")
}

// TestOutboxSentEvent: a subscriber told of a queued message learns when
// it leaves the outbox (EventSent), with the message no longer queued.
func TestOutboxSentEvent(t *testing.T) {
	t.Parallel()
	srvA := relaytest.New(t, nil)
	srvB := relaytest.New(t, nil)
	alice, _, _, _ := crossRelayPair(t, srvA, srvB)
	ctx := testCtx(t)
	events, err := alice.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srvB.Stop()
	m, err := alice.Send(ctx, "bob", "queued, then sent")
	if !errors.Is(err, ErrQueued) {
		t.Fatalf("Send with B down: %v", err)
	}
	srvB.Start()
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ev := <-events:
			if ev.Kind != EventSent {
				continue
			}
			if ev.Message.ID != m.ID || ev.Message.Queued || ev.Message.SendError != "" {
				t.Fatalf("EventSent %+v", ev.Message)
			}
			return
		case <-ctx.Done():
			t.Fatal("no EventSent")
		}
	}
}
