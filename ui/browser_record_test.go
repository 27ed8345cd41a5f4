package ui

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postern/postern/relay/relaytest"
)

// For the medical record in a real browser: alice files her conversation
// with bob under a patient (a malformed identifier first, refused with
// the sentence), exports the whole conversation with its file, and the
// export she downloaded verifies as hers on bob's client; axe-core on
// the section.
func TestBrowserRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	home, alice, _, bob := pair(t, relaytest.New(t, nil))
	bg := context.Background()
	file := filepath.Join(t.TempDir(), "labs.txt")
	if err := os.WriteFile(file, []byte("K 6.1 mmol/L"), 0o600); err != nil {
		t.Fatal(err)
	}
	theirs, err := bob.Send(bg, "alice", "Can I take ibuprofen with it?")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(bg); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendFiles(bg, "bob", "Your results are attached.", []string{file}, nil); err != nil {
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
	step(t, ctx, "open bob's message", chromedp.Navigate(a.s.Origin()+"/#/m/"+theirs.ID), chromedp.WaitVisible(chromedp.CSS("#record")))
	waitJS(t, ctx, "no patient yet", `document.getElementById("record-patient").textContent === "This conversation is not filed under a patient."`)

	step(t, ctx, "a malformed identifier",
		chromedp.SendKeys(chromedp.CSS("#record-patient-id"), "MRN-0042"),
		chromedp.Click(chromedp.CSS("#record-save")))
	waitJS(t, ctx, "refused", `document.getElementById("record-status").textContent.startsWith("Write each identifier as SYSTEM|VALUE")`)

	step(t, ctx, "the patient and encounter",
		chromedp.SetValue(chromedp.CSS("#record-patient-id"), "https://hospital.example/fhir/sid/mrn|MRN-0042"),
		chromedp.SendKeys(chromedp.CSS("#record-encounter-id"), "https://hospital.example/fhir/sid/encounter|ENC-7"),
		chromedp.Click(chromedp.CSS("#record-save")))
	waitJS(t, ctx, "saved", `document.getElementById("record-status").textContent === "Patient saved for this conversation"`)
	if got := text("record-patient"); got != "This conversation is filed under patient https://hospital.example/fhir/sid/mrn|MRN-0042, encounter https://hospital.example/fhir/sid/encounter|ENC-7." {
		t.Fatalf("patient line %q", got)
	}
	checkAxe(t, ctx, axe, "message, for the medical record")
	screenshot(t, ctx, "record")

	step(t, ctx, "export the conversation", chromedp.Click(chromedp.CSS("#record-export-all")))
	waitJS(t, ctx, "exported", `document.getElementById("record-status").textContent.startsWith("Exported 2 messages and 1 file to record-")`)

	// What the page saved is what the endpoint answers: fetch it again
	// and check it on bob's client.
	body := eval[string](t, ctx, `fetch("/api/export?with=bob", {credentials: "same-origin"}).then(r => r.text())`)
	s, err := bob.VerifyRecord([]byte(body))
	if err != nil || s.Name != "alice" {
		t.Fatalf("bob verifies the export: %+v, %v", s, err)
	}
	for _, want := range []string{"MRN-0042", "ENC-7", "Can I take ibuprofen with it?", "Your results are attached."} {
		if !strings.Contains(body, want) {
			t.Errorf("the export lacks %q", want)
		}
	}

	step(t, ctx, "remove the patient", chromedp.Click(chromedp.CSS("#record-clear")))
	waitJS(t, ctx, "removed", `document.getElementById("record-patient").textContent === "This conversation is not filed under a patient."`)
}

// An urgent message from the compose screen: bob's client holds it as
// urgent, and alice's Sent folder marks it; axe-core on the compose
// screen with the box ticked.
func TestBrowserUrgent(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	home, alice, _, bob := pair(t, relaytest.New(t, nil))
	alice.Close()
	ctx := browser(t)
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	step(t, ctx, "open unlocked", chromedp.Navigate(a.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#screen-inbox")))
	step(t, ctx, "compose", chromedp.Navigate(a.s.Origin()+"/#/compose?to=bob"), chromedp.WaitVisible(chromedp.CSS("#compose-text")))
	step(t, ctx, "write an urgent message",
		chromedp.SendKeys(chromedp.CSS("#compose-text"), "Potassium 6.1: call the ward now"),
		chromedp.Click(chromedp.CSS("#compose-urgent")))
	checkAxe(t, ctx, axe, "compose, urgent")
	step(t, ctx, "send", chromedp.Click(chromedp.CSS("#compose-send")))
	waitJS(t, ctx, "the sent message", `location.hash.startsWith("#/m/") && document.getElementById("msg-state").textContent.startsWith("Urgent.")`)
	id := eval[string](t, ctx, `decodeURIComponent(location.hash.slice(4))`)
	deadline := time.Now().Add(60 * time.Second) // a hang guard
	for {
		if _, err := bob.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		m, err := bob.Message(id)
		if err == nil {
			if !m.Urgent || m.Text != "Potassium 6.1: call the ward now" {
				t.Fatalf("bob holds %+v", m)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob never got the message: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	step(t, ctx, "the sent folder", chromedp.Navigate(a.s.Origin()+"/#/folder/sent"), chromedp.WaitVisible(chromedp.CSS("#inbox-rows tr")))
	waitJS(t, ctx, "the badge", `document.querySelector("#inbox-rows .badge.urgent") !== null`)
}
