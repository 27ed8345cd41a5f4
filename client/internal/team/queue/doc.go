// Package queue is the pure part of Postern's team queues: the claim
// token of a conversation, the encrypted value its claim register holds,
// the rules of every state change, a device's view of the queue, and the
// bodies of the team's state-change messages and queue read receipts. It
// has no network, no storage and no logging; the client wires it to the
// relay's claim space (SetClaim, GetClaim), to the team's messages and to
// its store. protocol/SPEC.md section 15.6 is normative for every byte,
// label and limit, and section 15.4 (with model/claim.pml, checked by
// SPIN) for the protocol the functions below follow.
//
// # What it owns
//
//   - ClaimKey.Token: the opaque 32-byte token of a conversation's
//     register, HMAC-SHA256 of the conversation ID under the team's claim
//     key; the relay learns it and nothing else of the conversation.
//   - Value and Space.Seal/Open: the conversation's state, owner, who
//     assigned it, urgent flag, times and reopen count, encoded in a fixed
//     128 bytes and sealed with XChaCha20-Poly1305 under a key derived
//     from the team key, bound to the claim space and the token. Every
//     sealed value is SealedValueSize bytes, so its length tells the relay
//     nothing.
//   - The transitions Claim, Assign, Resolve, Archive, Reopen, SetUrgent,
//     Respond, ReassignRemoved, ReleaseRemoved, and for role accounts
//     HandOver and Release: pure functions from (value, actor) to the
//     next value or a specific error.
//   - View, Space.Request, Space.Answer, Space.AfterLost, Space.Receive:
//     the device side of the claim protocol, in which a view applies only
//     higher versions and a lost compare-and-set adopts the register;
//     View.Changes gives the state changes an admin sends new staff.
//   - Change and Receipt: the exact codecs of the team's state-change
//     body and of the queue read receipt.
//
// # Use
//
// A staff device holds a Space (claim space ID, claim key, team keys) and
// a View. To claim conversation c:
//
//	cur := view.Current(c, queue.Initial(sentOfFirstMessage, urgent))
//	next, err := queue.Claim(cur.Value, me) // ErrOwned, ErrState, …: show it, write nothing
//	req, err := space.Request(c, cur, queue.OpClaim, next)
//	// SetClaim{space.ID(), write capability, req.Token, req.Expected, req.Sealed}
//	out, err := space.Answer(view, req, ok, version, value)
//	if out.Announce != nil { /* send queue.Change{*out.Announce} to every other staff device */ }
//
// If the answer is lost, read the register with GetClaim and call
// AfterLost instead of Answer. If the write capability was refused
// (protocol.CodeClaimCapability), nothing was written: wait for the new
// capability, which comes with the new staff list, and decide again from
// the view. A received state change goes to ParseChange, then
// Space.Receive.
//
// # Security
//
//   - The relay sees tokens, versions and fixed-size sealed values: not
//     which conversation a register is for, its state, owner or times. It
//     sees when a register is written, and the team key epoch of each
//     value (so when the team's key was replaced).
//   - A value opens only under its team key epoch, for its claim space and
//     token: one copied to another register or space, or altered, is
//     ErrDecrypt.
//   - The relay enforces only the compare-and-set and the write
//     capability. The rules of the transitions are kept by the staff's
//     clients: a current staff member holding the write capability and
//     the team key can write any valid value. Removing a member replaces
//     the write capability (and the team key), which is what keeps a
//     removed member out.
//   - Values are not secret keys, but they are confidential; no error of
//     this package shows one, a key or a token.
//   - Go cannot promise that keys are wiped from memory; this package does
//     not try.
package queue
