package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/relay/relaytest"
	"github.com/postern/postern/ui"
)

func writePolicy(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The policy file's lock and notification settings: what parses, and
// what is refused with the line and the reason.
func TestPolicyFileParse(t *testing.T) {
	for _, tc := range []struct {
		text string
		want policy
		err  string
	}{
		{"# managed by IT\nidle-timeout = 2m\n", policy{idleTimeout: 2 * time.Minute}, ""},
		{"idle-timeout=90s\nmax-idle-timeout = 15m\ndesktop-notifications = off\nmin-passphrase-length = 16\n",
			policy{idleTimeout: 90 * time.Second, maxIdleTimeout: 15 * time.Minute, noNotifications: true, minPassphrase: 16}, ""},
		{"max-idle-timeout = 1h\ndesktop-notifications = on\n", policy{maxIdleTimeout: time.Hour}, ""},
		{"", policy{}, ""},
		{"idle-timeout = 2\n", policy{}, "line 1: idle-timeout must be a duration from 30s to 12h0m0s, such as 5m"},
		{"idle-timeout = two minutes\n", policy{}, "line 1: idle-timeout must be a duration"},
		{"\nidle-timeout = 10s\n", policy{}, "line 2: idle-timeout must be a duration from 30s"},
		{"max-idle-timeout = 24h\n", policy{}, "line 1: max-idle-timeout must be a duration from 30s to 12h0m0s"},
		{"idle-timeout = -5m\n", policy{}, "line 1: idle-timeout must be a duration"},
		{"idle-timeout = 20m\nmax-idle-timeout = 10m\n", policy{}, "idle-timeout (20m0s) is longer than max-idle-timeout (10m0s)"},
		{"desktop-notifications = no\n", policy{}, "line 1: desktop-notifications must be on or off"},
		{"lock-timeout = 5m\n", policy{}, `line 1: unknown setting "lock-timeout"`},
		{`{"idle_timeout": "2m"}` + "\n", policy{}, "line 1: want KEY = VALUE"},
	} {
		path := writePolicy(t, tc.text)
		got, err := readPolicy(path)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: %+v, %v; want %+v", tc.text, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), path)):
			t.Errorf("%q: error %v, want one naming the file and %q", tc.text, err, tc.err)
		}
	}
	if _, err := readPolicy(t.TempDir()); err == nil || !strings.Contains(err.Error(), "cannot read the policy file") {
		t.Errorf("a directory as the policy file: %v", err)
	}
}

// The lock's timeout: --idle-timeout if given, else the policy's, else
// the default; never longer than the policy's maximum, or its timeout
// when it sets no maximum.
func TestPolicyLockTimeout(t *testing.T) {
	const def = ui.DefaultIdleTimeout
	m := time.Minute
	for _, tc := range []struct {
		name             string
		p                policy
		flag             time.Duration
		given            bool
		want             time.Duration
		byPolicy, capped bool
	}{
		{"no policy", policy{}, def, false, def, false, false},
		{"no policy, flag", policy{}, 30 * m, true, 30 * m, false, false},
		{"policy's timeout", policy{idleTimeout: 2 * m}, def, false, 2 * m, true, false},
		{"flag shorter than the policy's", policy{idleTimeout: 2 * m}, m, true, m, false, false},
		{"flag longer than the policy's", policy{idleTimeout: 2 * m}, 30 * m, true, 2 * m, true, true},
		{"flag under the maximum", policy{idleTimeout: 2 * m, maxIdleTimeout: 30 * m}, 20 * m, true, 20 * m, false, false},
		{"flag over the maximum", policy{idleTimeout: 2 * m, maxIdleTimeout: 30 * m}, time.Hour, true, 30 * m, true, true},
		{"maximum only, default under it", policy{maxIdleTimeout: 15 * m}, def, false, def, false, false},
		{"maximum under the default", policy{maxIdleTimeout: 3 * m}, def, false, 3 * m, true, false},
	} {
		d, by, capped := tc.p.lockTimeout(tc.flag, tc.given, def)
		if d != tc.want || by != tc.byPolicy || capped != tc.capped {
			t.Errorf("%s: %v, by policy %v, capped %v; want %v, %v, %v", tc.name, d, by, capped, tc.want, tc.byPolicy, tc.capped)
		}
	}
}

// postern ui does not start on a policy file it cannot use: the
// organisation relies on it, so the default must not take its place.
func TestUIRefusesBadPolicy(t *testing.T) {
	home := filepath.Join(t.TempDir(), "alice")
	env := map[string]string{"POSTERN_PASSPHRASE": "plum harbour lantern tuesday"}
	if code, _, stderr := runWith(t, filepath.Join(t.TempDir(), "none"), env, "--home", home, "init", "--relay", relaytest.New(t, nil).URL, "--name", "Alice"); code != 0 {
		t.Fatalf("init: %d %s", code, stderr)
	}
	for _, tc := range []struct{ text, want string }{
		{"idle-timeout = 5\n", "line 1: idle-timeout must be a duration from 30s to 12h0m0s, such as 5m"},
		{"idle-timeout: 5m\n", "line 1: want KEY = VALUE"},
		{"idle-timeout = 10m\nmax-idle-timeout = 5m\n", "idle-timeout (10m0s) is longer than max-idle-timeout (5m0s)"},
	} {
		path := writePolicy(t, tc.text)
		code, out, stderr := runWith(t, path, env, "--home", home, "ui", "--no-browser")
		if code != 1 || out != "" || !strings.HasPrefix(stderr, "postern: error: the policy file "+path) ||
			!strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "hint: ask whoever manages this computer to fix "+path) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", tc.text, code, out, stderr)
		}
	}
	if os.Geteuid() != 0 { // root reads what it likes
		path := writePolicy(t, "idle-timeout = 2m\n")
		if err := os.Chmod(path, 0); err != nil {
			t.Fatal(err)
		}
		if code, out, stderr := runWith(t, path, env, "--home", home, "ui", "--no-browser"); code != 1 || out != "" ||
			!strings.Contains(stderr, "postern: error: cannot read the policy file "+path) {
			t.Errorf("unreadable policy: exit %d, stdout %q, stderr %q", code, out, stderr)
		}
	}
}

// postern ui under a policy: --idle-timeout longer than the policy allows
// is shortened (said on standard error), and the settings say the
// timeout is the organisation's and notifications are off.
func TestUIPolicyApplied(t *testing.T) {
	srv := relaytest.New(t, nil)
	home := filepath.Join(t.TempDir(), "alice")
	env := map[string]string{"POSTERN_PASSPHRASE": "plum harbour lantern tuesday"}
	path := writePolicy(t, "idle-timeout = 2m\ndesktop-notifications = off\n")
	if code, _, stderr := runWith(t, path, env, "--home", home, "init", "--relay", srv.URL, "--name", "Alice"); code != 0 {
		t.Fatalf("init: %d %s", code, stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		c := uiCLI(t, env, pw, &stderr)
		c.policyPath = path
		code := c.main(ctx, []string{"--home", home, "ui", "--no-browser", "--idle-timeout", "1h"})
		pw.Close()
		done <- code
	}()
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
	// A home made by init has not accepted the terms of use: accept them
	// as the page would, or every content endpoint answers 451.
	req, _ := http.NewRequest(http.MethodPost, base+"/api/terms/accept",
		strings.NewReader(`{"version":"`+ui.TermsVersion+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", base)
	if resp, err = hc.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("accepting the terms: %s", resp.Status)
	}
	resp, err = hc.Get(base + "/api/settings")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Idle          int64 `json:"idle_timeout_seconds"`
		ByPolicy      bool  `json:"idle_timeout_by_policy"`
		Notifications bool  `json:"desktop_notifications"`
		NotifyPolicy  bool  `json:"desktop_notifications_by_policy"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.Idle != 120 || !st.ByPolicy || st.Notifications || !st.NotifyPolicy {
		t.Fatalf("settings %+v, %v", st, err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "postern: your organisation's policy locks the page after at most 2m0s without use\n") {
		t.Fatalf("stderr %q", stderr.String())
	}
}
