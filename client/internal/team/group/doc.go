// Package group is the signed membership of a Postern group: who is in it,
// with which role and devices, where its messages are fanned out, and the
// header key that hides its messages' senders from the relay. It is pure:
// no network, no storage, no logging. protocol/SPEC.md section 15.5 is
// normative for every byte, rule and limit.
//
// # Use
//
// An admin builds a State, signs it with its identity key (Sign, through
// the Signer interface that *identity.Identity satisfies) and sends the
// encoding to every member device inside the pairwise sessions. A member
// parses what arrives (Parse checks the encoding, the rules and the
// signature) and accepts it against the state it holds:
//
//	next, err := group.Parse(b)
//	if held == nil {
//		err = group.AcceptFirst(next, senderPerson, me)
//	} else {
//		err = held.Accept(next, senderPerson)
//	}
//
// Accept refuses a version that does not increase (a rollback or a
// replay), a state not signed by an admin of the held state, and one that
// did not come from a device of its signer's person; the first state must
// be signed by one of its own admins, come from a device of that admin's
// person, and name the receiver.
//
// # Security
//
// A State holds the group's header key and send capability: it is SECRET
// and travels only inside pairwise sessions. String redacts it. The
// signature binds every field, so a member who relays a state cannot
// change it; but any member may replay an old state to another, which is
// why the version must strictly increase.
package group
