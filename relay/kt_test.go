package relay_test

import (
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

// person is an identity with devices enrolled on one relay.
type person struct {
	id   *identity.Identity
	devs []*identity.Device
}

func newPerson(t *testing.T, url string, n int) *person {
	t.Helper()
	id, err := identity.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	p := &person{id: id}
	for range n {
		d, err := identity.NewDevice(id)
		if err != nil {
			t.Fatal(err)
		}
		wantType[*protocol.Authenticated](t, dial(t, url).enroll(d, ""))
		p.devs = append(p.devs, d)
	}
	return p
}

// list signs a list of the given devices (indices into p.devs).
func (p *person) list(t *testing.T, version uint64, which ...int) []byte {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	var ds []keys.ListedDevice
	for _, i := range which {
		ds = append(ds, keys.ListedDevice{ID: p.devs[i].Certificate().DeviceID(), Linked: now, Relay: "ws://relay.example.org"})
	}
	for i := 1; i < len(ds); i++ { // sorted by ID
		for j := i; j > 0 && string(ds[j-1].ID[:]) > string(ds[j].ID[:]); j-- {
			ds[j-1], ds[j] = ds[j], ds[j-1]
		}
	}
	b, err := p.id.SignDeviceList(&keys.DeviceList{Version: version, Created: now, Devices: ds})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func logKey(t *testing.T, url string) *keys.SigningPublicKey {
	t.Helper()
	lk := wantType[*protocol.LogKey](t, dial(t, url).do(&protocol.FetchLogKey{}))
	k, err := keys.ParseSigningPublicKey(lk.Key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func answerOf(f *protocol.DeviceList) kt.Answer {
	a := kt.Answer{List: f.List, Index: f.Index, Head: f.Head}
	for _, h := range f.Inclusion {
		a.Inclusion = append(a.Inclusion, [32]byte(h))
	}
	for _, h := range f.Consistency {
		a.Consistency = append(a.Consistency, [32]byte(h))
	}
	return a
}

// TestDeviceListPublishRules: a published list is answered with its
// proofs (verified with keys/kt); a rollback, a bad signature, a list
// without the publishing device and an unauthenticated publish are
// refused with their codes and change nothing; a 9-device list cannot
// even be signed or parsed; an unknown identity has its own code.
func TestDeviceListPublishRules(t *testing.T) {
	srv := relaytest.New(t, nil)
	key := logKey(t, srv.URL)
	alice := newPerson(t, srv.URL, 2)
	fp := alice.id.Public().Fingerprint()
	c := dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, c.auth(alice.devs[0]))

	wantCode(t, dial(t, srv.URL).do(&protocol.FetchDeviceList{Identity: fp}), protocol.CodeUnknownIdentity)
	wantCode(t, dial(t, srv.URL).do(&protocol.PublishDeviceList{List: alice.list(t, 1, 0, 1)}), protocol.CodeAuthRequired)

	v2 := alice.list(t, 2, 0, 1)
	ans := wantType[*protocol.DeviceList](t, c.do(&protocol.PublishDeviceList{List: v2}))
	l, head, err := kt.VerifyAnswer(answerOf(ans), key, fp, nil)
	if err != nil {
		t.Fatalf("publish answer: %v", err)
	}
	if l.Version != 2 || head.Size != 1 {
		t.Fatalf("publish answer: %v", err)
	}

	bad := alice.list(t, 3, 0, 1)
	bad[len(bad)-1] ^= 1
	mallory, _ := identity.GenerateIdentity()
	other := &person{id: mallory, devs: alice.devs}
	for _, tc := range []struct {
		name string
		list []byte
		code protocol.Code
	}{
		{"rollback to version 1", alice.list(t, 1, 0, 1), protocol.CodeStaleDeviceList},
		{"same version", alice.list(t, 2, 0), protocol.CodeStaleDeviceList},
		{"bad signature", bad, protocol.CodeBadDeviceList},
		{"publishing device not in the list", alice.list(t, 3, 1), protocol.CodeNotInDeviceList},
		{"garbage", []byte("not a list"), protocol.CodeBadDeviceList},
	} {
		wantCode(t, c.do(&protocol.PublishDeviceList{List: tc.list}), tc.code)
	}
	// Another identity listing alice's device is its own claim, in its own
	// leaf: alice's list is untouched.
	wantType[*protocol.DeviceList](t, c.do(&protocol.PublishDeviceList{List: other.list(t, 1, 0)}))

	// 9 devices: no identity signs such a list, and none parses.
	nine := make([]keys.ListedDevice, 9)
	for i := range nine {
		nine[i] = keys.ListedDevice{ID: keys.Fingerprint{byte(i)}, Linked: time.Unix(1, 0), Relay: "ws://a"}
	}
	if _, err := alice.id.SignDeviceList(&keys.DeviceList{Version: 9, Created: time.Now(), Devices: nine}); !errors.Is(err, keys.ErrDeviceCount) {
		t.Fatalf("a 9-device list was signed: %v", err)
	}

	got := wantType[*protocol.DeviceList](t, dial(t, srv.URL).do(&protocol.FetchDeviceList{Identity: fp, KnownSize: 1}))
	l, head2, err := kt.VerifyAnswer(answerOf(got), key, fp, head)
	if err != nil {
		t.Fatalf("fetch after the refusals: %v", err)
	}
	if l.Version != 2 || head2.Size != 2 {
		t.Fatalf("fetch after the refusals: version %v, %v", l, err)
	}
}

// TestDeviceListRevokes: a new list without a device revokes it by the
// operator's path: its open connection is closed before the publisher is
// answered, its later Auth is refused with code 13, and the devices still
// listed keep working.
func TestDeviceListRevokes(t *testing.T) {
	srv := relaytest.New(t, nil)
	p := newPerson(t, srv.URL, 3)
	pub := dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, pub.auth(p.devs[0]))
	wantType[*protocol.DeviceList](t, pub.do(&protocol.PublishDeviceList{List: p.list(t, 1, 0, 1, 2)}))

	victim := dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, victim.auth(p.devs[2]))
	wantType[*protocol.MailboxCreated](t, victim.do(&protocol.CreateMailbox{}))

	wantType[*protocol.DeviceList](t, pub.do(&protocol.PublishDeviceList{List: p.list(t, 2, 0, 1)}))
	// The eviction finished before the answer: the close is already on
	// its way (the read is a hang guard, not a timing assertion).
	frames, err := readUntilClosed(victim, 10*time.Second)
	if s := websocket.CloseStatus(err); s != websocket.StatusPolicyViolation {
		t.Fatalf("revoked connection ended with %v, want close %d", err, websocket.StatusPolicyViolation)
	}
	if len(frames) == 0 {
		t.Fatal("no Error frame before the close")
	}
	wantCode(t, frames[len(frames)-1], protocol.CodeDeviceRevoked)
	wantCode(t, dial(t, srv.URL).auth(p.devs[2]), protocol.CodeDeviceRevoked)
	d, err := srv.Relay().Store().Device(bg, deviceID(p.devs[2]))
	if err != nil || !d.Revoked {
		t.Fatalf("the store does not hold the device revoked: %v", err)
	}
	wantType[*protocol.Authenticated](t, dial(t, srv.URL).auth(p.devs[1]))
	wantType[*protocol.MailboxCreated](t, pub.do(&protocol.CreateMailbox{}))

	// After a restart (the bar in memory is gone) the store refuses it.
	srv.Restart()
	wantCode(t, dial(t, srv.URL).auth(p.devs[2]), protocol.CodeDeviceRevoked)
}

// TestDeviceListLogAcrossRestart: heads keep growing from the stored tree
// after a restart, consistent with the heads before it.
func TestDeviceListLogAcrossRestart(t *testing.T) {
	srv := relaytest.New(t, nil)
	key := logKey(t, srv.URL)
	a := newPerson(t, srv.URL, 1)
	b := newPerson(t, srv.URL, 1)
	ca := dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, ca.auth(a.devs[0]))
	first := wantType[*protocol.DeviceList](t, ca.do(&protocol.PublishDeviceList{List: a.list(t, 1, 0)}))
	_, h1, err := kt.VerifyAnswer(answerOf(first), key, a.id.Public().Fingerprint(), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	if !logKey(t, srv.URL).Equal(key) {
		t.Fatal("the log key changed across a restart")
	}
	cb := dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, cb.auth(b.devs[0]))
	wantType[*protocol.DeviceList](t, cb.do(&protocol.PublishDeviceList{List: b.list(t, 1, 0)}))
	got := wantType[*protocol.DeviceList](t, dial(t, srv.URL).do(&protocol.FetchDeviceList{Identity: a.id.Public().Fingerprint(), KnownSize: h1.Size}))
	if _, h2, err := kt.VerifyAnswer(answerOf(got), key, a.id.Public().Fingerprint(), h1); err != nil || h2.Size != 2 {
		t.Fatalf("after the restart: %v", err)
	}
}

// TestDeviceListConcurrentPublishes: devices of one person publish at once
// (run with -race): every publish is either stored or refused as stale,
// the newest version wins, and every leaf the log holds verifies.
func TestDeviceListConcurrentPublishes(t *testing.T) {
	srv := relaytest.New(t, nil)
	key := logKey(t, srv.URL)
	p := newPerson(t, srv.URL, 4)
	fp := p.id.Public().Fingerprint()
	lists := make([][]byte, 8)
	for v := range lists {
		lists[v] = p.list(t, uint64(v+1), 0, 1, 2, 3)
	}
	conns := make([]*client, 4)
	for i := range conns {
		conns[i] = dial(t, srv.URL)
		wantType[*protocol.Authenticated](t, conns[i].auth(p.devs[i]))
	}
	type result struct {
		f   protocol.Frame
		err error
	}
	results := make(chan result, len(lists))
	for i, c := range conns {
		go func() {
			for v := i; v < len(lists); v += len(conns) {
				id := c.write(&protocol.PublishDeviceList{List: lists[v]})
				for {
					rid, f, err := c.readErr()
					if err != nil || rid == id {
						results <- result{f, err}
						break
					}
				}
			}
		}()
	}
	stored := 0
	for range lists {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		switch f := r.f.(type) {
		case *protocol.DeviceList:
			if _, _, err := kt.VerifyAnswer(answerOf(f), key, fp, nil); err != nil {
				t.Fatalf("answer: %v", err)
			}
			stored++
		case *protocol.ErrorFrame:
			if f.Code != protocol.CodeStaleDeviceList {
				t.Fatalf("refused with %d: %s", f.Code, f.Msg)
			}
		default:
			t.Fatalf("answer %T", f)
		}
	}
	got := wantType[*protocol.DeviceList](t, dial(t, srv.URL).do(&protocol.FetchDeviceList{Identity: fp}))
	l, h, err := kt.VerifyAnswer(answerOf(got), key, fp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.Version != uint64(len(lists)) || h.Size != uint64(stored) {
		t.Fatalf("newest: version %d, %d leaves for %d stored publishes: %v", l.Version, h.Size, stored, err)
	}
}
