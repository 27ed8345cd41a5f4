package hours

import (
	"errors"
	"testing"
	"time"
)

const berlin, newYork = "Europe/Berlin", "America/New_York"

// Christmas and New Year 2026/27 for the holiday cases.
const xmas = `# Pharmacy, Berlin
2026-12-24 Christmas Eve
2026-12-25 Christmas Day
2026-12-31
2027-01-01 New Year's Day
`

func TestDeadline(t *testing.T) {
	plain := schedule(t, berlin, nil)
	withHol := schedule(t, berlin, &ScheduleOptions{Holidays: holidays(t, xmas)})
	ny := schedule(t, newYork, nil)
	allWeek := schedule(t, berlin, &ScheduleOptions{
		Days: []time.Weekday{0, 1, 2, 3, 4, 5, 6}, Open: "00:00", Close: "24:00"})
	cases := []struct {
		name     string
		s        *Schedule
		zone     string
		received string
		w        Window
		want     string
	}{
		// 2026-12-07 is a Monday.
		{"friday 16:00 is due wednesday 16:00", plain, berlin, "2026-12-11 16:00", BusinessDays(3), "2026-12-16 16:00"},
		{"monday at opening is due wednesday at closing", plain, berlin, "2026-12-07 08:00", BusinessDays(3), "2026-12-09 17:00"},
		{"before opening counts from opening", plain, berlin, "2026-12-07 06:59", BusinessDays(3), "2026-12-09 17:00"},
		{"after hours counts from the next opening", plain, berlin, "2026-12-07 18:00", BusinessDays(3), "2026-12-10 17:00"},
		{"at closing counts from the next opening", plain, berlin, "2026-12-11 17:00", BusinessDays(3), "2026-12-16 17:00"},
		{"saturday counts from monday", plain, berlin, "2026-12-12 10:00", BusinessDays(3), "2026-12-16 17:00"},
		{"sunday night counts from monday", plain, berlin, "2026-12-13 23:59", BusinessDays(3), "2026-12-16 17:00"},
		{"midweek", plain, berlin, "2026-12-08 12:30", BusinessDays(3), "2026-12-11 12:30"},
		{"one business day", plain, berlin, "2026-12-11 16:00", BusinessDays(1), "2026-12-14 16:00"},
		{"business hours over a weekend", plain, berlin, "2026-12-11 15:00", BusinessTime(4 * time.Hour), "2026-12-14 10:00"},
		{"a minute before closing", plain, berlin, "2026-12-11 16:59", BusinessTime(time.Minute), "2026-12-11 17:00"},
		{"skips christmas", withHol, berlin, "2026-12-23 10:00", BusinessDays(3), "2026-12-30 10:00"},
		{"received on a holiday", withHol, berlin, "2026-12-24 09:00", BusinessDays(3), "2026-12-30 17:00"},
		{"skips new year and a weekend", withHol, berlin, "2026-12-30 09:00", BusinessDays(3), "2027-01-06 09:00"},
		{"holidays do not stop the urgent clock", withHol, berlin, "2026-12-24 23:30", WallClock(2 * time.Hour), "2026-12-25 01:30"},
		{"urgent over a weekend night", plain, berlin, "2026-12-12 23:10", WallClock(2 * time.Hour), "2026-12-13 01:10"},
		{"urgent of one minute", plain, berlin, "2026-12-12 23:59", WallClock(time.Minute), "2026-12-13 00:00"},
		// DST: Berlin sets clocks forward on 2027-03-28 and back on
		// 2027-10-31; New York on 2027-03-14 and 2027-11-07. Business
		// hours keep their wall-clock times across the change.
		{"berlin spring: CET friday, CEST wednesday", plain, berlin, "2027-03-26 16:00", BusinessDays(3), "2027-03-31 16:00"},
		{"berlin autumn: CEST friday, CET wednesday", plain, berlin, "2027-10-29 16:00", BusinessDays(3), "2027-11-03 16:00"},
		{"new york spring", ny, newYork, "2027-03-12 16:00", BusinessDays(3), "2027-03-17 16:00"},
		{"new york autumn", ny, newYork, "2027-11-05 16:00", BusinessDays(3), "2027-11-10 16:00"},
		// A day that is open around the clock counts its real hours: 23
		// on the day the clocks go forward, 25 when they go back.
		{"berlin 23-hour day", allWeek, berlin, "2027-03-27 12:00", BusinessDays(1), "2027-03-28 13:00"},
		{"berlin 25-hour day", allWeek, berlin, "2027-10-30 12:00", BusinessDays(1), "2027-10-31 11:00"},
		// Urgent windows are real time: 2 hours across the jump are 3 on
		// the clock in spring and 1 in autumn (01:30 EST is the second
		// 01:30 of that night).
		{"berlin urgent across spring forward", plain, berlin, "2027-03-28 01:30", WallClock(2 * time.Hour), "2027-03-28 04:30"},
		{"new york urgent across fall back", plain, newYork, "2027-11-07 00:30", WallClock(2 * time.Hour), "2027-11-07 01:30 EST"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.s.Deadline(at(t, c.zone, c.received), c.w)
			if err != nil {
				t.Fatal(err)
			}
			var want time.Time
			if len(c.want) > 16 { // a zone abbreviation picks one of two repeated times
				loc, _ := time.LoadLocation(c.zone)
				w, err := time.ParseInLocation("2006-01-02 15:04 MST", c.want, loc)
				if err != nil {
					t.Fatal(err)
				}
				want = w
			} else {
				want = at(t, c.zone, c.want)
			}
			if !got.Equal(want) {
				t.Fatalf("deadline %v, want %v", got, want)
			}
			if got.Location() != c.s.Location() {
				t.Fatalf("deadline in %v, want the team's zone", got.Location())
			}
		})
	}
}

// TestDeadlineDSTUTC pins the spring and autumn cases in UTC, so that a
// deadline computed by adding hours in UTC (an hour off) cannot pass.
func TestDeadlineDSTUTC(t *testing.T) {
	s := schedule(t, berlin, nil)
	for _, c := range []struct{ received, want string }{
		{"2027-03-26 16:00", "2027-03-31T14:00:00Z"}, // CET +1 to CEST +2
		{"2027-10-29 16:00", "2027-11-03T15:00:00Z"}, // CEST +2 to CET +1
	} {
		got, err := s.Deadline(at(t, berlin, c.received), BusinessDays(3))
		if err != nil {
			t.Fatal(err)
		}
		if g := got.UTC().Format(time.RFC3339); g != c.want {
			t.Errorf("%s: deadline %s, want %s", c.received, g, c.want)
		}
	}
}

func TestOpeningInSkippedHour(t *testing.T) {
	// Open 02:30 on Sundays: on 2027-03-28 Berlin's clocks jump from
	// 02:00 to 03:00, so that day opens at the jump.
	s := schedule(t, berlin, &ScheduleOptions{Days: []time.Weekday{time.Sunday}, Open: "02:30", Close: "10:00"})
	got, err := s.NextOpen(at(t, berlin, "2027-03-27 23:00"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "2027-03-28T01:00:00Z"; got.UTC().Format(time.RFC3339) != want {
		t.Fatalf("opening %v, want %s (03:00 CEST)", got, want)
	}
	// That day has 7 real business hours: one business day ends at its
	// closing.
	due, err := s.Deadline(at(t, berlin, "2027-03-27 23:00"), BusinessTime(7*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := at(t, berlin, "2027-03-28 10:00"); !due.Equal(want) {
		t.Fatalf("deadline %v, want %v", due, want)
	}
}

func TestInstantDST(t *testing.T) {
	cases := []struct {
		zone   string
		d      date
		min    int
		want   string
		exists bool
	}{
		// Repeated times are their first occurrence in both zones (Go's
		// time.Date picks the second in Berlin and the first in New York).
		{berlin, date{2027, 10, 31}, 2*60 + 30, "2027-10-31T00:30:00Z", true},
		{newYork, date{2027, 11, 7}, 60 + 30, "2027-11-07T05:30:00Z", true},
		// Skipped times are the jump.
		{berlin, date{2027, 3, 28}, 2*60 + 30, "2027-03-28T01:00:00Z", false},
		{newYork, date{2027, 3, 14}, 2*60 + 30, "2027-03-14T07:00:00Z", false},
		{berlin, date{2027, 3, 28}, 24 * 60, "2027-03-28T22:00:00Z", true},
		{berlin, date{2027, 3, 28}, 0, "2027-03-27T23:00:00Z", true},
	}
	for _, c := range cases {
		loc, _ := time.LoadLocation(c.zone)
		got, exists := instant(c.d, c.min, loc)
		if g := got.UTC().Format(time.RFC3339); g != c.want || exists != c.exists {
			t.Errorf("%s %v %s: %s exists=%v, want %s exists=%v", c.zone, c.d, clockString(c.min), g, exists, c.want, c.exists)
		}
	}
}

func TestIsOpen(t *testing.T) {
	s := schedule(t, berlin, &ScheduleOptions{Holidays: holidays(t, xmas)})
	for _, c := range []struct {
		when string
		open bool
	}{
		{"2026-12-07 07:59", false},
		{"2026-12-07 08:00", true},
		{"2026-12-07 16:59", true},
		{"2026-12-07 17:00", false},
		{"2026-12-12 10:00", false}, // Saturday
		{"2026-12-24 10:00", false}, // holiday
		{"2026-12-23 10:00", true},
	} {
		if got := s.IsOpen(at(t, berlin, c.when)); got != c.open {
			t.Errorf("IsOpen(%s) = %v", c.when, got)
		}
	}
	// The machine's zone does not matter: the same instant in UTC.
	if !s.IsOpen(at(t, berlin, "2026-12-07 08:00").UTC()) {
		t.Error("an instant given in UTC is judged on the team's clocks")
	}
}

func TestNoBusinessTime(t *testing.T) {
	// Open on Mondays only, and every Monday listed as a holiday for n
	// weeks from 2027-01-04.
	mondays := func(n int) *Holidays {
		var b []byte
		d := date{2027, 1, 4}
		for i := 0; i < n; i++ {
			b = append(b, d.String()+"\n"...)
			for j := 0; j < 7; j++ {
				d = d.next()
			}
		}
		return holidays(t, string(b))
	}
	received := at(t, berlin, "2027-01-01 12:00")
	// 500 weeks (about 9.6 years) of closed Mondays: the next Monday is
	// within MaxSearchDays.
	s := schedule(t, berlin, &ScheduleOptions{Days: []time.Weekday{time.Monday}, Holidays: mondays(500)})
	got, err := s.Deadline(received, BusinessDays(1))
	if err != nil {
		t.Fatal(err)
	}
	if want := at(t, berlin, "2036-08-04 17:00"); !got.Equal(want) {
		t.Fatalf("deadline %v, want %v", got, want)
	}
	// 530 weeks: beyond MaxSearchDays.
	s = schedule(t, berlin, &ScheduleOptions{Days: []time.Weekday{time.Monday}, Holidays: mondays(530)})
	if _, err := s.Deadline(received, BusinessDays(1)); !errors.Is(err, ErrNoBusinessTime) {
		t.Fatalf("%v, want ErrNoBusinessTime", err)
	}
}

func TestScheduleErrors(t *testing.T) {
	for name, c := range map[string]struct {
		zone string
		opts *ScheduleOptions
	}{
		"no zone":        {"", nil},
		"unknown zone":   {"Mars/Olympus_Mons", nil},
		"machine's zone": {"Local", nil},
		"no days":        {berlin, &ScheduleOptions{Days: []time.Weekday{}}},
		"bad weekday":    {berlin, &ScheduleOptions{Days: []time.Weekday{7}}},
		"bad opening":    {berlin, &ScheduleOptions{Open: "8:00"}},
		"opening 24:00":  {berlin, &ScheduleOptions{Open: "24:00", Close: "24:00"}},
		"bad closing":    {berlin, &ScheduleOptions{Close: "17:60"}},
		"closes early":   {berlin, &ScheduleOptions{Open: "09:00", Close: "09:00"}},
		"closes at 25h":  {berlin, &ScheduleOptions{Close: "25:00"}},
		"minus in clock": {berlin, &ScheduleOptions{Open: "-1:00"}},
	} {
		if _, err := NewSchedule(c.zone, c.opts); !errors.Is(err, ErrSchedule) {
			t.Errorf("%s: %v, want ErrSchedule", name, err)
		}
	}
}

func TestWindowLimits(t *testing.T) {
	s := schedule(t, berlin, nil)
	now := at(t, berlin, "2026-12-07 09:00")
	for _, w := range []Window{{}, BusinessDays(0), BusinessDays(-1), BusinessDays(MaxBusinessDays + 1),
		BusinessTime(59 * time.Second), BusinessTime(90 * time.Second), BusinessTime(MaxBusinessTime + time.Minute),
		WallClock(59 * time.Second), WallClock(0), WallClock(MaxUrgentWindow + time.Minute), WallClock(61 * time.Second)} {
		if _, err := s.Deadline(now, w); !errors.Is(err, ErrWindow) {
			t.Errorf("%+v: %v, want ErrWindow", w, err)
		}
	}
	for _, w := range []Window{BusinessDays(1), BusinessDays(MaxBusinessDays), BusinessTime(time.Minute),
		WallClock(time.Minute), WallClock(MaxUrgentWindow)} {
		if _, err := s.Deadline(now, w); err != nil {
			t.Errorf("%+v: %v", w, err)
		}
	}
}

func TestWindowString(t *testing.T) {
	for w, want := range map[Window]string{
		BusinessDays(3):                      "3 business days",
		BusinessDays(1):                      "1 business day",
		BusinessTime(4 * time.Hour):          "4 business hours",
		BusinessTime(time.Hour):              "1 business hour",
		BusinessTime(90 * time.Minute):       "1 hour 30 minutes of business time",
		WallClock(2 * time.Hour):             "2 hours",
		WallClock(time.Hour):                 "1 hour",
		WallClock(time.Minute):               "1 minute",
		WallClock(45 * time.Minute):          "45 minutes",
		WallClock(2*time.Hour + time.Minute): "2 hours 1 minute",
	} {
		if got := w.String(); got != want {
			t.Errorf("%+v: %q, want %q", w, got, want)
		}
	}
}

func TestBusinessBetween(t *testing.T) {
	s := schedule(t, berlin, &ScheduleOptions{Holidays: holidays(t, xmas)})
	for _, c := range []struct {
		a, b string
		want time.Duration
	}{
		{"2026-12-11 16:00", "2026-12-16 16:00", 27 * time.Hour},
		{"2026-12-12 10:00", "2026-12-13 10:00", 0},                  // a weekend
		{"2026-12-23 16:00", "2026-12-28 09:00", 2 * time.Hour},      // Christmas
		{"2026-12-07 12:00", "2026-12-07 09:00", 0},                  // backwards
		{"2027-03-26 16:00", "2027-03-31 16:00", 27 * time.Hour},     // across DST
		{"2026-12-07 07:00", "2026-12-07 07:30", 0},                  // before opening
		{"2026-12-07 16:30", "2026-12-08 08:30", 60 * time.Minute},   // overnight
		{"2026-12-07 08:00", "2026-12-07 17:00", s.DayLength()},      // one day
		{"2026-12-01 00:00", "2027-01-01 00:00", 20 * 9 * time.Hour}, // December: 23 weekdays, 3 of them holidays
	} {
		got, err := s.BusinessBetween(at(t, berlin, c.a), at(t, berlin, c.b))
		if err != nil || got != c.want {
			t.Errorf("%s to %s: %v (%v), want %v", c.a, c.b, got, err, c.want)
		}
	}
}
