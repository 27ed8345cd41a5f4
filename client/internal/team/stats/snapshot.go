package stats

import (
	"encoding/hex"
	"encoding/json"
	"sort"
	"time"
)

// SnapshotVersion is the version member of the JSON document.
const SnapshotVersion = 1

// Snapshot is a team's figures at one time: the JSON document of
// `postern team stats NAME --json`, and what WritePrometheus writes. Its
// JSON member names are stable (SPEC 15.8, docs/TEAMS.md); members are
// only ever added.
type Snapshot struct {
	// Version is SnapshotVersion.
	Version int `json:"version"`
	// Time is when the figures were taken (RFC 3339, UTC, milliseconds).
	Time string `json:"time"`
	// Buckets are the upper bounds, in seconds, of the time-to-first-
	// response histogram's buckets (without +Inf).
	Buckets []float64 `json:"first_response_buckets_seconds"`
	// Queues are the queues' figures, by label.
	Queues []QueueFigures `json:"queues"`
}

// QueueFigures are one queue's figures.
type QueueFigures struct {
	// Queue is the queue's name, or its ID in hex if it has none.
	Queue string `json:"queue"`
	// QueueID is the queue's ID in hex.
	QueueID string `json:"queue_id"`
	// NewMessages counts the messages that reached the queue.
	NewMessages uint64 `json:"new_messages"`
	// Backlog is the number of open conversations (arrived or reopened,
	// not resolved or archived since).
	Backlog uint64 `json:"backlog"`
	// Unclaimed is the number of open conversations that nobody claimed
	// or answered since they opened.
	Unclaimed uint64 `json:"unclaimed"`
	// OldestUnclaimedSeconds is how long the oldest unclaimed
	// conversation has waited since it opened; 0 if none.
	OldestUnclaimedSeconds float64 `json:"oldest_unclaimed_seconds"`
	// FirstResponse is the time-to-first-response histogram.
	FirstResponse Histogram `json:"first_response"`
	// Reopened counts conversations reopened after being resolved or
	// archived.
	Reopened uint64 `json:"reopened"`
	// Escalations counts the wake-ups sent, by type.
	Escalations Escalations `json:"escalations"`
	// DeliveryFailures counts the team's messages that could not be
	// delivered.
	DeliveryFailures uint64 `json:"delivery_failures"`
	// Exports counts exports for the record.
	Exports uint64 `json:"exports"`
}

// Histogram is a time-to-first-response histogram.
type Histogram struct {
	// Cumulative[i] counts the first responses at most Buckets[i] seconds
	// after the conversation opened (as Prometheus's le buckets).
	Cumulative []uint64 `json:"cumulative"`
	// Count counts every first response (the +Inf bucket).
	Count uint64 `json:"count"`
	// SumSeconds is the sum of the times to first response.
	SumSeconds float64 `json:"sum_seconds"`
}

// Escalations counts wake-ups by type.
type Escalations struct {
	Unclaimed      uint64 `json:"unclaimed"`
	Unanswered     uint64 `json:"unanswered"`
	UrgentReminder uint64 `json:"urgent_reminder"`
}

// Snapshot returns the figures at the Stats' clock.
func (s *Stats) Snapshot() Snapshot { return s.SnapshotAt(s.clock()) }

// SnapshotAt returns the figures at now. A conversation opened after now
// (an event from a device whose clock is ahead) has waited 0 seconds.
func (s *Stats) SnapshotAt(now time.Time) Snapshot {
	nowMs := now.UnixMilli()
	snap := Snapshot{
		Version: SnapshotVersion,
		Time:    time.UnixMilli(nowMs).UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Buckets: Buckets(),
		Queues:  []QueueFigures{},
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, qu := range s.queues {
		f := QueueFigures{
			Queue:            qu.name,
			QueueID:          hex.EncodeToString(id[:]),
			NewMessages:      qu.messages,
			Reopened:         qu.reopened,
			DeliveryFailures: qu.failures,
			Exports:          qu.exports,
			Escalations: Escalations{
				Unclaimed:      qu.escalations[EscalationUnclaimed],
				Unanswered:     qu.escalations[EscalationUnanswered],
				UrgentReminder: qu.escalations[EscalationUrgentReminder],
			},
		}
		if f.Queue == "" {
			f.Queue = f.QueueID
		}
		oldest := int64(-1)
		for _, c := range qu.convs {
			if !c.open {
				continue
			}
			f.Backlog++
			if !c.taken {
				f.Unclaimed++
				if oldest < 0 || c.start < oldest {
					oldest = c.start
				}
			}
		}
		if oldest >= 0 && nowMs > oldest {
			f.OldestUnclaimedSeconds = seconds(nowMs - oldest)
		}
		f.FirstResponse.Cumulative = make([]uint64, len(bucketsMillis))
		var n uint64
		for i := range bucketsMillis {
			n += qu.hist[i]
			f.FirstResponse.Cumulative[i] = n
		}
		f.FirstResponse.Count = n + qu.hist[len(bucketsMillis)]
		f.FirstResponse.SumSeconds = seconds(qu.sum)
		snap.Queues = append(snap.Queues, f)
	}
	sort.Slice(snap.Queues, func(i, j int) bool { return snap.Queues[i].Queue < snap.Queues[j].Queue })
	return snap
}

// seconds converts milliseconds to seconds. ms is exact in a float64
// (below 2^53) and IEEE division rounds correctly, so the result is the
// float64 nearest to the decimal ms/1000 and prints as that decimal.
func seconds(ms int64) float64 { return float64(ms) / 1000 }

// MarshalJSON is the document of SPEC 15.8, with Queues never null.
func (s Snapshot) MarshalJSON() ([]byte, error) {
	type plain Snapshot
	if s.Queues == nil {
		s.Queues = []QueueFigures{}
	}
	return json.Marshal(plain(s))
}

// Only returns the snapshot with only the queue labelled name (its name,
// or its ID in hex), for `postern team stats NAME`; false if there is
// none.
func (s Snapshot) Only(name string) (Snapshot, bool) {
	for _, q := range s.Queues {
		if q.Queue == name {
			s.Queues = []QueueFigures{q}
			return s, true
		}
	}
	s.Queues = []QueueFigures{}
	return s, false
}
