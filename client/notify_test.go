package client

import (
	"testing"

	"github.com/postern/postern/relay/relaytest"
)

// Desktop notifications are on by default; turned off, they stay off when
// the home is opened again (kept in the store), and on again after
// SetDesktopNotifications(true). A closed client reports off.
func TestDesktopNotificationsSetting(t *testing.T) {
	t.Parallel()
	c, home := newTestClient(t, relaytest.New(t, nil), "alice")
	if !c.DesktopNotifications() {
		t.Fatal("desktop notifications off by default")
	}
	if err := c.SetDesktopNotifications(false); err != nil {
		t.Fatal(err)
	}
	if c.DesktopNotifications() {
		t.Fatal("on after SetDesktopNotifications(false)")
	}
	c.Close()
	if c.DesktopNotifications() {
		t.Fatal("a closed client reports on")
	}
	c, err := Open(home, testPass, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.DesktopNotifications() {
		t.Fatal("the setting was not kept in the store")
	}
	if err := c.SetDesktopNotifications(true); err != nil || !c.DesktopNotifications() {
		t.Fatalf("on again: %v, %v", err, c.DesktopNotifications())
	}
}
