package hours

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Limits of an on-call roster file (protocol/SPEC.md section 15.2).
const (
	MaxRosterFileSize = 256 << 10
	MaxShifts         = 5000
	MaxContactName    = 128 // bytes
	MaxShiftLength    = 31 * 24 * time.Hour
)

const week = 7 * 24 * 60 // minutes

// shift is a dated shift: [start, end) in real time.
type shift struct {
	start, end time.Time
	name       string
	line       int
}

// weekly is a weekly shift: [start, end) in minutes after Sunday 00:00 on
// the team's clocks; end may pass the end of the week (it wraps).
type weekly struct {
	start, end int
	name       string
	line       int
}

// Roster is an on-call roster: who is on call when, in a team's time zone.
// It is immutable and safe for concurrent use.
type Roster struct {
	loc    *time.Location
	dated  []shift  // sorted by start, disjoint
	weekly []weekly // sorted by start, disjoint on the week's circle
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

var dayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseRoster reads an on-call roster file whose times are on the clocks
// of loc (the team's zone). Each line is a shift, from its start
// (included) to its end (excluded), and the contact on call:
//
//	2026-12-24T17:00 2026-12-27T08:00 Dana Example   a dated shift
//	mon 08:00 mon 17:00 Bob Example                 a shift every week
//	fri 17:00 mon 08:00 Carol Example               wrapping into the next week
//
// Blank lines and lines starting with '#' are ignored. Dated shifts
// override weekly ones: a dated shift is an exception (a swap, a holiday
// cover) to the weekly pattern. Dated shifts must not overlap each other,
// nor weekly shifts each other: who is on call must never be a guess, so
// an overlap is an error naming both lines. A dated time that the zone
// skips (clocks set forward) is an error; one that occurs twice is its
// first occurrence. Weekly shifts follow the clock: on a day the clocks
// change, a shift from 00:00 to 08:00 lasts 7 or 9 hours.
//
// Every error is a *LineError naming the line, wrapping ErrRoster.
func ParseRoster(r io.Reader, loc *time.Location) (*Roster, error) {
	if loc == nil {
		return nil, &LineError{Err: ErrRoster, Msg: "no time zone"}
	}
	lines, err := readLines(r, MaxRosterFileSize, ErrRoster)
	if err != nil {
		return nil, err
	}
	if len(lines) > MaxShifts {
		return nil, &LineError{Err: ErrRoster, Line: lines[MaxShifts].n, Msg: fmt.Sprintf("more than %d shifts", MaxShifts)}
	}
	ro := &Roster{loc: loc}
	for _, l := range lines {
		if err := ro.parseLine(l); err != nil {
			return nil, err
		}
	}
	sort.Slice(ro.dated, func(i, j int) bool { return ro.dated[i].start.Before(ro.dated[j].start) })
	for i := 1; i < len(ro.dated); i++ {
		a, b := ro.dated[i-1], ro.dated[i]
		if a.end.After(b.start) {
			return nil, overlap(a.line, b.line)
		}
	}
	sort.Slice(ro.weekly, func(i, j int) bool { return ro.weekly[i].start < ro.weekly[j].start })
	for i := 1; i < len(ro.weekly); i++ {
		a, b := ro.weekly[i-1], ro.weekly[i]
		if a.end > b.start {
			return nil, overlap(a.line, b.line)
		}
	}
	if n := len(ro.weekly); n > 1 {
		first, last := ro.weekly[0], ro.weekly[n-1]
		if last.end > first.start+week {
			return nil, overlap(first.line, last.line)
		}
	}
	return ro, nil
}

func overlap(a, b int) error {
	if a > b {
		a, b = b, a
	}
	return &LineError{Err: ErrRoster, Line: b, Msg: fmt.Sprintf("shift overlaps the shift on line %d", a)}
}

func (ro *Roster) parseLine(l line) error {
	bad := func(format string, a ...any) error {
		return &LineError{Err: ErrRoster, Line: l.n, Msg: fmt.Sprintf(format, a...)}
	}
	f1, rest := cutField(l.text)
	if wd, ok := weekdays[strings.ToLower(f1)]; ok {
		c1, rest := cutField(rest)
		f2, rest := cutField(rest)
		c2, name := cutField(rest)
		wd2, ok := weekdays[strings.ToLower(f2)]
		if !ok {
			return bad("the end is not a weekday (mon..sun)")
		}
		m1, ok1 := parseClock(c1)
		m2, ok2 := parseClock(c2)
		if !ok1 || !ok2 {
			return bad("a time is not HH:MM")
		}
		s := (int(wd)*1440 + m1) % week
		e := (int(wd2)*1440 + m2) % week
		if e == s {
			return bad("the shift ends when it starts")
		}
		if e < s {
			e += week
		}
		if err := checkName(name, bad); err != nil {
			return err
		}
		ro.weekly = append(ro.weekly, weekly{start: s, end: e, name: name, line: l.n})
		return nil
	}
	f2, name := cutField(rest)
	start, err := ro.parseStamp(f1, bad)
	if err != nil {
		return err
	}
	end, err := ro.parseStamp(f2, bad)
	if err != nil {
		return err
	}
	if !end.After(start) {
		return bad("the shift does not end after it starts")
	}
	if end.Sub(start) > MaxShiftLength {
		return bad("a shift is longer than %d days", MaxShiftLength/(24*time.Hour))
	}
	if err := checkName(name, bad); err != nil {
		return err
	}
	ro.dated = append(ro.dated, shift{start: start, end: end, name: name, line: l.n})
	return nil
}

func checkName(name string, bad func(string, ...any) error) error {
	switch {
	case name == "":
		return bad("no contact name")
	case len(name) > MaxContactName:
		return bad("contact name longer than %d bytes", MaxContactName)
	}
	return nil
}

// parseStamp parses "YYYY-MM-DDTHH:MM" on the team's clocks.
func (ro *Roster) parseStamp(s string, bad func(string, ...any) error) (time.Time, error) {
	ds, cs, ok := strings.Cut(s, "T")
	if !ok {
		return time.Time{}, bad("not a weekday or a date and time YYYY-MM-DDTHH:MM")
	}
	d, ok1 := parseDate(ds)
	m, ok2 := parseClock(cs)
	if !ok1 || !ok2 {
		return time.Time{}, bad("not a date and time YYYY-MM-DDTHH:MM")
	}
	t, exists := instant(d, m, ro.loc)
	if !exists {
		return time.Time{}, bad("%sT%s does not exist in %s (the clocks skip it)", ds, cs, ro.loc)
	}
	return t, nil
}

// OnCall is the contact on call at t: a dated shift covering t if there is
// one, else a weekly shift covering t's time on the team's clocks. ok is
// false in a gap of the roster.
func (ro *Roster) OnCall(t time.Time) (name string, ok bool) {
	if ro == nil {
		return "", false
	}
	// The last dated shift starting at or before t is the only candidate:
	// dated shifts are disjoint.
	i := sort.Search(len(ro.dated), func(i int) bool { return ro.dated[i].start.After(t) })
	if i > 0 && t.Before(ro.dated[i-1].end) {
		return ro.dated[i-1].name, true
	}
	l := t.In(ro.loc)
	m := int(l.Weekday())*1440 + l.Hour()*60 + l.Minute()
	for _, w := range ro.weekly {
		if (m >= w.start && m < w.end) || (m+week >= w.start && m+week < w.end) {
			return w.name, true
		}
	}
	return "", false
}

// Len is the number of shifts, dated and weekly.
func (ro *Roster) Len() int {
	if ro == nil {
		return 0
	}
	return len(ro.dated) + len(ro.weekly)
}

// MarshalText writes the roster in its file format, dated shifts first in
// time order, then weekly shifts from Sunday: ParseRoster reads it back to
// the same roster.
func (ro *Roster) MarshalText() ([]byte, error) {
	if ro == nil {
		return nil, nil
	}
	var b strings.Builder
	const layout = "2006-01-02T15:04"
	for _, s := range ro.dated {
		fmt.Fprintf(&b, "%s %s %s\n", s.start.In(ro.loc).Format(layout), s.end.In(ro.loc).Format(layout), s.name)
	}
	for _, w := range ro.weekly {
		e := w.end % week
		fmt.Fprintf(&b, "%s %s %s %s %s\n", dayNames[w.start/1440], clockString(w.start%1440),
			dayNames[e/1440], clockString(e%1440), w.name)
	}
	return []byte(b.String()), nil
}
