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

// A member known only through a group, in a real browser: alice makes a
// group with bob and carol, who are not contacts of each other; carol's
// group page shows bob "(not a contact)" with a "Make contact" button,
// which asks for a name, refuses a name a contact has, and makes bob a
// contact under the name given; axe-core on the form.
func TestBrowserGroupMakeContact(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	carolHome, gid := newNonContactGroup(t)
	ctx := browser(t)
	a := newApp(t, carolHome, &Options{Passphrase: []byte(bobPass)})
	text := func(id string) string {
		t.Helper()
		return eval[string](t, ctx, `document.getElementById(`+quote(id)+`).textContent`)
	}
	step(t, ctx, "open unlocked", chromedp.Navigate(a.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#screen-inbox")))
	step(t, ctx, "the group", chromedp.Navigate(a.s.Origin()+"/#/groups/"+gid))
	waitJS(t, ctx, "bob, not a contact", `document.getElementById("group-members").textContent.includes("bob (not a contact)")`)
	if n := eval[int](t, ctx, `document.querySelectorAll("#group-members button").length`); n != 1 {
		t.Fatalf("%d buttons among the members, want only bob's Make contact", n)
	}
	clickRedrawn(t, ctx, "make contact", `#group-members button[aria-label="Make contact with bob"]`)
	waitJS(t, ctx, "the form", `!document.getElementById("group-contact-form").hidden &&
		document.activeElement.id === "group-contact-name" && document.getElementById("group-contact-name").value === "bob"`)
	if got := text("group-contact-heading"); got != "Make bob a contact" {
		t.Fatalf("form heading %q", got)
	}
	checkAxe(t, ctx, axe, "make contact")
	screenshot(t, ctx, "group-make-contact")

	// A name a contact has is refused; nothing changes.
	eval[bool](t, ctx, `(() => { document.getElementById("group-contact-name").value = "alice"; return true; })()`)
	step(t, ctx, "as alice", chromedp.Click(chromedp.CSS("#group-contact-button")))
	waitJS(t, ctx, "refused", `document.getElementById("group-status").textContent.includes("A contact is named alice already")`)
	if !strings.Contains(text("group-members"), "bob (not a contact)") {
		t.Fatalf("members after the refusal: %q", text("group-members"))
	}

	eval[bool](t, ctx, `(() => { document.getElementById("group-contact-name").value = "Bob B"; return true; })()`)
	step(t, ctx, "as Bob B", chromedp.Click(chromedp.CSS("#group-contact-button")))
	waitJS(t, ctx, "a contact", `document.getElementById("group-status").textContent === "Bob B is now a contact" &&
		document.getElementById("group-contact-form").hidden`)
	if got := text("group-members"); strings.Contains(got, "not a contact") || !strings.Contains(got, "Bob B") {
		t.Fatalf("members after making a contact: %q", got)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#group-members button").length`); n != 0 {
		t.Fatalf("%d buttons left among the members", n)
	}
	names := eval[string](t, ctx, `fetch("/api/contacts").then((r) => r.json()).then((cs) => cs.map((c) => c.name).sort().join(","))`)
	if names != "Bob B,alice" {
		t.Fatalf("contacts %q", names)
	}
}
