package ui

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postern/postern/relay/relaytest"
)

// Groups in a real browser: alice makes a group with bob from the Groups
// screen, sees him join, reads his group message live, writes an urgent
// one that bob's client holds as urgent, and removes him; axe-core on
// both screens.
func TestBrowserGroups(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	home, alice, _, bob := pair(t, relaytest.New(t, nil))
	alice.Close()
	bg := context.Background()
	ctx := browser(t)
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	text := func(id string) string {
		t.Helper()
		return eval[string](t, ctx, `document.getElementById(`+quote(id)+`).textContent`)
	}
	// syncBob lets bob's client take what alice's sent until cond holds
	// (a hang guard, not a timing).
	syncBob := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if _, err := bob.Sync(bg); err != nil {
				t.Fatal(err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("bob: %s never happened", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	step(t, ctx, "open unlocked", chromedp.Navigate(a.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#screen-inbox")))
	step(t, ctx, "the groups", chromedp.Click(chromedp.CSS("#nav-groups")), chromedp.WaitVisible(chromedp.CSS("#group-new-form")))
	waitJS(t, ctx, "no groups", `!document.getElementById("groups-empty").hidden`)
	checkAxe(t, ctx, axe, "groups")
	step(t, ctx, "make Ward 4",
		chromedp.SendKeys(chromedp.CSS("#group-new-name"), "Ward 4"),
		chromedp.SendKeys(chromedp.CSS("#group-new-members"), "bob"),
		chromedp.Click(chromedp.CSS("#group-new-button")))
	waitJS(t, ctx, "the group's page", `document.getElementById("group-name").textContent === "Ward 4"`)
	if got := text("group-role"); got != "You are an admin in this group." {
		t.Fatalf("role line %q", got)
	}
	syncBob("joining Ward 4", func() bool {
		gs, err := bob.Groups()
		return err == nil && len(gs) == 1 && !gs[0].Removed
	})
	if _, err := bob.SendGroup(bg, "Ward 4", "Bed 12 needs a review at 14:00", nil); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "bob's message, live", `document.getElementById("group-messages").textContent.includes("Bed 12 needs a review at 14:00")`)
	if !strings.Contains(text("group-members"), "bob") {
		t.Fatalf("members %q", text("group-members"))
	}
	checkAxe(t, ctx, axe, "group")
	screenshot(t, ctx, "group")

	step(t, ctx, "write, urgent",
		chromedp.SendKeys(chromedp.CSS("#group-send-text"), "On my way"),
		chromedp.Click(chromedp.CSS("#group-send-urgent")),
		chromedp.Click(chromedp.CSS("#group-send-button")))
	waitJS(t, ctx, "sent", `document.getElementById("group-status").textContent === "Sent to the group" &&
		document.getElementById("group-messages").textContent.includes("(urgent): On my way")`)
	syncBob("alice's urgent message", func() bool {
		ms, err := bob.Inbox()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Text == "On my way" {
				if !m.Urgent || m.From != "alice" {
					t.Fatalf("bob holds %+v", m)
				}
				return true
			}
		}
		return false
	})

	clickRedrawn(t, ctx, "remove bob", `#group-members button[aria-label="Remove bob"]`)
	waitJS(t, ctx, "removed", `document.getElementById("group-status").textContent === "bob removed; the group's keys changed"`)
	if strings.Contains(text("group-members"), "bob") {
		t.Fatalf("bob still listed: %q", text("group-members"))
	}
}
