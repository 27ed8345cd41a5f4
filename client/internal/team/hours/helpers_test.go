package hours

import (
	"strings"
	"testing"
	"time"
)

// at is a wall-clock time "2006-01-02 15:04" in zone; it fails the test
// on a time the zone skips or repeats, so every case says what it means.
func at(t *testing.T, zone, s string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func schedule(t *testing.T, zone string, opts *ScheduleOptions) *Schedule {
	t.Helper()
	s, err := NewSchedule(zone, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func holidays(t *testing.T, text string) *Holidays {
	t.Helper()
	h, err := ParseHolidays(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// fakeClock is the injected clock of the escalation tests.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) Advance(d time.Duration) { c.now = c.now.Add(d) }
