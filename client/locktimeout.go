package client

import (
	"errors"
	"fmt"
	"time"
)

// A person may lock a front-end sooner than its configured idle timeout
// (postern ui's --idle-timeout, or an organisation's policy): a device's
// own choice, kept in its encrypted store like its notification setting.
const (
	// MinLockTimeout and MaxLockTimeout bound a chosen lock timeout; a
	// front-end never waits longer than its own configured timeout either.
	MinLockTimeout = 30 * time.Second
	MaxLockTimeout = 12 * time.Hour
)

// ErrLockTimeout: a lock timeout outside MinLockTimeout..MaxLockTimeout.
var ErrLockTimeout = errors.New("client: lock timeout out of range")

// keyLockSettings is the meta record of this device's chosen lock timeout
// (protocol/SPEC.md section 9 "Local state").
var keyLockSettings = []byte("lock-timeout")

type lockSettings struct {
	V       int   `json:"v"`
	Seconds int64 `json:"s,omitempty"` // 0: the front-end's own timeout
}

// SetLockTimeout records how long a front-end on this device may stay
// unlocked without use: d, or 0 for the front-end's configured timeout. A
// front-end uses the shorter of d and its own. It is a setting of this
// device only and is not sent to the person's other devices.
func (c *Client) SetLockTimeout(d time.Duration) error {
	if d != 0 && (d < MinLockTimeout || d > MaxLockTimeout || d%time.Second != 0) {
		return fmt.Errorf("%w: %v, want whole seconds from %v to %v", ErrLockTimeout, d, MinLockTimeout, MaxLockTimeout)
	}
	return c.st.update(func(t *tx) error {
		return t.Put(bucketMeta, t.Index(bucketMeta, keyLockSettings), &lockSettings{V: 1, Seconds: int64(d / time.Second)})
	})
}

// LockTimeout is the lock timeout this device chose (SetLockTimeout), or
// 0 when it chose none or the store cannot be read: the front-end's own
// timeout then applies.
func (c *Client) LockTimeout() time.Duration {
	var s lockSettings
	err := c.st.view(func(t *tx) error {
		_, err := t.Get(bucketMeta, t.Index(bucketMeta, keyLockSettings), &s)
		return err
	})
	if err != nil || s.Seconds < 0 {
		return 0
	}
	return time.Duration(s.Seconds) * time.Second
}
