package client

import (
	"errors"
	"github.com/postern/postern/relay/relaytest"
	"testing"
)

// A device linked by a sibling is alerted on the person's other devices,
// not on the one that linked it, until acknowledged, across a reopen of
// the store; a device revoked since is no longer alerted.
func TestDeviceAlertsUntilAcknowledged(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, home, _ := pair(t, srv)
	office, _ := linkNew(t, alice, "OFFICE-PC")
	syncAll(t, 3, office, bob, alice)
	laptop, _ := linkNew(t, office, "LAPTOP")
	syncAll(t, 3, laptop, bob, alice, office)

	// Alice linked the office, the office the laptop: each keeps the
	// alert of the device it did not link.
	as, err := alice.DeviceAlerts()
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].Name != "LAPTOP" || as[0].Device != laptop.devID {
		t.Fatalf("alice's alerts: %+v", as)
	}
	if as[0].Linked.IsZero() || as[0].Noticed.IsZero() {
		t.Fatalf("alert without its times: %+v", as[0])
	}
	// The alert is the notice in the inbox, by the same ID.
	if got := messagesLike(t, alice, "new device LAPTOP was linked"); len(got) != 1 || got[0].ID != as[0].ID {
		t.Fatalf("notice %+v, alert %+v", got, as[0])
	}
	if got, err := office.DeviceAlerts(); err != nil || len(got) != 0 {
		t.Fatalf("office's alerts of the laptop it linked: %+v, %v", got, err)
	}
	if got, err := laptop.DeviceAlerts(); err != nil || len(got) != 0 {
		t.Fatalf("the laptop's alerts: %+v, %v", got, err)
	}
	if err := alice.AcknowledgeDeviceAlert("0011223344556677"); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("unknown alert: %v", err)
	}
	// Kept in the store: a reopened client still has it.
	alice.Close()
	alice, err = Open(home, testPass, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.Close() })
	if as, err = alice.DeviceAlerts(); err != nil || len(as) != 1 || as[0].Name != "LAPTOP" {
		t.Fatalf("after reopening: %+v, %v", as, err)
	}
	if err := alice.AcknowledgeDeviceAlert(as[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := alice.AcknowledgeDeviceAlert(as[0].ID); err != nil {
		t.Fatalf("acknowledged twice: %v", err)
	}
	if got, err := alice.DeviceAlerts(); err != nil || len(got) != 0 {
		t.Fatalf("after the acknowledgement: %+v, %v", got, err)
	}

	// A fourth device, linked by the laptop and revoked by the office:
	// revoking it answers its alert on alice.
	phone, _ := linkNew(t, laptop, "PHONE")
	syncAll(t, 3, phone, alice, office, laptop)
	if got, err := alice.DeviceAlerts(); err != nil || len(got) != 1 || got[0].Name != "PHONE" {
		t.Fatalf("alice's alerts of the phone: %+v, %v", got, err)
	}
	if _, err := office.RevokeDevice(testCtx(t), "PHONE"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, alice)
	if got, err := alice.DeviceAlerts(); err != nil || len(got) != 0 {
		t.Fatalf("alice's alerts after the revoke: %+v, %v", got, err)
	}
}
