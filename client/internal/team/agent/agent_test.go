package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/team/hours"
	"github.com/postern/postern/client/internal/team/stats"
)

const berlin = "Europe/Berlin"

// at is a wall-clock time "2006-01-02 15:04" in Berlin.
func at(t *testing.T, s string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(berlin)
	if err != nil {
		t.Fatal(err)
	}
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// clock is the fake clock of the runner under test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// queue is a team queue in memory: the conversations it lists and the
// wake-ups it was given. failAt makes the n-th WakeUp call (1-based) fail.
type queue struct {
	mu      sync.Mutex
	items   []Item
	sent    []hours.WakeUp
	calls   int
	failAt  map[int]bool
	listErr error
}

func (q *queue) Open(context.Context) ([]Item, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.listErr != nil {
		return nil, q.listErr
	}
	return append([]Item(nil), q.items...), nil
}

func (q *queue) WakeUp(_ context.Context, w hours.WakeUp) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls++
	if q.failAt[q.calls] {
		return errors.New("outbox full")
	}
	q.sent = append(q.sent, w)
	return nil
}

func (q *queue) take() []hours.WakeUp {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.sent
	q.sent = nil
	return s
}

// records keeps records in memory, as the client's store keeps them on
// disk; failSet makes SetRecord fail.
type records struct {
	mu      sync.Mutex
	m       map[stats.Token]hours.Record
	failSet bool
	pruned  int
}

func (r *records) Record(t stats.Token) (hours.Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[t], nil
}

func (r *records) SetRecord(t stats.Token, rec hours.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failSet {
		return errors.New("disk full")
	}
	if r.m == nil {
		r.m = map[stats.Token]hours.Record{}
	}
	r.m[t] = rec
	return nil
}

func (r *records) Prune(open map[stats.Token]bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for t := range r.m {
		if !open[t] {
			delete(r.m, t)
			r.pruned++
		}
	}
	return nil
}

type fixture struct {
	clk *clock
	q   *queue
	rec *records
	st  *stats.Stats
	r   *Runner
}

func newFixture(t *testing.T, opts hours.Options, sched *hours.ScheduleOptions) *fixture {
	t.Helper()
	s, err := hours.NewSchedule(berlin, sched)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{clk: &clock{}, q: &queue{}, rec: &records{}}
	if opts.Team == "" {
		opts.Team = "Pharmacy"
	}
	esc, err := hours.NewEscalator(s, opts)
	if err != nil {
		t.Fatal(err)
	}
	f.st = stats.New(&stats.Options{Clock: f.clk.Now})
	f.r = f.runner(t, esc)
	return f
}

func (f *fixture) runner(t *testing.T, esc *hours.Escalator) *Runner {
	t.Helper()
	r, err := New(Options{Escalator: esc, Queue: f.q, Records: f.rec, Events: f.count, QueueID: stats.QueueID{1},
		Clock: f.clk.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) count(e stats.Event) error {
	_, err := f.st.Add(e)
	return err
}

func (f *fixture) sweepAt(t *testing.T, when time.Time) ([]hours.WakeUp, time.Time) {
	t.Helper()
	f.clk.Set(when)
	next, err := f.r.Sweep(context.Background())
	if err != nil {
		t.Fatalf("sweep at %v: %v", when, err)
	}
	return f.q.take(), next
}

func TestEscalationOnceAtDeadline(t *testing.T) {
	f := newFixture(t, hours.Options{EscalationGroup: "Pharmacy leads"}, nil)
	// Friday 16:00: 1 business hour on Friday, 9 on Monday and Tuesday,
	// 8 on Wednesday: due Wednesday 16:00.
	f.q.items = []Item{{Token: stats.Token{7}, Conversation: hours.Conversation{Received: at(t, "2026-12-04 16:00")}}}
	deadline := at(t, "2026-12-09 16:00")

	w, next := f.sweepAt(t, at(t, "2026-12-09 15:59"))
	if len(w) != 0 || !next.Equal(deadline) {
		t.Fatalf("a minute early: wake-ups %v, next %v; want none, next %v", w, next, deadline)
	}
	w, _ = f.sweepAt(t, deadline)
	if len(w) != 1 || w[0].Target != (hours.Target{Kind: hours.TargetGroup, Name: "Pharmacy leads"}) ||
		w[0].Reason != hours.Unclaimed || w[0].Text != "A message in Pharmacy has waited 3 business days" {
		t.Fatalf("at the deadline: %+v", w)
	}
	if w, _ = f.sweepAt(t, deadline.Add(time.Hour)); len(w) != 0 {
		t.Fatalf("an hour later: %+v; want no second wake-up", w)
	}
	// A restarted agent reads the stored record and does not fire again.
	esc := f.r.esc
	f.r = f.runner(t, esc)
	if w, _ = f.sweepAt(t, deadline.Add(2*time.Hour)); len(w) != 0 {
		t.Fatalf("after a restart: %+v; want no second wake-up", w)
	}
	snap, _ := f.st.Snapshot().Only("01000000000000000000000000000000")
	if len(snap.Queues) != 1 || snap.Queues[0].Escalations.Unclaimed != 1 {
		t.Fatalf("figures: %+v; want one unclaimed escalation", snap.Queues)
	}
}

func TestHolidayAndOnCall(t *testing.T) {
	hol, err := hours.ParseHolidays(strings.NewReader("2026-12-08 Staff day\n"))
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := time.LoadLocation(berlin)
	ro, err := hours.ParseRoster(strings.NewReader("mon 08:00 fri 17:00 Bob Example\nfri 17:00 mon 08:00 Carol Example\n"), loc)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, hours.Options{Roster: ro}, &hours.ScheduleOptions{Holidays: hol})
	f.q.items = []Item{{Token: stats.Token{1}, Conversation: hours.Conversation{
		Received: at(t, "2026-12-04 16:00"), Claimed: at(t, "2026-12-04 16:30")}}}
	// Tuesday the 8th is closed: due Thursday 16:00, not Wednesday.
	if w, next := f.sweepAt(t, at(t, "2026-12-09 16:00")); len(w) != 0 || !next.Equal(at(t, "2026-12-10 16:00")) {
		t.Fatalf("Wednesday 16:00: %+v, next %v; want none, next Thursday 16:00", w, next)
	}
	w, _ := f.sweepAt(t, at(t, "2026-12-10 16:00"))
	if len(w) != 1 || w[0].Target != (hours.Target{Kind: hours.TargetOnCall, Name: "Bob Example"}) || w[0].Reason != hours.Unanswered {
		t.Fatalf("Thursday 16:00: %+v; want one unanswered wake-up to Bob Example", w)
	}
}

func TestUrgentRemindersAndEscalation(t *testing.T) {
	f := newFixture(t, hours.Options{EscalationGroup: "Leads"}, nil)
	recv := at(t, "2026-12-05 22:00") // a Saturday night: urgent counts all hours
	f.q.items = []Item{{Token: stats.Token{2}, Conversation: hours.Conversation{Received: recv, Urgent: true}}}

	w, next := f.sweepAt(t, recv.Add(10*time.Minute))
	if len(w) != 0 || !next.Equal(recv.Add(15*time.Minute)) {
		t.Fatalf("after 10 min: %+v next %v", w, next)
	}
	w, _ = f.sweepAt(t, recv.Add(15*time.Minute))
	if len(w) != 1 || w[0].Reason != hours.Unread || w[0].Target.Kind != hours.TargetRecipients {
		t.Fatalf("after 15 min: %+v; want one reminder to the staff", w)
	}
	// The agent was away for 50 minutes: one reminder, not three.
	if w, _ = f.sweepAt(t, recv.Add(65*time.Minute)); len(w) != 1 {
		t.Fatalf("after 65 min: %+v; want one reminder", w)
	}
	w, _ = f.sweepAt(t, recv.Add(2*time.Hour))
	if len(w) != 2 || w[0].Reason != hours.Unclaimed || w[0].Text != "An urgent message in Pharmacy has waited 2 hours" {
		t.Fatalf("after 2 h: %+v; want the escalation and a reminder", w)
	}
	// Read: the reminders stop; the escalation already went out once.
	f.q.items[0].Conversation.Read = recv.Add(2*time.Hour + time.Minute)
	if w, next = f.sweepAt(t, recv.Add(3*time.Hour)); len(w) != 0 || !next.IsZero() {
		t.Fatalf("read: %+v next %v; want nothing more", w, next)
	}
}

func TestFailedWakeUpIsSentAgain(t *testing.T) {
	f := newFixture(t, hours.Options{EscalationGroup: "Leads"}, nil)
	recv := at(t, "2026-12-05 22:00")
	tok := stats.Token{3}
	f.q.items = []Item{{Token: tok, Conversation: hours.Conversation{Received: recv, Urgent: true}}}
	// At 2 h the decision asks for the escalation and a reminder; the
	// reminder (the second call) fails.
	f.q.failAt = map[int]bool{2: true}
	f.clk.Set(recv.Add(2 * time.Hour))
	if _, err := f.r.Sweep(context.Background()); err == nil {
		t.Fatal("a failed wake-up: Sweep returned no error")
	}
	if w := f.q.take(); len(w) != 1 || w[0].Reason != hours.Unclaimed {
		t.Fatalf("sent: %+v; want the escalation only", w)
	}
	if r := f.rec.m[tok]; !r.Urgent || r.Reminders != 0 {
		t.Fatalf("record %+v; want the escalation recorded and no reminder", r)
	}
	// The next sweep sends the reminder, not the escalation again.
	if w, _ := f.sweepAt(t, recv.Add(2*time.Hour+time.Minute)); len(w) != 1 || w[0].Reason != hours.Unread {
		t.Fatalf("retry: %+v; want the reminder only", w)
	}

	// A record that cannot be stored: the wake-up is repeated rather than
	// lost.
	f.rec.failSet = true
	f.q.items = []Item{{Token: stats.Token{4}, Conversation: hours.Conversation{Received: at(t, "2026-12-04 16:00")}}}
	f.clk.Set(at(t, "2026-12-09 16:00"))
	if _, err := f.r.Sweep(context.Background()); err == nil {
		t.Fatal("a record not stored: Sweep returned no error")
	}
	if w := f.q.take(); len(w) != 1 {
		t.Fatalf("a record not stored: %+v; want the wake-up sent", w)
	}
	f.rec.failSet = false
	if w, _ := f.sweepAt(t, at(t, "2026-12-09 16:01")); len(w) != 1 {
		t.Fatalf("after the store recovered: %+v; want the wake-up sent again", w)
	}
	if w, _ := f.sweepAt(t, at(t, "2026-12-09 16:02")); len(w) != 0 {
		t.Fatalf("once stored: %+v; want nothing", w)
	}
}

func TestPruneAndListError(t *testing.T) {
	f := newFixture(t, hours.Options{EscalationGroup: "Leads"}, nil)
	f.rec.m = map[stats.Token]hours.Record{{9}: {Received: at(t, "2026-12-01 09:00"), Business: true}}
	f.q.items = []Item{{Token: stats.Token{1}, Conversation: hours.Conversation{Received: at(t, "2026-12-07 09:00")}}}
	f.sweepAt(t, at(t, "2026-12-07 10:00"))
	if _, ok := f.rec.m[stats.Token{9}]; ok || f.rec.pruned != 1 {
		t.Fatalf("the record of a closed conversation was kept (%d pruned)", f.rec.pruned)
	}
	f.q.listErr = errors.New("store locked")
	if _, err := f.r.Sweep(context.Background()); err == nil || f.rec.pruned != 1 {
		t.Fatalf("list error: %v, %d pruned; want an error and nothing pruned", err, f.rec.pruned)
	}
	f.q.listErr = nil
	// A conversation the escalator cannot decide does not stop the others.
	f.q.items = append(f.q.items, Item{Token: stats.Token{5}})
	f.clk.Set(at(t, "2026-12-10 09:00"))
	if _, err := f.r.Sweep(context.Background()); !errors.Is(err, hours.ErrConversation) {
		t.Fatalf("a conversation without a time: %v; want hours.ErrConversation", err)
	}
	if w := f.q.take(); len(w) != 1 {
		t.Fatalf("the other conversation's wake-up: %+v", w)
	}
}

func TestOptions(t *testing.T) {
	s, _ := hours.NewSchedule(berlin, nil)
	esc, _ := hours.NewEscalator(s, hours.Options{Team: "P", EscalationGroup: "L"})
	for name, o := range map[string]Options{
		"no escalator": {Queue: &queue{}, Records: &records{}},
		"no queue":     {Escalator: esc, Records: &records{}},
		"no records":   {Escalator: esc, Queue: &queue{}},
		"negative":     {Escalator: esc, Queue: &queue{}, Records: &records{}, Retry: -1},
	} {
		if _, err := New(o); !errors.Is(err, ErrOptions) {
			t.Errorf("%s: %v; want ErrOptions", name, err)
		}
	}
}

// TestRunSleepsUntilDue drives Run with a fake timer: it sleeps until the
// next decision, wakes early on Poke, and retries after an error.
func TestRunSleepsUntilDue(t *testing.T) {
	f := newFixture(t, hours.Options{EscalationGroup: "Leads"}, nil)
	recv := at(t, "2026-12-04 16:00")
	f.q.items = []Item{{Token: stats.Token{1}, Conversation: hours.Conversation{Received: recv}}}
	f.clk.Set(at(t, "2026-12-09 15:00"))

	type sleep struct {
		d  time.Duration
		ch chan time.Time
	}
	sleeps := make(chan sleep)
	f.r.maxWait = 24 * time.Hour
	f.r.after = func(d time.Duration) <-chan time.Time {
		ch := make(chan time.Time, 1)
		sleeps <- sleep{d, ch}
		return ch
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.r.Run(ctx) }()
	wait := func() sleep {
		select {
		case s := <-sleeps:
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not go to sleep")
		}
		return sleep{}
	}

	s := wait()
	if s.d != time.Hour {
		t.Fatalf("first sleep %v; want 1h, until the deadline", s.d)
	}
	f.clk.Set(at(t, "2026-12-09 16:00"))
	s.ch <- f.clk.Now()
	s = wait()
	if w := f.q.take(); len(w) != 1 {
		t.Fatalf("at the deadline: %+v", w)
	}
	if s.d != 24*time.Hour {
		t.Fatalf("nothing pending: sleep %v; want MaxWait", s.d)
	}
	// A new message: Poke sweeps at once, not after MaxWait.
	f.q.mu.Lock()
	f.q.items = append(f.q.items, Item{Token: stats.Token{2}, Conversation: hours.Conversation{Received: f.clk.Now(), Urgent: true}})
	f.q.listErr = errors.New("store busy")
	f.q.mu.Unlock()
	f.r.Poke()
	s = wait()
	if s.d != DefaultRetry {
		t.Fatalf("after a failed sweep: sleep %v; want Retry %v", s.d, DefaultRetry)
	}
	f.q.mu.Lock()
	f.q.listErr = nil
	f.q.mu.Unlock()
	s.ch <- f.clk.Now()
	if s = wait(); s.d != 15*time.Minute {
		t.Fatalf("an urgent message: sleep %v; want 15m, until its first reminder", s.d)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v; want context.Canceled", err)
	}
}
