package ui

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/postern/postern/client"
	"github.com/postern/postern/relay/relaytest"
)

const testOrganisation = "St Mary's Hospital"

// restrictedSentences are the sentences of issue 14, as a patient of
// testOrganisation is told them.
var restrictedSentences = map[string]string{
	"service": "Your provider has restricted your access to Secure Messaging. If you think your access was restricted by mistake and you want to continue using Secure Messaging, contact St Mary's Hospital's Secure Messaging coordinator.",
	"new":     "You have been restricted from a Triage Group(s). You are unable to send messages to those Triage Groups.",
	"replies": "Your access to this Triage Group has been restricted. You cannot send messages to this Triage Group. If you think your access was restricted by mistake, contact St Mary's Hospital's Secure Messaging coordinator.",
}

// The organisation's side (alice): bad requests are refused with a clear
// error and restrict nobody; a level restricts bob (his client's send is
// refused with that level), another replaces it, and restoring lets him
// write again once he opts in.
func TestRestrictAPI(t *testing.T) {
	home, alice, _, bob := pair(t, relaytest.New(t, nil))
	alice.Close()
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()
	ctx := context.Background()
	get := func() restrictionJSON {
		t.Helper()
		resp, body := a.do("GET", "/api/contacts/bob/restriction", "", nil)
		return decode[restrictionJSON](t, "get", resp, body, http.StatusOK)
	}
	g := get()
	if g.Contact != "bob" || g.ByMe != "" || g.Restricted != "" || g.TermsVersion != TermsVersion || len(g.Sentences) != 3 ||
		g.Sentences["new"] != restrictedSentences["new"] ||
		!strings.HasSuffix(g.Sentences["service"], "contact your provider's Secure Messaging coordinator.") {
		t.Fatalf("at first: %+v", g)
	}

	for _, tc := range []struct {
		what, method, path, body string
		hdr                      map[string]string
		status                   int
	}{
		{"an unknown level", "PUT", "/api/contacts/bob/restriction", `{"level":"all"}`, nil, http.StatusBadRequest},
		{"no level", "PUT", "/api/contacts/bob/restriction", `{}`, nil, http.StatusBadRequest},
		{"a level in capitals", "PUT", "/api/contacts/bob/restriction", `{"level":"NEW"}`, nil, http.StatusBadRequest},
		{"the level's number", "PUT", "/api/contacts/bob/restriction", `{"level":2}`, nil, http.StatusBadRequest},
		{"an unknown field", "PUT", "/api/contacts/bob/restriction", `{"level":"new","until":"tomorrow"}`, nil, http.StatusBadRequest},
		{"not JSON", "PUT", "/api/contacts/bob/restriction", `level=new`, nil, http.StatusBadRequest},
		{"two objects", "PUT", "/api/contacts/bob/restriction", `{"level":"new"}{"level":"service"}`, nil, http.StatusBadRequest},
		{"another content type", "PUT", "/api/contacts/bob/restriction", `{"level":"new"}`, map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
		{"an unknown contact", "PUT", "/api/contacts/carol/restriction", `{"level":"new"}`, nil, http.StatusNotFound},
		{"restoring an unknown contact", "DELETE", "/api/contacts/carol/restriction", "", nil, http.StatusNotFound},
		{"reading an unknown contact", "GET", "/api/contacts/carol/restriction", "", nil, http.StatusNotFound},
	} {
		resp, body := a.do(tc.method, tc.path, tc.body, tc.hdr)
		if resp.StatusCode != tc.status || errorOf(t, body) == "" {
			t.Errorf("%s: %d %s, want %d with an error", tc.what, resp.StatusCode, body, tc.status)
		}
		if tc.what == "an unknown level" && !strings.Contains(errorOf(t, body), `"service" (the whole service), "new" (new messages) or "replies"`) {
			t.Errorf("an unknown level: %s", body)
		}
	}
	if g := get(); g.ByMe != "" {
		t.Fatalf("after refused requests: %+v", g)
	}
	if _, err := bob.Send(ctx, "alice", "still here"); err != nil {
		t.Fatalf("bob after refused requests: %v", err)
	}

	resp, body := a.do("PUT", "/api/contacts/bob/restriction", `{"level":"new"}`, nil)
	if g := decode[restrictionJSON](t, "restrict", resp, body, http.StatusOK); g.ByMe != "new" || g.Restricted != "" ||
		g.Message != "bob is restricted from sending new messages: the relay refuses what they send you, and they are told why. What you send still reaches them." {
		t.Fatalf("restricted: %s", body)
	}
	var re *client.RestrictedError
	if _, err := bob.Send(ctx, "alice", "one more"); !errors.As(err, &re) || re.Level != client.RestrictedNew || re.OptIn {
		t.Fatalf("bob's send while restricted: %v", err)
	}
	resp, body = a.do("GET", "/api/contacts", "", nil)
	if cs := decode[[]contactJSON](t, "contacts", resp, body, http.StatusOK); len(cs) != 1 || cs[0].RestrictedByMe != "new" || cs[0].Restricted != "" {
		t.Fatalf("contacts: %s", body)
	}
	resp, body = a.do("GET", "/api/contacts/bob", "", nil)
	if c := decode[contactJSON](t, "contact", resp, body, http.StatusOK); c.RestrictedByMe != "new" {
		t.Fatalf("contact: %s", body)
	}
	resp, body = a.do("PUT", "/api/contacts/bob/restriction", `{"level":"replies"}`, nil)
	if g := decode[restrictionJSON](t, "another level", resp, body, http.StatusOK); g.ByMe != "replies" {
		t.Fatalf("another level: %s", body)
	}

	resp, body = a.do("DELETE", "/api/contacts/bob/restriction", "", nil)
	if g := decode[restrictionJSON](t, "restore", resp, body, http.StatusOK); g.ByMe != "" || !strings.HasPrefix(g.Message, "bob's access is restored.") {
		t.Fatalf("restored: %s", body)
	}
	resp, body = a.do("DELETE", "/api/contacts/bob/restriction", "", nil)
	if g := decode[restrictionJSON](t, "restore again", resp, body, http.StatusOK); g.ByMe != "" || g.Message != "bob was not restricted; nothing changed." {
		t.Fatalf("restored again: %s", body)
	}
	if _, err := bob.Send(ctx, "alice", "after"); !errors.As(err, &re) || !re.OptIn {
		t.Fatalf("bob before opting in again: %v", err)
	}
	if err := bob.OptIn("alice", TermsVersion); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, "alice", "after opting in"); err != nil {
		t.Fatalf("bob after opting in: %v", err)
	}
}

// The restricted person's side (bob, a patient of testOrganisation): a
// refused send answers the level's sentence exactly, without a hint, and
// opts him out; bad opt-ins are refused and change nothing; opting in
// before the organisation restores access is refused again by the relay;
// after the restore sends are refused until he accepts the terms, then go.
func TestOptInAPI(t *testing.T) {
	_, alice, bobHome, bob := pair(t, relaytest.New(t, nil))
	bob.Close()
	b := newApp(t, bobHome, &Options{Passphrase: []byte(bobPass), Client: &client.Options{KDF: testKDF, Organisation: testOrganisation}})
	b.login()
	ctx := context.Background()
	send := func(what string, status int) restrictedErrorJSON {
		t.Helper()
		resp, body := b.do("POST", "/api/send", `{"to":"alice","text":"About my prescription"}`, nil)
		if status != http.StatusForbidden {
			decode[sendResponse](t, what, resp, body, status)
			return restrictedErrorJSON{}
		}
		var raw map[string]any
		if err := json.Unmarshal([]byte(body), &raw); err != nil || raw["hint"] != nil {
			t.Fatalf("%s: %s: the sentence says whom to ask; no hint", what, body)
		}
		return decode[restrictedErrorJSON](t, what, resp, body, status)
	}
	get := func() restrictionJSON {
		t.Helper()
		resp, body := b.do("GET", "/api/contacts/alice/restriction", "", nil)
		return decode[restrictionJSON](t, "get", resp, body, http.StatusOK)
	}
	optIn := func(body string) (*http.Response, string) {
		t.Helper()
		return b.do("POST", "/api/contacts/alice/optin", body, nil)
	}
	okBody := `{"accept":true,"terms_version":` + quote(TermsVersion) + `}`

	if resp, body := optIn(okBody); resp.StatusCode != http.StatusConflict || errorOf(t, body) != "alice has not restricted your access: there is nothing to opt in to" {
		t.Fatalf("opting in unrestricted: %d %s", resp.StatusCode, body)
	}
	if g := get(); g.Sentences["replies"] != restrictedSentences["replies"] || g.Sentences["service"] != restrictedSentences["service"] {
		t.Fatalf("the sentences name the organisation: %+v", g.Sentences)
	}

	if err := alice.Restrict(ctx, "bob", client.RestrictedReplies); err != nil {
		t.Fatal(err)
	}
	if e := send("the relay's refusal", http.StatusForbidden); e.Error != restrictedSentences["replies"] || e.Restriction != "replies" || e.OptedOut {
		t.Fatalf("the relay's refusal: %+v", e)
	}
	if e := send("refused here", http.StatusForbidden); e.Error != restrictedSentences["replies"] || !e.OptedOut {
		t.Fatalf("refused here: %+v", e)
	}
	g := get()
	// Alice is not a team: her one route is refused, so is every send.
	if g.Restricted != "replies" || !g.SendsRefused || g.Sentence != restrictedSentences["replies"] || g.RestrictedAt == nil || g.OptedIn != nil {
		t.Fatalf("restricted: %+v", g)
	}
	resp, body := b.do("GET", "/api/contacts", "", nil)
	if cs := decode[[]contactJSON](t, "contacts", resp, body, http.StatusOK); len(cs) != 1 || cs[0].Restricted != "replies" || !cs[0].SendsRefused {
		t.Fatalf("contacts: %s", body)
	}

	for _, tc := range []struct {
		what, name, body string
		status           int
	}{
		{"nothing accepted", "alice", `{}`, http.StatusBadRequest},
		{"accept false", "alice", `{"accept":false,"terms_version":` + quote(TermsVersion) + `}`, http.StatusBadRequest},
		{"accept as a string", "alice", `{"accept":"yes","terms_version":` + quote(TermsVersion) + `}`, http.StatusBadRequest},
		{"no version", "alice", `{"accept":true}`, http.StatusConflict},
		{"an older version", "alice", `{"accept":true,"terms_version":"2020-01-01"}`, http.StatusConflict},
		{"an unknown field", "alice", `{"accept":true,"terms_version":` + quote(TermsVersion) + `,"level":"new"}`, http.StatusBadRequest},
		{"an unknown contact", "carol", okBody, http.StatusNotFound},
	} {
		resp, body := b.do("POST", "/api/contacts/"+tc.name+"/optin", tc.body, nil)
		if resp.StatusCode != tc.status || errorOf(t, body) == "" {
			t.Errorf("%s: %d %s, want %d with an error", tc.what, resp.StatusCode, body, tc.status)
		}
	}
	if g := get(); g.Restricted != "replies" || g.OptedIn != nil || g.OptInTerms != "" {
		t.Fatalf("after refused opt-ins: %+v", g)
	}
	send("still opted out", http.StatusForbidden)

	// Opting in before the organisation restores access: the relay
	// refuses again, and he is opted out again.
	resp, body = optIn(okBody)
	if g := decode[restrictionJSON](t, "opt in early", resp, body, http.StatusOK); g.Restricted != "" || g.OptInTerms != TermsVersion || g.OptedIn == nil {
		t.Fatalf("opted in early: %s", body)
	}
	if e := send("still restricted", http.StatusForbidden); e.Error != restrictedSentences["replies"] || e.OptedOut {
		t.Fatalf("opted in before the restore: %+v", e)
	}

	// Restored: still refused here until he opts in again.
	if err := alice.Unrestrict(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if e := send("restored, not opted in", http.StatusForbidden); !e.OptedOut {
		t.Fatalf("restored but not opted in: %+v", e)
	}
	resp, body = optIn(okBody)
	g = decode[restrictionJSON](t, "opt in", resp, body, http.StatusOK)
	if g.Restricted != "" || g.OptInTerms != TermsVersion || g.OptedIn == nil ||
		g.Message != "You opted in again to writing to alice and accepted the terms of use, version "+TermsVersion+". If your access was not restored, your next message is refused again." {
		t.Fatalf("opted in: %s", body)
	}
	send("after opting in", http.StatusOK)
	msgs, err := alice.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, m := range msgs {
		if m.Text == "About my prescription" {
			got++
		}
	}
	if got != 1 {
		t.Fatalf("alice got %d of bob's messages: only the one sent after opting in goes", got)
	}
	if resp, _ := optIn(okBody); resp.StatusCode != http.StatusConflict {
		t.Fatalf("opting in twice: %d", resp.StatusCode)
	}
}
