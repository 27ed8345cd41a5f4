package client

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/relay/relaytest"
)

// teamFixture is a team on one relay: the intake profile "Pharmacy",
// three staff (ann, ben, cal) with two devices each, contacts of each
// other and of the team, and two patients (pat, quinn), contacts of the
// team only.
type teamFixture struct {
	srv        *relaytest.Server
	intake     *Client
	staff      [3][2]*Client // per person, its two devices
	names      [3]string
	pat, quinn *Client
	// added: the first added staff are on the team (all three unless
	// the test adds the last ones itself).
	added int
}

// staffDevices are the devices of the staff on the team (six when all
// three are).
func (f *teamFixture) staffDevices() []*Client {
	var out []*Client
	for _, p := range f.staff[:f.added] {
		out = append(out, p[0], p[1])
	}
	return out
}

// all is every client of the fixture.
func (f *teamFixture) all() []*Client {
	return append([]*Client{f.intake, f.pat, f.quinn}, f.staffDevices()...)
}

func newTeamFixture(t *testing.T) *teamFixture {
	t.Helper()
	return newTeamFixtureStaff(t, 3)
}

// newTeamFixtureStaff is newTeamFixture with only the first added staff
// on the team; the others are contacts of the team and of each other, as
// in the full fixture.
func newTeamFixtureStaff(t *testing.T, added int) *teamFixture {
	t.Helper()
	f := &teamFixture{srv: relaytest.New(t, nil), names: [3]string{"ann", "ben", "cal"}, added: added}
	f.intake, _ = newTestClient(t, f.srv, "Pharmacy")
	for i, n := range f.names {
		f.staff[i][0], _ = newTestClient(t, f.srv, n)
		befriend(t, f.intake, f.staff[i][0], "Pharmacy")
	}
	befriend(t, f.staff[0][0], f.staff[1][0], "ann")
	befriend(t, f.staff[0][0], f.staff[2][0], "ann")
	befriend(t, f.staff[1][0], f.staff[2][0], "ben")
	f.pat, _ = newTestClient(t, f.srv, "pat")
	f.quinn, _ = newTestClient(t, f.srv, "quinn")
	befriend(t, f.intake, f.pat, "Pharmacy")
	befriend(t, f.intake, f.quinn, "Pharmacy")
	for i, n := range f.names {
		f.staff[i][1], _ = linkNew(t, f.staff[i][0], n+"-2")
	}
	all := []*Client{f.intake, f.pat, f.quinn}
	for _, p := range f.staff {
		all = append(all, p[0], p[1])
	}
	syncAll(t, 3, all...)
	ctx := testCtx(t)
	if _, err := f.intake.CreateTeam(ctx, "Pharmacy"); err != nil {
		t.Fatal(err)
	}
	for _, n := range f.names[:added] {
		if _, err := f.intake.AddStaff(ctx, "Pharmacy", n); err != nil {
			t.Fatal(err)
		}
	}
	settleGroup(t, "Pharmacy", append([]*Client{f.intake}, f.staffDevices()...)...)
	for _, c := range f.staffDevices() {
		if ts, err := c.Teams(); err != nil || len(ts) != 1 || ts[0].Name != "Pharmacy" || ts[0].Intake {
			t.Fatalf("%s: teams %+v, %v", c.name, ts, err)
		}
	}
	return f
}

// settleQueue syncs the intake and the staff devices until every staff
// device holds queue conversation id at one version, and returns that
// version's items, one per staff device.
func (f *teamFixture) settleQueue(t *testing.T, id string) []QueueItem {
	t.Helper()
	devs := f.staffDevices()
	var last error
	for range 6 {
		syncAll(t, 1, f.intake)
		syncConcurrently(t, devs...)
		var items []QueueItem
		last = nil
		for _, c := range devs {
			it, err := c.queueItem(id)
			if err != nil {
				last = fmt.Errorf("%s: %w", c.devID.Short(), err)
				break
			}
			if len(items) > 0 && it.Version != items[0].Version {
				last = fmt.Errorf("%s at version %d, another at %d", c.devID.Short(), it.Version, items[0].Version)
				break
			}
			items = append(items, it)
		}
		if last == nil {
			return items
		}
	}
	t.Fatalf("queue conversation did not settle: %v", last)
	return nil
}

// waitQueue waits until every staff device holds queue conversation id
// at version min or later, all at one version, and returns that version's
// items, one per staff device. The devices are connected (each synced
// before) and the team's messages are pushed to them, so it first only
// looks, for a while; a look that has not settled is followed by a
// round of syncs (a reconnection each, the costly part under -race), at
// most six. The waits are a hang guard, not a timing assertion: a slow
// machine only syncs more.
func (f *teamFixture) waitQueue(t *testing.T, id string, min uint64) []QueueItem {
	t.Helper()
	devs := f.staffDevices()
	var last error
	look := func() []QueueItem {
		items := make([]QueueItem, 0, len(devs))
		for _, c := range devs {
			it, err := c.queueItem(id)
			switch {
			case err != nil:
				last = fmt.Errorf("%s: %w", c.devID.Short(), err)
				return nil
			case it.Version < min:
				last = fmt.Errorf("%s at version %d, want %d or later", c.devID.Short(), it.Version, min)
				return nil
			case len(items) > 0 && it.Version != items[0].Version:
				last = fmt.Errorf("%s at version %d, another at %d", c.devID.Short(), it.Version, items[0].Version)
				return nil
			}
			items = append(items, it)
		}
		return items
	}
	for round := range 7 {
		if round > 0 {
			syncAll(t, 1, f.intake)
			syncConcurrently(t, devs...)
		}
		for range 100 {
			if items := look(); items != nil {
				return items
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Fatalf("queue conversation did not settle: %v", last)
	return nil
}

// syncConcurrently syncs every client once, all at the same time: each
// has its own store and connections, and a round of syncs is mostly
// waiting on the relay.
func syncConcurrently(t *testing.T, cs ...*Client) {
	t.Helper()
	ctx := testCtx(t)
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Sync(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("Sync: %v", err)
		}
	}
}

// queueOf returns the one queue conversation of the outsider named who on c.
func queueOf(t *testing.T, c *Client, who string) QueueItem {
	t.Helper()
	items, err := c.Queue("Pharmacy", QueueAll)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.Outsider == who {
			return it
		}
	}
	t.Fatalf("no queue conversation with %s in %+v", who, items)
	return QueueItem{}
}

// errIsOne reports whether err is one of targets.
func errIsOne(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// restrictedByIntake syncs the intake until it has restricted the contact
// named who at level (0: not restricted): a staff request is carried out
// after the receive that brought it, possibly by the intake's live
// connection rather than the Sync.
func (f *teamFixture) restrictedByIntake(t *testing.T, who string, level Restriction) {
	t.Helper()
	var got Restriction
	for range 20 {
		syncAll(t, 1, f.intake)
		cs, err := f.intake.Contacts()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.Name == who {
				got = c.RestrictedByMe
			}
		}
		if got == level {
			return
		}
	}
	t.Fatalf("the intake restricts %s at %d, want %d", who, got, level)
}
