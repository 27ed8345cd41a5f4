package client

import (
	"fmt"
	"testing"
)

// roleOwed reports whether c keeps the handover of role onCall owed.
func roleOwed(t *testing.T, c *Client) bool {
	t.Helper()
	var owed bool
	if err := c.st.view(func(t *tx) error {
		d, _, err := c.heldDirectory(t)
		if err != nil || d == nil {
			return fmt.Errorf("no directory: %v", err)
		}
		r := heldRole(d, onCall)
		if r == nil {
			return ErrUnknownRole
		}
		st, err := getRoleState(t, r.ID)
		if err != nil {
			return err
		}
		owed = st.Owed
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return owed
}

// TestRoleHandoverOwed: ann holds the role account and owns pat's
// conversation of the role. ben takes the role while the relay is down
// (his other device switched off): his device cannot write the handover,
// and keeps it owed. Once the relay is back, his device's next
// maintenance moves pat's conversation to him, assigned by ann, on every
// device; his other device, switched on again, shows the same.
func TestRoleHandoverOwed(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	o := newRoleOrg(t)
	everyone := append([]*Client{o.admin}, o.staffDevices()...)
	if _, err := o.ann[0].TakeRole(ctx, onCall); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, everyone...)
	code, err := o.intake.TeamInviteRole(ctx, "Pharmacy", onCall)
	if err != nil {
		t.Fatal(err)
	}
	o.outsider(t, "pat", code, "refill please")
	pat := o.waitOwner(t, "pat", "claimed", "ann")

	benHome := o.ben[1].home
	o.ben[1].Close()
	o.srv.Stop()
	if ri, err := o.ben[0].TakeRole(ctx, onCall); err != nil || ri.Holder != Me || ri.Seq != 2 {
		t.Fatalf("take while the relay is down: %+v, %v", ri, err)
	}
	if !roleOwed(t, o.ben[0]) {
		t.Fatal("the handover the relay did not answer is not kept owed")
	}
	o.srv.Start()

	// The rounds are a hang guard, not a timing assertion.
	devs := []*Client{o.intake, o.ann[0], o.ann[1], o.ben[0], o.cal}
	check := func(cs []*Client) error {
		for _, c := range cs {
			it, err := o.itemOf(c, "pat")
			owner, by := "ben", "ann"
			switch o.person(c) {
			case "ben":
				owner = Me
			case "ann":
				by = Me
			}
			switch {
			case err != nil:
				return err
			case it.ID != pat:
				return fmt.Errorf("%s: pat's conversation is %s, was %s", c.name, it.ID, pat)
			case it.State != "assigned" || it.Owner != owner || it.AssignedBy != by:
				return fmt.Errorf("%s: pat's conversation %s owned by %q assigned by %q; want assigned to %q by %q",
					c.name, it.State, it.Owner, it.AssignedBy, owner, by)
			}
		}
		return nil
	}
	var last error
	for range 10 {
		syncConcurrently(t, devs...)
		if last = check(devs); last == nil {
			break
		}
	}
	if last != nil {
		t.Fatal(last)
	}
	if roleOwed(t, o.ben[0]) {
		t.Fatal("the handover carried out is still owed")
	}

	opts := testOpts()
	opts.Directory = o.enrol
	ben1, err := Dial(ctx, benHome, testPass, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ben1.Close() })
	o.ben[1] = ben1
	for range 10 {
		syncConcurrently(t, ben1, o.ben[0])
		if last = check([]*Client{ben1}); last == nil {
			break
		}
	}
	if last != nil {
		t.Fatal(last)
	}
	o.wantHolder(t, "ben", 2, append(devs[1:], ben1)...)
}
