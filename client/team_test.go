package client

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/stats"
	"github.com/postern/postern/protocol"
)

// TestTeamIntakeAndReply: a patient's message to the team reaches every
// staff device once, as a new queue conversation with the patient's name;
// a staff reply reaches the patient from the team, and every staff
// device's thread holds both. A staff member's read reaches the other
// staff devices with the reader's name, and the patient as a plain read
// receipt (the receipts subtest).
func TestTeamIntakeAndReply(t *testing.T) {
	t.Parallel() // each has its own relay and clients; the slowest tests of the package overlap
	f := newTeamFixture(t)
	ctx := testCtx(t)
	if _, err := f.pat.Send(ctx, "Pharmacy", "Can I get a refill of my inhaler?"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.intake)
	it := queueOf(t, f.staff[0][0], "pat")
	items := f.settleQueue(t, it.ID)
	for i, got := range items {
		if got.State != "new" || got.Owner != "" || got.Outsider != "pat" || got.Messages != 1 {
			t.Fatalf("device %d: %+v", i, got)
		}
	}
	// The intake forwards once: a second sync sends nothing more.
	syncAll(t, 2, f.all()...)
	for _, c := range f.staffDevices() {
		th, err := c.QueueThread(it.ID)
		if err != nil || len(th) != 1 || th[0].From != "pat" || th[0].Text != "Can I get a refill of my inhaler?" {
			t.Fatalf("%s: thread %+v, %v", c.name, th, err)
		}
		if un, err := c.Queue("Pharmacy", QueueUnclaimed); err != nil || len(un) != 1 {
			t.Fatalf("unclaimed %+v, %v", un, err)
		}
	}
	if _, err := f.staff[1][1].ReplyQueue(ctx, it.ID, "Ready for pick-up tomorrow.", nil); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, f.intake, f.pat)
	got := messagesLike(t, f.pat, "Ready for pick-up")
	if len(got) != 1 || got[0].From != "Pharmacy" || got[0].Outgoing {
		t.Fatalf("patient got %+v", got)
	}
	syncAll(t, 1, f.all()...)
	for i, c := range f.staffDevices() {
		th, err := c.QueueThread(it.ID)
		if err != nil || len(th) != 2 || th[1].Text != "Ready for pick-up tomorrow." {
			t.Fatalf("%s: thread %+v, %v", c.name, th, err)
		}
		want := "ben"
		if i/2 == 1 {
			want = Me
		}
		if th[1].From != want {
			t.Fatalf("%s: reply from %q, want %q", c.name, th[1].From, want)
		}
	}
	// The reply is the conversation's first response, on every device.
	for i, got := range f.settleQueue(t, it.ID) {
		if got.State != "new" || got.FirstResponse.IsZero() || got.Version != 1 || got.Messages != 2 {
			t.Fatalf("device %d after the reply: %+v", i, got)
		}
	}
	// Queue receipts: who read the patient's message (queuereceipts_test.go).
	t.Run("receipts", func(t *testing.T) {
		checkQueueReceipts(t, f, it.ID, "Can I get a refill of my inhaler?", "Ready for pick-up tomorrow.")
	})
	// A staff member is not a patient: their message to the team person
	// opens no queue conversation.
	if _, err := f.staff[2][0].Send(ctx, "Pharmacy", "rota for next week?"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, f.intake, f.staff[0][0])
	if qs, err := f.staff[0][0].Queue("Pharmacy", QueueAll); err != nil || len(qs) != 1 {
		t.Fatalf("queue %+v, %v", qs, err)
	}
	// The team's invitation: only its profile makes one; an outsider who
	// accepts it writes to the queue.
	if _, err := f.staff[0][0].TeamInvite(ctx, "Pharmacy"); !errors.Is(err, ErrNotTeamAdmin) {
		t.Fatalf("a staff device's team invitation: %v", err)
	}
	code, err := f.intake.TeamInvite(ctx, "Pharmacy")
	if err != nil {
		t.Fatal(err)
	}
	rae, _ := newTestClient(t, f.srv, "rae")
	if _, err := rae.Accept(ctx, code, "Pharmacy"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, f.intake, rae)
	if _, err := rae.Send(ctx, "Pharmacy", "hello team"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.intake)
	for _, it := range f.settleQueue(t, queueOf(t, f.staff[1][0], "rae").ID) {
		if it.State != "new" || it.Messages != 1 {
			t.Fatalf("rae's conversation %+v", it)
		}
	}
}

// TestTeamClaimRace is the test: a team of three staff with two
// devices each and two patients, over a real relay on loopback. Two
// staff claim the same conversation at the same moment, 100 times: each
// time exactly one wins, the other is told it is owned, and all six
// staff devices agree on the owner. Between rounds the owner resolves
// the conversation and its patient writes again, which reopens it.
func TestTeamClaimRace(t *testing.T) {
	t.Parallel() // each has its own relay and clients; the slowest tests of the package overlap
	f := newTeamFixture(t)
	ctx := testCtx(t)
	patients := []*Client{f.pat, f.quinn}
	ids := make([]string, 2)
	for i, p := range patients {
		if _, err := p.Send(ctx, "Pharmacy", fmt.Sprintf("question %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, 1, f.intake)
	ids[0] = queueOf(t, f.staff[0][0], "pat").ID
	ids[1] = queueOf(t, f.staff[0][0], "quinn").ID
	f.settleQueue(t, ids[0])
	f.settleQueue(t, ids[1])
	devs := f.staffDevices()
	const rounds = 100
	for round := range rounds {
		ctx := testCtx(t) // a hang guard per round, not for the whole test
		pi := round % 2
		id := ids[pi]
		// Two devices of two different staff members.
		a, b := round%3, (round+1+round/3%2)%3
		if a == b {
			b = (a + 1) % 3
		}
		ca, cb := f.staff[a][round%2], f.staff[b][(round/2)%2]
		var (
			wg   sync.WaitGroup
			errs [2]error
			got  [2]QueueItem
		)
		start := make(chan struct{})
		for i, c := range []*Client{ca, cb} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				got[i], errs[i] = c.Claim(ctx, id)
			}()
		}
		close(start)
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch {
			case err == nil && won == -1:
				won = i
			case err == nil:
				t.Fatalf("round %d: both claims won", round)
			case !errors.Is(err, ErrOwned):
				t.Fatalf("round %d: claim %d: %v", round, i, err)
			}
		}
		if won == -1 {
			t.Fatalf("round %d: no claim won: %v", round, errs)
		}
		winner := []int{a, b}[won]
		items := f.waitQueue(t, id, got[won].Version)
		for i, it := range items {
			want := f.names[winner]
			if i/2 == winner {
				want = Me
			}
			if it.State != "claimed" || it.Owner != want {
				t.Fatalf("round %d: device %d (%s) sees %s owned by %q, want %q", round, i, devs[i].name, it.State, it.Owner, want)
			}
		}
		// The owner (its other device) resolves; the patient writes
		// again, and the intake reopens it.
		res, err := f.staff[winner][1].Resolve(ctx, id)
		if err != nil {
			t.Fatalf("round %d: resolve: %v", round, err)
		}
		if _, err := patients[pi].Send(ctx, "Pharmacy", fmt.Sprintf("again %d", round)); err != nil {
			t.Fatal(err)
		}
		// The intake is connected: it receives the message, reopens the
		// conversation (a write after the resolve's) and announces it.
		for _, it := range f.waitQueue(t, id, res.Version+1) {
			if it.State != "new" || it.Reopens != round/2+1 {
				t.Fatalf("round %d: after the patient wrote again: %+v", round, it)
			}
		}
	}
}

// TestTeamRemoveStaff: removing a staff member replaces the claim
// space's write capability and the team key (epoch 2, sent to the
// remaining staff), so the removed member's devices can no longer claim;
// the conversation it owned goes back to new on every remaining device,
// and the remaining staff claim it.
func TestTeamRemoveStaff(t *testing.T) {
	t.Parallel() // each has its own relay and clients; the slowest tests of the package overlap
	f := newTeamFixture(t)
	ctx := testCtx(t)
	if _, err := f.pat.Send(ctx, "Pharmacy", "side effects?"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.intake)
	id := queueOf(t, f.staff[2][0], "pat").ID
	f.settleQueue(t, id)
	if _, err := f.staff[2][0].Claim(ctx, id); err != nil {
		t.Fatal(err)
	}
	f.settleQueue(t, id)
	calKept := staffGroupRecord(t, f.staff[2][1])
	tm, err := f.intake.RemoveStaff(ctx, "Pharmacy", "cal")
	if err != nil {
		t.Fatal(err)
	}
	if tm.Epoch != 2 || len(tm.Staff) != 3 {
		t.Fatalf("after the removal: %+v", tm)
	}
	remaining := []*Client{f.intake, f.staff[0][0], f.staff[0][1], f.staff[1][0], f.staff[1][1]}
	syncAll(t, 3, append(remaining, f.staff[2][0], f.staff[2][1])...)
	for _, c := range remaining[1:] {
		ts, err := c.Teams()
		if err != nil || len(ts) != 1 || ts[0].Epoch != 2 {
			t.Fatalf("%s: teams %+v, %v", c.name, ts, err)
		}
		it, err := c.queueItem(id)
		if err != nil || it.State != "new" || it.Owner != "" {
			t.Fatalf("%s: %+v, %v", c.name, it, err)
		}
	}
	// The removed member's devices: refused by the relay (the old write
	// capability), or by their own client (no longer in the group).
	for _, c := range f.staff[2] {
		if _, err := c.Resolve(ctx, id); !errIsOne(err, ErrNotStaff, ErrNotOwner, ErrQueueState) {
			t.Fatalf("%s: a removed member's resolve: %v", c.name, err)
		}
		ts, err := c.Teams()
		if err != nil || len(ts) != 1 || ts[0].Epoch != 1 {
			t.Fatalf("%s: the removed member's team %+v, %v", c.name, ts, err)
		}
	}
	// And the relay refuses the write capability they hold, whatever
	// their client does.
	cal := f.staff[2][0]
	var old *store.TeamRecord
	if err := cal.st.view(func(t *tx) error {
		var err error
		old, err = t.lookupTeam("Pharmacy")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	write, _ := protocol.CapabilityTokenFromBytes(old.WriteCap)
	_, err = cal.anonRequest(ctx, old.Relay, "test", &protocol.GetClaim{Space: protocol.ClaimSpaceID(old.Space), Write: write})
	if !protocol.IsCode(err, protocol.CodeClaimCapability) {
		t.Fatalf("the old write capability: %v", err)
	}
	// A removed member's reads are not announced, nor taken.
	t.Run("receipts", func(t *testing.T) { checkRemovedReader(t, f, id, "side effects?", calKept) })
	if _, err := f.staff[1][0].Claim(ctx, id); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, remaining...)
	for _, c := range remaining[1:] {
		it, err := c.queueItem(id)
		want := "ben"
		if c == f.staff[1][0] || c == f.staff[1][1] {
			want = Me
		}
		if err != nil || it.State != "claimed" || it.Owner != want {
			t.Fatalf("%s: %+v, %v", c.name, it, err)
		}
	}
}

// TestTeamBlockOutsider: a staff member blocks a patient at each level
// through the intake; the relay refuses the patient's send with the
// level's code and the patient's client gives the level's sentence;
// after the staff member unblocks, the patient must opt in again before
// a message goes. The intake blocks directly too. Each is logged once in
// the team log, and so is a plain Restrict or Unrestrict on the intake
// of a patient in the queue.
func TestTeamBlockOutsider(t *testing.T) {
	t.Parallel() // each has its own relay and clients; the slowest tests of the package overlap
	f := newTeamFixture(t)
	ctx := testCtx(t)
	if _, err := f.pat.Send(ctx, "Pharmacy", "first"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.intake)
	f.settleQueue(t, queueOf(t, f.staff[0][0], "pat").ID)
	if err := f.staff[0][1].BlockOutsider(ctx, "Pharmacy", "nobody", RestrictedNew); !errors.Is(err, ErrUnknownQueueItem) {
		t.Fatalf("blocking someone the queue does not hold: %v", err)
	}
	route := devicesOf(t, f.pat, "Pharmacy")
	if len(route) != 1 {
		t.Fatalf("pat's routes %+v", route)
	}
	for i, tc := range []struct {
		level Restriction
		code  protocol.Code
		want  string
	}{
		{RestrictedNew, protocol.CodeRestrictedNew, "You have been restricted from a Triage Group(s)."},
		{RestrictedReplies, protocol.CodeRestrictedReplies, "Your access to this Triage Group has been restricted."},
		{RestrictedService, protocol.CodeRestrictedService, "Your provider has restricted your access to Secure Messaging."},
	} {
		blocker := f.staff[i][i%2]
		if err := blocker.BlockOutsider(ctx, "Pharmacy", "pat", tc.level); err != nil {
			t.Fatal(err)
		}
		f.restrictedByIntake(t, "pat", tc.level)
		// The relay's code, for a send on the route pat writes with.
		tok, _ := protocol.CapabilityTokenFromBytes(route[0].SendCap)
		var mb protocol.MailboxID
		copy(mb[:], route[0].SendMbx)
		env := make([]byte, 1024)
		env[0], env[1] = protocol.Version, byte(protocol.KindSession)
		_, err := f.pat.anonRequest(ctx, route[0].Relay, "test", &protocol.Send{Mailbox: mb, Capability: tok, Envelope: env})
		if tc.level == RestrictedReplies {
			// Nobody answered pat yet: there is no reply to stop, and
			// the new route stays open (TestTeamBlockLevels has the
			// levels after an answer).
			if err != nil {
				t.Fatalf("level 3 before an answer: the relay answered %v", err)
			}
			if _, err := f.pat.Send(ctx, "Pharmacy", fmt.Sprintf("back %d", i)); err != nil {
				t.Fatalf("level 3 before an answer: %v", err)
			}
			if err := blocker.UnblockOutsider(ctx, "Pharmacy", "pat"); err != nil {
				t.Fatal(err)
			}
			f.restrictedByIntake(t, "pat", 0)
			continue
		}
		if !protocol.IsCode(err, tc.code) {
			t.Fatalf("level %d: the relay answered %v", tc.level, err)
		}
		_, err = f.pat.Send(ctx, "Pharmacy", "still there?")
		var re *RestrictedError
		if !errors.As(err, &re) || re.Level != tc.level || !strings.HasPrefix(err.Error(), tc.want) {
			t.Fatalf("level %d: Send = %v", tc.level, err)
		}
		if err := blocker.UnblockOutsider(ctx, "Pharmacy", "pat"); err != nil {
			t.Fatal(err)
		}
		f.restrictedByIntake(t, "pat", 0)
		if _, err := f.pat.Send(ctx, "Pharmacy", "still there?"); !errors.As(err, &re) || !re.OptIn {
			t.Fatalf("level %d: restored, not opted in: %v", tc.level, err)
		}
		if err := f.pat.OptIn("Pharmacy", "2026-12-07"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.pat.Send(ctx, "Pharmacy", fmt.Sprintf("back %d", i)); err != nil {
			t.Fatalf("level %d: after opting in: %v", tc.level, err)
		}
	}
	// On the intake, directly.
	if err := f.intake.BlockOutsider(ctx, "Pharmacy", "pat", RestrictedNew); err != nil {
		t.Fatal(err)
	}
	var re *RestrictedError
	if _, err := f.pat.Send(ctx, "Pharmacy", "and now?"); !errors.As(err, &re) || re.Level != RestrictedNew {
		t.Fatalf("blocked by the intake: %v", err)
	}
	syncAll(t, 1, f.intake)
	if n := len(messagesLike(t, f.intake, "back 2")); n != 1 {
		t.Fatalf("the intake holds %d of the message after the opt-in", n)
	}
	// A plain Unrestrict and Restrict on the intake of pat, who is in the
	// team's queue, are the team's too: logged, by the intake, once each.
	// Of quinn, a contact the queue does not hold, nothing is logged; nor
	// of an Unrestrict that changes nothing.
	if err := f.intake.Unrestrict(ctx, "pat"); err != nil {
		t.Fatal(err)
	}
	if err := f.intake.Unrestrict(ctx, "pat"); err != nil {
		t.Fatal(err)
	}
	if err := f.intake.Restrict(ctx, "pat", RestrictedNew); err != nil {
		t.Fatal(err)
	}
	if err := f.intake.Restrict(ctx, "quinn", RestrictedService); err != nil {
		t.Fatal(err)
	}
	if err := f.intake.Unrestrict(ctx, "quinn"); err != nil {
		t.Fatal(err)
	}
	// The team log: every restriction the intake carried out, by whom
	// asked for it, about pat's conversation's token (never a name).
	lg, err := f.intake.TeamLog("Pharmacy")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		kind string
		by   *Client
	}{
		{"staff_added:", f.intake}, {"staff_added:", f.intake}, {"staff_added:", f.intake},
		{"block:new", f.staff[0][0]}, {"unblock:", f.staff[0][0]}, {"block:replies", f.staff[1][1]}, {"unblock:", f.staff[1][1]},
		{"block:service", f.staff[2][0]}, {"unblock:", f.staff[2][0]}, {"block:new", f.intake},
		{"unblock:", f.intake}, {"block:new", f.intake},
	}
	if len(lg.Entries) != len(want) || lg.HeadSeq != uint64(len(want)) {
		t.Fatalf("the team log: %+v", lg)
	}
	subject := f.token(t, queueOf(t, f.staff[0][0], "pat").ID)
	for i, w := range want {
		e := lg.Entries[i]
		if e.Kind+":"+e.Detail != w.kind || e.Actor != w.by.idFP {
			t.Fatalf("entry %d: %+v; want %s by %s", i+1, e, w.kind, w.by.name)
		}
		if i >= 3 && e.Subject != subject {
			t.Fatalf("entry %d: subject %s; want pat's conversation's token", i+1, e.Subject)
		}
	}
	// One changed byte of a stored entry (its actor) is found.
	err = f.intake.st.update(func(tx *tx) error {
		rec, err := tx.lookupTeam("Pharmacy")
		if err != nil {
			return err
		}
		b, err := tx.TeamLogRecord(rec.Group, 4)
		if err != nil || b == nil {
			return fmt.Errorf("record 4: %v", err)
		}
		b = bytes.Clone(b)
		b[20] ^= 1
		seq := []byte{0, 0, 0, 0, 0, 0, 0, 4}
		return tx.Put(store.BucketTeamAgent, tx.Index(store.BucketTeamAgent, []byte("log"), rec.Group, seq),
			&store.TeamLogRecord{V: 1, Team: rec.Group, Seq: 4, Record: b})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.intake.TeamLog("Pharmacy"); !errors.Is(err, stats.ErrLogEdited) {
		t.Fatalf("a changed entry: %v", err)
	}
}

// TestTeamFiles: a patient's file reaches the staff as a reference and a
// staff member saves it; a staff reply's file reaches the patient, from
// the team, and the patient saves it.
func TestTeamFiles(t *testing.T) {
	t.Parallel() // each has its own relay and clients; the slowest tests of the package overlap
	f := newTeamFixture(t)
	ctx := testCtx(t)
	dir := t.TempDir()
	photo := filepath.Join(dir, "rash.jpg")
	leaflet := filepath.Join(dir, "leaflet.txt")
	if err := os.WriteFile(photo, bytes.Repeat([]byte("photo "), 4000), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(leaflet, []byte("Apply twice a day.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pat.SendFiles(ctx, "Pharmacy", "is this normal?", []string{photo}, nil); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.intake)
	id := queueOf(t, f.staff[2][1], "pat").ID
	f.settleQueue(t, id)
	th, err := f.staff[2][1].QueueThread(id)
	if err != nil || len(th) != 1 || len(th[0].Attachments) != 1 {
		t.Fatalf("thread %+v, %v", th, err)
	}
	paths, err := f.staff[2][1].SaveAttachments(ctx, th[0].ID, t.TempDir(), nil)
	if err != nil || len(paths) != 1 {
		t.Fatalf("saved %v, %v", paths, err)
	}
	if got, _ := os.ReadFile(paths[0]); !bytes.Equal(got, bytes.Repeat([]byte("photo "), 4000)) {
		t.Fatal("the staff member's copy of the patient's file differs")
	}
	if _, err := f.staff[0][0].ReplyQueue(ctx, id, "See the leaflet.", []string{leaflet}); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, f.intake, f.pat)
	got := messagesLike(t, f.pat, "See the leaflet.")
	if len(got) != 1 || got[0].From != "Pharmacy" || len(got[0].Attachments) != 1 {
		t.Fatalf("patient got %+v", got)
	}
	paths, err = f.pat.SaveAttachments(ctx, got[0].ID, t.TempDir(), nil)
	if err != nil || len(paths) != 1 {
		t.Fatalf("the patient saved %v, %v", paths, err)
	}
	if b, _ := os.ReadFile(paths[0]); string(b) != "Apply twice a day.\n" {
		t.Fatalf("the patient's copy %q", b)
	}
	testTeamExport(t, f, id)
}

// testTeamExport (part of TestTeamFiles, whose conversation id holds a
// patient's file and a staff reply with a file): a staff member exports
// the queue conversation, and one message of it, for the record; the
// files verify as the staff member's, a changed byte fails; the intake
// counts both exports and logs them, naming no content; a staff reply the
// patient's blocking refuses is a failed delivery.
func testTeamExport(t *testing.T, f *teamFixture, id string) {
	ctx := testCtx(t)
	ann, cal := f.staff[0][0], f.staff[2][1]
	var whole, one bytes.Buffer
	info, err := ann.ExportQueue(ctx, &whole, id, "")
	if err != nil || info.Messages != 2 || info.Files != 2 || info.Bytes != whole.Len() {
		t.Fatalf("ExportQueue: %+v, %v", info, err)
	}
	th, err := ann.QueueThread(id)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := ann.ExportQueue(ctx, &one, id[:8], th[0].ID); err != nil || info.Messages != 1 || info.Files != 1 {
		t.Fatalf("ExportQueue of one message: %+v, %v", info, err)
	}
	var none bytes.Buffer
	if _, err := ann.ExportQueue(ctx, &none, id, "no-such-message"); !errors.Is(err, ErrNoMessage) || none.Len() != 0 {
		t.Fatalf("a message not in the conversation: %v, %d bytes written", err, none.Len())
	}
	for _, tc := range []struct {
		c    *Client
		want string
	}{{ann, "me"}, {f.intake, "ann"}, {cal, "ann"}} {
		s, err := tc.c.VerifyRecord(whole.Bytes())
		if err != nil || s.Name != tc.want || s.Identity != ann.idFP {
			t.Fatalf("%s verifies: %+v, %v", tc.c.name, s, err)
		}
	}
	for _, want := range []string{`"topic":{"text":"Pharmacy"}`, `"display":"pat"`, `"display":"ann"`, "See the leaflet."} {
		if !strings.Contains(whole.String(), want) {
			t.Fatalf("the export lacks %s", want)
		}
	}
	changed := bytes.Clone(whole.Bytes())
	changed[len(changed)/2] ^= 1
	if _, err := ann.VerifyRecord(changed); !errors.Is(err, ErrRecordInvalid) {
		t.Fatalf("a changed byte: %v", err)
	}
	if _, err := ann.VerifyRecord(one.Bytes()); err != nil {
		t.Fatal(err)
	}

	// The intake counts the reports and logs them.
	syncAll(t, 2, f.intake)
	if got := teamFiguresOf(t, f.intake); got.Exports != 2 || got.DeliveryFailures != 0 {
		t.Fatalf("the intake's figures: %+v", got)
	}
	if got := teamFiguresOf(t, ann); got.Exports != 2 {
		t.Fatalf("the exporting device's figures: %+v", got)
	}
	lg, err := f.intake.TeamLog("Pharmacy")
	if err != nil {
		t.Fatal(err)
	}
	tok := f.token(t, id)
	var kinds []string
	for _, e := range lg.Entries {
		kinds = append(kinds, e.Kind+":"+e.Detail)
	}
	if got := strings.Join(kinds, " "); got != "staff_added: staff_added: staff_added: export:conversation export:message" {
		t.Fatalf("the team log holds %s", got)
	}
	for _, e := range lg.Entries[3:] {
		if e.Actor != ann.idFP || e.Subject != tok {
			t.Fatalf("export entry %+v; want ann's identity and the conversation's token", e)
		}
	}
	if lg.HeadSeq != 5 || lg.HeadHash != lg.Entries[4].Hash {
		t.Fatalf("head %d %s", lg.HeadSeq, lg.HeadHash)
	}
	if _, err := cal.TeamLog("Pharmacy"); !errors.Is(err, ErrNotTeamAdmin) {
		t.Fatalf("a staff device's team log: %v", err)
	}
	// On the team's own profile: its direct conversation with pat (the
	// patient's message and the reply it forwarded), counted and logged
	// there at once.
	var mine bytes.Buffer
	if info, err := f.intake.ExportQueue(ctx, &mine, id, ""); err != nil || info.Messages != 2 || info.Files != 2 {
		t.Fatalf("the intake's export: %+v, %v", info, err)
	}
	if s, err := f.intake.VerifyRecord(mine.Bytes()); err != nil || s.Name != "me" || !strings.Contains(mine.String(), `"topic":{"text":"Pharmacy"}`) {
		t.Fatalf("the intake's export verifies: %+v, %v", s, err)
	}
	if lg, err := f.intake.TeamLog("Pharmacy"); err != nil || lg.HeadSeq != 6 || lg.Entries[5].Kind != "export" ||
		lg.Entries[5].Actor != f.intake.idFP || lg.Entries[5].Subject != tok {
		t.Fatalf("the intake's export in the log: %+v, %v", lg, err)
	}

	// The patient blocks the team: the next staff reply is refused, a
	// failed delivery, counted once.
	if err := f.pat.Block(ctx, "Pharmacy"); err != nil {
		t.Fatal(err)
	}
	if _, err := cal.ReplyQueue(ctx, id, "Any better?", nil); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 3, f.intake)
	if got := teamFiguresOf(t, f.intake); got.Exports != 3 || got.DeliveryFailures != 1 {
		t.Fatalf("the intake's figures after a refused reply: %+v", got)
	}
}

// token is the conversation token (hex) of queue conversation id, as the
// intake derives it.
func (f *teamFixture) token(t *testing.T, id string) string {
	t.Helper()
	var tok stats.Token
	if err := f.intake.st.view(func(tx *tx) error {
		rec, err := tx.lookupTeam("Pharmacy")
		if err != nil {
			return err
		}
		conv, err := hex.DecodeString(id)
		if err != nil || len(conv) != 16 {
			return fmt.Errorf("queue conversation ID %q", id)
		}
		tok, err = conversationToken(rec, [16]byte(conv))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(tok[:])
}

// teamFigureCounts are counters of a team's figures.
type teamFigureCounts struct {
	Exports          int `json:"exports"`
	DeliveryFailures int `json:"delivery_failures"`
}

func teamFiguresOf(t *testing.T, c *Client) teamFigureCounts {
	t.Helper()
	f, err := c.TeamFigures("Pharmacy")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(f)
	var doc struct{ Queues []teamFigureCounts }
	if err := json.Unmarshal(b, &doc); err != nil || len(doc.Queues) != 1 {
		t.Fatalf("figures %s: %v", b, err)
	}
	return doc.Queues[0]
}

// TestTeamSecretsOnlyFromIntake: a staff device takes a team's secrets
// only from the team's intake, and only newer ones: secrets a colleague
// sends (naming itself or the intake as the intake) and a replayed older
// count change nothing.
func TestTeamSecretsOnlyFromIntake(t *testing.T) {
	t.Parallel() // each has its own relay and clients; the slowest tests of the package overlap
	f := newTeamFixture(t)
	ben := f.staff[1][0]
	before := teamRecordOf(t, ben)
	annOnBen, err := ben.lookupContact("ann")
	if err != nil {
		t.Fatal(err)
	}
	intakeOnBen, err := ben.lookupContact("Pharmacy")
	if err != nil {
		t.Fatal(err)
	}
	forged := func(intake []byte, count uint64) *content {
		s := &teamSecrets{Count: count, Name: "Pharmacy", Relay: before.Relay, Keys: []teamKeyWire{{Epoch: 1, Key: [32]byte{7}}}}
		copy(s.Group[:], before.Group)
		copy(s.Space[:], before.Space)
		s.Write[0], s.ClaimKey[0] = 1, 2
		copy(s.Intake[:], intake)
		return &content{Type: contentTeamSecrets, Team: &teamContent{Secrets: s}}
	}
	for name, tc := range map[string]struct {
		from   *contactRecord
		intake []byte
		count  uint64
	}{
		"a colleague naming itself":   {annOnBen, annOnBen.Person.Identity, 9},
		"a colleague naming the team": {annOnBen, before.IntakeIdentity, 9},
		"the intake, an older count":  {intakeOnBen, before.IntakeIdentity, before.Secrets},
	} {
		err := ben.st.update(func(t *tx) error {
			return ben.receiveTeamSecrets(t, tc.from, forged(tc.intake, tc.count), time.Now())
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		after := teamRecordOf(t, ben)
		if after.Secrets != before.Secrets || !bytes.Equal(after.WriteCap, before.WriteCap) || !bytes.Equal(after.ClaimKey, before.ClaimKey) {
			t.Fatalf("%s: the secrets were taken", name)
		}
	}
	// The same from the intake with a newer count is taken.
	if err := ben.st.update(func(t *tx) error {
		return ben.receiveTeamSecrets(t, intakeOnBen, forged(before.IntakeIdentity, before.Secrets+1), time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	if after := teamRecordOf(t, ben); after.Secrets != before.Secrets+1 || after.ClaimKey[0] != 2 {
		t.Fatalf("the intake's newer secrets were not taken: %+v", after.Secrets)
	}
}

func teamRecordOf(t *testing.T, c *Client) *store.TeamRecord {
	t.Helper()
	var r *store.TeamRecord
	if err := c.st.view(func(t *tx) error {
		var err error
		r, err = t.lookupTeam("Pharmacy")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return r
}
