package directory

import (
	"slices"
	"testing"
)

func names(ms []Match) []string {
	var out []string
	for _, m := range ms {
		switch m.Kind {
		case MatchTeam:
			out = append(out, "team:"+m.Team.Name)
		case MatchRole:
			out = append(out, "role:"+m.Role.Name)
		case MatchStaff:
			out = append(out, m.Staff.Name)
		}
	}
	return out
}

func TestLookup(t *testing.T) {
	d := sampleDirectory(t)
	signed(t, d, "admin")
	for _, tc := range []struct {
		query string
		want  []string
	}{
		// Names first, then the team's members by their team.
		{"pha", []string{"team:Pharmacy", "role:Pharmacy on call", "Alice Martin", "Bob O'Neill", "Carol Dubois"}},
		{"PHARM", []string{"team:Pharmacy", "role:Pharmacy on call", "Alice Martin", "Bob O'Neill", "Carol Dubois"}},
		{"on call", []string{"role:Pharmacy on call"}},
		{"mar", []string{"Alice Martin"}},
		{"neill", []string{"Bob O'Neill"}},
		{"o'neill", []string{"Bob O'Neill"}},
		{"radio", []string{"team:Radiology", "Carol Dubois", "Dan Smith"}},
		{"radiog", []string{"Dan Smith"}},
		{"carol rad", []string{"Carol Dubois"}},
		{"smith pharm", nil},
		{"artin", nil},
		{"", nil},
		{"  ", nil},
		{"--", nil},
	} {
		t.Run(tc.query, func(t *testing.T) {
			if got := names(d.Lookup(tc.query, 0)); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	if got := d.Lookup("pha", 2); len(got) != 2 {
		t.Fatalf("max 2: %d", len(got))
	}
	// A name beginning with the query comes before one matched by a later
	// word or by its team.
	if got := names(d.Lookup("d", 0)); !slices.Equal(got, []string{"Dan Smith", "Carol Dubois"}) {
		t.Fatalf("d: %q", got)
	}
}

// TestOutsiderView: an outsider sees only the teams that invited them: no
// staff, no role accounts, no other team.
func TestOutsiderView(t *testing.T) {
	d := sampleDirectory(t)
	signed(t, d, "admin")
	v := d.OutsiderView(map[TeamID]bool{pharmacy: true, teamID(0x99): true})
	if len(v.Teams()) != 1 || v.Teams()[0].ID != pharmacy || v.Staff() != nil || v.Roles() != nil {
		t.Fatalf("outsider view: %+v", v)
	}
	if got := names(v.Lookup("pha", 0)); !slices.Equal(got, []string{"team:Pharmacy"}) {
		t.Fatalf("outsider lookup pha: %q", got)
	}
	for _, q := range []string{"rad", "alice", "on call", "pharmacist"} {
		if got := v.Lookup(q, 0); got != nil {
			t.Fatalf("outsider lookup %q found %q", q, names(got))
		}
	}
	if v := d.OutsiderView(nil); len(v.Teams()) != 0 {
		t.Fatal("an outsider with no invitation sees a team")
	}
}
