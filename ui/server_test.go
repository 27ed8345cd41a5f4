package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/client"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/relay/relaytest"
)

var testKDF = &identity.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}

const (
	alicePass = "alice's passphrase, long enough"
	bobPass   = "bob's passphrase, long enough"
)

// pair makes two homes on relay, alice and bob, who are contacts, and
// returns their open clients (closed on cleanup).
func pair(t *testing.T, r *relaytest.Server) (aliceHome string, alice *client.Client, bobHome string, bob *client.Client) {
	t.Helper()
	ctx := context.Background()
	opts := &client.Options{KDF: testKDF}
	aliceHome, bobHome = filepath.Join(t.TempDir(), "alice"), filepath.Join(t.TempDir(), "bob")
	alice, err := client.Init(ctx, aliceHome, []byte(alicePass), r.URL, "alice", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.Close() })
	bob, err = client.Init(ctx, bobHome, []byte(bobPass), r.URL, "bob", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bob.Close() })
	code, err := alice.Invite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Accept(ctx, code, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Both accepted the app's terms of use (setup_test.go tests the app
	// without).
	for _, c := range []*client.Client{alice, bob} {
		if _, err := c.AcceptTerms(TermsVersion); err != nil {
			t.Fatal(err)
		}
	}
	return aliceHome, alice, bobHome, bob
}

// app is a Server on an httptest server, and an http.Client for it with
// a cookie jar.
type app struct {
	t    *testing.T
	s    *Server
	ts   *httptest.Server
	hc   *http.Client
	host string // 127.0.0.1:PORT
}

func newApp(t *testing.T, home string, o *Options) *app {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	var opts Options
	if o != nil {
		opts = *o
	}
	opts.Home = home
	opts.Addr = ts.Listener.Addr().String()
	if opts.Client == nil {
		opts.Client = &client.Options{KDF: testKDF}
	}
	s, err := New(&opts)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s
	ts.Start()
	t.Cleanup(func() { s.Close(); ts.Close() })
	jar, _ := cookiejar.New(nil)
	return &app{t: t, s: s, ts: ts, hc: &http.Client{Jar: jar}, host: opts.Addr}
}

// login follows the one-time URL, which sets the session cookie.
func (a *app) login() {
	a.t.Helper()
	resp, err := a.hc.Get(a.s.LoginURL())
	if err != nil {
		a.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("login: status %d", resp.StatusCode)
	}
}

// do makes a request as the page would: the app's own Origin on every
// non-GET request, unless hdr says otherwise ("" deletes a header).
func (a *app) do(method, path, body string, hdr map[string]string) (*http.Response, string) {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.ts.URL+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if method != http.MethodGet {
		req.Header.Set("Origin", a.s.Origin())
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (a *app) unlock(pass string) {
	a.t.Helper()
	resp, body := a.do("POST", "/api/unlock", `{"passphrase":`+quote(pass)+`}`, nil)
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("unlock: %d %s", resp.StatusCode, body)
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func errorOf(t *testing.T, body string) string {
	t.Helper()
	var e map[string]string
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not a JSON error: %q", body)
	}
	return e["error"]
}

func TestSecurityHeaders(t *testing.T) {
	home, _, _, _ := pair(t, relaytest.New(t, nil))
	a := newApp(t, home, nil)
	a.login()
	for _, p := range []string{"/", "/app.js", "/app.css", "/api/state", "/api/inbox", "/api/nothing", "/?t=used"} {
		resp, _ := a.do("GET", p, "", nil)
		h := resp.Header
		if got := h.Get("Content-Security-Policy"); got != contentSecurityPolicy {
			t.Errorf("%s: CSP %q", p, got)
		}
		for k, want := range map[string]string{
			"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
			"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", p, k, got, want)
			}
		}
	}
	if !strings.Contains(contentSecurityPolicy, "script-src 'self';") || strings.Contains(contentSecurityPolicy, "unsafe") {
		t.Errorf("CSP allows more than the app's own scripts: %s", contentSecurityPolicy)
	}
}

// A page on another site cannot call the API with the browser's cookie:
// a foreign Origin, a missing Origin on a state-changing request and a
// cross-site Sec-Fetch-Site are refused, and nothing is sent or locked.
func TestCrossSiteRefused(t *testing.T) {
	home, _, _, bob := pair(t, relaytest.New(t, nil))
	a := newApp(t, home, nil)
	a.login()
	a.unlock(alicePass)
	send := `{"to":"bob","text":"forged"}`
	for name, hdr := range map[string]map[string]string{
		"foreign origin":      {"Origin": "https://evil.example"},
		"null origin":         {"Origin": "null"},
		"other port":          {"Origin": "http://127.0.0.1:1"},
		"no origin":           {"Origin": ""},
		"cross-site fetch":    {"Sec-Fetch-Site": "cross-site"},
		"same-site not ours":  {"Sec-Fetch-Site": "same-site"},
		"https of our origin": {"Origin": strings.Replace(a.s.Origin(), "http:", "https:", 1)},
	} {
		t.Run(name, func(t *testing.T) {
			for _, req := range []struct{ method, path, body string }{
				{"POST", "/api/send", send},
				{"POST", "/api/lock", ""},
				{"POST", "/api/unlock", `{"passphrase":"x"}`},
			} {
				resp, body := a.do(req.method, req.path, req.body, hdr)
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("%s %s: status %d %s, want 403", req.method, req.path, resp.StatusCode, body)
				}
			}
		})
	}
	// Reading from another site is refused too.
	for _, hdr := range []map[string]string{{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}} {
		if resp, _ := a.do("GET", "/api/inbox", "", hdr); resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET /api/inbox with %v: status %d", hdr, resp.StatusCode)
		}
	}
	// A form post (no JSON) from the page's own origin is refused as well.
	if resp, _ := a.do("POST", "/api/send", "to=bob&text=x", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("form post: status %d", resp.StatusCode)
	}
	// Still unlocked, nothing sent; the page's own request works.
	if resp, body := a.do("GET", "/api/state", "", nil); !strings.Contains(body, `"locked":false`) {
		t.Fatalf("state after refused requests: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.do("POST", "/api/send", `{"to":"bob","text":"genuine"}`, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("same-origin send: %d %s", resp.StatusCode, body)
	}
	msgs, err := bob.Sync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Text != "genuine" {
		t.Fatalf("bob got %d messages (%v), want only the genuine one", len(msgs), msgs)
	}
}

// DNS rebinding: a name that resolves to 127.0.0.1 reaches the server
// with its own Host header, which is refused before anything else.
func TestWrongHostRefused(t *testing.T) {
	home, _, _, _ := pair(t, relaytest.New(t, nil))
	a := newApp(t, home, nil)
	_, port, _ := strings.Cut(a.host, ":")
	for _, host := range []string{"evil.example:" + port, "evil.example", "127.0.0.1:1", "localhost", "127.0.0.2:" + port} {
		for _, p := range []string{"/", "/api/state", strings.TrimPrefix(a.s.LoginURL(), a.s.Origin())} {
			resp, body := a.do("GET", p, "", map[string]string{"Host": host})
			if resp.StatusCode != http.StatusMisdirectedRequest {
				t.Errorf("Host %s, %s: status %d", host, p, resp.StatusCode)
			}
			if resp.Header.Get("Set-Cookie") != "" || strings.Contains(body, "<html") {
				t.Errorf("Host %s, %s: answered with content", host, p)
			}
		}
	}
	// The sign-in link was not spent by the refused requests.
	a.login()
	if resp, _ := a.do("GET", "/api/state", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("Host %s: status %d", a.host, resp.StatusCode)
	}
	// localhost with the port passes the Host check (the cookie, kept
	// for 127.0.0.1, is not sent there: a sign-in is needed).
	for _, host := range []string{"localhost:" + port, "LOCALHOST:" + port} {
		if resp, _ := a.do("GET", "/api/state", "", map[string]string{"Host": host}); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Host %s: status %d", host, resp.StatusCode)
		}
	}
}

func TestLoginURLOnce(t *testing.T) {
	home, _, _, _ := pair(t, relaytest.New(t, nil))
	a := newApp(t, home, nil)
	if resp, _ := a.do("GET", "/api/state", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("before sign-in: status %d", resp.StatusCode)
	}
	// A wrong token is refused.
	if resp, _ := a.do("GET", "/?t=AAAA", "", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("wrong token: status %d", resp.StatusCode)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(a.s.LoginURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("first use: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("%d cookies", len(cookies))
	}
	c := cookies[0]
	if c.Name != SessionCookieName || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || len(c.Value) < 43 {
		t.Fatalf("cookie %+v", c)
	}
	// The second use is refused and sets no cookie.
	resp, err = noRedirect.Get(a.s.LoginURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Fatalf("second use: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	// The cookie of the first use works; a made-up one does not.
	req, _ := http.NewRequest("GET", a.ts.URL+"/api/state", nil)
	req.AddCookie(c)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with the cookie: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest("GET", a.ts.URL+"/api/state", nil)
	req.AddCookie(&http.Cookie{Name: SessionCookieName, Value: strings.Repeat("A", 43)})
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("with a made-up cookie: %d", resp.StatusCode)
	}
}

// requestsFor are requests to every endpoint of apiRoutes that needs the
// unlocked client, so that a new endpoint is covered by the lock tests
// without anyone remembering to add it.
func contentRequests(t *testing.T) []struct{ method, path, body string } {
	t.Helper()
	var out []struct{ method, path, body string }
	for pattern, rt := range apiRoutes {
		if !rt.content {
			continue
		}
		method, path, _ := strings.Cut(pattern, " ")
		path = strings.ReplaceAll(path, "{id}", "0123456789abcdef")
		body := ""
		if method == "POST" {
			body = `{"to":"bob","text":"while locked"}`
			if path != "/api/send" {
				body = ""
			}
		}
		out = append(out, struct{ method, path, body string }{method, path, body})
	}
	if len(out) < 8 {
		t.Fatalf("only %d content endpoints", len(out))
	}
	return out
}

// While locked, every content endpoint answers 423 with a JSON error and
// nothing else, both before the first unlock and after a lock.
func TestLockedRefusesContent(t *testing.T) {
	home, _, _, bob := pair(t, relaytest.New(t, nil))
	a := newApp(t, home, nil)
	a.login()
	check := func(when string) {
		for _, req := range contentRequests(t) {
			resp, body := a.do(req.method, req.path, req.body, nil)
			if resp.StatusCode != http.StatusLocked {
				t.Errorf("%s: %s %s: status %d", when, req.method, req.path, resp.StatusCode)
				continue
			}
			var e map[string]any
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Errorf("%s: %s: body %q", when, req.path, body)
				continue
			}
			for k := range e {
				if k != "error" && k != "hint" {
					t.Errorf("%s: %s: locked answer has %q", when, req.path, k)
				}
			}
			if e["error"] != lockedSentence {
				t.Errorf("%s: %s: error %q", when, req.path, e["error"])
			}
		}
	}
	check("before unlock")
	a.unlock(alicePass)
	if resp, _ := a.do("GET", "/api/inbox", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("unlocked inbox: %d", resp.StatusCode)
	}
	if resp, body := a.do("POST", "/api/lock", "", nil); !strings.Contains(body, `"locked":true`) {
		t.Fatalf("lock: %d %s", resp.StatusCode, body)
	}
	check("after lock")
	if msgs, err := bob.Sync(context.Background()); err != nil || len(msgs) != 0 {
		t.Fatalf("bob got %d messages from a locked app (%v)", len(msgs), err)
	}
}

func TestUnlockWrongPassphrase(t *testing.T) {
	home, _, _, _ := pair(t, relaytest.New(t, nil))
	a := newApp(t, home, nil)
	a.login()
	resp, body := a.do("POST", "/api/unlock", `{"passphrase":"not it"}`, nil)
	if resp.StatusCode != http.StatusForbidden || errorOf(t, body) != "wrong passphrase for "+home {
		t.Fatalf("wrong passphrase: %d %s", resp.StatusCode, body)
	}
	if resp, _ := a.do("GET", "/api/inbox", "", nil); resp.StatusCode != http.StatusLocked {
		t.Fatalf("after a wrong passphrase: %d", resp.StatusCode)
	}
	a.unlock(alicePass)
	if resp, body := a.do("GET", "/api/whoami", "", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"name":"alice"`) {
		t.Fatalf("whoami: %d %s", resp.StatusCode, body)
	}
}

// The explanation the CLI passes is the one the API gives.
func TestExplainUsed(t *testing.T) {
	home, _, _, _ := pair(t, relaytest.New(t, nil))
	a := newApp(t, home, &Options{Explain: func(err error) (string, string) {
		if errors.Is(err, client.ErrWrongPassphrase) {
			return "the CLI's sentence", "its hint"
		}
		return err.Error(), ""
	}})
	a.login()
	_, body := a.do("POST", "/api/unlock", `{"passphrase":"not it"}`, nil)
	if body != `{"error":"the CLI's sentence","hint":"its hint"}`+"\n" {
		t.Fatalf("body %q", body)
	}
}

// With the passphrase given (POSTERN_PASSPHRASE), the first session
// starts unlocked; after a lock, the page must give it.
func TestPassphraseAtStart(t *testing.T) {
	home, _, _, _ := pair(t, relaytest.New(t, nil))
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()
	if resp, _ := a.do("GET", "/api/inbox", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("inbox: %d", resp.StatusCode)
	}
	a.do("POST", "/api/lock", "", nil)
	if resp, _ := a.do("GET", "/api/inbox", "", nil); resp.StatusCode != http.StatusLocked {
		t.Fatalf("inbox after lock: %d", resp.StatusCode)
	}
}

// The app locks itself after the idle timeout (a short one for the
// test) and every content endpoint refuses until unlocked again.
func TestIdleTimeoutLocks(t *testing.T) {
	home, _, _, _ := pair(t, relaytest.New(t, nil))
	a := newApp(t, home, &Options{IdleTimeout: 300 * time.Millisecond})
	a.login()
	a.unlock(alicePass)
	deadline := time.Now().Add(time.Minute) // a hang guard, not a timing assertion
	for {
		_, body := a.do("GET", "/api/state", "", nil)
		if strings.Contains(body, `"locked":true`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("never locked")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp, _ := a.do("GET", "/api/inbox", "", nil); resp.StatusCode != http.StatusLocked {
		t.Fatalf("inbox after idle lock: %d", resp.StatusCode)
	}
	a.unlock(alicePass)
	if resp, _ := a.do("GET", "/api/inbox", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("inbox after unlocking again: %d", resp.StatusCode)
	}
}

func TestTokenFileReadableByOthersRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no mode bits on Windows: the file's ACL is the home's")
	}
	home, _, _, _ := pair(t, relaytest.New(t, nil))
	path := filepath.Join(home, BearerTokenFileName)
	tok := strings.Repeat("x", 43)
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o606} {
		os.Remove(path)
		if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := New(&Options{Home: home, Addr: "127.0.0.1:1"})
		if !errors.Is(err, ErrTokenFileMode) || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(&Options{Home: home, Addr: "127.0.0.1:1"}); err != nil {
		t.Fatalf("mode 0600: %v", err)
	}
	// A token too short to be safe is refused.
	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(&Options{Home: home, Addr: "127.0.0.1:1"}); !errors.Is(err, ErrBadTokenFile) {
		t.Fatalf("short token: %v", err)
	}
}

func TestTokenFileCreatedPrivate(t *testing.T) {
	home, _, _, _ := pair(t, relaytest.New(t, nil))
	a := newApp(t, home, nil)
	path := filepath.Join(home, BearerTokenFileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if got := strings.TrimSpace(string(b)); got != string(a.s.auth.bearer) || len(got) != 43 {
		t.Fatalf("token file holds %d characters", len(got))
	}
	// A second start reads the same token.
	s2, err := New(&Options{Home: home, Addr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if string(s2.auth.bearer) != string(a.s.auth.bearer) {
		t.Fatal("a second start made a new token")
	}
}

// An integration calls the API with the bearer token, without a cookie or
// an Origin; a wrong token is refused even next to a valid cookie, and the
// token does not make a foreign page's request acceptable.
func TestBearerToken(t *testing.T) {
	home, _, _, bob := pair(t, relaytest.New(t, nil))
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login() // the jar holds a valid cookie from here on
	tok := string(a.s.auth.bearer)
	bearer := map[string]string{"Authorization": "Bearer " + tok, "Origin": ""}
	plain := &http.Client{}
	call := func(method, path, body string, hdr map[string]string) (int, string) {
		req, _ := http.NewRequest(method, a.ts.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range hdr {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := call("GET", "/api/whoami", "", bearer); st != http.StatusOK || !strings.Contains(body, `"alice"`) {
		t.Fatalf("bearer whoami: %d %s", st, body)
	}
	if st, body := call("POST", "/api/send", `{"to":"bob","text":"from the record system","subject":"Lab"}`, bearer); st != http.StatusOK {
		t.Fatalf("bearer send: %d %s", st, body)
	}
	msgs, err := bob.Sync(context.Background())
	if err != nil || len(msgs) != 1 || msgs[0].Subject != "Lab" {
		t.Fatalf("bob got %v (%v)", msgs, err)
	}
	for name, hdr := range map[string]map[string]string{
		"wrong token":      {"Authorization": "Bearer " + strings.Repeat("A", 43)},
		"not bearer":       {"Authorization": "Basic " + tok},
		"empty bearer":     {"Authorization": "Bearer "},
		"prefix of token":  {"Authorization": "Bearer " + tok[:40]},
		"token with extra": {"Authorization": "Bearer " + tok + "x"},
	} {
		if st, _ := call("GET", "/api/whoami", "", hdr); st != http.StatusUnauthorized {
			t.Errorf("%s: status %d", name, st)
		}
		// The cookie does not stand in for a bad token.
		if resp, _ := a.do("GET", "/api/whoami", "", hdr); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s with a valid cookie: status %d", name, resp.StatusCode)
		}
	}
	if st, _ := call("POST", "/api/send", `{"to":"bob","text":"x"}`, map[string]string{"Authorization": "Bearer " + tok, "Origin": "https://evil.example"}); st != http.StatusForbidden {
		t.Errorf("bearer from a foreign origin: status %d", st)
	}
	// The cookie alone, without the page's Origin, cannot change anything.
	if resp, _ := a.do("POST", "/api/send", `{"to":"bob","text":"x"}`, map[string]string{"Origin": ""}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cookie without Origin: status %d", resp.StatusCode)
	}
}

// API errors are the CLI's sentences as JSON; a message sent from the API
// reaches the contact; a message from the contact is pushed on the event
// stream.
func TestSendReadAndEvents(t *testing.T) {
	r := relaytest.New(t, nil)
	home, alice, _, bob := pair(t, r)
	alice.Close() // the app opens the home itself
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()
	if resp, body := a.do("POST", "/api/send", `{"to":"nobody","text":"x"}`, nil); resp.StatusCode != http.StatusNotFound || errorOf(t, body) != "unknown contact" {
		t.Fatalf("unknown contact: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.do("GET", "/api/messages/ffffffffffffffff", "", nil); resp.StatusCode != http.StatusNotFound || errorOf(t, body) != "no such message" {
		t.Fatalf("no message: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.do("POST", "/api/send", `{"to":"bob","text":"x","extra":1}`, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown field: %d %s", resp.StatusCode, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang guard
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.ts.URL+"/api/events", nil)
	resp, err := a.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	sent, err := bob.SendWith(ctx, "alice", "results are in", &client.SendOptions{Subject: "Results"})
	if err != nil {
		t.Fatal(err)
	}
	var got messageJSON
	for event := ""; sc.Scan(); {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			event = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok && event == "message" {
			if err := json.Unmarshal([]byte(v), &got); err != nil {
				t.Fatal(err)
			}
			if got.ID == sent.ID {
				break
			}
		}
	}
	if got.ID != sent.ID || got.Text != "results are in" || got.Subject != "Results" || got.From != "bob" || !got.Unread {
		t.Fatalf("event %+v (%v)", got, sc.Err())
	}
	// Reading it marks it read; the inbox lists it newest first.
	if resp, body := a.do("GET", "/api/messages/"+sent.ID, "", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "results are in") {
		t.Fatalf("message: %d %s", resp.StatusCode, body)
	}
	_, body := a.do("GET", "/api/inbox", "", nil)
	var inbox []messageJSON
	if err := json.Unmarshal([]byte(body), &inbox); err != nil || len(inbox) == 0 || inbox[0].ID != sent.ID || inbox[0].Unread {
		t.Fatalf("inbox %s (%v)", body, err)
	}
	// Locking ends the stream with a "locked" event.
	a.do("POST", "/api/lock", "", nil)
	var last string
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			last = v
		}
	}
	if last != "locked" {
		t.Fatalf("last event %q", last)
	}
}

// A message to a contact whose relay is down is kept and queued: 202 with
// the CLI's sentence, and the message marked queued.
func TestSendQueued(t *testing.T) {
	r := relaytest.New(t, nil)
	home, alice, _, _ := pair(t, r)
	alice.Close()
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()
	r.Stop()
	resp, body := a.do("POST", "/api/send", `{"to":"bob","text":"while the relay is down"}`, nil)
	var got sendResponse
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusAccepted || !strings.HasPrefix(got.Queued, "queued: ") || !strings.HasSuffix(got.Queued, " is unreachable; it will be sent when it is back") || !got.Message.Queued {
		t.Fatalf("send with the relay down: %d %s", resp.StatusCode, body)
	}
}

// The inbox in pages: ?limit=N gives the N newest, ?before=ID the ones
// older than ID.
func TestInboxPages(t *testing.T) {
	home, alice, _, _ := pair(t, relaytest.New(t, nil))
	var ids []string
	for i := range 5 {
		m, err := alice.Send(context.Background(), "bob", "message "+string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()
	page := func(q string) []string {
		t.Helper()
		resp, body := a.do("GET", "/api/inbox"+q, "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", q, resp.StatusCode, body)
		}
		var ms []messageJSON
		if err := json.Unmarshal([]byte(body), &ms); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	eq := func(got []string, want ...string) {
		t.Helper()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	eq(page(""), ids[4], ids[3], ids[2], ids[1], ids[0])
	eq(page("?limit=2"), ids[4], ids[3])
	eq(page("?limit=2&before="+ids[3]), ids[2], ids[1])
	eq(page("?limit=2&before="+ids[1]), ids[0])
	eq(page("?before=" + ids[0]))
	for _, q := range []string{"?limit=0", "?limit=x", "?before=ffffffffffffffff"} {
		if resp, _ := a.do("GET", "/api/inbox"+q, "", nil); resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d", q, resp.StatusCode)
		}
	}
}

// Unlocks that race each other leave one client open, and one lock closes
// it: nothing stays unlocked behind the page's back.
func TestConcurrentUnlock(t *testing.T) {
	home, alice, _, _ := pair(t, relaytest.New(t, nil))
	alice.Close()
	a := newApp(t, home, nil)
	a.login()
	done := make(chan int)
	for range 4 {
		go func() {
			req, _ := http.NewRequest("POST", a.ts.URL+"/api/unlock", strings.NewReader(`{"passphrase":`+quote(alicePass)+`}`))
			req.Header.Set("Origin", a.s.Origin())
			req.Header.Set("Content-Type", "application/json")
			resp, err := a.hc.Do(req)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
	}
	for range 4 {
		if st := <-done; st != http.StatusOK {
			t.Errorf("unlock: %d", st)
		}
	}
	a.do("POST", "/api/lock", "", nil)
	if resp, _ := a.do("GET", "/api/inbox", "", nil); resp.StatusCode != http.StatusLocked {
		t.Fatalf("after one lock: %d", resp.StatusCode)
	}
}
