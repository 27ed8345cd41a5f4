package ui

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postern/postern/client"
	"github.com/postern/postern/relay/relaytest"
)

// The search screen in a real browser: a folder made on the page, a
// message moved into it, the search finds it with that folder as filter
// (and not in the Inbox); a phrase in quotes finds only the message with
// the words in that order, the same words without quotes find both; a
// date filter finds none; a query without words gets the CLI's sentence;
// a result opens its message, and Back shows the results again; locking
// drops them. axe-core checks the screen.
func TestBrowserSearch(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	home, alice, _, bob := pair(t, relaytest.New(t, nil))
	bg := context.Background()
	ward, err := bob.SendWith(bg, "alice", "The patient in bed 7 needs a potassium check before the ward round.", &client.SendOptions{Subject: "Bed 7"})
	if err != nil {
		t.Fatal(err)
	}
	rota, err := bob.SendWith(bg, "alice", "The rota says bed duty for 7 nurses this week.", &client.SendOptions{Subject: "Rota"})
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
	found := func() string {
		t.Helper()
		return eval[string](t, ctx, `[...document.querySelectorAll("#search-rows tr")].map(tr => tr.dataset.id).join(",")`)
	}
	// search types a query (replacing the last) and submits it from the
	// keyboard, then waits for its answer.
	search := func(query string) {
		t.Helper()
		eval[chromedp.Void](t, ctx, `document.getElementById("search-q").value = ""; document.getElementById("search-summary").textContent = "x"`)
		step(t, ctx, "search for "+query, chromedp.SendKeys(chromedp.CSS("#search-q"), query+"\r"))
		waitJS(t, ctx, "the answer to "+query, `!document.getElementById("search-button").disabled &&
			document.getElementById("search-summary").textContent !== "x" || !document.getElementById("search-error").hidden`)
	}

	step(t, ctx, "open unlocked", chromedp.Navigate(a.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#inbox-rows tr")))

	// Create a folder and move the message into it, on the page.
	step(t, ctx, "create a folder", chromedp.SendKeys(chromedp.CSS("#folder-new-name"), "Ward 4\r"))
	waitJS(t, ctx, "the folder listed", `[...document.querySelectorAll("#folder-list a")].some(a => a.textContent === "Ward 4")`)
	folderID := eval[string](t, ctx, `[...document.querySelectorAll("#folder-list a")].find(a => a.textContent === "Ward 4").dataset.folder`)
	step(t, ctx, "open the message",
		chromedp.Click(chromedp.CSS(`#inbox-rows a[href="#/m/`+ward.ID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#move-folder")),
		chromedp.SetValue(chromedp.CSS("#move-folder"), folderID),
		chromedp.Click(chromedp.CSS("#move-button")))
	waitJS(t, ctx, "moved", `document.getElementById("msg-back").textContent === "Back to Ward 4"`)

	// The search screen, from the top bar, by keyboard.
	step(t, ctx, "the search screen",
		chromedp.Focus(chromedp.CSS("#nav-search")), chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS("#search-q")))
	if got := eval[string](t, ctx, `document.activeElement.id`); got != "search-q" {
		t.Fatalf("focus on %q, want the search field", got)
	}
	if got := eval[string](t, ctx, `document.getElementById("search-form").getAttribute("role")`); got != "search" {
		t.Fatalf("the form's role is %q", got)
	}
	if got := eval[string](t, ctx, `[...document.querySelectorAll("#search-folder option")].map(o => o.textContent).join(",")`); got != "All folders,Inbox,Sent,Archive,Ward 4" {
		t.Fatalf("folder filter offers %q", got)
	}
	if got := text("search-hint"); !strings.Contains(got, `Put words in quotes to find them in that order`) {
		t.Fatalf("hint %q", got)
	}

	// The folder filter: in Ward 4 the moved message, in the Inbox only
	// the other.
	step(t, ctx, "filter Ward 4", chromedp.SetValue(chromedp.CSS("#search-folder"), folderID))
	search("bed")
	if got := found(); got != ward.ID {
		t.Fatalf("bed in Ward 4 found %q, want %s", got, ward.ID)
	}
	row := `document.querySelector("#search-rows tr")`
	if got := eval[string](t, ctx, row+`.cells[3].textContent`); got != "Ward 4" {
		t.Fatalf("folder column %q", got)
	}
	if got := eval[string](t, ctx, row+`.cells[0].textContent`); got != "bob" {
		t.Fatalf("from column %q", got)
	}
	if got := eval[string](t, ctx, `[...document.querySelectorAll("#search-rows mark")].map(m => m.textContent).join(",")`); got != "bed" {
		t.Fatalf("highlighted %q", got)
	}
	if got := text("search-summary"); got != "1 message found." {
		t.Fatalf("summary %q", got)
	}
	checkAxe(t, ctx, axe, "search")
	screenshot(t, ctx, "search")
	step(t, ctx, "filter Inbox", chromedp.SetValue(chromedp.CSS("#search-folder"), "inbox"))
	search("bed")
	if got := found(); got != rota.ID {
		t.Fatalf("bed in the Inbox found %q, want %s", got, rota.ID)
	}

	// A phrase in quotes, in every folder.
	step(t, ctx, "every folder", chromedp.SetValue(chromedp.CSS("#search-folder"), ""))
	search(`"bed 7"`)
	if got := found(); got != ward.ID {
		t.Fatalf(`"bed 7" found %q, want only %s`, got, ward.ID)
	}
	if got := eval[string](t, ctx, `[...document.querySelectorAll("#search-rows mark")].map(m => m.textContent).join(",")`); got != "bed,7" {
		t.Fatalf("phrase highlighted %q", got)
	}
	search("bed 7")
	if got := found(); got != ward.ID+","+rota.ID && got != rota.ID+","+ward.ID {
		t.Fatalf("bed 7 found %q, want both", got)
	}

	// Dates: from tomorrow, nothing.
	tomorrow := time.Now().AddDate(0, 0, 1).Format(time.DateOnly)
	step(t, ctx, "from tomorrow", chromedp.SetValue(chromedp.CSS("#search-since"), tomorrow))
	search("bed")
	if got, sum := found(), text("search-summary"); got != "" || sum != "No messages found." || !eval[bool](t, ctx, `document.getElementById("search-table").hidden`) {
		t.Fatalf("from %s found %q, %q", tomorrow, got, sum)
	}
	step(t, ctx, "no date", chromedp.SetValue(chromedp.CSS("#search-since"), ""))

	// A query without words: the CLI's sentence.
	search("!!!")
	if got := text("search-error"); got != `cannot search for that: no words to search for. search for words, "words in a row" or from:NAME, at most 16 of them.` {
		t.Fatalf("bad query shows %q", got)
	}
	checkAxe(t, ctx, axe, "search with an error")

	// A result opens its message; Back shows the results again.
	search("potassium")
	step(t, ctx, "open a result",
		chromedp.Click(chromedp.CSS(`#search-rows a[href="#/m/`+ward.ID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#msg-text")))
	if got := text("msg-text"); got != ward.Text {
		t.Fatalf("the result opened %q", got)
	}
	if loc := eval[string](t, ctx, `location.href`); strings.Contains(loc, "potassium") {
		t.Fatalf("the query is in the address, kept in the browser's history: %s", loc)
	}
	step(t, ctx, "back", chromedp.NavigateBack(), chromedp.WaitVisible(chromedp.CSS("#search-rows tr")))
	if got := found(); got != ward.ID {
		t.Fatalf("back to the results: %q", got)
	}

	// Locking drops the results and the query.
	step(t, ctx, "lock", chromedp.Click(chromedp.CSS("#lock-now")), chromedp.WaitVisible(chromedp.CSS("#passphrase")))
	if got := eval[string](t, ctx, `document.getElementById("main").textContent + document.getElementById("search-q").value`); strings.Contains(got, "potassium") || strings.Contains(got, "Bed 7") {
		t.Fatal("the locked page still holds the search")
	}
}
