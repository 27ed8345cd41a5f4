package client

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/team/directory"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/relay/relaytest"
)

const onCall = "Pharmacy on call"

// roleOrg is an organisation on one relay: the administrator Ada; the
// team Pharmacy (its intake profile, enrolled, holding the directory)
// with staff ann and ben (two devices each) and cal; the role account
// "Pharmacy on call" of the team; outsiders who write to the team.
type roleOrg struct {
	srv      *relaytest.Server
	enrol    *DirectoryEnrolment
	admin    *Client
	intake   *Client
	ann, ben [2]*Client
	cal      *Client
}

// staffDevices is every staff device, ann's first.
func (o *roleOrg) staffDevices() []*Client {
	return []*Client{o.ann[0], o.ann[1], o.ben[0], o.ben[1], o.cal}
}

// enrolled makes a client named name, enrolled in the organisation.
func (o *roleOrg) enrolled(t *testing.T, name string) *Client {
	t.Helper()
	opts := testOpts()
	opts.Directory = o.enrol
	c, err := Init(testCtx(t), filepath.Join(t.TempDir(), name), testPass, o.srv.URL, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// linkEnrolled links a second device to c and opens it enrolled.
func (o *roleOrg) linkEnrolled(t *testing.T, c *Client, name string) *Client {
	t.Helper()
	n, home := linkNew(t, c, name)
	n.Close()
	opts := testOpts()
	opts.Directory = o.enrol
	d, err := Dial(testCtx(t), home, testPass, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func newRoleOrg(t *testing.T) *roleOrg {
	t.Helper()
	ctx := testCtx(t)
	o := &roleOrg{srv: relaytest.New(t, nil)}
	home := filepath.Join(t.TempDir(), "admin")
	c, err := Init(ctx, home, testPass, o.srv.URL, "Ada Admin", testOpts())
	if err != nil {
		t.Fatal(err)
	}
	o.enrol = &DirectoryEnrolment{Administrators: []keys.Fingerprint{c.Whoami().Identity}}
	c.Close()
	rand.Read(o.enrol.Organisation[:])
	opts := testOpts()
	opts.Directory = o.enrol
	if o.admin, err = Dial(ctx, home, testPass, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.admin.Close() })
	o.intake = o.enrolled(t, "Pharmacy")
	o.ann[0], o.ben[0], o.cal = o.enrolled(t, "ann"), o.enrolled(t, "ben"), o.enrolled(t, "cal")
	for _, s := range []*Client{o.ann[0], o.ben[0], o.cal} {
		befriend(t, o.intake, s, "Pharmacy")
		befriend(t, o.admin, s, "Ada")
	}
	befriend(t, o.ann[0], o.ben[0], "ann")
	befriend(t, o.ann[0], o.cal, "ann")
	befriend(t, o.ben[0], o.cal, "ben")
	o.ann[1] = o.linkEnrolled(t, o.ann[0], "ann-2")
	o.ben[1] = o.linkEnrolled(t, o.ben[0], "ben-2")
	syncAll(t, 3, append([]*Client{o.admin, o.intake}, o.staffDevices()...)...)
	team, err := o.intake.CreateTeam(ctx, "Pharmacy")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"ann", "ben", "cal"} {
		if _, err := o.intake.AddStaff(ctx, "Pharmacy", n); err != nil {
			t.Fatal(err)
		}
	}
	settleGroup(t, "Pharmacy", append([]*Client{o.intake}, o.staffDevices()...)...)

	// The directory: Pharmacy (its staff group named) and Ward 4, each
	// with a role account; ann, ben and cal in Pharmacy.
	spec := map[string]any{
		"administrators": []string{o.admin.Whoami().Identity.String()},
		"teams":          []map[string]string{{"name": "Pharmacy", "group": team.ID}, {"name": "Ward 4"}},
		"roles":          []map[string]string{{"name": onCall, "team": "Pharmacy"}, {"name": "Ward 4 on call", "team": "Ward 4"}},
	}
	staff := []map[string]any{{"identity": o.admin.Whoami().Identity.String(), "name": "Ada Admin"}}
	for _, s := range []*Client{o.ann[0], o.ben[0], o.cal} {
		staff = append(staff, map[string]any{"identity": s.Whoami().Identity.String(), "name": s.Whoami().Name, "teams": []string{"Pharmacy"}})
	}
	spec["staff"] = staff
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.admin.PublishDirectory(ctx, b); err != nil {
		t.Fatal(err)
	}
	// The intake is not listed: the directory is handed to it.
	if err := o.intake.AcceptDirectory(ctx, heldDirectoryBytes(t, o.admin)); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, o.staffDevices()...)
	for _, c := range o.staffDevices() {
		if rs, err := c.Roles(); err != nil || len(rs) != 2 || rs[0].Name != onCall || rs[0].Team != "Pharmacy" || rs[0].Holder != "" {
			t.Fatalf("%s: roles %+v, %v", c.name, rs, err)
		}
	}
	return o
}

// outsider makes a client named name who accepts inv, the team's
// invitation, and writes text to the team.
func (o *roleOrg) outsider(t *testing.T, name, inv, text string) *Client {
	t.Helper()
	ctx := testCtx(t)
	c, _ := newTestClient(t, o.srv, name)
	if _, err := c.Accept(ctx, inv, "Pharmacy"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 3, o.intake, c)
	if _, err := c.Send(ctx, "Pharmacy", text); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, o.intake)
	return c
}

// person is whose devices c is: ann, ben or cal ("" for the intake).
func (o *roleOrg) person(c *Client) string {
	switch c {
	case o.ann[0], o.ann[1]:
		return "ann"
	case o.ben[0], o.ben[1]:
		return "ben"
	case o.cal:
		return "cal"
	}
	return ""
}

// waitOwner syncs the staff devices and the intake until every one of
// them shows the queue conversation of the outsider who in state, owned
// by owner ("" none; Me on owner's own devices), and returns its ID. The
// rounds are a hang guard, not a timing assertion.
func (o *roleOrg) waitOwner(t *testing.T, who, state, owner string) string {
	t.Helper()
	devs := append([]*Client{o.intake}, o.staffDevices()...)
	var last error
	for round := range 10 {
		if round > 0 {
			syncConcurrently(t, devs...)
		}
		last = nil
		var id string
		for _, c := range devs {
			it, err := o.itemOf(c, who)
			want := owner
			if owner != "" && o.person(c) == owner {
				want = Me
			}
			switch {
			case err != nil:
				last = err
			case it.State != state || it.Owner != want:
				last = fmt.Errorf("%s (%s) shows %s's conversation %s owned by %q, want %s by %q", c.name, o.person(c), who, it.State, it.Owner, state, want)
			case id != "" && it.ID != id:
				last = fmt.Errorf("two IDs for %s's conversation", who)
			}
			if last != nil {
				break
			}
			id = it.ID
		}
		if last == nil {
			return id
		}
	}
	t.Fatal(last)
	return ""
}

func (o *roleOrg) itemOf(c *Client, who string) (QueueItem, error) {
	items, err := c.Queue("Pharmacy", QueueAll)
	if err != nil {
		return QueueItem{}, err
	}
	for _, it := range items {
		if it.Outsider == who {
			return it, nil
		}
	}
	return QueueItem{}, fmt.Errorf("%s holds no conversation with %s", c.name, who)
}

// wantHolder checks that every device of cs shows the role held by
// holder ("" vacant; Me on holder's own devices) at sequence seq.
func (o *roleOrg) wantHolder(t *testing.T, holder string, seq uint64, cs ...*Client) {
	t.Helper()
	for _, c := range cs {
		rs, err := c.Roles()
		want := holder
		if holder != "" && o.person(c) == holder {
			want = Me
		}
		if err != nil || len(rs) == 0 || rs[0].Name != onCall || rs[0].Holder != want || rs[0].Seq != seq {
			t.Fatalf("%s: roles %+v, %v; want %q at %d", c.name, rs, err, want, seq)
		}
	}
}

// TestRoleHandoverRelay: over a real relay, outsiders invited for the role
// account "Pharmacy on call" write to the team; ann holds the role and her
// device claims their conversations as they arrive; she assigns one to
// cal. When ben takes the role, ann's conversation of the role becomes
// his on every device (the intake's view included), assigned by ann;
// the one she gave cal stays with cal, and a conversation that was not
// addressed to the role stays with ann. When ben leaves the role, his
// conversations of the role go back to new.
func TestRoleHandoverRelay(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	o := newRoleOrg(t)
	everyone := append([]*Client{o.admin}, o.staffDevices()...)

	if _, err := o.intake.TeamInviteRole(ctx, "Pharmacy", "Ward 4 on call"); !errors.Is(err, ErrUnknownRole) {
		t.Fatalf("an invitation for another team's role: %v", err)
	}
	if _, err := o.intake.TeamInviteRole(ctx, "Pharmacy", "Night porter"); !errors.Is(err, ErrUnknownRole) {
		t.Fatalf("an invitation for an unknown role: %v", err)
	}

	ri, err := o.ann[0].TakeRole(ctx, onCall)
	if err != nil || ri.Holder != Me || ri.Seq != 1 {
		t.Fatalf("take: %+v, %v", ri, err)
	}
	syncAll(t, 1, everyone...)
	o.wantHolder(t, "ann", 1, everyone...)

	// pat and quinn come for the role; rex for the team.
	inv := func() string {
		code, err := o.intake.TeamInviteRole(ctx, "Pharmacy", onCall)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	o.outsider(t, "pat", inv(), "refill please")
	pat := o.waitOwner(t, "pat", "claimed", "ann")
	o.outsider(t, "quinn", inv(), "is my order ready?")
	quinn := o.waitOwner(t, "quinn", "claimed", "ann")
	plain, err := o.intake.TeamInvite(ctx, "Pharmacy")
	if err != nil {
		t.Fatal(err)
	}
	o.outsider(t, "rex", plain, "opening hours?")
	o.waitOwner(t, "rex", "new", "")
	if _, err := o.ann[1].Claim(ctx, queueIDOf(t, o.ann[1], "rex")); err != nil {
		t.Fatal(err)
	}
	o.waitOwner(t, "rex", "claimed", "ann")
	if _, err := o.ann[0].Assign(ctx, quinn, "cal"); err != nil {
		t.Fatal(err)
	}
	o.waitOwner(t, "quinn", "assigned", "cal")

	// ben takes over. His device reports the new holder and the queue
	// its handover changed; ann's other device reports the record.
	benEvents, err := o.ben[0].Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	annEvents, err := o.ann[1].Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ri, err := o.ben[0].TakeRole(ctx, onCall); err != nil || ri.Holder != Me || ri.Seq != 2 {
		t.Fatalf("take over: %+v, %v", ri, err)
	}
	if id := o.waitOwner(t, "pat", "assigned", "ben"); id != pat {
		t.Fatalf("pat's conversation is now %s, was %s", id, pat)
	}
	wantEvents(t, "ben's device", benEvents, Event{Kind: EventRole, Role: onCall, Team: "Pharmacy"}, Event{Kind: EventQueue, Team: "Pharmacy"})
	wantEvents(t, "ann's other device", annEvents, Event{Kind: EventRole, Role: onCall, Team: "Pharmacy"})
	o.wantHolder(t, "ben", 2, everyone...)
	for _, c := range append([]*Client{o.intake}, o.staffDevices()...) {
		it, err := o.itemOf(c, "pat")
		want := "ann"
		if o.person(c) == "ann" {
			want = Me
		}
		if err != nil || it.AssignedBy != want || it.Role != onCall {
			t.Fatalf("%s: pat's conversation %+v, %v: want assigned by %s", c.name, it, err, want)
		}
		if c == o.intake {
			continue // the intake keeps the outsider's direct conversation
		}
		if th, err := c.QueueThread(pat); err != nil || len(th) != 1 || th[0].Text != "refill please" {
			t.Fatalf("%s: pat's thread %+v, %v", c.name, th, err)
		}
	}
	o.waitOwner(t, "quinn", "assigned", "cal")
	o.waitOwner(t, "rex", "claimed", "ann")

	// ben leaves: vacant, his conversations of the role back to new.
	if ri, err := o.ben[0].LeaveRole(ctx, onCall); err != nil || ri.Holder != "" || ri.Seq != 3 {
		t.Fatalf("leave: %+v, %v", ri, err)
	}
	o.waitOwner(t, "pat", "new", "")
	o.wantHolder(t, "", 3, everyone...)
	o.waitOwner(t, "quinn", "assigned", "cal")
	o.waitOwner(t, "rex", "claimed", "ann")

	// The administrator gives the role to ann: the new conversation is
	// hers again.
	if ri, err := o.admin.SetRoleHolder(ctx, onCall, "ann"); err != nil || ri.Holder != "ann" || ri.Seq != 4 {
		t.Fatalf("set: %+v, %v", ri, err)
	}
	o.waitOwner(t, "pat", "claimed", "ann")
}

// wantEvents checks that the events emitted so far on ch include each of
// want (by kind, role and team).
func wantEvents(t *testing.T, who string, ch <-chan Event, want ...Event) {
	t.Helper()
	type seen struct {
		kind       EventKind
		role, team string
	}
	var got []seen
	for more := true; more; {
		select {
		case ev := <-ch:
			got = append(got, seen{ev.Kind, ev.Role, ev.Team})
		default:
			more = false
		}
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == seen{w.Kind, w.Role, w.Team}
		}
		if !found {
			t.Errorf("%s: no %s event %+v among %+v", who, w.Kind, w, got)
		}
	}
}

// queueIDOf is the ID of c's queue conversation with who.
func queueIDOf(t *testing.T, c *Client, who string) string {
	t.Helper()
	return queueOf(t, c, who).ID
}

// sendRoleContent sends b as a role content (0x26) from c to its contact
// name, as TakeRole would.
func sendRoleContent(t *testing.T, c *Client, name string, b []byte) {
	t.Helper()
	r, err := c.lookupContact(name)
	if err != nil {
		t.Fatal(err)
	}
	ct := &content{Type: contentRole, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()), Role: b}
	copy(ct.MsgID[:], randomID(msgIDSize))
	if err := c.sendSession(testCtx(t), r, ct); err != nil {
		t.Fatal(err)
	}
}

// TestRoleRecordRefused: the administrator's device refuses a forged role
// record, one rolled back, one from someone outside the directory, one
// from a staff member of another team naming themselves, one carried by
// another person than its signer and one of another organisation; each
// changes nothing.
func TestRoleRecordRefused(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	o := newDirOrg(t)
	admin := o.admin
	bob := o.join(t, "Bob Baker", false)
	carol := o.join(t, "Carol Cook", false)
	dave := o.join(t, "Dave Dunn", false)
	pat := o.join(t, "Pat Patient", true)
	staff := []map[string]any{{"identity": admin.Whoami().Identity.String(), "name": "Ada Admin"}}
	for _, s := range []struct {
		c    *Client
		team string
	}{{bob, "Pharmacy"}, {carol, "Pharmacy"}, {dave, "Ward 4"}} {
		staff = append(staff, map[string]any{"identity": s.c.Whoami().Identity.String(), "name": s.c.Whoami().Name, "teams": []string{s.team}})
	}
	spec, err := json.Marshal(map[string]any{
		"administrators": []string{admin.Whoami().Identity.String()},
		"teams":          []map[string]string{{"name": "Pharmacy"}, {"name": "Ward 4"}},
		"roles":          []map[string]string{{"name": onCall, "team": "Pharmacy"}},
		"staff":          staff,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PublishDirectory(ctx, spec); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, bob, carol, dave)
	var (
		org  directory.OrgID
		role directory.RoleID
	)
	if err := admin.st.view(func(t *tx) error {
		d, _, err := admin.heldDirectory(t)
		if err == nil {
			org, role = d.Org, heldRole(d, onCall).ID
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	sign := func(signer *Client, org directory.OrgID, seq uint64, holder keys.Fingerprint) []byte {
		r := &directory.RoleRecord{Org: org, Role: role, Seq: seq, Time: time.Now().Truncate(time.Second), Holder: holder}
		b, err := r.Sign(signer.id)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	want := func(holder string, seq uint64) {
		t.Helper()
		rs, err := admin.Roles()
		if err != nil || len(rs) != 1 || rs[0].Holder != holder || rs[0].Seq != seq {
			t.Fatalf("the administrator holds %+v, %v; want %q at %d", rs, err, holder, seq)
		}
	}

	// Through the API: someone of another team, and an outsider.
	if _, err := dave.TakeRole(ctx, onCall); !errors.Is(err, ErrRoleRefused) {
		t.Fatalf("a staff member of another team took the role: %v", err)
	}
	if _, err := pat.TakeRole(ctx, onCall); !errors.Is(err, ErrNoDirectory) {
		t.Fatalf("an outsider took the role: %v", err)
	}
	if _, err := bob.TakeRole(ctx, "Night porter"); !errors.Is(err, ErrUnknownRole) {
		t.Fatalf("an unknown role: %v", err)
	}
	if _, err := bob.SetRoleHolder(ctx, onCall, "Carol Cook"); !errors.Is(err, ErrRoleRefused) {
		t.Fatalf("a staff member gave the role to a colleague: %v", err)
	}
	want("", 0)

	// Genuine: bob takes it (seq 1), then carol (seq 2).
	bobs := sign(bob, org, 1, bob.idFP)
	sendRoleContent(t, bob, "Ada", bobs)
	syncAll(t, 1, admin)
	want("Bob Baker", 1)
	carols := sign(carol, org, 2, carol.idFP)

	var otherOrg directory.OrgID
	rand.Read(otherOrg[:])
	forged := sign(bob, org, 3, bob.idFP)
	forged[50] ^= 1 // the holder, under bob's signature for himself
	for _, tc := range []struct {
		name string
		from *Client
		b    []byte
	}{
		{"forged", bob, forged},
		{"from an outsider naming themselves", pat, sign(pat, org, 3, pat.idFP)},
		{"a staff member of another team naming themselves", dave, sign(dave, org, 3, dave.idFP)},
		{"carried by another than its signer", bob, carols},
		{"of another organisation", bob, sign(bob, otherOrg, 3, keys.Fingerprint{})},
		{"the held record again", bob, bobs},
	} {
		sendRoleContent(t, tc.from, "Ada", tc.b)
		syncAll(t, 1, admin)
		want("Bob Baker", 1)
	}

	sendRoleContent(t, carol, "Ada", carols)
	syncAll(t, 1, admin)
	want("Carol Cook", 2)
	// Rolled back: bob's record of sequence 1, and a vacancy at 1.
	sendRoleContent(t, bob, "Ada", bobs)
	sendRoleContent(t, bob, "Ada", sign(bob, org, 1, keys.Fingerprint{}))
	syncAll(t, 1, admin)
	want("Carol Cook", 2)
}

// FuzzRoleContent: a session plaintext carrying a role record content
// (0x26) or a queue message naming a role account (0x1e) parses exactly
// or is ErrDecrypt, never panics, and what parses re-encodes to the same
// bytes.
func FuzzRoleContent(f *testing.F) {
	var dev keys.Fingerprint
	dev[0] = 9
	inner := &content{Type: contentText, Sender: dev, SentMS: 5, Text: "refill please"}
	addSessionSeeds(f, []*content{
		{Type: contentRole, Sender: dev, SentMS: 1, Role: bytes.Repeat([]byte{0x5d}, directory.RoleRecordSize)},
		{Type: contentQueueMessage, Sender: dev, SentMS: 2, Team: &teamContent{Name: "pat", Role: [16]byte{1, 2}}, Inner: inner},
		{Type: contentQueueMessage, Sender: dev, SentMS: 3, Team: &teamContent{Name: "pat"}, Inner: inner},
	}...)
	h := historySeed(teamSeeds(f))
	h.Team.History.Conversations[0].Role = [16]byte{7}
	addSessionSeeds(f, h)
	fuzzSessionContent(f, nil)
}

// TestRoleContent: the role ID of a queue message (0x1e) and of a queue
// history's conversation (0x24) round-trip; a zero one written out, or
// bytes after it, are refused.
func TestRoleContent(t *testing.T) {
	t.Parallel()
	var dev keys.Fingerprint
	dev[0] = 9
	inner := &content{Type: contentText, Sender: dev, SentMS: 5, Text: "refill please"}
	role := [16]byte{1, 2, 3}
	fwd := &content{Type: contentQueueMessage, Sender: dev, SentMS: 2, Team: &teamContent{Name: "pat", Role: role}, Inner: inner}
	b, err := fwd.marshalSession()
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseSessionContent(b)
	if err != nil || got.Team.Role != role || got.Inner.Text != "refill please" {
		t.Fatalf("parsed %+v, %v", got, err)
	}
	plain, err := (&content{Type: contentQueueMessage, Sender: dev, SentMS: 2, Team: &teamContent{Name: "pat"}, Inner: inner}).marshalSession()
	if err != nil || len(plain)+16 != len(b) {
		t.Fatalf("without a role: %d bytes, with one %d, %v", len(plain), len(b), err)
	}
	if got, err := parseSessionContent(plain); err != nil || got.Team.Role != ([16]byte{}) {
		t.Fatalf("parsed %+v, %v", got, err)
	}
	// b with a zero role, and with a byte more or less after the message.
	zero := bytes.Clone(b)
	copy(zero[len(zero)-16:], make([]byte, 16))
	for name, p := range map[string][]byte{
		"zero role":  zero,
		"role short": withLength(b[4 : len(b)-1]),
		"role long":  withLength(append(bytes.Clone(b[4:]), 0xaa)),
	} {
		if _, err := parseSessionContent(p); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: %v", name, err)
		}
	}

	h := historySeed(teamSeeds(t))
	h.Team.History.Conversations[0].Role = role
	hb, err := h.marshalSession()
	if err != nil {
		t.Fatal(err)
	}
	hg, err := parseSessionContent(hb)
	if err != nil || hg.Team.History.Conversations[0].Role != role {
		t.Fatalf("history parsed %+v, %v", hg, err)
	}
	for i := 1; i < len(hg.Team.History.Conversations); i++ {
		if hg.Team.History.Conversations[i].Role != ([16]byte{}) {
			t.Fatalf("conversation %d has a role", i)
		}
	}
	// The role flag with a zero role.
	at := bytes.Index(hb, role[:])
	if at < 1 || hb[at-1]&historyRole == 0 {
		t.Fatalf("the role is not after its flag")
	}
	zh := bytes.Clone(hb)
	copy(zh[at:], make([]byte, 16))
	if _, err := parseSessionContent(zh); !errors.Is(err, ErrDecrypt) {
		t.Errorf("a history with a zero role: %v", err)
	}
}

// withLength prefixes a content with its u32 length (a session plaintext
// without padding).
func withLength(c []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(c))), c...)
}
