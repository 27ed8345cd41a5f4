// Package audit is the relay's tamper-evident audit log: an append-only
// file of content-free events (relay start and stop with its settings,
// configuration reloads, device enrolment and revocation, invite codes
// created, admin actions, retention purges in aggregate) chained by
// SHA-256 and periodically sealed by a head signed with the relay's own
// hybrid key.
//
// For most uses: the relay opens the log itself (Open on its data
// directory) and calls Append; operators run `postern-relay audit verify`
// and hand reviewers the bundle of `postern-relay audit export`, which a
// reviewer checks with `postern-relay audit verify --file BUNDLE
// --key-fingerprint HEX`.
//
// # Format
//
// DATA/audit.log holds one JSON object per line (protocol/SPEC.md section 10
// "Audit log"):
//
//	{"seq":1,"time":1764111600,"event":"relay.start","fields":{...},"prev":"00…","hash":"…"}
//
// hash = SHA-256("postern.v1 audit" || body), where body is the line's
// canonical JSON without the hash member; prev is the previous entry's
// hash (64 zeros for the first). Every Options.HeadEvery entries, and when
// the log is closed, an "audit.head" entry signs (seq, prev, time) with the
// relay key in context "audit-head". The newest signed head is also kept
// in DATA/audit.head, so that cutting entries off the end is detected.
//
// Verify reports the first entry that was edited, removed, reordered or
// whose head signature fails, by sequence number and line.
//
// # Security
//
// The chain alone proves nothing against someone who can write the file:
// they can recompute every hash. What they cannot do without the relay key
// is sign a head, so an edit is detected at the latest at the next signed
// head, and entries after the newest head are chained but not yet
// authenticated (Verify counts them). Anyone holding DATA/relay-key can
// rewrite history; anyone who can write DATA can roll the log and
// DATA/audit.head back to an older signed head. Reviewers detect that by
// keeping the heads of earlier exports. Verify against a public key whose
// fingerprint you obtained out of band, not only against the one stored
// next to the log.
//
// Entries never hold message content, mailbox IDs, capability tokens,
// invite codes or anything about who talks to whom: only full device IDs
// (public-key fingerprints), counts and settings. Callers pass the fields;
// keep them that way.
//
// A Log is safe for concurrent use. The zero value is not usable; a nil
// *Log discards appends, so optional logging needs no checks.
package audit
