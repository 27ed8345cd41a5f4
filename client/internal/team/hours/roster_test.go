package hours

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func roster(t *testing.T, zone, text string) *Roster {
	t.Helper()
	loc, _ := time.LoadLocation(zone)
	r, err := ParseRoster(strings.NewReader(text), loc)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

const pharmacyRoster = `# Pharmacy on call, Berlin time
mon 08:00 mon 17:00 Bob Example
Tue 08:00 fri 17:00 Erin Example
fri 17:00 mon 08:00 Carol Example
# Christmas cover overrides the weekend
2026-12-24T17:00 2026-12-28T08:00 Dana Example
2026-12-07T12:00 2026-12-07T13:00 Frank Example
`

func TestOnCall(t *testing.T) {
	r := roster(t, berlin, pharmacyRoster)
	if r.Len() != 5 {
		t.Fatalf("%d shifts", r.Len())
	}
	for _, c := range []struct {
		when, name string
	}{
		{"2026-12-07 08:00", "Bob Example"},
		{"2026-12-07 11:59", "Bob Example"},
		{"2026-12-07 12:00", "Frank Example"}, // a dated shift overrides the weekly one
		{"2026-12-07 13:00", "Bob Example"},
		{"2026-12-07 16:59", "Bob Example"},
		{"2026-12-07 17:00", ""}, // gap until Tuesday 08:00
		{"2026-12-08 07:59", ""},
		{"2026-12-08 08:00", "Erin Example"},
		{"2026-12-10 23:00", "Erin Example"},
		{"2026-12-11 17:00", "Carol Example"},
		{"2026-12-13 03:00", "Carol Example"}, // across the week's end
		{"2026-12-14 07:59", "Carol Example"},
		{"2026-12-14 08:00", "Bob Example"},
		{"2026-12-24 16:59", "Erin Example"},
		{"2026-12-24 17:00", "Dana Example"},
		{"2026-12-27 23:00", "Dana Example"},
		{"2026-12-28 08:00", "Bob Example"},
	} {
		name, ok := r.OnCall(at(t, berlin, c.when))
		if name != c.name || ok != (c.name != "") {
			t.Errorf("OnCall(%s) = %q %v, want %q", c.when, name, ok, c.name)
		}
	}
	var none *Roster
	if _, ok := none.OnCall(time.Now()); ok {
		t.Fatal("the nil roster has someone on call")
	}
}

func TestRosterDST(t *testing.T) {
	r := roster(t, berlin, "sat 20:00 sun 08:00 Night\nsun 08:00 sun 20:00 Day\n2027-10-31T02:30 2027-10-31T03:30 Repeat\n")
	// 2027-03-28: the night shift runs by the clock, so it ends at 08:00
	// CEST, 06:00 UTC, after 11 real hours.
	for _, c := range []struct {
		utc, name string
	}{
		{"2027-03-28T05:59:00Z", "Night"},
		{"2027-03-28T06:00:00Z", "Day"},
		// 02:30 on 2027-10-31 is its first occurrence, 00:30 UTC (CEST);
		// 03:30 CET is 02:30 UTC.
		{"2027-10-31T00:29:00Z", "Night"},
		{"2027-10-31T00:30:00Z", "Repeat"},
		{"2027-10-31T02:29:00Z", "Repeat"},
		{"2027-10-31T02:30:00Z", "Night"},
	} {
		u, _ := time.Parse(time.RFC3339, c.utc)
		if name, _ := r.OnCall(u); name != c.name {
			t.Errorf("OnCall(%s) = %q, want %q", c.utc, name, c.name)
		}
	}
}

func TestRosterMarshal(t *testing.T) {
	r := roster(t, berlin, pharmacyRoster+"2026-12-31T20:00 2026-12-31T24:00 Gina Example\n")
	out, _ := r.MarshalText()
	want := `2026-12-07T12:00 2026-12-07T13:00 Frank Example
2026-12-24T17:00 2026-12-28T08:00 Dana Example
2026-12-31T20:00 2027-01-01T00:00 Gina Example
mon 08:00 mon 17:00 Bob Example
tue 08:00 fri 17:00 Erin Example
fri 17:00 mon 08:00 Carol Example
`
	if string(out) != want {
		t.Fatalf("MarshalText:\n%s\nwant:\n%s", out, want)
	}
	again := roster(t, berlin, string(out))
	out2, _ := again.MarshalText()
	if string(out2) != string(out) {
		t.Fatalf("second round:\n%s", out2)
	}
}

func TestParseRosterErrors(t *testing.T) {
	cases := []struct {
		name, zone, text string
		line             int
		msg              string
	}{
		{"dated overlap", berlin, "# x\n2026-12-07T08:00 2026-12-07T20:00 Ann Example\n2026-12-07T19:00 2026-12-08T08:00 Ben Example\n", 3, "overlaps the shift on line 2"},
		{"dated overlap out of order", berlin, "2026-12-07T19:00 2026-12-08T08:00 Ben Example\n2026-12-07T08:00 2026-12-07T20:00 Ann Example\n", 2, "overlaps the shift on line 1"},
		{"dated inside dated", berlin, "2026-12-07T08:00 2026-12-09T08:00 Ann Example\n\n2026-12-08T08:00 2026-12-08T09:00 Ben Example\n", 3, "line 1"},
		{"weekly overlap", berlin, "mon 08:00 mon 17:00 Ann Example\nmon 16:00 tue 08:00 Ben Example\n", 2, "overlaps the shift on line 1"},
		{"weekly overlap across the week's end", berlin, "sat 20:00 mon 09:00 Ann Example\nmon 08:00 mon 17:00 Ben Example\n", 2, "line 1"},
		{"weekly zero length", berlin, "mon 08:00 mon 08:00 Ann Example\n", 1, "ends when it starts"},
		{"dated backwards", berlin, "2026-12-07T20:00 2026-12-07T08:00 Ann Example\n", 1, "does not end after"},
		{"dated too long", berlin, "2026-12-01T08:00 2027-01-02T08:00 Ann Example\n", 1, "longer than 31 days"},
		{"skipped time", berlin, "2027-03-28T02:30 2027-03-28T08:00 Ann Example\n", 1, "does not exist in Europe/Berlin"},
		{"skipped time new york", newYork, "2027-03-14T00:00 2027-03-14T02:00 Ann Example\n", 1, "does not exist"},
		{"no name", berlin, "mon 08:00 mon 17:00\n", 1, "no contact name"},
		{"no name dated", berlin, "2026-12-07T08:00 2026-12-07T20:00  \n", 1, "no contact name"},
		{"long name", berlin, "mon 08:00 mon 17:00 " + strings.Repeat("n", MaxContactName+1) + "\n", 1, "longer than"},
		{"bad weekday", berlin, "mon 08:00 mo 17:00 Ann Example\n", 1, "not a weekday"},
		{"bad clock", berlin, "mon 8:00 mon 17:00 Ann Example\n", 1, "not HH:MM"},
		{"bad stamp", berlin, "2026-12-07 08:00 2026-12-07T20:00 Ann Example\n", 1, "YYYY-MM-DDTHH:MM"},
		{"bad date", berlin, "2026-13-07T08:00 2026-12-07T20:00 Ann Example\n", 1, "not a date"},
		{"control", berlin, "mon 08:00 mon 17:00 A\x00B\n", 1, "control character"},
		{"too many", berlin, strings.Repeat("# c\n", 3) + strings.Repeat("2026-12-07T08:00 2026-12-07T09:00 Ann Example\n", MaxShifts+1), MaxShifts + 4, "more than"},
		{"too large", berlin, strings.Repeat("\n", MaxRosterFileSize+1), 0, "larger than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			loc, _ := time.LoadLocation(c.zone)
			r, err := ParseRoster(strings.NewReader(c.text), loc)
			if r != nil || !errors.Is(err, ErrRoster) {
				t.Fatalf("%v, want ErrRoster", err)
			}
			var le *LineError
			if !errors.As(err, &le) || le.Line != c.line || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("%v, want line %d %q", err, c.line, c.msg)
			}
			// A roster names people: an error never repeats the name.
			if strings.Contains(err.Error(), "Example") {
				t.Fatalf("%q echoes a name", err)
			}
		})
	}
	if _, err := ParseRoster(strings.NewReader(""), nil); !errors.Is(err, ErrRoster) {
		t.Fatalf("no zone: %v", err)
	}
}
