package client

import (
	"errors"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/relay/relaytest"
)

// teamOf returns the team notice c holds for its contact name (nil if
// none).
func teamOf(t *testing.T, c *Client, name string) *TeamNotice {
	t.Helper()
	cs, err := c.Contacts()
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range cs {
		if ct.Name == name {
			return ct.Team
		}
	}
	t.Fatalf("no contact %s", name)
	return nil
}

// TestTeamNotice: over a real relay on loopback, a team (one staff
// member, enough for the intake to forward) and a patient who accepted
// its invitation. The patient learns the team notice after its first
// message, exactly once (a second message brings no second notice); a
// change of the response windows brings one new version with the figures;
// restating the same windows brings none. A notice from another contact
// (carol, who accepted the patient's invitation) is refused and changes
// nothing, sent over the relay or naming the team's identity; an older
// version is ignored.
func TestTeamNotice(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	ctx := testCtx(t)
	intake, _ := newTestClient(t, srv, "Pharmacy")
	ann, _ := newTestClient(t, srv, "ann")
	pat, _ := newTestClient(t, srv, "pat")
	carol, _ := newTestClient(t, srv, "carol")
	befriend(t, intake, ann, "Pharmacy")
	befriend(t, intake, pat, "Pharmacy")
	befriend(t, pat, carol, "pat") // carol accepted pat's invitation
	if _, err := intake.CreateTeam(ctx, "Pharmacy"); err != nil {
		t.Fatal(err)
	}
	if _, err := intake.AddStaff(ctx, "Pharmacy", "ann"); err != nil {
		t.Fatal(err)
	}
	settleGroup(t, "Pharmacy", intake, ann)
	if n := teamOf(t, pat, "Pharmacy"); n != nil {
		t.Fatalf("a notice before any message: %+v", n)
	}

	// The first message brings the notice: version 1, no windows (no
	// agent ran).
	if _, err := pat.Send(ctx, "Pharmacy", "Can I get a refill?"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, intake, pat)
	first := teamOf(t, pat, "Pharmacy")
	if first == nil || first.Name != "Pharmacy" || first.Version != 1 || first.Windows != nil || first.Sentence("Pharmacy") != "" {
		t.Fatalf("after the first message: %+v", first)
	}
	// Exactly once: a second message, and more syncs, bring none (a
	// repeat would be taken again, at a later time).
	if _, err := pat.Send(ctx, "Pharmacy", "It's the blue one."); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, intake, pat)
	if again := teamOf(t, pat, "Pharmacy"); again == nil || !again.Received.Equal(first.Received) || again.Version != 1 {
		t.Fatalf("the notice came again: %+v, first %+v", again, first)
	}
	if n := teamOf(t, carol, "pat"); n != nil {
		t.Fatalf("carol holds a notice about pat: %+v", n)
	}

	// The agent's windows: a new version, with the figures.
	rec := teamRecordOf(t, intake)
	w, err := windowsOf(&AgentOptions{Zone: "Europe/London"})
	if err != nil {
		t.Fatal(err)
	}
	if err := intake.setTeamWindows(rec.Group, w); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, intake, pat)
	second := teamOf(t, pat, "Pharmacy")
	const want = "Pharmacy answers within 3 business days (Mon–Fri 08:00–17:00 Europe/London); urgent messages within 2 hours."
	if second == nil || second.Version != 2 || second.Sentence("Pharmacy") != want {
		t.Fatalf("after the windows: %+v, %q", second, second.Sentence("Pharmacy"))
	}
	// The same windows again: no new version, nothing sent.
	if err := intake.setTeamWindows(rec.Group, w); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, intake, pat)
	if n := teamOf(t, pat, "Pharmacy"); n.Version != 2 || !n.Received.Equal(second.Received) {
		t.Fatalf("the same windows were sent again: %+v", n)
	}

	// Carol says she is a team, over the relay: refused (she accepted
	// pat's invitation), nothing changes.
	patOnCarol, err := carol.lookupContact("pat")
	if err != nil {
		t.Fatal(err)
	}
	forge := func(team []byte, version uint32) *content {
		ct := &content{Type: contentTeamNotice, Sender: carol.devID, SentMS: uint64(time.Now().UnixMilli()),
			Notice: &teamNoticeWire{Version: version, Name: "Pharmacy", Windows: w}}
		copy(ct.Notice.Team[:], team)
		copy(ct.MsgID[:], randomID(msgIDSize))
		return ct
	}
	if err := carol.sendSession(ctx, patOnCarol, forge(carol.idFP[:], 9)); err != nil && !errors.Is(err, ErrQueued) {
		t.Fatal(err)
	}
	syncAll(t, 1, pat)
	if n := teamOf(t, pat, "carol"); n != nil {
		t.Fatalf("carol's notice was taken: %+v", n)
	}
	// In the receive path directly: carol naming the team's identity,
	// and the team at an older version.
	carolOnPat, err := pat.lookupContact("carol")
	if err != nil {
		t.Fatal(err)
	}
	teamOnPat, err := pat.lookupContact("Pharmacy")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		from *contactRecord
		ct   *content
	}{
		"carol naming the team":   {carolOnPat, forge(teamOnPat.Person.Identity, 9)},
		"carol naming herself":    {carolOnPat, forge(carolOnPat.Person.Identity, 9)},
		"the team, older version": {teamOnPat, forge(teamOnPat.Person.Identity, 1)},
		"the team naming carol":   {teamOnPat, forge(carolOnPat.Person.Identity, 9)},
	} {
		var took bool
		if err := pat.st.update(func(t *tx) (err error) {
			took, err = pat.receiveTeamNotice(t, tc.from, tc.ct, time.Now())
			return err
		}); err != nil || took {
			t.Fatalf("%s: took %v, %v", name, took, err)
		}
		if n := teamOf(t, pat, "Pharmacy"); n.Version != 2 || !n.Received.Equal(second.Received) {
			t.Fatalf("%s: the team's notice changed: %+v", name, n)
		}
		if n := teamOf(t, pat, "carol"); n != nil {
			t.Fatalf("%s: carol is a team: %+v", name, n)
		}
	}
}

// noticeSeeds are team notices with and without windows.
func noticeSeeds() []*content {
	var dev, team keys.Fingerprint
	dev[0], team[0] = 9, 7
	w := &store.TeamWindows{BusinessDays: 3, Days: 0x3e, Open: 480, Close: 1020, Zone: "Europe/London", UrgentMinutes: 120}
	tw := &store.TeamWindows{BusinessMinutes: 240, Days: 0x7f, Open: 0, Close: 1440, Zone: "Etc/GMT+5", UrgentMinutes: 10080}
	return []*content{
		{Type: contentTeamNotice, Sender: dev, SentMS: 1, Notice: &teamNoticeWire{Team: team, Version: 1, Name: "Pharmacy"}},
		{Type: contentTeamNotice, Sender: dev, SentMS: 2, Notice: &teamNoticeWire{Team: team, Version: 2, Name: "Pharmacy", Windows: w}},
		{Type: contentTeamNotice, Sender: dev, SentMS: 3, Notice: &teamNoticeWire{Team: team, Version: 3, Name: "Clinic", Windows: tw}},
	}
}

// TestTeamNoticeRefused: the encoder refuses what the decoder would not
// accept, and every accepted body is at most maxTeamNoticeSize.
func TestTeamNoticeRefused(t *testing.T) {
	t.Parallel()
	for i, ct := range noticeSeeds() {
		b, err := appendTeamNotice(nil, ct.Notice)
		if err != nil || len(b) > maxTeamNoticeSize {
			t.Fatalf("seed %d: %d bytes, %v", i, len(b), err)
		}
	}
	for name, mod := range map[string]func(n *teamNoticeWire){
		"version 0":         func(n *teamNoticeWire) { n.Version = 0 },
		"no name":           func(n *teamNoticeWire) { n.Name = "" },
		"a control in name": func(n *teamNoticeWire) { n.Name = "Ph\narmacy" },
		"days and minutes":  func(n *teamNoticeWire) { n.Windows.BusinessMinutes = 5 },
		"61 business days":  func(n *teamNoticeWire) { n.Windows.BusinessDays = 61 },
		"no business day":   func(n *teamNoticeWire) { n.Windows.Days = 0 },
		"bit 7 of days":     func(n *teamNoticeWire) { n.Windows.Days = 0x80 },
		"closing first":     func(n *teamNoticeWire) { n.Windows.Close = n.Windows.Open },
		"closing past 24h":  func(n *teamNoticeWire) { n.Windows.Close = 1441 },
		"urgent 0":          func(n *teamNoticeWire) { n.Windows.UrgentMinutes = 0 },
		"urgent 8 days":     func(n *teamNoticeWire) { n.Windows.UrgentMinutes = 8 * 24 * 60 },
		"a space in zone":   func(n *teamNoticeWire) { n.Windows.Zone = "Europe/ London" },
		"no zone":           func(n *teamNoticeWire) { n.Windows.Zone = "" },
	} {
		ct := noticeSeeds()[1]
		mod(ct.Notice)
		if _, err := ct.marshalSession(); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

// FuzzTeamNotice: a session plaintext carrying a team notice (0x23)
// parses exactly or is ErrDecrypt, never panics, and what parses
// re-encodes to the same bytes.
func FuzzTeamNotice(f *testing.F) {
	addSessionSeeds(f, noticeSeeds()...)
	fuzzSessionContent(f, func(t *testing.T, ct *content) {
		if ct.Type == contentTeamNotice {
			if body, err := appendTeamNotice(nil, ct.Notice); err != nil || len(body) > maxTeamNoticeSize {
				t.Fatalf("an accepted notice of %d bytes, %v", len(body), err)
			}
		}
	})
}

// TestTeamNoticeLaterDevice: a device the outsider links after its first
// message learns the team notice when it introduces itself to the intake,
// without the team changing its windows; the outsider's first device is
// not sent it again.
func TestTeamNoticeLaterDevice(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	ctx := testCtx(t)
	intake, _ := newTestClient(t, srv, "Pharmacy")
	ann, _ := newTestClient(t, srv, "ann")
	pat, _ := newTestClient(t, srv, "pat")
	befriend(t, intake, ann, "Pharmacy")
	befriend(t, intake, pat, "Pharmacy")
	if _, err := intake.CreateTeam(ctx, "Pharmacy"); err != nil {
		t.Fatal(err)
	}
	if _, err := intake.AddStaff(ctx, "Pharmacy", "ann"); err != nil {
		t.Fatal(err)
	}
	settleGroup(t, "Pharmacy", intake, ann)
	if _, err := pat.Send(ctx, "Pharmacy", "Can I get a refill?"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, intake, pat)
	first := teamOf(t, pat, "Pharmacy")
	if first == nil || first.Version != 1 {
		t.Fatalf("after the first message: %+v", first)
	}

	pat2, _ := linkNew(t, pat, "pat-phone")
	var got *TeamNotice
	for i := 0; got == nil; i++ {
		syncAll(t, 1, pat2, intake, pat)
		got = teamOf(t, pat2, "Pharmacy")
		if i == 10 {
			t.Fatal("the later-linked device did not learn the team notice")
		}
	}
	if got.Name != "Pharmacy" || got.Version != 1 || got.Windows != nil {
		t.Fatalf("the later-linked device's notice: %+v", got)
	}
	syncAll(t, 2, intake, pat, pat2)
	if again := teamOf(t, pat, "Pharmacy"); again == nil || !again.Received.Equal(first.Received) || again.Version != 1 {
		t.Fatalf("the first device was sent the notice again: %+v, first %+v", again, first)
	}
	// Nothing stays due on the intake.
	if err := intake.st.view(func(tx *tx) error {
		ts, err := tx.Teams()
		if err != nil {
			return err
		}
		qs, err := tx.Queues(ts[0].Group)
		for _, q := range qs {
			if len(q.NoticeDevices) != 0 {
				t.Errorf("devices still due the notice: %d", len(q.NoticeDevices))
			}
		}
		if ts[0].NoticeDue {
			t.Error("the team's notice is still due")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
