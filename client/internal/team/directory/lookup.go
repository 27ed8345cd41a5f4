package directory

import (
	"bytes"
	"slices"
	"strings"
	"unicode"
)

// MatchKind says what a Match is.
type MatchKind uint8

const (
	MatchTeam  MatchKind = 1
	MatchRole  MatchKind = 2
	MatchStaff MatchKind = 3
)

// Match is one result of Lookup: exactly one of Team, Role and Staff is
// set, by Kind. They point into the directory: do not modify.
type Match struct {
	Kind  MatchKind
	Team  *Team
	Role  *Role
	Staff *Staff
}

// View is what a person may look up: a whole directory for its staff, or
// only the teams that invited an outsider (OutsiderView).
type View struct {
	Teams []Team
	Roles []Role
	Staff []Staff
	names map[TeamID]string
}

// View returns the whole directory for lookup by its staff.
func (d *Directory) View() *View {
	return &View{Teams: d.Teams, Roles: d.Roles, Staff: d.Staff, names: teamNames(d.Teams)}
}

// OutsiderView returns what an outsider may see: only the teams whose IDs
// are in invited (the teams that invited them), no staff and no role
// accounts.
func (d *Directory) OutsiderView(invited map[TeamID]bool) *View {
	var ts []Team
	for _, t := range d.Teams {
		if invited[t.ID] {
			ts = append(ts, t)
		}
	}
	return &View{Teams: ts, names: teamNames(ts)}
}

func teamNames(ts []Team) map[TeamID]string {
	m := make(map[TeamID]string, len(ts))
	for _, t := range ts {
		m[t.ID] = t.Name
	}
	return m
}

// Lookup is View().Lookup.
func (d *Directory) Lookup(query string, max int) []Match { return d.View().Lookup(query, max) }

// Lookup finds the teams, role accounts and staff for compose. The query
// and the names are compared in lower case, word by word (a word is a run
// of letters and digits): an entry matches if every word of the query
// begins a word of its searchable text, which is, for a team, its name;
// for a role account, its name and its team's name; for staff, their
// name, role title and teams' names. So "pha" finds the team Pharmacy,
// the role "Pharmacy on call" and every pharmacist; "on call" finds the
// role. Results come best first: those whose name begins with the whole
// query, then those with a word of the name beginning with it, then the
// rest; in each, teams, roles, then staff, by name and then by ID. At most
// max results (max <= 0: all). A query with no letter or digit finds
// nothing.
func (v *View) Lookup(query string, max int) []Match {
	q := strings.ToLower(strings.TrimSpace(query))
	qw := words(q)
	if len(qw) == 0 {
		return nil
	}
	type scored struct {
		m     Match
		score int
		name  string
		id    []byte
	}
	var found []scored
	consider := func(m Match, name string, id []byte, text ...string) {
		var tw []string
		for _, t := range text {
			tw = append(tw, words(strings.ToLower(t))...)
		}
		for _, w := range qw {
			if !slices.ContainsFunc(tw, func(t string) bool { return strings.HasPrefix(t, w) }) {
				return
			}
		}
		ln := strings.ToLower(name)
		score := 2
		switch {
		case strings.HasPrefix(ln, q):
			score = 0
		case slices.ContainsFunc(words(ln), func(t string) bool { return strings.HasPrefix(t, qw[0]) }) && len(qw) == 1:
			score = 1
		}
		found = append(found, scored{m, score, ln, id})
	}
	for i := range v.Teams {
		t := &v.Teams[i]
		consider(Match{Kind: MatchTeam, Team: t}, t.Name, t.ID[:], t.Name)
	}
	for i := range v.Roles {
		r := &v.Roles[i]
		consider(Match{Kind: MatchRole, Role: r}, r.Name, r.ID[:], r.Name, v.names[r.Team])
	}
	for i := range v.Staff {
		s := &v.Staff[i]
		text := []string{s.Name, s.Title}
		for _, t := range s.Teams {
			text = append(text, v.names[t])
		}
		consider(Match{Kind: MatchStaff, Staff: s}, s.Name, s.Identity[:], text...)
	}
	slices.SortFunc(found, func(a, b scored) int {
		if a.score != b.score {
			return a.score - b.score
		}
		if a.m.Kind != b.m.Kind {
			return int(a.m.Kind) - int(b.m.Kind)
		}
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return bytes.Compare(a.id, b.id)
	})
	if len(found) == 0 {
		return nil
	}
	if max > 0 && len(found) > max {
		found = found[:max]
	}
	out := make([]Match, len(found))
	for i, f := range found {
		out[i] = f.m
	}
	return out
}

// words splits s into runs of letters and digits.
func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}
