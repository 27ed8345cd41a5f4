package client

import (
	"testing"
	"time"

	"github.com/postern/postern/client/internal/team/group"
	"github.com/postern/postern/client/internal/team/senderkey"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// memberDevices is how many devices (listed, joined) c's state of group
// name lists for the member with identity id.
func memberDevices(t *testing.T, c *Client, name string, id keys.Fingerprint) (int, int) {
	t.Helper()
	g, err := groupNamed(c, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range g.Members {
		if m.Identity == id {
			return m.Devices, m.Joined
		}
	}
	t.Fatalf("%s: no member %s in %+v", c.devID.Short(), id.Short(), g)
	return 0, 0
}

// TestGroupLaterLinkedDevice: bob links a device after the group was
// made; alice's device, which published the group's states, lists it,
// it joins, reads what is sent to the group afterwards, and what it sends
// is read by the others (as bob's) and by bob's first device (as his own).
func TestGroupLaterLinkedDevice(t *testing.T) {
	t.Parallel()
	f := newGroupFixture(t)
	ctx := testCtx(t)
	if _, err := f.alice.CreateGroup(ctx, "Ward 4", "bob", "carol"); err != nil {
		t.Fatal(err)
	}
	before := settleGroup(t, "Ward 4", f.all()...)[0]
	if n, _ := memberDevices(t, f.alice, "Ward 4", f.bob.idFP); n != 1 {
		t.Fatalf("bob has %d devices in the group before the link", n)
	}
	ward, _ := linkNew(t, f.bob, "BOB-WARD")
	all := append(f.all(), ward)
	gs := settleGroup(t, "Ward 4", all...)
	if gs[0].Version <= before.Version {
		t.Fatalf("version %d after the link, %d before", gs[0].Version, before.Version)
	}
	for _, c := range all {
		if n, j := memberDevices(t, c, "Ward 4", f.bob.idFP); n != 2 || j != 2 {
			t.Fatalf("%s: bob has %d devices listed, %d joined, want 2", c.devID.Short(), n, j)
		}
	}
	// A state listing no new device changes nothing: the next
	// maintenance publishes nothing more.
	syncAll(t, 2, all...)
	if g, _ := groupNamed(f.alice, "Ward 4"); g.Version != gs[0].Version {
		t.Fatalf("version %d after more maintenance, %d settled", g.Version, gs[0].Version)
	}

	if _, err := f.alice.SendGroup(ctx, "Ward 4", "handover at six", nil); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, all...)
	mine, err := groupNamed(ward, "Ward 4")
	if err != nil {
		t.Fatal(err)
	}
	got := messagesLike(t, ward, "handover at six")
	if len(got) != 1 || got[0].From != "alice" || got[0].Conversation != mine.Conversation {
		t.Fatalf("bob's new device got %+v", got)
	}
	if _, err := ward.SendGroup(ctx, "Ward 4", "bed 3 is free", nil); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, all...)
	for _, c := range []*Client{f.alice, f.office, f.carol} {
		if got := messagesLike(t, c, "bed 3 is free"); len(got) != 1 || got[0].From != "bob" || got[0].Outgoing {
			t.Fatalf("%s got %+v", c.devID.Short(), got)
		}
	}
	if got := messagesLike(t, f.bob, "bed 3 is free"); len(got) != 1 || !got[0].Outgoing {
		t.Fatalf("bob's first device got %+v", got)
	}
}

// TestGroupAdminLaterLinkedDevice: the admin links a device; the device
// that publishes the group's states lists it at once.
func TestGroupAdminLaterLinkedDevice(t *testing.T) {
	t.Parallel()
	f := newGroupFixture(t)
	ctx := testCtx(t)
	if _, err := f.alice.CreateGroup(ctx, "Ward 4", "bob", "carol"); err != nil {
		t.Fatal(err)
	}
	settleGroup(t, "Ward 4", f.all()...)
	laptop, _ := linkNew(t, f.alice, "LAPTOP")
	if n, _ := memberDevices(t, f.alice, "Ward 4", f.alice.idFP); n != 3 {
		t.Fatalf("alice's own state lists %d of her devices after the link, want 3", n)
	}
	all := append(f.all(), laptop)
	settleGroup(t, "Ward 4", all...)
	g, err := groupNamed(laptop, "Ward 4")
	if err != nil || g.Role != GroupAdmin {
		t.Fatalf("the laptop's group %+v, %v", g, err)
	}
	// The state the link published at once may have found no prekey
	// bundle for the laptop yet; it was sent again, and nothing is owed.
	if owed := f.alice.owedStates.due(time.Now().Add(time.Hour)); len(owed) != 0 {
		t.Fatalf("alice still owes states: %v", owed)
	}
	if _, err := f.carol.SendGroup(ctx, "Ward 4", "ward round", nil); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, all...)
	if got := messagesLike(t, laptop, "ward round"); len(got) != 1 || got[0].From != "carol" {
		t.Fatalf("the laptop got %+v", got)
	}
}

// TestGroupRevokedDeviceDropped: bob revokes a device of his; the next
// state drops it, its mailbox leaves the fan-out list, and the group's
// keys rotate as for a removal: what it held opens nothing sent after.
func TestGroupRevokedDeviceDropped(t *testing.T) {
	t.Parallel()
	f := newGroupFixture(t)
	ctx := testCtx(t)
	ward, _ := linkNew(t, f.bob, "BOB-WARD")
	all := append(f.all(), ward)
	syncAll(t, 3, all...)
	if _, err := f.alice.CreateGroup(ctx, "Ward 4", "bob", "carol"); err != nil {
		t.Fatal(err)
	}
	settleGroup(t, "Ward 4", all...)
	if n, j := memberDevices(t, f.alice, "Ward 4", f.bob.idFP); n != 2 || j != 2 {
		t.Fatalf("bob has %d devices listed, %d joined, want 2", n, j)
	}
	kept := groupRecord(t, ward, "Ward 4") // what the revoked device held
	oldState, err := group.Parse(kept.State)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := f.bob.RevokeDevice(ctx, "BOB-WARD"); err != nil {
		t.Fatal(err)
	}
	rest := f.all()
	gs := settleGroup(t, "Ward 4", rest...)
	if gs[0].Version <= oldState.Version {
		t.Fatalf("version %d after the revoke, %d before", gs[0].Version, oldState.Version)
	}
	for _, c := range rest {
		if n, _ := memberDevices(t, c, "Ward 4", f.bob.idFP); n != 1 {
			t.Fatalf("%s: bob has %d devices listed after the revoke, want 1", c.devID.Short(), n)
		}
	}
	rec := groupRecord(t, f.alice, "Ward 4")
	now, err := group.Parse(rec.State)
	if err != nil {
		t.Fatal(err)
	}
	if _, d := now.Device(ward.devID); d != nil {
		t.Fatal("the state still lists the revoked device")
	}
	if now.HeaderKey == oldState.HeaderKey || now.SendCap == oldState.SendCap {
		t.Fatal("the group's header key or send capability did not change")
	}
	own, err := senderkey.UnmarshalOwn(groupRecord(t, f.carol, "Ward 4").Own)
	if err != nil || own.Epoch() != 1 {
		t.Fatalf("carol's sender key epoch after the revoke: %v", err)
	}

	capture := captureGroup(f.carol)
	if _, err := f.carol.SendGroup(ctx, "Ward 4", "after the revoke", nil); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, rest...)
	for _, c := range []*Client{f.alice, f.office, f.bob} {
		if got := messagesLike(t, c, "after the revoke"); len(got) != 1 || got[0].From != "carol" {
			t.Fatalf("%s got %+v", c.devID.Short(), got)
		}
	}
	envs := capture()
	if len(envs) == 0 {
		t.Fatal("no group envelope captured")
	}
	if err := openWith(kept, envs[len(envs)-1]); err == nil {
		t.Fatal("the revoked device's keys open a message sent after the revoke")
	}
	// The send capability it knew is refused by the relay.
	tok, _ := protocol.CapabilityTokenFromBytes(oldState.SendCap[:])
	_, err = f.carol.anonRequest(ctx, oldState.Relay, "test", &protocol.SendFanout{Fanout: oldState.Fanout, Capability: tok, Envelope: envs[len(envs)-1]})
	if !protocol.IsCode(err, protocol.CodeFanoutCapability) {
		t.Fatalf("send with the old capability: %v", err)
	}
}

// TestTeamLaterLinkedStaffDevice: ann, on the team, links a device after
// she was added; the intake lists it in the staff group, and once it has
// joined sends it the team's secrets and the open conversations: it sees
// the patient's conversation and the patient's next message. Revoked,
// it is dropped and the team's secrets are replaced.
func TestTeamLaterLinkedStaffDevice(t *testing.T) {
	t.Parallel()
	f := newTeamFixtureStaff(t, 1)
	ctx := testCtx(t)
	ann := f.staff[0]
	if _, err := f.pat.Send(ctx, "Pharmacy", "Can I get a refill?"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.intake)
	syncConcurrently(t, f.staffDevices()...)
	patID := queueOf(t, ann[0], "pat").ID
	f.settleQueue(t, patID)

	third, _ := linkNew(t, ann[0], "ann-3")
	for range 10 {
		syncAll(t, 1, f.intake, ann[0], ann[1], third)
		if th, err := third.QueueThread(patID); err == nil && len(th) == 1 {
			break
		}
	}
	if n, j := memberDevices(t, f.intake, "Pharmacy", ann[0].idFP); n != 3 || j != 3 {
		t.Fatalf("the intake lists %d of ann's devices, %d joined, want 3", n, j)
	}
	if ts, err := third.Teams(); err != nil || len(ts) != 1 || ts[0].Name != "Pharmacy" {
		t.Fatalf("the new device's teams %+v, %v", ts, err)
	}
	if n := threadCount(t, third, patID, "Can I get a refill?"); n != 1 {
		t.Fatalf("the new device holds the patient's message %d times", n)
	}
	if _, err := f.pat.Send(ctx, "Pharmacy", "Is it ready?"); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		syncAll(t, 1, f.intake, third)
		if threadCount(t, third, patID, "Is it ready?") == 1 {
			break
		}
	}
	if n := threadCount(t, third, patID, "Is it ready?"); n != 1 {
		t.Fatalf("the new device holds the patient's next message %d times", n)
	}

	// ann revokes it: the intake drops it from the staff group and, as
	// for a staff member removed, replaces the team's secrets, which
	// reach ann's remaining devices.
	secrets := teamRecordOf(t, f.intake).Secrets
	if _, err := ann[0].RevokeDevice(ctx, "ann-3"); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		syncAll(t, 1, f.intake, ann[0], ann[1])
		if teamRecordOf(t, ann[1]).Secrets > secrets && teamRecordOf(t, ann[0]).Secrets > secrets {
			break
		}
	}
	if n, _ := memberDevices(t, f.intake, "Pharmacy", ann[0].idFP); n != 2 {
		t.Fatalf("the intake lists %d of ann's devices after the revoke, want 2", n)
	}
	want := teamRecordOf(t, f.intake).Secrets
	if want != secrets+1 {
		t.Fatalf("the team's secrets count %d after the revoke, %d before", want, secrets)
	}
	for _, c := range ann {
		if got := teamRecordOf(t, c).Secrets; got != want {
			t.Fatalf("%s holds the team's secrets %d, want %d", c.devID.Short(), got, want)
		}
	}
}

// TestOwedGroupStates: a failed state send is due again at once for the
// first owedFreeTries failures, then after a growing wait capped at
// owedMaxWait; a success forgets it; seeding owes what is not owed yet,
// once.
func TestOwedGroupStates(t *testing.T) {
	t.Parallel()
	var o owedGroupStates
	gid, dev, other := group.ID{1}, keys.Fingerprint{2}, keys.Fingerprint{3}
	now := time.Unix(1_800_000_000, 0)
	for i := 1; i <= owedFreeTries; i++ {
		o.fail(gid, dev, now)
		if got := o.due(now)[gid]; len(got) != 1 || got[0] != dev {
			t.Fatalf("after %d failures due %v", i, got)
		}
	}
	o.fail(gid, dev, now)
	if got := o.due(now); len(got) != 0 {
		t.Fatalf("due at once after %d failures: %v", owedFreeTries+1, got)
	}
	if got := o.due(now.Add(owedBackoff)); len(got[gid]) != 1 {
		t.Fatalf("not due after %v: %v", owedBackoff, got)
	}
	for range 100 {
		o.fail(gid, dev, now)
	}
	if len(o.due(now.Add(owedMaxWait-time.Second))) != 0 || len(o.due(now.Add(owedMaxWait))) != 1 {
		t.Fatal("the wait is not capped at owedMaxWait")
	}
	if !o.needsSeed() {
		t.Fatal("a new set needs no seed")
	}
	o.seed([]owedState{{gid, dev}, {gid, other}})
	if o.needsSeed() {
		t.Fatal("seeded twice")
	}
	if got := o.due(now)[gid]; len(got) != 1 || got[0] != other {
		t.Fatalf("after the seed due %v, want only the device not owed before", got)
	}
	o.done(gid, dev)
	o.done(gid, other)
	if got := o.due(now.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("after done due %v", got)
	}
}
