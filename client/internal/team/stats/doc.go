// Package stats turns a team's content-free events into its workflow
// figures, and keeps the team's content-free log.
//
// It owns three things (protocol/SPEC.md section 15.8):
//
//   - Events: what happened in a queue's conversation (a message arrived,
//     claimed, first response, resolved, archived, reopened, an escalation
//     of a type, a failed delivery, an export), when, in which queue and
//     for which conversation token. Never content, never names, never who.
//     An event has an exact 75-byte encoding (MarshalBinary, ParseEvent)
//     so the team agent can store it and staff devices can exchange it.
//   - Figures: per queue, new messages, the backlog, unclaimed
//     conversations and the age of the oldest, a time-to-first-response
//     histogram with fixed buckets, reopenings, escalations by type,
//     failed deliveries and exports. A Snapshot is the JSON document of
//     `postern team stats NAME --json`, and WritePrometheus writes it in
//     the Prometheus text format 0.0.4 (by hand; no dependency).
//   - The team log: append-only entries (export, block, unblock, staff
//     added, staff removed, escalation), each with a time, the actor's
//     identity fingerprint and a subject token, chained by SHA-256 so that
//     VerifyLog finds a changed, removed, reordered or inserted entry.
//
// It is pure: no store, no network, no clock of its own (Options.Clock,
// SnapshotAt). The team agent feeds it and persists events and records.
//
// # Counting
//
// Add is idempotent: an event whose ID was counted changes nothing (an
// ID reused with other contents is refused, ErrConflict). The figures are
// a function of the set of events counted, not of their order: each
// conversation keeps its lifecycle events sorted by time and is replayed
// on every change, so a resolution that arrives before the message it
// closes, or a repeat from another device a day late, gives the same
// figures. Counters need no order at all. Limits (MaxEvents, MaxQueues,
// MaxConversationEvents) refuse with ErrFull and change nothing.
//
// # Use
//
//	s := stats.New(&stats.Options{Clock: clock})
//	s.NameQueue(teamID, "Pharmacy")
//	e, _ := stats.NewEvent(stats.MessageArrived, received, teamID, claimToken)
//	s.Add(e)                                   // store e.MarshalBinary() too
//	w.Header().Set("Content-Type", stats.ContentType)
//	s.Snapshot().WritePrometheus(w)            // or json.Marshal(snap)
//
//	log := stats.NewLog(teamID)                // or ResumeLog(head)
//	rec, _ := log.Append(stats.Entry{Kind: stats.LogExport, …})
//	head, err := stats.VerifyLog(teamID, records, &trustedHead)
//
// # Security
//
//   - Nothing here holds content or names: conversations are opaque
//     tokens (the claim token of SPEC 15.4), queues are IDs with a name
//     the caller gives (the team's name, as its wake-ups already say it),
//     log actors are identity fingerprints. The figures still tell how
//     busy a queue is and when; they are for the team's lead, and the
//     metrics endpoint should be served only to the team's operators.
//   - Decoders (ParseEvent, ParseRecord, ParseLog) take untrusted bytes:
//     exact sizes, every field range-checked, and what they accept encodes
//     back to the same bytes (fuzzed).
//   - A hash chain shows a change only to someone who knows a later head:
//     whoever can write the log can rewrite its end, or all of it,
//     consistently. VerifyLog with a trusted head (kept by another staff
//     device, or in a signed message) detects that; without one it does
//     not. The chain is bound to the team (StartHash), so two teams' logs
//     cannot be spliced.
package stats
