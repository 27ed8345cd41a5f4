package ui

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/postern/postern/client"
	"github.com/postern/postern/relay/relaytest"
)

// Attachments in a real browser: the inbox marks a message with a file;
// the file downloads from the message screen with a progress bar that
// reaches 100 % and lands on disk with the sent bytes; a reply with a
// subject takes a file from the picker, whose upload (cut once in the
// middle and resumed from the server's offset) reaches 100 %, and the
// other side receives the reply with the file. axe-core on the message
// screen with its file and on compose with an upload.
func TestBrowserAttachment(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	home, alice, _, bob := pair(t, relaytest.New(t, nil))
	bg := context.Background()
	files := t.TempDir()
	lab := randomBytes(300_001)
	labPath := filepath.Join(files, "lab report.pdf")
	if err := os.WriteFile(labPath, lab, 0o600); err != nil {
		t.Fatal(err)
	}
	first, err := bob.SendFiles(bg, "alice", "The full report is attached.", []string{labPath}, &client.SendOptions{Subject: "Lab report"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(bg); err != nil {
		t.Fatal(err)
	}
	alice.Close()
	cut := &cutUpload{}
	a := newAppWrapped(t, home, &Options{Passphrase: []byte(alicePass)}, cut.wrap)
	ctx := browser(t)
	downloads := t.TempDir()
	step(t, ctx, "allow downloads", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads,
		})
		return err
	}))

	// The inbox marks the message with a paperclip, labelled.
	step(t, ctx, "open unlocked", chromedp.Navigate(a.s.LoginURL()),
		chromedp.WaitVisible(chromedp.CSS(`#inbox-rows tr[data-id="`+first.ID+`"]`)))
	if got := eval[string](t, ctx, `(document.querySelector('#inbox-rows tr[data-id="`+first.ID+`"] .clip[role="img"]') || {}).ariaLabel || ""`); got != "has attachments" {
		t.Fatalf("the attachment marker's label: %q", got)
	}

	// Download it: the progress bar reaches 100 %, the file is saved whole.
	step(t, ctx, "open the message",
		chromedp.Click(chromedp.CSS(`#inbox-rows a[href="#/m/`+first.ID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#msg-files button")))
	if got := eval[string](t, ctx, `document.querySelector("#msg-files button").textContent`); got != "Download lab report.pdf" {
		t.Fatalf("download button %q", got)
	}
	step(t, ctx, "download", chromedp.Click(chromedp.CSS("#msg-files button")))
	waitJS(t, ctx, "the download at 100 %", `(() => { const li = document.querySelector("#msg-files li");
		const bar = li.querySelector("progress");
		return bar.value === bar.max && li.querySelector(".pct").textContent === "100 %" && li.textContent.includes("Downloaded"); })()`)
	if got := eval[string](t, ctx, `document.getElementById("status").textContent`); got != "lab report.pdf downloaded" {
		t.Fatalf("announced %q", got)
	}
	waitFile(t, downloads, lab)
	checkAxe(t, ctx, axe, "message with a downloaded file")

	// Reply with a subject and a file from the picker. The connection of
	// the second piece is dropped after cutAfter of its bytes: the upload
	// asks the server where it stands and goes on from there.
	scan := randomBytes(3<<20 + 12345)
	scanPath := filepath.Join(files, "wound photo.bin")
	if err := os.WriteFile(scanPath, scan, 0o600); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "reply", chromedp.Click(chromedp.CSS("#msg-reply")), chromedp.WaitVisible(chromedp.CSS("#compose-files")))
	if subj := eval[string](t, ctx, `document.getElementById("compose-subject").value`); subj != "Re: Lab report" {
		t.Fatalf("reply subject %q", subj)
	}
	step(t, ctx, "type and attach",
		chromedp.SendKeys(chromedp.CSS("#compose-text"), "Photo of the wound attached."),
		chromedp.SetUploadFiles(chromedp.CSS("#compose-files"), []string{scanPath}))
	waitJS(t, ctx, "the upload at 100 %", `(() => { const li = document.querySelector("#compose-uploads li");
		if (!li) return false;
		const bar = li.querySelector("progress");
		return bar.value === bar.max && li.querySelector(".pct").textContent === "100 %" && li.textContent.includes("Uploaded"); })()`)
	t.Logf("PUT offsets %v", cut.offsets())
	if got := cut.offsets(); len(got) < 5 || !slices.Contains(got, 1<<20+cutAfter) {
		t.Fatalf("the PUTs' offsets %v do not resume at %d, where the connection broke", got, 1<<20+cutAfter)
	}
	if got := eval[string](t, ctx, `document.querySelector("#compose-uploads progress").getAttribute("aria-label")`); got != "Upload of wound photo.bin" {
		t.Fatalf("progress label %q", got)
	}
	if got := eval[string](t, ctx, `document.getElementById("status").textContent`); got != "wound photo.bin uploaded" {
		t.Fatalf("announced %q", got)
	}
	checkAxe(t, ctx, axe, "compose with an attachment")
	eval[chromedp.Void](t, ctx, `document.getElementById("compose-uploads").scrollIntoView({block: "center"})`)
	screenshot(t, ctx, "attachment")

	// Locking drops the upload: its staging file goes at once, and after
	// unlocking the page says the file must be added again.
	if n := len(stagingFiles(t, home)); n != 1 {
		t.Fatalf("%d staging files before the lock", n)
	}
	step(t, ctx, "lock now", chromedp.Click(chromedp.CSS("#lock-now")), chromedp.WaitVisible(chromedp.CSS("#passphrase")))
	if f := stagingFiles(t, home); len(f) != 0 {
		t.Fatalf("staging files after the lock: %q", f)
	}
	step(t, ctx, "unlock", chromedp.SendKeys(chromedp.CSS("#passphrase"), alicePass+"\r"), chromedp.WaitVisible(chromedp.CSS("#compose-files")))
	waitJS(t, ctx, "the page says the file was dropped", `!document.getElementById("compose-files-dropped").hidden &&
		document.getElementById("compose-uploads").children.length === 0`)
	checkAxe(t, ctx, axe, "compose after a lock dropped its file")
	if subj := eval[string](t, ctx, `document.getElementById("compose-subject").value`); subj != "Re: Lab report" {
		t.Fatalf("reply subject after unlocking %q", subj)
	}
	eval[chromedp.Void](t, ctx, `document.getElementById("compose-text").value = ""`)
	step(t, ctx, "type and attach again",
		chromedp.SendKeys(chromedp.CSS("#compose-text"), "Photo of the wound attached."),
		chromedp.SetUploadFiles(chromedp.CSS("#compose-files"), []string{scanPath}))
	waitJS(t, ctx, "the upload at 100 % again", `(() => { const li = document.querySelector("#compose-uploads li");
		if (!li) return false;
		const bar = li.querySelector("progress");
		return bar.value === bar.max && li.textContent.includes("Uploaded"); })()`)
	if !eval[bool](t, ctx, `document.getElementById("compose-files-dropped").hidden`) {
		t.Fatal("the note of the dropped file stays after a file was added")
	}
	step(t, ctx, "send", chromedp.Click(chromedp.CSS("#compose-send")))
	waitJS(t, ctx, "the sent message shown", `document.getElementById("msg-text").textContent === "Photo of the wound attached." &&
		document.getElementById("msg-files").textContent.includes("wound photo.bin")`)
	if f := stagingFiles(t, home); len(f) != 0 {
		t.Fatalf("staging files after the send: %q", f)
	}

	// The other side has the reply with its subject and the file.
	msgs, err := bob.Sync(bg)
	if err != nil {
		t.Fatal(err)
	}
	var reply *client.Message
	for i := range msgs {
		if msgs[i].Text == "Photo of the wound attached." {
			reply = &msgs[i]
		}
	}
	if reply == nil || reply.Subject != "Re: Lab report" || reply.ReplyTo != first.ID || len(reply.Attachments) != 1 || reply.Attachments[0].Name != "wound photo.bin" {
		t.Fatalf("bob got %+v", msgs)
	}
	var got bytes.Buffer
	if err := bob.ReadAttachment(bg, reply.ID, 0, 0, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), scan) {
		t.Fatalf("bob's file: %d bytes that differ from the %d sent", got.Len(), len(scan))
	}
}

// cutAfter is where cutUpload drops the second PUT's connection.
const cutAfter = 300_000

// cutUpload lets the server read cutAfter bytes of the second upload PUT
// and then drops the connection without an answer, as a broken network
// would. It records the Upload-Offset of every PUT.
type cutUpload struct {
	mu   sync.Mutex
	offs []int64
}

func (c *cutUpload) offsets() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.offs)
}

func (c *cutUpload) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || !strings.HasPrefix(r.URL.Path, "/api/uploads/") {
			next.ServeHTTP(w, r)
			return
		}
		off, _ := strconv.ParseInt(r.Header.Get(HeaderUploadOffset), 10, 64)
		c.mu.Lock()
		c.offs = append(c.offs, off)
		n := len(c.offs)
		c.mu.Unlock()
		if n != 2 {
			next.ServeHTTP(w, r)
			return
		}
		r.Body = io.NopCloser(io.MultiReader(io.LimitReader(r.Body, cutAfter), errReader{}))
		next.ServeHTTP(discardResponse{http.Header{}}, r)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection dropped") }

type discardResponse struct{ h http.Header }

func (d discardResponse) Header() http.Header         { return d.h }
func (d discardResponse) Write(b []byte) (int, error) { return len(b), nil }
func (d discardResponse) WriteHeader(int)             {}

// newAppWrapped is newApp with wrap around the app's handler.
func newAppWrapped(t *testing.T, home string, o *Options, wrap func(http.Handler) http.Handler) *app {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	opts := *o
	opts.Home = home
	opts.Addr = ts.Listener.Addr().String()
	opts.Client = &client.Options{KDF: testKDF}
	s, err := New(&opts)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = wrap(s)
	ts.Start()
	t.Cleanup(func() { s.Close(); ts.Close() })
	jar, _ := cookiejar.New(nil)
	return &app{t: t, s: s, ts: ts, hc: &http.Client{Jar: jar}, host: opts.Addr}
}

// waitFile waits until dir holds a finished download with want's bytes
// (a hang guard, not a timing).
func waitFile(t *testing.T, dir string, want []byte) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if strings.HasSuffix(e.Name(), ".crdownload") {
				continue
			}
			if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && bytes.Equal(b, want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no download with the file's %d bytes in %s (%d entries)", len(want), dir, len(es))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
