// Package hours decides a team queue's response windows and escalations:
// business hours in the team's time zone, a holiday calendar, an on-call
// roster, deadlines, and the content-free wake-ups a team agent sends when
// a conversation waits too long.
//
// It is pure: no store, no network, and no clock of its own. Time comes
// from the caller (Decide's now) or from an injected clock (Options.Clock),
// so tests run days of business time in microseconds.
//
// # Use
//
//	hol, err := hours.ParseHolidays(holidayFile)   // "2026-12-25 Christmas Day" lines
//	sched, err := hours.NewSchedule("Europe/Berlin", &hours.ScheduleOptions{Holidays: hol})
//	roster, err := hours.ParseRoster(rosterFile, sched.Location())
//	esc, err := hours.NewEscalator(sched, hours.Options{
//		Team: "Pharmacy", EscalationGroup: "Pharmacy leads", Roster: roster,
//	})
//	d, err := esc.Check(conv, rec)    // for each open conversation
//	// send d.WakeUps, then store d.Record; decide again at d.Next
//
// The defaults are those of protocol/SPEC.md section 15.2: Monday to
// Friday 08:00–17:00, a window of 3 business days (27 business hours),
// 2 hours at all hours for urgent messages, and a reminder every 15 minutes
// until an urgent message is read. docs/TEAMS.md describes the files.
//
// # Time zones
//
// Business hours, holidays and rosters are on the team's clocks, whatever
// the zone of the machine: a window counts real elapsed time while the
// team is open, so a business day that a DST change shortens counts its
// real opening hours. The package imports time/tzdata, so zones load on a
// machine without a zoneinfo database; the system's database, when there
// is one, is still preferred (it is usually newer).
//
// # Security
//
//   - Wake-ups carry no content: the team's name and the window only
//     ("A message in Pharmacy has waited 3 business days"). Nothing here
//     sees a message.
//   - Holiday and roster files are parsed as untrusted input: sizes, lines
//     and names are capped, errors name the line but never echo a name.
//   - Escalation fires once per conversation and window only if the
//     caller keeps each Decision's Record; storing it after the wake-ups
//     are handed to the outbox makes a crash repeat a wake-up rather than
//     lose it.
package hours
