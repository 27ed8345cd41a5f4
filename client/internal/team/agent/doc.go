// Package agent is the runtime of a team agent (`postern agent --team
// NAME`): the unattended member device that watches a team queue, sends
// the content-free wake-ups of its response windows, and serves the
// team's workflow figures.
//
// It owns the loop and the figures' HTTP endpoint, not the decisions:
// package hours decides when a conversation is overdue and what a wake-up
// says, package stats counts the content-free events. The team's queue and
// the place where escalation records survive a restart come in through
// two interfaces (Queue, Records), which the client implements over its
// team and its encrypted store (protocol/SPEC.md section 15.2, "The team
// agent").
//
// # What it guarantees
//
//   - A wake-up is recorded only after the queue accepted it (Queue.WakeUp
//     returns once it is in the outbox), so a crash or a failed record
//     repeats a wake-up rather than losing it; a stored record keeps
//     a window's wake-up from firing twice across restarts.
//   - Of the wake-ups one decision asks for, those that were sent are
//     recorded even when a later one fails: an escalation that went out is
//     not repeated because its reminder did not.
//   - The loop sleeps until the earliest time any conversation needs a
//     decision, wakes early when the queue changes (Poke), and lists the
//     queue again at least every MaxWait, so a missed Poke costs at most
//     that delay. After an error it tries again after Retry.
//   - Nothing it logs or serves carries content, names or tokens: the
//     figures are counts and durations, and log lines count items.
package agent
