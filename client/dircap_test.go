package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/postern/postern/keys"
)

// heldCapability is the publishing capability c holds, nil if none.
func heldCapability(t *testing.T, c *Client) []byte {
	t.Helper()
	var b []byte
	err := c.st.view(func(t *tx) error {
		rec, err := t.Directory()
		if rec != nil {
			b = bytes.Clone(rec.Capability)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withAdmins is spec with these people as its administrators too.
func withAdmins(t *testing.T, spec []byte, admins ...*Client) []byte {
	t.Helper()
	var s map[string]any
	if err := json.Unmarshal(spec, &s); err != nil {
		t.Fatal(err)
	}
	list := s["administrators"].([]any)
	for _, a := range admins {
		list = append(list, a.Whoami().Identity.String())
	}
	s["administrators"] = list
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sendCapability sends body as a directory capability content from one
// client to every device of the contact with identity to.
func sendCapability(t *testing.T, from *Client, to keys.Fingerprint, body []byte) {
	t.Helper()
	var targets [][]*contactRecord
	err := from.st.view(func(t *tx) error {
		p, err := t.personByIdentity(to)
		if err != nil || p == nil {
			return errors.Join(err, errors.New("not a contact"))
		}
		devs, err := from.targets(t, p)
		targets = [][]*contactRecord{nil, devs}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if sent, _ := from.sendToStaff(testCtx(t), targets, "test", func() *content {
		return &content{Type: contentDirCapability, DirCapability: bytes.Clone(body)}
	}); sent != 1 {
		t.Fatalf("sent to %d", sent)
	}
}

// TestDirectoryCapabilityShared: the administrator who first publishes
// shares the organisation's publishing capability with the directory's
// other administrators, and one of them publishes the next version,
// which reaches the first. Staff are never sent it, and a capability a
// staff member (not an administrator) sends, or one sent to a staff
// member, is ignored; one the relay has accepted is never replaced.
func TestDirectoryCapabilityShared(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	o := newDirOrg(t)
	bob := o.join(t, "Bob Baker", false)
	cara := o.join(t, "Cara Chief", false)
	// Bob and Cara are contacts too, so that Bob can try to hand Cara a
	// capability.
	code, err := cara.Invite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Accept(ctx, code, "Cara"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 3, cara, bob)

	pub, err := o.admin.PublishDirectory(ctx, withAdmins(t, o.spec(t, 0, "Pharmacist", bob, cara), cara))
	if err != nil || pub.Version != 1 || pub.Administrators != 1 || pub.AdministratorsUnreached != 0 {
		t.Fatalf("publish: %+v, %v", pub, err)
	}
	syncAll(t, 2, bob, cara)
	ada := heldCapability(t, o.admin)
	if len(ada) != 32 || !bytes.Equal(heldCapability(t, cara), ada) {
		t.Fatal("the other administrator does not hold the organisation's capability")
	}
	if heldCapability(t, bob) != nil {
		t.Fatal("a staff member holds the publishing capability")
	}

	// A staff member hands an administrator another capability: ignored
	// (Cara's is not yet proved by a publish, so only the sender's rule
	// keeps it out).
	forged := append(bytes.Clone(o.enrol.Organisation[:]), bytes.Repeat([]byte{7}, 32)...)
	sendCapability(t, bob, cara.Whoami().Identity, forged)
	// An administrator's capability sent to a staff member: ignored.
	sendCapability(t, o.admin, bob.Whoami().Identity, append(bytes.Clone(o.enrol.Organisation[:]), ada...))
	syncAll(t, 2, cara, bob)
	if !bytes.Equal(heldCapability(t, cara), ada) {
		t.Fatal("a staff member's capability replaced the administrator's")
	}
	if heldCapability(t, bob) != nil {
		t.Fatal("a staff member kept a publishing capability")
	}

	// Cara publishes the next version from her device; it reaches Ada.
	pub, err = cara.PublishDirectory(ctx, withAdmins(t, o.spec(t, 0, "Senior pharmacist", bob, cara), cara))
	if err != nil || pub.Version != 2 || pub.Administrators != 1 {
		t.Fatalf("the second administrator's publish: %+v, %v", pub, err)
	}
	syncAll(t, 2, o.admin, bob)
	for _, c := range []*Client{o.admin, bob} {
		if d, err := c.Directory(); err != nil || d.Version != 2 {
			t.Fatalf("%s holds %+v, %v; want version 2", c.Whoami().Name, d, err)
		}
	}

	// A capability the relay accepted is never replaced, even by an
	// administrator's.
	other := append(bytes.Clone(o.enrol.Organisation[:]), bytes.Repeat([]byte{9}, 32)...)
	sendCapability(t, cara, o.admin.Whoami().Identity, other)
	syncAll(t, 2, o.admin)
	if !bytes.Equal(heldCapability(t, o.admin), ada) {
		t.Fatal("a shared capability replaced one the relay accepted")
	}
}

func FuzzDirCapabilityContent(f *testing.F) {
	var dev keys.Fingerprint
	dev[0] = 5
	addSessionSeeds(f, &content{Type: contentDirCapability, Sender: dev, SentMS: 1, DirCapability: bytes.Repeat([]byte{1}, dirCapabilityBodySize)})
	fuzzSessionContent(f, func(t *testing.T, ct *content) {
		if ct.Type == contentDirCapability && len(ct.DirCapability) != dirCapabilityBodySize {
			t.Fatalf("a capability body of %d bytes parsed", len(ct.DirCapability))
		}
	})
}
