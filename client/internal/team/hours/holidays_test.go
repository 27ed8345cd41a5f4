package hours

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseHolidays(t *testing.T) {
	text := "\xef\xbb\xbf# Pharmacy holidays\r\n\r\n2026-12-24   Christmas Eve\r\n\t# indented comment\n2026-12-31\n  2027-01-01\tNew Year's Day  \n"
	h, err := ParseHolidays(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if h.Len() != 3 {
		t.Fatalf("%d holidays, want 3", h.Len())
	}
	for _, c := range []struct {
		y    int
		m    time.Month
		d    int
		name string
		ok   bool
	}{
		{2026, 12, 24, "Christmas Eve", true},
		{2026, 12, 31, "", true},
		{2027, 1, 1, "New Year's Day", true},
		{2026, 12, 25, "", false},
	} {
		name, ok := h.Holiday(c.y, c.m, c.d)
		if name != c.name || ok != c.ok {
			t.Errorf("%d-%d-%d: %q %v, want %q %v", c.y, c.m, c.d, name, ok, c.name, c.ok)
		}
	}
	out, _ := h.MarshalText()
	want := "2026-12-24 Christmas Eve\n2026-12-31\n2027-01-01 New Year's Day\n"
	if string(out) != want {
		t.Fatalf("MarshalText:\n%s\nwant:\n%s", out, want)
	}
	var none *Holidays
	if _, ok := none.Holiday(2026, 12, 24); ok || none.Len() != 0 {
		t.Fatal("the nil calendar has holidays")
	}
}

func TestParseHolidaysErrors(t *testing.T) {
	many := strings.Repeat("", 0)
	d := date{2027, 1, 1}
	for i := 0; i <= MaxHolidays; i++ {
		many += d.String() + "\n"
		d = d.next()
	}
	cases := []struct {
		name, text string
		line       int
		msg        string
	}{
		{"not a date", "# c\n\n2026-12-24 x\nChristmas 2026-12-25\n", 4, "not a date"},
		{"no such day", "2027-02-29 leap?\n", 1, "not a date"},
		{"short date", "2027-1-01\n", 1, "not a date"},
		{"signs", "+027-01-01\n", 1, "not a date"},
		{"before 1970", "1969-12-31\n", 1, "not a date"},
		{"duplicate", "2026-12-25 Christmas\n# again\n2026-12-25 Christmas Day\n", 3, "already listed on line 1"},
		{"long name", "2026-12-25 " + strings.Repeat("x", MaxHolidayName+1) + "\n", 1, "name longer"},
		{"control", "2026-12-25 Christ\x1bmas\n", 1, "control character"},
		{"bidi line separator", "2026-12-25\n2026-12-26 a\u2028b\n", 2, "control character"},
		{"invalid utf-8", "2026-12-25 \xff\n", 1, "UTF-8"},
		{"long line", "# " + strings.Repeat("x", MaxLineLength) + "\n", 1, "longer than"},
		{"too many", many, MaxHolidays + 1, "more than"},
		{"too large", strings.Repeat("#", MaxHolidayFileSize+1), 0, "larger than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := ParseHolidays(strings.NewReader(c.text))
			if h != nil || !errors.Is(err, ErrHolidays) {
				t.Fatalf("%v, want ErrHolidays", err)
			}
			var le *LineError
			if !errors.As(err, &le) || le.Line != c.line || !strings.Contains(le.Msg, c.msg) {
				t.Fatalf("%v, want line %d %q", err, c.line, c.msg)
			}
			if c.line > 0 && !strings.Contains(err.Error(), "line ") {
				t.Fatalf("%q does not name the line", err)
			}
		})
	}
}

func TestParseICalendar(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "holidays-example.ics"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHolidays(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := h.MarshalText()
	// DTEND is exclusive; the folded SUMMARY joins; the cancelled event
	// and the alarm's and time zone's properties are left out.
	want := "2026-12-24 Christmas, closed\n2026-12-25 Christmas, closed\n2026-12-26 Christmas, closed\n2027-01-01 New Year's Day\n"
	if string(out) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out, want)
	}
	// The schedule skips them like the text format's holidays.
	s := schedule(t, berlin, &ScheduleOptions{Holidays: h})
	due, err := s.Deadline(at(t, berlin, "2026-12-23 10:00"), BusinessDays(3))
	if err != nil {
		t.Fatal(err)
	}
	if want := at(t, berlin, "2026-12-30 10:00"); !due.Equal(want) {
		t.Fatalf("deadline %v, want %v", due, want)
	}
}

func TestParseICalendarErrors(t *testing.T) {
	ev := func(body string) string {
		return "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\n" + body + "END:VEVENT\nEND:VCALENDAR\n"
	}
	cases := []struct {
		name, text string
		line       int
		msg        string
	}{
		{"timed event", ev("DTSTART:20261225T090000Z\n"), 4, "only all-day events"},
		{"timed end", ev("DTSTART;VALUE=DATE:20261225\nDTEND;TZID=Europe/Berlin:20261226T000000\n"), 5, "only all-day events"},
		{"bad date", ev("DTSTART;VALUE=DATE:20261325\n"), 4, "not a date YYYYMMDD"},
		{"recurring", ev("DTSTART;VALUE=DATE:20261225\nRRULE:FREQ=YEARLY\n"), 5, "recurring events are not supported"},
		{"no start", ev("SUMMARY:x\n"), 3, "without DTSTART"},
		{"backwards", ev("DTSTART;VALUE=DATE:20261225\nDTEND;VALUE=DATE:20261225\n"), 3, "ends before it starts"},
		{"too long", ev("DTSTART;VALUE=DATE:20260101\nDTEND;VALUE=DATE:20260301\n"), 3, "longer than 31 days"},
		{"not content", ev("DTSTART;VALUE=DATE:20261225\nsomething\n"), 5, "not an iCalendar content line"},
		{"unbalanced", "BEGIN:VCALENDAR\nBEGIN:VEVENT\nEND:VCALENDAR\n", 3, "does not close"},
		{"unterminated", "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261225\n", 3, "ends inside VEVENT"},
		{"outside", "BEGIN:VCALENDAR\nEND:VCALENDAR\nBEGIN:VEVENT\n", 3, "outside a VCALENDAR"},
		{"outside property", "BEGIN:VCALENDAR\nEND:VCALENDAR\nX-A:b\n", 3, "outside a VCALENDAR"},
		{"deep", "BEGIN:VCALENDAR\n" + strings.Repeat("BEGIN:X\n", maxNesting) + "\n", 9, "nested deeper"},
		{"control", "BEGIN:VCALENDAR\nX:\x07\nEND:VCALENDAR\n", 2, "control character"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := ParseHolidays(strings.NewReader(c.text))
			var le *LineError
			if h != nil || !errors.Is(err, ErrHolidays) || !errors.As(err, &le) || le.Line != c.line || !strings.Contains(le.Msg, c.msg) {
				t.Fatalf("%v, want line %d %q", err, c.line, c.msg)
			}
		})
	}
}

func TestICalendarSummary(t *testing.T) {
	long := strings.Repeat("é", 60) // 120 bytes: cut to 100 at a character boundary
	text := "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261225\r\nSUMMARY: Closed\\nall day\\; ask\\, \\\\ the desk \r\nEND:VEVENT\r\n" +
		"BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261226\r\nSUMMARY:" + long + "\r\nEND:VEVENT\r\n" +
		"BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261225\r\nSUMMARY:Second name\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	h, err := ParseHolidays(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if name, _ := h.Holiday(2026, 12, 25); name != `Closed all day; ask, \ the desk` {
		t.Errorf("escapes: %q", name)
	}
	if name, _ := h.Holiday(2026, 12, 26); name != strings.Repeat("é", 50) {
		t.Errorf("cut: %q (%d bytes)", name, len(name))
	}
	if h.Len() != 2 {
		t.Errorf("%d holidays, want 2 (a day covered twice is one)", h.Len())
	}
}
