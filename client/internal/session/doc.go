// Package session is the cryptographic core of Postern's pairwise sessions:
// a PQXDH-shaped handshake over X-Wing prekeys, then a Double Ratchet
// (X25519, header encryption) with a periodic ML-KEM-768 ratchet step. It is
// pure: no network, no storage, no logging. protocol/SPEC.md section 11 is
// normative for every byte and label.
//
// # Use
//
// The initiator fetches the peer's bundle, checks the identity fingerprint,
// and starts:
//
//	s, init, err := session.Initiate(dev, session.PeerBundle{Cert: c, SignedPrekey: spk, OneTime: opk}, nil)
//	n, _ := protocol.BucketFor(protocol.EnvelopeHeaderSize + s.Overhead() + len(p))
//	msg, err := s.Seal(p, n-protocol.EnvelopeHeaderSize) // carries init while s.NeedsInit()
//
// The responder, for a message with no session yet:
//
//	init, err := session.MessageInit(msg)          // nil if none attached
//	s, err := session.Respond(dev, spk, opk, init, nil) // prekeys named by init
//	// check s.PeerCertificate().Identity, store s, delete opk, then:
//	p, err := s.Open(msg)
//
// Store sessions with MarshalSecret (encrypted at rest) and load them with
// UnmarshalSecret. A Session is not safe for concurrent use.
//
// Simultaneous initiation: when a session that still NeedsInit receives a
// message carrying a different Init, s.YieldsTo(theirs) says whether to
// replace it with Respond(theirs); both sides reach the same answer, so they
// converge on one session. The winner may Respond to the losing Init only to
// read the messages already sent on it, and then drop that session.
//
// # Security
//
//   - Every failure of Open and Respond that depends on secrets is ErrDecrypt,
//     and Open leaves the session unchanged on failure (it works on a copy).
//     A replayed message fails; so does one more than MaxSkip ahead in its
//     chain, or one whose skipped key was evicted (MaxSkippedKeys).
//   - Forward secrecy per message: a message key is deleted when used; the
//     state never holds the key of a message already read. A skipped
//     message's key is kept at most MaxSkippedKeyAge (15 days) after it
//     was derived, and MaxSkippedKeys keys in all.
//   - A state restored from an old copy, or copied, re-derives the same
//     message keys, but every message has a fresh random nonce for both its
//     header and body AEADs, so no (key, nonce) pair repeats; the peer reads
//     at most one message per counter and refuses the rest (SPEC.md 11.10).
//   - Classical healing on every turn (new X25519 key per sending chain);
//     post-quantum healing on every PQ step, which happens at least every
//     PQMessageInterval messages or PQInterval (see SPEC.md section 11 for the
//     exact bound).
//   - The handshake is hybrid: X-Wing for confidentiality of the initial
//     secret, and the initiator's hybrid Ed25519 + ML-DSA-65 signature over the
//     transcript, inside the encryption (a relay never sees who initiates).
//   - Replay of an Init against a last-resort prekey is not detected here:
//     a responder that already holds the session for an Init ID must not call
//     Respond again; one-time prekeys must be deleted after use.
//   - Go cannot promise that secrets are wiped from memory; this package does
//     not try.
package session
