package client

import (
	"errors"
	"github.com/postern/postern/relay/relaytest"
	"testing"
)

// A device linked by a sibling is alerted on the person's other devices
// until acknowledged, across a reopen of the store; acknowledging one
// alert leaves the others; a device revoked since is no longer alerted.
func TestDeviceAlertsUntilAcknowledged(t *testing.T) {
	srv := relaytest.New(t, nil)
	alice, bob, home, _ := pair(t, srv)
	office, _ := linkNew(t, alice, "OFFICE-PC")
	syncAll(t, 3, office, bob, alice)
	laptop, _ := linkNew(t, office, "LAPTOP")
	syncAll(t, 3, laptop, bob, alice, office)

	as, err := alice.DeviceAlerts()
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 || as[0].Name != "OFFICE-PC" || as[0].Device != office.devID || as[1].Name != "LAPTOP" || as[1].Device != laptop.devID {
		t.Fatalf("alice's alerts: %+v", as)
	}
	if as[1].Linked.IsZero() || as[1].Noticed.IsZero() {
		t.Fatalf("alert without its times: %+v", as[1])
	}
	// The alert is the notice in the inbox, by the same ID.
	if got := messagesLike(t, alice, "new device LAPTOP was linked"); len(got) != 1 || got[0].ID != as[1].ID {
		t.Fatalf("notice %+v, alert %+v", got, as[1])
	}
	if err := alice.AcknowledgeDeviceAlert(as[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := alice.AcknowledgeDeviceAlert(as[0].ID); err != nil {
		t.Fatalf("acknowledged twice: %v", err)
	}
	if err := alice.AcknowledgeDeviceAlert("0011223344556677"); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("unknown alert: %v", err)
	}
	// Kept in the store: a reopened client still has the one left.
	alice.Close()
	alice, err = Open(home, testPass, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.Close() })
	if as, err = alice.DeviceAlerts(); err != nil || len(as) != 1 || as[0].Name != "LAPTOP" {
		t.Fatalf("after reopening: %+v, %v", as, err)
	}
	// Other devices keep their own: the office did not acknowledge.
	if got, err := office.DeviceAlerts(); err != nil || len(got) != 1 || got[0].Name != "LAPTOP" {
		t.Fatalf("office's alerts: %+v, %v", got, err)
	}
	// Revoking the device answers its alert.
	if _, err := office.RevokeDevice(testCtx(t), "LAPTOP"); err != nil {
		t.Fatal(err)
	}
	if got, err := office.DeviceAlerts(); err != nil || len(got) != 0 {
		t.Fatalf("office's alerts after the revoke: %+v, %v", got, err)
	}
	syncAll(t, 2, alice)
	if as, err := alice.DeviceAlerts(); err != nil || len(as) != 0 {
		t.Fatalf("alice's alerts after the revoke: %+v, %v", as, err)
	}
}
