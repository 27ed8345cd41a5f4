package ui

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postern/postern/relay/relaytest"
)

// Deleting a message for everyone in a real browser: alice deletes one of
// her sent messages from its screen (confirmed from the keyboard, axe-core
// on the confirmation), and bob's client holds only who deleted it; bob
// deletes one of his while alice's page shows it, and the page shows the
// deletion as it happens. A received message offers no such button.
func TestBrowserRecall(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	home, alice, _, bob := pair(t, relaytest.New(t, nil))
	bg := context.Background()
	mine, err := alice.Send(bg, "bob", "Potassium 6.1 for bed 4")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := bob.Send(bg, "alice", "Wrong ward, please ignore")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(bg); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Sync(bg); err != nil {
		t.Fatal(err)
	}
	alice.Close()
	ctx := browser(t)
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	text := func(id string) string {
		t.Helper()
		return eval[string](t, ctx, `document.getElementById(`+quote(id)+`).textContent`)
	}

	step(t, ctx, "open unlocked", chromedp.Navigate(a.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#inbox-rows tr")))
	step(t, ctx, "open the sent message", chromedp.Navigate(a.s.Origin()+"/#/m/"+mine.ID), chromedp.WaitVisible(chromedp.CSS("#recall-start")))
	step(t, ctx, "ask", chromedp.Click(chromedp.CSS("#recall-start")), chromedp.WaitVisible(chromedp.CSS("#recall-box")))
	if got := eval[string](t, ctx, `document.activeElement.id`); got != "recall-no" {
		t.Fatalf("focus on %q, want Cancel", got)
	}
	checkAxe(t, ctx, axe, "message, delete for everyone")
	screenshot(t, ctx, "recall")
	step(t, ctx, "confirm", chromedp.Focus(chromedp.CSS("#recall-yes")), chromedp.KeyEvent("\r"))
	waitJS(t, ctx, "deleted", `document.getElementById("msg-text").textContent.startsWith("You deleted this message on ")`)
	if got := text("recall-status"); got != "Message deleted for everyone" {
		t.Fatalf("status %q", got)
	}
	if !eval[bool](t, ctx, `document.getElementById("recall-start").hidden && document.getElementById("msg-reply").hidden`) {
		t.Fatal("a deleted message still offers delete or reply")
	}
	if strings.Contains(text("screen-message"), "Potassium") {
		t.Fatal("the page still shows the text")
	}
	deadline := time.Now().Add(60 * time.Second) // a hang guard
	for {
		if _, err := bob.Sync(bg); err != nil {
			t.Fatal(err)
		}
		m, err := bob.Message(mine.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !m.Recalled.IsZero() {
			if m.Text != "" || m.RecalledBy != "alice" {
				t.Fatalf("bob holds %+v", m)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bob's client never learnt of the deletion")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Bob's message, on alice's screen, deleted by bob meanwhile.
	step(t, ctx, "open bob's message", chromedp.Navigate(a.s.Origin()+"/#/m/"+theirs.ID),
		chromedp.WaitVisible(chromedp.CSS("#msg-text")))
	waitJS(t, ctx, "bob's text", `document.getElementById("msg-text").textContent === "Wrong ward, please ignore"`)
	if !eval[bool](t, ctx, `document.getElementById("recall-start").hidden`) {
		t.Fatal("a received message offers delete for everyone")
	}
	if _, err := bob.Recall(bg, theirs.ID); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "bob's deletion shown live", `document.getElementById("msg-text").textContent.startsWith("bob deleted this message on ")`)
	step(t, ctx, "the inbox", chromedp.Navigate(a.s.Origin()+"/#/inbox"), chromedp.WaitVisible(chromedp.CSS("#inbox-rows tr")))
	waitJS(t, ctx, "the row", `document.getElementById("inbox-rows").textContent.includes("bob deleted this message on ")`)
	if strings.Contains(text("inbox-rows"), "Wrong ward") {
		t.Fatal("the inbox still shows bob's text")
	}
}
