package client

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/group"
	"github.com/postern/postern/client/internal/team/senderkey"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

// groupFixture is three people on one relay, contacts of each other:
// alice with two devices (alice, office), bob and carol.
type groupFixture struct {
	srv                       *relaytest.Server
	alice, office, bob, carol *Client
}

func (f *groupFixture) all() []*Client { return []*Client{f.alice, f.office, f.bob, f.carol} }

func newGroupFixture(t *testing.T) *groupFixture {
	t.Helper()
	f := &groupFixture{srv: relaytest.New(t, nil)}
	f.alice, f.bob, _, _ = pair(t, f.srv)
	f.carol, _ = newTestClient(t, f.srv, "carol")
	befriend(t, f.alice, f.carol, "alice")
	befriend(t, f.bob, f.carol, "bob")
	f.office, _ = linkNew(t, f.alice, "OFFICE-PC")
	syncAll(t, 3, f.office, f.alice, f.bob, f.carol)
	return f
}

// settleGroup syncs every client until each holds group name with every
// listed device joined, at one version; it fails after a few rounds.
func settleGroup(t *testing.T, name string, cs ...*Client) []Group {
	t.Helper()
	for round := 0; round < 8; round++ {
		syncAll(t, 1, cs...)
		var out []Group
		done := true
		for _, c := range cs {
			g, err := groupNamed(c, name)
			if err != nil {
				done = false
				break
			}
			for _, m := range g.Members {
				if m.Joined != m.Devices {
					done = false
				}
			}
			if len(out) > 0 && out[0].Version != g.Version {
				done = false
			}
			out = append(out, g)
		}
		if done {
			return out
		}
	}
	for _, c := range cs {
		g, err := groupNamed(c, name)
		t.Logf("%s: %+v %v", c.devID.Short(), g, err)
	}
	t.Fatalf("group %q did not settle", name)
	return nil
}

func groupNamed(c *Client, name string) (Group, error) {
	gs, err := c.Groups()
	if err != nil {
		return Group{}, err
	}
	for _, g := range gs {
		if g.Name == name {
			return g, nil
		}
	}
	return Group{}, ErrUnknownGroup
}

func TestGroupMessages(t *testing.T) {
	t.Parallel()
	f := newGroupFixture(t)
	ctx := testCtx(t)
	g, err := f.alice.CreateGroup(ctx, "Ward 4", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Members) != 3 || g.Role != GroupAdmin {
		t.Fatalf("created %+v", g)
	}
	settleGroup(t, "Ward 4", f.all()...)
	if _, err := f.bob.SendGroup(ctx, "Ward 4", "hello ward", nil); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.all()...)
	for _, c := range []*Client{f.alice, f.office, f.carol} {
		mine, err := groupNamed(c, "Ward 4")
		if err != nil {
			t.Fatal(err)
		}
		got := messagesLike(t, c, "hello ward")
		if len(got) != 1 || got[0].From != "bob" || got[0].To != "Ward 4" || got[0].Conversation != mine.Conversation || got[0].Outgoing {
			t.Fatalf("%s got %+v", c.devID.Short(), got)
		}
	}
	// A file, uploaded once, saved by a member.
	file := filepath.Join(t.TempDir(), "handover.txt")
	if err := os.WriteFile(file, []byte("Bed 12: review at 14:00\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.carol.SendGroupFiles(ctx, "Ward 4", "the notes", []string{file}, nil); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.all()...)
	got := messagesLike(t, f.office, "the notes")
	if len(got) != 1 || len(got[0].Attachments) != 1 || got[0].From != "carol" {
		t.Fatalf("office got %+v", got)
	}
	paths, err := f.office.SaveAttachments(ctx, got[0].ID, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(paths[0]); err != nil || string(b) != "Bed 12: review at 14:00\n" {
		t.Fatalf("saved %q, %v", b, err)
	}
}

// groupRecord reads c's record of group name.
func groupRecord(t *testing.T, c *Client, name string) *store.GroupRecord {
	t.Helper()
	var rec *store.GroupRecord
	if err := c.st.view(func(t *tx) (err error) { rec, err = t.lookupGroup(name); return err }); err != nil {
		t.Fatal(err)
	}
	return rec
}

// captureGroup records the group envelopes c sends.
func captureGroup(c *Client) func() [][]byte {
	var mu sync.Mutex
	var envs [][]byte
	h := func(out bool, env []byte) {
		if out && len(env) > 1 && env[1] == byte(protocol.KindGroup) {
			mu.Lock()
			envs = append(envs, bytes.Clone(env))
			mu.Unlock()
		}
	}
	c.envelopeHook.Store(&h)
	return func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		return envs
	}
}

// openWith opens a group envelope with the keys of a group record (as a
// device that kept them would).
func openWith(rec *store.GroupRecord, env []byte) error {
	s, err := group.Parse(rec.State)
	if err != nil {
		return err
	}
	ks, err := senderkey.UnmarshalState(rec.Keys)
	if err != nil {
		return err
	}
	for _, k := range [][]byte{s.HeaderKey[:], rec.PrevHeaderKey} {
		if len(k) == 0 {
			continue
		}
		hk, err := senderkey.ParseHeaderKey(k)
		if err != nil {
			return err
		}
		if _, _, err = ks.Open(hk, env[protocol.EnvelopeHeaderSize:]); err == nil {
			return nil
		}
	}
	return senderkey.ErrDecrypt
}

// TestGroupSiblingsAndLateKey: a message from alice's second device shows
// as hers (outgoing) on her first and as "alice" on the others; a message
// that arrives before its sender key's distribution is kept and read when
// the distribution comes.
func TestGroupSiblingsAndLateKey(t *testing.T) {
	t.Parallel()
	f := newGroupFixture(t)
	ctx := testCtx(t)
	if _, err := f.alice.CreateGroup(ctx, "Ward 4", "bob", "carol"); err != nil {
		t.Fatal(err)
	}
	settleGroup(t, "Ward 4", f.all()...)
	if _, err := f.office.SendGroup(ctx, "Ward 4", "from the office", nil); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.all()...)
	if got := messagesLike(t, f.alice, "from the office"); len(got) != 1 || !got[0].Outgoing || got[0].From != Me {
		t.Fatalf("alice's copy %+v", got)
	}
	for _, c := range []*Client{f.bob, f.carol} {
		if got := messagesLike(t, c, "from the office"); len(got) != 1 || got[0].From != "alice" {
			t.Fatalf("%s got %+v", c.devID.Short(), got)
		}
	}

	// carol loses bob's key: his next message waits for it.
	err := f.carol.st.update(func(t *tx) error {
		rec, err := t.lookupGroup("Ward 4")
		if err != nil {
			return err
		}
		ks, err := senderkey.UnmarshalState(rec.Keys)
		if err != nil {
			return err
		}
		ks.Remove(protocol.DeviceID(f.bob.devID))
		rec.Keys = ks.MarshalSecret()
		return t.PutGroup(rec, "Ward 4")
	})
	if err != nil {
		t.Fatal(err)
	}
	own, err := senderkey.UnmarshalOwn(groupRecord(t, f.bob, "Ward 4").Own)
	if err != nil {
		t.Fatal(err)
	}
	dist := own.Distribution()
	if _, err := f.bob.SendGroup(ctx, "Ward 4", "before the key", nil); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.carol)
	if got := messagesLike(t, f.carol, "before the key"); len(got) != 0 {
		t.Fatalf("read without the key: %+v", got)
	}
	if n := len(groupRecord(t, f.carol, "Ward 4").Pending); n != 1 {
		t.Fatalf("%d envelopes kept, want 1", n)
	}
	var res received
	err = f.carol.st.update(func(t *tx) error {
		res = received{}
		var bob *contactRecord
		cs, err := t.contacts()
		for _, r := range cs {
			if r.Person.Name == "bob" {
				bob = r
			}
		}
		if err != nil || bob == nil {
			return fmt.Errorf("no bob: %v", err)
		}
		return f.carol.receiveGroupKey(t, bob, dist, f.carol.now(), &res)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.msgs) != 1 || res.msgs[0].Text != "before the key" || res.msgs[0].From != "bob" {
		t.Fatalf("retried: %+v", res.msgs)
	}
	if n := len(groupRecord(t, f.carol, "Ward 4").Pending); n != 0 {
		t.Fatalf("%d envelopes still kept", n)
	}

	// Distributions for groups carol does not hold wait, for at most
	// maxPendingGroups groups: a contact cannot fill her store with them.
	err = f.carol.st.update(func(t *tx) error {
		var bob *contactRecord
		cs, err := t.contacts()
		for _, r := range cs {
			if r.Person.Name == "bob" {
				bob = r
			}
		}
		if err != nil || bob == nil {
			return fmt.Errorf("no bob: %v", err)
		}
		for i := range maxPendingGroups + 3 {
			o, err := senderkey.NewOwn(senderkey.GroupID{0xee, byte(i)}, protocol.DeviceID(f.bob.devID), 0, nil)
			if err != nil {
				return err
			}
			var res received
			if err := f.carol.receiveGroupKey(t, bob, o.Distribution(), f.carol.now(), &res); err != nil {
				return err
			}
		}
		n, err := t.GroupPendingCount()
		if err == nil && n != maxPendingGroups {
			err = fmt.Errorf("%d groups wait, want %d", n, maxPendingGroups)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGroupRemoval: after carol's removal, a message sent to the group
// is read by the others and not by carol's device, even with every key it
// held before the removal (the captured envelope); the old send
// capability is refused by the relay.
func TestGroupRemoval(t *testing.T) {
	t.Parallel()
	f := newGroupFixture(t)
	ctx := testCtx(t)
	if _, err := f.alice.CreateGroup(ctx, "Ward 4", "bob", "carol"); err != nil {
		t.Fatal(err)
	}
	settleGroup(t, "Ward 4", f.all()...)
	capture := captureGroup(f.bob)
	if _, err := f.bob.SendGroup(ctx, "Ward 4", "before removal", nil); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.all()...)
	kept := groupRecord(t, f.carol, "Ward 4") // what carol's device held
	if got := messagesLike(t, f.carol, "before removal"); len(got) != 1 {
		t.Fatalf("carol did not read the message before the removal: %+v", got)
	}
	oldState, err := group.Parse(kept.State)
	if err != nil {
		t.Fatal(err)
	}

	g, err := f.alice.RemoveGroupMember(ctx, "Ward 4", "carol")
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Members) != 2 {
		t.Fatalf("after removal %+v", g)
	}
	gs := settleGroup(t, "Ward 4", f.alice, f.office, f.bob)
	syncAll(t, 2, f.all()...)
	if gs[2].Version <= oldState.Version {
		t.Fatalf("bob's version %d", gs[2].Version)
	}
	// bob's sender key moved to a new epoch.
	newOwn, _ := senderkey.UnmarshalOwn(groupRecord(t, f.bob, "Ward 4").Own)
	if newOwn.Epoch() != 1 {
		t.Fatalf("bob's epoch %d, want 1", newOwn.Epoch())
	}
	if _, err := f.bob.SendGroup(ctx, "Ward 4", "after removal", nil); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.all()...)
	for _, c := range []*Client{f.alice, f.office} {
		if got := messagesLike(t, c, "after removal"); len(got) != 1 || got[0].From != "bob" {
			t.Fatalf("%s got %+v", c.devID.Short(), got)
		}
	}
	if got := messagesLike(t, f.carol, "after removal"); len(got) != 0 {
		t.Fatalf("carol read %+v", got)
	}
	envs := capture()
	after := envs[len(envs)-1]
	if err := openWith(kept, after); err == nil {
		t.Fatal("carol's keys from before the removal open a message sent after it")
	}
	// Nor with the keys it holds now.
	now := groupRecord(t, f.carol, "Ward 4")
	if !now.Removed || len(now.Keys) != 0 || len(now.Own) != 0 {
		t.Fatalf("carol's record after removal: removed %v, %d key bytes", now.Removed, len(now.Keys))
	}
	if _, err := f.carol.SendGroup(ctx, "Ward 4", "still here?", nil); !errors.Is(err, ErrNotGroupMember) {
		t.Fatalf("carol's send after removal: %v", err)
	}
	// The send capability carol knew is refused by the relay.
	tok, _ := protocol.CapabilityTokenFromBytes(oldState.SendCap[:])
	_, err = f.carol.anonRequest(ctx, oldState.Relay, "test", &protocol.SendFanout{Fanout: oldState.Fanout, Capability: tok, Envelope: after})
	if !protocol.IsCode(err, protocol.CodeFanoutCapability) {
		t.Fatalf("send with the old capability: %v", err)
	}

	// Added again, carol reads what is sent from then on.
	if _, err := f.alice.AddGroupMember(ctx, "Ward 4", "carol", GroupMember, ""); err != nil {
		t.Fatal(err)
	}
	settleGroup(t, "Ward 4", f.all()...)
	if _, err := f.bob.SendGroup(ctx, "Ward 4", "welcome back", nil); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.all()...)
	if got := messagesLike(t, f.carol, "welcome back"); len(got) != 1 || got[0].From != "bob" {
		t.Fatalf("carol, added again, got %+v", got)
	}
	if got := messagesLike(t, f.carol, "after removal"); len(got) != 0 {
		t.Fatalf("carol, added again, read what was sent while she was out: %+v", got)
	}
}

// TestGroupRoles: an observer's send is refused by its client, and one
// made below the API is dropped by every other member's; a delegate's
// messages show both names.
func TestGroupRoles(t *testing.T) {
	t.Parallel()
	f := newGroupFixture(t)
	ctx := testCtx(t)
	if _, err := f.alice.CreateGroup(ctx, "Ward 4", "bob", "carol"); err != nil {
		t.Fatal(err)
	}
	settleGroup(t, "Ward 4", f.all()...)
	if _, err := f.alice.SetGroupRole(ctx, "Ward 4", "carol", GroupObserver, ""); err != nil {
		t.Fatal(err)
	}
	settleGroup(t, "Ward 4", f.all()...)
	if _, err := f.carol.SendGroup(ctx, "Ward 4", "observer speaks", nil); !errors.Is(err, ErrObserver) {
		t.Fatalf("observer's send: %v", err)
	}
	// carol's client sends anyway, below the API, with the key it has.
	rec := groupRecord(t, f.carol, "Ward 4")
	s, _ := group.Parse(rec.State)
	own, err := senderkey.UnmarshalOwn(rec.Own)
	if err != nil {
		t.Fatal(err)
	}
	ct := &content{Type: contentText, Sender: f.carol.devID, SentMS: uint64(time.Now().UnixMilli()), Text: "observer speaks"}
	copy(ct.MsgID[:], randomID(msgIDSize))
	plain, _ := groupPlaintext(ct)
	hk, _ := senderkey.ParseHeaderKey(s.HeaderKey[:])
	sealed, err := own.Seal(hk, plain)
	if err != nil {
		t.Fatal(err)
	}
	env := append([]byte{protocol.Version, byte(protocol.KindGroup)}, sealed...)
	tok, _ := protocol.CapabilityTokenFromBytes(s.SendCap[:])
	before := f.bob.Stats().Dropped // bob's receive loop may take it at once
	if _, err := f.carol.anonRequest(ctx, s.Relay, "test", &protocol.SendFanout{Fanout: s.Fanout, Capability: tok, Envelope: env}); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.all()...)
	for _, c := range []*Client{f.alice, f.office, f.bob} {
		if got := messagesLike(t, c, "observer speaks"); len(got) != 0 {
			t.Fatalf("%s stored an observer's message: %+v", c.devID.Short(), got)
		}
		if n := len(groupRecord(t, c, "Ward 4").Pending); n != 0 {
			t.Fatalf("%s keeps an observer's message", c.devID.Short())
		}
	}
	if f.bob.Stats().Dropped <= before {
		t.Fatal("bob did not count the observer's message as dropped")
	}

	// carol becomes bob's delegate.
	if _, err := f.alice.SetGroupRole(ctx, "Ward 4", "carol", GroupDelegate, "bob"); err != nil {
		t.Fatal(err)
	}
	gs := settleGroup(t, "Ward 4", f.all()...)
	for _, m := range gs[0].Members {
		if m.Role == GroupDelegate && (m.Name != "carol" || m.For != "bob") {
			t.Fatalf("delegate listed as %+v", m)
		}
	}
	if _, err := f.carol.SendGroup(ctx, "Ward 4", "for bob", nil); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.all()...)
	for _, c := range []*Client{f.alice, f.office, f.bob} {
		if got := messagesLike(t, c, "for bob"); len(got) != 1 || got[0].From != "carol for bob" {
			t.Fatalf("%s got %+v", c.devID.Short(), got)
		}
	}
}

// TestGroupStateRefused: an old state sent again (a rollback) and a state
// signed by a member who is not an admin are refused by every receiver,
// which keeps the state it held.
func TestGroupStateRefused(t *testing.T) {
	t.Parallel()
	f := newGroupFixture(t)
	ctx := testCtx(t)
	if _, err := f.alice.CreateGroup(ctx, "Ward 4", "bob", "carol"); err != nil {
		t.Fatal(err)
	}
	settleGroup(t, "Ward 4", f.all()...)
	old, err := group.Parse(groupRecord(t, f.alice, "Ward 4").State)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.alice.SetGroupRole(ctx, "Ward 4", "carol", GroupObserver, ""); err != nil {
		t.Fatal(err)
	}
	gs := settleGroup(t, "Ward 4", f.all()...)
	held := gs[0].Version

	// alice's own device sends the old state again (as a relay or a
	// member replaying it would).
	f.alice.sendGroupState(ctx, old, nil, nil, nil)
	// bob, a member, signs a state that makes him admin and carol a
	// member again, and sends it to everyone.
	forged, err := group.Parse(groupRecord(t, f.bob, "Ward 4").State)
	if err != nil {
		t.Fatal(err)
	}
	forged.Version++
	for i := range forged.Members {
		if forged.Members[i].Identity != f.alice.idFP {
			forged.Members[i].Role = group.RoleAdmin
		}
	}
	if _, err := group.Sign(forged, f.bob.id); err != nil {
		t.Fatal(err)
	}
	f.bob.sendGroupState(ctx, forged, nil, nil, nil)
	syncAll(t, 2, f.all()...)
	for _, c := range f.all() {
		g, err := groupNamed(c, "Ward 4")
		if err != nil || g.Version != held {
			t.Fatalf("%s holds version %d (%v), want %d", c.devID.Short(), g.Version, err, held)
		}
		for _, m := range g.Members {
			if m.Identity == f.carol.idFP && m.Role != GroupObserver {
				t.Fatalf("%s: carol is %v", c.devID.Short(), m.Role)
			}
		}
	}

	// A state in three parts, arriving out of order, with a stale part of
	// another version among them: bob takes it once the last part comes.
	next, err := group.Parse(groupRecord(t, f.alice, "Ward 4").State)
	if err != nil {
		t.Fatal(err)
	}
	next.Version++
	next.Name = "Ward 4 east"
	b, err := group.Sign(next, f.alice.id)
	if err != nil {
		t.Fatal(err)
	}
	third := len(b) / 3
	chunks := [][]byte{b[:third], b[third : 2*third], b[2*third:]}
	var aliceOnBob *contactRecord
	for _, d := range devicesOf(t, f.bob, "alice") {
		if d.DeviceID != nil && fpOf(d.DeviceID) == f.alice.devID {
			aliceOnBob = d
		}
	}
	if aliceOnBob == nil {
		t.Fatal("bob has no record of alice's device")
	}
	feed := func(p *groupPart) {
		t.Helper()
		err := f.bob.st.update(func(t *tx) error {
			var res received
			return f.bob.receiveGroupPart(t, aliceOnBob, p, f.bob.now(), &res)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	feed(&groupPart{Group: next.Group, Version: next.Version - 5, Part: 1, Parts: 3, Chunk: []byte("stale")})
	for _, i := range []uint8{2, 0} {
		feed(&groupPart{Group: next.Group, Version: next.Version, Part: i, Parts: 3, Chunk: chunks[i]})
		if g, _ := groupNamed(f.bob, "Ward 4"); g.Version != held {
			t.Fatalf("bob took the state before its last part: version %d", g.Version)
		}
	}
	feed(&groupPart{Group: next.Group, Version: next.Version, Part: 1, Parts: 3, Chunk: chunks[1]})
	if g, err := groupNamed(f.bob, "Ward 4 east"); err != nil || g.Version != next.Version {
		t.Fatalf("bob after the last part: %+v, %v", g, err)
	}
	var pend *store.GroupPending
	if err := f.bob.st.view(func(t *tx) (err error) { pend, err = t.GroupPending(next.Group[:]); return err }); err != nil {
		t.Fatal(err)
	}
	if len(pend.Parts) != 0 {
		t.Fatalf("%d parts left waiting", len(pend.Parts))
	}
}

// TestGroupContents: the group contents round-trip, and every malformed
// one is refused by the sender's encoder and the receiver's parser.
func TestGroupContents(t *testing.T) {
	t.Parallel()
	var dev [32]byte
	dev[0] = 9
	good := []*content{
		{Type: contentGroupState, GroupPart: &groupPart{Group: group.ID{1}, Version: 7, Part: 0, Parts: 1, Chunk: []byte{1, 2}, HasAdmin: true, AdminCap: [32]byte{3}}},
		{Type: contentGroupState, GroupPart: &groupPart{Version: 7, Part: maxStateParts - 1, Parts: maxStateParts, Chunk: make([]byte, maxStatePart)}},
		{Type: contentGroupState, GroupPart: &groupPart{Group: group.ID{1}, Version: 8, Part: 0, Parts: 2, Chunk: []byte{1}, Logged: true}},
		{Type: contentGroupState, GroupPart: &groupPart{Group: group.ID{1}, Version: 8, Part: 0, Parts: 1, Chunk: []byte{1}, Logged: true, HasAdmin: true, AdminCap: [32]byte{6}}},
		{Type: contentGroupKey, GroupKey: bytes.Repeat([]byte{5}, senderkey.DistributionSize)},
		{Type: contentGroupJoin, GroupJoin: &groupJoin{Group: group.ID{2}, Mailbox: protocol.MailboxID{3}, Capability: [32]byte{4}}},
	}
	for _, ct := range good {
		ct.Sender = dev
		b, err := ct.marshalSession()
		if err != nil {
			t.Fatalf("type %#x: %v", ct.Type, err)
		}
		got, err := parseSessionContent(b)
		if err != nil || got.Type != ct.Type {
			t.Fatalf("type %#x: parsed %v", ct.Type, err)
		}
		again, _ := got.marshalSession()
		if !bytes.Equal(again, b) {
			t.Fatalf("type %#x: re-encoding differs", ct.Type)
		}
	}
	bad := []*content{
		{Type: contentGroupState, GroupPart: &groupPart{Parts: 0, Chunk: []byte{1}}},
		{Type: contentGroupState, GroupPart: &groupPart{Part: 2, Parts: 2, Chunk: []byte{1}}},
		{Type: contentGroupState, GroupPart: &groupPart{Part: 0, Parts: maxStateParts + 1, Chunk: []byte{1}}},
		{Type: contentGroupState, GroupPart: &groupPart{Part: 0, Parts: 1}},
		{Type: contentGroupState, GroupPart: &groupPart{Part: 0, Parts: 1, Chunk: make([]byte, maxStatePart+1)}},
		{Type: contentGroupState, GroupPart: &groupPart{Part: 1, Parts: 2, Chunk: []byte{1}, HasAdmin: true}},
		{Type: contentGroupState, GroupPart: &groupPart{Part: 1, Parts: 2, Chunk: []byte{1}, Logged: true}},
		{Type: contentGroupState},
		{Type: contentGroupKey, GroupKey: make([]byte, senderkey.DistributionSize-1)},
		{Type: contentGroupJoin},
	}
	for i, ct := range bad {
		if _, err := ct.marshalSession(); err == nil {
			t.Fatalf("bad %d encoded", i)
		}
	}
	// The parser refuses what the encoder would not write: an admin
	// capability or the staff-list flag on a part other than the first, an
	// unknown flag bit, a truncated distribution.
	ok := &content{Type: contentGroupState, Sender: dev, GroupPart: &groupPart{Part: 1, Parts: 2, Chunk: []byte{1}}}
	b, err := ok.marshalSession()
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []byte{1, 2} {
		c := bytes.Clone(b)
		c[len(c)-1] = flag
		if flag == 1 {
			c = append(c, make([]byte, 32)...)
			binary.BigEndian.PutUint32(c, uint32(len(c)-4))
		}
		if _, err := parseSessionContent(c); err == nil {
			t.Fatalf("admin flag %d on part 1 parsed", flag)
		}
	}
	// An unknown flag bit on part 0.
	first := &content{Type: contentGroupState, Sender: dev, GroupPart: &groupPart{Part: 0, Parts: 1, Chunk: []byte{1}}}
	b, err = first.marshalSession()
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] = 4
	if _, err := parseSessionContent(b); err == nil {
		t.Fatal("flag bit 2 parsed")
	}
}
