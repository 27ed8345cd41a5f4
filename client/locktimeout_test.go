package client

import (
	"errors"
	"testing"
	"time"

	"github.com/postern/postern/relay/relaytest"
)

// A chosen lock timeout is kept in the store (still there when the home
// is opened again), 0 gives the front-end its own back, and a value out
// of range is refused and changes nothing.
func TestLockTimeoutSetting(t *testing.T) {
	t.Parallel()
	c, home := newTestClient(t, relaytest.New(t, nil), "alice")
	if d := c.LockTimeout(); d != 0 {
		t.Fatalf("a new device chose %v", d)
	}
	if err := c.SetLockTimeout(time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []time.Duration{time.Second, 29 * time.Second, 13 * time.Hour, 90*time.Second + time.Millisecond, -time.Minute} {
		if err := c.SetLockTimeout(bad); !errors.Is(err, ErrLockTimeout) {
			t.Errorf("SetLockTimeout(%v): %v", bad, err)
		}
	}
	c.Close()
	c, err := Open(home, testPass, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if d := c.LockTimeout(); d != time.Minute {
		t.Fatalf("after reopening: %v, want 1m (and the refused values changed nothing)", d)
	}
	if err := c.SetLockTimeout(0); err != nil || c.LockTimeout() != 0 {
		t.Fatalf("back to the front-end's own: %v, %v", err, c.LockTimeout())
	}
}
