package client

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/relay/relaytest"
)

// linkNew links a new device named name to c's person, in a home of its
// own, and returns it connected.
func linkNew(t testing.TB, c *Client, name string) (*Client, string) {
	t.Helper()
	return linkNewWith(t, c, name, false)
}

// linkNewWith is linkNew, with the message history when history is set.
func linkNewWith(t testing.TB, c *Client, name string, history bool) (*Client, string) {
	t.Helper()
	ctx := testCtx(t)
	home := filepath.Join(t.TempDir(), name)
	codes := make(chan string, 1)
	type result struct {
		info DeviceInfo
		err  error
	}
	done := make(chan result, 1)
	go func() {
		info, err := c.LinkDevice(ctx, &LinkOptions{
			Show:    func(code string) { codes <- code },
			Confirm: func(got string) bool { return got == name },
			History: history,
		})
		done <- result{info, err}
	}()
	var code string
	select {
	case code = <-codes:
	case r := <-done:
		t.Fatalf("LinkDevice: %v", r.err)
	}
	if !strings.HasPrefix(code, "postern-link:") {
		t.Fatalf("link code %q", code)
	}
	n, err := LinkWith(ctx, home, testPass, code, name, testOpts())
	if err != nil {
		t.Fatalf("LinkWith %s: %v", name, err)
	}
	t.Cleanup(func() { n.Close() })
	r := <-done
	if r.err != nil {
		t.Fatalf("LinkDevice: %v", r.err)
	}
	if r.info.Name != name || r.info.ID != n.devID {
		t.Fatalf("LinkDevice returned %+v", r.info)
	}
	return n, home
}

// syncAll syncs every client, rounds times, so that hellos, routes and
// their acknowledgements settle.
func syncAll(t testing.TB, rounds int, cs ...*Client) {
	t.Helper()
	ctx := testCtx(t)
	for range rounds {
		for _, c := range cs {
			if _, err := c.Sync(ctx); err != nil {
				t.Fatalf("Sync: %v", err)
			}
		}
	}
}

// messagesLike returns the stored messages of c whose text contains s.
func messagesLike(t *testing.T, c *Client, s string) []Message {
	t.Helper()
	all, err := c.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	var out []Message
	for _, m := range all {
		if strings.Contains(m.Text, s) {
			out = append(out, m)
		}
	}
	return out
}

func TestLinkedDevicesReceiveAndCopy(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	office, _ := linkNew(t, alice, "OFFICE-PC")
	syncAll(t, 3, office, bob, alice)

	devs, err := office.Devices(ctx)
	if err != nil || len(devs) != 2 {
		t.Fatalf("office devices %+v, %v", devs, err)
	}
	if n := len(devicesOf(t, bob, "alice")); n != 2 {
		t.Fatalf("bob writes to %d of alice's devices, want 2", n)
	}
	for _, d := range devicesOf(t, office, "bob") {
		if d.Borrowed {
			t.Fatal("the office still writes to bob on its sibling's route")
		}
	}
	if n := len(devicesOf(t, office, "")); n != 1 {
		t.Fatalf("the office writes to %d siblings, want 1", n)
	}
	if n := len(devicesOf(t, alice, "")); n != 1 {
		t.Fatalf("alice writes to %d siblings, want 1", n)
	}
	// bob's message reaches both of alice's devices, once each.
	if _, err := bob.Send(ctx, "alice", "to both"); err != nil {
		t.Fatalf("bob Send: %v", err)
	}
	syncAll(t, 2, alice, office)
	for _, c := range []*Client{alice, office} {
		got := messagesLike(t, c, "to both")
		if len(got) != 1 || got[0].From != "alice" && got[0].From != "bob" {
			t.Fatalf("%s got %+v", c.devID.Short(), got)
		}
	}
	// A message sent from the office shows on alice's first device.
	m, err := office.Send(ctx, "bob", "from the office")
	if err != nil {
		t.Fatalf("office Send: %v", err)
	}
	syncAll(t, 2, bob, alice)
	if got := messagesLike(t, bob, "from the office"); len(got) != 1 || got[0].ID != m.ID {
		t.Fatalf("bob got %+v", got)
	}
	if got := messagesLike(t, alice, "from the office"); len(got) != 1 || !got[0].Outgoing || got[0].To != "bob" || got[0].ID != m.ID {
		t.Fatalf("alice's copy %+v", got)
	}
}

// A device linked from a device that has only borrowed routes: bob is
// offline while alice links the office and the office links the laptop,
// so the office has no route of its own to bob when it exports its
// contacts. The laptop must still reach bob, and bob it. (The snapshot
// used to leave borrowed routes out: the laptop never introduced itself
// to bob, and bob's messages never reached it.)
func TestDeviceLinkedFromALinkedDeviceWhileAContactIsOffline(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, bobHome := pair(t, srv)
	ctx := testCtx(t)
	bob.Close()
	office, _ := linkNew(t, alice, "OFFICE-PC")
	if ds := devicesOf(t, office, "bob"); len(ds) != 1 || !ds[0].Borrowed {
		t.Fatalf("the office's route to bob %+v, want one borrowed", ds)
	}
	laptop, _ := linkNew(t, office, "LAPTOP")
	bob, err := Dial(ctx, bobHome, testPass, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bob.Close() })
	syncAll(t, 3, bob, alice, office, laptop)
	if n := len(devicesOf(t, bob, "alice")); n != 3 {
		t.Fatalf("bob writes to %d of alice's devices, want 3", n)
	}
	if _, err := bob.Send(ctx, "alice", "to all three"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, alice, office, laptop)
	for _, c := range []*Client{alice, office, laptop} {
		if got := messagesLike(t, c, "to all three"); len(got) != 1 {
			t.Fatalf("device %s holds bob's message %d times", c.devID.Short(), len(got))
		}
	}
	m, err := laptop.Send(ctx, "bob", "from the laptop")
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, bob)
	if got := messagesLike(t, bob, "from the laptop"); len(got) != 1 || got[0].ID != m.ID {
		t.Fatalf("bob got %+v", got)
	}
}

// devicesOf returns the records of the devices c holds for the person
// named name ("" for c's own person).
func devicesOf(t testing.TB, c *Client, name string) []*contactRecord {
	t.Helper()
	var out []*contactRecord
	err := c.st.view(func(t *tx) error {
		ps, err := t.Persons()
		if err != nil {
			return err
		}
		for _, p := range ps {
			if (name == "" && p.Self) || (name != "" && !p.Self && p.Name == name) {
				out, err = c.targets(t, p)
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestThreeDevicesAlertsAndRevoke(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	office, officeHome := linkNew(t, alice, "OFFICE-PC")
	syncAll(t, 3, office, bob, alice)
	laptop, _ := linkNew(t, office, "LAPTOP")
	syncAll(t, 3, laptop, bob, alice, office)

	// The first device, which did not link the laptop, shows the alert;
	// so does the office, which did.
	for _, c := range []*Client{alice, office} {
		got := messagesLike(t, c, "new device LAPTOP was linked")
		if len(got) != 1 || !got[0].Notice || !strings.Contains(got[0].Text, "postern device revoke LAPTOP") {
			t.Fatalf("%s: alert %+v", c.devID.Short(), got)
		}
	}
	if got := messagesLike(t, bob, "linked a new device"); len(got) != 2 {
		t.Fatalf("bob's notices of alice's devices: %+v", got)
	}
	if n := len(devicesOf(t, bob, "alice")); n != 3 {
		t.Fatalf("bob writes to %d of alice's devices, want 3", n)
	}
	if _, err := bob.Send(ctx, "alice", "to all three"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, alice, office, laptop)
	for _, c := range []*Client{alice, office, laptop} {
		if got := messagesLike(t, c, "to all three"); len(got) != 1 {
			t.Fatalf("%s got %d copies", c.devID.Short(), len(got))
		}
	}
	m, err := laptop.Send(ctx, "bob", "from the laptop")
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, alice, office, bob)
	for _, c := range []*Client{alice, office} {
		if got := messagesLike(t, c, "from the laptop"); len(got) != 1 || got[0].ID != m.ID || !got[0].Outgoing {
			t.Fatalf("%s: copy %+v", c.devID.Short(), got)
		}
	}

	// Revoke the office from the laptop.
	info, err := laptop.RevokeDevice(ctx, "OFFICE-PC")
	if err != nil {
		t.Fatalf("RevokeDevice: %v", err)
	}
	if info.ID != office.devID || info.Name != "OFFICE-PC" {
		t.Fatalf("revoked %+v", info)
	}
	if _, err := laptop.RevokeDevice(ctx, "LAPTOP"); err != ErrRevokeSelf {
		t.Fatalf("self-revoke: %v", err)
	}
	syncAll(t, 2, bob, alice)
	if n := len(devicesOf(t, bob, "alice")); n != 2 {
		t.Fatalf("after the revoke bob writes to %d of alice's devices, want 2", n)
	}
	if got := messagesLike(t, alice, "device OFFICE-PC was revoked"); len(got) != 1 {
		t.Fatalf("alice's alert of the revoke: %+v", got)
	}
	if _, err := bob.Send(ctx, "alice", "after the revoke"); err != nil {
		t.Fatal(err)
	}
	// The relay closed the office's connection at once; its receive loop,
	// reconnecting, is refused and deletes the device's keys and store
	// without anything being asked of it.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(officeHome, KeyFileName)); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the revoked office still has its keys after 30 s")
		}
	}
	if _, err := office.Sync(ctx); !errors.Is(err, ErrDeviceRevoked) {
		t.Fatalf("office Sync after revoke: %v", err)
	}
	for _, f := range []string{KeyFileName, StoreFileName} {
		if _, err := os.Stat(filepath.Join(officeHome, f)); !os.IsNotExist(err) {
			t.Fatalf("%s left on the revoked device: %v", f, err)
		}
	}
	syncAll(t, 1, alice, laptop)
	for _, c := range []*Client{alice, laptop} {
		if got := messagesLike(t, c, "after the revoke"); len(got) != 1 {
			t.Fatalf("%s got %d copies", c.devID.Short(), len(got))
		}
	}
}

func TestNinthDeviceRefused(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, _ := newTestClient(t, srv, "alice")
	// Each device links the next: the relay limits how often one
	// device publishes its person's list.
	last := alice
	for i := 2; i <= keys.MaxDevices; i++ {
		last, _ = linkNew(t, last, fmt.Sprintf("DEVICE-%d", i))
	}
	devs, err := alice.Devices(testCtx(t))
	if err != nil || len(devs) != keys.MaxDevices {
		t.Fatalf("%d devices, %v", len(devs), err)
	}
	_, err = alice.LinkDevice(testCtx(t), &LinkOptions{Show: func(string) { t.Error("a code was shown for a 9th device") }})
	if !errors.Is(err, ErrTooManyDevices) || !strings.Contains(err.Error(), "revoke one first") {
		t.Fatalf("9th device: %v", err)
	}
}

// TestContactReachesSiblings: a contact added on one device (either side
// of the invitation) reaches the person's other devices, which introduce
// themselves to it; the contact's messages then reach every device.
func TestContactReachesSiblings(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	office, _ := linkNew(t, alice, "OFFICE-PC")
	syncAll(t, 3, office, bob, alice)

	// alice invites carol on her first device.
	carol, _ := newTestClient(t, srv, "carol")
	code, err := alice.Invite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Accept(ctx, code, "alice"); err != nil {
		t.Fatal(err)
	}
	// bob invites alice's office; alice accepts there.
	code, err = bob.Invite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := office.Accept(ctx, code, "bob-work"); err == nil {
		// bob is a contact already: refused as such.
		t.Fatal("accepted an invitation from a known person")
	}
	dave, _ := newTestClient(t, srv, "dave")
	code, err = dave.Invite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := office.Accept(ctx, code, "dave"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 4, alice, carol, office, dave)

	if n := len(devicesOf(t, office, "carol")); n != 1 {
		t.Fatalf("the office writes to %d of carol's devices, want 1", n)
	}
	if n := len(devicesOf(t, alice, "dave")); n != 1 {
		t.Fatalf("alice writes to %d of dave's devices, want 1", n)
	}
	if n := len(devicesOf(t, carol, "alice")); n != 2 {
		t.Fatalf("carol writes to %d of alice's devices, want 2", n)
	}
	if n := len(devicesOf(t, dave, "alice")); n != 2 {
		t.Fatalf("dave writes to %d of alice's devices, want 2", n)
	}
	if _, err := carol.Send(ctx, "alice", "from carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := dave.Send(ctx, "alice", "from dave"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, alice, office)
	for _, c := range []*Client{alice, office} {
		for _, s := range []string{"from carol", "from dave"} {
			if got := messagesLike(t, c, s); len(got) != 1 {
				t.Fatalf("%s has %d of %q", c.devID.Short(), len(got), s)
			}
		}
	}

	// Blocking a person with two devices refuses both.
	if err := carol.Block(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{alice, office} {
		if _, err := c.Send(ctx, "carol", "blocked?"); !errors.Is(err, ErrBlocked) {
			t.Fatalf("%s's send to carol, who blocked alice: %v", c.devID.Short(), err)
		}
	}
}

func TestLinkWithHistory(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	m1, err := alice.SendWith(ctx, "bob", "sent before linking", &SendOptions{Subject: "rounds"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, "alice", "a reply before the link"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, alice)
	office, _ := linkNewWith(t, alice, "OFFICE-PC", true)
	got := messagesLike(t, office, "sent before linking")
	if len(got) != 1 || got[0].ID != m1.ID || !got[0].Outgoing || got[0].Subject != "rounds" || got[0].To != "bob" {
		t.Fatalf("the office's copy of alice's message: %+v", got)
	}
	if got := messagesLike(t, office, "a reply before the link"); len(got) != 1 || got[0].From != "bob" {
		t.Fatalf("the office's copy of bob's message: %+v", got)
	}
	// Without --history the new device starts empty.
	laptop, _ := linkNew(t, office, "LAPTOP")
	if got := messagesLike(t, laptop, "before"); len(got) != 0 {
		t.Fatalf("the laptop, linked without history, holds %+v", got)
	}
}

// FuzzLinkEnvelope: a link envelope the assembler takes never makes it
// hold more than the total it announced, and a message cut by
// linkEnvelopes goes back together.
func FuzzLinkEnvelope(f *testing.F) {
	for _, n := range []int{0, 1, 1000} {
		envs, err := linkEnvelopes(make([]byte, n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(envs[0])
	}
	f.Fuzz(func(t *testing.T, env []byte) {
		a := &linkAssembler{max: 1 << 20}
		done, err := a.add(env)
		if err != nil {
			return
		}
		if len(a.buf) > a.total || (done && len(a.buf) != a.total) {
			t.Fatalf("holds %d of %d, done %v", len(a.buf), a.total, done)
		}
		if done {
			envs, err := linkEnvelopes(a.buf)
			if err != nil {
				t.Fatal(err)
			}
			b := &linkAssembler{max: 1 << 20}
			for i, e := range envs {
				ok, err := b.add(e)
				if err != nil || ok != (i == len(envs)-1) {
					t.Fatalf("part %d: %v, %v", i, ok, err)
				}
			}
			if !bytes.Equal(a.buf, b.buf) {
				t.Fatal("re-cut message differs")
			}
		}
	})
}

// TestLinkHistoryResumes: a history that could not be fetched (the relay
// down) is fetched by the next Sync; one that never verifies is given up
// after maxHistoryAttempts with a notice.
func TestLinkHistoryResumes(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, _, _, _ := pair(t, srv)
	ctx := testCtx(t)
	if _, err := alice.Send(ctx, "bob", "an old message"); err != nil {
		t.Fatal(err)
	}
	office, _ := linkNew(t, alice, "OFFICE-PC")
	if got := messagesLike(t, office, "an old message"); len(got) != 0 {
		t.Fatal("history without --history")
	}
	ref, err := alice.uploadHistory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := office.st.update(func(t *tx) error { return t.putPendingHistory(srv.URL, ref) }); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if _, err := office.resumeHistory(ctx); !errors.Is(err, ErrHistory) {
		t.Fatalf("with the relay down: %v", err)
	}
	srv.Start()
	if _, err := office.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := messagesLike(t, office, "an old message"); len(got) != 1 {
		t.Fatalf("after the next sync the office holds %d copies", len(got))
	}

	// A reference whose digest never matches is given up.
	ref.Digest[0] ^= 1
	if err := office.st.update(func(t *tx) error { return t.putPendingHistory(srv.URL, ref) }); err != nil {
		t.Fatal(err)
	}
	for range maxHistoryAttempts {
		if _, err := office.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := messagesLike(t, office, HistoryGivenUpNotice); len(got) != 1 || !got[0].Notice {
		t.Fatalf("given-up notice %+v", got)
	}
	if n, err := office.resumeHistory(ctx); n != 0 || err != nil {
		t.Fatalf("after giving up: %d, %v", n, err)
	}
}

// TestRevokedDeviceOutboxDropped: what waits in the outbox for a device
// that is revoked is dropped; the message stays queued while an envelope
// for another of the person's devices waits.
func TestRevokedDeviceOutboxDropped(t *testing.T) {
	t.Parallel()
	srvA, srvB := relaytest.New(t, nil), relaytest.New(t, nil)
	alice, bob, _, _ := crossRelayPair(t, srvA, srvB)
	ctx := testCtx(t)
	office, _ := linkNew(t, alice, "OFFICE-PC")
	syncAll(t, 3, office, bob, alice)
	devs := devicesOf(t, bob, "alice")
	if len(devs) != 2 {
		t.Fatalf("bob writes to %d of alice's devices", len(devs))
	}
	srvA.Stop()
	m, err := bob.Send(ctx, "alice", "while A is down")
	if !errors.Is(err, ErrQueued) {
		t.Fatalf("Send with A down: %v", err)
	}
	if n := outboxLen(t, bob); n != 2 {
		t.Fatalf("outbox holds %d, want one per device", n)
	}
	var officeRec []byte
	for _, d := range devs {
		if fpOf(d.DeviceID) == office.devID {
			officeRec = d.ID
		}
	}
	if err := bob.st.update(func(t *tx) error { return t.dropOutboxFor(officeRec) }); err != nil {
		t.Fatal(err)
	}
	if n := outboxLen(t, bob); n != 1 {
		t.Fatalf("outbox holds %d after the office's envelope was dropped", n)
	}
	wantQueued(t, bob, m.ID, true)
	for _, d := range devs {
		if err := bob.st.update(func(t *tx) error { return t.dropOutboxFor(d.ID) }); err != nil {
			t.Fatal(err)
		}
	}
	wantQueued(t, bob, m.ID, false)
	srvA.Start()
}
