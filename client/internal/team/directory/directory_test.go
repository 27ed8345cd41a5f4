package directory

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/postern/postern/keys"
)

// TestSignedEntryFoundInCompose: a directory signed by an administrator of
// the organisation is accepted on the enrolment anchor, and its entries
// are found by the compose lookup.
func TestSignedEntryFoundInCompose(t *testing.T) {
	b := signed(t, sampleDirectory(t), "admin")
	d, err := Accept(anchor0(t), b)
	if err != nil {
		t.Fatal(err)
	}
	again, err := d.Bytes()
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("re-encoding differs: %v", err)
	}
	m := d.Lookup("ali", 0)
	if len(m) != 1 || m[0].Kind != MatchStaff || m[0].Staff.Identity != fp(t, "alice") {
		t.Fatalf("lookup ali: %+v", m)
	}
	if s := d.Person(fp(t, "alice")); s == nil || s.Name != "Alice Martin" {
		t.Fatal("Person(alice) not found")
	}
}

// mutate parses b without checking the signature, applies f, and
// re-encodes it with the old signature.
func mutate(t *testing.T, b []byte, f func(*Directory)) []byte {
	t.Helper()
	d, _, err := decode(b)
	if err != nil {
		t.Fatal(err)
	}
	f(d)
	out, err := d.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAcceptRefuses(t *testing.T) {
	v1 := sampleDirectory(t)
	b1 := signed(t, v1, "admin")
	d1, err := Accept(anchor0(t), b1)
	if err != nil {
		t.Fatal(err)
	}
	a1 := d1.Anchor()

	v2 := sampleDirectory(t)
	v2.Version = 2
	v2.Staff[0].Title = "Lead"
	b2 := signed(t, v2, "it")

	// A non-admin (mallory) signs a directory that names her an admin:
	// its own admin list does not count, only the held one's.
	self := sampleDirectory(t)
	self.Version = 3
	self.Admins = sortedFP(fp(t, "admin"), fp(t, "it"), fp(t, "mallory"))
	bSelf := signed(t, self, "mallory")

	// Staff member alice (not admin) signs an otherwise valid directory.
	staffSigned := sampleDirectory(t)
	staffSigned.Version = 3
	staffSigned.Admins = sortedFP(fp(t, "admin"), fp(t, "alice"))
	bStaff := signed(t, staffSigned, "alice")

	// Fork: another directory under version 1, by a genuine admin.
	fork := sampleDirectory(t)
	fork.Teams[0].Name = "Pharmacy (old)"
	bFork := signed(t, fork, "it")

	otherOrg := sampleDirectory(t)
	otherOrg.Org = OrgID{'o', 't', 'h', 'e', 'r'}
	otherOrg.Version = 5
	bOther := signed(t, otherOrg, "admin")

	flipSig := bytes.Clone(b2)
	flipSig[len(flipSig)-1] ^= 1
	flipEd := bytes.Clone(b2)
	flipEd[len(flipEd)-keys.SignatureSize] ^= 1
	changedName := mutate(t, b2, func(d *Directory) { d.Staff[1].Name = "Bob Evil" })
	changedVersion := mutate(t, b2, func(d *Directory) { d.Version = 9 })
	// Swapping in an admin's key but keeping another's signature.
	swappedKey := mutate(t, b2, func(d *Directory) { d.Signer = who(t, "admin").Public() })

	for _, tc := range []struct {
		name   string
		anchor Anchor
		b      []byte
		want   error
	}{
		{"forged signature (ML-DSA half)", a1, flipSig, ErrBadSignature},
		{"forged signature (Ed25519 half)", a1, flipEd, ErrBadSignature},
		{"forged entry", a1, changedName, ErrBadSignature},
		{"forged version", a1, changedVersion, ErrBadSignature},
		{"signer key swapped", a1, swappedKey, ErrBadSignature},
		{"wrong signer: self-appointed admin", a1, bSelf, ErrNotAdmin},
		{"wrong signer: staff member", a1, bStaff, ErrNotAdmin},
		{"wrong signer on first contact", anchor0(t), bSelf, ErrNotAdmin},
		{"rolled back", func() Anchor { a := a1; a.Version = 2; return a }(), b1, ErrRollback},
		{"fork under the held version", a1, bFork, ErrFork},
		{"fork is a rollback", a1, bFork, ErrRollback},
		{"the held one again", a1, b1, ErrUnchanged},
		{"another organisation", a1, bOther, ErrWrongOrganisation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Accept(tc.anchor, tc.b)
			if !errors.Is(err, tc.want) || d != nil {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	d2, err := Accept(a1, b2)
	if err != nil || d2.Version != 2 {
		t.Fatalf("version 2 by the other admin: %v", err)
	}
	// Once version 2 is held, version 1 is a rollback.
	if _, err := Accept(d2.Anchor(), b1); !errors.Is(err, ErrRollback) {
		t.Fatalf("version 1 after 2: %v", err)
	}
}

// TestAdminSetChanges: the set of administrators changes only by a
// directory an administrator of the held one signs; a removed admin can no
// longer sign, a new one can.
func TestAdminSetChanges(t *testing.T) {
	d1, err := Accept(anchor0(t), signed(t, sampleDirectory(t), "admin"))
	if err != nil {
		t.Fatal(err)
	}
	v2 := sampleDirectory(t)
	v2.Version = 2
	v2.Admins = sortedFP(fp(t, "admin"), fp(t, "newadmin")) // "it" leaves
	d2, err := Accept(d1.Anchor(), signed(t, v2, "admin"))
	if err != nil {
		t.Fatal(err)
	}
	v3 := sampleDirectory(t)
	v3.Version = 3
	v3.Admins = d2.Admins
	if _, err := Accept(d2.Anchor(), signed(t, v3, "newadmin")); err != nil {
		t.Fatalf("the new admin signs version 3: %v", err)
	}
	// The removed admin signs a version 3 that puts it back: refused.
	v3b := sampleDirectory(t)
	v3b.Version = 3
	v3b.Admins = sortedFP(fp(t, "admin"), fp(t, "it"))
	if _, err := Accept(d2.Anchor(), signed(t, v3b, "it")); !errors.Is(err, ErrNotAdmin) {
		t.Fatalf("removed admin: %v", err)
	}
	// Sign refuses a key that no receiver would accept.
	v4 := sampleDirectory(t)
	v4.Version = 4
	if _, err := v4.Sign(who(t, "mallory"), d2); !errors.Is(err, ErrNotAdmin) {
		t.Fatalf("Sign by a non-admin: %v", err)
	}
	// An admin of the held directory may sign one that drops them.
	v4.Admins = []keys.Fingerprint{fp(t, "newadmin")}
	if _, err := v4.Sign(who(t, "admin"), d2); err != nil {
		t.Fatalf("Sign by a leaving admin: %v", err)
	}
}

func TestRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(d *Directory)
	}{
		{"version 0", func(d *Directory) { d.Version = 0 }},
		{"no admin", func(d *Directory) { d.Admins = nil }},
		{"admins out of order", func(d *Directory) { d.Admins[0], d.Admins[1] = d.Admins[1], d.Admins[0] }},
		{"admin repeated", func(d *Directory) { d.Admins[1] = d.Admins[0] }},
		{"too many admins", func(d *Directory) {
			d.Admins = nil
			for i := range MaxAdmins + 1 {
				d.Admins = append(d.Admins, keys.Fingerprint{byte(i + 1)})
			}
		}},
		{"teams out of order", func(d *Directory) { d.Teams[0], d.Teams[1] = d.Teams[1], d.Teams[0] }},
		{"empty team name", func(d *Directory) { d.Teams[0].Name = "" }},
		{"long name", func(d *Directory) { d.Staff[0].Name = string(bytes.Repeat([]byte("a"), MaxNameSize+1)) }},
		{"name with newline", func(d *Directory) { d.Staff[0].Name = "Alice\nMartin" }},
		{"name with bidi override", func(d *Directory) { d.Staff[0].Name = "Alice\u202eMartin" }},
		{"name with space at the end", func(d *Directory) { d.Staff[0].Name = "Alice " }},
		{"invalid UTF-8", func(d *Directory) { d.Staff[0].Title = "\xff" }},
		{"staff repeated", func(d *Directory) { d.Staff[1] = d.Staff[0] }},
		{"staff team not listed", func(d *Directory) { d.Staff[0].Teams = []TeamID{teamID(0x99)} }},
		{"staff teams repeated", func(d *Directory) { d.Staff[0].Teams = []TeamID{pharmacy, pharmacy} }},
		{"too many teams per entry", func(d *Directory) {
			for i := range MaxTeamsPerEntry + 1 {
				d.Teams = append(d.Teams, Team{ID: teamID(byte(0x40 + i)), Name: "T"})
				d.Staff[0].Teams = append(d.Staff[0].Teams, teamID(byte(0x40+i)))
			}
			d.Staff[0].Teams = append([]TeamID{pharmacy}, d.Staff[0].Teams...)
		}},
		{"role team not listed", func(d *Directory) { d.Roles[0].Team = teamID(0x99) }},
		{"role holder not in its team", func(d *Directory) { d.Roles[0].Holder = fp(t, "dan") }},
		{"role holder not staff", func(d *Directory) { d.Roles[0].Holder = fp(t, "mallory") }},
		{"zero staff identity", func(d *Directory) { d.Staff[0].Identity = keys.Fingerprint{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := sampleDirectory(t)
			tc.f(d)
			if _, err := d.Sign(who(t, "admin"), nil); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Sign: %v", err)
			}
		})
	}
}

// TestDecodeRefuses: changed bytes of a valid directory are refused with
// ErrMalformed before any signature is checked.
func TestDecodeRefuses(t *testing.T) {
	b := signed(t, sampleDirectory(t), "admin")
	teamsAt := headerSize + 1 + 2*keys.FingerprintSize
	for _, tc := range []struct {
		name string
		f    func(b []byte) []byte
	}{
		{"empty", func([]byte) []byte { return nil }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"trailing byte", func(b []byte) []byte { return append(b, 0) }},
		{"tag", func(b []byte) []byte { b[0] = tagStatus; return b }},
		{"version", func(b []byte) []byte { b[1] = 2; return b }},
		{"issued after 9999", func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[26:], maxUnixTime+1)
			return b
		}},
		{"zero admins", func(b []byte) []byte { b[headerSize] = 0; return b }},
		{"team count huge", func(b []byte) []byte { binary.BigEndian.PutUint16(b[teamsAt:], 0xffff); return b }},
		{"team count one more", func(b []byte) []byte { b[teamsAt+1]++; return b }},
		{"signature length", func(b []byte) []byte {
			b[len(b)-keys.SignatureSize-1]++
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.f(bytes.Clone(b))
			if _, err := Parse(c); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse: %v", err)
			}
			if _, err := Accept(anchor0(t), c); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Accept: %v", err)
			}
		})
	}
}

// TestLimits: a directory at every limit encodes to MaxDirectorySize
// bytes and parses; one entry more is refused.
func TestLimits(t *testing.T) {
	long := string(bytes.Repeat([]byte("é"), MaxNameSize/2))
	d := &Directory{Org: testOrg, Version: 1, Issued: issued}
	for i := range MaxAdmins {
		d.Admins = append(d.Admins, keys.Fingerprint{byte(i + 1)})
	}
	d.Admins[MaxAdmins-1] = fp(t, "admin")
	d.Admins = sortedFP(d.Admins...)
	for i := range MaxTeams {
		d.Teams = append(d.Teams, Team{ID: TeamID{byte(i >> 8), byte(i)}, Name: long})
	}
	all := make([]TeamID, MaxTeamsPerEntry)
	for i := range all {
		all[i] = d.Teams[i].ID
	}
	for i := range MaxStaff {
		d.Staff = append(d.Staff, Staff{Identity: keys.Fingerprint{byte(i >> 8), byte(i), 1}, Name: long, Title: long, Teams: all})
	}
	for i := range MaxRoles {
		d.Roles = append(d.Roles, Role{ID: RoleID{byte(i >> 8), byte(i)}, Name: long, Team: all[0], Holder: d.Staff[i].Identity, HolderSeq: uint64(i)})
	}
	b := signed(t, d, "admin")
	if len(b) != MaxDirectorySize {
		t.Fatalf("full directory is %d bytes, MaxDirectorySize %d", len(b), MaxDirectorySize)
	}
	if _, err := Accept(anchor0(t), b); err != nil {
		t.Fatalf("full directory: %v", err)
	}
	t.Logf("MaxDirectorySize = %d, MinDirectorySize = %d", MaxDirectorySize, MinDirectorySize)
	d.Staff = append(d.Staff, Staff{Identity: keys.Fingerprint{0xff}, Name: "x"})
	if _, err := d.Bytes(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("one staff more: %v", err)
	}
}

func TestHashAndLogKey(t *testing.T) {
	b := signed(t, sampleDirectory(t), "admin")
	if Hash(b) == Hash(b[:len(b)-1]) {
		t.Fatal("Hash ignores a byte")
	}
	if LogKey(testOrg) == LogKey(OrgID{}) {
		t.Fatal("LogKey ignores the organisation")
	}
	// A log key is not an identity fingerprint of the same bytes.
	if LogKey(testOrg) == fp(t, "admin") {
		t.Fatal("log key collides")
	}
}
