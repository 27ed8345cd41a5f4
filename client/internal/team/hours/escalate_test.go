package hours

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// sent is a wake-up and when the agent sent it.
type sent struct {
	at time.Time
	WakeUp
}

// agent plays the team agent with a fake clock: every step it checks the
// conversation, "sends" the wake-ups and stores the record. update, if
// set, changes the conversation as time passes (a claim, a read).
func agent(t *testing.T, e *Escalator, clock *fakeClock, c Conversation, until time.Time, step time.Duration,
	update func(now time.Time, c *Conversation)) []sent {
	t.Helper()
	var rec Record
	var out []sent
	for ; !clock.Now().After(until); clock.Advance(step) {
		if update != nil {
			update(clock.Now(), &c)
		}
		d, err := e.Check(c, rec)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range d.WakeUps {
			out = append(out, sent{clock.Now(), w})
		}
		rec = d.Record
	}
	return out
}

// nextAgent is the same agent waking only at each Decision's Next: it
// must send the same wake-ups at the same times as the one that checks
// every minute.
func nextAgent(t *testing.T, e *Escalator, c Conversation, from, until time.Time) []sent {
	t.Helper()
	var rec Record
	var out []sent
	now := from
	for i := 0; i < 10000 && !now.After(until); i++ {
		d, err := e.Decide(c, rec, now)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range d.WakeUps {
			out = append(out, sent{now, w})
		}
		rec = d.Record
		if d.Next.IsZero() {
			break
		}
		if !d.Next.After(now) {
			t.Fatalf("next check %v is not after %v", d.Next, now)
		}
		now = d.Next
	}
	return out
}

func escalator(t *testing.T, s *Schedule, clock *fakeClock, opts Options) *Escalator {
	t.Helper()
	opts.Clock = clock.Now
	if opts.Team == "" {
		opts.Team = "Pharmacy"
	}
	e, err := NewEscalator(s, opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEscalationFiresOnceAtDeadline(t *testing.T) {
	s := schedule(t, berlin, nil)
	received := at(t, berlin, "2026-12-11 16:00") // Friday
	clock := &fakeClock{received}
	e := escalator(t, s, clock, Options{EscalationGroup: "Pharmacy leads"})
	c := Conversation{Received: received}
	got := agent(t, e, clock, c, at(t, berlin, "2026-12-20 00:00"), time.Minute, nil)
	if len(got) != 1 {
		t.Fatalf("%d wake-ups, want exactly 1: %+v", len(got), got)
	}
	w := got[0]
	if want := at(t, berlin, "2026-12-16 16:00"); !w.at.Equal(want) {
		t.Fatalf("fired at %v, want %v (3 business days)", w.at, want)
	}
	if w.Text != "A message in Pharmacy has waited 3 business days" || w.Urgent || w.Reason != Unclaimed ||
		w.Target != (Target{TargetGroup, "Pharmacy leads"}) {
		t.Fatalf("wake-up %+v", w.WakeUp)
	}
	if n := nextAgent(t, e, c, received, at(t, berlin, "2026-12-20 00:00")); len(n) != 1 || !n[0].at.Equal(w.at) {
		t.Fatalf("the agent woken at Next sent %+v", n)
	}

	// One minute before: not overdue, next check at the deadline.
	d, err := e.Decide(c, Record{}, at(t, berlin, "2026-12-16 15:59"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Overdue || len(d.WakeUps) != 0 || !d.Next.Equal(w.at) || !d.Deadline.Equal(w.at) {
		t.Fatalf("a minute early: %+v", d)
	}
	// Past the deadline with the record of the wake-up: overdue, quiet.
	d, _ = e.Decide(c, Record{}, w.at)
	d2, _ := e.Decide(c, d.Record, w.at.Add(48*time.Hour))
	if !d2.Overdue || len(d2.WakeUps) != 0 || !d2.Next.IsZero() {
		t.Fatalf("second decision: %+v", d2)
	}
}

func TestEscalationSkipsHoliday(t *testing.T) {
	s := schedule(t, berlin, &ScheduleOptions{Holidays: holidays(t, xmas)})
	received := at(t, berlin, "2026-12-23 10:00")
	clock := &fakeClock{received}
	e := escalator(t, s, clock, Options{EscalationGroup: "Pharmacy leads"})
	got := agent(t, e, clock, Conversation{Received: received}, at(t, berlin, "2027-01-02 00:00"), time.Minute, nil)
	if len(got) != 1 {
		t.Fatalf("%d wake-ups", len(got))
	}
	// Without the calendar it would be Monday 2026-12-28 10:00.
	if want := at(t, berlin, "2026-12-30 10:00"); !got[0].at.Equal(want) {
		t.Fatalf("fired at %v, want %v", got[0].at, want)
	}
}

func TestEscalationReceivedOutsideHours(t *testing.T) {
	s := schedule(t, berlin, &ScheduleOptions{Holidays: holidays(t, xmas)})
	for _, c := range []struct{ name, received, want string }{
		{"weekend", "2026-12-12 11:00", "2026-12-16 17:00"},
		{"after hours", "2026-12-07 20:00", "2026-12-10 17:00"},
		{"holiday", "2026-12-25 12:00", "2026-12-30 17:00"},
	} {
		received := at(t, berlin, c.received)
		clock := &fakeClock{received}
		e := escalator(t, s, clock, Options{EscalationGroup: "Leads"})
		got := agent(t, e, clock, Conversation{Received: received}, received.Add(14*24*time.Hour), time.Minute, nil)
		if len(got) != 1 || !got[0].at.Equal(at(t, berlin, c.want)) {
			t.Errorf("%s: %+v, want one at %s", c.name, got, c.want)
		}
	}
}

func TestEscalationDST(t *testing.T) {
	for _, c := range []struct{ zone, received, want string }{
		{berlin, "2027-03-26 16:00", "2027-03-31 16:00"},
		{berlin, "2027-10-29 16:00", "2027-11-03 16:00"},
		{newYork, "2027-03-12 16:00", "2027-03-17 16:00"},
		{newYork, "2027-11-05 16:00", "2027-11-10 16:00"},
	} {
		s := schedule(t, c.zone, nil)
		received := at(t, c.zone, c.received)
		clock := &fakeClock{received}
		e := escalator(t, s, clock, Options{EscalationGroup: "Leads"})
		got := agent(t, e, clock, Conversation{Received: received}, received.Add(8*24*time.Hour), time.Minute, nil)
		if len(got) != 1 || !got[0].at.Equal(at(t, c.zone, c.want)) {
			t.Errorf("%s %s: %+v, want one at %s", c.zone, c.received, got, c.want)
		}
	}
}

func TestUrgentEscalationAndReminders(t *testing.T) {
	s := schedule(t, berlin, nil)
	received := at(t, berlin, "2026-12-12 23:10") // Saturday night
	clock := &fakeClock{received}
	e := escalator(t, s, clock, Options{EscalationGroup: "Pharmacy leads"})
	read := at(t, berlin, "2026-12-13 00:50")
	c := Conversation{Received: received, Urgent: true}
	got := agent(t, e, clock, c, at(t, berlin, "2026-12-14 12:00"), time.Minute, func(now time.Time, c *Conversation) {
		if !now.Before(read) {
			c.Read = read
		}
	})
	var reminders []string
	var escalations []sent
	for _, w := range got {
		switch w.Reason {
		case Unread:
			if w.Target.Kind != TargetRecipients || w.Text != "An urgent message in Pharmacy is waiting to be read" {
				t.Fatalf("reminder %+v", w)
			}
			reminders = append(reminders, w.at.Format("15:04"))
		default:
			escalations = append(escalations, w)
		}
	}
	if want := "23:25 23:40 23:55 00:10 00:25 00:40"; strings.Join(reminders, " ") != want {
		t.Fatalf("reminders at %v, want %s (every 15 minutes until read)", reminders, want)
	}
	// Read is not answered: the escalation still fires, at night, on a
	// Sunday, once.
	if len(escalations) != 1 {
		t.Fatalf("%d escalations", len(escalations))
	}
	w := escalations[0]
	if !w.at.Equal(at(t, berlin, "2026-12-13 01:10")) || !w.Urgent ||
		w.Text != "An urgent message in Pharmacy has waited 2 hours" || w.Target.Name != "Pharmacy leads" {
		t.Fatalf("escalation %+v at %v", w.WakeUp, w.at)
	}
}

func TestUrgentAnsweredInTime(t *testing.T) {
	s := schedule(t, berlin, nil)
	received := at(t, berlin, "2026-12-12 23:10")
	clock := &fakeClock{received}
	e := escalator(t, s, clock, Options{EscalationGroup: "Leads", Reminder: 30 * time.Minute, Urgent: 45 * time.Minute})
	answered := received.Add(40 * time.Minute)
	got := agent(t, e, clock, Conversation{Received: received, Urgent: true}, received.Add(24*time.Hour), time.Minute,
		func(now time.Time, c *Conversation) {
			if !now.Before(answered) {
				c.Claimed, c.Answered = answered, answered
			}
		})
	// One reminder at 30 minutes; the answer at 40 stops the rest and the
	// escalation at 45.
	if len(got) != 1 || got[0].Reason != Unread || !got[0].at.Equal(received.Add(30*time.Minute)) {
		t.Fatalf("%+v", got)
	}
	d, _ := e.Decide(Conversation{Received: received, Urgent: true, Answered: answered}, Record{}, answered)
	if d.Overdue || !d.Next.IsZero() || len(d.WakeUps) != 0 {
		t.Fatalf("answered: %+v", d)
	}
}

func TestReminderAfterDowntime(t *testing.T) {
	s := schedule(t, berlin, nil)
	received := at(t, berlin, "2026-12-12 10:00")
	e := escalator(t, s, &fakeClock{}, Options{EscalationGroup: "Leads"})
	c := Conversation{Received: received, Urgent: true}
	d, _ := e.Decide(c, Record{}, received.Add(16*time.Minute))
	if len(d.WakeUps) != 1 || d.Record.Reminders != 1 || !d.Next.Equal(received.Add(30*time.Minute)) {
		t.Fatalf("first: %+v", d)
	}
	// The agent was down for an hour: one reminder, not four.
	d, _ = e.Decide(c, d.Record, received.Add(76*time.Minute))
	if len(d.WakeUps) != 1 || d.Record.Reminders != 5 || !d.Next.Equal(received.Add(90*time.Minute)) {
		t.Fatalf("after downtime: %+v", d)
	}
	d2, _ := e.Decide(c, d.Record, received.Add(80*time.Minute))
	if len(d2.WakeUps) != 0 {
		t.Fatalf("again within the interval: %+v", d2)
	}
}

func TestEscalationToOnCall(t *testing.T) {
	s := schedule(t, berlin, nil)
	r := roster(t, berlin, pharmacyRoster)
	cases := []struct {
		name, received string
		urgent         bool
		group          string
		want           Target
		at             string
	}{
		// Fires Wednesday 16:00: Erin's weekly shift.
		{"business window", "2026-12-11 16:00", false, "Leads", Target{TargetOnCall, "Erin Example"}, "2026-12-16 16:00"},
		// Fires Sunday 01:10: Carol's weekend.
		{"urgent at night", "2026-12-12 23:10", true, "Leads", Target{TargetOnCall, "Carol Example"}, "2026-12-13 01:10"},
		// Fires on Christmas Day: the dated shift overrides the weekly one.
		{"dated cover", "2026-12-24 23:00", true, "", Target{TargetOnCall, "Dana Example"}, "2026-12-25 01:00"},
		// Fires Monday 17:30, a gap in the roster: the group.
		{"gap to the group", "2026-12-07 15:30", true, "Leads", Target{TargetGroup, "Leads"}, "2026-12-07 17:30"},
		// A gap and no group: the queue's own staff, not nobody.
		{"gap without a group", "2026-12-07 15:30", true, "", Target{TargetRecipients, ""}, "2026-12-07 17:30"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			received := at(t, berlin, c.received)
			clock := &fakeClock{received}
			e := escalator(t, s, clock, Options{EscalationGroup: c.group, Roster: r})
			var esc []sent
			for _, w := range agent(t, e, clock, Conversation{Received: received, Urgent: c.urgent, Read: received},
				received.Add(7*24*time.Hour), time.Minute, nil) {
				if w.Reason != Unread {
					esc = append(esc, w)
				}
			}
			if len(esc) != 1 || esc[0].Target != c.want || !esc[0].at.Equal(at(t, berlin, c.at)) {
				t.Fatalf("%+v, want one to %+v at %s", esc, c.want, c.at)
			}
		})
	}
}

func TestEscalationOncePerWindow(t *testing.T) {
	s := schedule(t, berlin, nil)
	e := escalator(t, s, &fakeClock{}, Options{EscalationGroup: "Leads", Window: BusinessTime(time.Hour)})
	first := at(t, berlin, "2026-12-07 09:00")
	c := Conversation{Received: first, Claimed: first.Add(5 * time.Minute)}
	d, _ := e.Decide(c, Record{}, first.Add(time.Hour))
	if len(d.WakeUps) != 1 || d.WakeUps[0].Reason != Unanswered || d.WakeUps[0].Text != "A message in Pharmacy has waited 1 business hour" {
		t.Fatalf("claimed, unanswered: %+v", d)
	}
	rec := d.Record
	// Answered, then the patient writes again: a new window, a new
	// wake-up; the old claim and answer do not count for it.
	second := at(t, berlin, "2026-12-07 14:00")
	c = Conversation{Received: second, Claimed: c.Claimed, Answered: first.Add(2 * time.Hour)}
	d, _ = e.Decide(c, rec, second.Add(59*time.Minute))
	if len(d.WakeUps) != 0 || d.Overdue {
		t.Fatalf("early in the second window: %+v", d)
	}
	d, _ = e.Decide(c, rec, second.Add(time.Hour))
	if len(d.WakeUps) != 1 || d.WakeUps[0].Reason != Unclaimed {
		t.Fatalf("second window: %+v", d)
	}
	d, _ = e.Decide(c, d.Record, second.Add(2*time.Hour))
	if len(d.WakeUps) != 0 {
		t.Fatalf("second window twice: %+v", d)
	}
	// Flagged urgent after the business wake-up: the urgent window is
	// another window and fires once too.
	c.Urgent = true
	c.Read = second
	d, _ = e.Decide(c, d.Record, second.Add(3*time.Hour))
	if len(d.WakeUps) != 1 || !d.WakeUps[0].Urgent {
		t.Fatalf("urgent window: %+v", d)
	}
	d, _ = e.Decide(c, d.Record, second.Add(4*time.Hour))
	if len(d.WakeUps) != 0 {
		t.Fatalf("urgent window twice: %+v", d)
	}
}

func TestNoReceivedTime(t *testing.T) {
	e := escalator(t, schedule(t, berlin, nil), &fakeClock{}, Options{EscalationGroup: "Leads"})
	if _, err := e.Decide(Conversation{Urgent: true}, Record{}, time.Now()); !errors.Is(err, ErrConversation) {
		t.Fatalf("%v, want ErrConversation", err)
	}
}

func TestEscalatorOptions(t *testing.T) {
	s := schedule(t, berlin, nil)
	r := roster(t, berlin, "mon 08:00 mon 17:00 A\n")
	for name, c := range map[string]struct {
		s    *Schedule
		opts Options
		want error
	}{
		"no schedule":        {nil, Options{Team: "P", EscalationGroup: "G"}, ErrPolicy},
		"no team":            {s, Options{EscalationGroup: "G"}, ErrPolicy},
		"team too long":      {s, Options{Team: strings.Repeat("p", MaxTeamName+1), EscalationGroup: "G"}, ErrPolicy},
		"team with newline":  {s, Options{Team: "Pharmacy\nurgent", EscalationGroup: "G"}, ErrPolicy},
		"nowhere to go":      {s, Options{Team: "P"}, ErrPolicy},
		"bad group":          {s, Options{Team: "P", EscalationGroup: "\x00"}, ErrPolicy},
		"urgent 30 s":        {s, Options{Team: "P", Roster: r, Urgent: 30 * time.Second}, ErrWindow},
		"urgent 8 days":      {s, Options{Team: "P", Roster: r, Urgent: 8 * 24 * time.Hour}, ErrWindow},
		"reminder 30 s":      {s, Options{Team: "P", Roster: r, Reminder: 30 * time.Second}, ErrWindow},
		"reminder 2 days":    {s, Options{Team: "P", Roster: r, Reminder: 48 * time.Hour}, ErrWindow},
		"61 business days":   {s, Options{Team: "P", Roster: r, Window: BusinessDays(61)}, ErrWindow},
		"roster only":        {s, Options{Team: "P", Roster: r}, nil},
		"urgent one minute":  {s, Options{Team: "P", Roster: r, Urgent: time.Minute, Reminder: time.Minute}, nil},
		"wall-clock default": {s, Options{Team: "P", Roster: r, Window: WallClock(24 * time.Hour)}, nil},
	} {
		_, err := NewEscalator(c.s, c.opts)
		if (c.want == nil && err != nil) || !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}
