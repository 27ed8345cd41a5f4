package client

import (
	"bytes"
	"fmt"
	"time"

	"github.com/postern/postern/keys"
)

// Alerts of a device newly linked to this person, kept until the person
// acknowledges them (protocol/SPEC.md section 9 "Devices"). The notice in
// the inbox says it once; a front-end that must keep saying it until
// someone has seen it (a banner on a shared workstation, shown again
// after a lock) lists them with DeviceAlerts and clears each with
// AcknowledgeDeviceAlert. They are this device's own: acknowledging on
// one device does not clear the alert on another, where the person may
// not have seen it. The device that linked a device keeps no alert of
// it: the person there just linked it.

// maxDeviceAlerts bounds the alerts kept: the oldest go first. A person
// has at most keys.MaxDevices devices, so this is many lists' worth.
const maxDeviceAlerts = 32

// keyDeviceAlerts is the meta record of the device alerts.
var keyDeviceAlerts = []byte("device-alerts")

// DeviceAlert is a device linked to this person that this device noticed
// (EventAlert) and the person has not acknowledged yet.
type DeviceAlert struct {
	// ID is the alert's notice's message ID: the same on every device of
	// the person.
	ID string
	// Device is the linked device's ID; Name the name it gave itself
	// ("" if it gave none).
	Device keys.Fingerprint
	Name   string
	// Linked is when the device list that added it was signed; Noticed
	// when this device learned of it.
	Linked  time.Time
	Noticed time.Time
}

// deviceAlertsRecord is the meta record: the newest maxDeviceAlerts
// alerts, oldest first.
type deviceAlertsRecord struct {
	V      int                 `json:"v"`
	Alerts []deviceAlertRecord `json:"alerts,omitempty"`
}

type deviceAlertRecord struct {
	ID      string    `json:"id"`
	Device  []byte    `json:"device"`
	Name    string    `json:"name,omitempty"`
	Linked  time.Time `json:"linked"`
	Noticed time.Time `json:"noticed"`
	Acked   bool      `json:"acked,omitempty"`
}

func (t *tx) deviceAlerts() (*deviceAlertsRecord, error) {
	var r deviceAlertsRecord
	if _, err := t.Get(bucketMeta, t.Index(bucketMeta, keyDeviceAlerts), &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// recordDeviceAlert keeps the alert of a device of this person linked
// (deviceNotice, once per notice).
func (t *tx) recordDeviceAlert(noticeID string, id keys.Fingerprint, name string, linked, now time.Time) error {
	r, err := t.deviceAlerts()
	if err != nil {
		return err
	}
	for _, a := range r.Alerts {
		if a.ID == noticeID {
			return nil
		}
	}
	r.V = 1
	r.Alerts = append(r.Alerts, deviceAlertRecord{ID: noticeID, Device: bytes.Clone(id[:]), Name: name, Linked: linked.UTC(), Noticed: now.UTC()})
	if n := len(r.Alerts) - maxDeviceAlerts; n > 0 {
		r.Alerts = r.Alerts[n:]
	}
	return t.Put(bucketMeta, t.Index(bucketMeta, keyDeviceAlerts), r)
}

// ackDeviceAlerts acknowledges the alerts of device id.
func (t *tx) ackDeviceAlerts(id keys.Fingerprint) error {
	r, err := t.deviceAlerts()
	if err != nil {
		return err
	}
	changed := false
	for i := range r.Alerts {
		if bytes.Equal(r.Alerts[i].Device, id[:]) && !r.Alerts[i].Acked {
			r.Alerts[i].Acked, changed = true, true
		}
	}
	if !changed {
		return nil
	}
	return t.Put(bucketMeta, t.Index(bucketMeta, keyDeviceAlerts), r)
}

// DeviceAlerts returns the alerts of devices linked to this person that
// were not acknowledged (AcknowledgeDeviceAlert), oldest first. A device
// revoked since is no longer alerted: revoking it was the answer.
func (c *Client) DeviceAlerts() ([]DeviceAlert, error) {
	var out []DeviceAlert
	err := c.st.view(func(t *tx) error {
		out = nil
		r, err := t.deviceAlerts()
		if err != nil {
			return err
		}
		revoked := map[keys.Fingerprint]bool{}
		self, err := t.self()
		if err != nil {
			return err
		}
		ds, err := t.DevicesOf(self.ID)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if d.Revoked && len(d.DeviceID) == keys.FingerprintSize {
				revoked[fpOf(d.DeviceID)] = true
			}
		}
		for _, a := range r.Alerts {
			if a.Acked || len(a.Device) != keys.FingerprintSize || revoked[fpOf(a.Device)] {
				continue
			}
			out = append(out, DeviceAlert{ID: a.ID, Device: fpOf(a.Device), Name: a.Name, Linked: a.Linked, Noticed: a.Noticed})
		}
		return nil
	})
	return out, err
}

// AcknowledgeDeviceAlert records that the person saw the alert id
// (DeviceAlert.ID): DeviceAlerts no longer returns it. An alert already
// acknowledged is no error; an unknown one is ErrNoMessage.
func (c *Client) AcknowledgeDeviceAlert(id string) error {
	return c.st.update(func(t *tx) error {
		r, err := t.deviceAlerts()
		if err != nil {
			return err
		}
		for i := range r.Alerts {
			if r.Alerts[i].ID == id {
				if r.Alerts[i].Acked {
					return nil
				}
				r.Alerts[i].Acked = true
				return t.Put(bucketMeta, t.Index(bucketMeta, keyDeviceAlerts), r)
			}
		}
		return fmt.Errorf("%w: no device alert %q", ErrNoMessage, id)
	})
}
