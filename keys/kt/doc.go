// Package kt is the public side of a relay's key-transparency log (SPEC.md
// section 10, "Key transparency"): the leaf a published device list
// becomes, the relay's signed tree heads, and the RFC 6962 inclusion and
// consistency proofs that tie a fetched list to a head and a head to an
// older one. Clients verify with it; the relay's store builds the tree with
// it; `postern-relay kt verify` checks a whole log with it. It holds no
// private key: heads are signed by the relay's audit key (relay/audit).
//
// Hashing is RFC 6962's (SHA-256, leaf prefix 0x00, node prefix 0x01), by
// github.com/transparency-dev/merkle; the proof shapes are its proof
// package's.
//
// # Security
//
// A head proves only what the relay committed to. A relay that shows two
// people different logs is caught when their heads meet: consistency
// fails between them (a fork), which is why clients keep the newest head
// per relay and carry it to their contacts. VerifyAnswer checks one answer
// against the newest head a client holds; what to do with a failure (warn,
// encrypt to nothing unverified) is the caller's.
package kt
