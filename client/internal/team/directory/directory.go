package directory

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"time"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// ContextDirectory is the signature context of a directory (SPEC.md
// section 15.7).
const ContextDirectory = "org-directory"

// Labels of the directory's hashes (SPEC.md section 15.7).
const (
	labelDirectoryHash = protocol.LabelPrefix + "org-directory"
	labelDirectoryLog  = protocol.LabelPrefix + "org-directory-log"
)

// HashSize is the size of Hash.
const HashSize = sha256.Size

type (
	// OrgID identifies an organisation: 16 random bytes.
	OrgID [OrgIDSize]byte
	// TeamID identifies a team of an organisation: 16 random bytes.
	TeamID [TeamIDSize]byte
	// RoleID identifies a role account: 16 random bytes.
	RoleID [RoleIDSize]byte
)

// Team is a team entry: a queue people write to, backed by a staff group.
type Team struct {
	ID    TeamID
	Name  string            // 1..MaxNameSize bytes
	Group [GroupIDSize]byte // the team's staff group (a group of section 15 of protocol/SPEC.md)
}

// Staff is a person's entry: nothing more than their identity, name, role
// title and teams.
type Staff struct {
	Identity keys.Fingerprint // the fingerprint of their identity key
	Name     string           // 1..MaxNameSize bytes
	Title    string           // the role title ("Pharmacist"), 0..MaxNameSize bytes
	Teams    []TeamID         // 0..MaxTeamsPerEntry, ascending, each a listed team
}

// Role is a role account ("Pharmacy on call"): a name that reaches
// whoever holds it.
type Role struct {
	ID   RoleID
	Name string // 1..MaxNameSize bytes
	Team TeamID // the team whose staff may hold it
	// Holder is the holder the administrators recorded (zero: vacant),
	// a staff member of Team; HolderSeq is the role-record sequence it
	// stands at (see RoleHolding).
	Holder    keys.Fingerprint
	HolderSeq uint64
}

// Directory is an organisation's signed directory of staff, teams and role
// accounts (SPEC.md section 15.7). One returned by Parse or Accept is
// verified; one built by hand is signed with Sign. It is not safe to
// modify one shared between goroutines.
type Directory struct {
	Org     OrgID
	Version uint64    // >= 1, strictly increasing
	Issued  time.Time // unix seconds
	// Admins are the fingerprints of the administrators' identity keys,
	// ascending, 1..MaxAdmins: the next directory must be signed by one
	// of them.
	Admins []keys.Fingerprint
	Teams  []Team  // ascending by ID
	Staff  []Staff // ascending by identity
	Roles  []Role  // ascending by ID

	// Signer is the identity key of the administrator who signed, and
	// Signature its hybrid signature, context ContextDirectory.
	Signer    *keys.SigningPublicKey
	Signature []byte

	raw []byte // the encoding it was parsed from or signed as
}

// check applies every rule that does not depend on the encoding's bytes.
func (d *Directory) check() error {
	if d.Version == 0 {
		return fail(ErrMalformed, "version 0")
	}
	if _, ok := unixTime(d.Issued); !ok {
		return fail(ErrMalformed, "issued time out of range")
	}
	if len(d.Admins) == 0 || len(d.Admins) > MaxAdmins {
		return fail(ErrMalformed, "%d administrators, want 1 to %d", len(d.Admins), MaxAdmins)
	}
	for i, a := range d.Admins {
		if a == (keys.Fingerprint{}) || (i > 0 && bytes.Compare(d.Admins[i-1][:], a[:]) >= 0) {
			return fail(ErrMalformed, "administrator %d zero, out of order or repeated", i)
		}
	}
	if len(d.Teams) > MaxTeams || len(d.Staff) > MaxStaff || len(d.Roles) > MaxRoles {
		return fail(ErrMalformed, "%d teams, %d staff, %d roles: above the limits", len(d.Teams), len(d.Staff), len(d.Roles))
	}
	for i, t := range d.Teams {
		if i > 0 && bytes.Compare(d.Teams[i-1].ID[:], t.ID[:]) >= 0 {
			return fail(ErrMalformed, "team %d out of order or repeated", i)
		}
		if !checkName(t.Name, true) {
			return fail(ErrMalformed, "team %d: bad name", i)
		}
	}
	for i, s := range d.Staff {
		if s.Identity == (keys.Fingerprint{}) || (i > 0 && bytes.Compare(d.Staff[i-1].Identity[:], s.Identity[:]) >= 0) {
			return fail(ErrMalformed, "staff %d zero, out of order or repeated", i)
		}
		if !checkName(s.Name, true) || !checkName(s.Title, false) {
			return fail(ErrMalformed, "staff %d: bad name or title", i)
		}
		if len(s.Teams) > MaxTeamsPerEntry {
			return fail(ErrMalformed, "staff %d: %d teams, want at most %d", i, len(s.Teams), MaxTeamsPerEntry)
		}
		for j, t := range s.Teams {
			if j > 0 && bytes.Compare(s.Teams[j-1][:], t[:]) >= 0 {
				return fail(ErrMalformed, "staff %d: team %d out of order or repeated", i, j)
			}
			if d.team(t) == nil {
				return fail(ErrMalformed, "staff %d: team %d not listed", i, j)
			}
		}
	}
	for i, r := range d.Roles {
		if i > 0 && bytes.Compare(d.Roles[i-1].ID[:], r.ID[:]) >= 0 {
			return fail(ErrMalformed, "role %d out of order or repeated", i)
		}
		if !checkName(r.Name, true) {
			return fail(ErrMalformed, "role %d: bad name", i)
		}
		if d.team(r.Team) == nil {
			return fail(ErrMalformed, "role %d: team not listed", i)
		}
		if r.Holder != (keys.Fingerprint{}) && !d.eligible(r, r.Holder) {
			return fail(ErrMalformed, "role %d: holder not a staff member of its team", i)
		}
	}
	if d.Signer == nil {
		return fail(ErrMalformed, "no signer key")
	}
	return nil
}

// signedPart encodes everything the signature covers: every byte before
// the signature length.
func (d *Directory) signedPart() ([]byte, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	issued, _ := unixTime(d.Issued)
	b := make([]byte, 0, 4096)
	b = append(b, tagDirectory, encodingVersion)
	b = append(b, d.Org[:]...)
	b = binary.BigEndian.AppendUint64(b, d.Version)
	b = binary.BigEndian.AppendUint64(b, issued)
	b = append(b, byte(len(d.Admins)))
	for _, a := range d.Admins {
		b = append(b, a[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(d.Teams)))
	for _, t := range d.Teams {
		b = append(b, t.ID[:]...)
		b = appendStr(b, t.Name)
		b = append(b, t.Group[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(d.Staff)))
	for _, s := range d.Staff {
		b = append(b, s.Identity[:]...)
		b = appendStr(b, s.Name)
		b = appendStr(b, s.Title)
		b = append(b, byte(len(s.Teams)))
		for _, t := range s.Teams {
			b = append(b, t[:]...)
		}
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(d.Roles)))
	for _, r := range d.Roles {
		b = append(b, r.ID[:]...)
		b = appendStr(b, r.Name)
		b = append(b, r.Team[:]...)
		b = append(b, r.Holder[:]...)
		b = binary.BigEndian.AppendUint64(b, r.HolderSeq)
	}
	return append(b, d.Signer.Bytes()...), nil
}

// Bytes returns the canonical encoding: the signed part, u16 len(sig) and
// the signature (a signature of the wrong length is written as zeros, and
// the result does not verify).
func (d *Directory) Bytes() ([]byte, error) {
	b, err := d.signedPart()
	if err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint16(b, keys.SignatureSize)
	if len(d.Signature) != keys.SignatureSize {
		return append(b, make([]byte, keys.SignatureSize)...), nil
	}
	return append(b, d.Signature...), nil
}

// Sign signs d with an administrator's identity key: d.Signer becomes s's
// public key and d.Signature the new signature. It returns the encoding,
// parsed back and verified. Whether s may sign (an administrator of the
// directory its receivers hold) is the receivers' check (Accept); Sign
// only refuses a signer that is in neither d.Admins nor, when given, the
// held directory's administrators, since nobody would accept it.
func (d *Directory) Sign(s Signer, held *Directory) ([]byte, error) {
	pub := s.Public()
	d.Signer = pub
	part, err := d.signedPart()
	if err != nil {
		return nil, err
	}
	fp := pub.Fingerprint()
	if !slices.Contains(d.Admins, fp) && (held == nil || !slices.Contains(held.Admins, fp)) {
		return nil, fail(ErrNotAdmin, "the signing key is not an administrator")
	}
	sig, err := s.Sign(ContextDirectory, part)
	if err != nil {
		return nil, err
	}
	d.Signature = sig
	b, err := d.Bytes()
	if err != nil {
		return nil, err
	}
	// Parse back what was produced: it verifies the fresh signature and
	// the round trip before anything is published.
	if _, err := Parse(b); err != nil {
		return nil, err
	}
	d.raw = b
	return b, nil
}

// decode parses every field and checks every rule, without the signature.
// It returns the directory and the length of the signed part.
func decode(b []byte) (*Directory, int, error) {
	if len(b) < MinDirectorySize || len(b) > MaxDirectorySize {
		return nil, 0, fail(ErrMalformed, "length %d, want %d to %d", len(b), MinDirectorySize, MaxDirectorySize)
	}
	if b[0] != tagDirectory || b[1] != encodingVersion {
		return nil, 0, fail(ErrMalformed, "tag 0x%02x version 0x%02x, want 0x%02x 0x%02x", b[0], b[1], tagDirectory, encodingVersion)
	}
	r := &reader{b: b, off: 2}
	d := &Directory{Org: OrgID(r.id16()), Version: r.u64()}
	var ok bool
	if d.Issued, ok = r.time(); !ok {
		return nil, 0, fail(ErrMalformed, "issued time after 9999-12-31")
	}
	n := r.u8()
	if n == 0 || n > MaxAdmins {
		return nil, 0, fail(ErrMalformed, "%d administrators, want 1 to %d", n, MaxAdmins)
	}
	d.Admins = make([]keys.Fingerprint, n)
	for i := range d.Admins {
		d.Admins[i] = r.fingerprint()
	}
	// Each count is capped before allocating, and each entry's smallest
	// size bounds how many can fit in what is left.
	count := func(what string, limit, minEntry int) (int, error) {
		n := r.u16()
		if r.bad || n > limit || n*minEntry > len(b)-r.off {
			return 0, fail(ErrMalformed, "%s: count %d above %d or beyond the input", what, n, limit)
		}
		return n, nil
	}
	if n, err := count("teams", MaxTeams, TeamIDSize+2+GroupIDSize); err != nil {
		return nil, 0, err
	} else if n > 0 {
		d.Teams = make([]Team, n)
	}
	for i := range d.Teams {
		t := &d.Teams[i]
		t.ID, t.Name, t.Group = TeamID(r.id16()), r.str(), r.id16()
	}
	if n, err := count("staff", MaxStaff, keys.FingerprintSize+4); err != nil {
		return nil, 0, err
	} else if n > 0 {
		d.Staff = make([]Staff, n)
	}
	for i := range d.Staff {
		s := &d.Staff[i]
		s.Identity, s.Name, s.Title = r.fingerprint(), r.str(), r.str()
		k := r.u8()
		if k > MaxTeamsPerEntry {
			return nil, 0, fail(ErrMalformed, "staff %d: %d teams, want at most %d", i, k, MaxTeamsPerEntry)
		}
		if k > 0 {
			s.Teams = make([]TeamID, k)
		}
		for j := range s.Teams {
			s.Teams[j] = TeamID(r.id16())
		}
		if r.bad {
			return nil, 0, fail(ErrMalformed, "staff %d truncated", i)
		}
	}
	if n, err := count("roles", MaxRoles, RoleIDSize+2+TeamIDSize+keys.FingerprintSize+8); err != nil {
		return nil, 0, err
	} else if n > 0 {
		d.Roles = make([]Role, n)
	}
	for i := range d.Roles {
		ro := &d.Roles[i]
		ro.ID, ro.Name, ro.Team = RoleID(r.id16()), r.str(), TeamID(r.id16())
		ro.Holder, ro.HolderSeq = r.fingerprint(), r.u64()
	}
	if r.bad {
		return nil, 0, fail(ErrMalformed, "truncated")
	}
	signedEnd := r.off + keys.SigningPublicKeySize
	k, sig, err := readTrailer(r, "directory")
	if err != nil {
		return nil, 0, err
	}
	d.Signer, d.Signature = k, sig
	if err := d.check(); err != nil {
		return nil, 0, err
	}
	d.raw = append([]byte(nil), b...)
	return d, signedEnd, nil
}

// Parse parses an encoded directory, checks every rule and verifies its
// signature by the signer key it carries. It does not decide whether that
// signer may sign it: Accept does.
func Parse(b []byte) (*Directory, error) {
	d, signedEnd, err := decode(b)
	if err != nil {
		return nil, err
	}
	if err := verify(d.Signer, ContextDirectory, b[:signedEnd], d.Signature, "directory"); err != nil {
		return nil, err
	}
	return d, nil
}

// Anchor is what a device trusts a directory by: the organisation, its
// administrators, and the version and hash of the directory it holds. The
// first anchor comes from outside the directory (the organisation's
// enrolment: its ID and the administrators' fingerprints, Version 0);
// every later one is the held directory's (Directory.Anchor).
type Anchor struct {
	Org     OrgID
	Admins  []keys.Fingerprint
	Version uint64
	Hash    [HashSize]byte // of the held directory; ignored when Version is 0
}

// Anchor returns the anchor the next directory is checked against.
func (d *Directory) Anchor() Anchor {
	return Anchor{Org: d.Org, Admins: slices.Clone(d.Admins), Version: d.Version, Hash: Hash(d.raw)}
}

// Accept parses b and accepts it as the successor of the anchor's
// directory, in this order: ErrMalformed; ErrWrongOrganisation;
// ErrNotAdmin (the signer is not one of a.Admins: a directory is signed by
// an administrator of the one held, so the set of administrators changes
// only by their own signature); ErrBadSignature; then ErrUnchanged for the
// held directory itself, ErrFork for other bytes under the held version,
// ErrRollback for a lower version.
func Accept(a Anchor, b []byte) (*Directory, error) {
	d, signedEnd, err := decode(b)
	if err != nil {
		return nil, err
	}
	if d.Org != a.Org {
		return nil, ErrWrongOrganisation
	}
	if !slices.Contains(a.Admins, d.Signer.Fingerprint()) {
		return nil, ErrNotAdmin
	}
	if err := verify(d.Signer, ContextDirectory, b[:signedEnd], d.Signature, "directory"); err != nil {
		return nil, err
	}
	switch {
	case a.Version > 0 && d.Version == a.Version && Hash(b) == a.Hash:
		return nil, ErrUnchanged
	case d.Version == a.Version:
		return nil, ErrFork
	case d.Version < a.Version:
		return nil, fail(ErrRollback, "version %d after version %d", d.Version, a.Version)
	}
	return d, nil
}

// Encoded returns the encoding d was parsed from or signed as (nil for a
// directory built by hand and not signed). The caller must not modify it.
func (d *Directory) Encoded() []byte { return d.raw }

// Hash is SHA-256("postern.v1 org-directory" || b) of an encoded
// directory: what the transparency log records of it.
func Hash(b []byte) [HashSize]byte {
	h := sha256.New()
	h.Write([]byte(labelDirectoryHash))
	h.Write(b)
	var out [HashSize]byte
	h.Sum(out[:0])
	return out
}

// LogKey is SHA-256("postern.v1 org-directory-log" || org): the key under
// which a relay's transparency log records an organisation's directories,
// in the place of a person's identity fingerprint. Its label keeps it
// apart from every identity fingerprint.
func LogKey(org OrgID) keys.Fingerprint {
	h := sha256.New()
	h.Write([]byte(labelDirectoryLog))
	h.Write(org[:])
	var out keys.Fingerprint
	h.Sum(out[:0])
	return out
}

// team returns the listed team id, or nil.
func (d *Directory) team(id TeamID) *Team {
	i, ok := slices.BinarySearchFunc(d.Teams, id, func(t Team, id TeamID) int { return bytes.Compare(t.ID[:], id[:]) })
	if !ok {
		return nil
	}
	return &d.Teams[i]
}

// Team returns the team with this ID, or nil.
func (d *Directory) Team(id TeamID) *Team { return d.team(id) }

// Person returns the staff entry of this identity, or nil.
func (d *Directory) Person(id keys.Fingerprint) *Staff {
	i, ok := slices.BinarySearchFunc(d.Staff, id, func(s Staff, id keys.Fingerprint) int { return bytes.Compare(s.Identity[:], id[:]) })
	if !ok {
		return nil
	}
	return &d.Staff[i]
}

// Role returns the role account with this ID, or nil.
func (d *Directory) Role(id RoleID) *Role {
	i, ok := slices.BinarySearchFunc(d.Roles, id, func(r Role, id RoleID) int { return bytes.Compare(r.ID[:], id[:]) })
	if !ok {
		return nil
	}
	return &d.Roles[i]
}

// IsAdmin reports whether id is one of the directory's administrators.
func (d *Directory) IsAdmin(id keys.Fingerprint) bool { return slices.Contains(d.Admins, id) }

// eligible reports whether person is a staff member of role's team.
func (d *Directory) eligible(r Role, person keys.Fingerprint) bool {
	s := d.Person(person)
	return s != nil && slices.Contains(s.Teams, r.Team)
}
