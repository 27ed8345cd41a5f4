package queue_test

import (
	"fmt"

	"github.com/postern/postern/client/internal/team/queue"
	"github.com/postern/postern/protocol"
)

// A staff device claims a new conversation. The relay's answer here is
// the one a SetClaim from version 0 gets when nobody wrote first.
func Example() {
	claimKey, _ := queue.NewClaimKey()
	teamKey, _ := queue.NewTeamKey(0)
	space, _ := queue.NewSpace(protocol.NewClaimSpaceID(), claimKey, teamKey)
	view := queue.NewView()
	me := queue.Actor{Identity: queue.Identity{1}, Role: queue.Staff}
	c := queue.ConversationID{7}

	cur := view.Current(c, queue.Initial(1765000000000, false))
	next, err := queue.Claim(cur.Value, me)
	if err != nil {
		fmt.Println(err)
		return
	}
	req, _ := space.Request(c, cur, queue.OpClaim, next)
	// SetClaim{space.ID(), write capability, req.Token, req.Expected, req.Sealed}
	// → ClaimState{ok: true, version: 1, value: req.Sealed}
	out, _ := space.Answer(view, req, true, req.Expected+1, req.Sealed)
	body, _ := queue.Change{*out.Announce}.MarshalBinary()
	fmt.Println("won:", out.Won, "state change of", len(body), "bytes")

	// A colleague's device, which receives the state change, now refuses
	// to claim it.
	theirs := queue.NewView()
	ch, _ := queue.ParseChange(body)
	space.Receive(theirs, ch)
	r, _ := theirs.Get(c)
	_, err = queue.Claim(r.Value, queue.Actor{Identity: queue.Identity{2}, Role: queue.Staff})
	fmt.Println(r.Version, r.Value.State, err)
	// Output:
	// won: true state change of 201 bytes
	// 1 claimed queue: conversation owned by another staff member
}
