package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/relay/relaytest"
	"github.com/postern/postern/ui"
)

// uiCLI is a cli with a fixed environment and the given standard output.
func uiCLI(t *testing.T, env map[string]string, stdout io.Writer, stderr *bytes.Buffer) *cli {
	return &cli{
		stdin: strings.NewReader(""), stdout: stdout, stderr: stderr,
		lookupEnv:  func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		policyPath: filepath.Join(t.TempDir(), "no-policy"),
	}
}

// postern ui refuses to serve beyond this computer unless asked, with
// HTTPS; it checks this before anything else.
func TestUIListenRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"--listen", "0.0.0.0:0"}, "postern: error: refusing to serve on 0.0.0.0:0: it is not a loopback address", 1},
		{[]string{"--listen", "192.0.2.1:8080"}, "not a loopback address", 1},
		{[]string{"--listen", "192.0.2.1:8080", "--allow-remote"}, "not a loopback address", 1},
		{[]string{"--listen", "0.0.0.0:8443", "--allow-remote", "--tls-cert", "c", "--tls-key", "k"}, "--allow-remote needs the address or name that browsers will use", 1},
		{[]string{"--listen", "nohost"}, "--listen wants HOST:PORT", 2},
		{[]string{"--tls-cert", "c"}, "--tls-cert and --tls-key go together", 2},
	} {
		var stderr bytes.Buffer
		c := uiCLI(t, nil, io.Discard, &stderr)
		args := append([]string{"--home", t.TempDir(), "ui", "--no-browser"}, tc.args...)
		code := c.main(context.Background(), args)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, stderr.String())
		}
	}
}

// postern ui --no-browser prints the one-time URL on standard output; with
// POSTERN_PASSPHRASE the first session is unlocked; Ctrl-C stops it.
func TestUIServes(t *testing.T) {
	srv := relaytest.New(t, nil)
	home := filepath.Join(t.TempDir(), "alice")
	env := map[string]string{"POSTERN_PASSPHRASE": "plum harbour lantern tuesday"}
	var stderr bytes.Buffer
	if code := uiCLI(t, env, io.Discard, &stderr).main(context.Background(), []string{"--home", home, "init", "--relay", srv.URL, "--name", "Alice"}); code != 0 {
		t.Fatalf("init: %d %s", code, stderr.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	stderr.Reset()
	go func() {
		code := uiCLI(t, env, pw, &stderr).main(ctx, []string{"--home", home, "ui", "--no-browser"})
		pw.Close()
		done <- code
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no URL: %v", err)
	}
	go io.Copy(io.Discard, pr)
	url := strings.TrimSpace(line)
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.Contains(url, "/?t=") {
		t.Fatalf("URL %q", url)
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	base, _, _ := strings.Cut(url, "/?")
	// A home made by init: the page's terms of use are asked first.
	if st, body := uiDo(t, hc, base, "GET", "/api/whoami", ""); st != http.StatusUnavailableForLegalReasons {
		t.Fatalf("whoami before the terms were accepted: %d %s", st, body)
	}
	if st, body := uiDo(t, hc, base, "POST", "/api/terms/accept", `{"version":"`+ui.TermsVersion+`"}`); st != http.StatusOK {
		t.Fatalf("accepting the terms: %d %s", st, body)
	}
	resp, err = hc.Get(base + "/api/whoami")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"name":"Alice"`) {
		t.Fatalf("whoami: %d %s", resp.StatusCode, b)
	}
	// A wrong passphrase on the page gets the CLI's sentence.
	req, _ := http.NewRequest("POST", base+"/api/lock", nil)
	req.Header.Set("Origin", base)
	if resp, err = hc.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ = http.NewRequest("POST", base+"/api/unlock", strings.NewReader(`{"passphrase":"wrong"}`))
	req.Header.Set("Origin", base)
	req.Header.Set("Content-Type", "application/json")
	if resp, err = hc.Do(req); err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `{"error":"wrong passphrase for ` + home + `","hint":"type it again"}`; strings.TrimSpace(string(b)) != want {
		t.Fatalf("wrong passphrase: %s, want %s", b, want)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}

// uiDo makes a request as the page does and returns the status and body.
func uiDo(t *testing.T, hc *http.Client, base, method, path, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", base)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startUI runs postern ui --no-browser on home until the test ends and
// returns an http.Client signed in and the base URL.
func startUI(t *testing.T, env map[string]string, home string, args ...string) (*http.Client, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		code := uiCLI(t, env, pw, &stderr).main(ctx, append([]string{"--home", home, "ui", "--no-browser"}, args...))
		pw.Close()
		done <- code
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("postern ui: exit %d: %s", code, stderr.String())
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no URL: %v", err)
	}
	go io.Copy(io.Discard, pr)
	url := strings.TrimSpace(line)
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	base, _, _ := strings.Cut(url, "/?")
	return hc, base
}

// On a home without an identity postern ui starts with the first run
// (with POSTERN_PASSPHRASE set too): --relay is the form's relay, the
// passphrase policy the CLI's, and nothing is written to the home until
// an identity is made. Then, unlocked, it holds the home's listen lock:
// postern listen is refused with a sentence naming postern ui.
func TestUIFirstRun(t *testing.T) {
	srv := relaytest.New(t, nil)
	home := filepath.Join(t.TempDir(), "alice")
	env := map[string]string{"POSTERN_PASSPHRASE": "plum harbour lantern tuesday"}
	hc, base := startUI(t, env, home, "--relay", srv.URL)
	if st, body := uiDo(t, hc, base, "GET", "/api/state", ""); st != http.StatusOK || !strings.Contains(body, `"setup":true`) {
		t.Fatalf("state: %d %s", st, body)
	}
	st, body := uiDo(t, hc, base, "GET", "/api/setup", "")
	if st != http.StatusOK || !strings.Contains(body, `"relay":"`+srv.URL+`"`) || !strings.Contains(body, `"min_passphrase":12`) {
		t.Fatalf("setup: %d %s", st, body)
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Fatalf("the home exists before the first run: %v", err)
	}
	// The CLI's policy: a common passphrase is refused.
	st, body = uiDo(t, hc, base, "POST", "/api/setup/create", `{"name":"Alice","passphrase":"correct horse battery staple","repeat":"correct horse battery staple","accept_terms":"`+ui.TermsVersion+`"}`)
	if st != http.StatusBadRequest || !strings.Contains(body, "the passphrase is too common") {
		t.Fatalf("a common passphrase: %d %s", st, body)
	}
	pass := "plum harbour lantern tuesday"
	st, body = uiDo(t, hc, base, "POST", "/api/setup/create", `{"name":"Alice","passphrase":"`+pass+`","repeat":"`+pass+`","accept_terms":"`+ui.TermsVersion+`"}`)
	if st != http.StatusOK {
		t.Fatalf("create: %d %s", st, body)
	}
	if st, body := uiDo(t, hc, base, "GET", "/api/whoami", ""); st != http.StatusOK || !strings.Contains(body, `"relay":"`+srv.URL+`"`) {
		t.Fatalf("whoami: %d %s", st, body)
	}
	var stderr bytes.Buffer
	if code := uiCLI(t, env, io.Discard, &stderr).main(context.Background(), []string{"--home", home, "listen"}); code != 1 ||
		!strings.Contains(stderr.String(), "postern: error: postern ui is already running on "+home+" (process ") {
		t.Fatalf("listen beside an unlocked postern ui: exit %d, %s", code, stderr.String())
	}
	// Locked, the ui lets go of it.
	if st, body := uiDo(t, hc, base, "POST", "/api/lock", ""); st != http.StatusOK {
		t.Fatalf("lock: %d %s", st, body)
	}
	lk, err := lockListen(home)
	if err != nil {
		t.Fatalf("the listen lock after locking: %v", err)
	}
	// And while another holds it, unlocking is refused with its sentence.
	st, body = uiDo(t, hc, base, "POST", "/api/unlock", `{"passphrase":"`+pass+`"}`)
	if st == http.StatusOK || !strings.Contains(body, "postern listen is already running on "+home) {
		t.Fatalf("unlock beside postern listen: %d %s", st, body)
	}
	lk.release()
	if st, body := uiDo(t, hc, base, "POST", "/api/unlock", `{"passphrase":"`+pass+`"}`); st != http.StatusOK {
		t.Fatalf("unlock: %d %s", st, body)
	}
}
