package stats

import (
	"encoding/binary"
	"io"
	"testing"
	"time"
)

// lifecycle returns n conversations' events: arrived, claimed, first
// response, resolved, each conversation a minute after the one before.
func lifecycle(n int) []Event {
	var b builder
	out := make([]Event, 0, 4*n)
	for i := 0; i < n; i++ {
		at := time.Duration(i) * time.Minute
		out = append(out,
			b.ev(MessageArrived, at, pharmacy, i),
			b.ev(Claimed, at+time.Minute, pharmacy, i),
			b.ev(FirstResponse, at+7*time.Minute, pharmacy, i),
			b.ev(Resolved, at+20*time.Minute, pharmacy, i))
	}
	return out
}

// BenchmarkAdd counts new events (per event), in the order they happen.
func BenchmarkAdd(b *testing.B) {
	events := lifecycle(b.N/4 + 1)
	s := New(nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Add(events[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddReversed counts new events newest first: every lifecycle
// event lands before the ones already held.
func BenchmarkAddReversed(b *testing.B) {
	events := lifecycle(b.N/4 + 1)
	s := New(nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Add(events[len(events)-1-i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddRepeat counts events already counted (an agent replaying
// its stored events, devices exchanging them twice).
func BenchmarkAddRepeat(b *testing.B) {
	events := lifecycle(1000)
	s := New(nil)
	for _, e := range events {
		if _, err := s.Add(e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if added, err := s.Add(events[i%len(events)]); err != nil || added {
			b.Fatal(added, err)
		}
	}
}

// BenchmarkAddBusyConversation adds to a conversation that already holds
// MaxConversationEvents/2 lifecycle events, in the middle of them.
func BenchmarkAddBusyConversation(b *testing.B) {
	var bu builder
	s := New(nil)
	for i := 0; i < MaxConversationEvents/2; i++ {
		if _, err := s.Add(bu.ev(MessageArrived, time.Duration(i)*time.Minute, pharmacy, 1)); err != nil {
			b.Fatal(err)
		}
	}
	e := bu.ev(Claimed, 100*time.Minute, pharmacy, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// A fresh conversation each MaxConversationEvents/2 adds keeps
		// the one being added to from filling up.
		b.StopTimer()
		if i%(MaxConversationEvents/2) == 0 {
			s = New(nil)
			for j := 0; j < MaxConversationEvents/2; j++ {
				if _, err := s.Add(bu.ev(MessageArrived, time.Duration(j)*time.Minute, pharmacy, 1)); err != nil {
					b.Fatal(err)
				}
			}
		}
		binary.BigEndian.PutUint64(e.ID[:8], uint64(i)+1)
		b.StartTimer()
		if _, err := s.Add(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseEvent(b *testing.B) {
	data, err := scenario()[0].MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(EventSize)
	for i := 0; i < b.N; i++ {
		if _, err := ParseEvent(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshotPrometheus takes and writes the figures of a queue of
// 10 000 conversations, 2 500 of them open.
func BenchmarkSnapshotPrometheus(b *testing.B) {
	s := New(nil)
	for i, e := range lifecycle(10000) {
		if e.Type == Resolved && i%16 < 4 {
			continue
		}
		if _, err := s.Add(e); err != nil {
			b.Fatal(err)
		}
	}
	now := t0.Add(30 * 24 * time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.SnapshotAt(now).WritePrometheus(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLogAppend(b *testing.B) {
	l := NewLog(team)
	e := entries()[1]
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := l.Append(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyLog verifies a log of 10 000 entries (per log).
func BenchmarkVerifyLog(b *testing.B) {
	l := NewLog(team)
	es := entries()
	rs := make([]Record, 10000)
	for i := range rs {
		r, err := l.Append(es[i%len(es)])
		if err != nil {
			b.Fatal(err)
		}
		rs[i] = r
	}
	head := l.Head()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := VerifyLog(team, rs, &head); err != nil {
			b.Fatal(err)
		}
	}
}
