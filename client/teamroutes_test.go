package client

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// waitReplyRoute syncs the intake and pat until pat holds a reply route
// to the team (want) or none: the intake gives and drops it after the
// receive that brought the staff member's reply or resolve, in the
// background, so a round may not be enough.
func (f *teamFixture) waitReplyRoute(t *testing.T, want bool) *contactRecord {
	t.Helper()
	var d *contactRecord
	for range 20 {
		syncAll(t, 1, f.intake, f.pat)
		ds := devicesOf(t, f.pat, "Pharmacy")
		if len(ds) != 1 {
			t.Fatalf("pat's routes to the team: %d", len(ds))
		}
		d = ds[0]
		if holdsReplyRoute(d) == want {
			return d
		}
	}
	t.Fatalf("pat holds a reply route: %v, want %v", holdsReplyRoute(d), want)
	return nil
}

// relayCode is what the relay answers pat for a send on route (mailbox,
// capability): nil when it takes it.
func (f *teamFixture) relayCode(t *testing.T, d *contactRecord, mbx, capBytes []byte) error {
	t.Helper()
	tok, err := protocol.CapabilityTokenFromBytes(capBytes)
	if err != nil {
		t.Fatal(err)
	}
	var mb protocol.MailboxID
	copy(mb[:], mbx)
	env := make([]byte, 1024)
	env[0], env[1] = protocol.Version, byte(protocol.KindSession)
	_, err = f.pat.anonRequest(testCtx(t), d.Relay, "test-route", &protocol.Send{Mailbox: mb, Capability: tok, Envelope: env})
	return err
}

// TestTeamBlockLevels: once staff answered a conversation, an outsider
// writes to its reply route, so that blocking levels 2 and 3 stop
// different sends (SPEC 15.9 "Two routes to the intake"): level 2 stops a
// new conversation after the resolve with code 27 and lets the outsider
// reply in the open one; level 3 stops replies (28) and lets a new
// message after the resolve through; level 1 stops both. Messages on
// either route reach the same queue conversation; unblocking and opting
// in restores.
func TestTeamBlockLevels(t *testing.T) {
	t.Parallel()
	f := newTeamFixtureStaff(t, 1)
	ctx := testCtx(t)
	ann := f.staff[0][0]
	sentence := map[Restriction]string{
		RestrictedNew:     "You have been restricted from a Triage Group(s).",
		RestrictedReplies: "Your access to this Triage Group has been restricted.",
		RestrictedService: "Your provider has restricted your access to Secure Messaging.",
	}
	refused := func(err error, level Restriction) bool {
		var re *RestrictedError
		return errors.As(err, &re) && re.Level == level && strings.HasPrefix(err.Error(), sentence[level])
	}
	send := func(text string) {
		t.Helper()
		if _, err := f.pat.Send(ctx, "Pharmacy", text); err != nil {
			t.Fatalf("Send %q: %v", text, err)
		}
	}
	// inQueue: ann's queue conversation with pat holds text once.
	inQueue := func(id, text string) {
		t.Helper()
		for range 10 {
			syncAll(t, 1, f.intake, ann)
			ms, err := ann.QueueThread(id)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, m := range ms {
				if m.Text == text {
					n++
				}
			}
			if n == 1 {
				return
			}
		}
		t.Fatalf("%q is not in pat's queue conversation once", text)
	}
	// answer: ann claims pat's conversation and answers it; pat then
	// holds a reply route.
	answer := func(text string) (string, *contactRecord) {
		t.Helper()
		id := f.settleQueue(t, queueOf(t, ann, "pat").ID)[0].ID
		if _, err := ann.Claim(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := ann.ReplyQueue(ctx, id, text, nil); err != nil {
			t.Fatal(err)
		}
		return id, f.waitReplyRoute(t, true)
	}
	resolve := func(id string) *contactRecord {
		t.Helper()
		if _, err := ann.Resolve(ctx, id); err != nil {
			t.Fatal(err)
		}
		return f.waitReplyRoute(t, false)
	}
	restore := func(text string) {
		t.Helper()
		if err := ann.UnblockOutsider(ctx, "Pharmacy", "pat"); err != nil {
			t.Fatal(err)
		}
		f.restrictedByIntake(t, "pat", 0)
		if err := f.pat.OptIn("Pharmacy", "2026-12-07"); err != nil && !errors.Is(err, ErrNotRestricted) {
			t.Fatal(err)
		}
		send(text)
	}

	// sendsRefused checks what pat's contact says compose may do now.
	sendsRefused := func(what string, want bool) {
		t.Helper()
		cs, err := f.pat.Contacts()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.Name == "Pharmacy" && c.SendsRefused != want {
				t.Fatalf("%s: SendsRefused %v, want %v (restricted %v)", what, c.SendsRefused, want, c.Restricted)
			}
		}
	}

	send("first question")
	syncAll(t, 1, f.intake)
	newRoute := devicesOf(t, f.pat, "Pharmacy")[0]

	// Level 2: replies go on, a new conversation is refused.
	id, d := answer("first answer")
	if !bytes16(d.ReplySendMbx) || string(d.ReplySendMbx) == string(d.SendMbx) {
		t.Fatalf("pat's reply route %x, new route %x", d.ReplySendMbx, d.SendMbx)
	}
	if err := ann.BlockOutsider(ctx, "Pharmacy", "pat", RestrictedNew); err != nil {
		t.Fatal(err)
	}
	f.restrictedByIntake(t, "pat", RestrictedNew)
	send("a reply while new messages are blocked")
	inQueue(id, "a reply while new messages are blocked")
	resolve(id)
	if err := f.relayCode(t, newRoute, newRoute.SendMbx, newRoute.SendCap); !protocol.IsCode(err, protocol.CodeRestrictedNew) {
		t.Fatalf("level 2, the new route: %v", err)
	}
	if _, err := f.pat.Send(ctx, "Pharmacy", "a new question"); !refused(err, RestrictedNew) {
		t.Fatalf("level 2, a new conversation: %v", err)
	}
	sendsRefused("level 2 after the resolve", true)
	restore("back after level 2")
	inQueue(id, "back after level 2")

	// Level 3: replies are refused, a new message after the resolve
	// goes through.
	id, d = answer("second answer")
	if err := ann.BlockOutsider(ctx, "Pharmacy", "pat", RestrictedReplies); err != nil {
		t.Fatal(err)
	}
	f.restrictedByIntake(t, "pat", RestrictedReplies)
	if _, err := f.pat.Send(ctx, "Pharmacy", "a reply while replies are blocked"); !refused(err, RestrictedReplies) {
		t.Fatalf("level 3, a reply: %v", err)
	}
	sendsRefused("level 3 in the answered conversation", true)
	// Nor can pat reply on the new route while the conversation is
	// answered (a client that ignores the reply route).
	for name, mb := range map[string][2][]byte{"reply": {d.ReplySendMbx, d.ReplySendCap}, "new": {d.SendMbx, d.SendCap}} {
		if err := f.relayCode(t, d, mb[0], mb[1]); !protocol.IsCode(err, protocol.CodeRestrictedReplies) {
			t.Fatalf("level 3, the %s route while answered: %v", name, err)
		}
	}
	resolve(id)
	sendsRefused("level 3 after the resolve", false)
	send("a new question while replies are blocked")
	inQueue(id, "a new question while replies are blocked")
	restore("back after level 3")

	// Level 1: both.
	id, _ = answer("third answer")
	if err := ann.BlockOutsider(ctx, "Pharmacy", "pat", RestrictedService); err != nil {
		t.Fatal(err)
	}
	f.restrictedByIntake(t, "pat", RestrictedService)
	if _, err := f.pat.Send(ctx, "Pharmacy", "a reply while blocked"); !refused(err, RestrictedService) {
		t.Fatalf("level 1, a reply: %v", err)
	}
	resolve(id)
	if err := f.relayCode(t, newRoute, newRoute.SendMbx, newRoute.SendCap); !protocol.IsCode(err, protocol.CodeRestrictedService) {
		t.Fatalf("level 1, the new route: %v", err)
	}
	if _, err := f.pat.Send(ctx, "Pharmacy", "a new question while blocked"); !refused(err, RestrictedService) {
		t.Fatalf("level 1, a new conversation: %v", err)
	}
	restore("back after level 1")
	inQueue(id, "back after level 1")
	if n := len(messagesLike(t, f.intake, "while blocked")); n != 0 {
		t.Fatalf("the intake holds %d refused messages", n)
	}
}

func bytes16(b []byte) bool { return len(b) == 16 }

// TestReplyRouteRefused: a reply route is taken only from the team that
// invited this device, never by a team's intake (an outsider cannot hand
// the intake a route to write its sends to); a drop naming another
// mailbox leaves the route held; and a route the relay no longer knows
// (the intake deleted it, its drop lost) is forgotten at the refusal, the
// send that met it and the next going to the new route.
func TestReplyRouteRefused(t *testing.T) {
	t.Parallel()
	f := newTeamFixtureStaff(t, 1)
	ctx := testCtx(t)
	ann := f.staff[0][0]
	if _, err := f.pat.Send(ctx, "Pharmacy", "hello"); err != nil {
		t.Fatal(err)
	}
	id := f.settleQueue(t, queueOf(t, f.intake, "pat").ID)[0].ID
	if _, err := ann.Claim(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := ann.ReplyQueue(ctx, id, "hello pat", nil); err != nil {
		t.Fatal(err)
	}
	held := f.waitReplyRoute(t, true)

	// pat hands the intake a route, and drops another mailbox.
	toIntake := devicesOf(t, f.pat, "Pharmacy")[0]
	give := &replyRouteWire{Op: routeGive, Mailbox: protocol.MailboxID{1}}
	give.Cap[0] = 2
	var other protocol.MailboxID
	copy(other[:], held.ReplySendMbx)
	other[0] ^= 1
	for _, w := range []*replyRouteWire{give, {Op: routeDrop, Mailbox: other}} {
		ct := &content{Type: contentReplyRoute, Sender: f.pat.devID, SentMS: 1, RouteOp: w}
		copy(ct.MsgID[:], randomID(msgIDSize))
		if err := f.pat.sendSession(ctx, toIntake, ct); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, 1, f.intake)
	for _, d := range devicesOf(t, f.intake, "pat") {
		if len(d.ReplySendMbx) != 0 {
			t.Fatalf("the intake took pat's route: %x", d.ReplySendMbx)
		}
	}
	// The intake's drop of another mailbox (as a late drop of an
	// earlier route would be) leaves pat's route.
	ct := &content{Type: contentReplyRoute, Sender: f.intake.devID, SentMS: 2, RouteOp: &replyRouteWire{Op: routeDrop, Mailbox: other}}
	copy(ct.MsgID[:], randomID(msgIDSize))
	if err := f.intake.sendSession(ctx, devicesOf(t, f.intake, "pat")[0], ct); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.pat)
	if d := devicesOf(t, f.pat, "Pharmacy")[0]; !bytes.Equal(d.ReplySendMbx, held.ReplySendMbx) {
		t.Fatalf("a drop of another mailbox changed pat's route to %x", d.ReplySendMbx)
	}

	// The intake deletes the route without a drop reaching pat.
	cn, err := f.intake.authConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var mb protocol.MailboxID
	copy(mb[:], held.ReplySendMbx)
	if err := f.intake.deleteRoute(ctx, cn, mb); err != nil {
		t.Fatal(err)
	}
	// The send that meets it goes to the new route (TestReplyRouteDeletedResend).
	if _, err := f.pat.Send(ctx, "Pharmacy", "moved on the way"); err != nil {
		t.Fatalf("a send to a deleted reply route: %v", err)
	}
	if d := devicesOf(t, f.pat, "Pharmacy")[0]; holdsReplyRoute(d) {
		t.Fatal("pat still holds the deleted reply route")
	}
	if _, err := f.pat.Send(ctx, "Pharmacy", "on the new route"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.intake)
	for _, text := range []string{"moved on the way", "on the new route"} {
		if n := len(messagesLike(t, f.intake, text)); n != 1 {
			t.Fatalf("the intake holds %q %d times", text, n)
		}
	}
}

// replyRouteSeeds are a give and a drop.
func replyRouteSeeds() []*content {
	var dev keys.Fingerprint
	dev[0] = 9
	give := &replyRouteWire{Op: routeGive, Mailbox: protocol.MailboxID{3}}
	give.Cap[31] = 4
	return []*content{
		{Type: contentReplyRoute, Sender: dev, SentMS: 1, RouteOp: give},
		{Type: contentReplyRoute, Sender: dev, SentMS: 2, RouteOp: &replyRouteWire{Op: routeDrop, Mailbox: protocol.MailboxID{3}}},
	}
}

// TestReplyRouteWire: the encoder refuses what the decoder would not
// accept, and every body is at most maxReplyRouteSize.
func TestReplyRouteWire(t *testing.T) {
	t.Parallel()
	for i, ct := range replyRouteSeeds() {
		b, err := appendReplyRoute(nil, ct.RouteOp)
		if err != nil || len(b) > maxReplyRouteSize {
			t.Fatalf("seed %d: %d bytes, %v", i, len(b), err)
		}
	}
	for name, w := range map[string]*replyRouteWire{
		"no mailbox":            {Op: routeGive, Cap: [32]byte{1}},
		"a give without a cap":  {Op: routeGive, Mailbox: protocol.MailboxID{1}},
		"a drop with a cap":     {Op: routeDrop, Mailbox: protocol.MailboxID{1}, Cap: [32]byte{1}},
		"op 3":                  {Op: 3, Mailbox: protocol.MailboxID{1}},
		"op 0":                  {Op: 0, Mailbox: protocol.MailboxID{1}},
		"a drop without a mbox": {Op: routeDrop},
	} {
		ct := &content{Type: contentReplyRoute, SentMS: 1, RouteOp: w}
		if _, err := ct.marshalSession(); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

// FuzzReplyRoute: a session plaintext carrying a reply route (0x27)
// parses exactly or is ErrDecrypt, never panics, and what parses
// re-encodes to the same bytes.
func FuzzReplyRoute(f *testing.F) {
	addSessionSeeds(f, replyRouteSeeds()...)
	fuzzSessionContent(f, func(t *testing.T, ct *content) {
		if ct.Type == contentReplyRoute {
			if body, err := appendReplyRoute(nil, ct.RouteOp); err != nil || len(body) > maxReplyRouteSize {
				t.Fatalf("an accepted reply route of %d bytes, %v", len(body), err)
			}
		}
	})
}

// TestReplyRouteDeletedResend: a conversation resolved while the
// outsider's client does not read (the intake deleted the reply route,
// its drop not yet arrived): the outsider's next send meets the deleted
// route and goes out on the new route in the same send, the same
// message, once, and reaches the team's queue as the conversation
// reopened; the send reports success. Restricted from new messages, the
// same send is refused with the restriction's sentence and nothing is
// delivered (SPEC 15.9 "Two routes to the intake"). The drop not yet
// arrived is the route put back on pat's device after the intake
// deleted it.
func TestReplyRouteDeletedResend(t *testing.T) {
	t.Parallel()
	f := newTeamFixtureStaff(t, 1)
	ctx := testCtx(t)
	ann := f.staff[0][0]
	// answerAndResolve: ann answers pat's conversation (pat takes the
	// reply route) and resolves it; the intake drops and deletes the
	// route, and pat does not read the drop.
	answerAndResolve := func(text string, level Restriction) string {
		t.Helper()
		id := f.settleQueue(t, queueOf(t, f.intake, "pat").ID)[0].ID
		if _, err := ann.Claim(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := ann.ReplyQueue(ctx, id, text, nil); err != nil {
			t.Fatal(err)
		}
		held := f.waitReplyRoute(t, true)
		if level != 0 {
			if err := ann.BlockOutsider(ctx, "Pharmacy", "pat", level); err != nil {
				t.Fatal(err)
			}
			f.restrictedByIntake(t, "pat", level)
		}
		if _, err := ann.Resolve(ctx, id); err != nil {
			t.Fatal(err)
		}
		f.waitReplyRoute(t, false) // the intake deleted it, pat took the drop
		// pat's device holds the route again, as it does while the drop
		// has not arrived (a client that is online pushes can read it at
		// any moment, so the test puts the state back rather than race).
		if _, err := f.pat.updateContact(held.ID, func(r *contactRecord) {
			r.ReplySendMbx, r.ReplySendCap = held.ReplySendMbx, held.ReplySendCap
		}); err != nil {
			t.Fatal(err)
		}
		if err := f.relayCode(t, held, held.ReplySendMbx, held.ReplySendCap); !protocol.IsCode(err, protocol.CodeUnknownCapability) {
			t.Fatalf("the deleted route: %v", err)
		}
		return id
	}

	if _, err := f.pat.Send(ctx, "Pharmacy", "hello"); err != nil {
		t.Fatal(err)
	}
	id := answerAndResolve("hello pat", 0)
	if st := f.settleQueue(t, id)[0].State; st != "resolved" {
		t.Fatalf("the conversation is %s", st)
	}
	m, err := f.pat.Send(ctx, "Pharmacy", "after the resolve")
	if err != nil {
		t.Fatalf("a send that met the deleted reply route: %v", err)
	}
	if d := devicesOf(t, f.pat, "Pharmacy")[0]; holdsReplyRoute(d) {
		t.Fatal("pat still holds the deleted reply route")
	}
	ms := messagesLike(t, f.pat, "after the resolve")
	if len(ms) != 1 || ms[0].ID != m.ID || ms[0].Queued || ms[0].SendError != "" {
		t.Fatalf("pat's copies %+v, sent %s", ms, m.ID)
	}
	for i := 0; ; i++ {
		syncAll(t, 1, f.intake, ann)
		it := queueOf(t, ann, "pat")
		th, err := ann.QueueThread(id)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, qm := range th {
			if qm.Text == "after the resolve" {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("the queue holds the message %d times", n)
		}
		if n == 1 && it.ID == id && it.State == "new" && it.Reopens == 1 {
			break
		}
		if i == 20 {
			t.Fatalf("the queue conversation %+v holds the message %d times", it, n)
		}
	}
	if n := len(messagesLike(t, f.intake, "after the resolve")); n != 1 {
		t.Fatalf("the intake holds %d", n)
	}

	// Restricted from new messages: the new route refuses it, with the
	// level's sentence; nothing is delivered or kept.
	answerAndResolve("answered again", RestrictedNew)
	_, err = f.pat.Send(ctx, "Pharmacy", "a new question while restricted")
	var re *RestrictedError
	if !errors.As(err, &re) || re.Level != RestrictedNew || !strings.HasPrefix(err.Error(), "You have been restricted from a Triage Group(s).") {
		t.Fatalf("a send restricted on the new route: %v", err)
	}
	if n := len(messagesLike(t, f.pat, "while restricted")); n != 0 {
		t.Fatalf("pat keeps %d refused messages", n)
	}
	syncAll(t, 1, f.intake)
	if n := len(messagesLike(t, f.intake, "while restricted")); n != 0 {
		t.Fatalf("the intake holds %d refused messages", n)
	}
}
