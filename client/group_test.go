package client

import (
	"testing"

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
}
