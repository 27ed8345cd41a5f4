package ui

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/postern/postern/client"
	"github.com/postern/postern/relay/relaytest"
)

// Restrictions in a real browser, two web apps on a real relay: alice,
// the organisation's clinician, and bob, her patient, each in a tab of
// their own. For each of the three levels alice restricts bob from his
// contact page, after a confirmation that names the level and shows the
// sentence he will be told; bob's send is refused with exactly that
// sentence in the compose area, compose stays disabled and his
// conversation says so. Alice restores his access: bob's sends stay
// refused (by his own app) until he accepts the terms of use on the
// opt-in screen, from the keyboard; then his message reaches alice.
// axe-core on every new screen.
func TestBrowserRestrict(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	aliceHome, alice, bobHome, bob := pair(t, relaytest.New(t, nil))
	bg := context.Background()
	first, err := bob.SendWith(bg, "alice", "Can I take my tablets with food?", &client.SendOptions{Subject: "Tablets"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(bg); err != nil {
		t.Fatal(err)
	}
	alice.Close()
	bob.Close()
	copts := func() *client.Options { return &client.Options{KDF: testKDF, Organisation: testOrganisation} }
	org := newApp(t, aliceHome, &Options{Passphrase: []byte(alicePass), Client: copts()})
	pat := newApp(t, bobHome, &Options{Passphrase: []byte(bobPass), Client: copts()})

	// Each in a tab of its own, bob's in a browser context of its own (its
	// own cookies: both apps are on 127.0.0.1).
	octx := browser(t)
	pctx, cancel := chromedp.NewContext(octx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(pctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}
	// A tab waits for animation frames (chromedp.Poll) only while shown:
	// each step in a tab brings it to the front first.
	var front context.Context
	tab := func(ctx context.Context) context.Context {
		t.Helper()
		if front != ctx {
			if _, err := chromedp.Call(ctx, page.BringToFront, cdp.Empty{}); err != nil {
				t.Fatalf("bringing a tab to the front: %v", err)
			}
			front = ctx
		}
		return ctx
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for name, ctx := range map[string]context.Context{"alice": octx, "bob": pctx} {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			v, err := chromedp.Run(sctx, chromedp.Evaluate[string](`location.href + " " + document.visibilityState + " " +
				[...document.querySelectorAll("section.screen")].filter(s => !s.hidden).map(s => s.id).join(",") + ": " + document.getElementById("main").innerText.slice(0, 800)`))
			cancel()
			t.Logf("%s's tab: %s %v", name, v, err)
		}
	})
	step(t, tab(octx), "alice signs in", chromedp.Navigate(org.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#screen-inbox")))
	step(t, tab(pctx), "bob signs in", chromedp.Navigate(pat.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#screen-inbox")))
	text := func(ctx context.Context, id string) string {
		t.Helper()
		return eval[string](t, ctx, `document.getElementById(`+quote(id)+`).textContent`)
	}

	words := map[string]string{"service": "from the whole service", "new": "from sending new messages", "replies": "from replying"}
	for i, level := range []string{"service", "new", "replies"} {
		sentence := restrictedSentences[level]

		// Alice restricts bob, confirming.
		step(t, tab(octx), level+": bob's page", chromedp.Navigate(org.s.Origin()+"/#/contacts/bob"), chromedp.WaitVisible(chromedp.CSS("#restrict")))
		waitJS(t, tab(octx), level+": not restricted", `document.getElementById("restrict-state").textContent === "bob can write to you."`)
		step(t, tab(octx), level+": choose the level",
			chromedp.Click(chromedp.CSS("#restrict-"+level)),
			chromedp.Click(chromedp.CSS("#restrict-button")),
			chromedp.WaitVisible(chromedp.CSS("#restrict-confirm")))
		if q := text(tab(octx), "restrict-question"); q != "Restrict bob "+words[level]+"?" {
			t.Fatalf("%s: question %q", level, q)
		}
		if told := text(tab(octx), "restrict-told"); told != sentence {
			t.Fatalf("%s: the confirmation shows %q", level, told)
		}
		if f := eval[string](t, tab(octx), `document.activeElement.id`); f != "restrict-no" {
			t.Fatalf("%s: focus on %q, want the safe choice", level, f)
		}
		if i == 0 {
			checkAxe(t, tab(octx), axe, "contact, confirming a restriction")
		}
		step(t, tab(octx), level+": confirm", chromedp.Click(chromedp.CSS("#restrict-yes")))
		waitJS(t, tab(octx), level+": restricted", `document.getElementById("restrict-state").textContent.startsWith("You restricted bob `+words[level]+`.")`)

		// Bob's send is refused with the level's sentence.
		msg := "Question about " + level
		step(t, tab(pctx), level+": compose", chromedp.Navigate(pat.s.Origin()+"/#/compose?to=alice"), chromedp.WaitVisible(chromedp.CSS("#compose-text")))
		waitJS(t, tab(pctx), level+": compose enabled", `!document.getElementById("compose-send").disabled`)
		step(t, tab(pctx), level+": write and send",
			chromedp.SendKeys(chromedp.CSS("#compose-text"), msg),
			chromedp.Click(chromedp.CSS("#compose-send")))
		waitJS(t, tab(pctx), level+": refused", `!document.getElementById("compose-error").hidden`)
		if got := text(tab(pctx), "compose-error"); got != sentence {
			t.Fatalf("%s: the compose area shows %q, want %q", level, got, sentence)
		}
		waitJS(t, tab(pctx), level+": compose disabled", `document.getElementById("compose-send").disabled &&
			!document.getElementById("compose-restricted").hidden &&
			document.getElementById("compose-optin").getAttribute("href") === "#/optin/alice"`)
		if i == 0 {
			checkAxe(t, tab(pctx), axe, "compose, refused")
		}

		// His conversation says so.
		step(t, tab(pctx), level+": the conversation", chromedp.Navigate(pat.s.Origin()+"/#/m/"+first.ID), chromedp.WaitVisible(chromedp.CSS("#msg-text")))
		waitJS(t, tab(pctx), level+": the notice", `!document.getElementById("msg-restricted").hidden`)
		if got := text(tab(pctx), "msg-restricted-sentence"); got != sentence {
			t.Fatalf("%s: the conversation's notice %q", level, got)
		}
		if i == 0 {
			checkAxe(t, tab(pctx), axe, "message, restricted")
		}

		if i == 0 {
			// His contact page offers the opt-in, not restricting alice
			// back; the contacts list says who restricted whom.
			step(t, tab(pctx), "alice's page", chromedp.Navigate(pat.s.Origin()+"/#/contacts/alice"), chromedp.WaitVisible(chromedp.CSS("#restricted-me")))
			if got := text(tab(pctx), "restricted-me-sentence"); got != sentence {
				t.Fatalf("alice's page shows %q", got)
			}
			if !eval[bool](t, tab(pctx), `document.getElementById("restrict").hidden`) {
				t.Fatal("bob's page offers restricting alice back")
			}
			checkAxe(t, tab(pctx), axe, "contact, restricted by them")
			step(t, tab(pctx), "bob's contacts", chromedp.Navigate(pat.s.Origin()+"/#/contacts"), chromedp.WaitVisible(chromedp.CSS("#contacts-rows tr")))
			if got := text(tab(pctx), "contacts-rows"); !strings.Contains(got, "alice (restricted your access)") {
				t.Fatalf("bob's contacts: %q", got)
			}
			step(t, tab(octx), "alice's contacts", chromedp.Navigate(org.s.Origin()+"/#/contacts"), chromedp.WaitVisible(chromedp.CSS("#contacts-rows tr")))
			if got := text(tab(octx), "contacts-rows"); !strings.Contains(got, "bob (restricted by you)") {
				t.Fatalf("alice's contacts: %q", got)
			}
			step(t, tab(octx), "bob's page again", chromedp.Navigate(org.s.Origin()+"/#/contacts/bob"), chromedp.WaitVisible(chromedp.CSS("#restrict-restore")))
		}

		// A new message to alice: compose says so before he writes.
		step(t, tab(pctx), level+": compose while restricted", chromedp.Navigate(pat.s.Origin()+"/#/compose?to=alice"), chromedp.WaitVisible(chromedp.CSS("#compose-text")))
		waitJS(t, tab(pctx), level+": the notice in compose", `document.getElementById("compose-send").disabled &&
			!document.getElementById("compose-restricted").hidden && !document.getElementById("compose-restricted-sentence").hidden`)
		if got := text(tab(pctx), "compose-restricted-sentence"); got != sentence {
			t.Fatalf("%s: compose while restricted shows %q", level, got)
		}
		if i == 0 {
			checkAxe(t, tab(pctx), axe, "compose, restricted")
			screenshot(t, tab(pctx), "restricted")
		}

		// Alice restores his access.
		step(t, tab(octx), level+": restore", chromedp.Click(chromedp.CSS("#restrict-restore")))
		waitJS(t, tab(octx), level+": restored", `document.getElementById("restrict-state").textContent === "bob can write to you." &&
			document.getElementById("restrict-status").textContent.startsWith("bob's access is restored.")`)

		// Still refused until bob opts in again.
		step(t, tab(pctx), level+": compose again", chromedp.Navigate(pat.s.Origin()+"/#/compose?to=alice"), chromedp.WaitVisible(chromedp.CSS("#compose-text")))
		waitJS(t, tab(pctx), level+": still disabled", `document.getElementById("compose-send").disabled && !document.getElementById("compose-restricted").hidden`)
		if got := text(tab(pctx), "compose-restricted-sentence"); got != sentence {
			t.Fatalf("%s: compose before opting in shows %q", level, got)
		}
		refused := eval[string](t, tab(pctx), `fetch("/api/send", {method: "POST", headers: {"Content-Type": "application/json"},
			body: JSON.stringify({to: "alice", text: "`+msg+`"})}).then(r => r.text().then(b => r.status + " " + b))`)
		if want := `403 {"error":` + quote(sentence); !strings.HasPrefix(refused, want) || !strings.Contains(refused, `"opted_out":true`) {
			t.Fatalf("%s: a send before opting in: %s", level, refused)
		}

		// The opt-in screen, from the keyboard: refused without the box
		// ticked, then accepted.
		step(t, tab(pctx), level+": the opt-in screen", chromedp.Click(chromedp.CSS("#compose-optin")), chromedp.WaitVisible(chromedp.CSS("#optin-form")))
		if h := text(tab(pctx), "optin-heading"); h != "Write to alice again" {
			t.Fatalf("%s: heading %q", level, h)
		}
		if f := eval[string](t, tab(pctx), `document.activeElement.id`); f != "optin-heading" {
			t.Fatalf("%s: focus on %q", level, f)
		}
		if v := text(tab(pctx), "optin-terms-version"); v != "Version "+TermsVersion {
			t.Fatalf("%s: terms %q", level, v)
		}
		if i == 0 {
			checkAxe(t, tab(pctx), axe, "opt-in")
			screenshot(t, tab(pctx), "optin")
		}
		step(t, tab(pctx), level+": submit without accepting", chromedp.Focus(chromedp.CSS("#optin-button")), chromedp.KeyEvent("\r"))
		waitJS(t, tab(pctx), level+": asked to accept", `document.getElementById("optin-error").textContent === "To write again, tick the box to accept the terms of use." &&
			document.activeElement.id === "optin-accept"`)
		if i == 0 {
			checkAxe(t, tab(pctx), axe, "opt-in with an error")
		}
		step(t, tab(pctx), level+": accept", chromedp.KeyEvent(" "), chromedp.Focus(chromedp.CSS("#optin-button")), chromedp.KeyEvent("\r"))
		waitJS(t, tab(pctx), level+": compose enabled again", `location.hash === "#/compose?to=alice" && !document.getElementById("screen-compose").hidden &&
			!document.getElementById("compose-send").disabled && document.getElementById("compose-restricted").hidden`)
		var r restrictionJSON
		if err := json.Unmarshal([]byte(eval[string](t, tab(pctx), `fetch("/api/contacts/alice/restriction").then(r => r.text())`)), &r); err != nil {
			t.Fatal(err)
		}
		if r.Restricted != "" || r.OptInTerms != TermsVersion || r.OptedIn == nil || time.Since(*r.OptedIn) > time.Hour {
			t.Fatalf("%s: the opt-in recorded %+v", level, r)
		}

		// And his message goes.
		step(t, tab(pctx), level+": send again",
			chromedp.SendKeys(chromedp.CSS("#compose-text"), msg),
			chromedp.Click(chromedp.CSS("#compose-send")))
		waitJS(t, tab(pctx), level+": sent", `location.hash.startsWith("#/m/") && document.getElementById("msg-text").textContent === `+quote(msg))
		deadline := time.Now().Add(60 * time.Second) // a hang guard
		for !strings.Contains(eval[string](t, tab(octx), `fetch("/api/inbox").then(r => r.text())`), msg) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: alice never got bob's message", level)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
