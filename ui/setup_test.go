package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postern/postern/client"
	"github.com/postern/postern/relay/relaytest"
)

const newPass = "a new passphrase of four words"

// createBody is a POST /api/setup/create body.
func createBody(name, relay, pass, repeat, terms string) string {
	b, _ := json.Marshal(map[string]string{"name": name, "relay": relay, "passphrase": pass, "repeat": repeat, "accept_terms": terms})
	return string(b)
}

// noKeyFile fails if home holds a key file or the API token file.
func noKeyFile(t *testing.T, home, when string) {
	t.Helper()
	for _, name := range []string{client.KeyFileName, client.StoreFileName, BearerTokenFileName} {
		if _, err := os.Stat(filepath.Join(home, name)); !os.IsNotExist(err) {
			t.Fatalf("%s: %s in the home (%v)", when, name, err)
		}
	}
}

type termsAPI struct {
	Version    string          `json:"version"`
	Title      string          `json:"title"`
	Sections   []termsSection  `json:"sections"`
	Acceptance *acceptanceJSON `json:"acceptance"`
}

// The first run through the API on an empty home: setup mode refuses
// content (409) and integrations (no token yet); a setup without the
// terms accepted, with a short or common passphrase or two different
// ones, creates nothing; a good one creates the identity, records the
// terms with version and time, makes the token file and leaves the app
// unlocked; from then on every setup endpoint refuses (409), a second
// tab's at the same moment too, and the home is not touched. The
// acceptance survives a restart.
func TestSetupCreate(t *testing.T) {
	r := relaytest.New(t, nil)
	home := filepath.Join(t.TempDir(), "new")
	a := newApp(t, home, &Options{Passphrase: []byte("ignored in setup mode")})
	a.login()
	resp, body := a.do("GET", "/api/state", "", nil)
	if st := decode[stateJSON](t, "state", resp, body, http.StatusOK); !st.Setup || !st.Locked {
		t.Fatalf("state on an empty home: %s", body)
	}
	resp, body = a.do("GET", "/api/setup", "", nil)
	if st := decode[setupJSON](t, "setup", resp, body, http.StatusOK); !st.Setup || st.MinPassphrase != DefaultMinPassphrase || st.TermsVersion != TermsVersion {
		t.Fatalf("setup: %s", body)
	}
	for _, req := range contentRequests(t) {
		resp, body := a.do(req.method, req.path, req.body, nil)
		if resp.StatusCode != http.StatusConflict || errorOf(t, body) != "Postern is not set up on this computer yet" {
			t.Errorf("setup mode: %s %s: %d %s", req.method, req.path, resp.StatusCode, body)
		}
	}
	if resp, body := a.do("GET", "/api/inbox", "", map[string]string{"Authorization": "Bearer "}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an empty bearer token in setup mode: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.do("POST", "/api/terms/accept", `{"version":"`+TermsVersion+`"}`, nil); resp.StatusCode != http.StatusConflict {
		t.Fatalf("terms accepted without an identity: %d %s", resp.StatusCode, body)
	}

	for _, tc := range []struct{ what, body, want string }{
		{"terms not accepted", createBody("alice", r.URL, newPass, newPass, ""), "the terms of use of version " + TermsVersion + " must be accepted first"},
		{"an older terms version", createBody("alice", r.URL, newPass, newPass, "2001-01-01"), "the terms of use of version " + TermsVersion + " must be accepted first"},
		{"a short passphrase", createBody("alice", r.URL, "short", "short", TermsVersion), "the passphrase is too short: 5 characters, at least 12 are needed"},
		{"an empty passphrase", createBody("alice", r.URL, "", "", TermsVersion), "the passphrase must not be empty"},
		{"two passphrases", createBody("alice", r.URL, newPass, newPass+"!", TermsVersion), "the passphrases do not match"},
		{"no name", createBody("", r.URL, newPass, newPass, TermsVersion), "a name and a relay URL are needed"},
		{"no relay", createBody("alice", "", newPass, newPass, TermsVersion), "a name and a relay URL are needed"},
		{"an insecure relay", createBody("alice", "ws://relay.example/", newPass, newPass, TermsVersion), "relay URL must be wss:// (ws:// only for loopback hosts)"},
	} {
		resp, body := a.do("POST", "/api/setup/create", tc.body, nil)
		if resp.StatusCode != http.StatusBadRequest || errorOf(t, body) != tc.want {
			t.Errorf("%s: %d %s, want 400 %q", tc.what, resp.StatusCode, body, tc.want)
		}
		noKeyFile(t, home, tc.what)
	}

	// Two tabs at once: one identity is made, the other is refused.
	before := time.Now().Add(-time.Second)
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for _, name := range []string{"alice", "mallory"} {
		wg.Go(func() {
			resp, body := a.do("POST", "/api/setup/create", createBody(name, r.URL, newPass, newPass, TermsVersion), nil)
			switch {
			case resp.StatusCode == http.StatusOK:
				ok.Add(1)
			case resp.StatusCode == http.StatusConflict && (errorOf(t, body) == home+" already holds a Postern identity" ||
				errorOf(t, body) == "Postern is being set up on this computer already"):
				refused.Add(1)
			default:
				t.Errorf("setup from two tabs: %d %s", resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || refused.Load() != 1 {
		t.Fatalf("two setups at once: %d made, %d refused", ok.Load(), refused.Load())
	}
	resp, body = a.do("GET", "/api/state", "", nil)
	if st := decode[stateJSON](t, "state", resp, body, http.StatusOK); st.Setup || st.Locked || st.TermsNeeded {
		t.Fatalf("state after setup: %s", body)
	}
	resp, body = a.do("GET", "/api/whoami", "", nil)
	me := decode[whoamiJSON](t, "whoami", resp, body, http.StatusOK)
	resp, body = a.do("GET", "/api/terms", "", nil)
	tm := decode[termsAPI](t, "terms", resp, body, http.StatusOK)
	if tm.Acceptance == nil || tm.Acceptance.Version != TermsVersion || !tm.Acceptance.Current ||
		tm.Acceptance.Accepted.Before(before) || tm.Acceptance.Accepted.After(time.Now()) || tm.Acceptance.Withdrawn != nil {
		t.Fatalf("terms after setup: %s", body)
	}
	if fi, err := os.Stat(filepath.Join(home, BearerTokenFileName)); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("the API token file after setup: %v %v", fi, err)
	}
	tok, _ := os.ReadFile(filepath.Join(home, BearerTokenFileName))
	if resp, body := a.do("GET", "/api/whoami", "", map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(tok))}); resp.StatusCode != http.StatusOK {
		t.Fatalf("the integration after setup: %d %s", resp.StatusCode, body)
	}

	// Set up: every setup endpoint refuses, and the home stays as it is.
	key, _ := os.ReadFile(filepath.Join(home, client.KeyFileName))
	for _, req := range []struct{ path, body, ctype string }{
		{"/api/setup/create", createBody("mallory", r.URL, newPass, newPass, TermsVersion), ""},
		{"/api/setup/link", `{"code":"postern-link:x","device_name":"PC","passphrase":"` + newPass + `","repeat":"` + newPass + `","accept_terms":"` + TermsVersion + `"}`, ""},
		{"/api/setup/restore", `{"recovery_key":"x","device_name":"PC","passphrase":"` + newPass + `","repeat":"` + newPass + `","accept_terms":"` + TermsVersion + `"}`, ""},
		{"/api/setup/backup", "not a backup", "application/octet-stream"},
	} {
		var hdr map[string]string
		if req.ctype != "" {
			hdr = map[string]string{"Content-Type": req.ctype}
		}
		resp, body := a.do("POST", req.path, req.body, hdr)
		if resp.StatusCode != http.StatusConflict || errorOf(t, body) != home+" already holds a Postern identity" {
			t.Errorf("%s once set up: %d %s", req.path, resp.StatusCode, body)
		}
	}
	if again, _ := os.ReadFile(filepath.Join(home, client.KeyFileName)); !bytes.Equal(again, key) {
		t.Fatal("a refused setup changed the key file")
	}
	resp, body = a.do("GET", "/api/whoami", "", nil)
	if again := decode[whoamiJSON](t, "whoami", resp, body, http.StatusOK); again != me {
		t.Fatalf("whoami changed: %+v, was %+v", again, me)
	}

	// A restart: the acceptance is in the store.
	a.s.Close()
	b := newApp(t, home, nil)
	b.login()
	b.unlock(newPass)
	resp, body = b.do("GET", "/api/state", "", nil)
	if st := decode[stateJSON](t, "state", resp, body, http.StatusOK); st.TermsNeeded || st.Locked {
		t.Fatalf("state after a restart: %s", body)
	}
	resp, body = b.do("GET", "/api/terms", "", nil)
	if again := decode[termsAPI](t, "terms", resp, body, http.StatusOK); again.Acceptance == nil || !again.Acceptance.Accepted.Equal(tm.Acceptance.Accepted) {
		t.Fatalf("terms after a restart: %s", body)
	}
}

// Declining the terms: the page makes no request, and a setup that did
// not accept them is refused before anything is made (and before any
// connection): no home, no key file, no token file.
func TestSetupDeclinedCreatesNothing(t *testing.T) {
	r := relaytest.New(t, nil)
	home := filepath.Join(t.TempDir(), "declined")
	a := newApp(t, home, nil)
	a.login()
	resp, body := a.do("GET", "/api/terms", "", nil)
	tm := decode[termsAPI](t, "terms", resp, body, http.StatusOK)
	if tm.Version != TermsVersion || tm.Title == "" || len(tm.Sections) < 5 || tm.Acceptance != nil {
		t.Fatalf("terms in setup mode: %s", body)
	}
	for _, path := range []string{"/api/setup/create", "/api/setup/link", "/api/setup/restore"} {
		b := `{"name":"alice","relay":"` + r.URL + `","passphrase":"` + newPass + `","repeat":"` + newPass + `","accept_terms":""}`
		if path != "/api/setup/create" {
			b = `{"code":"postern-link:x","device_name":"PC","passphrase":"` + newPass + `","repeat":"` + newPass + `","accept_terms":""}`
			if path == "/api/setup/restore" {
				b = strings.Replace(b, `"code":"postern-link:x"`, `"recovery_key":"x"`, 1)
			}
		}
		resp, body := a.do("POST", path, b, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(errorOf(t, body), "must be accepted first") {
			t.Errorf("%s without the terms: %d %s", path, resp.StatusCode, body)
		}
	}
	// A backup uploaded and not restored: removed when the app stops.
	resp, body = a.do("POST", "/api/setup/backup", "some bytes", map[string]string{"Content-Type": "application/octet-stream"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	a.s.setup.mu.Lock()
	tmp := a.s.setup.backup
	a.s.setup.mu.Unlock()
	a.s.Close()
	if _, err := os.Stat(tmp); tmp == "" || !os.IsNotExist(err) {
		t.Fatalf("the uploaded file %q after Close: %v", tmp, err)
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Fatalf("declining left the home behind: %v", err)
	}
}

// Withdrawing the terms: the app locks at once (the keys leave memory,
// receiving stops, the listen lock is let go); unlocked again, it does
// not receive and every content endpoint answers 451 with the sentence,
// until the terms of this version are accepted again (an older version
// is refused). A home whose acceptance is of an older version is asked
// again the same way.
func TestTermsWithdrawn(t *testing.T) {
	home, alice, _, _ := pair(t, relaytest.New(t, nil))
	if _, err := alice.AcceptTerms("2001-01-01"); err != nil { // an older text
		t.Fatal(err)
	}
	alice.Close()
	var held atomic.Int32
	recv := func() (func(), error) {
		if held.Add(1) != 1 {
			t.Error("the receive lock taken twice")
		}
		return func() { held.Add(-1) }, nil
	}
	a := newApp(t, home, &Options{ReceiveLock: recv})
	a.login()
	checkRefused := func(when string) {
		t.Helper()
		resp, body := a.do("GET", "/api/state", "", nil)
		if st := decode[stateJSON](t, "state", resp, body, http.StatusOK); !st.TermsNeeded || st.Locked {
			t.Fatalf("%s: state %s", when, body)
		}
		if held.Load() != 0 {
			t.Fatalf("%s: receiving", when)
		}
		for _, req := range contentRequests(t) {
			resp, body := a.do(req.method, req.path, req.body, nil)
			if resp.StatusCode != http.StatusUnavailableForLegalReasons ||
				errorOf(t, body) != "the terms of use of version "+TermsVersion+" are not accepted on this computer" {
				t.Errorf("%s: %s %s: %d %s", when, req.method, req.path, resp.StatusCode, body)
			}
		}
	}
	a.unlock(alicePass)
	checkRefused("accepted an older version")
	if resp, body := a.do("POST", "/api/terms/accept", `{"version":"2001-01-01"}`, nil); resp.StatusCode != http.StatusConflict {
		t.Fatalf("accepting an older version: %d %s", resp.StatusCode, body)
	}
	resp, body := a.do("POST", "/api/terms/accept", `{"version":"`+TermsVersion+`"}`, nil)
	if resp.StatusCode != http.StatusOK || held.Load() != 1 {
		t.Fatalf("accept: %d %s, receiving %d", resp.StatusCode, body, held.Load())
	}
	if resp, body := a.do("GET", "/api/inbox", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("inbox after accepting: %d %s", resp.StatusCode, body)
	}

	resp, body = a.do("POST", "/api/terms/withdraw", "", nil)
	out := decode[struct {
		State      stateJSON       `json:"state"`
		Acceptance *acceptanceJSON `json:"acceptance"`
	}](t, "withdraw", resp, body, http.StatusOK)
	if !out.State.Locked || out.Acceptance == nil || out.Acceptance.Withdrawn == nil || out.Acceptance.Current || held.Load() != 0 {
		t.Fatalf("withdrawn: %s, receiving %d", body, held.Load())
	}
	if resp, _ := a.do("GET", "/api/inbox", "", nil); resp.StatusCode != http.StatusLocked {
		t.Fatalf("inbox after withdrawing: %d", resp.StatusCode)
	}
	a.unlock(alicePass)
	checkRefused("withdrawn")
	// And after a restart too.
	a.s.Close()
	b := newApp(t, home, &Options{ReceiveLock: recv})
	a = b
	a.login()
	a.unlock(alicePass)
	checkRefused("withdrawn, after a restart")
	if resp, body := a.do("POST", "/api/terms/accept", `{"version":"`+TermsVersion+`"}`, nil); resp.StatusCode != http.StatusOK || held.Load() != 1 {
		t.Fatalf("accept again: %d %s", resp.StatusCode, body)
	}
	resp, body = a.do("GET", "/api/terms", "", nil)
	if tm := decode[termsAPI](t, "terms", resp, body, http.StatusOK); tm.Acceptance == nil || !tm.Acceptance.Current || tm.Acceptance.Withdrawn != nil {
		t.Fatalf("terms accepted again: %s", body)
	}
}

// Restoring a backup made by a Go client: the file is uploaded (a size
// over the limit is refused and nothing kept), a wrong recovery key
// restores nothing, the right one makes this home a device of the person
// with their contacts, unlocked with the terms accepted.
func TestSetupRestore(t *testing.T) {
	r := relaytest.New(t, nil)
	_, alice, _, bob := pair(t, r)
	file := filepath.Join(t.TempDir(), "alice.backup")
	key, err := alice.Backup(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := bob.Backup(context.Background(), filepath.Join(t.TempDir(), "bob.backup")) // a key, but another's
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(t.TempDir(), "restored")
	a := newApp(t, home, &Options{MaxBackupSize: int64(len(data))})
	a.login()
	upload := map[string]string{"Content-Type": "application/octet-stream"}
	if resp, body := a.do("POST", "/api/setup/backup", string(data)+"x", upload); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a backup over the limit: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.do("POST", "/api/setup/backup", string(data), nil); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("a backup sent as JSON: %d %s", resp.StatusCode, body)
	}
	restore := func(key string) (*http.Response, string) {
		b, _ := json.Marshal(map[string]string{"recovery_key": key, "device_name": "WARD-PC", "passphrase": newPass, "repeat": newPass, "accept_terms": TermsVersion})
		return a.do("POST", "/api/setup/restore", string(b), nil)
	}
	if resp, body := restore(key); resp.StatusCode != http.StatusBadRequest || !strings.Contains(errorOf(t, body), "no backup file was uploaded") {
		t.Fatalf("a restore before the upload: %d %s", resp.StatusCode, body)
	}
	resp, body := a.do("POST", "/api/setup/backup", string(data), upload)
	if up := decode[map[string]int64](t, "upload", resp, body, http.StatusOK); up["size"] != int64(len(data)) {
		t.Fatalf("upload: %s", body)
	}
	if resp, body := restore(wrong); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("a wrong recovery key: %d %s", resp.StatusCode, body)
	}
	noKeyFile(t, home, "a wrong recovery key")
	a.s.setup.mu.Lock()
	tmp := a.s.setup.backup // kept for the next try
	a.s.setup.mu.Unlock()
	if fi, err := os.Stat(tmp); err != nil || fi.Size() != int64(len(data)) || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) ||
		strings.HasPrefix(tmp, home) {
		t.Fatalf("the uploaded backup %s: %v %v", tmp, fi, err)
	}
	resp, body = restore(key)
	out := decode[struct {
		State    stateJSON      `json:"state"`
		Restored map[string]int `json:"restored"`
	}](t, "restore", resp, body, http.StatusOK)
	if out.State.Locked || out.State.TermsNeeded || out.Restored["contacts"] != 1 {
		t.Fatalf("restored: %s", body)
	}
	resp, body = a.do("GET", "/api/whoami", "", nil)
	if me := decode[whoamiJSON](t, "whoami", resp, body, http.StatusOK); me.Name != "alice" || me.Identity != alice.Whoami().Identity.String() {
		t.Fatalf("whoami after the restore: %s", body)
	}
	resp, body = a.do("GET", "/api/contacts", "", nil)
	if cs := decode[[]contactJSON](t, "contacts", resp, body, http.StatusOK); len(cs) != 1 || cs[0].Name != "bob" {
		t.Fatalf("contacts after the restore: %s", body)
	}
	if left := a.s.setup.takeBackup(); left != "" {
		t.Fatalf("the uploaded backup %s was kept", left)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("the uploaded backup %s is still on disk: %v", tmp, err)
	}
}

// Linking this computer to a person's other device: the code that the Go
// client shows (as 'postern device link' prints it), pasted with its line
// break, links the home over the relay; the app is unlocked as a device
// of that person.
func TestSetupLink(t *testing.T) {
	r := relaytest.New(t, nil)
	_, alice, _, _ := pair(t, r)
	home := filepath.Join(t.TempDir(), "linked")
	a := newApp(t, home, nil)
	a.login()
	// A code that does not parse.
	b, _ := json.Marshal(map[string]string{"code": "postern-link:nonsense", "device_name": "WARD-PC", "passphrase": newPass, "repeat": newPass, "accept_terms": TermsVersion})
	if resp, body := a.do("POST", "/api/setup/link", string(b), nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a bad code: %d %s", resp.StatusCode, body)
	}
	noKeyFile(t, home, "a bad link code")

	codes := make(chan string, 1)
	linked := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang guard
	defer cancel()
	go func() {
		_, err := alice.LinkDevice(ctx, &client.LinkOptions{Show: func(code string) { codes <- code }})
		linked <- err
	}()
	var code string
	select {
	case code = <-codes:
	case err := <-linked:
		t.Fatalf("LinkDevice: %v", err)
	}
	b, _ = json.Marshal(map[string]string{"code": code[:20] + "\n" + code[20:] + "\n", "device_name": "WARD-PC", "passphrase": newPass, "repeat": newPass, "accept_terms": TermsVersion})
	resp, body := a.do("POST", "/api/setup/link", string(b), nil)
	out := decode[struct {
		State stateJSON `json:"state"`
	}](t, "link", resp, body, http.StatusOK)
	if out.State.Locked || out.State.TermsNeeded {
		t.Fatalf("linked: %s", body)
	}
	if err := <-linked; err != nil {
		t.Fatalf("LinkDevice: %v", err)
	}
	resp, body = a.do("GET", "/api/whoami", "", nil)
	if me := decode[whoamiJSON](t, "whoami", resp, body, http.StatusOK); me.Name != "alice" || me.Identity != alice.Whoami().Identity.String() || me.Device == alice.Whoami().Device.String() {
		t.Fatalf("whoami after linking: %s", body)
	}
	resp, body = a.do("GET", "/api/devices", "", nil)
	if ds := decode[[]deviceJSON](t, "devices", resp, body, http.StatusOK); len(ds) != 2 {
		t.Fatalf("devices after linking: %s", body)
	}
}

// A home that gets its identity elsewhere (postern init) while the app
// waits in the first run: the setup endpoints refuse, and unlocking with
// its passphrase works and makes the API token file for integrations.
func TestSetupDoneElsewhere(t *testing.T) {
	r := relaytest.New(t, nil)
	home := filepath.Join(t.TempDir(), "elsewhere")
	a := newApp(t, home, nil)
	a.login()
	cl, err := client.Init(context.Background(), home, []byte(newPass), r.URL, "ana", &client.Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if resp, body := a.do("POST", "/api/setup/create", createBody("mallory", r.URL, newPass, newPass, TermsVersion), nil); resp.StatusCode != http.StatusConflict {
		t.Fatalf("create over a home made elsewhere: %d %s", resp.StatusCode, body)
	}
	a.unlock(newPass)
	tok, err := os.ReadFile(filepath.Join(home, BearerTokenFileName))
	if err != nil {
		t.Fatal(err)
	}
	// Made by postern init: the terms are asked on the page first.
	if resp, body := a.do("GET", "/api/whoami", "", map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(tok))}); resp.StatusCode != http.StatusUnavailableForLegalReasons {
		t.Fatalf("the integration: %d %s", resp.StatusCode, body)
	}
}
