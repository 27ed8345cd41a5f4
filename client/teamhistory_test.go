package client

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/queue"
	"github.com/postern/postern/keys"
)

// TestTeamNewStaffHistory: a patient writes, staff A (ann) claims and B
// (ben) replies; another patient's conversation is resolved; then C
// (cal) is added. Nothing more happens in the staff group, so only the
// intake's queue history can tell cal's devices: each lists the open
// conversation with ann as its owner at the register's version, and its
// thread holds the patient's message and the team's reply; the resolved
// one is not sent; the reply shows as ben's (the history names who wrote
// it). The patient's next message, which cal gets through
// the group, and a history sent again are stored once. A history from a
// colleague (over the relay and directly), or from the intake with a
// register that does not open, changes nothing; the intake's with a newer
// register is taken, and an older one after it does not move it back.
func TestTeamNewStaffHistory(t *testing.T) {
	t.Parallel() // each has its own relay and clients; the slowest tests of the package overlap
	f := newTeamFixtureStaff(t, 2)
	ctx := testCtx(t)
	ann, ben, cal := f.staff[0], f.staff[1], f.staff[2]
	if _, err := f.pat.Send(ctx, "Pharmacy", "Can I get a refill?"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.quinn.Send(ctx, "Pharmacy", "Are you open on Sunday?"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.intake)
	syncConcurrently(t, f.staffDevices()...)
	patID, quinnID := queueOf(t, ann[0], "pat").ID, queueOf(t, ann[0], "quinn").ID
	f.settleQueue(t, patID)
	f.settleQueue(t, quinnID)
	if _, err := ann[1].Claim(ctx, patID); err != nil {
		t.Fatal(err)
	}
	if _, err := ben[0].Claim(ctx, quinnID); err != nil {
		t.Fatal(err)
	}
	if _, err := ben[0].Resolve(ctx, quinnID); err != nil {
		t.Fatal(err)
	}
	if _, err := ben[1].ReplyQueue(ctx, patID, "It will be ready at noon.", nil); err != nil {
		t.Fatal(err)
	}
	// The intake forwards the reply to pat (so it holds it) before cal
	// is added.
	for range 6 {
		syncAll(t, 1, f.intake, f.pat)
		if len(messagesLike(t, f.pat, "ready at noon")) == 1 {
			break
		}
	}
	if n := len(messagesLike(t, f.pat, "ready at noon")); n != 1 {
		t.Fatalf("pat holds %d replies", n)
	}
	want := f.settleQueue(t, patID)[0]
	if want.State != "claimed" || want.Owner != Me || want.Version < 2 || want.FirstResponse.IsZero() {
		t.Fatalf("ann's view before cal joins: %+v", want)
	}

	f.added = 3
	if _, err := f.intake.AddStaff(ctx, "Pharmacy", "cal"); err != nil {
		t.Fatal(err)
	}
	settleGroup(t, "Pharmacy", f.intake, cal[0], cal[1])
	// The history goes after the intake admits each device (in the
	// background, and at its next maintenance).
	for _, c := range cal {
		for range 8 {
			if th, err := c.QueueThread(patID); err == nil && len(th) == 2 {
				break
			}
			syncAll(t, 1, f.intake, c)
		}
		items, err := c.Queue("Pharmacy", QueueAll)
		if err != nil || len(items) != 1 {
			t.Fatalf("%s: queue %+v, %v", c.name, items, err)
		}
		got := items[0]
		if got.ID != patID || got.Outsider != "pat" || got.State != "claimed" || got.Owner != "ann" ||
			got.Version != want.Version || !got.FirstResponse.Equal(want.FirstResponse) || !got.Opened.Equal(want.Opened) || got.Messages != 2 {
			t.Fatalf("%s: %+v, want ann's %+v", c.name, got, want)
		}
		th, err := c.QueueThread(patID)
		if err != nil || len(th) != 2 {
			t.Fatalf("%s: thread %+v, %v", c.name, th, err)
		}
		// ben's reply shows as ben's, as a live reply does.
		if th[0].From != "pat" || th[0].Text != "Can I get a refill?" || th[1].From != "ben" || th[1].Outgoing || th[1].Text != "It will be ready at noon." {
			t.Fatalf("%s: thread %+v", c.name, th)
		}
		if _, err := c.queueItem(quinnID); !errors.Is(err, ErrUnknownQueueItem) {
			t.Fatalf("%s: the resolved conversation: %v", c.name, err)
		}
	}
	// The intake sent each device its history: nothing is owed (a flush
	// waits for one under way).
	f.intake.flushTeams(ctx)
	if h := teamRecordOf(t, f.intake).History; len(h) != 0 {
		t.Fatalf("the intake still owes %d histories", len(h))
	}

	// The patient writes again: cal gets it through the group; then the
	// intake sends the history again (it now holds that message too):
	// every message is stored once.
	c0 := cal[0]
	if _, err := f.pat.Send(ctx, "Pharmacy", "Thanks!"); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		syncAll(t, 1, f.intake, c0)
		if th, _ := c0.QueueThread(patID); len(th) == 3 {
			break
		}
	}
	if err := f.intake.st.update(func(t *tx) error {
		r, err := t.lookupTeam("Pharmacy")
		if err != nil {
			return err
		}
		r.History = append(r.History, store.TeamHistory{Device: c0.devID[:], Identity: c0.idFP[:]})
		return t.PutTeam(r)
	}); err != nil {
		t.Fatal(err)
	}
	f.intake.flushTeams(ctx)
	syncAll(t, 2, c0)
	th, err := c0.QueueThread(patID)
	if err != nil || len(th) != 3 || th[2].Text != "Thanks!" {
		t.Fatalf("after the history again: %+v, %v", th, err)
	}
	before, err := c0.queueItem(patID)
	if err != nil || before.Owner != "ann" || before.Messages != 3 {
		t.Fatalf("%+v, %v", before, err)
	}

	// Forged histories. ben holds the team keys, so his register opens:
	// only who sent it stops it.
	conv := queue.ConversationID(mustHex(t, patID))
	benTeam := teamRecordOf(t, ben[0])
	sp, err := spaceOf(benTeam)
	if err != nil {
		t.Fatal(err)
	}
	v, err := queue.Claim(queue.Initial(1, false), queue.Actor{Identity: ben[0].idFP, Role: queue.Staff})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := sp.Seal(conv, v)
	if err != nil {
		t.Fatal(err)
	}
	forged := func(version uint64, sealed []byte) *content {
		h := &queueHistory{Conversations: []queueHistoryConv{{Conversation: conv, Outsider: "pat", Opened: 1, Version: version, Sealed: sealed,
			Messages: []queueHistoryMsg{{Kind: historyOutsider, ID: [8]byte{1, 2, 3}, Message: &content{Type: contentText, Text: "forged"}}}}}}
		copy(h.Group[:], benTeam.Group)
		return &content{Type: contentQueueHistory, Sender: ben[0].devID, SentMS: 1, Team: &teamContent{History: h}}
	}
	unchanged := func(how string) {
		t.Helper()
		it, err := c0.queueItem(patID)
		if err != nil || it != before {
			t.Fatalf("%s: %+v, %v; want %+v", how, it, err, before)
		}
		if n := threadCount(t, c0, patID, "forged"); n != 0 {
			t.Fatalf("%s: the forged message was stored", how)
		}
	}
	// Over the relay, in ben's session with cal's device.
	var toC0 *contactRecord
	for _, r := range devicesOf(t, ben[0], "cal") {
		if fpOf(r.DeviceID) == c0.devID {
			toC0 = r
		}
	}
	if toC0 == nil {
		t.Fatal("ben has no route to cal's device")
	}
	ct := forged(before.Version+5, sealed)
	copy(ct.MsgID[:], randomID(msgIDSize))
	if err := ben[0].sendSession(ctx, toC0, ct); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, c0)
	unchanged("from ben over the relay")
	benOnC0, err := c0.lookupContact("ben")
	if err != nil {
		t.Fatal(err)
	}
	intakeOnC0, err := c0.lookupContact("Pharmacy")
	if err != nil {
		t.Fatal(err)
	}
	receive := func(from *contactRecord, ct *content) {
		t.Helper()
		if err := c0.st.update(func(t *tx) error {
			return c0.receiveQueueHistory(t, from, ct, time.Now(), &received{})
		}); err != nil {
			t.Fatal(err)
		}
	}
	receive(benOnC0, forged(before.Version+5, sealed))
	unchanged("from ben")
	bad := bytes.Clone(sealed)
	bad[len(bad)-1] ^= 1
	receive(intakeOnC0, forged(before.Version+5, bad))
	unchanged("from the intake, a register that does not open")
	// The control: the same from the intake is taken; an older register
	// after it does not move it back.
	receive(intakeOnC0, forged(before.Version+5, sealed))
	it, err := c0.queueItem(patID)
	if err != nil || it.Owner != "ben" || it.Version != before.Version+5 || threadCount(t, c0, patID, "forged") != 1 {
		t.Fatalf("the intake's newer register: %+v, %v", it, err)
	}
	receive(intakeOnC0, forged(before.Version, v2Sealed(t, sp, conv, ann[0].idFP)))
	if it, err := c0.queueItem(patID); err != nil || it.Owner != "ben" || it.Version != before.Version+5 {
		t.Fatalf("an older register moved the view back: %+v, %v", it, err)
	}

	// Who wrote a team's message in a history: a staff member the staff
	// group lists (this person: Me), else the team (the team person's
	// own, an intake that predates it, or an identity not on the staff).
	for i, tc := range []struct {
		sender keys.Fingerprint
		from   string
	}{
		{ann[0].idFP, "ann"}, {c0.idFP, Me}, {f.intake.devID, "Pharmacy"}, {f.intake.idFP, "Pharmacy"}, {f.pat.idFP, "Pharmacy"},
	} {
		text := fmt.Sprintf("a team message %d", i)
		h := forged(before.Version+5, sealed)
		h.Team.History.Conversations[0].Messages = []queueHistoryMsg{{Kind: historyTeam, ID: [8]byte{9, byte(i)},
			Message: &content{Type: contentText, Sender: tc.sender, Text: text}}}
		receive(intakeOnC0, h)
		th, err := c0.QueueThread(patID)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(th, func(m Message) bool { return m.Text == text })
		if i < 0 || th[i].From != tc.from || th[i].Outgoing != (tc.from == Me) {
			t.Fatalf("%q: %+v, want from %s", text, th, tc.from)
		}
	}
}

// threadCount counts the messages of queue conversation id on c whose
// text is text.
func threadCount(t *testing.T, c *Client, id, text string) int {
	t.Helper()
	th, err := c.QueueThread(id)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range th {
		if m.Text == text {
			n++
		}
	}
	return n
}

// v2Sealed seals a register value claimed by owner.
func v2Sealed(t *testing.T, sp *queue.Space, conv queue.ConversationID, owner keys.Fingerprint) []byte {
	t.Helper()
	v, err := queue.Claim(queue.Initial(1, false), queue.Actor{Identity: owner, Role: queue.Staff})
	if err != nil {
		t.Fatal(err)
	}
	b, err := sp.Seal(conv, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestQueueHistoryBodies: the intake's history is cut within the limits
// (conversations and messages per content, bytes), every body encodes
// and parses back, and together they carry every message once, in
// order.
func TestQueueHistoryBodies(t *testing.T) {
	t.Parallel()
	var dev keys.Fingerprint
	dev[0] = 5
	sealed := make([]byte, queue.SealedValueSize)
	sealed[0] = sealedValueFormat
	var convs []queueHistoryConv
	want := map[queue.ConversationID][]string{}
	for i := range 40 {
		hc := queueHistoryConv{Outsider: fmt.Sprintf("patient %d", i), Opened: uint64(i + 1)}
		hc.Conversation[0], hc.Conversation[1] = byte(i/256), byte(i)
		if i%2 == 0 {
			hc.Version, hc.Sealed = uint64(i+1), sealed
		}
		n := 2
		switch i {
		case 3:
			n = 300 // more than one content's worth of messages
		case 4:
			n = 0
		}
		for j := range n {
			text := fmt.Sprintf("message %d of %d ", j, i) + strings.Repeat("x", 900)
			m := queueHistoryMsg{Kind: historyOutsider, Message: &content{Type: contentText, Sender: dev, SentMS: uint64(j), Text: text}}
			binary.BigEndian.PutUint32(m.ID[:], uint32(i<<16|j))
			hc.Messages = append(hc.Messages, m)
			want[hc.Conversation] = append(want[hc.Conversation], text)
		}
		if i == 5 {
			// The largest messages a client makes (a 16 KiB text, a
			// subject, 16 files with the longest names): about 25 KB
			// each, so two to a content.
			for j := range 4 {
				text := fmt.Sprintf("large %d ", j) + strings.Repeat("z", MaxTextSize-10)
				m := queueHistoryMsg{Kind: historyTeam, Message: &content{Type: contentAttachmentHeaders, Sender: dev, SentMS: uint64(10 + j),
					Text: text, Subject: strings.Repeat("s", MaxSubjectSize), Attachments: bigAttachments(MaxAttachments)}}
				m.ID[0] = byte(j + 1)
				hc.Messages = append(hc.Messages, m)
				want[hc.Conversation] = append(want[hc.Conversation], text)
			}
		}
		convs = append(convs, hc)
	}
	bodies, skipped := historyBodies([16]byte{9}, convs)
	if skipped != 0 {
		t.Fatalf("skipped %d messages", skipped)
	}
	got := map[queue.ConversationID][]string{}
	seen := map[queue.ConversationID]bool{}
	for i, b := range bodies {
		if len(b.Conversations) > maxHistoryConversations {
			t.Fatalf("body %d: %d conversations", i, len(b.Conversations))
		}
		ct := &content{Type: contentQueueHistory, Sender: dev, SentMS: 1, Team: &teamContent{History: b}}
		p, err := ct.marshalSession()
		if err != nil {
			t.Fatalf("body %d: %v", i, err)
		}
		back, err := parseSessionContent(p)
		if err != nil {
			t.Fatalf("body %d does not parse: %v", i, err)
		}
		for _, hc := range back.Team.History.Conversations {
			if len(hc.Messages) > maxHistoryMessages {
				t.Fatalf("body %d: %d messages", i, len(hc.Messages))
			}
			seen[hc.Conversation] = true
			for _, m := range hc.Messages {
				got[hc.Conversation] = append(got[hc.Conversation], m.Message.Text)
			}
		}
	}
	if len(seen) != 40 {
		t.Fatalf("%d conversations sent, want 40", len(seen))
	}
	for c, w := range want {
		if fmt.Sprint(got[c]) != fmt.Sprint(w) {
			t.Fatalf("conversation %x: %d messages, want %d", c[:2], len(got[c]), len(w))
		}
	}
	if len(got) != len(want) || len(want) != 39 { // conversation 4 has none
		t.Fatalf("messages of %d conversations, want %d", len(got), len(want))
	}
	if len(bodies) < 2+300/maxHistoryMessages {
		t.Fatalf("%d bodies", len(bodies))
	}
}

// bigAttachments are n attachments with the longest names.
func bigAttachments(n int) []attachmentRef {
	out := make([]attachmentRef, n)
	for i := range out {
		out[i] = seedAttachment()
		out[i].Name = strings.Repeat("n", 255)
	}
	return out
}
