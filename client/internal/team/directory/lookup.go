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
// only the teams that invited an outsider (OutsiderView). It indexes the
// names once, so that each Lookup (one per keystroke in compose) only
// compares. It is immutable and safe for concurrent use; the entries it
// returns point into the directory it was made from.
type View struct {
	teams   []Team
	roles   []Role
	staff   []Staff
	entries []entry
}

// entry is one searchable team, role or person.
type entry struct {
	m         Match
	name      string   // lower-cased name
	nameWords []string // words of name
	words     []string // words of the whole searchable text
	id        []byte
}

// View returns the whole directory for lookup by its staff.
func (d *Directory) View() *View { return newView(d.Teams, d.Roles, d.Staff) }

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
	return newView(ts, nil, nil)
}

// Teams, Roles and Staff return what v shows (do not modify).
func (v *View) Teams() []Team  { return v.teams }
func (v *View) Roles() []Role  { return v.roles }
func (v *View) Staff() []Staff { return v.staff }

func newView(teams []Team, roles []Role, staff []Staff) *View {
	v := &View{teams: teams, roles: roles, staff: staff}
	teamWords := make(map[TeamID][]string, len(teams))
	add := func(m Match, name string, id []byte, words []string) {
		ln := strings.ToLower(name)
		nw := splitWords(ln)
		v.entries = append(v.entries, entry{m: m, name: ln, nameWords: nw, words: slices.Concat(nw, words), id: id})
	}
	for i := range teams {
		t := &teams[i]
		teamWords[t.ID] = splitWords(strings.ToLower(t.Name))
		add(Match{Kind: MatchTeam, Team: t}, t.Name, t.ID[:], nil)
	}
	for i := range roles {
		r := &roles[i]
		add(Match{Kind: MatchRole, Role: r}, r.Name, r.ID[:], slices.Clone(teamWords[r.Team]))
	}
	for i := range staff {
		s := &staff[i]
		w := splitWords(strings.ToLower(s.Title))
		for _, t := range s.Teams {
			w = append(w, teamWords[t]...)
		}
		add(Match{Kind: MatchStaff, Staff: s}, s.Name, s.Identity[:], w)
	}
	return v
}

// Lookup is View().Lookup; make the View once for many lookups.
func (d *Directory) Lookup(query string, max int) []Match { return d.View().Lookup(query, max) }

// Lookup finds the teams, role accounts and staff for compose. The query
// and the names are compared in lower case, word by word (a word is a run
// of letters and digits): an entry matches if every word of the query
// begins a word of its searchable text, which is, for a team, its name;
// for a role account, its name and its team's name; for staff, their
// name, role title and teams' names. So "pha" finds the team Pharmacy,
// the role "Pharmacy on call" and every pharmacist; "on call" finds the
// role. Results come best first: those whose name begins with the whole
// query, then those with a word of the name beginning with a one-word
// query, then the rest; in each, teams, roles, then staff, by name and
// then by ID. At most max results (max <= 0: all). A query with no letter
// or digit finds nothing.
func (v *View) Lookup(query string, max int) []Match {
	q := strings.ToLower(strings.TrimSpace(query))
	qw := splitWords(q)
	if len(qw) == 0 {
		return nil
	}
	type scored struct {
		e     *entry
		score int
	}
	var found []scored
	for i := range v.entries {
		e := &v.entries[i]
		if !slices.ContainsFunc(qw, func(w string) bool { return !hasWordPrefix(e.words, w) }) {
			score := 2
			switch {
			case strings.HasPrefix(e.name, q):
				score = 0
			case len(qw) == 1 && hasWordPrefix(e.nameWords, qw[0]):
				score = 1
			}
			found = append(found, scored{e, score})
		}
	}
	if len(found) == 0 {
		return nil
	}
	slices.SortFunc(found, func(a, b scored) int {
		if a.score != b.score {
			return a.score - b.score
		}
		if a.e.m.Kind != b.e.m.Kind {
			return int(a.e.m.Kind) - int(b.e.m.Kind)
		}
		if c := strings.Compare(a.e.name, b.e.name); c != 0 {
			return c
		}
		return bytes.Compare(a.e.id, b.e.id)
	})
	if max > 0 && len(found) > max {
		found = found[:max]
	}
	out := make([]Match, len(found))
	for i, f := range found {
		out[i] = f.e.m
	}
	return out
}

// hasWordPrefix reports whether some word begins with w.
func hasWordPrefix(words []string, w string) bool {
	for _, t := range words {
		if strings.HasPrefix(t, w) {
			return true
		}
	}
	return false
}

// splitWords splits s into runs of letters and digits.
func splitWords(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}
