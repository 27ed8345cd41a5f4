package client

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/postern/postern/client/internal/team/group"
	"github.com/postern/postern/client/internal/team/senderkey"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

// introFixture is an admin (alice) who is a contact of bob and of carol,
// who are not contacts of each other, and dave, a contact of nobody; all
// on one relay. alice has made the group "Care team" of the three and
// every device has joined it.
type introFixture struct {
	srv                     *relaytest.Server
	alice, bob, carol, dave *Client
	// carolGot: the group introductions delivered to carol.
	carolGot func() [][]byte
}

func (f *introFixture) members() []*Client { return []*Client{f.alice, f.bob, f.carol} }

const introGroup = "Care team"

func newIntroFixture(t *testing.T) *introFixture {
	t.Helper()
	f := &introFixture{srv: relaytest.New(t, nil)}
	f.alice, _ = newTestClient(t, f.srv, "alice")
	f.bob, _ = newTestClient(t, f.srv, "bob")
	f.carol, _ = newTestClient(t, f.srv, "carol")
	f.dave, _ = newTestClient(t, f.srv, "dave")
	f.carolGot = captureIntros(f.carol, false)
	befriend(t, f.alice, f.bob, "alice")
	befriend(t, f.alice, f.carol, "alice")
	if _, err := f.alice.CreateGroup(testCtx(t), introGroup, "bob", "carol"); err != nil {
		t.Fatal(err)
	}
	settleGroup(t, introGroup, f.members()...)
	return f
}

// readEachOther has bob and carol each send a group message and syncs
// until each has read the other's (a few rounds: introductions, sessions
// and distributions go first).
func (f *introFixture) readEachOther(t *testing.T, fromBob, fromCarol string) {
	t.Helper()
	ctx := testCtx(t)
	// A message sealed before the other's introduction has been answered
	// is not readable there (SPEC 15.10): wait for the keys first.
	for round := 0; !holdsKey(t, f.bob, f.carol) || !holdsKey(t, f.carol, f.bob); round++ {
		if round == 8 {
			t.Fatal("bob and carol did not receive each other's sender keys")
		}
		syncAll(t, 1, f.members()...)
	}
	if _, err := f.bob.SendGroup(ctx, introGroup, fromBob, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.carol.SendGroup(ctx, introGroup, fromCarol, nil); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		syncAll(t, 1, f.members()...)
		if len(messagesLike(t, f.carol, fromBob)) == 1 && len(messagesLike(t, f.bob, fromCarol)) == 1 {
			break
		}
	}
	for _, c := range []struct {
		who        *Client
		text, from string
	}{{f.carol, fromBob, "bob"}, {f.bob, fromCarol, "carol"}, {f.alice, fromBob, "bob"}, {f.alice, fromCarol, "carol"}} {
		got := messagesLike(t, c.who, c.text)
		if len(got) != 1 || got[0].From != c.from || got[0].To != introGroup {
			t.Fatalf("%s read %q as %+v", c.who.name, c.text, got)
		}
	}
}

// holdsKey reports whether c holds the sender key of from's device in
// the group.
func holdsKey(t *testing.T, c, from *Client) bool {
	t.Helper()
	rec := groupRecord(t, c, introGroup)
	if len(rec.Keys) == 0 {
		return false
	}
	ks, err := senderkey.UnmarshalState(rec.Keys)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, ok := ks.Epochs(protocol.DeviceID(from.devID))
	return ok
}

// captureIntros records the group introductions c sends (out) or is
// delivered.
func captureIntros(c *Client, out bool) func() [][]byte {
	var mu sync.Mutex
	var envs [][]byte
	h := func(o bool, env []byte) {
		if o == out && len(env) > 1 && env[1] == byte(protocol.KindGroupIntro) {
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

// forgeIntro is an introduction made with from's device keys, sealed
// under headerKey, to the device to through group mailbox mb.
func forgeIntro(t *testing.T, from *Client, headerKey []byte, gid group.ID, to keys.Fingerprint, mb protocol.MailboxID) []byte {
	t.Helper()
	var list []byte
	if err := from.st.view(func(t *tx) error {
		self, err := t.self()
		if err == nil {
			list = self.DeviceList
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	g := &groupIntro{Group: gid, To: to, Cert: from.dev.Certificate().Bytes(), List: list}
	rand.Read(g.Mailbox[:])
	rand.Read(g.Capability[:])
	body, err := g.marshal(from.dev, mb)
	if err != nil {
		t.Fatal(err)
	}
	env, err := sealGroupIntro(headerKey, gid, mb, body)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// peopleSnapshot is every person and device record of c, and c's
// sessions, encoded: equal snapshots mean nothing changed.
func peopleSnapshot(t *testing.T, c *Client) []byte {
	t.Helper()
	var out []byte
	if err := c.st.view(func(t *tx) error {
		ps, err := t.Persons()
		if err != nil {
			return err
		}
		ds, err := t.Devices()
		if err != nil {
			return err
		}
		sessions := map[string]*sessionRecord{}
		for _, d := range ds {
			if sessions[string(d.ID)], err = t.sessionRecord(d.ID); err != nil {
				return err
			}
		}
		out, err = json.Marshal([]any{ps, ds, sessions})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// groupKeys returns c's group mailbox, group ID and current header key.
func groupKeys(t *testing.T, c *Client) (protocol.MailboxID, group.ID, []byte) {
	t.Helper()
	rec := groupRecord(t, c, introGroup)
	s, err := group.ParseStored(rec.State)
	if err != nil {
		t.Fatal(err)
	}
	var mb protocol.MailboxID
	copy(mb[:], rec.Mailbox)
	return mb, s.Group, bytes.Clone(s.HeaderKey[:])
}

// deliver hands env to c as if its relay had delivered it on mb with a
// fresh envelope ID, and returns what receiving decided.
func deliver(c *Client, mb protocol.MailboxID, env []byte) (received, error) {
	var id protocol.EnvelopeID
	rand.Read(id[:])
	return c.receive(mb, id, env)
}

// TestGroupIntroNonContacts: bob and carol, who are not contacts of each
// other, read each other's group messages once their devices have
// introduced themselves through their group mailboxes; neither becomes
// the other's contact (not listed, not written to directly).
func TestGroupIntroNonContacts(t *testing.T) {
	t.Parallel()
	f := newIntroFixture(t)
	f.readEachOther(t, "bob to the team", "carol to the team")
	for _, c := range []*Client{f.bob, f.carol} {
		cs, err := c.Contacts()
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 || cs[0].Name != "alice" {
			t.Fatalf("%s's contacts: %+v", c.name, cs)
		}
		g, err := groupNamed(c, introGroup)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range g.Members {
			if want := m.Name == "alice" || m.Name == Me; m.Contact != want {
				t.Fatalf("%s lists %+v", c.name, m)
			}
		}
	}
	// A contacts snapshot (link, backup) leaves bob out of carol's.
	var snap []byte
	if err := f.carol.st.view(func(t *tx) (err error) {
		snap, err = t.exportContacts(f.carol.idFP, f.carol.relay, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	parsed, err := decodeSnapshot(snap, f.carol.idFP, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parsed.Persons {
		if bytes.Equal(p.Identity, f.bob.idFP[:]) {
			t.Fatal("carol's contacts snapshot holds bob, known only through the group")
		}
	}
	ctx := testCtx(t)
	if _, err := f.carol.Send(ctx, "bob", "a direct message"); !errors.Is(err, ErrUnknownContact) {
		t.Fatalf("carol wrote to bob directly: %v", err)
	}
	if _, err := f.carol.MakeContact(ctx, introGroup, "alice", "Al"); !errors.Is(err, ErrNotKnownThroughGroup) {
		t.Fatalf("MakeContact of a contact: %v", err)
	}
	if _, err := f.carol.MakeContact(ctx, introGroup, "bob", "alice"); !errors.Is(err, ErrContactExists) {
		t.Fatalf("MakeContact under a contact's name: %v", err)
	}
	// Made a contact on one side only: carol's direct message is not
	// read by bob, who has not made her one.
	ct, err := f.carol.MakeContact(ctx, introGroup, "bob", "Bob B")
	if err != nil || ct.Name != "Bob B" || ct.Identity != f.bob.idFP {
		t.Fatalf("MakeContact: %+v %v", ct, err)
	}
	if _, err := f.carol.Send(ctx, "Bob B", "one-sided hello"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.bob)
	if got := messagesLike(t, f.bob, "one-sided hello"); len(got) != 0 {
		t.Fatalf("bob read a direct message from someone he knows only through the group: %+v", got)
	}
	if _, err := f.bob.MakeContact(ctx, introGroup, "carol", "Carol C"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.carol.Send(ctx, "Bob B", "now both ways"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.bob)
	if got := messagesLike(t, f.bob, "now both ways"); len(got) != 1 || got[0].From != "Carol C" {
		t.Fatalf("bob read %+v", got)
	}
	g, err := groupNamed(f.bob, introGroup)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range g.Members {
		if !m.Contact {
			t.Fatalf("after MakeContact bob lists %+v", m)
		}
	}
}

// TestGroupIntroForged: an introduction under another key than the
// group's header key, or from a device that is not a member's (even
// under the right key), is refused and changes nothing.
func TestGroupIntroForged(t *testing.T) {
	t.Parallel()
	f := newIntroFixture(t)
	// Everything in flight arrives first, so that nothing else changes
	// carol's records meanwhile.
	f.readEachOther(t, "bob first", "carol first")
	syncAll(t, 2, f.members()...)
	mb, gid, hk := groupKeys(t, f.carol)
	before := peopleSnapshot(t, f.carol)
	wrongKey := make([]byte, len(hk))
	rand.Read(wrongKey)
	for _, tc := range []struct {
		name string
		env  []byte
		want error
	}{
		{"member, wrong header key", forgeIntro(t, f.bob, wrongKey, gid, f.carol.devID, mb), ErrDecrypt},
		{"non-contact member again, right key", forgeIntro(t, f.bob, hk, gid, f.carol.devID, mb), errGroupIntroRepeated},
		{"not a member, right header key", forgeIntro(t, f.dave, hk, gid, f.carol.devID, mb), errGroupIntroNotMember},
		{"not a member, wrong header key", forgeIntro(t, f.dave, wrongKey, gid, f.carol.devID, mb), ErrDecrypt},
		{"member, to another device", forgeIntro(t, f.bob, hk, gid, f.alice.devID, mb), ErrDecrypt},
	} {
		res, err := deliver(f.carol, mb, tc.env)
		if !errors.Is(err, tc.want) || len(res.groups) != 0 {
			t.Errorf("%s: %v, %d tasks; want %v", tc.name, err, len(res.groups), tc.want)
		}
	}
	if after := peopleSnapshot(t, f.carol); !bytes.Equal(before, after) {
		t.Fatal("a refused introduction changed carol's people or sessions")
	}
}

// TestGroupIntroReplay: an introduction delivered again (the relay
// replaying it under a new envelope ID) starts no second session and
// sends no answer.
func TestGroupIntroReplay(t *testing.T) {
	t.Parallel()
	f := newIntroFixture(t)
	f.readEachOther(t, "bob first", "carol first")
	mb, _, _ := groupKeys(t, f.carol)
	toCarol := f.carolGot()
	if len(toCarol) == 0 {
		t.Fatal("carol was delivered no introduction")
	}
	before := peopleSnapshot(t, f.carol)
	for _, env := range toCarol {
		res, err := deliver(f.carol, mb, env)
		if !errors.Is(err, errGroupIntroRepeated) || len(res.groups) != 0 {
			t.Fatalf("replayed introduction: %v, %d tasks", err, len(res.groups))
		}
	}
	if after := peopleSnapshot(t, f.carol); !bytes.Equal(before, after) {
		t.Fatal("a replayed introduction changed carol's people or sessions")
	}
}

func mustHeaderKey(t *testing.T, c *Client) []byte { _, _, hk := groupKeys(t, c); return hk }
func mustGroupID(t *testing.T, c *Client) group.ID { _, g, _ := groupKeys(t, c); return g }

// TestGroupIntroAfterRemoval: once carol is removed, an introduction of
// hers is refused by bob — under the header key she held (replaced by
// the removal) and, were she to learn the new one, because she is no
// longer a member — and she reads nothing sent afterwards.
func TestGroupIntroAfterRemoval(t *testing.T) {
	t.Parallel()
	f := newIntroFixture(t)
	ctx := testCtx(t)
	f.readEachOther(t, "bob before", "carol before")
	_, gid, oldKey := groupKeys(t, f.carol)
	if _, err := f.alice.RemoveGroupMember(ctx, introGroup, "carol"); err != nil {
		t.Fatal(err)
	}
	settleGroup(t, introGroup, f.alice, f.bob)
	syncAll(t, 2, f.members()...)
	if g, err := groupNamed(f.carol, introGroup); err != nil || !g.Removed {
		t.Fatalf("carol's group after removal: %+v %v", g, err)
	}
	bobMb, _, newKey := groupKeys(t, f.bob)
	if bytes.Equal(oldKey, newKey) {
		t.Fatal("the removal did not replace the header key")
	}
	// Her client no longer introduces her.
	if err := f.carol.sendGroupIntro(ctx, gid, f.bob.devID, false); !errors.Is(err, errSkipIntro) {
		t.Fatalf("carol's client introduced her after her removal: %v", err)
	}
	before := peopleSnapshot(t, f.bob)
	if _, err := deliver(f.bob, bobMb, forgeIntro(t, f.carol, oldKey, gid, f.bob.devID, bobMb)); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("an introduction under the old header key: %v", err)
	}
	if _, err := deliver(f.bob, bobMb, forgeIntro(t, f.carol, newKey, gid, f.bob.devID, bobMb)); !errors.Is(err, errGroupIntroNotMember) {
		t.Fatalf("an introduction from a removed member: %v", err)
	}
	if after := peopleSnapshot(t, f.bob); !bytes.Equal(before, after) {
		t.Fatal("a removed member's introduction changed bob's people or sessions")
	}
	if _, err := f.bob.SendGroup(ctx, introGroup, "bob after", nil); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, f.members()...)
	if got := messagesLike(t, f.alice, "bob after"); len(got) != 1 {
		t.Fatalf("alice read %+v", got)
	}
	if got := messagesLike(t, f.carol, "bob after"); len(got) != 0 {
		t.Fatalf("carol read %+v after her removal", got)
	}
}

// TestGroupIntroLateMember: erin, a contact of alice only, added to the
// group after bob and carol have settled, reads them and they read her.
func TestGroupIntroLateMember(t *testing.T) {
	t.Parallel()
	f := newIntroFixture(t)
	ctx := testCtx(t)
	erin, _ := newTestClient(t, f.srv, "erin")
	befriend(t, f.alice, erin, "alice")
	if _, err := f.alice.AddGroupMember(ctx, introGroup, "erin", 0, ""); err != nil {
		t.Fatal(err)
	}
	// erin's client takes the state first (live, while the others are
	// connected): its introductions and join must not wait for the
	// connection its next Sync replaces.
	syncAll(t, 1, erin)
	all := append(f.members(), erin)
	settleGroup(t, introGroup, all...)
	for round := 0; !holdsKey(t, erin, f.bob) || !holdsKey(t, erin, f.carol) || !holdsKey(t, f.bob, erin) || !holdsKey(t, f.carol, erin); round++ {
		if round == 8 {
			t.Fatal("erin and the others did not receive each other's sender keys")
		}
		syncAll(t, 1, all...)
	}
	if _, err := erin.SendGroup(ctx, introGroup, "erin joins the rota", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.carol.SendGroup(ctx, introGroup, "welcome erin", nil); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, all...)
	for _, c := range []struct {
		who        *Client
		text, from string
	}{{f.bob, "erin joins the rota", "erin"}, {f.carol, "erin joins the rota", "erin"}, {erin, "welcome erin", "carol"}} {
		if got := messagesLike(t, c.who, c.text); len(got) != 1 || got[0].From != c.from {
			t.Fatalf("%s read %q as %+v", c.who.name, c.text, got)
		}
	}
	if cs, err := erin.Contacts(); err != nil || len(cs) != 1 {
		t.Fatalf("erin's contacts: %+v %v", cs, err)
	}
}
