package client

// keyNotifySettings is the meta record of this device's notification
// setting (protocol/SPEC.md section 9 "Local state").
var keyNotifySettings = []byte("notifications")

// notifySettings is this device's notification setting. The zero value
// is the default: desktop notifications may be shown.
type notifySettings struct {
	V int `json:"v"`
	// Off: a front-end shows no desktop notification on this device (a
	// shared workstation).
	Off bool `json:"off,omitempty"`
}

// SetDesktopNotifications records whether a front-end may show desktop
// notifications of new messages on this device (on by default). It is a
// setting of this device only, kept in its encrypted store and not sent
// to the person's other devices: one turns them off on a shared
// workstation and keeps them on a personal laptop. The library shows no
// notification itself; a front-end that does reads DesktopNotifications.
func (c *Client) SetDesktopNotifications(on bool) error {
	return c.st.update(func(t *tx) error {
		return t.Put(bucketMeta, t.Index(bucketMeta, keyNotifySettings), &notifySettings{V: 1, Off: !on})
	})
}

// DesktopNotifications reports whether desktop notifications may be shown
// on this device (SetDesktopNotifications). When the store cannot be read
// it reports false: showing none is the safe side.
func (c *Client) DesktopNotifications() bool {
	var n notifySettings
	err := c.st.view(func(t *tx) error {
		_, err := t.Get(bucketMeta, t.Index(bucketMeta, keyNotifySettings), &n)
		return err
	})
	return err == nil && !n.Off
}
