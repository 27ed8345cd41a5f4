package stats_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/postern/postern/client/internal/team/stats"
)

// A team agent counts what happens in its queue and serves the figures.
func Example() {
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	s := stats.New(&stats.Options{Clock: func() time.Time { return start.Add(time.Hour) }})
	pharmacy := stats.QueueID{1}
	if err := s.NameQueue(pharmacy, "Pharmacy"); err != nil {
		panic(err)
	}
	conv := stats.Token{2} // the conversation's claim token (SPEC 15.4)
	for _, step := range []struct {
		typ   stats.EventType
		after time.Duration
	}{{stats.MessageArrived, 0}, {stats.Claimed, 4 * time.Minute}, {stats.FirstResponse, 12 * time.Minute}} {
		e, err := stats.NewEvent(step.typ, start.Add(step.after), pharmacy, conv)
		if err != nil {
			panic(err)
		}
		// The agent stores e.MarshalBinary() and sends it to the staff
		// devices; counting it again anywhere changes nothing.
		if _, err := s.Add(e); err != nil {
			panic(err)
		}
	}
	snap := s.Snapshot()
	q := snap.Queues[0]
	fmt.Printf("%s: %d new, %d open, %d unclaimed, first response %gs\n",
		q.Queue, q.NewMessages, q.Backlog, q.Unclaimed, q.FirstResponse.SumSeconds)
	var out strings.Builder // an HTTP handler writes to its ResponseWriter
	if err := snap.WritePrometheus(&out); err != nil {
		panic(err)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "backlog") || strings.Contains(line, `le="900"`) {
			fmt.Println(line)
		}
	}
	// Output:
	// Pharmacy: 1 new, 1 open, 0 unclaimed, first response 720s
	// # HELP postern_team_backlog Open conversations: arrived or reopened, not resolved or archived since.
	// # TYPE postern_team_backlog gauge
	// postern_team_backlog{queue="Pharmacy"} 1
	// postern_team_first_response_seconds_bucket{queue="Pharmacy",le="900"} 1
}

// Every export is recorded in the team's content-free log.
func ExampleLog() {
	team := stats.TeamID{7}
	log := stats.NewLog(team)
	rec, err := log.Append(stats.Entry{
		Time:    time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC),
		Kind:    stats.LogExport,
		Detail:  stats.ExportConversation,
		Actor:   [32]byte{0xa1}, // the exporter's identity fingerprint
		Subject: stats.Token{2}, // the conversation's token
	})
	if err != nil {
		panic(err)
	}
	stored, _ := rec.MarshalBinary() // appended to the log file
	records, err := stats.ParseLog(stored)
	if err != nil {
		panic(err)
	}
	head := log.Head() // kept elsewhere: it shows a later cut or rewrite
	_, err = stats.VerifyLog(team, records, &head)
	fmt.Println(len(stored), records[0].Seq, err)
	// Output: 147 1 <nil>
}
