package queue

import (
	"testing"

	"github.com/postern/postern/protocol"
)

func ident(n byte) Identity {
	var id Identity
	for i := range id {
		id[i] = n
	}
	return id
}

func conv(n byte) ConversationID {
	var c ConversationID
	c[0], c[15] = n, 0xc0
	return c
}

func staff(n byte) Actor { return Actor{Identity: ident(n), Role: Staff} }
func admin(n byte) Actor { return Actor{Identity: ident(n), Role: Admin} }

var testSpaceID = protocol.ClaimSpaceID{0x5a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

func mustClaimKey(t testing.TB) ClaimKey {
	t.Helper()
	k, err := NewClaimKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustTeamKey(t testing.TB, epoch uint32) TeamKey {
	t.Helper()
	k, err := NewTeamKey(epoch)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSpace(t testing.TB, id protocol.ClaimSpaceID, ck ClaimKey, cur TeamKey, earlier ...TeamKey) *Space {
	t.Helper()
	s, err := NewSpace(id, ck, cur, earlier...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTestSpace(t testing.TB) *Space {
	return mustSpace(t, testSpaceID, mustClaimKey(t), mustTeamKey(t, 0))
}

func mustSeal(t testing.TB, s *Space, c ConversationID, v Value) []byte {
	t.Helper()
	b, err := s.Seal(c, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sampleValues is one valid value of every state, with every field used.
func sampleValues() []Value {
	return []Value{
		Initial(0, false),
		Initial(1_765_000_000_000, true),
		{State: Claimed, Owner: ident(1), Opened: 1_765_000_000_000, FirstResponse: 1_765_000_100_000},
		{State: Assigned, Urgent: true, Owner: ident(2), AssignedBy: ident(1), Opened: 1_765_000_000_000, Reopens: 3},
		{State: Resolved, Opened: 1_765_000_000_000, FirstResponse: 1_765_000_100_000, Resolved: 1_765_000_200_000, Reopens: 1},
		{State: Archived, Urgent: true, Opened: MaxTime, FirstResponse: MaxTime, Resolved: MaxTime, Reopens: 0xffffffff},
	}
}
