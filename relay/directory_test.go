package relay_test

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/relaytest"
)

// verifyLeaf checks a DirectoryLeaf answer for logKey against the relay's
// key and an older head (nil: none), as a client does, and returns its
// head.
func verifyLeaf(t *testing.T, key *keys.SigningPublicKey, logKey [32]byte, f *protocol.DirectoryLeaf, known *kt.Head) *kt.Head {
	t.Helper()
	h, err := kt.ParseHead(f.Head, key)
	if err != nil {
		t.Fatal(err)
	}
	e := kt.Entry{Identity: logKey, Version: f.Version, ListHash: f.Hash}
	var inc, con [][32]byte
	for _, p := range f.Inclusion {
		inc = append(inc, [32]byte(p))
	}
	for _, p := range f.Consistency {
		con = append(con, [32]byte(p))
	}
	if err := kt.VerifyInclusion(e.LeafHash(), f.Index, h.Size, inc, h.Root); err != nil {
		t.Fatalf("inclusion: %v", err)
	}
	if known != nil {
		if err := kt.VerifyConsistency(known.Size, h.Size, known.Root, h.Root, con); err != nil {
			t.Fatalf("consistency: %v", err)
		}
	}
	return h
}

// TestDirectoryPublishRules: an organisation's directory leaf is logged
// by an authenticated device with the organisation's publishing
// capability (the first publish sets it), proved to anyone who asks in
// the device lists' tree; an unauthenticated publish, a wrong capability
// and a version not above the logged one are refused with their codes
// and change nothing.
func TestDirectoryPublishRules(t *testing.T) {
	srv := relaytest.New(t, nil)
	key := logKey(t, srv.URL)
	alice := newPerson(t, srv.URL, 1)
	c := dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, c.auth(alice.devs[0]))
	lk := sha256.Sum256([]byte("an organisation's log key"))
	capA, capB := protocol.NewCapabilityToken(), protocol.NewCapabilityToken()
	hash := func(v byte) [32]byte { return sha256.Sum256([]byte{v}) }

	wantCode(t, dial(t, srv.URL).do(&protocol.FetchDirectory{LogKey: lk}), protocol.CodeUnknownDirectory)
	wantCode(t, dial(t, srv.URL).do(&protocol.PublishDirectory{LogKey: lk, Version: 1, Hash: hash(1), Capability: capA}), protocol.CodeAuthRequired)

	first := wantType[*protocol.DirectoryLeaf](t, c.do(&protocol.PublishDirectory{LogKey: lk, Version: 2, Hash: hash(2), Capability: capA}))
	if first.Version != 2 || first.Hash != hash(2) || first.Index != 0 {
		t.Fatalf("first publish answered version %d index %d", first.Version, first.Index)
	}
	h1 := verifyLeaf(t, key, lk, first, nil)
	// A device list shares the tree.
	wantType[*protocol.DeviceList](t, c.do(&protocol.PublishDeviceList{List: alice.list(t, 1, 0)}))

	for _, tc := range []struct {
		name string
		f    *protocol.PublishDirectory
		code protocol.Code
	}{
		{"another capability", &protocol.PublishDirectory{LogKey: lk, Version: 3, Hash: hash(3), Capability: capB}, protocol.CodeDirectoryCapability},
		{"same version", &protocol.PublishDirectory{LogKey: lk, Version: 2, Hash: hash(9), Capability: capA}, protocol.CodeStaleDirectory},
		{"lower version", &protocol.PublishDirectory{LogKey: lk, Version: 1, Hash: hash(1), Capability: capA}, protocol.CodeStaleDirectory},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, c.do(tc.f), tc.code) })
	}
	got := wantType[*protocol.DirectoryLeaf](t, dial(t, srv.URL).do(&protocol.FetchDirectory{LogKey: lk, KnownSize: h1.Size}))
	if got.Version != 2 || got.Hash != hash(2) {
		t.Fatalf("a refused publish changed the leaf: version %d", got.Version)
	}
	if h := verifyLeaf(t, key, lk, got, h1); h.Size != 2 {
		t.Fatalf("tree of %d leaves after one directory and one list", h.Size)
	}

	next := wantType[*protocol.DirectoryLeaf](t, c.do(&protocol.PublishDirectory{LogKey: lk, Version: 3, Hash: hash(3), Capability: capA}))
	if next.Version != 3 || next.Index != 2 {
		t.Fatalf("second publish: version %d index %d", next.Version, next.Index)
	}
	got = wantType[*protocol.DirectoryLeaf](t, dial(t, srv.URL).do(&protocol.FetchDirectory{LogKey: lk, KnownSize: h1.Size}))
	verifyLeaf(t, key, lk, got, h1)
	// Another organisation's key is its own: capB may set it.
	other := sha256.Sum256([]byte("another organisation"))
	wantType[*protocol.DirectoryLeaf](t, c.do(&protocol.PublishDirectory{LogKey: other, Version: 1, Hash: hash(1), Capability: capB}))
}

// TestDirectoryPublishAllowance: directory publishes (organisation
// directories and teams' staff lists) have an allowance of their own per
// device, apart from the device lists': DirectoryPublishBurst leaves at
// once, then one per 3600/DirectoryPublishesPerHour seconds; a refused
// publish gives its token back; the device's device-list allowance is
// untouched by them, and a device list publish takes nothing from them.
func TestDirectoryPublishAllowance(t *testing.T) {
	clk := newClock()
	srv := relaytest.New(t, &relaytest.Options{Now: clk.Now})
	alice := newPerson(t, srv.URL, 1)
	c := dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, c.auth(alice.devs[0]))
	lk := sha256.Sum256([]byte("a team's staff list"))
	capability := protocol.NewCapabilityToken()
	hash := func(v uint64) [32]byte { return sha256.Sum256([]byte{byte(v), byte(v >> 8)}) }
	version := uint64(0)
	publish := func() protocol.Frame {
		version++
		return c.do(&protocol.PublishDirectory{LogKey: lk, Version: version, Hash: hash(version), Capability: capability})
	}

	// A device list first: it takes nothing from the directory allowance.
	wantType[*protocol.DeviceList](t, c.do(&protocol.PublishDeviceList{List: alice.list(t, 1, 0)}))
	for i := range relay.DirectoryPublishBurst {
		if i == relay.DeviceListPublishBurst {
			// A refused publish (stale) in the middle does not count.
			wantCode(t, c.do(&protocol.PublishDirectory{LogKey: lk, Version: 1, Hash: hash(1), Capability: capability}), protocol.CodeStaleDirectory)
		}
		wantType[*protocol.DirectoryLeaf](t, publish())
	}
	wantCode(t, publish(), protocol.CodeRateLimited)
	version-- // refused: not logged

	// The device lists' allowance is its own: its burst (less the one
	// taken above) is still there, and is then spent.
	for v := range relay.DeviceListPublishBurst - 1 {
		wantType[*protocol.DeviceList](t, c.do(&protocol.PublishDeviceList{List: alice.list(t, uint64(v)+2, 0)}))
	}
	wantCode(t, c.do(&protocol.PublishDeviceList{List: alice.list(t, 99, 0)}), protocol.CodeRateLimited)

	// One directory token refills per 3600/DirectoryPublishesPerHour s.
	clk.Advance(time.Hour / relay.DirectoryPublishesPerHour)
	wantType[*protocol.DirectoryLeaf](t, publish())
	wantCode(t, publish(), protocol.CodeRateLimited)
	version--
	got := wantType[*protocol.DirectoryLeaf](t, dial(t, srv.URL).do(&protocol.FetchDirectory{LogKey: lk}))
	if got.Version != version || got.Hash != hash(version) {
		t.Fatalf("logged version %d, want %d", got.Version, version)
	}
}
