package hours_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/postern/postern/client/internal/team/hours"
)

func Example() {
	hol, err := hours.ParseHolidays(strings.NewReader("2026-12-24 Christmas Eve\n2026-12-25 Christmas Day\n"))
	if err != nil {
		panic(err)
	}
	sched, err := hours.NewSchedule("Europe/Berlin", &hours.ScheduleOptions{Holidays: hol})
	if err != nil {
		panic(err)
	}
	roster, err := hours.ParseRoster(strings.NewReader("mon 08:00 fri 17:00 Bob\nfri 17:00 mon 08:00 Carol\n"), sched.Location())
	if err != nil {
		panic(err)
	}
	esc, err := hours.NewEscalator(sched, hours.Options{Team: "Pharmacy", EscalationGroup: "Pharmacy leads", Roster: roster})
	if err != nil {
		panic(err)
	}

	// A message on Friday 11 December 2026 at 16:00, nobody answers.
	received := time.Date(2026, 12, 11, 16, 0, 0, 0, sched.Location())
	conv := hours.Conversation{Received: received}
	d, _ := esc.Decide(conv, hours.Record{}, received)
	fmt.Println("due", d.Deadline.Format("Mon 2 Jan 15:04"))

	d, _ = esc.Decide(conv, d.Record, d.Next)
	for _, w := range d.WakeUps {
		fmt.Printf("to %s: %s\n", w.Target.Name, w.Text)
	}
	// Output:
	// due Wed 16 Dec 16:00
	// to Bob: A message in Pharmacy has waited 3 business days
}
