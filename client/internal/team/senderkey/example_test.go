package senderkey_test

import (
	"errors"
	"fmt"

	"github.com/postern/postern/client/internal/team/senderkey"
	"github.com/postern/postern/protocol"
)

// A sender seals once; each member opens with the group's header key and
// the sender's distribution, received over a pairwise session.
func Example() {
	group := senderkey.GroupID{1}
	var alice, bob protocol.DeviceID
	alice[0], bob[0] = 0xa1, 0xb0

	headerKey, _ := senderkey.NewHeaderKey(nil) // shared with the membership
	own, _ := senderkey.NewOwn(group, alice, 0, nil)
	dist := own.Distribution() // sent to Bob over their pairwise session

	bobState := senderkey.NewState(group)
	d, _ := senderkey.ParseDistribution(dist)
	if err := bobState.Add(alice, d); err != nil {
		panic(err)
	}

	msg, _ := own.Seal(headerKey, []byte("the ward round starts at nine"))
	sender, text, err := bobState.Open(headerKey, msg)
	fmt.Println(sender == alice, string(text), err)

	// Read once: a replay fails like any forgery.
	_, _, err = bobState.Open(headerKey, msg)
	fmt.Println(errors.Is(err, senderkey.ErrDecrypt))

	// Alice rotates (a member left); until her new distribution arrives,
	// Bob holds the message.
	next, _ := own.Rotate(nil)
	dist2 := next.Distribution() // before sealing: it reads from iteration 0
	msg2, _ := next.Seal(headerKey, []byte("new epoch"))
	_, _, err = bobState.Open(headerKey, msg2)
	var missing *senderkey.MissingKeyError
	fmt.Println(errors.As(err, &missing), missing.Epoch)
	d2, _ := senderkey.ParseDistribution(dist2)
	if err := bobState.Add(alice, d2); err != nil {
		panic(err)
	}
	_, text, _ = bobState.Open(headerKey, msg2)
	fmt.Println(string(text))
	// Output:
	// true the ward round starts at nine <nil>
	// true
	// true 1
	// new epoch
}
