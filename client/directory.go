package client

// The organisation directory (protocol/SPEC.md section 15.7, "Transport
// and the transparency log"): its administrators sign it
// (client/internal/team/directory), publish its (log key, version, hash)
// leaf in the organisation relay's transparency log, and send it to the
// staff devices they reach as an end-to-end encrypted attachment (a
// session content of type 0x28 that carries one attachment reference:
// the directory is too large for an envelope). A device accepts a
// directory only if directory.Accept passes under its anchor (the
// organisation's enrolment, then the held directory) and the relay's
// transparency log proves a leaf with that version and hash in a head
// consistent with the one it keeps. Staff look colleagues and teams up in
// it for compose; outsiders never receive it (a device without an
// enrolment ignores it, and administrators send it only to listed staff
// and their own devices).

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/postern/postern/client/internal/attach"
	"github.com/postern/postern/client/internal/people"
	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/directory"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/protocol"
)

// contentDirectory carries an organisation directory as one attachment:
// the body of an attachment content (section 12.3) with an empty caption
// and exactly one attachment.
const contentDirectory byte = 0x28

const (
	// MaxDirectorySpecSize bounds PublishDirectory's input.
	MaxDirectorySpecSize = 4 << 20
	// directoryAttachmentName is the file name of a sent directory.
	directoryAttachmentName = "directory"
	// directoryTimeout bounds fetching and checking a received directory.
	directoryTimeout = 2 * time.Minute
	// directoryAnonKey names the unauthenticated connection that fetches
	// directory leaves, apart from the contacts' ones.
	directoryAnonKey = "directory"
)

// Errors of the organisation directory.
var (
	// ErrNoDirectory: this device has no organisation enrolment
	// (Options.Directory), or holds no directory yet.
	ErrNoDirectory = errors.New("client: no organisation directory")
	// ErrDirectoryRefused: a directory that does not check out: malformed,
	// of another organisation, not signed by an administrator of the held
	// directory (or of the enrolment), a bad signature, a rollback or a
	// fork of the held one, or one the relay's transparency log does not
	// show (held back: the log has a newer version; forked: another hash
	// under its version; not logged). Nothing was changed. The wrapped
	// error says which.
	ErrDirectoryRefused = errors.New("client: organisation directory refused")
	// ErrInvalidDirectory: PublishDirectory's input does not describe a
	// valid directory.
	ErrInvalidDirectory = errors.New("client: invalid directory description")
	// ErrDirectoryCapability: the relay logs this organisation's
	// directories under another publishing capability than the one this
	// device holds.
	ErrDirectoryCapability = errors.New("client: this device does not hold the organisation's directory publishing capability")
)

// Reasons of ErrDirectoryRefused given by the transparency log.
var (
	errDirectoryHeldBack  = errors.New("the relay's transparency log shows a newer version: this one is being held back")
	errDirectoryLogFork   = fmt.Errorf("%w: the relay's transparency log shows another directory under this version", kt.ErrFork)
	errDirectoryNotLogged = errors.New("the relay's transparency log does not show this directory")
)

// DirectoryEnrolment is what a device trusts its organisation's directory
// by before it holds one: the organisation's ID and its first
// administrators' identity fingerprints, as the organisation's enrolment
// of the device gives them (a policy file, cmd/postern).
type DirectoryEnrolment struct {
	Organisation   [16]byte
	Administrators []keys.Fingerprint
}

// Directory is the organisation directory a device holds.
type Directory struct {
	Organisation   string // hex
	Version        uint64
	Issued         time.Time
	Administrators []keys.Fingerprint
	// Entries: teams, then role accounts, then staff, each by name.
	Entries []DirectoryEntry
}

// Kinds of DirectoryEntry.
const (
	DirectoryTeam   = "team"
	DirectoryRole   = "role"
	DirectoryPerson = "person"
)

// DirectoryEntry is one team, role account or staff member of the
// directory: a name, a role title and teams, nothing more.
type DirectoryEntry struct {
	Kind  string `json:"kind"` // DirectoryTeam, DirectoryRole or DirectoryPerson
	ID    string `json:"id"`   // a team's or role's ID; a person's identity fingerprint (hex)
	Name  string `json:"name"`
	Title string `json:"title,omitempty"` // a person's role title
	// Teams are a person's teams' names; a role account's team.
	Teams []string `json:"teams,omitempty"`
	// Holder is who holds a role account as the directory lists it (a
	// staff member's name; "" vacant).
	Holder string `json:"holder,omitempty"`
	// Contact is the contact name of a person this client has as a
	// contact; Self marks this person.
	Contact string `json:"contact,omitempty"`
	Self    bool   `json:"self,omitempty"`
}

// DirectoryPublished is what PublishDirectory did.
type DirectoryPublished struct {
	Version uint64
	// Sent is how many staff members (besides this person) it went to,
	// on at least one of their devices; Unreached how many listed staff
	// members this client cannot reach (not a contact, or no device).
	Sent, Unreached int
	// Administrators is how many of its other administrators were sent
	// the organisation's publishing capability (so that they can publish
	// the next version), AdministratorsUnreached how many could not be.
	Administrators, AdministratorsUnreached int
}

// dirCache keeps the parsed held directory and its lookup view, for the
// compose lookups that follow each keystroke.
type dirCache struct {
	mu   sync.Mutex
	hash [directory.HashSize]byte
	d    *directory.Directory
	view *directory.View
}

// directoryTask is a received directory to download and check after the
// receiving transaction (afterReceive).
type directoryTask struct {
	ref   attachmentRef
	relay string // the relay that holds its blob (the sender's)
}

// ---- trust ----

// enrolmentAnchor is the anchor from Options.Directory.
func (c *Client) enrolmentAnchor() (directory.Anchor, error) {
	if c.dirEnrol == nil {
		return directory.Anchor{}, ErrNoDirectory
	}
	return directory.Anchor{Org: directory.OrgID(c.dirEnrol.Organisation), Admins: slices.Clone(c.dirEnrol.Administrators)}, nil
}

// heldDirectory returns the held directory (nil: none) of the enrolled
// organisation, and the record.
func (c *Client) heldDirectory(t *tx) (*directory.Directory, *store.DirectoryRecord, error) {
	rec, err := t.Directory()
	if err != nil || rec == nil || len(rec.Directory) == 0 {
		return nil, rec, err
	}
	d, err := c.parseHeld(rec.Directory)
	if err != nil {
		return nil, nil, err
	}
	if c.dirEnrol == nil || d.Org != directory.OrgID(c.dirEnrol.Organisation) {
		// Another organisation's directory, from an enrolment since
		// replaced: not trusted, not shown.
		return nil, rec, nil
	}
	return d, rec, nil
}

// parseHeld parses a held directory, from the cache when it is the one
// parsed last.
func (c *Client) parseHeld(b []byte) (*directory.Directory, error) {
	h := directory.Hash(b)
	c.dir.mu.Lock()
	defer c.dir.mu.Unlock()
	if c.dir.d != nil && c.dir.hash == h {
		return c.dir.d, nil
	}
	d, err := directory.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%w: held directory: %v", store.ErrCorrupt, err)
	}
	c.dir.hash, c.dir.d, c.dir.view = h, d, nil
	return d, nil
}

// directoryAnchor is what the next directory is checked against: the
// held directory's anchor, or the enrolment's.
func (c *Client) directoryAnchor(t *tx) (directory.Anchor, *directory.Directory, *store.DirectoryRecord, error) {
	a, err := c.enrolmentAnchor()
	if err != nil {
		return a, nil, nil, err
	}
	d, rec, err := c.heldDirectory(t)
	if err != nil {
		return a, nil, nil, err
	}
	if d != nil {
		a = d.Anchor()
	}
	return a, d, rec, nil
}

func directoryRefused(err error) error { return fmt.Errorf("%w: %w", ErrDirectoryRefused, err) }

// AcceptDirectory checks an encoded directory and, if it checks out,
// keeps it as this device's organisation directory: directory.Accept
// under the held directory (or the enrolment), then the relay's
// transparency log must prove a leaf with its version and hash, in a head
// consistent with the one this device keeps. A refusal matches
// ErrDirectoryRefused and changes nothing (the held directory again is no
// error). Received directories pass through it; a directory file handed
// over otherwise can too.
func (c *Client) AcceptDirectory(ctx context.Context, b []byte) error {
	err := c.acceptDirectory(ctx, b)
	switch {
	case err == nil:
		c.emit(Event{Kind: EventDirectory})
		// The directory's own role holders may have changed (roles.go).
		c.settleRoles(ctx)
	case errors.Is(err, ErrDirectoryRefused):
		c.log.Warn("organisation directory refused", "err", err)
		c.emit(Event{Kind: EventDirectory, Err: err})
	}
	if errors.Is(err, directory.ErrUnchanged) {
		return nil
	}
	return err
}

func (c *Client) acceptDirectory(ctx context.Context, b []byte) error {
	var anchor directory.Anchor
	if err := c.st.view(func(t *tx) (err error) { anchor, _, _, err = c.directoryAnchor(t); return err }); err != nil {
		return err
	}
	d, err := directory.Accept(anchor, b)
	if errors.Is(err, directory.ErrUnchanged) {
		return err
	}
	if err != nil {
		return directoryRefused(err)
	}
	hash, logKey := directory.Hash(b), directory.LogKey(d.Org)
	if err := c.pinRelayLogKey(ctx); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		var known uint64
		if err := c.st.view(func(t *tx) (err error) { known, err = people.KnownSize(t.Tx, c.relay); return err }); err != nil {
			return err
		}
		resp, err := c.anonRequest(ctx, c.relay, directoryAnonKey, &protocol.FetchDirectory{LogKey: logKey, KnownSize: known})
		if protocol.IsCode(err, protocol.CodeUnknownDirectory) {
			return directoryRefused(errDirectoryNotLogged)
		}
		if err != nil {
			return err
		}
		leaf, ok := resp.(*protocol.DirectoryLeaf)
		if !ok {
			return unexpected(resp)
		}
		moved := false
		err = c.st.update(func(t *tx) error {
			now, err := people.KnownSize(t.Tx, c.relay)
			if err != nil {
				return err
			}
			if now != known {
				moved = true
				return nil
			}
			key, head, err := people.Kept(t.Tx, c.relay)
			if err != nil {
				return err
			}
			h, err := verifyDirectoryLeaf(leaf, key, logKey, head)
			if err != nil {
				return directoryRefused(fmt.Errorf("%w: %w", people.ErrTransparency, err))
			}
			switch {
			case leaf.Version > d.Version:
				return directoryRefused(errDirectoryHeldBack)
			case leaf.Version < d.Version:
				return directoryRefused(errDirectoryNotLogged)
			case leaf.Hash != hash:
				return directoryRefused(errDirectoryLogFork)
			}
			// Checked again in the transaction that stores it: another
			// directory may have been accepted meanwhile.
			a, _, rec, err := c.directoryAnchor(t)
			if err != nil {
				return err
			}
			if _, err := directory.Accept(a, b); err != nil {
				if errors.Is(err, directory.ErrUnchanged) {
					return err
				}
				return directoryRefused(err)
			}
			if head == nil || h.Size > head.Size {
				tr, err := t.RelayTrust(c.relay)
				if err != nil {
					return err
				}
				tr.Head = h.Bytes()
				if err := t.PutRelayTrust(tr); err != nil {
					return err
				}
			}
			if rec == nil {
				rec = &store.DirectoryRecord{}
			}
			rec.Directory = bytes.Clone(b)
			return t.PutDirectory(rec)
		})
		switch {
		case err != nil:
			return err
		case moved && attempt < listFetchAttempts:
			continue
		case moved:
			return errors.New("client: the relay's log moved during every check of the directory")
		}
		c.log.Info("organisation directory accepted", "version", d.Version, "teams", len(d.Teams), "staff", len(d.Staff))
		return nil
	}
}

// verifyDirectoryLeaf checks a DirectoryLeaf answer for logKey against the
// relay's pinned key and the head kept for it (nil: none): the head's
// signature, the leaf's inclusion in its tree and the head's consistency
// with the kept one. It returns the verified head.
func verifyDirectoryLeaf(f *protocol.DirectoryLeaf, key *keys.SigningPublicKey, logKey keys.Fingerprint, known *kt.Head) (*kt.Head, error) {
	h, err := kt.ParseHead(f.Head, key)
	if err != nil {
		return nil, err
	}
	e := kt.Entry{Identity: logKey, Version: f.Version, ListHash: f.Hash}
	inc := make([][kt.HashSize]byte, len(f.Inclusion))
	for i, p := range f.Inclusion {
		inc[i] = p
	}
	if err := kt.VerifyInclusion(e.LeafHash(), f.Index, h.Size, inc, h.Root); err != nil {
		return nil, err
	}
	con := make([][kt.HashSize]byte, len(f.Consistency))
	for i, p := range f.Consistency {
		con[i] = p
	}
	if known != nil {
		if known.RelayKey != h.RelayKey {
			return nil, fmt.Errorf("%w: the known head is another relay's", kt.ErrBadHead)
		}
		if err := kt.VerifyConsistency(known.Size, h.Size, known.Root, h.Root, con); err != nil {
			return nil, err
		}
	} else if len(con) != 0 {
		return nil, fmt.Errorf("%w: a consistency proof without a known head", kt.ErrMalformed)
	}
	return h, nil
}

// pinRelayLogKey pins this client's relay's log key if none is pinned.
func (c *Client) pinRelayLogKey(ctx context.Context) error {
	var pinned *keys.SigningPublicKey
	if err := c.st.view(func(t *tx) (err error) { pinned, err = people.Pinned(t.Tx, c.relay); return err }); err != nil || pinned != nil {
		return err
	}
	resp, err := c.anonRequest(ctx, c.relay, directoryAnonKey, &protocol.FetchLogKey{})
	if err != nil {
		return err
	}
	lk, ok := resp.(*protocol.LogKey)
	if !ok {
		return unexpected(resp)
	}
	return c.st.update(func(t *tx) error { _, err := people.Pin(t.Tx, c.relay, lk.Key); return err })
}

// ---- compose ----

// Directory returns the organisation directory this device holds, or
// ErrNoDirectory.
func (c *Client) Directory() (*Directory, error) {
	var out *Directory
	err := c.st.view(func(t *tx) error {
		d, _, err := c.heldDirectory(t)
		if err != nil || d == nil {
			return errors.Join(err, ErrNoDirectory)
		}
		out = &Directory{Organisation: hex.EncodeToString(d.Org[:]), Version: d.Version, Issued: d.Issued, Administrators: slices.Clone(d.Admins)}
		v := c.view(d)
		var ms []directory.Match
		for i := range v.Teams() {
			ms = append(ms, directory.Match{Kind: directory.MatchTeam, Team: &v.Teams()[i]})
		}
		for i := range v.Roles() {
			ms = append(ms, directory.Match{Kind: directory.MatchRole, Role: &v.Roles()[i]})
		}
		for i := range v.Staff() {
			ms = append(ms, directory.Match{Kind: directory.MatchStaff, Staff: &v.Staff()[i]})
		}
		out.Entries, err = c.directoryEntries(t, d, ms)
		if err != nil {
			return err
		}
		// Teams, role accounts, staff; each by name.
		slices.SortStableFunc(out.Entries, func(a, b DirectoryEntry) int {
			if a.Kind != b.Kind {
				return kindOrder(a.Kind) - kindOrder(b.Kind)
			}
			return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
		})
		return nil
	})
	return out, err
}

func kindOrder(k string) int {
	switch k {
	case DirectoryTeam:
		return 0
	case DirectoryRole:
		return 1
	}
	return 2
}

// LookupDirectory returns at most max entries of the held directory that
// match query, best first (protocol/SPEC.md section 15.7, its lookup
// for compose): what compose suggests as the person types. ErrNoDirectory
// when this device holds none.
func (c *Client) LookupDirectory(query string, max int) ([]DirectoryEntry, error) {
	var out []DirectoryEntry
	err := c.st.view(func(t *tx) error {
		d, _, err := c.heldDirectory(t)
		if err != nil || d == nil {
			return errors.Join(err, ErrNoDirectory)
		}
		out, err = c.directoryEntries(t, d, c.view(d).Lookup(query, max))
		return err
	})
	return out, err
}

// view returns the lookup view of d (the held directory), made once.
func (c *Client) view(d *directory.Directory) *directory.View {
	c.dir.mu.Lock()
	defer c.dir.mu.Unlock()
	if c.dir.d == d && c.dir.view != nil {
		return c.dir.view
	}
	v := d.View()
	if c.dir.d == d {
		c.dir.view = v
	}
	return v
}

// directoryEntries turns matches into entries, naming the contacts.
func (c *Client) directoryEntries(t *tx, d *directory.Directory, ms []directory.Match) ([]DirectoryEntry, error) {
	ps, err := t.Persons()
	if err != nil {
		return nil, err
	}
	contacts := make(map[keys.Fingerprint]*store.Person, len(ps))
	for _, p := range ps {
		contacts[fpOf(p.Identity)] = p
	}
	teamName := func(id directory.TeamID) string {
		if tm := d.Team(id); tm != nil {
			return tm.Name
		}
		return ""
	}
	out := make([]DirectoryEntry, 0, len(ms))
	for _, m := range ms {
		switch m.Kind {
		case directory.MatchTeam:
			out = append(out, DirectoryEntry{Kind: DirectoryTeam, ID: hex.EncodeToString(m.Team.ID[:]), Name: m.Team.Name})
		case directory.MatchRole:
			e := DirectoryEntry{Kind: DirectoryRole, ID: hex.EncodeToString(m.Role.ID[:]), Name: m.Role.Name, Teams: []string{teamName(m.Role.Team)}}
			if s := d.Person(m.Role.Holder); s != nil {
				e.Holder = s.Name
			}
			out = append(out, e)
		case directory.MatchStaff:
			e := DirectoryEntry{Kind: DirectoryPerson, ID: m.Staff.Identity.String(), Name: m.Staff.Name, Title: m.Staff.Title}
			for _, id := range m.Staff.Teams {
				e.Teams = append(e.Teams, teamName(id))
			}
			if p := contacts[m.Staff.Identity]; p != nil {
				if p.Self {
					e.Self = true
				} else {
					e.Contact = p.Name
				}
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// ---- publishing ----

// directorySpec is PublishDirectory's input (docs/TEAMS.md "The
// organisation directory"). Teams and role accounts keep the IDs of the
// held directory's of the same name; new ones get random IDs.
type directorySpec struct {
	// Version defaults to the held version + 1.
	Version        uint64   `json:"version,omitempty"`
	Administrators []string `json:"administrators"`
	Teams          []struct {
		Name  string `json:"name"`
		ID    string `json:"id,omitempty"`    // 32 hex digits
		Group string `json:"group,omitempty"` // the team's staff group ID, 32 hex digits
	} `json:"teams"`
	Staff []struct {
		Identity string   `json:"identity"` // identity fingerprint, 64 hex digits
		Name     string   `json:"name"`
		Title    string   `json:"title,omitempty"`
		Teams    []string `json:"teams,omitempty"` // team names
	} `json:"staff"`
	Roles []struct {
		Name   string `json:"name"`
		ID     string `json:"id,omitempty"`
		Team   string `json:"team"`             // a team's name
		Holder string `json:"holder,omitempty"` // identity fingerprint; empty: vacant
	} `json:"roles"`
}

func invalidDirectory(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidDirectory, fmt.Sprintf(format, args...))
}

func parseID16(s, what string) ([16]byte, error) {
	var id [16]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 16 {
		return id, invalidDirectory("%s: want 32 hex digits", what)
	}
	copy(id[:], b)
	return id, nil
}

// buildDirectory makes the directory spec describes, as the successor of
// held (nil: none).
func buildDirectory(spec []byte, org directory.OrgID, held *directory.Directory, now time.Time) (*directory.Directory, error) {
	if len(spec) > MaxDirectorySpecSize {
		return nil, invalidDirectory("%d bytes, at most %d", len(spec), MaxDirectorySpecSize)
	}
	var s directorySpec
	dec := json.NewDecoder(bytes.NewReader(spec))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, invalidDirectory("%v", err)
	}
	if dec.More() {
		return nil, invalidDirectory("more than one JSON value")
	}
	d := &directory.Directory{Org: org, Version: s.Version, Issued: now.Truncate(time.Second)}
	if d.Version == 0 {
		d.Version = 1
		if held != nil {
			d.Version = held.Version + 1
		}
	}
	for i, a := range s.Administrators {
		fp, err := keys.ParseFingerprint(a)
		if err != nil {
			return nil, invalidDirectory("administrator %d: want an identity fingerprint of 64 hex digits", i+1)
		}
		d.Admins = append(d.Admins, fp)
	}
	slices.SortFunc(d.Admins, func(a, b keys.Fingerprint) int { return bytes.Compare(a[:], b[:]) })
	teams := map[string]directory.TeamID{}
	for i, st := range s.Teams {
		t := directory.Team{Name: st.Name}
		switch {
		case st.ID != "":
			id, err := parseID16(st.ID, fmt.Sprintf("team %d's id", i+1))
			if err != nil {
				return nil, err
			}
			t.ID = directory.TeamID(id)
		case held != nil && heldTeam(held, st.Name) != nil:
			t.ID = heldTeam(held, st.Name).ID
		default:
			rand.Read(t.ID[:])
		}
		switch {
		case st.Group != "":
			g, err := parseID16(st.Group, fmt.Sprintf("team %d's group", i+1))
			if err != nil {
				return nil, err
			}
			t.Group = g
		case held != nil && held.Team(t.ID) != nil:
			t.Group = held.Team(t.ID).Group
		}
		if _, dup := teams[st.Name]; dup {
			return nil, invalidDirectory("team %d: a second team named so", i+1)
		}
		teams[st.Name] = t.ID
		d.Teams = append(d.Teams, t)
	}
	slices.SortFunc(d.Teams, func(a, b directory.Team) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	for i, ss := range s.Staff {
		fp, err := keys.ParseFingerprint(ss.Identity)
		if err != nil {
			return nil, invalidDirectory("staff %d: want an identity fingerprint of 64 hex digits", i+1)
		}
		p := directory.Staff{Identity: fp, Name: ss.Name, Title: ss.Title}
		for _, tn := range ss.Teams {
			id, ok := teams[tn]
			if !ok {
				return nil, invalidDirectory("staff %d: no team named %q", i+1, tn)
			}
			p.Teams = append(p.Teams, id)
		}
		slices.SortFunc(p.Teams, func(a, b directory.TeamID) int { return bytes.Compare(a[:], b[:]) })
		d.Staff = append(d.Staff, p)
	}
	slices.SortFunc(d.Staff, func(a, b directory.Staff) int { return bytes.Compare(a.Identity[:], b.Identity[:]) })
	for i, sr := range s.Roles {
		r := directory.Role{Name: sr.Name}
		tid, ok := teams[sr.Team]
		if !ok {
			return nil, invalidDirectory("role %d: no team named %q", i+1, sr.Team)
		}
		r.Team = tid
		var prev *directory.Role
		switch {
		case sr.ID != "":
			id, err := parseID16(sr.ID, fmt.Sprintf("role %d's id", i+1))
			if err != nil {
				return nil, err
			}
			r.ID = directory.RoleID(id)
			if held != nil {
				prev = held.Role(r.ID)
			}
		case held != nil && heldRole(held, sr.Name) != nil:
			prev = heldRole(held, sr.Name)
			r.ID = prev.ID
		default:
			rand.Read(r.ID[:])
		}
		if sr.Holder != "" {
			fp, err := keys.ParseFingerprint(sr.Holder)
			if err != nil {
				return nil, invalidDirectory("role %d: want a holder's identity fingerprint of 64 hex digits", i+1)
			}
			r.Holder = fp
		}
		// The administrators' entry moves the holding on when it names
		// another holder (section 15.7 "Role accounts").
		switch {
		case prev != nil && prev.Holder == r.Holder:
			r.HolderSeq = prev.HolderSeq
		case prev != nil:
			r.HolderSeq = prev.HolderSeq + 1
		case r.Holder != (keys.Fingerprint{}):
			r.HolderSeq = 1
		}
		d.Roles = append(d.Roles, r)
	}
	slices.SortFunc(d.Roles, func(a, b directory.Role) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return d, nil
}

func heldTeam(d *directory.Directory, name string) *directory.Team {
	for i := range d.Teams {
		if d.Teams[i].Name == name {
			return &d.Teams[i]
		}
	}
	return nil
}

func heldRole(d *directory.Directory, name string) *directory.Role {
	for i := range d.Roles {
		if d.Roles[i].Name == name {
			return &d.Roles[i]
		}
	}
	return nil
}

// PublishDirectory makes, signs and publishes a new version of the
// organisation's directory from spec (JSON, docs/TEAMS.md): it is signed
// with this person's identity key (an administrator of the held
// directory, or of the enrolment), its (log key, version, hash) leaf is
// logged on this client's relay with the organisation's publishing
// capability (made by an administrator's device at the organisation's
// first publish and shared with the other administrators, dircap.go),
// it is accepted here as any device accepts it, and it is sent as an
// end-to-end encrypted attachment to every listed staff member this
// client has as a contact and to this person's other devices; the
// capability then goes to the directory's other administrators.
func (c *Client) PublishDirectory(ctx context.Context, spec []byte) (DirectoryPublished, error) {
	var out DirectoryPublished
	if c.id == nil {
		return out, errors.New("client: this device does not hold its person's identity key, which signs the directory")
	}
	org, err := c.enrolmentAnchor()
	if err != nil {
		return out, err
	}
	var (
		anchor directory.Anchor
		held   *directory.Directory
	)
	if err := c.st.view(func(t *tx) (err error) { anchor, held, _, err = c.directoryAnchor(t); return err }); err != nil {
		return out, err
	}
	d, err := buildDirectory(spec, org.Org, held, c.now())
	if err != nil {
		return out, err
	}
	b, err := d.Sign(c.id, held)
	if err != nil {
		return out, invalidDirectory("%v", err)
	}
	// Checked as every staff device will check it, before anything is
	// logged.
	if _, err := directory.Accept(anchor, b); err != nil {
		return out, directoryRefused(err)
	}
	var capability protocol.CapabilityToken
	err = c.st.update(func(t *tx) error {
		rec, err := t.Directory()
		if err != nil {
			return err
		}
		if rec == nil {
			rec = &store.DirectoryRecord{}
		}
		if len(rec.Capability) == 0 {
			capability = protocol.NewCapabilityToken()
			rec.Capability = capability.SecretBytes()
			return t.PutDirectory(rec)
		}
		capability, err = protocol.CapabilityTokenFromBytes(rec.Capability)
		return err
	})
	if err != nil {
		return out, err
	}
	cn, err := c.authConn(ctx)
	if err != nil {
		return out, err
	}
	resp, err := cn.request(ctx, &protocol.PublishDirectory{LogKey: directory.LogKey(d.Org), Version: d.Version, Hash: directory.Hash(b), Capability: capability})
	switch {
	case protocol.IsCode(err, protocol.CodeDirectoryCapability):
		return out, ErrDirectoryCapability
	case protocol.IsCode(err, protocol.CodeStaleDirectory):
		return out, invalidDirectory("version %d is not above the version the relay's log holds", d.Version)
	case err != nil:
		return out, err
	}
	if _, ok := resp.(*protocol.DirectoryLeaf); !ok {
		return out, unexpected(resp)
	}
	err = c.st.update(func(t *tx) error {
		rec, err := t.Directory()
		if err != nil || rec == nil || rec.CapabilityLogged {
			return err
		}
		rec.CapabilityLogged = true
		return t.PutDirectory(rec)
	})
	if err != nil {
		return out, err
	}
	if err := c.AcceptDirectory(ctx, b); err != nil {
		return out, err
	}
	out.Version = d.Version
	if out.Sent, out.Unreached, err = c.sendDirectory(ctx, d, b); err != nil {
		return out, err
	}
	out.Administrators, out.AdministratorsUnreached, err = c.shareCapability(ctx, d, capability)
	if err != nil {
		return out, err
	}
	// The organisation reach secret, so that staff reach one another
	// without invitations (reach.go).
	if _, _, err := c.publishReach(ctx, held, d); err != nil {
		c.log.Warn("could not send the organisation reach secret", "err", err)
	}
	return out, nil
}

// sendDirectory uploads b once and sends its reference to every device
// of the listed staff who are contacts, and to this person's other
// devices. It returns how many staff members it went to and how many it
// could not reach.
func (c *Client) sendDirectory(ctx context.Context, d *directory.Directory, b []byte) (sent, unreached int, err error) {
	targets, unreached, err := c.staffTargets(d)
	if err != nil || (len(targets) == 1 && len(targets[0]) == 0) {
		return 0, unreached, err
	}
	fd := &FileData{Name: directoryAttachmentName, Size: int64(len(b)), Data: bytes.NewReader(b)}
	ref, err := c.uploadFile(ctx, fileSource{data: fd}, &SendOptions{KeepMetadata: true})
	if err != nil {
		return 0, unreached, err
	}
	sent, more := c.sendToStaff(ctx, targets, "the organisation directory", func() *content {
		return &content{Type: contentDirectory, Attachments: []attachmentRef{ref}}
	})
	return sent, unreached + more, nil
}

// staffTargets returns this person's other devices first, then, one list
// per person, the devices of each staff member of d who is a contact (not
// blocked, not known only through a group: section 15.7 sends only to
// contacts); unreached counts the staff members left out.
func (c *Client) staffTargets(d *directory.Directory) (targets [][]*contactRecord, unreached int, err error) {
	ids := make([]keys.Fingerprint, len(d.Staff))
	for i, s := range d.Staff {
		ids[i] = s.Identity
	}
	return c.peopleTargets(ids)
}

// peopleTargets returns this person's other devices first, then, one list
// per person, the devices of each person of ids (this person skipped) who
// is a contact, not blocked and not known only through a group;
// unreached counts the people left out.
func (c *Client) peopleTargets(ids []keys.Fingerprint) (targets [][]*contactRecord, unreached int, err error) {
	err = c.st.view(func(t *tx) error {
		self, err := t.self()
		if err != nil {
			return err
		}
		sibs, err := c.targets(t, self)
		if err != nil {
			return err
		}
		targets = append(targets, sibs)
		for _, id := range ids {
			if id == c.idFP {
				continue
			}
			p, err := t.personByIdentity(id)
			if err != nil {
				return err
			}
			var devs []*contactRecord
			if p != nil && !p.Blocked && !p.ViaGroup {
				if devs, err = c.targets(t, p); err != nil {
					return err
				}
			}
			if len(devs) == 0 {
				unreached++
				continue
			}
			targets = append(targets, devs)
		}
		return nil
	})
	return targets, unreached, err
}

// sendToStaff sends each device of targets (as staffTargets gives them)
// a content of its own, made by mk and given a fresh ID here; what names
// it in the log. It returns how many staff members it reached and how
// many it could reach on none of their devices (this person's own
// devices are counted in neither).
func (c *Client) sendToStaff(ctx context.Context, targets [][]*contactRecord, what string, mk func() *content) (sent, unreached int) {
	for i, devs := range targets {
		ok := false
		for _, r := range devs {
			ct := mk()
			ct.Sender, ct.SentMS = c.devID, uint64(c.now().UnixMilli())
			copy(ct.MsgID[:], randomID(msgIDSize))
			if err := c.sendSession(ctx, r, ct); err != nil && !errors.Is(err, ErrQueued) {
				c.log.Warn("could not send to a device", "what", what, "err", err)
				continue
			}
			ok = true
		}
		switch {
		case i == 0: // this person's other devices
		case ok:
			sent++
		default:
			unreached++
		}
	}
	return sent, unreached
}

// ---- receiving ----

// receiveDirectory notes a received directory for afterReceive, on a
// device with an enrolment; others (an outsider's) ignore it.
func (c *Client) receiveDirectory(from *contactRecord, ct *content, res *received) {
	if c.dirEnrol == nil || len(ct.Attachments) != 1 || ct.Text != "" {
		return
	}
	a := ct.Attachments[0]
	if a.PlainSize < directory.MinDirectorySize || a.PlainSize > directory.MaxDirectorySize {
		c.log.Info("ignored a directory of an impossible size", "bytes", a.PlainSize)
		return
	}
	relay := from.Relay
	if relay == "" {
		relay = c.relay
	}
	res.directory = &directoryTask{ref: a, relay: relay}
}

// runDirectoryTask downloads, verifies and accepts a received directory.
// A refusal is logged and reported as EventDirectory (AcceptDirectory).
func (c *Client) runDirectoryTask(ctx context.Context, task *directoryTask) {
	if task == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, directoryTimeout)
	defer cancel()
	b, err := c.downloadDirectory(ctx, task)
	if err != nil {
		c.log.Warn("could not fetch a received organisation directory", "err", err)
		return
	}
	if err := c.AcceptDirectory(ctx, b); err != nil && !errors.Is(err, ErrDirectoryRefused) {
		c.log.Warn("could not check a received organisation directory", "err", err)
	}
}

// downloadDirectory downloads and decrypts a directory's blob, checking
// its digest.
func (c *Client) downloadDirectory(ctx context.Context, task *directoryTask) ([]byte, error) {
	a := &task.ref
	if uint64(attach.CipherSize(int64(a.PlainSize))) != a.CipherSize {
		return nil, fmt.Errorf("%w: directory: sizes do not match the chunk format", ErrInvalidAttachment)
	}
	key, err := attach.KeyFromBytes(a.Key[:])
	if err != nil {
		return nil, fmt.Errorf("%w: directory: %v", ErrInvalidAttachment, err)
	}
	var buf bytes.Buffer
	buf.Grow(int(a.PlainSize))
	dec := attach.NewDecryptor(key, int64(a.PlainSize), &limitedBuffer{b: &buf, n: int(a.PlainSize)})
	if err := c.downloadBlob(ctx, task.relay, a.Blob, int64(a.CipherSize), dec, directoryAttachmentName); err != nil {
		return nil, err
	}
	digest, err := dec.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: directory: %w", ErrAttachmentCorrupt, err)
	}
	if digest != a.Digest || uint64(buf.Len()) != a.PlainSize {
		return nil, fmt.Errorf("%w: directory: the file's digest does not match the message", ErrAttachmentCorrupt)
	}
	return buf.Bytes(), nil
}

// limitedBuffer refuses to grow past n bytes.
type limitedBuffer struct {
	b *bytes.Buffer
	n int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.b.Len()+len(p) > l.n {
		return 0, io.ErrShortWrite
	}
	return l.b.Write(p)
}
