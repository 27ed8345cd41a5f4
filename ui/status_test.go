package ui

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/postern/postern/relay/relaytest"
)

// GET and POST /api/status: the statuses held (bob's, forwarded to carol,
// who is not alice's contact), alice's own set and sent to bob; bad
// requests refused; a message to bob says it could not be forwarded to
// carol; a device without a directory answers 404.
func TestStatusAPI(t *testing.T) {
	home, copts := directoryFixture(t)
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass), Client: copts})
	a.login()
	resp, body := a.do("GET", "/api/status", "", nil)
	var ss []statusJSON
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &ss) != nil || len(ss) != 1 || ss[0].Name != "bob" ||
		ss[0].Availability != "busy" || !ss[0].Forwarding || ss[0].ForwardTo != "Carol Cole" || ss[0].DNDUntil == nil {
		t.Fatalf("statuses: %d %s", resp.StatusCode, body)
	}
	resp, body = a.do("POST", "/api/status", `{"availability": "off", "forward_to": "bob"}`, nil)
	var set struct {
		Status    statusJSON `json:"status"`
		Sent      int        `json:"sent"`
		Unreached int        `json:"unreached"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &set) != nil || set.Status.Name != "me" ||
		set.Status.Availability != "off duty" || set.Status.ForwardTo != "bob" || !set.Status.Forwarding || set.Sent != 1 || set.Unreached != 1 {
		t.Fatalf("set: %d %s", resp.StatusCode, body)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"availability": "away"}`, "availability must be available, busy or off"},
		{`{"availability": "busy", "dnd_minutes": -1}`, "do-not-disturb runs from 1 minute to 4 weeks"},
		{`{"availability": "busy", "forward_to": "Nobody"}`, "Nobody is neither a contact nor in the organisation directory"},
	} {
		if resp, body := a.do("POST", "/api/status", tc.body, nil); resp.StatusCode/100 != 4 || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s", tc.body, resp.StatusCode, body)
		}
	}
	resp, body = a.do("GET", "/api/status", "", nil)
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &ss) != nil || len(ss) != 2 || ss[1].Name != "me" {
		t.Fatalf("statuses after setting: %d %s", resp.StatusCode, body)
	}
	resp, body = a.do("POST", "/api/send", `{"to": "bob", "text": "refill?"}`, nil)
	var sent sendResponse
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &sent) != nil || sent.Message.NotForwarded != "Carol Cole" ||
		!strings.HasPrefix(sent.Message.ForwardReason, "bob has do not disturb until ") {
		t.Fatalf("send: %d %s", resp.StatusCode, body)
	}

	other, _, _, _ := pair(t, relaytest.New(t, nil))
	b := newApp(t, other, &Options{Passphrase: []byte(alicePass)})
	b.login()
	if resp, body := b.do("GET", "/api/status", "", nil); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "this device holds no organisation directory") {
		t.Fatalf("no directory: %d %s", resp.StatusCode, body)
	}
}
