package stats

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// t0 is a Monday morning in UTC; every test time is relative to it.
var t0 = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

var (
	pharmacy  = QueueID{1, 'p'}
	radiology = QueueID{2, 'r'}
)

// tok is the conversation token of test conversation n.
func tok(n int) Token {
	return Token(sha256.Sum256(binary.BigEndian.AppendUint64([]byte("conversation"), uint64(n))))
}

// builder makes events with deterministic IDs, so tests can repeat them.
type builder struct{ n uint64 }

func (b *builder) ev(typ EventType, at time.Duration, q QueueID, conv int) Event {
	b.n++
	var id EventID
	binary.BigEndian.PutUint64(id[8:], b.n)
	id[0] = 0xe7
	return Event{ID: id, Type: typ, Time: t0.Add(at), Queue: q, Conversation: tok(conv)}
}

func (b *builder) esc(kind Escalation, at time.Duration, q QueueID, conv int) Event {
	e := b.ev(Escalated, at, q, conv)
	e.Escalation = kind
	return e
}

// scenario is a morning of two queues, with the figures it gives at
// t0+3h (scenarioFigures).
func scenario() []Event {
	var b builder
	m := time.Minute
	return []Event{
		// Pharmacy, conversation 1: answered in 30 minutes, resolved,
		// reopened, answered again in 2 minutes; open.
		b.ev(MessageArrived, 0, pharmacy, 1),
		b.ev(Claimed, 10*m, pharmacy, 1),
		b.ev(FirstResponse, 30*m, pharmacy, 1),
		b.ev(MessageArrived, 40*m, pharmacy, 1), // a second message, same opening
		b.ev(Resolved, 60*m, pharmacy, 1),
		b.ev(Reopened, 120*m, pharmacy, 1),
		b.ev(MessageArrived, 120*m, pharmacy, 1),
		b.ev(Claimed, 121*m, pharmacy, 1),
		b.ev(FirstResponse, 122*m, pharmacy, 1),
		b.ev(ExportMade, 125*m, pharmacy, 1),
		// Pharmacy, conversation 2: nobody claimed it for 2h55m.
		b.ev(MessageArrived, 5*m, pharmacy, 2),
		b.esc(EscalationUnclaimed, 125*m, pharmacy, 2),
		b.esc(EscalationUrgentReminder, 20*m, pharmacy, 2),
		b.esc(EscalationUrgentReminder, 35*m, pharmacy, 2),
		// Pharmacy, conversation 3: claimed, not answered.
		b.ev(MessageArrived, 20*m, pharmacy, 3),
		b.ev(Claimed, 25*m, pharmacy, 3),
		b.esc(EscalationUnanswered, 150*m, pharmacy, 3),
		b.ev(DeliveryFailed, 26*m, pharmacy, 3),
		// Pharmacy, conversation 4: answered at 1 minute exactly (the
		// bucket's bound), resolved and archived.
		b.ev(MessageArrived, 50*m, pharmacy, 4),
		b.ev(FirstResponse, 51*m, pharmacy, 4),
		b.ev(Resolved, 52*m, pharmacy, 4),
		b.ev(Archived, 53*m, pharmacy, 4),
		// Radiology, conversation 5: unclaimed for one hour; and
		// conversation 6: answered after 2 days and 500 ms.
		b.ev(MessageArrived, 120*m, radiology, 5),
		b.ev(MessageArrived, -48*time.Hour, radiology, 6),
		b.ev(FirstResponse, 500*time.Millisecond, radiology, 6),
	}
}

func hexID(q QueueID) string { return hex.EncodeToString(q[:]) }

// scenarioNow is when scenarioFigures are taken.
var scenarioNow = t0.Add(3 * time.Hour)

// cumulative builds a cumulative bucket list from (bucket index, count)
// pairs of first responses.
func cumulative(at map[int]uint64) []uint64 {
	out := make([]uint64, len(bucketsMillis))
	var n uint64
	for i := range out {
		n += at[i]
		out[i] = n
	}
	return out
}

func scenarioFigures() Snapshot {
	return Snapshot{
		Version: 1,
		Time:    "2026-12-07T12:00:00.000Z",
		Buckets: Buckets(),
		Queues: []QueueFigures{
			{
				Queue: "Pharmacy", QueueID: hexID(pharmacy),
				NewMessages: 6, Backlog: 3, Unclaimed: 1,
				OldestUnclaimedSeconds: 175 * 60,
				FirstResponse: Histogram{
					// 30 min (bucket 3: ≤ 30 min), 2 min (bucket 1: ≤ 5 min),
					// 1 min (bucket 0: ≤ 1 min).
					Cumulative: cumulative(map[int]uint64{0: 1, 1: 1, 3: 1}),
					Count:      3, SumSeconds: 33 * 60,
				},
				Reopened:         1,
				Escalations:      Escalations{Unclaimed: 1, Unanswered: 1, UrgentReminder: 2},
				DeliveryFailures: 1, Exports: 1,
			},
			{
				Queue: "Radiology", QueueID: hexID(radiology),
				NewMessages: 2, Backlog: 2, Unclaimed: 1,
				OldestUnclaimedSeconds: 3600,
				FirstResponse: Histogram{
					// 48 h 0.5 s: above 2 days, within 3 (bucket 10).
					Cumulative: cumulative(map[int]uint64{10: 1}),
					Count:      1, SumSeconds: 48*3600 + 0.5,
				},
			},
		},
	}
}
