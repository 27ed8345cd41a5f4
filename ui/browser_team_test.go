package ui

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postern/postern/client"
)

// The team queue in a real browser: a patient's urgent message reaches
// the team's profile (a second client, receiving in the background),
// which forwards it to the staff; it appears live in the staff member's
// Unclaimed queue with its age; she claims it, answers with a file (the
// thread shows who read the patient's message: her, then ben, live) and
// resolves it; the patient gets the answer and the file from the team;
// axe-core on the queue, the conversation and the figures.
func TestBrowserTeamQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	ts := newTeamSetup(t)
	bg := context.Background()
	ctx := browser(t)
	a := newApp(t, ts.annHome, &Options{Passphrase: []byte(teamPass)})
	text := func(id string) string {
		t.Helper()
		return eval[string](t, ctx, `document.getElementById(`+quote(id)+`).textContent`)
	}

	step(t, ctx, "open unlocked", chromedp.Navigate(a.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#screen-inbox")))
	waitJS(t, ctx, "the team's link", `!document.getElementById("nav-team-item").hidden`)
	step(t, ctx, "the team queue", chromedp.Click(chromedp.CSS("#nav-team")), chromedp.WaitVisible(chromedp.CSS("#team-queue-table")))
	waitJS(t, ctx, "an empty queue", `!document.getElementById("team-queue-empty").hidden`)
	if got := text("team-staff"); !strings.Contains(got, "you (member)") || !strings.Contains(got, "ben (member)") {
		t.Fatalf("staff line %q", got)
	}

	if _, err := ts.pat.SendWith(bg, "Pharmacy", "My repeat prescription ran out today", &client.SendOptions{Urgent: true}); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the patient's message, live", `document.getElementById("team-queue-rows").textContent.includes("pat")`)
	row := text("team-queue-rows")
	if !strings.Contains(row, "urgent") || !strings.Contains(row, "new") || !strings.Contains(row, "nobody") || !strings.Contains(row, "waiting") {
		t.Fatalf("row %q", row)
	}
	checkAxe(t, ctx, axe, "team queue")
	screenshot(t, ctx, "team-queue")

	clickRedrawn(t, ctx, "open the conversation", `#team-queue-rows a`)
	waitJS(t, ctx, "the conversation", `!document.getElementById("queue-claim").hidden &&
		document.getElementById("queue-thread").textContent.includes("My repeat prescription ran out today")`)
	step(t, ctx, "claim", chromedp.Click(chromedp.CSS("#queue-claim")))
	waitJS(t, ctx, "claimed", `document.getElementById("queue-status").textContent === "Claimed: the conversation is yours" &&
		!document.getElementById("queue-resolve").hidden && document.getElementById("queue-claim").hidden`)
	if got := text("queue-state"); !strings.Contains(got, "owner: you") || !strings.Contains(got, "Urgent") {
		t.Fatalf("state line %q", got)
	}

	letter := []byte("Prescription renewed: collect after 15:00.\n")
	path := filepath.Join(t.TempDir(), "renewal.txt")
	if err := os.WriteFile(path, letter, 0o600); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "reply with a file",
		chromedp.SendKeys(chromedp.CSS("#queue-reply-text"), "Renewed; the letter is attached."),
		chromedp.SetUploadFiles(chromedp.CSS("#queue-reply-files"), []string{path}),
		chromedp.Click(chromedp.CSS("#queue-reply-button")))
	waitJS(t, ctx, "the reply in the thread", `document.getElementById("queue-status").textContent === "Reply sent from the team" &&
		document.getElementById("queue-thread").textContent.includes("you, ") &&
		document.getElementById("queue-thread").textContent.includes("renewal.txt")`)
	// Opened, so read by her; ben reads it too, and his read shows live.
	waitJS(t, ctx, "read by her", `document.getElementById("queue-thread").textContent.includes("Read by you.")`)
	deadline := time.Now().Add(60 * time.Second) // a hang guard
	for read := false; !read; {
		if _, err := ts.ben.Sync(bg); err != nil {
			t.Fatal(err)
		}
		if q, err := ts.ben.Queue("Pharmacy", client.QueueAll); err == nil && len(q) == 1 {
			if err := ts.ben.ReadQueue(bg, q[0].ID); err != nil {
				t.Fatal(err)
			}
			read = true
		}
		if time.Now().After(deadline) {
			t.Fatal("the conversation never reached ben")
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitJS(t, ctx, "read by ben, live", `document.getElementById("queue-thread").textContent.includes("Read by you, ben.")`)
	step(t, ctx, "open Block…", chromedp.Click(chromedp.CSS("#queue-block summary")), chromedp.WaitVisible(chromedp.CSS("#queue-block-level")))
	if got := eval[string](t, ctx, `document.getElementById("queue-block-button").getAttribute("aria-label")`); got != "Block pat" {
		t.Fatalf("block button labelled %q", got)
	}
	checkAxe(t, ctx, axe, "queue conversation")

	step(t, ctx, "resolve", chromedp.Click(chromedp.CSS("#queue-resolve")))
	waitJS(t, ctx, "resolved", `document.getElementById("queue-status").textContent === "Resolved" &&
		document.getElementById("queue-state").textContent.includes("State: resolved")`)

	// The patient gets the answer and its file from the team.
	deadline = time.Now().Add(60 * time.Second) // a hang guard
	for got := false; !got; {
		if _, err := ts.pat.Sync(bg); err != nil {
			t.Fatal(err)
		}
		ms, err := ts.pat.Inbox()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Text != "Renewed; the letter is attached." {
				continue
			}
			if m.From != "Pharmacy" || len(m.Attachments) != 1 || m.Attachments[0].Name != "renewal.txt" {
				t.Fatalf("the patient holds %+v", m)
			}
			var buf bytes.Buffer
			if err := ts.pat.ReadAttachment(bg, m.ID, 0, 0, &buf); err != nil || !bytes.Equal(buf.Bytes(), letter) {
				t.Fatalf("the patient's file %q, %v", buf.Bytes(), err)
			}
			got = true
		}
		if time.Now().After(deadline) {
			t.Fatal("the reply never reached the patient")
		}
		time.Sleep(100 * time.Millisecond)
	}

	step(t, ctx, "back to the queue", chromedp.Click(chromedp.CSS(`#screen-queue a[href="#/team"]`)))
	step(t, ctx, "all", chromedp.Click(chromedp.CSS("#team-tab-all")))
	waitJS(t, ctx, "resolved in All", `document.getElementById("team-tab-all").getAttribute("aria-pressed") === "true" &&
		document.getElementById("team-queue-rows").textContent.includes("resolved")`)
	// The patient writes again: the conversation reopens, new; a
	// colleague's claim shows live (the queue event: no message comes).
	if _, err := ts.pat.Send(bg, "Pharmacy", "Thank you, collected."); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "reopened, live", `document.getElementById("team-queue-rows").textContent.includes("new")`)
	var id string
	deadline = time.Now().Add(60 * time.Second) // a hang guard
	for id == "" {
		if _, err := ts.ben.Sync(bg); err != nil {
			t.Fatal(err)
		}
		q, err := ts.ben.Queue("Pharmacy", client.QueueUnclaimed)
		if err != nil {
			t.Fatal(err)
		}
		if len(q) == 1 && q[0].Reopens == 1 {
			id = q[0].ID
		}
		if time.Now().After(deadline) {
			t.Fatal("the reopened conversation never reached ben")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := ts.ben.Claim(bg, id); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "ben's claim, live", `document.getElementById("team-queue-rows").textContent.includes("claimed") &&
		document.getElementById("team-queue-rows").textContent.includes("ben")`)

	step(t, ctx, "the figures", chromedp.Click(chromedp.CSS("#team-figures-link")))
	waitJS(t, ctx, "figures shown", `!document.getElementById("screen-figures").hidden &&
		document.getElementById("figures-rows").textContent.includes("First responses")`)
	if got := text("figures-rows"); strings.Contains(got, "pat") || strings.Contains(got, "prescription") {
		t.Fatalf("the figures show content: %q", got)
	}
	checkAxe(t, ctx, axe, "team figures")
	screenshot(t, ctx, "team-figures")
}
