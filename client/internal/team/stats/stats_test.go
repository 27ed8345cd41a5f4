package stats

import (
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/team/hours"
)

// load counts events into a new Stats with the test queues named.
func load(t testing.TB, events []Event) *Stats {
	t.Helper()
	s := New(&Options{Clock: func() time.Time { return scenarioNow }})
	for _, q := range []struct {
		id   QueueID
		name string
	}{{pharmacy, "Pharmacy"}, {radiology, "Radiology"}} {
		if err := s.NameQueue(q.id, q.name); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range events {
		if _, err := s.Add(e); err != nil {
			t.Fatalf("Add(%v): %v", e.Type, err)
		}
	}
	return s
}

func checkFigures(t *testing.T, got, want Snapshot) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("figures:\n got %+v\nwant %+v", got, want)
	}
}

func TestFigures(t *testing.T) {
	s := load(t, scenario())
	checkFigures(t, s.Snapshot(), scenarioFigures())
	if s.Len() != len(scenario()) {
		t.Errorf("Len = %d, want %d", s.Len(), len(scenario()))
	}
}

// A repeated event changes nothing, however often and whenever it comes.
func TestRepeatChangesNothing(t *testing.T) {
	events := scenario()
	s := load(t, events)
	for round := 0; round < 3; round++ {
		for _, e := range events {
			added, err := s.Add(e)
			if err != nil || added {
				t.Fatalf("repeat of a %v event: added %v, %v", e.Type, added, err)
			}
		}
	}
	checkFigures(t, s.Snapshot(), scenarioFigures())
	if s.Len() != len(events) {
		t.Errorf("Len = %d after repeats, want %d", s.Len(), len(events))
	}
}

// The figures do not depend on the order events arrive in (devices
// exchange them late and out of order), with repeats mixed in.
func TestOrderDoesNotMatter(t *testing.T) {
	want := scenarioFigures()
	for seed := uint64(0); seed < 200; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		events := scenario()
		r.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
		for i := 0; i < 5; i++ {
			events = append(events, events[r.IntN(len(events))])
		}
		got := load(t, events).Snapshot()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: figures depend on the order:\n got %+v\nwant %+v", seed, got, want)
		}
	}
}

// A resolution that arrives before the message it closes still closes
// it, and a late arrival older than the opening moves the opening back
// (the time to first response grows).
func TestLateEvents(t *testing.T) {
	var b builder
	s := load(t, nil)
	add := func(e Event) {
		t.Helper()
		if _, err := s.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	add(b.ev(Resolved, 30*time.Minute, pharmacy, 1))
	add(b.ev(MessageArrived, 10*time.Minute, pharmacy, 1))
	q := s.Snapshot().Queues[0]
	if q.Backlog != 0 || q.Unclaimed != 0 {
		t.Fatalf("resolved conversation counted as open: %+v", q)
	}
	add(b.ev(MessageArrived, 2*time.Hour, pharmacy, 2))
	add(b.ev(FirstResponse, 2*time.Hour+5*time.Minute, pharmacy, 2))
	if q := s.Snapshot().Queues[0]; q.FirstResponse.SumSeconds != 300 || q.FirstResponse.Count != 1 {
		t.Fatalf("first response: %+v", q.FirstResponse)
	}
	add(b.ev(MessageArrived, time.Hour+55*time.Minute, pharmacy, 2)) // older, arrived late
	q = s.Snapshot().Queues[0]
	if q.FirstResponse.SumSeconds != 600 || q.FirstResponse.Count != 1 || q.FirstResponse.Cumulative[1] != 0 || q.FirstResponse.Cumulative[2] != 1 {
		t.Fatalf("first response after a late arrival: %+v", q.FirstResponse)
	}
}

// The age of the oldest unclaimed message is measured at the snapshot's
// time, and never negative.
func TestOldestUnclaimedAge(t *testing.T) {
	var b builder
	s := load(t, []Event{
		b.ev(MessageArrived, time.Hour, pharmacy, 1),
		b.ev(MessageArrived, 2*time.Hour, pharmacy, 2),
	})
	for _, c := range []struct {
		at   time.Duration
		want float64
	}{{0, 0}, {time.Hour, 0}, {time.Hour + 1500*time.Millisecond, 1.5}, {5 * time.Hour, 4 * 3600}} {
		if got := s.SnapshotAt(t0.Add(c.at)).Queues[0].OldestUnclaimedSeconds; got != c.want {
			t.Errorf("at t0+%v: %v s, want %v", c.at, got, c.want)
		}
	}
	if _, err := s.Add(b.ev(Claimed, 90*time.Minute, pharmacy, 1)); err != nil {
		t.Fatal(err)
	}
	if got := s.SnapshotAt(t0.Add(5 * time.Hour)).Queues[0]; got.OldestUnclaimedSeconds != 3*3600 || got.Unclaimed != 1 {
		t.Errorf("after claiming the oldest: %+v", got)
	}
}

func TestConflictingIDRefused(t *testing.T) {
	events := scenario()
	s := load(t, events)
	for _, change := range []func(*Event){
		func(e *Event) { e.Time = e.Time.Add(time.Millisecond) },
		func(e *Event) { e.Type = Resolved },
		func(e *Event) { e.Queue = radiology },
		func(e *Event) { e.Conversation[0] ^= 1 },
	} {
		e := events[0]
		change(&e)
		if added, err := s.Add(e); !errors.Is(err, ErrConflict) || added {
			t.Errorf("changed event with a counted ID: added %v, %v", added, err)
		}
	}
	checkFigures(t, s.Snapshot(), scenarioFigures())
}

func TestInvalidEventsRefused(t *testing.T) {
	var b builder
	good := b.ev(MessageArrived, 0, pharmacy, 1)
	cases := map[string]func(*Event){
		"type 0":             func(e *Event) { e.Type = 0 },
		"type 10":            func(e *Event) { e.Type = 10 },
		"zero ID":            func(e *Event) { e.ID = EventID{} },
		"zero queue":         func(e *Event) { e.Queue = QueueID{} },
		"zero token":         func(e *Event) { e.Conversation = Token{} },
		"zero time":          func(e *Event) { e.Time = time.Time{} },
		"epoch":              func(e *Event) { e.Time = time.UnixMilli(0) },
		"year 10000":         func(e *Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"escalation type":    func(e *Event) { e.Escalation = EscalationUnclaimed },
		"escalation no type": func(e *Event) { e.Type = Escalated },
		"escalation type 4":  func(e *Event) { e.Type, e.Escalation = Escalated, 4 },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			s := load(t, nil)
			e := good
			change(&e)
			if added, err := s.Add(e); !errors.Is(err, ErrEvent) || added {
				t.Fatalf("Add: added %v, %v", added, err)
			}
			if _, err := e.MarshalBinary(); !errors.Is(err, ErrEvent) {
				t.Fatalf("MarshalBinary: %v", err)
			}
			if s.Len() != 0 || len(s.Snapshot().Queues) != 2 || s.Snapshot().Queues[0].NewMessages != 0 {
				t.Fatal("a refused event changed the figures")
			}
		})
	}
}

func TestConversationLimit(t *testing.T) {
	s := load(t, nil)
	var b builder
	for i := 0; i < MaxConversationEvents; i++ {
		if _, err := s.Add(b.ev(MessageArrived, time.Duration(i)*time.Second, pharmacy, 1)); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	before := s.Snapshot()
	if _, err := s.Add(b.ev(Claimed, time.Hour, pharmacy, 1)); !errors.Is(err, ErrFull) {
		t.Fatalf("event beyond the conversation's limit: %v", err)
	}
	// Counters only: not kept per conversation, so not limited by it.
	if _, err := s.Add(b.ev(ExportMade, time.Hour, pharmacy, 1)); err != nil {
		t.Fatal(err)
	}
	after := s.Snapshot()
	after.Queues[0].Exports--
	checkFigures(t, after, before)
}

func TestQueueLimit(t *testing.T) {
	s := New(nil)
	var b builder
	for i := 0; i < MaxQueues; i++ {
		if _, err := s.Add(b.ev(MessageArrived, 0, QueueID{byte(i), byte(i >> 8), 9}, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Add(b.ev(MessageArrived, 0, QueueID{1, 1, 1}, 1)); !errors.Is(err, ErrFull) {
		t.Fatalf("queue beyond the limit: %v", err)
	}
	if err := s.NameQueue(QueueID{1, 1, 1}, "One more"); !errors.Is(err, ErrFull) {
		t.Fatalf("naming a queue beyond the limit: %v", err)
	}
	if s.Len() != MaxQueues || len(s.Snapshot().Queues) != MaxQueues {
		t.Fatal("a refused event was counted")
	}
}

func TestEventLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("counts a million events")
	}
	s := New(nil)
	var b builder
	e := b.ev(ExportMade, 0, pharmacy, 1)
	for i := 0; i < MaxEvents; i++ {
		e.ID[0], e.ID[1], e.ID[2], e.ID[3] = byte(i), byte(i>>8), byte(i>>16), 1
		if _, err := s.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	e.ID[3] = 2
	if _, err := s.Add(e); !errors.Is(err, ErrFull) {
		t.Fatalf("event beyond MaxEvents: %v", err)
	}
	if got := s.Snapshot().Queues[0].Exports; got != MaxEvents {
		t.Fatalf("exports = %d", got)
	}
}

func TestQueueNames(t *testing.T) {
	s := New(nil)
	var b builder
	if _, err := s.Add(b.ev(MessageArrived, 0, radiology, 1)); err != nil {
		t.Fatal(err)
	}
	if got := s.SnapshotAt(t0).Queues[0].Queue; got != hexID(radiology) {
		t.Errorf("unnamed queue labelled %q", got)
	}
	for name, bad := range map[string]string{
		"empty":     "",
		"long":      string(make([]byte, MaxQueueName+1)),
		"not UTF-8": "Ph\xffarmacy",
		"newline":   "Phar\nmacy",
		"U+2028":    "Phar\u2028macy",
		"hex label": hexID(pharmacy),
	} {
		if err := s.NameQueue(radiology, bad); !errors.Is(err, ErrQueueName) {
			t.Errorf("%s name: %v", name, err)
		}
	}
	if err := s.NameQueue(pharmacy, `Ph "A" \ B`); err != nil {
		t.Fatal(err)
	}
	if err := s.NameQueue(radiology, `Ph "A" \ B`); !errors.Is(err, ErrQueueName) {
		t.Errorf("another queue's name: %v", err)
	}
	if err := s.NameQueue(pharmacy, "Pharmacy"); err != nil {
		t.Fatal(err)
	}
	if err := s.NameQueue(radiology, `Ph "A" \ B`); err != nil {
		t.Errorf("a name given up by a rename: %v", err)
	}
	got := s.SnapshotAt(t0).Queues
	if len(got) != 2 || got[0].Queue != `Ph "A" \ B` || got[1].Queue != "Pharmacy" || got[0].NewMessages != 1 {
		t.Errorf("queues: %+v", got)
	}
}

func TestEscalationOf(t *testing.T) {
	for r, want := range map[hours.Reason]Escalation{
		hours.Unclaimed: EscalationUnclaimed, hours.Unanswered: EscalationUnanswered, hours.Unread: EscalationUrgentReminder,
	} {
		if got, ok := EscalationOf(r); !ok || got != want {
			t.Errorf("EscalationOf(%v) = %v, %v", r, got, ok)
		}
	}
	if _, ok := EscalationOf(0); ok {
		t.Error("EscalationOf(0) has a type")
	}
}

func TestNewEvent(t *testing.T) {
	a, err := NewEvent(Claimed, t0.Add(1234567*time.Nanosecond), pharmacy, tok(1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewEvent(Claimed, t0, pharmacy, tok(1))
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == b.ID || a.ID == (EventID{}) {
		t.Error("NewEvent's IDs are not fresh")
	}
	if !a.Time.Equal(t0.Add(time.Millisecond)) || a.Time.Location() != time.UTC {
		t.Errorf("time %v not cut to the millisecond in UTC", a.Time)
	}
	if err := a.Validate(); err != nil {
		t.Error(err)
	}
}

// Counting and taking figures from several goroutines (the agent counts
// while a scrape reads) gives the figures of counting alone; run with
// -race.
func TestConcurrentUse(t *testing.T) {
	events := scenario()
	s := load(t, nil)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range events {
				if _, err := s.Add(events[(i+g*7)%len(events)]); err != nil {
					t.Error(err)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if err := s.Snapshot().WritePrometheus(io.Discard); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	checkFigures(t, s.Snapshot(), scenarioFigures())
}

func TestSnapshotOnly(t *testing.T) {
	snap := load(t, scenario()).Snapshot()
	one, ok := snap.Only("Radiology")
	if !ok || len(one.Queues) != 1 || !reflect.DeepEqual(one.Queues[0], scenarioFigures().Queues[1]) || one.Time != snap.Time {
		t.Fatalf("Only(Radiology) = %+v, %v", one, ok)
	}
	if len(snap.Queues) != 2 {
		t.Fatal("Only changed the snapshot it was called on")
	}
	if none, ok := snap.Only("Cardiology"); ok || none.Queues == nil || len(none.Queues) != 0 {
		t.Fatalf("Only(Cardiology) = %+v, %v", none, ok)
	}
}
