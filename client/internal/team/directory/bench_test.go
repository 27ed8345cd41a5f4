package directory

import (
	"fmt"
	"testing"

	"github.com/postern/postern/keys"
)

// fullDirectory is a directory at every limit (MaxDirectorySize bytes).
func fullDirectory(b testing.TB) []byte {
	d := &Directory{Org: testOrg, Version: 1, Issued: issued, Admins: []keys.Fingerprint{fp(b, "admin")}}
	for i := range MaxAdmins - 1 {
		d.Admins = append(d.Admins, keys.Fingerprint{byte(i + 1)})
	}
	d.Admins = sortedFP(d.Admins...)
	for i := range MaxTeams {
		d.Teams = append(d.Teams, Team{ID: TeamID{byte(i >> 8), byte(i)}, Name: fmt.Sprintf("Team %03d ward %s", i, "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwx")})
	}
	all := make([]TeamID, MaxTeamsPerEntry)
	for i := range all {
		all[i] = d.Teams[i*3].ID
	}
	for i := range MaxStaff {
		d.Staff = append(d.Staff, Staff{Identity: keys.Fingerprint{byte(i >> 8), byte(i), 1},
			Name: fmt.Sprintf("Person %04d %052d", i, i), Title: fmt.Sprintf("Title %058d", i), Teams: all})
	}
	for i := range MaxRoles {
		d.Roles = append(d.Roles, Role{ID: RoleID{byte(i >> 8), byte(i)}, Name: fmt.Sprintf("Role %059d", i), Team: all[0], Holder: d.Staff[i].Identity})
	}
	return signed(b, d, "admin")
}

// BenchmarkAcceptFull: decoding, checking and verifying a directory of
// MaxDirectorySize bytes.
func BenchmarkAcceptFull(b *testing.B) {
	enc := fullDirectory(b)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Accept(Anchor{Org: testOrg, Admins: []keys.Fingerprint{fp(b, "admin")}}, enc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLookupFull: one compose lookup over 5000 staff, 500 teams and
// 500 roles.
func BenchmarkLookupFull(b *testing.B) {
	d, err := Parse(fullDirectory(b))
	if err != nil {
		b.Fatal(err)
	}
	v := d.View()
	b.ReportAllocs()
	for b.Loop() {
		if len(v.Lookup("person 12", 20)) == 0 {
			b.Fatal("nothing found")
		}
	}
}

func BenchmarkRoute(b *testing.B) {
	d := sampleDirectory(b)
	signed(b, d, "admin")
	st := map[keys.Fingerprint]*Status{}
	for _, p := range [][2]string{{"alice", "bob"}, {"bob", "carol"}, {"carol", "dan"}} {
		s := &Status{Org: testOrg, Time: issued, State: OffDuty, Forward: fp(b, p[1])}
		if _, err := s.Sign(who(b, p[0])); err != nil {
			b.Fatal(err)
		}
		st[s.Subject] = s
	}
	alice := fp(b, "alice")
	for b.Loop() {
		if r, err := d.Route(alice, issued, func(f keys.Fingerprint) *Status { return st[f] }); err != nil || r.To != fp(b, "dan") {
			b.Fatal(r, err)
		}
	}
}

// TestFullDirectory: the benchmarks' directory is at every limit.
func TestFullDirectory(t *testing.T) {
	if b := fullDirectory(t); len(b) != MaxDirectorySize {
		t.Fatalf("%d bytes, want %d", len(b), MaxDirectorySize)
	}
}

// BenchmarkViewFull: indexing a full directory for lookup (once per
// directory version).
func BenchmarkViewFull(b *testing.B) {
	d, err := Parse(fullDirectory(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		d.View()
	}
}
