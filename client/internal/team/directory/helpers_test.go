package directory

import (
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
)

// person returns a deterministic identity: its two seeds are SHA-256 of
// the name and of the name with a suffix.
func person(t testing.TB, name string) *identity.Identity {
	t.Helper()
	ed := sha256.Sum256([]byte(name))
	ml := sha256.Sum256([]byte(name + " ml-dsa"))
	b := append([]byte{0x20, 0x01}, ed[:]...)
	id, err := identity.ParseIdentitySecret(append(b, ml[:]...))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

var people = struct {
	sync.Mutex
	m map[string]*identity.Identity
}{m: map[string]*identity.Identity{}}

// who returns the cached identity of name.
func who(t testing.TB, name string) *identity.Identity {
	people.Lock()
	defer people.Unlock()
	if id := people.m[name]; id != nil {
		return id
	}
	id := person(t, name)
	people.m[name] = id
	return id
}

func fp(t testing.TB, name string) keys.Fingerprint { return who(t, name).Public().Fingerprint() }

func teamID(b byte) TeamID { return TeamID{b, b} }

var (
	testOrg   = OrgID{'h', 'o', 's', 'p', 'i', 't', 'a', 'l'}
	pharmacy  = teamID(0x10)
	radiology = teamID(0x20)
	onCall    = RoleID{0x30}
	issued    = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
)

// sampleDirectory is version 1 of a small hospital: two admins (admin,
// it), two teams, four staff, one role account held by alice.
func sampleDirectory(t testing.TB) *Directory {
	t.Helper()
	d := &Directory{
		Org:     testOrg,
		Version: 1,
		Issued:  issued,
		Admins:  sortedFP(fp(t, "admin"), fp(t, "it")),
		Teams: []Team{
			{ID: pharmacy, Name: "Pharmacy", Group: [16]byte{0xaa}},
			{ID: radiology, Name: "Radiology", Group: [16]byte{0xbb}},
		},
		Staff: sortStaff([]Staff{
			{Identity: fp(t, "alice"), Name: "Alice Martin", Title: "Pharmacist", Teams: []TeamID{pharmacy}},
			{Identity: fp(t, "bob"), Name: "Bob O'Neill", Title: "Pharmacy technician", Teams: []TeamID{pharmacy}},
			{Identity: fp(t, "carol"), Name: "Carol Dubois", Title: "Radiologist", Teams: []TeamID{pharmacy, radiology}},
			{Identity: fp(t, "dan"), Name: "Dan Smith", Title: "Radiographer", Teams: []TeamID{radiology}},
		}),
		Roles: []Role{{ID: onCall, Name: "Pharmacy on call", Team: pharmacy, Holder: fp(t, "alice"), HolderSeq: 0}},
	}
	return d
}

func sortedFP(f ...keys.Fingerprint) []keys.Fingerprint {
	for i := range f {
		for j := i + 1; j < len(f); j++ {
			if string(f[j][:]) < string(f[i][:]) {
				f[i], f[j] = f[j], f[i]
			}
		}
	}
	return f
}

func sortStaff(s []Staff) []Staff {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if string(s[j].Identity[:]) < string(s[i].Identity[:]) {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

// signed signs d with the named admin and returns the encoding.
func signed(t testing.TB, d *Directory, signer string) []byte {
	t.Helper()
	b, err := d.Sign(who(t, signer), nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// anchor0 is the enrolment anchor: the organisation and its first admins.
func anchor0(t testing.TB) Anchor {
	return Anchor{Org: testOrg, Admins: sortedFP(fp(t, "admin"), fp(t, "it"))}
}
