package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/client"
	"github.com/postern/postern/relay/relaytest"
)

// decode unmarshals an answer that must have status want.
func decode[T any](t *testing.T, what string, resp *http.Response, body string, want int) T {
	t.Helper()
	var v T
	if resp.StatusCode != want {
		t.Fatalf("%s: status %d, want %d: %s", what, resp.StatusCode, want, body)
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%s: %v: %s", what, err, body)
	}
	return v
}

// Folders through the API: create one, move a message into it, the folder
// lists it with its count, rename it, refuse a taken name, a system
// folder's rename and an unknown folder, delete it: the message is back
// in the Inbox.
func TestFoldersAPI(t *testing.T) {
	home, alice, _, bob := pair(t, relaytest.New(t, nil))
	bg := context.Background()
	m, err := bob.SendWith(bg, "alice", "Discharge letter for bed 2.", &client.SendOptions{Subject: "Discharge"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(bg); err != nil {
		t.Fatal(err)
	}
	alice.Close()
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()

	resp, body := a.do("POST", "/api/folders", `{"name":"Ward 4"}`, nil)
	f := decode[folderJSON](t, "create", resp, body, http.StatusCreated)
	if f.Name != "Ward 4" || len(f.ID) != 32 || f.System || f.Created == nil {
		t.Fatalf("created %+v", f)
	}
	resp, body = a.do("POST", "/api/messages/"+m.ID+"/move", `{"folder":"`+f.ID+`"}`, nil)
	if moved := decode[messageJSON](t, "move", resp, body, http.StatusOK); moved.Folder != f.ID {
		t.Fatalf("moved message in %q", moved.Folder)
	}
	resp, body = a.do("GET", "/api/inbox?folder="+f.ID, "", nil)
	if in := decode[[]messageJSON](t, "folder's messages", resp, body, http.StatusOK); len(in) != 1 || in[0].ID != m.ID {
		t.Fatalf("folder lists %s", body)
	}
	resp, body = a.do("GET", "/api/inbox?folder=inbox", "", nil)
	if in := decode[[]messageJSON](t, "inbox", resp, body, http.StatusOK); len(in) != 0 {
		t.Fatalf("inbox still lists %s", body)
	}
	resp, body = a.do("GET", "/api/folders", "", nil)
	fs := decode[[]folderJSON](t, "folders", resp, body, http.StatusOK)
	var names []string
	for _, x := range fs {
		names = append(names, x.Name)
		if x.ID == f.ID && (x.Messages != 1 || x.Unread != 1) {
			t.Fatalf("folder counts %+v", x)
		}
	}
	if strings.Join(names, ",") != "Inbox,Sent,Drafts,Archive,Ward 4" {
		t.Fatalf("folders %v", names)
	}

	resp, body = a.do("PATCH", "/api/folders/"+f.ID, `{"name":"Ward 5"}`, nil)
	if fs := decode[[]folderJSON](t, "rename", resp, body, http.StatusOK); fs[len(fs)-1].Name != "Ward 5" {
		t.Fatalf("after rename %s", body)
	}
	a.do("POST", "/api/folders", `{"name":"Ward 6"}`, nil)
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"PATCH", "/api/folders/" + f.ID, `{"name":"ward 6"}`, http.StatusConflict},
		{"PATCH", "/api/folders/inbox", `{"name":"Mine"}`, http.StatusBadRequest},
		{"POST", "/api/folders", `{"name":"Inbox"}`, http.StatusBadRequest},
		{"POST", "/api/folders", `{"name":""}`, http.StatusBadRequest},
		{"DELETE", "/api/folders/" + strings.Repeat("0", 32), "", http.StatusNotFound},
		{"POST", "/api/messages/" + m.ID + "/move", `{"folder":"drafts"}`, http.StatusBadRequest},
		{"POST", "/api/messages/" + m.ID + "/move", `{"folder":"` + strings.Repeat("1", 32) + `"}`, http.StatusNotFound},
		{"POST", "/api/messages/ffffffffffffffff/move", `{"folder":"archive"}`, http.StatusNotFound},
		{"GET", "/api/inbox?folder=" + strings.Repeat("4", 32), "", http.StatusNotFound},
		{"PATCH", "/api/folders/" + f.ID, `{"name":"x"}`, http.StatusForbidden}, // no Origin: see below
	} {
		hdr := map[string]string(nil)
		if c.status == http.StatusForbidden {
			hdr = map[string]string{"Origin": ""}
		}
		resp, body := a.do(c.method, c.path, c.body, hdr)
		if resp.StatusCode != c.status || errorOf(t, body) == "" {
			t.Errorf("%s %s %s: %d %s, want %d", c.method, c.path, c.body, resp.StatusCode, body, c.status)
		}
	}
	if resp, body := a.do("DELETE", "/api/folders/"+f.ID, "", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	resp, body = a.do("GET", "/api/inbox?folder=inbox", "", nil)
	if in := decode[[]messageJSON](t, "inbox after delete", resp, body, http.StatusOK); len(in) != 1 || in[0].ID != m.ID {
		t.Fatalf("inbox after the folder was deleted: %s", body)
	}
}

// A thread: a message and the reply to it, oldest first.
func TestThreadAPI(t *testing.T) {
	home, alice, _, bob := pair(t, relaytest.New(t, nil))
	bg := context.Background()
	first, err := bob.SendWith(bg, "alice", "Can you see bed 7?", &client.SendOptions{Subject: "Bed 7"})
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
	other, err := alice.SendWith(bg, "bob", "Unrelated.", &client.SendOptions{Subject: "Rota"})
	if err != nil {
		t.Fatal(err)
	}
	alice.Close()
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()
	resp, body := a.do("GET", "/api/thread/"+reply.ID, "", nil)
	th := decode[[]messageJSON](t, "thread", resp, body, http.StatusOK)
	if len(th) != 2 || th[0].ID != first.ID || th[1].ID != reply.ID {
		t.Fatalf("thread %s", body)
	}
	resp, body = a.do("GET", "/api/thread/"+other.ID, "", nil)
	if th := decode[[]messageJSON](t, "thread of one", resp, body, http.StatusOK); len(th) != 1 {
		t.Fatalf("thread of one %s", body)
	}
	if resp, _ := a.do("GET", "/api/thread/ffffffffffffffff", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown thread: %d", resp.StatusCode)
	}
}

// Drafts: saved new, saved again under its id, listed, read, an
// incomplete one refused when sent, sent (the contact gets it and the
// draft is gone), deleted.
func TestDraftsAPI(t *testing.T) {
	home, alice, _, bob := pair(t, relaytest.New(t, nil))
	alice.Close()
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()
	resp, body := a.do("POST", "/api/drafts", `{"to":"bob","subject":"Rota","text":"Half"}`, nil)
	d := decode[draftJSON](t, "save", resp, body, http.StatusOK)
	if len(d.ID) != 32 || d.To != "bob" || d.Text != "Half" {
		t.Fatalf("saved %s", body)
	}
	resp, body = a.do("POST", "/api/drafts", `{"id":"`+d.ID+`","to":"bob","subject":"Rota","text":"Half of it written"}`, nil)
	if d2 := decode[draftJSON](t, "save again", resp, body, http.StatusOK); d2.ID != d.ID || d2.Text != "Half of it written" {
		t.Fatalf("saved again %s", body)
	}
	resp, body = a.do("POST", "/api/drafts", `{"text":"no recipient yet"}`, nil)
	bare := decode[draftJSON](t, "save without to", resp, body, http.StatusOK)
	resp, body = a.do("GET", "/api/drafts", "", nil)
	if ds := decode[[]draftJSON](t, "drafts", resp, body, http.StatusOK); len(ds) != 2 || ds[0].ID != bare.ID || ds[1].ID != d.ID {
		t.Fatalf("drafts %s", body)
	}
	resp, body = a.do("GET", "/api/drafts/"+d.ID, "", nil)
	if got := decode[draftJSON](t, "draft", resp, body, http.StatusOK); got.Text != "Half of it written" || got.Subject != "Rota" {
		t.Fatalf("draft %s", body)
	}
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/api/drafts/" + bare.ID + "/send", "", http.StatusBadRequest},
		{"POST", "/api/drafts", `{"id":"` + strings.Repeat("2", 32) + `","text":"x"}`, http.StatusNotFound},
		{"POST", "/api/drafts", `{"to":"nobody","text":"x"}`, http.StatusNotFound},
		{"GET", "/api/drafts/zz", "", http.StatusNotFound},
		{"DELETE", "/api/drafts/" + strings.Repeat("3", 32), "", http.StatusNotFound},
	} {
		if resp, body := a.do(c.method, c.path, c.body, nil); resp.StatusCode != c.status {
			t.Errorf("%s %s %s: %d %s, want %d", c.method, c.path, c.body, resp.StatusCode, body, c.status)
		}
	}
	resp, body = a.do("POST", "/api/drafts/"+d.ID+"/send", "", nil)
	sent := decode[sendResponse](t, "send draft", resp, body, http.StatusOK)
	if sent.Message.Text != "Half of it written" || sent.Message.Subject != "Rota" || !sent.Message.Outgoing {
		t.Fatalf("sent %s", body)
	}
	msgs, err := bob.Sync(context.Background())
	if err != nil || len(msgs) != 1 || msgs[0].Text != "Half of it written" || msgs[0].Subject != "Rota" {
		t.Fatalf("bob got %+v (%v)", msgs, err)
	}
	if resp, body := a.do("DELETE", "/api/drafts/"+bare.ID, "", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	resp, body = a.do("GET", "/api/drafts", "", nil)
	if ds := decode[[]draftJSON](t, "drafts at the end", resp, body, http.StatusOK); len(ds) != 0 {
		t.Fatalf("drafts left: %s", body)
	}
}

// Settings: read receipts on by default, turned off, still off after a
// lock and an unlock (kept in the store, not in the server); the idle
// timeout is shown and cannot be set.
func TestSettingsAPI(t *testing.T) {
	home, alice, _, _ := pair(t, relaytest.New(t, nil))
	alice.Close()
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass), IdleTimeout: 90 * time.Second})
	a.login()
	resp, body := a.do("GET", "/api/settings", "", nil)
	if st := decode[settingsJSON](t, "settings", resp, body, http.StatusOK); !st.ReadReceipts || st.IdleTimeout != 90 {
		t.Fatalf("settings %s", body)
	}
	resp, body = a.do("PUT", "/api/settings", `{"read_receipts":false}`, nil)
	if st := decode[settingsJSON](t, "put", resp, body, http.StatusOK); st.ReadReceipts {
		t.Fatalf("after put %s", body)
	}
	if resp, _ := a.do("PUT", "/api/settings", `{"idle_timeout_seconds":1}`, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("idle timeout set through the API: %d", resp.StatusCode)
	}
	a.do("POST", "/api/lock", "", nil)
	a.unlock(alicePass)
	resp, body = a.do("GET", "/api/settings", "", nil)
	if st := decode[settingsJSON](t, "settings after unlock", resp, body, http.StatusOK); st.ReadReceipts {
		t.Fatalf("read receipts back on: %s", body)
	}
}

// When the recipient reads a sent message, the event stream pushes a
// "receipt" event with the message and its read_receipt time.
func TestReceiptEvent(t *testing.T) {
	home, alice, _, bob := pair(t, relaytest.New(t, nil))
	alice.Close()
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang guard
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.ts.URL+"/api/events", nil)
	resp, err := a.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Scan() // ": stream": the subscription is in place
	_, body := a.do("POST", "/api/send", `{"to":"bob","text":"Please read this."}`, nil)
	var sent sendResponse
	if err := json.Unmarshal([]byte(body), &sent); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bob.MarkRead(ctx, sent.Message.ID); err != nil {
		t.Fatal(err)
	}
	var got messageJSON
	for event := ""; sc.Scan(); {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			event = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok && event == "receipt" {
			if err := json.Unmarshal([]byte(v), &got); err != nil {
				t.Fatal(err)
			}
			if got.ID == sent.Message.ID && got.ReadReceipt != nil {
				break
			}
		}
	}
	if got.ID != sent.Message.ID || got.ReadReceipt == nil || !got.Outgoing {
		t.Fatalf("receipt event %+v (%v)", got, sc.Err())
	}
}

// Every state-changing endpoint of the route table (POST, PUT, PATCH,
// DELETE) refuses the browser's cookie from another site, without the
// app's Origin, and a body that is not JSON; nothing changes.
func TestCrossSiteRefusedEveryRoute(t *testing.T) {
	home, _, _, _ := pair(t, relaytest.New(t, nil))
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()
	resp, body := a.do("POST", "/api/folders", `{"name":"Ward 4"}`, nil)
	f := decode[folderJSON](t, "create", resp, body, http.StatusCreated)
	bodies := map[string]string{
		"POST /api/folders":       `{"name":"Forged"}`,
		"PATCH /api/folders/{id}": `{"name":"Forged"}`,
		"POST /api/drafts":        `{"text":"forged"}`,
		"PUT /api/settings":       `{"read_receipts":false}`,
		"POST /api/send":          `{"to":"bob","text":"forged"}`,
	}
	n := 0
	for pattern := range apiRoutes {
		method, path, _ := strings.Cut(pattern, " ")
		if method == "GET" || path == "/api/unlock" || path == "/api/lock" || path == "/api/ping" {
			continue // GET reads; unlock, lock and ping are in TestCrossSiteRefused
		}
		n++
		path = strings.ReplaceAll(path, "{id}", f.ID)
		b := bodies[pattern]
		for name, hdr := range map[string]map[string]string{
			"foreign origin":   {"Origin": "https://evil.example"},
			"no origin":        {"Origin": ""},
			"cross-site fetch": {"Sec-Fetch-Site": "cross-site"},
		} {
			if resp, body := a.do(method, path, b, hdr); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s, %s: status %d %s, want 403", method, path, name, resp.StatusCode, body)
			}
		}
		if b != "" {
			form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
			if resp, _ := a.do(method, path, "name=Forged", form); resp.StatusCode != http.StatusUnsupportedMediaType {
				t.Errorf("%s %s as a form: status %d, want 415", method, path, resp.StatusCode)
			}
		}
	}
	if n < 8 {
		t.Fatalf("only %d state-changing endpoints", n)
	}
	resp, body = a.do("GET", "/api/folders", "", nil)
	if fs := decode[[]folderJSON](t, "folders", resp, body, http.StatusOK); len(fs) != 5 || fs[4].Name != "Ward 4" {
		t.Fatalf("folders changed: %s", body)
	}
	resp, body = a.do("GET", "/api/drafts", "", nil)
	if ds := decode[[]draftJSON](t, "drafts", resp, body, http.StatusOK); len(ds) != 0 {
		t.Fatalf("a draft was saved: %s", body)
	}
	resp, body = a.do("GET", "/api/settings", "", nil)
	if st := decode[settingsJSON](t, "settings", resp, body, http.StatusOK); !st.ReadReceipts {
		t.Fatalf("settings changed: %s", body)
	}
}
