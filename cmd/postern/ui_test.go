package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/relay/relaytest"
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
		{nil, "postern: error: no Postern identity in ", 1},
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
