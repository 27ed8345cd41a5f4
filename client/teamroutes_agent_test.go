package client

import (
	"testing"
	"time"

	"github.com/postern/postern/client/internal/team/queue"
	"github.com/postern/postern/protocol"
)

// resolveUnannounced resolves queue conversation id on the relay from
// staff device c as Resolve does, and stops as a device that crashed
// right after the relay's answer would: no state change is sent to the
// staff group, nothing is kept.
func resolveUnannounced(t *testing.T, c *Client, id string) {
	t.Helper()
	qt, err := c.loadQueue(id)
	if err != nil {
		t.Fatal(err)
	}
	me, err := actorOf(qt.state, c.idFP)
	if err != nil {
		t.Fatal(err)
	}
	view := queue.NewView()
	if qt.q.Version > 0 {
		if _, _, err := qt.space.Learn(view, qt.conv, qt.q.Version, qt.q.Sealed); err != nil {
			t.Fatal(err)
		}
	}
	cur := view.Current(qt.conv, queue.Initial(qt.q.Opened, qt.q.Urgent))
	next, err := queue.Resolve(cur.Value, me, uint64(c.now().UnixMilli()))
	if err != nil {
		t.Fatal(err)
	}
	req, err := qt.space.Request(qt.conv, cur, queue.OpResolve, next)
	if err != nil {
		t.Fatal(err)
	}
	write, err := protocol.CapabilityTokenFromBytes(qt.team.WriteCap)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.anonRequest(testCtx(t), qt.team.Relay, teamConnKey(qt.team.Group), &protocol.SetClaim{
		Space: qt.space.ID(), Write: write, Token: req.Token, Expected: req.Expected, Value: req.Sealed})
	if st, ok := resp.(*protocol.ClaimState); err != nil || !ok || !st.OK {
		t.Fatalf("the resolve's write: %v, %v", resp, err)
	}
}

// TestReplyRouteDroppedOnRegisterRead: ann answers pat's conversation
// (pat takes the reply route) and resolves it, but her device stops
// after the relay took the register, before its state change went out:
// the intake still holds the conversation open. The team agent's sweep
// reads the register from the relay, and the intake drops the reply
// route as it does for a received state change: the relay refuses a send
// to its mailbox as an unknown capability, pat takes the drop, and pat's
// next message goes on the new route and reopens the conversation.
func TestReplyRouteDroppedOnRegisterRead(t *testing.T) {
	t.Parallel()
	f := newTeamFixtureStaff(t, 1)
	ctx := testCtx(t)
	ann := f.staff[0][0]
	if _, err := f.pat.Send(ctx, "Pharmacy", "hello"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.intake)
	id := f.settleQueue(t, queueOf(t, f.intake, "pat").ID)[0].ID
	if _, err := ann.Claim(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := ann.ReplyQueue(ctx, id, "hello pat", nil); err != nil {
		t.Fatal(err)
	}
	held := f.waitReplyRoute(t, true)

	resolveUnannounced(t, ann, id)
	syncAll(t, 2, f.intake, f.pat)
	if it := queueOf(t, f.intake, "pat"); it.State == "resolved" {
		t.Fatal("the intake learnt of the resolve without reading the register")
	}
	if err := f.relayCode(t, held, held.ReplySendMbx, held.ReplySendCap); err != nil {
		t.Fatalf("the reply route before the agent's read: %v", err)
	}

	team := teamRecordOf(t, f.intake)
	a := &teamAgent{c: f.intake, gid: [16]byte(team.Group), name: team.Name, clock: time.Now}
	items, err := a.Open(ctx)
	if err != nil || len(items) != 0 {
		t.Fatalf("the agent's open conversations %+v, %v", items, err)
	}
	if it := queueOf(t, f.intake, "pat"); it.State != "resolved" {
		t.Fatalf("the intake holds the conversation %s after the agent's read", it.State)
	}
	if err := f.relayCode(t, held, held.ReplySendMbx, held.ReplySendCap); !protocol.IsCode(err, protocol.CodeUnknownCapability) {
		t.Fatalf("the reply route after the agent's read: %v", err)
	}
	f.waitReplyRoute(t, false)

	// The new route still takes pat's next message, which reopens the
	// conversation.
	if _, err := f.pat.Send(ctx, "Pharmacy", "one more question"); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		syncAll(t, 1, f.intake)
		it := queueOf(t, f.intake, "pat")
		if it.ID == id && it.State == "new" && it.Reopens == 1 && len(messagesLike(t, f.intake, "one more question")) == 1 {
			break
		}
		if i == 10 {
			t.Fatalf("the intake's conversation after pat's next message: %+v", it)
		}
	}
}
