package client

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/people"
	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/internal/relayconn"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/hybrid"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/audit"
	"github.com/postern/postern/relay/relaytest"
)

// ownState is what alice keeps of her own list and her relay's log.
func ownState(t *testing.T, c *Client) (self *store.Person, trust *store.RelayTrust) {
	t.Helper()
	err := c.st.view(func(tx *tx) (err error) {
		if self, err = tx.self(); err != nil {
			return err
		}
		trust, err = tx.RelayTrust(c.relay)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return self, trust
}

// TestInitPublishesDeviceList: Init signs and publishes version 1 with this
// device alone; the client keeps the list, the relay's pinned key and a
// verified head, and the relay serves the same list to anyone.
func TestInitPublishesDeviceList(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, _ := newTestClient(t, srv, "alice")
	self, trust := ownState(t, alice)
	if self.DeviceListVersion != 1 || len(self.DeviceList) == 0 {
		t.Fatalf("self person keeps list version %d (%d bytes), want 1", self.DeviceListVersion, len(self.DeviceList))
	}
	if trust == nil || len(trust.Key) == 0 || len(trust.Head) == 0 {
		t.Fatalf("no pinned key or kept head for the relay: %+v", trust)
	}
	devs, err := alice.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 1 || !devs[0].This || devs[0].ID != alice.Whoami().Device || devs[0].Relay != srv.URL || devs[0].Linked.IsZero() {
		t.Fatalf("Devices: %+v", devs)
	}
	if d := time.Since(devs[0].Linked); d < -time.Second || d > time.Hour {
		t.Errorf("linked at %v, not about now", devs[0].Linked)
	}
	// Anyone fetching it from the relay gets the same bytes.
	rc, err := relayconn.Dial(ctx, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rc.Start(nil)
	r, err := rc.Request(ctx, &protocol.FetchDeviceList{Identity: alice.Whoami().Identity})
	if err != nil {
		t.Fatal(err)
	}
	if dl, ok := r.(*protocol.DeviceList); !ok || !bytes.Equal(dl.List, self.DeviceList) {
		t.Fatalf("the relay serves another list: %T", r)
	}
}

// TestFixtureHomePublishesDeviceList: a home made before device lists
// (testdata/home/v2) publishes version 1 at its first connection.
func TestFixtureHomePublishesDeviceList(t *testing.T) {
	t.Parallel()
	_, aliceHome, _, opts := fixtureHomes(t, "v2")
	alice, err := Open(aliceHome, testPass, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	if self, trust := ownState(t, alice); self.DeviceListVersion != 0 || trust != nil {
		t.Fatalf("the fixture has a device list (version %d) or a pinned key already", self.DeviceListVersion)
	}
	if _, err := alice.Sync(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	self, trust := ownState(t, alice)
	if self.DeviceListVersion != 1 || trust == nil || len(trust.Head) == 0 {
		t.Fatalf("after the first connection: list version %d, trust %+v", self.DeviceListVersion, trust)
	}
	devs, err := alice.Devices(testCtx(t))
	if err != nil || len(devs) != 1 || !devs[0].This {
		t.Fatalf("Devices: %+v, %v", devs, err)
	}
}

// TestDevicesRefusesUncheckedAnswers: a relay whose log key is not the
// pinned one, and a list older than the kept one, are refused with
// ErrTransparency, and what is kept does not change.
func TestDevicesRefusesUncheckedAnswers(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, _ := newTestClient(t, srv, "alice")
	self, trust := ownState(t, alice)

	// A version above the relay's was verified before: the relay's list
	// is a rollback.
	err := alice.st.update(func(tx *tx) error {
		p, err := tx.self()
		if err != nil {
			return err
		}
		p.DeviceListVersion = 5
		return tx.PutPerson(p)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Devices(ctx); !errors.Is(err, ErrTransparency) || !errors.Is(err, kt.ErrRollback) {
		t.Fatalf("older list: %v, want ErrTransparency (rollback)", err)
	}
	if s, tr := ownState(t, alice); s.DeviceListVersion != 5 || !bytes.Equal(tr.Head, trust.Head) {
		t.Fatalf("a refused answer changed the kept state")
	}
	err = alice.st.update(func(tx *tx) error {
		p, err := tx.self()
		if err != nil {
			return err
		}
		p.DeviceListVersion = self.DeviceListVersion
		return tx.PutPerson(p)
	})
	if err != nil {
		t.Fatal(err)
	}

	// Another key pinned for this relay: its heads do not verify.
	other, err := hybrid.Generate()
	if err != nil {
		t.Fatal(err)
	}
	err = alice.st.update(func(tx *tx) error {
		return tx.PutRelayTrust(&store.RelayTrust{Relay: alice.relay, Key: other.Public().Bytes()})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Devices(ctx); !errors.Is(err, ErrTransparency) || !errors.Is(err, kt.ErrBadHead) {
		t.Fatalf("another pinned key: %v, want ErrTransparency (bad head)", err)
	}
	if _, tr := ownState(t, alice); len(tr.Head) != 0 {
		t.Fatalf("a head signed by another key was kept")
	}
	var pinned []byte
	alice.st.view(func(tx *tx) error {
		k, _ := people.Pinned(tx.Tx, alice.relay)
		pinned = k.Bytes()
		return nil
	})
	if !bytes.Equal(pinned, other.Public().Bytes()) {
		t.Fatalf("the pinned key was replaced by the relay's")
	}
}

func homeFiles(home string) []string {
	var have []string
	for _, f := range []string{KeyFileName, StoreFileName, EraseKeysFileName, SearchFileName, SearchFileName + "-journal"} {
		if _, err := os.Stat(filepath.Join(home, f)); err == nil {
			have = append(have, f)
		}
	}
	return have
}

// TestRevokedDeviceWipes: a device the relay revokes wipes itself, whether
// the relay closes its open connection or refuses its next Auth; a device
// whose relay is down, or that the relay does not know (code 15), keeps
// everything.
func TestRevokedDeviceWipes(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, aliceHome := newTestClient(t, srv, "alice") // online when revoked
	carol, carolHome := newTestClient(t, srv, "carol") // offline when revoked
	bob, bobHome := newTestClient(t, srv, "bob")       // never revoked
	carol.Close()
	bob.Close()
	// Alice's search index goes with the rest.
	if _, err := alice.Search(ctx, "anything", nil); err != nil {
		t.Fatal(err)
	}
	if have := homeFiles(aliceHome); len(have) != 5 {
		t.Fatalf("alice's home holds %v", have)
	}

	if err := srv.Relay().RevokeDevice(ctx, protocol.DeviceID(alice.Whoami().Device)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); len(homeFiles(aliceHome)) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("alice's home still holds %v after her revocation", homeFiles(aliceHome))
		}
	}
	if _, err := alice.Sync(ctx); !errors.Is(err, ErrDeviceRevoked) {
		t.Fatalf("Sync after the revocation: %v, want ErrDeviceRevoked", err)
	}
	if _, err := os.Stat(filepath.Join(aliceHome, StoreFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("store.db came back: %v", err)
	}

	if err := srv.Relay().RevokeDevice(ctx, protocol.DeviceID(carol.Whoami().Device)); err != nil {
		t.Fatal(err)
	}
	if _, err := Dial(ctx, carolHome, testPass, testOpts()); !errors.Is(err, ErrDeviceRevoked) {
		t.Fatalf("Dial of a revoked device: %v, want ErrDeviceRevoked", err)
	}
	if have := homeFiles(carolHome); len(have) > 0 {
		t.Fatalf("carol's home still holds %v", have)
	}

	// The relay down: an error, and nothing deleted.
	srv.Stop()
	if _, err := Dial(ctx, bobHome, testPass, testOpts()); err == nil || errors.Is(err, ErrDeviceRevoked) {
		t.Fatalf("Dial with the relay down: %v", err)
	}
	if have := homeFiles(bobHome); len(have) != 3 {
		t.Fatalf("bob's home holds only %v with the relay down", have)
	}
	srv.Start()
	// A relay that does not know the device (another relay at the
	// home's address): code 15, nothing deleted.
	other := relaytest.New(t, nil)
	b, err := Open(bobHome, testPass, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	b.relay = other.URL
	if _, err := b.Sync(ctx); !protocol.IsCode(err, protocol.CodeUnknownDevice) {
		t.Fatalf("Sync on a relay that does not know the device: %v, want code 15", err)
	}
	b.Close()
	if have := homeFiles(bobHome); len(have) != 3 {
		t.Fatalf("bob's home holds only %v after an unknown-device refusal", have)
	}
	bob = dial(t, bobHome)
	if _, err := bob.Sync(ctx); err != nil {
		t.Fatalf("bob after all that: %v", err)
	}
}

// TestDroppedFromDeviceListWipes: another device of the same person
// publishes a list without this one; the relay revokes it and closes its
// connection, and it deletes itself.
func TestDroppedFromDeviceListWipes(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, aliceHome := newTestClient(t, srv, "alice")

	// A second device of alice's identity, enrolled on the relay.
	second, err := identity.NewDevice(alice.id)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := relayconn.Dial(ctx, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rc.Start(nil)
	sig, err := second.Sign(protocol.AuthContext, rc.AuthMessage())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Request(ctx, &protocol.Enroll{DeviceKey: second.Certificate().Signing.Bytes(), Signature: sig}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	list, err := alice.id.SignDeviceList(&keys.DeviceList{Version: 2, Created: now, Devices: []keys.ListedDevice{{ID: second.Certificate().DeviceID(), Linked: now, Relay: srv.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Request(ctx, &protocol.PublishDeviceList{List: list}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); len(homeFiles(aliceHome)) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("alice's home still holds %v after a list without her device", homeFiles(aliceHome))
		}
	}
	if _, err := alice.Sync(ctx); !errors.Is(err, ErrDeviceRevoked) {
		t.Fatalf("Sync: %v, want ErrDeviceRevoked", err)
	}
}

// TestDevicesRefusesOlderOrForkedHead: with a kept head that the relay's
// log cannot extend (one of more leaves, or one of the same size with
// another root, both signed by the relay's real key as a relay showing
// another log would), the relay's answer is refused and the kept head
// stays.
func TestDevicesRefusesOlderOrForkedHead(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, _ := newTestClient(t, srv, "alice")
	key, err := audit.LoadOrCreateKey(filepath.Join(srv.DataDir, audit.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	_, trust := ownState(t, alice)
	kept, err := kt.ParseHead(trust.Head, key.Public())
	if err != nil {
		t.Fatalf("the kept head is not signed by the relay's key: %v", err)
	}
	for _, c := range []struct {
		name string
		size uint64
		root [kt.HashSize]byte
		want error
	}{
		{"a kept head of more leaves", kept.Size + 10, kept.Root, kt.ErrRollback},
		{"a kept head of the same size with another root", kept.Size, [kt.HashSize]byte{1}, kt.ErrFork},
	} {
		h := &kt.Head{RelayKey: key.Public().Fingerprint(), Size: c.size, Root: c.root, Time: time.Now()}
		if h.Signature, err = key.Sign(kt.ContextHead, h.SignedPart()); err != nil {
			t.Fatal(err)
		}
		err := alice.st.update(func(tx *tx) error {
			return tx.PutRelayTrust(&store.RelayTrust{Relay: alice.relay, Key: trust.Key, Head: h.Bytes()})
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alice.Devices(ctx); !errors.Is(err, ErrTransparency) || !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want ErrTransparency and %v", c.name, err, c.want)
		}
		if _, tr := ownState(t, alice); !bytes.Equal(tr.Head, h.Bytes()) {
			t.Errorf("%s: the kept head changed", c.name)
		}
	}
}
