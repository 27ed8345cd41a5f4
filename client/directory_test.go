package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/team/directory"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

// dirOrg is an organisation for the directory tests: its enrolment names
// admin as its first administrator.
type dirOrg struct {
	srv    *relaytest.Server
	enrol  *DirectoryEnrolment
	admin  *Client
	byName map[string]*Client
}

// newDirOrg starts a relay and an administrator ("admin") enrolled in a
// new organisation.
func newDirOrg(t *testing.T) *dirOrg { t.Helper(); return newDirOrgClock(t, nil) }

// newDirOrgClock is newDirOrg with the administrator's device on clock
// k (nil: the real one).
func newDirOrgClock(t *testing.T, k *skewClock) *dirOrg {
	t.Helper()
	srv := relaytest.New(t, nil)
	home := filepath.Join(t.TempDir(), "admin")
	c, err := Init(testCtx(t), home, testPass, srv.URL, "Ada Admin", testOpts())
	if err != nil {
		t.Fatal(err)
	}
	fp := c.Whoami().Identity
	c.Close()
	o := &dirOrg{srv: srv, enrol: &DirectoryEnrolment{Administrators: []keys.Fingerprint{fp}}, byName: map[string]*Client{}}
	rand.Read(o.enrol.Organisation[:])
	opts := testOpts()
	if k != nil {
		opts = clockOpts(k)
	}
	opts.Directory = o.enrol
	if o.admin, err = Dial(testCtx(t), home, testPass, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.admin.Close() })
	return o
}

// join makes a client named name, enrolled in the organisation unless
// outsider, and a contact of the administrator (each under the other's
// name).
func (o *dirOrg) join(t *testing.T, name string, outsider bool) *Client {
	t.Helper()
	ctx := testCtx(t)
	opts := testOpts()
	if !outsider {
		opts.Directory = o.enrol
	}
	c, err := Init(ctx, filepath.Join(t.TempDir(), name), testPass, o.srv.URL, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	code, err := o.admin.Invite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Accept(ctx, code, "Ada"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 3, o.admin, c)
	o.byName[name] = c
	return c
}

// spec is a directory description listing the administrator and the
// given staff in Pharmacy, with a role account.
func (o *dirOrg) spec(t *testing.T, version uint64, title string, staff ...*Client) []byte {
	t.Helper()
	type person struct {
		Identity string   `json:"identity"`
		Name     string   `json:"name"`
		Title    string   `json:"title,omitempty"`
		Teams    []string `json:"teams,omitempty"`
	}
	admin := o.admin.Whoami().Identity.String()
	s := map[string]any{
		"version":        version,
		"administrators": []string{admin},
		"teams":          []map[string]string{{"name": "Pharmacy"}, {"name": "Ward 4"}},
		"roles":          []map[string]string{{"name": "Pharmacy on call", "team": "Pharmacy"}},
	}
	ps := []person{{Identity: admin, Name: "Ada Admin", Title: "Administrator"}}
	for _, c := range staff {
		ps = append(ps, person{Identity: c.Whoami().Identity.String(), Name: c.Whoami().Name, Title: title, Teams: []string{"Pharmacy"}})
	}
	s["staff"] = ps
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// heldDirectoryBytes is what c holds, nil if nothing.
func heldDirectoryBytes(t *testing.T, c *Client) []byte {
	t.Helper()
	var b []byte
	err := c.st.view(func(t *tx) error {
		rec, err := t.Directory()
		if rec != nil {
			b = bytes.Clone(rec.Directory)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signUnpublished signs the directory spec describes with signer's
// identity key, as a successor of what signer holds, without logging it.
func signUnpublished(t *testing.T, o *dirOrg, signer *Client, spec []byte) []byte {
	t.Helper()
	var held *directory.Directory
	if b := heldDirectoryBytes(t, signer); b != nil {
		var err error
		if held, err = directory.Parse(b); err != nil {
			t.Fatal(err)
		}
	}
	d, err := buildDirectory(spec, directory.OrgID(o.enrol.Organisation), held, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if signer != o.admin {
		// A staff member listing themselves as an administrator: the
		// directory proves nothing of its own.
		d.Admins = append(d.Admins, signer.Whoami().Identity)
		if bytes.Compare(d.Admins[0][:], d.Admins[1][:]) > 0 {
			d.Admins[0], d.Admins[1] = d.Admins[1], d.Admins[0]
		}
	}
	b, err := d.Sign(signer.id, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantHeld checks that c holds version v of the directory and finds the
// Pharmacy team and colleague by lookup.
func wantHeld(t *testing.T, c *Client, v uint64, colleague string) {
	t.Helper()
	d, err := c.Directory()
	if err != nil || d.Version != v {
		t.Fatalf("%s holds %+v, %v; want version %d", c.Whoami().Name, d, err, v)
	}
	ms, err := c.LookupDirectory("phar", 10)
	// The team, its role account, then the staff of the team.
	if err != nil || len(ms) != 3 || ms[0].Kind != DirectoryTeam || ms[0].Name != "Pharmacy" || ms[1].Kind != DirectoryRole || ms[2].Kind != DirectoryPerson {
		t.Fatalf("lookup phar: %+v, %v", ms, err)
	}
	ms, err = c.LookupDirectory(colleague, 10)
	if err != nil || len(ms) != 1 || ms[0].Kind != DirectoryPerson || ms[0].Name != colleague {
		t.Fatalf("lookup %q: %+v, %v", colleague, ms, err)
	}
}

// TestDirectoryOverRelay: an administrator publishes a directory; a staff
// device receives it as an attachment, checks it against its enrolment
// and the relay's transparency log, and finds its entries by lookup; an
// outsider receives nothing. Forged directories (a bad signature, a
// staff member's signature naming themselves administrator) and
// rolled-back ones (a lower version; a hash the log does not show under
// its version; a version the log does not show; one held back under a
// newer logged one) are refused with ErrDirectoryRefused, an
// EventDirectory, and nothing changed.
func TestDirectoryOverRelay(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	o := newDirOrg(t)
	bob := o.join(t, "Bob Baker", false)
	pat := o.join(t, "Pat Patient", true)

	pub, err := o.admin.PublishDirectory(ctx, o.spec(t, 0, "Pharmacist", bob))
	if err != nil || pub.Version != 1 || pub.Sent != 1 || pub.Unreached != 0 {
		t.Fatalf("publish: %+v, %v", pub, err)
	}
	wantHeld(t, o.admin, 1, "Bob Baker")
	syncAll(t, 2, bob, pat)
	wantHeld(t, bob, 1, "Ada Admin")
	if ms, _ := bob.LookupDirectory("ada", 5); len(ms) != 1 || ms[0].Contact != "Ada" {
		t.Fatalf("the administrator is not shown as bob's contact: %+v", ms)
	}
	if _, err := pat.Directory(); !errors.Is(err, ErrNoDirectory) {
		t.Fatalf("an outsider holds a directory: %v", err)
	}
	if err := pat.AcceptDirectory(ctx, heldDirectoryBytes(t, o.admin)); !errors.Is(err, ErrNoDirectory) {
		t.Fatalf("an outsider accepted a directory: %v", err)
	}

	// Version 2 reaches bob; version 1 is then a rollback.
	v1 := heldDirectoryBytes(t, bob)
	if _, err := o.admin.PublishDirectory(ctx, o.spec(t, 0, "Senior pharmacist", bob)); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, bob)
	wantHeld(t, bob, 2, "Ada Admin")
	v2 := heldDirectoryBytes(t, bob)

	events, err := bob.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	badSig := bytes.Clone(v2)
	badSig[len(badSig)-1] ^= 1
	forkV3 := signUnpublished(t, o, o.admin, o.spec(t, 3, "Forked", bob))
	notLogged := signUnpublished(t, o, o.admin, o.spec(t, 9, "Never logged", bob))
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"bad signature", badSig, directory.ErrBadSignature},
		{"a staff member's signature", signUnpublished(t, o, bob, o.spec(t, 3, "Self-appointed", bob)), directory.ErrNotAdmin},
		{"lower version", v1, directory.ErrRollback},
		{"version the log does not show", notLogged, errDirectoryNotLogged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := bob.AcceptDirectory(ctx, tc.b)
			if !errors.Is(err, ErrDirectoryRefused) || !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if !bytes.Equal(heldDirectoryBytes(t, bob), v2) {
				t.Fatal("a refused directory changed what bob holds")
			}
			wantDirectoryEvent(t, events)
		})
	}

	// Logged without being sent (so that nothing reaches bob on its
	// own): version 3, then version 4.
	v3 := signUnpublished(t, o, o.admin, o.spec(t, 3, "Pharmacist", bob))
	v4 := signUnpublished(t, o, o.admin, o.spec(t, 4, "Pharmacist", bob))
	logOnly(t, o, v3)
	if err := bob.AcceptDirectory(ctx, forkV3); !errors.Is(err, ErrDirectoryRefused) || !errors.Is(err, kt.ErrFork) {
		t.Fatalf("a directory under a logged version with another hash: %v", err)
	}
	logOnly(t, o, v4)
	if err := bob.AcceptDirectory(ctx, v3); !errors.Is(err, ErrDirectoryRefused) || !errors.Is(err, errDirectoryHeldBack) {
		t.Fatalf("a directory held back under a newer logged one: %v", err)
	}
	if !bytes.Equal(heldDirectoryBytes(t, bob), v2) {
		t.Fatal("a refused directory changed what bob holds")
	}
	if err := bob.AcceptDirectory(ctx, v4); err != nil {
		t.Fatal(err)
	}
	wantHeld(t, bob, 4, "Ada Admin")
}

// logOnly logs directory b's leaf with the administrator's publishing
// capability, and sends it to nobody.
func logOnly(t *testing.T, o *dirOrg, b []byte) {
	t.Helper()
	ctx := testCtx(t)
	d, err := directory.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	var capability protocol.CapabilityToken
	err = o.admin.st.view(func(t *tx) error {
		rec, err := t.Directory()
		if err == nil {
			capability, err = protocol.CapabilityTokenFromBytes(rec.Capability)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	cn, err := o.admin.authConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cn.request(ctx, &protocol.PublishDirectory{LogKey: directory.LogKey(d.Org), Version: d.Version, Hash: directory.Hash(b), Capability: capability}); err != nil {
		t.Fatal(err)
	}
}

func wantDirectoryEvent(t *testing.T, events <-chan Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		select {
		case ev := <-events:
			if ev.Kind != EventDirectory {
				continue
			}
			if !errors.Is(ev.Err, ErrDirectoryRefused) {
				t.Fatalf("directory event without a refusal: %v", ev.Err)
			}
			return
		case <-ctx.Done():
			t.Fatal("no directory event")
		}
	}
}

// TestPublishDirectoryRefusals: a device that is not an administrator of
// the enrolment cannot publish; a description that breaks a rule is
// refused before anything is logged; a second publishing capability for
// the same organisation is refused by the relay.
func TestPublishDirectoryRefusals(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	o := newDirOrg(t)
	bob := o.join(t, "Bob Baker", false)
	if _, err := bob.PublishDirectory(ctx, o.spec(t, 0, "Pharmacist", bob)); !errors.Is(err, ErrInvalidDirectory) && !errors.Is(err, ErrDirectoryRefused) {
		t.Fatalf("a staff member published: %v", err)
	}
	for name, spec := range map[string]string{
		"unknown team":  `{"administrators":["` + o.admin.Whoami().Identity.String() + `"],"teams":[],"staff":[{"identity":"` + bob.Whoami().Identity.String() + `","name":"Bob","teams":["Nowhere"]}],"roles":[]}`,
		"unknown field": `{"administrators":[],"colour":"red"}`,
		"no admins":     `{"administrators":[],"teams":[],"staff":[],"roles":[]}`,
	} {
		if _, err := o.admin.PublishDirectory(ctx, []byte(spec)); !errors.Is(err, ErrInvalidDirectory) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := o.admin.Directory(); !errors.Is(err, ErrNoDirectory) {
		t.Fatalf("a refused publish left a directory: %v", err)
	}
	// Another device takes the organisation's log key first.
	cn, err := bob.authConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cn.request(ctx, &protocol.PublishDirectory{LogKey: directory.LogKey(directory.OrgID(o.enrol.Organisation)), Version: 1, Hash: [32]byte{1}, Capability: protocol.NewCapabilityToken()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.admin.PublishDirectory(ctx, o.spec(t, 2, "Pharmacist", bob)); !errors.Is(err, ErrDirectoryCapability) {
		t.Fatalf("publish under another capability: %v", err)
	}
}
