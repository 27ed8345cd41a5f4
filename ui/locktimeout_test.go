package ui

import (
	"net/http"
	"testing"
	"time"

	"github.com/postern/postern/relay/relaytest"
)

// The lock time may be set shorter than the one postern ui started with,
// never longer or under 30 s; the choice is this device's, kept after a
// restart, and a start with a shorter configured time (a stricter policy)
// wins over it.
func TestLockTimeoutAPI(t *testing.T) {
	home, alice, _, _ := pair(t, relaytest.New(t, nil))
	alice.Close()
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()
	settings := func(a *app, what string) settingsJSON {
		t.Helper()
		resp, body := a.do("GET", "/api/settings", "", nil)
		return decode[settingsJSON](t, what, resp, body, http.StatusOK)
	}
	if st := settings(a, "default"); st.IdleTimeout != 300 || st.IdleTimeoutMax != 300 {
		t.Fatalf("default: %+v", st)
	}
	resp, body := a.do("PUT", "/api/settings", `{"idle_timeout_seconds":60}`, nil)
	if st := decode[settingsJSON](t, "1 minute", resp, body, http.StatusOK); st.IdleTimeout != 60 || st.IdleTimeoutMax != 300 {
		t.Fatalf("after choosing 60 s: %s", body)
	}
	for _, bad := range []string{"20", "301", "-60"} {
		resp, body := a.do("PUT", "/api/settings", `{"idle_timeout_seconds":`+bad+`}`, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("lock time %s s: %s %s", bad, resp.Status, body)
		}
	}
	if st := settings(a, "after refusals"); st.IdleTimeout != 60 {
		t.Fatalf("a refused lock time changed it: %+v", st)
	}
	if st := a.s.state(); st.IdleTimeout != 60 {
		t.Fatalf("state: %+v", st)
	}
	a.s.Close()

	b := newApp(t, home, &Options{Passphrase: []byte(alicePass), IdleTimeout: 2 * time.Minute, IdleTimeoutByPolicy: true})
	b.login()
	if st := settings(b, "restarted under a 2 min policy"); st.IdleTimeout != 60 || st.IdleTimeoutMax != 120 {
		t.Fatalf("the choice after a restart: %+v", st)
	}
	b.s.Close()

	c := newApp(t, home, &Options{Passphrase: []byte(alicePass), IdleTimeout: 45 * time.Second, IdleTimeoutByPolicy: true})
	c.login()
	if st := settings(c, "restarted under a 45 s policy"); st.IdleTimeout != 45 || st.IdleTimeoutMax != 45 {
		t.Fatalf("a stricter policy than the choice: %+v", st)
	}
}
