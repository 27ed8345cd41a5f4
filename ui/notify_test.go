package ui

import (
	"net/http"
	"testing"
	"time"

	"github.com/postern/postern/relay/relaytest"
)

// Desktop notifications in the settings: on by default, turned off
// through PUT /api/settings, still off for a new app on the same home (a
// restart); with the organisation's policy turning them off they show
// off and cannot be turned on, and the policy's idle timeout is marked as
// the organisation's.
func TestNotificationSettingsAPI(t *testing.T) {
	home, alice, _, _ := pair(t, relaytest.New(t, nil))
	alice.Close()
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()
	resp, body := a.do("GET", "/api/settings", "", nil)
	if st := decode[settingsJSON](t, "settings", resp, body, http.StatusOK); !st.Notifications || st.NotificationsByPolicy || st.IdleTimeoutByPolicy {
		t.Fatalf("default settings %s", body)
	}
	resp, body = a.do("PUT", "/api/settings", `{"desktop_notifications":false}`, nil)
	if st := decode[settingsJSON](t, "off", resp, body, http.StatusOK); st.Notifications || !st.ReadReceipts {
		t.Fatalf("after turning them off %s", body)
	}
	a.s.Close()

	b := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	b.login()
	resp, body = b.do("GET", "/api/settings", "", nil)
	if st := decode[settingsJSON](t, "after a restart", resp, body, http.StatusOK); st.Notifications {
		t.Fatalf("on again after a restart: %s", body)
	}
	resp, body = b.do("PUT", "/api/settings", `{"desktop_notifications":true}`, nil)
	if st := decode[settingsJSON](t, "on", resp, body, http.StatusOK); !st.Notifications {
		t.Fatalf("after turning them on %s", body)
	}
	b.s.Close()

	c := newApp(t, home, &Options{Passphrase: []byte(alicePass), NoDesktopNotifications: true,
		IdleTimeout: 2 * time.Minute, IdleTimeoutByPolicy: true})
	c.login()
	resp, body = c.do("GET", "/api/settings", "", nil)
	if st := decode[settingsJSON](t, "policy", resp, body, http.StatusOK); st.Notifications || !st.NotificationsByPolicy ||
		!st.IdleTimeoutByPolicy || st.IdleTimeout != 120 {
		t.Fatalf("settings under the policy %s", body)
	}
	resp, body = c.do("PUT", "/api/settings", `{"desktop_notifications":true,"read_receipts":false}`, nil)
	if resp.StatusCode != http.StatusForbidden || errorOf(t, body) != notifySentence {
		t.Fatalf("turned on against the policy: %d %s", resp.StatusCode, body)
	}
	resp, body = c.do("GET", "/api/settings", "", nil)
	if st := decode[settingsJSON](t, "after the refusal", resp, body, http.StatusOK); st.Notifications || !st.ReadReceipts {
		t.Fatalf("the refused request changed something: %s", body)
	}
}
