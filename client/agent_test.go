package client

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/relay/relaytest"
)

// wakeUps counts the messages in c's inbox whose text is text.
func wakeUps(t *testing.T, c *Client, text string) int {
	t.Helper()
	ms, err := c.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range ms {
		if m.Text == text {
			n++
		}
	}
	return n
}

// TestAgentEscalates runs a team's agent over a real relay with a fake
// clock: a patient's message that nobody answers brings the staff one
// content-free wake-up when its window has passed, not before and not
// twice, and the figures count the message and the escalation.
func TestAgentEscalates(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	intake, _ := newTestClient(t, srv, "Pharmacy")
	ann, _ := newTestClient(t, srv, "ann")
	pat, _ := newTestClient(t, srv, "pat")
	befriend(t, intake, ann, "Pharmacy")
	befriend(t, intake, pat, "Pharmacy")
	ctx := testCtx(t)
	if _, err := intake.CreateTeam(ctx, "Pharmacy"); err != nil {
		t.Fatal(err)
	}
	if _, err := intake.AddStaff(ctx, "Pharmacy", "ann"); err != nil {
		t.Fatal(err)
	}
	settleGroup(t, "Pharmacy", intake, ann)

	if err := ann.RunAgent(ctx, "Pharmacy", &AgentOptions{Zone: "UTC"}); !errors.Is(err, ErrNotIntake) {
		t.Fatalf("the agent on a staff device: %v; want ErrNotIntake", err)
	}
	for _, o := range []*AgentOptions{{}, {Zone: "Mars/Olympus_Mons"}, {Zone: "UTC", WindowDays: 2, WindowBusiness: time.Hour},
		{Zone: "UTC", Holidays: strings.NewReader("2026-02-30 no such day\n")}} {
		if err := intake.RunAgent(ctx, "Pharmacy", o); !errors.Is(err, ErrAgentSettings) {
			t.Fatalf("settings %+v: %v; want ErrAgentSettings", o, err)
		}
	}

	var mu sync.Mutex
	start := time.Now()
	now, sweeps := start, 0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	setNow := func(d time.Duration) { mu.Lock(); now = start.Add(d); mu.Unlock() }
	swept := func() int { mu.Lock(); defer mu.Unlock(); return sweeps }
	// The loop sweeps every 20 ms of real time, at the fake clock's time.
	after := func(time.Duration) <-chan time.Time {
		mu.Lock()
		sweeps++
		mu.Unlock()
		return time.After(20 * time.Millisecond)
	}
	waitSweeps := func(n int) {
		t.Helper()
		for want := swept() + n; swept() < want; {
			if ctx.Err() != nil {
				t.Fatal("the agent stopped sweeping")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- intake.RunAgent(actx, "Pharmacy", &AgentOptions{Zone: "UTC",
			Days: []time.Weekday{0, 1, 2, 3, 4, 5, 6}, Open: "00:00", Close: "24:00", WindowBusiness: time.Hour,
			Clock: clock, After: after})
	}()

	if _, err := pat.Send(ctx, "Pharmacy", "Is my prescription ready?"); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		syncAll(t, 1, ann)
		if items, err := ann.Queue("Pharmacy", QueueAll); err == nil && len(items) == 1 {
			break
		}
		if i == 200 {
			t.Fatal("the patient's message did not reach the staff")
		}
		time.Sleep(20 * time.Millisecond)
	}

	const text = "A message in Pharmacy has waited 1 business hour"
	setNow(30 * time.Minute)
	waitSweeps(3)
	syncAll(t, 2, ann)
	if n := wakeUps(t, ann, text); n != 0 {
		t.Fatalf("%d wake-ups before the window passed", n)
	}
	setNow(2 * time.Hour)
	for i := 0; wakeUps(t, ann, text) == 0; i++ {
		if i == 200 {
			t.Fatal("no wake-up after the window passed")
		}
		syncAll(t, 1, ann)
		time.Sleep(20 * time.Millisecond)
	}
	waitSweeps(5)
	syncAll(t, 2, ann)
	if n := wakeUps(t, ann, text); n != 1 {
		t.Fatalf("%d wake-ups; want exactly one", n)
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("RunAgent returned %v; want context.Canceled", err)
	}

	f, err := intake.TeamFigures("Pharmacy")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(f)
	var doc struct {
		Queues []struct {
			Queue       string `json:"queue"`
			NewMessages int    `json:"new_messages"`
			Backlog     int    `json:"backlog"`
			Escalations struct {
				Unclaimed int `json:"unclaimed"`
			} `json:"escalations"`
		} `json:"queues"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || len(doc.Queues) != 1 {
		t.Fatalf("figures %s: %v", b, err)
	}
	if q := doc.Queues[0]; q.Queue != "Pharmacy" || q.NewMessages != 1 || q.Backlog != 1 || q.Escalations.Unclaimed != 1 {
		t.Fatalf("figures %s; want one message, one open conversation, one unclaimed escalation", b)
	}
	if strings.Contains(string(b), "prescription") || strings.Contains(string(b), "pat") {
		t.Fatalf("the figures carry content or a name: %s", b)
	}
}
