package hours

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Limits of a holiday calendar file (protocol/SPEC.md section 15.2).
const (
	MaxHolidayFileSize = 64 << 10
	MaxHolidays        = 2000
	MaxHolidayName     = 100 // bytes
)

// Holidays is a calendar of days on which a team is closed all day. The
// nil *Holidays has no holidays. It is immutable and safe for concurrent
// use.
type Holidays struct {
	days map[date]string
}

// ParseHolidays reads a holiday calendar file: one holiday a line, as
//
//	YYYY-MM-DD [name]
//
// with blank lines and lines starting with '#' ignored. The name, if any,
// is the rest of the line (at most MaxHolidayName bytes). A date listed
// twice is an error, as is anything else that is not a real date: every
// error is a *LineError naming the line, wrapping ErrHolidays.
//
// A file whose first line is BEGIN:VCALENDAR is read as iCalendar
// (RFC 5545) instead: each all-day VEVENT (DTSTART;VALUE=DATE, DTEND
// exclusive, at most MaxEventDays days) closes its days, named by its
// SUMMARY. Recurring events (RRULE, RDATE) and timed events are errors;
// cancelled events and other components are skipped; a day two events
// cover keeps the first one's name.
func ParseHolidays(r io.Reader) (*Holidays, error) {
	raw, err := readRaw(r, MaxHolidayFileSize, ErrHolidays)
	if err != nil {
		return nil, err
	}
	lines := meaningful(raw)
	if len(lines) > 0 && strings.EqualFold(lines[0].text, "BEGIN:VCALENDAR") {
		return parseICalendar(raw)
	}
	h := &Holidays{days: make(map[date]string)}
	first := make(map[date]int)
	for _, l := range lines {
		field, name := cutField(l.text)
		d, ok := parseDate(field)
		if !ok {
			return nil, &LineError{Err: ErrHolidays, Line: l.n, Msg: "not a date YYYY-MM-DD"}
		}
		if len(name) > MaxHolidayName {
			return nil, &LineError{Err: ErrHolidays, Line: l.n, Msg: fmt.Sprintf("name longer than %d bytes", MaxHolidayName)}
		}
		if prev, dup := first[d]; dup {
			return nil, &LineError{Err: ErrHolidays, Line: l.n, Msg: fmt.Sprintf("%v is already listed on line %d", d, prev)}
		}
		if len(h.days) == MaxHolidays {
			return nil, &LineError{Err: ErrHolidays, Line: l.n, Msg: fmt.Sprintf("more than %d holidays", MaxHolidays)}
		}
		first[d] = l.n
		h.days[d] = name
	}
	return h, nil
}

func (h *Holidays) has(d date) bool {
	if h == nil {
		return false
	}
	_, ok := h.days[d]
	return ok
}

// Holiday reports whether the calendar day y-m-d is a holiday, and its
// name ("" if the file gave none).
func (h *Holidays) Holiday(y int, m time.Month, d int) (name string, ok bool) {
	if h == nil {
		return "", false
	}
	name, ok = h.days[date{y, m, d}]
	return name, ok
}

// Len is the number of holidays.
func (h *Holidays) Len() int {
	if h == nil {
		return 0
	}
	return len(h.days)
}

// MarshalText writes the calendar in its file format, one holiday a line
// in date order: ParseHolidays reads it back to the same calendar.
func (h *Holidays) MarshalText() ([]byte, error) {
	if h == nil {
		return nil, nil
	}
	ds := make([]date, 0, len(h.days))
	for d := range h.days {
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].before(ds[j]) })
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		if n := h.days[d]; n != "" {
			b.WriteString(" " + n)
		}
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}
