package ui

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/postern/postern/client"
	"github.com/postern/postern/relay/relaytest"
)

// The inbox's screens in a real browser, each checked by axe-core: the
// folder sidebar; a folder made on the page, a message moved into it from
// the message screen (whose thread lists the reply to it), the folder
// listing it, renamed and deleted; the Sent folder's READ column turning
// to "Read" live when the recipient's client marks the message read; a
// draft saved as it is typed, listed in Drafts after a reload, opened and
// sent; read receipts turned off in Settings, still off after a reload.
func TestBrowserInbox(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	home, alice, _, bob := pair(t, relaytest.New(t, nil))
	bg := context.Background()
	first, err := bob.SendWith(bg, "alice", "Can you see bed 7 before noon?", &client.SendOptions{Subject: "Bed 7"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(bg); err != nil {
		t.Fatal(err)
	}
	reply, err := alice.SendWith(bg, "bob", "On my way.", &client.SendOptions{Subject: "Re: Bed 7", ReplyTo: first.ID})
	if err != nil {
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
	if got := text("folder-list"); !strings.Contains(got, "Inbox") || !strings.Contains(got, "Sent") ||
		!strings.Contains(got, "Drafts") || !strings.Contains(got, "Archive") || !strings.Contains(got, "1 unread") {
		t.Fatalf("folders: %q", got)
	}

	// A folder of one's own, made from the keyboard.
	step(t, ctx, "create a folder",
		chromedp.SendKeys(chromedp.CSS("#folder-new-name"), "Ward 4\r"),
		chromedp.WaitVisible(chromedp.CSS(`#folder-list a[href^="#/folder/"]:not([href="#/folder/sent"]):not([href="#/folder/drafts"]):not([href="#/folder/archive"])`)))
	folderID := eval[string](t, ctx, `[...document.querySelectorAll("#folder-list a")].find(a => a.textContent === "Ward 4").dataset.folder`)
	checkAxe(t, ctx, axe, "inbox with folders")
	screenshot(t, ctx, "folders")

	// The message: its thread lists the reply; move it into the folder.
	step(t, ctx, "open the message",
		chromedp.Click(chromedp.CSS(`#inbox-rows a[href="#/m/`+first.ID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#move-folder")))
	if !eval[bool](t, ctx, `!document.getElementById("thread").hidden`) || !strings.Contains(text("thread-list"), "Re: Bed 7") {
		t.Fatalf("thread: %q", text("thread-list"))
	}
	if got := eval[string](t, ctx, `document.querySelector('#thread-list a').getAttribute("href")`); got != "#/m/"+reply.ID {
		t.Fatalf("thread links to %q", got)
	}
	checkAxe(t, ctx, axe, "message with its thread")
	screenshot(t, ctx, "message-thread")
	step(t, ctx, "move it",
		chromedp.SetValue(chromedp.CSS("#move-folder"), folderID),
		chromedp.Click(chromedp.CSS("#move-button")))
	waitJS(t, ctx, "moved", `document.getElementById("msg-back").textContent === "Back to Ward 4"`)
	step(t, ctx, "the folder", chromedp.Click(chromedp.CSS("#msg-back")), chromedp.WaitVisible(chromedp.CSS("#folder-edit-form")))
	waitJS(t, ctx, "the folder lists it", `document.getElementById("folder-title").textContent === "Ward 4" &&
		document.getElementById("inbox-rows").textContent.includes("Bed 7")`)
	checkAxe(t, ctx, axe, "a folder of one's own")
	screenshot(t, ctx, "folder")
	step(t, ctx, "the inbox", chromedp.Click(chromedp.CSS(`#folder-list a[href="#/inbox"]`)), chromedp.WaitVisible(chromedp.CSS("#inbox-empty")))

	// Rename, then delete: the message is back in the Inbox.
	step(t, ctx, "back to the folder", chromedp.Navigate(a.s.Origin()+"/#/folder/"+folderID), chromedp.WaitVisible(chromedp.CSS("#folder-rename")))
	eval[chromedp.Void](t, ctx, `document.getElementById("folder-rename").value = ""`)
	step(t, ctx, "rename it", chromedp.SendKeys(chromedp.CSS("#folder-rename"), "Ward 5\r"))
	waitJS(t, ctx, "renamed", `document.getElementById("folder-title").textContent === "Ward 5" &&
		document.getElementById("folder-list").textContent.includes("Ward 5")`)
	step(t, ctx, "delete it", chromedp.Click(chromedp.CSS("#folder-delete")))
	waitJS(t, ctx, "deleted", `location.hash === "#/inbox" && !document.getElementById("folder-list").textContent.includes("Ward 5") &&
		document.getElementById("inbox-rows").textContent.includes("Bed 7")`)

	// The Sent folder: the READ column turns to "Read" live when bob's
	// client reports it read.
	step(t, ctx, "the Sent folder", chromedp.Click(chromedp.CSS(`#folder-list a[href="#/folder/sent"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#inbox-rows tr[data-id="`+reply.ID+`"]`)))
	if got := eval[string](t, ctx, `[...document.querySelectorAll("#inbox-head th")].map(th => th.textContent).join(",")`); got != "To,Subject,Time,Read" {
		t.Fatalf("Sent's columns: %q", got)
	}
	if got := eval[string](t, ctx, `document.querySelector('#inbox-rows tr td.read').textContent`); strings.HasPrefix(got, "Read") {
		t.Fatalf("read before bob read it: %q", got)
	}
	eval[chromedp.Void](t, ctx, `window.notReloaded = true`)
	if _, err := bob.Sync(bg); err != nil {
		t.Fatal(err)
	}
	if err := bob.MarkRead(bg, reply.ID); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "READ shows Read", `document.querySelector('#inbox-rows tr[data-id="`+reply.ID+`"] td.read').textContent.startsWith("Read ")`)
	if !eval[bool](t, ctx, `window.notReloaded === true`) {
		t.Fatal("the page was reloaded")
	}
	checkAxe(t, ctx, axe, "Sent")
	screenshot(t, ctx, "sent")

	// A draft, saved as it is typed.
	step(t, ctx, "compose", chromedp.Click(chromedp.CSS("#nav-compose")), chromedp.WaitVisible(chromedp.CSS("#compose-to")),
		chromedp.SendKeys(chromedp.CSS("#compose-to"), "bob"),
		chromedp.SendKeys(chromedp.CSS("#compose-subject"), "Rota"),
		chromedp.SendKeys(chromedp.CSS("#compose-text"), "Half of the rota is written."))
	waitJS(t, ctx, "draft saved", `document.getElementById("compose-draft-status").textContent.startsWith("Draft saved")`)
	if got := eval[string](t, ctx, `document.getElementById("compose-draft-status").getAttribute("aria-live")`); got != "polite" {
		t.Fatalf("the draft's status is not announced: aria-live %q", got)
	}
	checkAxe(t, ctx, axe, "compose with a saved draft")
	screenshot(t, ctx, "compose-draft")
	step(t, ctx, "drafts after a reload", chromedp.Navigate(a.s.Origin()+"/#/folder/drafts"), chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS("#inbox-rows tr")))
	if got := text("inbox-rows"); !strings.Contains(got, "Rota") || !strings.Contains(got, "bob") || text("folder-title") != "Drafts" {
		t.Fatalf("drafts: %q", got)
	}
	checkAxe(t, ctx, axe, "Drafts")
	screenshot(t, ctx, "drafts")
	step(t, ctx, "open the draft", chromedp.Click(chromedp.CSS(`#inbox-rows a[href^="#/compose?draft="]`)), chromedp.WaitVisible(chromedp.CSS("#compose-discard")))
	if to, body := eval[string](t, ctx, `document.getElementById("compose-to").value`), eval[string](t, ctx, `document.getElementById("compose-text").value`); to != "bob" || body != "Half of the rota is written." {
		t.Fatalf("draft opened as to %q, text %q", to, body)
	}
	step(t, ctx, "finish and send it",
		chromedp.SendKeys(chromedp.CSS("#compose-text"), " Done."),
		chromedp.Click(chromedp.CSS("#compose-send")))
	waitJS(t, ctx, "sent", `!document.getElementById("screen-message").hidden &&
		document.getElementById("msg-text").textContent === "Half of the rota is written. Done."`)
	msgs, err := bob.Sync(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Text != "Half of the rota is written. Done." || msgs[0].Subject != "Rota" {
		t.Fatalf("bob got %+v", msgs)
	}
	step(t, ctx, "drafts after sending", chromedp.Navigate(a.s.Origin()+"/#/folder/drafts"), chromedp.WaitVisible(chromedp.CSS("#inbox-empty")))
	if got := text("inbox-empty"); got != "No drafts." {
		t.Fatalf("drafts after sending: %q", got)
	}

	// Settings: read receipts off, still off after a reload.
	step(t, ctx, "settings", chromedp.Click(chromedp.CSS("#nav-settings")), chromedp.WaitVisible(chromedp.CSS("#set-receipts")))
	if !eval[bool](t, ctx, `document.getElementById("set-receipts").checked`) || !strings.Contains(text("set-idle"), "5 minutes") {
		t.Fatalf("settings: receipts off at first, or %q", text("set-idle"))
	}
	step(t, ctx, "turn receipts off", chromedp.Focus(chromedp.CSS("#set-receipts")), chromedp.KeyEvent(" "))
	waitJS(t, ctx, "receipts off", `document.getElementById("settings-status").textContent === "Read receipts are off"`)
	checkAxe(t, ctx, axe, "Settings")
	screenshot(t, ctx, "settings")
	step(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#set-receipts")))
	if eval[bool](t, ctx, `document.getElementById("set-receipts").checked`) {
		t.Fatal("read receipts on again after a reload")
	}

	// A shorter screen lock for this computer, kept after a reload; the
	// started-with time is the longest offered.
	if got := eval[string](t, ctx, `[...document.getElementById("set-idle-select").options].map((o) => o.value).join(",")`); got != "60,120,300" {
		t.Fatalf("lock times offered: %s", got)
	}
	step(t, ctx, "lock after 1 minute", chromedp.SetValue(chromedp.CSS("#set-idle-select"), "60"),
		chromedp.Click(chromedp.CSS("#set-idle-button")))
	waitJS(t, ctx, "lock time set", `document.getElementById("set-idle-status").textContent === "The screen now locks after 1 minute without use"`)
	checkAxe(t, ctx, axe, "Settings with the lock time chosen")
	step(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#set-idle-select")))
	waitJS(t, ctx, "still 1 minute", `document.getElementById("set-idle-select").value === "60" &&
		document.getElementById("set-idle").textContent.startsWith("The screen locks after 1 minute without use")`)
}
