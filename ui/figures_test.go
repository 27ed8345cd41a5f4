package ui

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postern/postern/client"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/relay/relaytest"
)

// TestFigures measures, for the record and not as assertions, what issue 13
// asks of the web app on this machine: the time from unlock to the inbox
// painted with 10,000 messages, how soon a new message is shown after the
// client stored it, and the memory of the postern ui process (a built
// binary, so that the figure is its own) idle and with the inbox loaded.
// It runs only with POSTERN_UI_FIGURES=1 (it sends 10,000 messages first):
//
//	POSTERN_UI_FIGURES=1 go test -run TestFigures -v ./ui/
func TestFigures(t *testing.T) {
	if os.Getenv("POSTERN_UI_FIGURES") != "1" {
		t.Skip("set POSTERN_UI_FIGURES=1 to measure")
	}
	chromiumPath(t)
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("POSTERN_UI_FIGURES_N")); err == nil && v > 0 {
		n = v
	}
	r := relaytest.New(t, nil)
	home, alice, _, bob := pair(t, r)
	ctx := context.Background()
	start := time.Now()
	text := strings.Repeat("Observations stable overnight; plan unchanged. ", 4)
	for i := range n {
		// Bob writes, so that the messages are in alice's Inbox, the
		// folder the page opens.
		if _, err := bob.SendWith(ctx, "alice", text, &client.SendOptions{Subject: fmt.Sprintf("Patient %d", i)}); err != nil {
			t.Fatal(err)
		}
		if i%2000 == 1999 || i == n-1 { // the relay keeps at most 10,000 envelopes a mailbox
			if _, err := alice.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("stored %d messages in %v", n, time.Since(start).Round(time.Millisecond))
	alice.Close()
	// The unlock is measured with the cost of a real key file: the home's
	// key file is sealed again with identity.DefaultKDFParams (the tests
	// make theirs with a cheap one).
	keyPath := filepath.Join(home, client.KeyFileName)
	sealed, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := identity.OpenKeyFile([]byte(alicePass), sealed)
	if err != nil {
		t.Fatal(err)
	}
	if sealed, err = identity.SealKeyFile([]byte(alicePass), payload, identity.DefaultKDFParams); err != nil {
		t.Fatal(err)
	}
	if err := identity.ReplaceKeyFile(keyPath, sealed); err != nil {
		t.Fatal(err)
	}

	bin := filepath.Join(t.TempDir(), "postern")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/postern").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--home", home, "ui", "--no-browser", "--idle-timeout", "1h")
	cmd.Env = append(os.Environ(), "POSTERN_PASSPHRASE=")
	cmd.Env = slices.DeleteFunc(cmd.Env, func(e string) bool { return strings.HasPrefix(e, "POSTERN_PASSPHRASE=") })
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	loginURL := strings.TrimSpace(line)
	rss := func() string {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		if err != nil {
			return "unknown (" + err.Error() + ")"
		}
		var out []string
		for l := range strings.SplitSeq(string(b), "\n") {
			if strings.HasPrefix(l, "VmRSS:") || strings.HasPrefix(l, "VmHWM:") {
				out = append(out, strings.Join(strings.Fields(l), " "))
			}
		}
		return strings.Join(out, ", ")
	}

	bctx := browser(t)
	step(t, bctx, "sign in", chromedp.Navigate(loginURL), chromedp.WaitVisible(chromedp.CSS("#passphrase")))
	t.Logf("memory of postern ui, locked and idle: %s", rss())
	want := min(n, 100) // the inbox's first page
	rowsAtLeast := func(k int) string {
		return fmt.Sprintf(`document.querySelectorAll("#inbox-rows tr").length >= %d`, k)
	}
	// The passphrase is set and the form submitted by script: typing it
	// key by key through DevTools would be counted too.
	t0 := time.Now()
	eval[chromedp.Void](t, bctx, fmt.Sprintf(`document.getElementById("passphrase").value = %q;
		document.getElementById("unlock-form").requestSubmit()`, alicePass))
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](rowsAtLeast(want), chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Logf("page: %s", eval[string](t, bctx, `[...document.querySelectorAll("section.screen")].filter((s) => !s.hidden).map((s) => s.id + ": " + s.innerText).join(" | ") + " error: " + document.getElementById("error").textContent`))
	}
	waitJS(t, bctx, "inbox painted", rowsAtLeast(want))
	t.Logf("unlock submitted to %d rows painted (key file with the default Argon2id cost): %v", want, time.Since(t0).Round(time.Millisecond))
	t.Logf("memory of postern ui, unlocked, %d messages in the store, the inbox painted: %s", n, rss())
	apiMS := eval[float64](t, bctx, `(async () => { const t0 = performance.now(); const r = await fetch("/api/inbox"); await r.json(); return performance.now() - t0; })()`)
	t.Logf("GET /api/inbox with %d messages, fetched and parsed by the page: %.0f ms", n, apiMS)
	// Again without the key derivation: from the inbox link to the rows.
	step(t, bctx, "contacts", chromedp.Click(chromedp.CSS("#nav-contacts")), chromedp.WaitVisible(chromedp.CSS("#contacts-rows tr")))
	eval[chromedp.Void](t, bctx, `document.getElementById("inbox-rows").replaceChildren()`)
	t0 = time.Now()
	step(t, bctx, "inbox", chromedp.Click(chromedp.CSS("#nav-inbox")))
	waitJS(t, bctx, "inbox painted again", rowsAtLeast(want))
	t.Logf("inbox link to %d rows painted: %v", want, time.Since(t0).Round(time.Millisecond))
	if n > want {
		t0 = time.Now()
		step(t, bctx, "older", chromedp.Click(chromedp.CSS("#inbox-more")))
		waitJS(t, bctx, "older rows painted", rowsAtLeast(min(n, 2*want)))
		t.Logf("'Show older messages' to %d more rows painted: %v", min(n, 2*want)-want, time.Since(t0).Round(time.Millisecond))
	}

	// Live: the page records when each new row appears; the message's
	// "received" is when alice's client stored it (same clock).
	eval[chromedp.Void](t, bctx, `window.seen = {};
		new MutationObserver(() => {
			const tr = document.querySelector("#inbox-rows tr");
			if (tr && !(tr.dataset.id in window.seen)) {
				requestAnimationFrame(() => { window.seen[tr.dataset.id] = Date.now(); });
			}
		}).observe(document.getElementById("inbox-rows"), {childList: true})`)
	var lat []time.Duration
	for i := range 20 {
		m, err := bob.SendWith(ctx, "alice", "live "+strconv.Itoa(i), &client.SendOptions{Subject: "Live " + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		sctx, cancel := context.WithTimeout(bctx, 60*time.Second)
		_, err = chromedp.Run(sctx, chromedp.Poll[bool](fmt.Sprintf(`%q in window.seen`, m.ID)))
		cancel()
		if err != nil {
			dbg := eval[string](t, bctx, fmt.Sprintf(`fetch("/api/messages/%s").then(r => r.status + " " + document.querySelector("#inbox-rows tr").dataset.id + " " + JSON.stringify(window.seen) + " " + !document.getElementById("screen-inbox").hidden)`, m.ID))
			t.Fatalf("live row %s: %v; %s", m.ID, err, dbg)
		}
		shown := eval[int64](t, bctx, fmt.Sprintf(`window.seen[%q]`, m.ID))
		rec := eval[string](t, bctx, fmt.Sprintf(`fetch("/api/messages/%s").then(r => r.json()).then(m => m.received)`, m.ID))
		rt, err := time.Parse(time.RFC3339Nano, rec)
		if err != nil {
			t.Fatal(err)
		}
		lat = append(lat, time.UnixMilli(shown).Sub(rt))
	}
	slices.Sort(lat)
	t.Logf("stored by the client to shown on the page, 20 messages, %d in the store: median %v, max %v", n, lat[len(lat)/2], lat[len(lat)-1])
	t.Logf("memory of postern ui after the live messages: %s", rss())
}
