package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/group"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/audit"
	"github.com/postern/postern/relay/relaytest"
	"github.com/postern/postern/relay/store/bboltstore"
)

// staffLeaf is the leaf the relay of c logs for team's staff list (no
// proof checked: the test compares it with what the clients hold).
func staffLeaf(t *testing.T, c *Client, team keys.Fingerprint, gid group.ID) *protocol.DirectoryLeaf {
	t.Helper()
	resp, err := c.anonRequest(testCtx(t), c.relay, staffLogAnonKey, &protocol.FetchDirectory{LogKey: staffLogKey(team, gid)})
	if err != nil {
		t.Fatal(err)
	}
	leaf, ok := resp.(*protocol.DirectoryLeaf)
	if !ok {
		t.Fatalf("answer %T", resp)
	}
	return leaf
}

// staffGroupOf returns c's record of the staff group and its state.
func staffGroupOf(t *testing.T, c *Client) (*store.GroupRecord, *group.State) {
	t.Helper()
	var (
		rec *store.GroupRecord
		s   *group.State
	)
	if err := c.st.view(func(t *tx) error {
		tr, err := t.lookupTeam("Pharmacy")
		if err != nil {
			return err
		}
		if rec, err = t.Group(tr.ID); err != nil || rec == nil {
			return errors.Join(err, ErrUnknownGroup)
		}
		s, err = groupOf(rec)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return rec, s
}

// heldStates returns the staff-group states c holds for the team's log.
func heldStates(t *testing.T, c *Client, gid group.ID) []store.HeldState {
	t.Helper()
	var p *store.GroupPending
	if err := c.st.view(func(t *tx) (err error) { p, err = t.GroupPending(gid[:]); return err }); err != nil {
		t.Fatal(err)
	}
	return p.Held
}

// checkLogged fails unless the relay's log shows the staff list the
// intake holds, and every device in cs holds that state, marked as
// checked against the log.
func (f *teamFixture) checkLogged(t *testing.T, cs ...*Client) {
	t.Helper()
	_, want := staffGroupOf(t, f.intake)
	leaf := staffLeaf(t, f.intake, f.intake.idFP, want.Group)
	if leaf.Hash != staffListHash(want) || leaf.Version > want.Version {
		t.Fatalf("the log shows version %d, the intake holds %d (hash equal: %v)", leaf.Version, want.Version, leaf.Hash == staffListHash(want))
	}
	for _, c := range cs {
		rec, s := staffGroupOf(t, c)
		if s.Version != want.Version || staffListHash(s) != leaf.Hash || !bytes.Equal(rec.StaffLog, f.intake.idFP[:]) {
			t.Fatalf("%s holds version %d (log %d, intake %d), staff log %x", c.name, s.Version, leaf.Version, want.Version, rec.StaffLog)
		}
	}
}

// TestStaffListLogged: the team's staff list is in the relay's
// transparency log at every AddStaff (the fixture) and RemoveStaff, and
// every staff device takes each logged state; the relay's log still
// verifies offline (kt verify) with these leaves; a change whose staff
// list cannot be logged is not made.
func TestStaffListLogged(t *testing.T) {
	t.Parallel() // each has its own relay and clients; the slowest tests of the package overlap
	f := newTeamFixture(t)
	ctx := testCtx(t)
	f.checkLogged(t, f.staffDevices()...)
	_, before := staffGroupOf(t, f.intake)
	if _, err := f.intake.RemoveStaff(ctx, "Pharmacy", "cal"); err != nil {
		t.Fatal(err)
	}
	remaining := []*Client{f.staff[0][0], f.staff[0][1], f.staff[1][0], f.staff[1][1]}
	syncAll(t, 2, append(remaining, f.staff[2][:]...)...)
	f.checkLogged(t, remaining...)
	_, after := staffGroupOf(t, f.intake)
	if after.Version <= before.Version || after.Member(f.staff[2][0].idFP) != nil {
		t.Fatalf("after the removal the intake holds version %d (before %d)", after.Version, before.Version)
	}
	// The removed member's devices took the removal, which the log shows
	// too (its secrets zero, the same staff list).
	for _, c := range f.staff[2] {
		rec, s := staffGroupOf(t, c)
		if !rec.Removed || s.Version != after.Version {
			t.Fatalf("%s: removed %v at version %d", c.name, rec.Removed, s.Version)
		}
	}
	// The relay's log, with these leaves, verifies offline.
	f.srv.Stop()
	defer f.srv.Start()
	// A staff change whose staff list cannot be logged (the relay down)
	// is not made.
	short, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := f.intake.AddStaff(short, "Pharmacy", "cal"); !errors.Is(err, ErrStaffListLog) {
		t.Fatalf("AddStaff with the relay down: %v", err)
	}
	if _, s := staffGroupOf(t, f.intake); s.Version != after.Version || s.Member(f.staff[2][0].idFP) != nil {
		t.Fatalf("the failed AddStaff changed the staff group: version %d", s.Version)
	}
	pub, err := audit.ReadPublicKey(filepath.Join(f.srv.DataDir, audit.PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := bboltstore.VerifyKT(filepath.Join(f.srv.DataDir, relay.DBFile), pub)
	if err != nil || rep.Size == 0 {
		t.Fatalf("kt verify: %+v, %v", rep, err)
	}
}

// TestStaffListRefused: states of the staff list that the team signs but
// does not log. A state above the logged version is held on the staff
// device that gets it (its version unchanged) and taken once the log
// shows it; a state whose version the log shows with another staff list
// (a fork), and one below the logged version (a rollback), are refused
// with ErrStaffListRefused and EventTransparency, changing nothing.
func TestStaffListRefused(t *testing.T) {
	t.Parallel() // each has its own relay and clients; the slowest tests of the package overlap
	f := newTeamFixture(t)
	ctx := testCtx(t)
	_, held := staffGroupOf(t, f.intake)
	v := held.Version
	// Three states the team signs, each with another staff list (a
	// renamed member), sent as the intake sends its states.
	signed := func(version uint64, name string) *group.State {
		s := held.Clone()
		s.Version = version
		s.Members[0].Name = name
		if _, err := group.Sign(s, f.intake.id); err != nil {
			t.Fatal(err)
		}
		return s
	}
	rollback, fork, ahead := signed(v+1, "rolled back"), signed(v+2, "forked"), signed(v+2, "logged later")
	ann, ben, cal := f.staff[0][0], f.staff[1][0], f.staff[2][0]
	send := func(s *group.State, to *Client) {
		f.intake.sendGroupState(ctx, s, nil, []keys.Fingerprint{to.devID}, nil)
	}

	// Not logged: held on ben, his version unchanged.
	send(ahead, ben)
	syncAll(t, 2, ben)
	if _, s := staffGroupOf(t, ben); s.Version != v {
		t.Fatalf("ben took a state the log does not show: version %d", s.Version)
	}
	if h := heldStates(t, ben, held.Group); len(h) != 1 || h[0].Version != v+2 {
		t.Fatalf("ben holds %+v", h)
	}

	// The team logs the state ahead (as the intake would before sending
	// it): ben takes it at his next Sync.
	var capability protocol.CapabilityToken
	if err := f.intake.st.view(func(t *tx) error {
		r, err := t.lookupTeam("Pharmacy")
		if err == nil {
			capability, err = protocol.CapabilityTokenFromBytes(r.StaffLogCap)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.intake.publishStaffLeaf(ctx, capability, staffLogKey(f.intake.idFP, held.Group), v+2, staffListHash(ahead)); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, ben)
	if _, s := staffGroupOf(t, ben); s.Version != v+2 || s.Members[0].Name != "logged later" {
		t.Fatalf("ben did not take the logged state: version %d", s.Version)
	}
	if h := heldStates(t, ben, held.Group); len(h) != 0 {
		t.Fatalf("ben still holds %+v", h)
	}

	// A fork on cal (another staff list under the logged version) and a
	// rollback on ann (below it): refused, reported, nothing changed.
	for _, tc := range []struct {
		name  string
		c     *Client
		s     *group.State
		cause error
	}{
		{"fork", cal, fork, kt.ErrFork},
		{"rollback", ann, rollback, kt.ErrRollback},
	} {
		before, _ := staffGroupOf(t, tc.c)
		events, err := tc.c.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		send(tc.s, tc.c)
		syncAll(t, 1, tc.c)
		var got error
	drain:
		for {
			select {
			case e := <-events:
				if e.Kind == EventTransparency && e.Team == "Pharmacy" {
					got = e.Err
				}
			default:
				break drain
			}
		}
		if !errors.Is(got, ErrStaffListRefused) || !errors.Is(got, tc.cause) {
			t.Fatalf("%s: event error %v", tc.name, got)
		}
		after, _ := staffGroupOf(t, tc.c)
		if after.Version != before.Version || !bytes.Equal(after.State, before.State) {
			t.Fatalf("%s: the held state changed: version %d, was %d", tc.name, after.Version, before.Version)
		}
		if h := heldStates(t, tc.c, held.Group); len(h) != 0 {
			t.Fatalf("%s: still holds %+v", tc.name, h)
		}
	}
}

// TestStaffListManyAdds: a team's intake adds 10 staff in a row, without
// waiting, and every one of the 10 staff lists is logged, at or below the
// version of the state that carries it (devices joining raise the state's
// version, not the staff list's), each above the one before (the relay's directory-publish allowance
// is its own, not the 6 device-list publishes of section 6).
func TestStaffListManyAdds(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	ctx := testCtx(t)
	intake, _ := newTestClient(t, srv, "Pharmacy")
	const n = 10
	names := make([]string, n)
	staff := make([]*Client, n)
	for i := range n {
		names[i] = fmt.Sprintf("staff%d", i)
		staff[i], _ = newTestClient(t, srv, names[i])
		befriend(t, intake, staff[i], "Pharmacy")
	}
	if _, err := intake.CreateTeam(ctx, "Pharmacy"); err != nil {
		t.Fatal(err)
	}
	_, s := staffGroupOf(t, intake)
	prev := staffLeaf(t, intake, intake.idFP, s.Group).Version
	for i, name := range names {
		if _, err := intake.AddStaff(ctx, "Pharmacy", name); err != nil {
			t.Fatalf("AddStaff %d: %v", i+1, err)
		}
		_, s := staffGroupOf(t, intake)
		leaf := staffLeaf(t, intake, intake.idFP, s.Group)
		if leaf.Version > s.Version || leaf.Hash != staffListHash(s) || leaf.Version <= prev || s.Member(staff[i].idFP) == nil {
			t.Fatalf("after AddStaff %d the log shows version %d (before %d), the intake holds %d (hash equal: %v)",
				i+1, leaf.Version, prev, s.Version, leaf.Hash == staffListHash(s))
		}
		prev = leaf.Version
	}
	// The last one added takes the logged state.
	settleGroup(t, "Pharmacy", intake, staff[n-1])
	_, want := staffGroupOf(t, intake)
	if rec, got := staffGroupOf(t, staff[n-1]); got.Version != want.Version || staffListHash(got) != staffListHash(want) || !bytes.Equal(rec.StaffLog, intake.idFP[:]) {
		t.Fatalf("the last staff member holds version %d, the intake %d (logged %d)", got.Version, want.Version, prev)
	}
}
