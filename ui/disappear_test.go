package ui

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/postern/postern/relay/relaytest"
)

// The timer endpoints: off at first, set, refused out of range or for an
// unknown contact (nothing changed), and the contact's client learns it.
func TestDisappearAPI(t *testing.T) {
	home, alice, _, bob := pair(t, relaytest.New(t, nil))
	alice.Close()
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()
	resp, body := a.do("GET", "/api/disappear/bob", "", nil)
	if d := decode[disappearJSON](t, "get", resp, body, http.StatusOK); d.Seconds != 0 || d.MinSeconds != 5 || d.MaxSeconds != 2419200 || d.Contact != "bob" {
		t.Fatalf("at first: %s", body)
	}
	resp, body = a.do("PUT", "/api/disappear/bob", `{"seconds":3600}`, nil)
	if d := decode[disappearJSON](t, "put", resp, body, http.StatusOK); d.Seconds != 3600 {
		t.Fatalf("after put: %s", body)
	}
	for _, b := range []string{`{"seconds":1}`, `{"seconds":2419201}`, `{"seconds":-5}`, `{}`, `{"seconds":"1h"}`} {
		if resp, body := a.do("PUT", "/api/disappear/bob", b, nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("PUT %s: %d %s, want 400", b, resp.StatusCode, body)
		}
	}
	if resp, body := a.do("PUT", "/api/disappear/carol", `{"seconds":60}`, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown contact: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.do("GET", "/api/disappear/carol", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown contact: %d %s", resp.StatusCode, body)
	}
	resp, body = a.do("GET", "/api/disappear/bob", "", nil)
	if d := decode[disappearJSON](t, "get", resp, body, http.StatusOK); d.Seconds != 3600 {
		t.Fatalf("after refused changes: %s", body)
	}
	if _, err := bob.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d, err := bob.Disappearing("alice"); err != nil || d != time.Hour {
		t.Fatalf("bob's client: %v, %v", d, err)
	}
}
