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

// FuzzParseHolidays: any input never panics, fails only with a *LineError
// wrapping ErrHolidays, and an accepted calendar writes out a file that
// parses to the same calendar.
func FuzzParseHolidays(f *testing.F) {
	f.Add([]byte(xmas))
	f.Add([]byte("\xef\xbb\xbf2026-12-24\r\n# x\r\n2026-12-25 Day\r\n"))
	f.Add([]byte("2026-12-25 a\n2026-12-25 b\n"))
	f.Add([]byte("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261225\nSUMMARY:a\\nb\nEND:VEVENT\nEND:VCALENDAR\n"))
	addFiles(f, "holidays")
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHolidays(bytes.NewReader(data))
		if err != nil {
			var le *LineError
			if h != nil || !errors.Is(err, ErrHolidays) || !errors.As(err, &le) {
				t.Fatalf("unexpected failure %v", err)
			}
			return
		}
		out, _ := h.MarshalText()
		h2, err := ParseHolidays(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("written calendar does not parse: %v\n%q", err, out)
		}
		out2, _ := h2.MarshalText()
		if !bytes.Equal(out, out2) || h2.Len() != h.Len() {
			t.Fatalf("calendar changed on a round trip:\n%q\n%q", out, out2)
		}
	})
}

// FuzzParseRoster: any input never panics, fails only with a *LineError
// wrapping ErrRoster, and an accepted roster writes out a file that parses
// to the same roster, with someone on call at the start of each shift.
func FuzzParseRoster(f *testing.F) {
	f.Add([]byte(pharmacyRoster), false)
	f.Add([]byte("sat 20:00 sun 08:00 Night\n2027-10-31T02:30 2027-10-31T03:30 R\n"), false)
	f.Add([]byte("2027-03-14T01:00 2027-03-14T04:00 A\nfri 17:00 mon 08:00 B\n"), true)
	addFiles(f, "roster")
	berlinLoc, _ := time.LoadLocation(berlin)
	nyLoc, _ := time.LoadLocation(newYork)
	f.Fuzz(func(t *testing.T, data []byte, ny bool) {
		loc := berlinLoc
		if ny {
			loc = nyLoc
		}
		r, err := ParseRoster(bytes.NewReader(data), loc)
		if err != nil {
			var le *LineError
			if r != nil || !errors.Is(err, ErrRoster) || !errors.As(err, &le) {
				t.Fatalf("unexpected failure %v", err)
			}
			return
		}
		for _, s := range r.dated {
			if name, ok := r.OnCall(s.start); !ok || name != s.name {
				t.Fatalf("nobody or another on call at a dated shift's start")
			}
		}
		out, _ := r.MarshalText()
		r2, err := ParseRoster(bytes.NewReader(out), loc)
		if err != nil {
			t.Fatalf("written roster does not parse: %v\n%q", err, out)
		}
		out2, _ := r2.MarshalText()
		if !bytes.Equal(out, out2) || r2.Len() != r.Len() {
			t.Fatalf("roster changed on a round trip:\n%q\n%q", out, out2)
		}
	})
}

// addFiles seeds a fuzz target with the example files of docs/TEAMS.md,
// kept in testdata.
func addFiles(f *testing.F, prefix string) {
	names, err := filepath.Glob(filepath.Join("testdata", prefix+"*"))
	if err != nil || len(names) == 0 {
		f.Fatalf("no testdata/%s* seeds", prefix)
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		if strings.HasPrefix(prefix, "roster") {
			f.Add(b, false)
		} else {
			f.Add(b)
		}
	}
}

// TestDocExamples parses the example files of docs/TEAMS.md, so that the
// document cannot drift from the parsers.
func TestDocExamples(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "docs", "TEAMS.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := func(section string) string {
		_, rest, ok := strings.Cut(string(b), "\n## "+section+"\n")
		if !ok {
			t.Fatalf("no section %q", section)
		}
		_, rest, ok = strings.Cut(rest, "```\n")
		body, _, ok2 := strings.Cut(rest, "```\n")
		if !ok || !ok2 {
			t.Fatalf("no example in %q", section)
		}
		return body
	}
	h, err := ParseHolidays(strings.NewReader(block("Holiday calendar")))
	if err != nil || h.Len() != 5 {
		t.Fatalf("holiday example: %v", err)
	}
	_, ics, _ := strings.Cut(string(b), "```ics\n")
	ics, _, _ = strings.Cut(ics, "```\n")
	h, err = ParseHolidays(strings.NewReader(ics))
	if _, ok := h.Holiday(2026, 12, 26); err != nil || h.Len() != 3 || !ok {
		t.Fatalf("iCalendar example: %v", err)
	}
	loc, _ := time.LoadLocation(berlin)
	r, err := ParseRoster(strings.NewReader(block("On-call roster")), loc)
	if err != nil {
		t.Fatalf("roster example: %v", err)
	}
	if name, _ := r.OnCall(at(t, berlin, "2026-12-26 12:00")); name != "Dana Example" {
		t.Fatalf("on call at Christmas: %q", name)
	}
}

// FuzzAddBusiness: for any received time, schedule and business time,
// the deadline is not before the message, the business time between them
// is exactly the window, and the deadline is reached while open.
func FuzzAddBusiness(f *testing.F) {
	f.Add(int64(1796050800), uint16(1620), uint8(0x3e), uint16(480), uint16(1020), false, true) // Friday 16:00 Berlin, 27 h
	f.Add(int64(1806073200), uint16(1440), uint8(0x7f), uint16(0), uint16(1440), false, false)  // DST day, open all day
	f.Add(int64(1805672400), uint16(60), uint8(0x01), uint16(150), uint16(600), true, false)    // Sunday opening in the gap
	f.Add(int64(1825484400), uint16(45), uint8(0x3e), uint16(60), uint16(120), true, true)      // New York, fall back
	zones := []string{berlin, newYork}
	f.Fuzz(func(t *testing.T, unix int64, minutes uint16, days uint8, open, close uint16, ny, hol bool) {
		days &= 0x7f
		if days == 0 || open >= close || close > 1440 || unix < 0 || unix > 4102444800 {
			return
		}
		var wd []time.Weekday
		for i := 0; i < 7; i++ {
			if days&(1<<i) != 0 {
				wd = append(wd, time.Weekday(i))
			}
		}
		opts := &ScheduleOptions{Days: wd, Open: clockString(int(open)), Close: clockString(int(close))}
		if hol {
			h, err := ParseHolidays(strings.NewReader(xmas))
			if err != nil {
				t.Fatal(err)
			}
			opts.Holidays = h
		}
		zone := zones[0]
		if ny {
			zone = zones[1]
		}
		s, err := NewSchedule(zone, opts)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Unix(unix, 0)
		d := time.Duration(minutes) * time.Minute
		due, err := s.AddBusiness(start, d)
		if err != nil {
			t.Fatal(err)
		}
		if due.Before(start) {
			t.Fatalf("deadline %v before %v", due, start)
		}
		got, err := s.BusinessBetween(start, due)
		if err != nil || got != d {
			t.Fatalf("business time %v between %v and %v, want %v (%v)", got, start, due, d, err)
		}
		if d > 0 && !s.IsOpen(due.Add(-time.Nanosecond)) {
			t.Fatalf("deadline %v not reached while open", due)
		}
		if d == 0 && !s.IsOpen(due) {
			t.Fatalf("next opening %v is not open", due)
		}
	})
}
