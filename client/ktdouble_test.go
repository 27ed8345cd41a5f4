package client

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/audit"
	"github.com/postern/postern/relay/relaytest"
)

// ktDouble is a relay that lies about its transparency log: the real
// relay behind a WebSocket proxy that, for unauthenticated
// FetchDeviceList requests for one identity (a sender checking a
// contact's devices), records the relay's answers and replaces them with
// what rewrite returns. Authenticated connections (the contact's own
// devices) get the true answers. It counts the Send requests to each
// mailbox.
type ktDouble struct {
	t        *testing.T
	upstream string
	URL      string

	mu      sync.Mutex
	target  [32]byte
	rewrite func(f *protocol.FetchDeviceList, answer protocol.Frame) protocol.Frame // nil: the true answer
	answers []*protocol.DeviceList                                                  // the relay's answers for target, in order
	fetches int                                                                     // unauthenticated fetches for target
	sends   map[protocol.MailboxID]int
}

func newKTDouble(t *testing.T, upstream string) *ktDouble {
	t.Helper()
	d := &ktDouble{t: t, upstream: upstream, sends: make(map[protocol.MailboxID]int)}
	hs := httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(hs.Close)
	d.URL = "ws://" + strings.TrimPrefix(hs.URL, "http://")
	return d
}

func (d *ktDouble) set(target keys.Fingerprint, rewrite func(*protocol.FetchDeviceList, protocol.Frame) protocol.Frame) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.target, d.rewrite = target, rewrite
}

func (d *ktDouble) counts(mb []byte) (fetches, sends int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var id protocol.MailboxID
	copy(id[:], mb)
	return d.fetches, d.sends[id]
}

func (d *ktDouble) serve(w http.ResponseWriter, r *http.Request) {
	down, up, ok := bridge(w, r, d.upstream)
	if !ok {
		return
	}
	defer down.CloseNow()
	defer up.CloseNow()
	ctx := r.Context()
	var (
		mu      sync.Mutex
		authed  bool
		pending = map[uint32]*protocol.FetchDeviceList{}
	)
	go func() {
		for {
			typ, b, err := up.Read(ctx)
			if err != nil {
				down.CloseNow()
				return
			}
			if id, f, err := protocol.Parse(b); err == nil {
				mu.Lock()
				fetch := pending[id]
				delete(pending, id)
				mu.Unlock()
				if fetch != nil {
					b = d.answer(id, fetch, f, b)
				}
			}
			if down.Write(ctx, typ, b) != nil {
				return
			}
		}
	}()
	for {
		typ, b, err := down.Read(ctx)
		if err != nil {
			return
		}
		if id, f, err := protocol.Parse(b); err == nil {
			switch f := f.(type) {
			case *protocol.Auth, *protocol.Enroll:
				mu.Lock()
				authed = true
				mu.Unlock()
			case *protocol.FetchDeviceList:
				d.mu.Lock()
				mine := f.Identity == d.target
				d.mu.Unlock()
				mu.Lock()
				if mine && !authed {
					pending[id] = f
				}
				mu.Unlock()
			case *protocol.Send:
				d.mu.Lock()
				d.sends[f.Mailbox]++
				d.mu.Unlock()
			}
		}
		if up.Write(ctx, typ, b) != nil {
			return
		}
	}
}

// answer records the relay's answer to an unauthenticated fetch of the
// target and returns what the double sends instead.
func (d *ktDouble) answer(id uint32, fetch *protocol.FetchDeviceList, f protocol.Frame, b []byte) []byte {
	d.mu.Lock()
	d.fetches++
	if dl, ok := f.(*protocol.DeviceList); ok {
		d.answers = append(d.answers, dl)
	}
	rw := d.rewrite
	d.mu.Unlock()
	if rw == nil {
		return b
	}
	out, err := protocol.Marshal(id, rw(fetch, f))
	if err != nil {
		d.t.Errorf("double: %v", err)
		return b
	}
	return out
}

// pairOn makes alice (home on relay URL a) and bob (home on b) contacts.
func pairOn(t *testing.T, a, b string) (alice, bob *Client) {
	t.Helper()
	ctx := testCtx(t)
	newClient := func(url, name string) *Client {
		c, err := Init(ctx, filepath.Join(t.TempDir(), name), testPass, url, name, testOpts())
		if err != nil {
			t.Fatalf("Init %s: %v", name, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	alice, bob = newClient(a, "alice"), newClient(b, "bob")
	code, err := alice.Invite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Accept(ctx, code, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	settleRoutes(t, alice, bob)
	return alice, bob
}

// personOf returns c's person record of the contact named name.
func personOf(t *testing.T, c *Client, name string) *contactRecord {
	t.Helper()
	r, err := c.lookupContact(name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// selfList is c's own kept device list.
func selfList(t *testing.T, c *Client) []byte {
	t.Helper()
	self, _ := ownState(t, c)
	return self.DeviceList
}

// publishList signs l with c's identity and publishes it on c's relay.
func publishList(t *testing.T, c *Client, l *keys.DeviceList) []byte {
	t.Helper()
	ctx := testCtx(t)
	b, err := c.id.SignDeviceList(l)
	if err != nil {
		t.Fatal(err)
	}
	cn, err := c.authConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cn.request(ctx, &protocol.PublishDeviceList{List: b}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	return b
}

// transparencyNotices returns the transparency notices c stored.
func transparencyNotices(t *testing.T, c *Client) []Message {
	t.Helper()
	ms, err := c.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	var out []Message
	for _, m := range ms {
		if m.Notice && strings.HasPrefix(m.Text, "Postern could not verify") {
			out = append(out, m)
		}
	}
	return out
}

// nextEventOf waits for an event of kind k (a hang guard, not a timing
// assertion).
func nextEventOf(t *testing.T, evs <-chan Event, k EventKind) Event {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case ev := <-evs:
			if ev.Kind == k {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %v event", k)
			return Event{}
		}
	}
}

// TestContactDeviceListChecked: a send fetches and verifies the contact's
// list once (kept in the person record, the same bytes the contact
// keeps), not again within deviceListFresh, and again when forced; a
// relay that holds no list for a contact with none kept changes nothing,
// while one that withdraws a list it served is a transparency failure.
func TestContactDeviceListChecked(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	d := newKTDouble(t, srv.URL)
	alice, bob := pairOn(t, srv.URL, d.URL)
	d.set(bob.Whoami().Identity, nil)
	// Bob stops receiving: his checks of the heads alice gossips would
	// fetch his list too.
	bobList := selfList(t, bob)
	bob.Close()
	r := personOf(t, alice, "bob")
	if r.Person.DeviceListVersion != 0 {
		t.Fatalf("bob's list known before any send")
	}
	if _, err := alice.Send(ctx, "bob", "one"); err != nil {
		t.Fatal(err)
	}
	r = personOf(t, alice, "bob")
	if r.Person.DeviceListVersion != 1 || !bytes.Equal(r.Person.DeviceList, bobList) {
		t.Fatalf("alice keeps bob's list version %d, not bob's own", r.Person.DeviceListVersion)
	}
	if _, err := alice.Send(ctx, "bob", "two"); err != nil {
		t.Fatal(err)
	}
	if n, _ := d.counts(nil); n != 1 {
		t.Fatalf("%d fetches of bob's list for two sends in a row, want 1", n)
	}
	if err := alice.refreshDeviceList(ctx, r.Person.ID, true); err != nil {
		t.Fatal(err)
	}
	if n, _ := d.counts(nil); n != 2 {
		t.Fatalf("a forced check did not fetch")
	}

	unknown := func(*protocol.FetchDeviceList, protocol.Frame) protocol.Frame {
		return &protocol.ErrorFrame{Code: protocol.CodeUnknownIdentity}
	}
	d.set(bob.Whoami().Identity, unknown)
	// A list kept: the relay withdrew it.
	err := alice.refreshDeviceList(ctx, r.Person.ID, true)
	if !errors.Is(err, ErrTransparency) || !errors.Is(err, kt.ErrRollback) {
		t.Fatalf("withdrawn list: %v, want ErrTransparency", err)
	}
	// None kept: the contact predates device lists.
	err = alice.st.update(func(tx *tx) error {
		p, err := tx.Person(r.Person.ID)
		if err != nil {
			return err
		}
		p.DeviceList, p.DeviceListVersion = nil, 0
		return tx.PutPerson(p)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.refreshDeviceList(ctx, r.Person.ID, true); err != nil {
		t.Fatalf("no list for a contact without one: %v", err)
	}
	if _, err := alice.Send(ctx, "bob", "three"); err != nil {
		t.Fatal(err)
	}
	if p := personOf(t, alice, "bob").Person; p.DeviceListVersion != 0 {
		t.Fatalf("a list appeared from nowhere")
	}
}

// TestContactDeviceListRelayDown: a contact's relay that cannot be reached
// does not stop a send; it is queued in the outbox as before.
func TestContactDeviceListRelayDown(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	a, b := relaytest.New(t, nil), relaytest.New(t, nil)
	alice, _, _, _ := crossRelayPair(t, a, b)
	b.Stop()
	if _, err := alice.Send(ctx, "bob", "later"); !errors.Is(err, ErrQueued) {
		t.Fatalf("send with bob's relay down: %v, want ErrQueued", err)
	}
}

// TestRelayDoubleDeviceLists: a relay that swaps a contact's device list,
// rolls its log back or shows a forked log is caught: the send is refused
// with ErrTransparency, an EventTransparency is emitted, a notice is
// stored once in the conversation, and nothing is sealed for the contact
// or reaches their mailbox.
func TestRelayDoubleDeviceLists(t *testing.T) {
	t.Parallel()
	// Another person's key, and a device bob does not have.
	mallory, err := identity.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	extra, err := identity.NewDevice(mallory)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		want error
		// arm runs after a first, honest send; it returns the rewrite.
		arm func(t *testing.T, d *ktDouble, srv *relaytest.Server, alice, bob *Client) func(*protocol.FetchDeviceList, protocol.Frame) protocol.Frame
	}{
		{"swap/another identity", kt.ErrWrongIdentity, func(t *testing.T, d *ktDouble, _ *relaytest.Server, _, bob *Client) func(*protocol.FetchDeviceList, protocol.Frame) protocol.Frame {
			l, err := keys.ParseDeviceList(selfList(t, bob))
			if err != nil {
				t.Fatal(err)
			}
			swapped, err := mallory.SignDeviceList(&keys.DeviceList{Version: l.Version, Created: l.Created,
				Devices: []keys.ListedDevice{{ID: extra.Certificate().DeviceID(), Linked: l.Created, Relay: d.URL}}})
			if err != nil {
				t.Fatal(err)
			}
			return swapList(swapped)
		}},
		{"swap/an extra device", kt.ErrInclusion, func(t *testing.T, d *ktDouble, _ *relaytest.Server, _, bob *Client) func(*protocol.FetchDeviceList, protocol.Frame) protocol.Frame {
			l, err := keys.ParseDeviceList(selfList(t, bob))
			if err != nil {
				t.Fatal(err)
			}
			devs := append(l.Devices, keys.ListedDevice{ID: extra.Certificate().DeviceID(), Linked: l.Created, Relay: d.URL})
			if bytes.Compare(devs[0].ID[:], devs[1].ID[:]) > 0 {
				devs[0], devs[1] = devs[1], devs[0]
			}
			swapped, err := bob.id.SignDeviceList(&keys.DeviceList{Version: l.Version, Created: l.Created, Devices: devs})
			if err != nil {
				t.Fatal(err)
			}
			return swapList(swapped)
		}},
		{"rollback", kt.ErrRollback, func(t *testing.T, d *ktDouble, _ *relaytest.Server, alice, bob *Client) func(*protocol.FetchDeviceList, protocol.Frame) protocol.Frame {
			// The answer of version 1 alice saw, then version 2 through
			// the real relay, then version 1 replayed.
			d.mu.Lock()
			v1 := d.answers[len(d.answers)-1]
			d.mu.Unlock()
			l, err := keys.ParseDeviceList(selfList(t, bob))
			if err != nil {
				t.Fatal(err)
			}
			publishList(t, bob, &keys.DeviceList{Version: 2, Created: l.Created.Add(time.Second), Devices: l.Devices})
			r := personOf(t, alice, "bob")
			if err := alice.refreshDeviceList(testCtx(t), r.Person.ID, true); err != nil {
				t.Fatal(err)
			}
			if p := personOf(t, alice, "bob").Person; p.DeviceListVersion != 2 {
				t.Fatalf("alice keeps version %d after bob published 2", p.DeviceListVersion)
			}
			alice.lists.forget(r.Person.ID)
			return func(*protocol.FetchDeviceList, protocol.Frame) protocol.Frame { return v1 }
		}},
		{"fork", kt.ErrFork, func(t *testing.T, d *ktDouble, srv *relaytest.Server, _, bob *Client) func(*protocol.FetchDeviceList, protocol.Frame) protocol.Frame {
			other := forkedRelay(t, srv, bob, 1, true)
			return func(f *protocol.FetchDeviceList, _ protocol.Frame) protocol.Frame {
				return askRelay(t, other.URL, f)
			}
		}},
		{"head signature", kt.ErrBadHead, func(*testing.T, *ktDouble, *relaytest.Server, *Client, *Client) func(*protocol.FetchDeviceList, protocol.Frame) protocol.Frame {
			return func(_ *protocol.FetchDeviceList, f protocol.Frame) protocol.Frame {
				dl, ok := f.(*protocol.DeviceList)
				if !ok {
					return f
				}
				out := *dl
				out.Head = bytes.Clone(dl.Head)
				out.Head[len(out.Head)-1] ^= 1
				return &out
			}
		}},
		{"another log key", kt.ErrBadHead, func(t *testing.T, d *ktDouble, srv *relaytest.Server, _, bob *Client) func(*protocol.FetchDeviceList, protocol.Frame) protocol.Frame {
			other := forkedRelay(t, srv, bob, 0, false)
			return func(f *protocol.FetchDeviceList, _ protocol.Frame) protocol.Frame {
				return askRelay(t, other.URL, f)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			srv := relaytest.New(t, nil)
			d := newKTDouble(t, srv.URL)
			alice, bob := pairOn(t, srv.URL, d.URL)
			d.set(bob.Whoami().Identity, nil)
			if _, err := alice.Send(ctx, "bob", "before"); err != nil {
				t.Fatal(err)
			}
			r := personOf(t, alice, "bob")
			d.set(bob.Whoami().Identity, tc.arm(t, d, srv, alice, bob))
			alice.lists.forget(r.Person.ID)
			kept := personOf(t, alice, "bob").Person
			evs, err := alice.Subscribe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sealed := watch(alice)
			_, sendsBefore := d.counts(r.SendMbx)

			for range 2 {
				_, err := alice.Send(ctx, "bob", "after")
				if !errors.Is(err, ErrTransparency) || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "bob") {
					t.Fatalf("Send: %v, want ErrTransparency (%v) naming bob", err, tc.want)
				}
				ev := nextEventOf(t, evs, EventTransparency)
				if ev.Contact != "bob" || !errors.Is(ev.Err, ErrTransparency) {
					t.Fatalf("event %+v", ev)
				}
				alice.lists.forget(r.Person.ID)
			}
			file := filepath.Join(t.TempDir(), "notes.txt")
			if err := os.WriteFile(file, []byte("notes"), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := alice.SendFiles(ctx, "bob", "", []string{file}, nil); !errors.Is(err, ErrTransparency) {
				t.Fatalf("SendFiles: %v, want ErrTransparency", err)
			}
			if out, _ := sealed.get(); len(out) != 0 {
				t.Fatalf("%d envelopes sealed for bob after the rewrite", len(out))
			}
			if _, n := d.counts(r.SendMbx); n != sendsBefore {
				t.Fatalf("bob's mailbox got %d sends after the rewrite", n-sendsBefore)
			}
			ns := transparencyNotices(t, alice)
			if len(ns) != 1 || ns[0].From != "bob" || !strings.Contains(ns[0].Text, relayHost(d.URL)) || !strings.Contains(ns[0].Text, "Nothing is sent to bob") {
				t.Fatalf("notices: %+v, want one about bob's relay", ns)
			}
			if p := personOf(t, alice, "bob").Person; p.DeviceListVersion != kept.DeviceListVersion || !bytes.Equal(p.DeviceList, kept.DeviceList) {
				t.Fatalf("the kept list changed")
			}
			for _, m := range inboxOf(t, alice) {
				if m.Outgoing && m.Text == "after" {
					t.Fatalf("a refused message was stored")
				}
			}
		})
	}
}

func inboxOf(t *testing.T, c *Client) []Message {
	t.Helper()
	ms, err := c.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// swapList answers with list in place of the relay's, the proofs and
// head unchanged.
func swapList(list []byte) func(*protocol.FetchDeviceList, protocol.Frame) protocol.Frame {
	return func(_ *protocol.FetchDeviceList, f protocol.Frame) protocol.Frame {
		dl, ok := f.(*protocol.DeviceList)
		if !ok {
			return f
		}
		out := *dl
		out.List = list
		return &out
	}
}

// forkedRelay starts a second relay, with the audit key of srv if
// sameKey (its heads then verify under the key pinned for srv), and
// another log: others leaves of other people, then c's list, published
// by c's device enrolled there.
func forkedRelay(t *testing.T, srv *relaytest.Server, c *Client, others int, sameKey bool) *relaytest.Server {
	t.Helper()
	ctx := testCtx(t)
	dir := t.TempDir()
	if sameKey {
		key, err := os.ReadFile(filepath.Join(srv.DataDir, audit.KeyFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, audit.KeyFile), key, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	other := relaytest.New(t, &relaytest.Options{DataDir: dir})
	for i := range others {
		newTestClient(t, other, "other"+string(rune('a'+i)))
	}
	cn, err := dialRelay(ctx, other.URL, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cn.close()
	if err := cn.authenticate(ctx, certSigner{c.dev}, true, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := cn.request(ctx, &protocol.PublishDeviceList{List: selfList(t, c)}); err != nil {
		t.Fatal(err)
	}
	return other
}

// askRelay asks the relay at url f, on a connection of its own.
func askRelay(t *testing.T, url string, f protocol.Frame) protocol.Frame {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cn, err := dialRelay(ctx, url, nil, nil)
	if err != nil {
		t.Errorf("double: %v", err)
		return &protocol.ErrorFrame{Code: protocol.CodeInternal}
	}
	defer cn.close()
	r, err := cn.request(ctx, f)
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return &protocol.ErrorFrame{Code: pe.Code, Msg: pe.Msg}
	}
	if err != nil {
		t.Errorf("double: %v", err)
		return &protocol.ErrorFrame{Code: protocol.CodeInternal}
	}
	return r
}
