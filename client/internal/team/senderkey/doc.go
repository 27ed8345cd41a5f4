// Package senderkey is the cryptography of Postern's group messages:
// sender keys. Each member device holds, per group and epoch, a sender
// key: a symmetric chain that gives one message key per message, and an
// Ed25519 signing key. A message is sealed once, whatever the group's
// size, and the relay fans it out. It is pure: no network, no storage, no
// logging. protocol/SPEC.md section 15.1 is normative for every byte,
// label and limit.
//
// # Use
//
// A sender makes its key and sends the distribution to every other member
// device, inside the pairwise sessions:
//
//	own, err := senderkey.NewOwn(group, myDevice, 0, nil)
//	dist := own.Distribution() // SECRET: send only over pairwise sessions
//	msg, err := own.Seal(headerKey, plaintext) // store own, then send msg
//
// A distribution carries the chain at the key's next iteration: its holder
// reads the messages sealed after it was made, not before. Make the
// distribution of a new key (NewOwn, Rotate) before its first Seal.
//
// A receiver keeps one State per group, adds each distribution with the
// sender device its session authenticated, and opens messages:
//
//	st := senderkey.NewState(group)
//	d, err := senderkey.ParseDistribution(dist)
//	err = st.Add(senderDevice, d)
//	sender, plaintext, err := st.Open(headerKey, msg)
//
// When Open says ErrNoSenderKey (errors.As gives a *MissingKeyError with
// the sender and epoch), the distribution has not arrived yet: keep the
// message and try again when it does.
//
// Removing a member: every remaining member device calls Rotate on its
// own key and sends the new Distribution only to the remaining devices;
// the group header key is replaced too. Receivers keep the previous epoch
// of each sender for the messages still in flight, up to the end the new
// distribution declares, and drop the epoch before it.
//
// Store Own and State with MarshalSecret (encrypted at rest) and load them
// with UnmarshalOwn and UnmarshalState. Neither is safe for concurrent use.
//
// # Security
//
//   - Every failure of Open that depends on a message's authenticity is
//     ErrDecrypt, and Open changes nothing on any failure. A replayed
//     message fails (its key is gone), and so does one whose skipped key
//     was evicted. A message more than MaxSkip ahead is ErrSkipLimit.
//   - The group header key hides the sender, epoch, iteration, body and
//     signature from the relay; it is shared by all members, so it
//     authenticates nothing among them.
//   - Every member holds every sender's chain key, so the body AEAD alone
//     would let any member write as any other. The per-epoch Ed25519
//     signature over the body is what stops that. It is not post-quantum:
//     a member with a quantum computer could compute another sender's
//     signing key from its public key (which only members hold) and forge
//     that sender's messages to the group until its next epoch. Outsiders,
//     the relay included, never see a public key.
//   - Forward secrecy per message: a message key is deleted when used; the
//     chain only moves forward. A member added later reads from the
//     iteration of the distribution it received, not before.
//   - Removal: a new epoch's chain and signing key are fresh random, so a
//     device holding only older distributions reads nothing of it.
//   - A restored or copied Own seals again with iterations already used:
//     receivers read the first message of each iteration and refuse the
//     rest; the repeated body key and nonce are visible only to holders of
//     the header key and the chain key, who can read the group anyway.
//   - Go cannot promise that secrets are wiped from memory; this package
//     does not try.
package senderkey
