package hours

import (
	"fmt"
	"time"
)

// date is a calendar day, without a time zone.
type date struct {
	y int
	m time.Month
	d int
}

func dateOf(t time.Time) date {
	y, m, d := t.Date()
	return date{y, m, d}
}

func (d date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.y, d.m, d.d) }

// next is the following day.
func (d date) next() date {
	return dateOf(time.Date(d.y, d.m, d.d+1, 0, 0, 0, 0, time.UTC))
}

func (d date) weekday() time.Weekday {
	return time.Date(d.y, d.m, d.d, 0, 0, 0, 0, time.UTC).Weekday()
}

func (d date) before(e date) bool {
	if d.y != e.y {
		return d.y < e.y
	}
	if d.m != e.m {
		return d.m < e.m
	}
	return d.d < e.d
}

// instant is the moment the clocks of loc show minute min (0..1440) of day
// d, and whether that wall-clock time exists.
//
// time.Date leaves two cases open, and they matter here: a wall-clock time
// that occurs twice (clocks set back) is resolved differently by different
// zones, and one that never occurs (clocks set forward) may land on either
// side of the jump. instant fixes both: a repeated time is its first
// occurrence; a skipped time is the moment of the jump, and exists is false.
func instant(d date, min int, loc *time.Location) (t time.Time, exists bool) {
	naive := time.Date(d.y, d.m, d.d, 0, min, 0, 0, time.UTC)
	wy, wm, wd := naive.Date()
	wh, wmin := naive.Hour(), naive.Minute()
	matches := func(c time.Time) bool {
		l := c.In(loc)
		y, m, dd := l.Date()
		return y == wy && m == wm && dd == wd && l.Hour() == wh && l.Minute() == wmin
	}
	// Offsets in force a day either side cover any transition near the
	// wall-clock time (zones change offset at most once a day).
	_, offBefore := naive.Add(-24 * time.Hour).In(loc).Zone()
	_, offAfter := naive.Add(24 * time.Hour).In(loc).Zone()
	var best time.Time
	found := false
	for _, off := range []int{offBefore, offAfter} {
		c := naive.Add(-time.Duration(off) * time.Second)
		if matches(c) && (!found || c.Before(best)) {
			best, found = c, true
		}
	}
	if found {
		return best.In(loc), true
	}
	// Also try the offset at the naive instant itself, for zones whose
	// offsets change twice within two days.
	_, offMid := naive.In(loc).Zone()
	if c := naive.Add(-time.Duration(offMid) * time.Second); matches(c) {
		return c.In(loc), true
	}
	// A skipped time: the jump is the start of the zone in force just
	// after it.
	c := naive.Add(-time.Duration(offBefore) * time.Second).In(loc)
	start, _ := c.ZoneBounds()
	if start.IsZero() {
		return c, false
	}
	return start.In(loc), false
}

// parseClock parses "HH:MM" (00:00..24:00) into minutes after midnight.
func parseClock(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	h, ok1 := twoDigits(s[0:2])
	m, ok2 := twoDigits(s[3:5])
	if !ok1 || !ok2 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, false
	}
	return h*60 + m, true
}

func twoDigits(s string) (int, bool) {
	if len(s) != 2 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
		return 0, false
	}
	return int(s[0]-'0')*10 + int(s[1]-'0'), true
}

// parseDate parses "YYYY-MM-DD" strictly (a real day, years 1970..9999).
func parseDate(s string) (date, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return date{}, false
	}
	for i, c := range []byte(s) {
		if i == 4 || i == 7 {
			continue
		}
		if c < '0' || c > '9' {
			return date{}, false
		}
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil || t.Year() < 1970 {
		return date{}, false
	}
	return dateOf(t), true
}

func clockString(min int) string { return fmt.Sprintf("%02d:%02d", min/60, min%60) }
