package ui

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postern/postern/client"
	"github.com/postern/postern/relay/relaytest"
)

// A disappearing message vanishes on both sides: alice sets a short timer
// on the message screen of her conversation with bob (checked by
// axe-core), sends from the page, and bob's client sends back; when the
// timer runs out, bob's message leaves the page as it is shown (the
// message screen and the inbox row, without a reload), alice's is gone
// from her Sent folder, and both are gone from bob's store.
func TestBrowserDisappearing(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	home, alice, _, bob := pair(t, relaytest.New(t, nil))
	bg := context.Background()
	first, err := bob.SendWith(bg, "alice", "Bed 9 needs a review today.", &client.SendOptions{Subject: "Bed 9"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(bg); err != nil {
		t.Fatal(err)
	}
	alice.Close()
	ctx := browser(t)
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	text := func(id string) string {
		t.Helper()
		return eval[string](t, ctx, `document.getElementById(`+quote(id)+`).textContent`)
	}

	// The conversation's timer, on the message screen: off, then 30 s.
	step(t, ctx, "open unlocked", chromedp.Navigate(a.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#inbox-rows tr")))
	step(t, ctx, "open the message",
		chromedp.Click(chromedp.CSS(`#inbox-rows a[href="#/m/`+first.ID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#disappear-select")))
	if got := text("disappear-label"); got != "Disappearing messages with bob" {
		t.Fatalf("label %q", got)
	}
	if got := eval[string](t, ctx, `document.getElementById("disappear-select").value`); got != "0" {
		t.Fatalf("timer %q at first, want off", got)
	}
	step(t, ctx, "set 30 seconds",
		chromedp.SetValue(chromedp.CSS("#disappear-select"), "30"),
		chromedp.Click(chromedp.CSS("#disappear-button")))
	waitJS(t, ctx, "the timer set", `document.getElementById("disappear-note").textContent.includes("disappear 30 seconds after they are sent")`)
	checkAxe(t, ctx, axe, "message with the disappearing-message timer")
	screenshot(t, ctx, "disappearing")

	// Bob's client learns the timer.
	deadline := time.Now().Add(60 * time.Second) // a hang guard
	for {
		if _, err := bob.Sync(bg); err != nil {
			t.Fatal(err)
		}
		if d, err := bob.Disappearing("alice"); err != nil || d == 30*time.Second {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bob's client never learnt the timer")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Alice sends from the page; bob's client gets it with its expiry.
	step(t, ctx, "compose", chromedp.Click(chromedp.CSS("#nav-compose")), chromedp.WaitVisible(chromedp.CSS("#compose-to")),
		chromedp.SendKeys(chromedp.CSS("#compose-to"), "bob"),
		chromedp.SendKeys(chromedp.CSS("#compose-subject"), "Door code"),
		chromedp.SendKeys(chromedp.CSS("#compose-text"), "The ward door code is 4711."),
		chromedp.Click(chromedp.CSS("#compose-send")))
	waitJS(t, ctx, "sent", `!document.getElementById("screen-message").hidden &&
		document.getElementById("msg-text").textContent === "The ward door code is 4711."`)
	msgs, err := bob.Sync(bg)
	if err != nil {
		t.Fatal(err)
	}
	var doorCode *client.Message
	for i := range msgs {
		if msgs[i].Subject == "Door code" {
			doorCode = &msgs[i]
		}
	}
	if doorCode == nil || doorCode.Expires.IsZero() {
		t.Fatalf("bob got %+v", msgs)
	}

	// Bob answers with the timer in force; it shows live on the page.
	step(t, ctx, "the inbox", chromedp.Navigate(a.s.Origin()+"/#/inbox"))
	waitJS(t, ctx, "the inbox shown", `!document.getElementById("screen-inbox").hidden &&
		document.getElementById("inbox-rows").textContent.includes("Bed 9")`)
	eval[chromedp.Void](t, ctx, `window.notReloaded = true`)
	answer, err := bob.SendWith(bg, "alice", "Thanks, I am at the door.", &client.SendOptions{Subject: "Re: Door code"})
	if err != nil {
		t.Fatal(err)
	}
	if answer.Expires.IsZero() {
		t.Fatal("bob's answer has no expiry")
	}
	waitJS(t, ctx, "the answer arrives", `!!document.querySelector('#inbox-rows tr[data-id="`+answer.ID+`"]')`)
	step(t, ctx, "open the answer",
		chromedp.Click(chromedp.CSS(`#inbox-rows a[href="#/m/`+answer.ID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#disappear-note")))
	waitJS(t, ctx, "its expiry shown", `document.getElementById("disappear-note").textContent.startsWith("This message disappears at")`)

	// The timer runs out: the page leaves the message and its row goes,
	// without a reload.
	waitJS(t, ctx, "the answer vanishes from the page", `location.hash === "#/inbox" &&
		!document.querySelector('#inbox-rows tr[data-id="`+answer.ID+`"]') &&
		document.getElementById("status").textContent === "A disappearing message was deleted"`)
	if !eval[bool](t, ctx, `window.notReloaded === true`) {
		t.Fatal("the page was reloaded")
	}
	if !strings.Contains(text("inbox-rows"), "Bed 9") {
		t.Fatalf("the message sent before the timer went too: %q", text("inbox-rows"))
	}
	step(t, ctx, "the Sent folder", chromedp.Click(chromedp.CSS(`#folder-list a[href="#/folder/sent"]`)),
		chromedp.WaitVisible(chromedp.CSS("#inbox-empty")))
	waitJS(t, ctx, "the door code gone from Sent", `document.getElementById("folder-title").textContent === "Sent" &&
		!document.getElementById("inbox-rows").textContent.includes("Door code")`)

	// Bob's side: both gone from his store.
	deadline = time.Now().Add(60 * time.Second)
	for {
		if _, err := bob.Sync(bg); err != nil {
			t.Fatal(err)
		}
		_, err1 := bob.Message(doorCode.ID)
		_, err2 := bob.Message(answer.ID)
		if errors.Is(err1, client.ErrNoMessage) && errors.Is(err2, client.ErrNoMessage) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob still holds them: %v, %v", err1, err2)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := bob.Message(first.ID); err != nil {
		t.Fatalf("bob's first message, sent before the timer: %v", err)
	}

	// Settings lists every conversation's timer and turns bob's off.
	step(t, ctx, "settings", chromedp.Click(chromedp.CSS("#nav-settings")),
		chromedp.WaitVisible(chromedp.CSS(`#set-disappear-rows select[aria-label="Disappearing messages with bob"]`)))
	if got := eval[string](t, ctx, `document.querySelector('#set-disappear-rows select').value`); got != "30" {
		t.Fatalf("Settings shows bob's timer as %q, want 30", got)
	}
	checkAxe(t, ctx, axe, "settings with the disappearing-message timers")
	step(t, ctx, "turn the timer off",
		chromedp.SetValue(chromedp.CSS(`#set-disappear-rows select`), "0"),
		chromedp.Click(chromedp.CSS(`#set-disappear-rows button[aria-label="Set timer for bob"]`)))
	waitJS(t, ctx, "the timer off", `document.getElementById("set-disappear-status").textContent === "Messages with bob stay"`)
	if got := eval[float64](t, ctx, `fetch("/api/disappear/bob").then((r) => r.json()).then((t) => t.seconds)`); got != 0 {
		t.Fatalf("alice's timer after Settings turned it off: %v", got)
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		if _, err := bob.Sync(bg); err != nil {
			t.Fatal(err)
		}
		if d, err := bob.Disappearing("alice"); err != nil || d == 0 {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bob's client never learnt that the timer is off")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
