package client

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/relay/relaytest"
)

func openTest(t *testing.T, home string) *Client {
	t.Helper()
	c, err := Open(home, testPass, testOpts())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantLocal checks that the local methods of c show alice's state: her
// name, the contact bob and exactly the messages want.
func wantLocal(t *testing.T, c *Client, want ...string) {
	t.Helper()
	if w := c.Whoami(); w.Name != "alice" {
		t.Fatalf("Whoami = %+v", w)
	}
	cs, err := c.Contacts()
	if err != nil || len(cs) != 1 || cs[0].Name != "bob" {
		t.Fatalf("Contacts = %+v, %v", cs, err)
	}
	in, err := c.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "inbox", in, want...)
	for _, m := range in {
		got, err := c.Message(m.ID)
		if err != nil || got.Text != m.Text {
			t.Fatalf("Message(%s) = %+v, %v", m.ID, got, err)
		}
	}
	if s := c.Stats(); s != (Stats{}) {
		t.Fatalf("Stats = %+v, want nothing processed", s)
	}
}

// TestOpenIsLocal checks that Open neither needs the relay nor receives:
// an envelope queued on the relay stays queued.
func TestOpenIsLocal(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, aliceHome, _ := pair(t, srv)
	ctx := testCtx(t)
	if _, err := bob.Send(ctx, "alice", "one"); err != nil {
		t.Fatal(err)
	}
	if got, err := alice.Sync(ctx); err != nil || len(got) != 1 {
		t.Fatalf("Sync = %v, %v", texts(got), err)
	}
	alice.Close()
	if _, err := bob.Send(ctx, "alice", "two"); err != nil {
		t.Fatal(err)
	}

	// Open, with the relay up, shows what is stored and takes nothing.
	a := openTest(t, aliceHome)
	wantLocal(t, a, "bob>me:one")
	time.Sleep(100 * time.Millisecond) // room for a background receive, were there one
	wantLocal(t, a, "bob>me:one")
	a.Close()

	// "two" is still queued on the relay for the next Dial.
	a2 := dial(t, aliceHome)
	got, err := a2.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "sync after Open", got, "bob>me:two")
	a2.Close()
	bob.Close()

	// With the relay stopped, Open still works and network methods fail
	// with the connection error rather than hang.
	srv.Close()
	a3 := openTest(t, aliceHome)
	wantLocal(t, a3, "bob>me:one", "bob>me:two")
	short, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for name, call := range map[string]func() error{
		"Sync":    func() error { _, err := a3.Sync(short); return err },
		"Receive": func() error { _, err := a3.Receive(short); return err },
		"Invite":  func() error { _, err := a3.Invite(short); return err },
		"Block":   func() error { return a3.Block(short, "bob") },
	} {
		err := call()
		if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrClosed) {
			t.Errorf("%s with the relay stopped: %v, want a connection error", name, err)
		}
	}
	wantLocal(t, a3, "bob>me:one", "bob>me:two") // nothing changed, not even blocked
	// Send keeps the message, queued in the outbox, and says so.
	if m, err := a3.Send(short, "bob", "three"); !errors.Is(err, ErrQueued) || !m.Queued {
		t.Errorf("Send with the relay stopped: %+v, %v, want it queued", m, err)
	}
	wantLocal(t, a3, "bob>me:one", "bob>me:two", "me>bob:three")
	if _, err := Dial(ctx, aliceHome, testPass, testOpts()); err == nil || errors.Is(err, ErrClosed) {
		t.Fatalf("Dial with the relay stopped: %v", err)
	}

	// Local errors are the same as Dial's.
	if _, err := Open(aliceHome, []byte("wrong"), testOpts()); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := Open(t.TempDir(), testPass, testOpts()); !errors.Is(err, ErrNotInitialised) {
		t.Fatalf("empty home: %v", err)
	}
}

// TestOpenConnectsOnDemand checks that network methods on a Client from
// Open connect by themselves, once, even when called concurrently.
func TestOpenConnectsOnDemand(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, aliceHome, _ := pair(t, srv)
	ctx := testCtx(t)
	alice.Close()
	if _, err := bob.Send(ctx, "alice", "queued"); err != nil {
		t.Fatal(err)
	}

	a := openTest(t, aliceHome)
	// Concurrent Syncs on a Client that is not connected yet: one connects,
	// and all return (none waits for a connection that never comes).
	var wg sync.WaitGroup
	var got [3][]Message
	var errs [3]error
	for i := range got {
		wg.Go(func() { got[i], errs[i] = a.Sync(ctx) })
	}
	wg.Wait()
	var all []Message
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("Sync %d: %v", i, errs[i])
		}
		all = append(all, got[i]...)
	}
	wantTexts(t, "first syncs", all, "bob>me:queued")

	// Connected now: it receives in the background like a dialled Client.
	if _, err := bob.Send(ctx, "alice", "live"); err != nil {
		t.Fatal(err)
	}
	m, err := a.Receive(ctx)
	if err != nil || m.Text != "live" {
		t.Fatalf("Receive = %+v, %v", m, err)
	}
	if s := a.Stats(); s.Received != 2 {
		t.Fatalf("Stats = %+v", s)
	}

	// Invite connects another Open Client too.
	a2 := openTest(t, aliceHome)
	if _, err := a2.Invite(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a2.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	// Closed before it ever connected: network methods report ErrClosed.
	a3 := openTest(t, aliceHome)
	a3.Close()
	if _, err := a3.Sync(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close: %v", err)
	}
	if _, err := a3.Receive(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Receive after Close: %v", err)
	}
	if _, err := a3.Inbox(); err != nil {
		t.Fatalf("Inbox after Close: %v", err)
	}
}
