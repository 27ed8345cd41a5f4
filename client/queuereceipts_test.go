package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/group"
	"github.com/postern/postern/client/internal/team/queue"
	"github.com/postern/postern/client/internal/team/senderkey"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

// readersOf returns, on c, who read the message of queue conversation id
// whose text is text.
func readersOf(t *testing.T, c *Client, id, text string) []string {
	t.Helper()
	th, err := c.QueueThread(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range th {
		if m.Text == text {
			var out []string
			for _, r := range m.ReadBy {
				if r.At.IsZero() {
					t.Fatalf("%s: a read without its time", c.name)
				}
				out = append(out, r.By)
			}
			return out
		}
	}
	t.Fatalf("%s: no message %q in the thread", c.name, text)
	return nil
}

// checkQueueReceipts is TestTeamIntakeAndReply's part on queue receipts,
// on its fixture: the patient's message text and the staff reply reply
// are in conversation id, which nobody has read yet.
func checkQueueReceipts(t *testing.T, f *teamFixture, id, text, reply string) {
	ctx := testCtx(t)
	ann, ben := f.staff[0], f.staff[1]
	if err := ann[0].ReadQueue(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := readersOf(t, ann[0], id, text); !slices.Equal(got, []string{Me}) {
		t.Fatalf("the reader's own device: read by %v", got)
	}
	syncConcurrently(t, f.staffDevices()...)
	for i, c := range f.staffDevices() {
		want := []string{"ann"}
		if i/2 == 0 {
			want = []string{Me}
		}
		if got := readersOf(t, c, id, text); !slices.Equal(got, want) {
			t.Fatalf("%s: read by %v, want %v", c.name, got, want)
		}
		if got := readersOf(t, c, id, reply); got != nil {
			t.Fatalf("%s: the staff reply is read by %v; only the patient's messages are", c.name, got)
		}
	}
	// The patient sees its message read by the team, as from a person,
	// and learns no staff member's name.
	syncAll(t, 2, f.intake, f.pat)
	mine := messagesLike(t, f.pat, text)
	if len(mine) != 1 || !mine[0].Outgoing || mine[0].ReadReceipt.IsZero() {
		t.Fatalf("the patient's message %+v; want it read", mine)
	}
	all, _ := f.pat.Inbox()
	cs, _ := f.pat.Contacts()
	seen, _ := json.Marshal([]any{all, cs})
	for _, n := range f.names {
		if strings.Contains(string(seen), `"`+n+`"`) {
			t.Fatalf("the patient's client holds the staff name %q", n)
		}
	}
	readAt := mine[0].ReadReceipt

	// ann's other device has it read already (the read state is synced):
	// reading there sends nothing. ben reads: everyone sees both, the
	// intake reports nothing new to the patient.
	if err := ann[1].ReadQueue(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := ben[1].ReadQueue(ctx, id); err != nil {
		t.Fatal(err)
	}
	syncConcurrently(t, f.staffDevices()...)
	if got := readersOf(t, f.staff[2][0], id, text); !slices.Equal(got, []string{"ann", "ben"}) {
		t.Fatalf("cal sees it read by %v", got)
	}
	syncAll(t, 2, f.intake, f.pat)
	if m := messagesLike(t, f.pat, text); !m[0].ReadReceipt.Equal(readAt) {
		t.Fatalf("the patient's read time moved: %v, was %v", m[0].ReadReceipt, readAt)
	}

	// What a staff device drops: a receipt naming another reader than its
	// sender, or the team person; one for a conversation it does not
	// hold; a repeat changes nothing.
	cal := f.staff[2][0]
	text0 := readersOf(t, cal, id, text)
	var conv queue.ConversationID
	hex.Decode(conv[:], []byte(id))
	mid := contentIDOf(t, cal, id, text)
	for name, tc := range map[string]struct {
		from   *Client // whose member entry sent it
		reader *Client
		conv   queue.ConversationID
		drop   bool
	}{
		"ben naming cal":             {ben[0], cal, conv, true},
		"the team naming itself":     {f.intake, f.intake, conv, true},
		"ben, a conversation unheld": {ben[0], ben[0], queue.ConversationID{1}, false},
		"ann again":                  {ann[0], ann[0], conv, false},
	} {
		drop := deliverQueueReceipt(t, cal, tc.from, queue.Receipt{ForStaff: true, Conversation: tc.conv, Reader: tc.reader.idFP,
			Messages: []queue.MessageID{mid}})
		if (drop != nil) != tc.drop {
			t.Fatalf("%s: dropped %v", name, drop)
		}
		if got := readersOf(t, cal, id, text); !slices.Equal(got, text0) {
			t.Fatalf("%s: read by %v, was %v", name, got, text0)
		}
	}
}

// contentIDOf returns the content message ID of c's message text in queue
// conversation id.
func contentIDOf(t *testing.T, c *Client, id, text string) queue.MessageID {
	t.Helper()
	var out queue.MessageID
	th, err := c.QueueThread(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range th {
		if m.Text == text {
			if err := c.st.view(func(t *tx) error {
				r, err := t.MessageByID(m.ID)
				if err == nil {
					copy(out[:], r.ContentID)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return out
		}
	}
	t.Fatalf("no message %q", text)
	return out
}

// deliverQueueReceipt hands c a queue receipt as if it had arrived in the
// staff group from a device of from (a member), and returns why it was
// dropped (nil: accepted).
func deliverQueueReceipt(t *testing.T, c, from *Client, r queue.Receipt) error {
	t.Helper()
	body, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var drop error
	err = c.st.update(func(tx *tx) error {
		team := teamRecordIn(t, tx)
		grec, err := tx.Group(team.ID)
		if err != nil {
			return err
		}
		s, err := group.Parse(grec.State)
		if err != nil {
			return err
		}
		mem := s.Member(from.idFP)
		if mem == nil {
			t.Fatalf("%s is no member", from.name)
		}
		ct := &content{Type: contentQueueReceipt, Sender: from.devID, SentMS: uint64(time.Now().UnixMilli()), Team: &teamContent{Receipt: body}}
		drop, err = c.receiveQueueReceipt(tx, team, mem, ct.Team, ct.SentMS, time.Now(), &received{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return drop
}

func teamRecordIn(t *testing.T, tx *tx) *store.TeamRecord {
	t.Helper()
	r, err := tx.lookupTeam("Pharmacy")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// forgeQueueReceipt seals a queue receipt naming from as the reader of
// message mid of conversation conv: the envelope a modified client would
// send. With kept nil it seals with from's sender key of the staff group
// as from's store holds it (and keeps the advanced key); else with the
// group record kept, a copy from's store held earlier.
func forgeQueueReceipt(t *testing.T, from *Client, kept *store.GroupRecord, conv queue.ConversationID, mid queue.MessageID) []byte {
	t.Helper()
	body, err := queue.Receipt{ForStaff: true, Conversation: conv, Reader: from.idFP, Messages: []queue.MessageID{mid}}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	ct := &content{Type: contentQueueReceipt, Sender: from.devID, SentMS: uint64(time.Now().UnixMilli()), Team: &teamContent{Receipt: body}}
	copy(ct.MsgID[:], randomID(msgIDSize))
	plain, err := groupPlaintext(ct)
	if err != nil {
		t.Fatal(err)
	}
	if kept != nil {
		s, err := group.Parse(kept.State)
		if err != nil {
			t.Fatal(err)
		}
		own, err := from.ownKey(kept)
		if err != nil || own == nil {
			t.Fatalf("the kept record has no sender key: %v", err)
		}
		hk, err := senderkey.ParseHeaderKey(s.HeaderKey[:])
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := own.Seal(hk, plain)
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte{protocol.Version, byte(protocol.KindGroup)}, sealed...)
	}
	var env []byte
	if err := from.st.update(func(tx *tx) error {
		rec, err := tx.Group(teamRecordIn(t, tx).ID)
		if err != nil {
			return err
		}
		s, err := group.Parse(rec.State)
		if err != nil {
			return err
		}
		env, err = from.sealGroupEnvelope(tx, rec, s, plain, ErrNotStaff)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return env
}

// staffGroupRecord returns c's record of the team's staff group.
func staffGroupRecord(t *testing.T, c *Client) *store.GroupRecord {
	t.Helper()
	var rec *store.GroupRecord
	if err := c.st.view(func(tx *tx) error {
		var err error
		rec, err = tx.Group(teamRecordIn(t, tx).ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return rec
}

// receiveOnGroupMailbox hands c the group envelope env as its staff
// group mailbox would.
func receiveOnGroupMailbox(t *testing.T, c *Client, env []byte) {
	t.Helper()
	var mb protocol.MailboxID
	if err := c.st.view(func(tx *tx) error {
		rec, err := tx.Group(teamRecordIn(t, tx).ID)
		if err == nil {
			copy(mb[:], rec.Mailbox)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var envID protocol.EnvelopeID
	copy(envID[:], randomID(len(envID)))
	if _, err := c.receiveEnvelope(mb, envID, env); err != nil {
		t.Fatal(err)
	}
}

// checkRemovedReader is TestTeamRemoveStaff's part on queue receipts:
// after cal's removal, cal's read of conversation id (message text) is
// refused or not announced, and a receipt sealed with the sender key cal kept is
// dropped by the remaining staff (calKept: cal's second device's staff
// group record from before the removal), while the same from a current
// member is taken.
func checkRemovedReader(t *testing.T, f *teamFixture, id, text string, calKept *store.GroupRecord) {
	ctx := testCtx(t)
	cal, ben := f.staff[2], f.staff[1][0]
	if err := cal[0].ReadQueue(ctx, id); err != nil && !errors.Is(err, ErrNotStaff) {
		t.Fatalf("a removed member's read: %v", err)
	}
	var conv queue.ConversationID
	hex.Decode(conv[:], []byte(id))
	mid := contentIDOf(t, ben, id, text)
	receiveOnGroupMailbox(t, ben, forgeQueueReceipt(t, cal[1], calKept, conv, mid))
	if got := readersOf(t, ben, id, text); got != nil {
		t.Fatalf("after a removed member's receipt: read by %v", got)
	}
	receiveOnGroupMailbox(t, ben, forgeQueueReceipt(t, f.staff[0][1], nil, conv, mid))
	syncAll(t, 1, ben)
	if got := readersOf(t, ben, id, text); !slices.Equal(got, []string{"ann"}) {
		t.Fatalf("after a removed member's and ann's receipts: read by %v, want ann only", got)
	}
}

// TestAgentReadStopsReminders runs a team's agent with a fake clock: an
// urgent message that nobody reads brings the staff a reminder every
// interval; once a staff member reads it (a queue receipt), the
// reminders stop, and the patient sees the message read.
func TestAgentReadStopsReminders(t *testing.T) {
	t.Parallel() // its own relay and clients
	agentReadStopsReminders(t, false)
}

// TestQueueReceiptOutbox: a queue receipt made while the team's relay
// cannot be reached waits in the reader's outbox (the read itself
// succeeds), is sent when the relay is back, and stops the agent's
// reminders as one sent at once does.
func TestQueueReceiptOutbox(t *testing.T) {
	t.Parallel() // its own relay and clients
	agentReadStopsReminders(t, true)
}

// groupOutboxLen is how many group envelopes wait in c's outbox.
func groupOutboxLen(t *testing.T, c *Client) int {
	t.Helper()
	n := 0
	if err := c.st.view(func(t *tx) error {
		items, err := t.Outbox()
		for _, it := range items {
			if len(it.Group) > 0 {
				n++
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// agentReadStopsReminders is TestAgentReadStopsReminders, with the
// relay stopped while the staff member reads when down.
func agentReadStopsReminders(t *testing.T, down bool) {
	srv := relaytest.New(t, nil)
	intake, _ := newTestClient(t, srv, "Pharmacy")
	ann, _ := newTestClient(t, srv, "ann")
	pat, _ := newTestClient(t, srv, "pat")
	befriend(t, intake, ann, "Pharmacy")
	befriend(t, intake, pat, "Pharmacy")
	ctx := testCtx(t)
	if _, err := intake.CreateTeam(ctx, "Pharmacy"); err != nil {
		t.Fatal(err)
	}
	if _, err := intake.AddStaff(ctx, "Pharmacy", "ann"); err != nil {
		t.Fatal(err)
	}
	settleGroup(t, "Pharmacy", intake, ann)

	var mu sync.Mutex
	start := time.Now()
	now, sweeps := start, 0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	setNow := func(d time.Duration) { mu.Lock(); now = start.Add(d); mu.Unlock() }
	swept := func() int { mu.Lock(); defer mu.Unlock(); return sweeps }
	after := func(time.Duration) <-chan time.Time {
		mu.Lock()
		sweeps++
		mu.Unlock()
		return time.After(20 * time.Millisecond)
	}
	waitSweeps := func(n int) {
		t.Helper()
		for want := swept() + n; swept() < want; {
			if ctx.Err() != nil {
				t.Fatal("the agent stopped sweeping")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- intake.RunAgent(actx, "Pharmacy", &AgentOptions{Zone: "UTC",
			Days: []time.Weekday{0, 1, 2, 3, 4, 5, 6}, Open: "00:00", Close: "24:00", Urgent: 24 * time.Hour,
			Clock: clock, After: after})
	}()
	const text = "Severe reaction after the new tablets"
	if _, err := pat.SendWith(ctx, "Pharmacy", text, &SendOptions{Urgent: true}); err != nil {
		t.Fatal(err)
	}
	var id string
	for i := 0; id == ""; i++ {
		syncAll(t, 1, ann)
		if items, err := ann.Queue("Pharmacy", QueueAll); err == nil && len(items) == 1 {
			id = items[0].ID
		}
		if i == 200 {
			t.Fatal("the patient's message did not reach the staff")
		}
		time.Sleep(20 * time.Millisecond)
	}
	const reminder = "An urgent message in Pharmacy is waiting to be read"
	waitReminders := func(n int) {
		t.Helper()
		for i := 0; wakeUps(t, ann, reminder) < n; i++ {
			if i == 200 {
				t.Fatalf("%d reminders, want %d", wakeUps(t, ann, reminder), n)
			}
			syncAll(t, 1, ann)
			time.Sleep(20 * time.Millisecond)
		}
	}
	setNow(16 * time.Minute)
	waitReminders(1)
	if down {
		srv.Stop()
	}
	if err := ann.ReadQueue(ctx, id); err != nil {
		t.Fatal(err)
	}
	if down {
		if n := groupOutboxLen(t, ann); n != 1 {
			t.Fatalf("%d queue receipts wait in the outbox with the relay down, want 1", n)
		}
		srv.Start()
		syncAll(t, 1, ann) // sends what waits
		if n := groupOutboxLen(t, ann); n != 0 {
			t.Fatalf("%d queue receipts still wait after the relay came back", n)
		}
	}
	// The agent's intake takes the receipt (it receives all the time).
	for i := 0; ; i++ {
		var at time.Time
		if err := intake.st.view(func(tx *tx) error {
			qs, err := tx.Queues(nil)
			if err == nil && len(qs) == 1 {
				at = qs[0].ReadAt
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if !at.IsZero() {
			break
		}
		if i == 500 {
			t.Fatal("the intake did not take the queue receipt")
		}
		time.Sleep(20 * time.Millisecond)
	}
	setNow(46 * time.Minute) // two more intervals
	waitSweeps(5)
	syncAll(t, 2, ann)
	if n := wakeUps(t, ann, reminder); n != 1 {
		t.Fatalf("%d reminders after the read; want the one before it", n)
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("RunAgent returned %v; want context.Canceled", err)
	}
	syncAll(t, 2, pat)
	if m := messagesLike(t, pat, text); len(m) != 1 || m[0].ReadReceipt.IsZero() {
		t.Fatalf("the patient's message %+v; want it read", m)
	}
}

// TestQueueReceiptOutboxFull: a read made while the outbox is full is
// recorded all the same (the reader on the message, no error), without
// a receipt, and this device's sender key of the staff group stays where
// it was.
func TestQueueReceiptOutboxFull(t *testing.T) {
	t.Parallel() // its own relay and clients
	srv := relaytest.New(t, nil)
	intake, _ := newTestClient(t, srv, "Pharmacy")
	ann, _ := newTestClient(t, srv, "ann")
	pat, _ := newTestClient(t, srv, "pat")
	befriend(t, intake, ann, "Pharmacy")
	befriend(t, intake, pat, "Pharmacy")
	ctx := testCtx(t)
	if _, err := intake.CreateTeam(ctx, "Pharmacy"); err != nil {
		t.Fatal(err)
	}
	if _, err := intake.AddStaff(ctx, "Pharmacy", "ann"); err != nil {
		t.Fatal(err)
	}
	settleGroup(t, "Pharmacy", intake, ann)
	const text = "Is this dose right?"
	if _, err := pat.Send(ctx, "Pharmacy", text); err != nil {
		t.Fatal(err)
	}
	var id string
	for i := 0; id == ""; i++ {
		syncAll(t, 1, intake, ann)
		if items, err := ann.Queue("Pharmacy", QueueAll); err == nil && len(items) == 1 {
			id = items[0].ID
		}
		if i == 50 {
			t.Fatal("the patient's message did not reach the staff")
		}
	}
	ownKey := func() []byte {
		rec, _ := staffGroupOf(t, ann)
		return rec.Own
	}
	before := ownKey()
	if len(before) == 0 {
		t.Fatal("ann holds no sender key of the staff group")
	}
	if err := ann.st.update(func(t *tx) error {
		for range MaxOutboxEntries {
			if _, err := t.AddOutbox(&store.OutboxEntry{Device: []byte("gone"), Relay: srv.URL, Mailbox: make([]byte, 16), Capability: make([]byte, 32), Envelope: []byte{1}, Created: time.Now()}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := ann.ReadQueue(ctx, id); err != nil {
		t.Fatalf("ReadQueue with a full outbox: %v", err)
	}
	if got := readersOf(t, ann, id, text); !slices.Equal(got, []string{Me}) {
		t.Fatalf("read by %v after a read with a full outbox", got)
	}
	if n := groupOutboxLen(t, ann); n != 0 {
		t.Fatalf("%d queue receipts in a full outbox", n)
	}
	if !bytes.Equal(ownKey(), before) {
		t.Fatal("the sender key advanced for a receipt that was not kept")
	}
}

// TestQueueReceiptWithRead: MarkRead stores the read of an outsider's
// queue message and its queue receipt in one transaction: a failure
// between the two (as a crash would) stores neither (the message unread,
// no receipt, the sender key where it was); a read with the relay down
// stores both, and the receipt is sent by the client opened again on the
// same home once the relay is back, and reaches the intake.
func TestQueueReceiptWithRead(t *testing.T) {
	t.Parallel() // its own relay and clients
	srv := relaytest.New(t, nil)
	intake, _ := newTestClient(t, srv, "Pharmacy")
	ann, annHome := newTestClient(t, srv, "ann")
	pat, _ := newTestClient(t, srv, "pat")
	befriend(t, intake, ann, "Pharmacy")
	befriend(t, intake, pat, "Pharmacy")
	ctx := testCtx(t)
	if _, err := intake.CreateTeam(ctx, "Pharmacy"); err != nil {
		t.Fatal(err)
	}
	if _, err := intake.AddStaff(ctx, "Pharmacy", "ann"); err != nil {
		t.Fatal(err)
	}
	settleGroup(t, "Pharmacy", intake, ann)
	const text = "Can I take it with food?"
	if _, err := pat.Send(ctx, "Pharmacy", text); err != nil {
		t.Fatal(err)
	}
	var id string
	for i := 0; id == ""; i++ {
		syncAll(t, 1, intake, ann)
		if items, err := ann.Queue("Pharmacy", QueueAll); err == nil && len(items) == 1 {
			id = items[0].ID
		}
		if i == 50 {
			t.Fatal("the patient's message did not reach the staff")
		}
	}
	ownKey := func() []byte {
		rec, _ := staffGroupOf(t, ann)
		return rec.Own
	}
	before := ownKey()
	unreadOn := func(c *Client) int {
		n := 0
		for _, m := range messagesLike(t, c, text) {
			if !m.Read {
				n++
			}
		}
		return n
	}

	// A failure between the read and the receipt: neither is stored.
	errCrash := errors.New("crash between the read and the receipt")
	hook := func() error { return errCrash }
	ann.markReadHook.Store(&hook)
	if err := ann.ReadQueue(ctx, id); !errors.Is(err, errCrash) {
		t.Fatalf("ReadQueue with a failure before the receipt: %v", err)
	}
	ann.markReadHook.Store(nil)
	if got := readersOf(t, ann, id, text); len(got) != 0 {
		t.Fatalf("read by %v after a read that failed", got)
	}
	if n := unreadOn(ann); n != 1 {
		t.Fatalf("%d unread copies after a read that failed, want 1", n)
	}
	if n := groupOutboxLen(t, ann); n != 0 {
		t.Fatalf("%d queue receipts kept by a read that failed", n)
	}
	if !bytes.Equal(ownKey(), before) {
		t.Fatal("the sender key advanced for a receipt that was not kept")
	}

	// The relay down: the read and its receipt are stored together, and
	// the client opened again sends the receipt.
	srv.Stop()
	if err := ann.ReadQueue(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := readersOf(t, ann, id, text); !slices.Equal(got, []string{Me}) {
		t.Fatalf("read by %v", got)
	}
	if n := unreadOn(ann); n != 0 {
		t.Fatalf("%d unread copies after the read", n)
	}
	if n := groupOutboxLen(t, ann); n != 1 {
		t.Fatalf("%d queue receipts wait in the outbox, want 1", n)
	}
	if err := ann.Close(); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	ann = dial(t, annHome)
	syncAll(t, 1, ann)
	if n := groupOutboxLen(t, ann); n != 0 {
		t.Fatalf("%d queue receipts wait after the restart", n)
	}
	for i := 0; ; i++ {
		syncAll(t, 1, intake)
		var at time.Time
		if err := intake.st.view(func(tx *tx) error {
			qs, err := tx.Queues(nil)
			if err == nil && len(qs) == 1 {
				at = qs[0].ReadAt
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if !at.IsZero() {
			break
		}
		if i == 20 {
			t.Fatal("the intake did not take the queue receipt")
		}
	}
}
