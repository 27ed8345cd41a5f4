package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/postern/postern/client/internal/people"
	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// The contacts snapshot (protocol/SPEC.md section 9 "Contacts snapshot"):
// the people a device knows, with their devices, as a new device of the
// same person receives them in a link response or a backup. It holds no
// session and no secret of the exporting device's, only the routes it
// writes to: the importer borrows each once, to introduce itself (a
// hello), and is then given its own.
const (
	snapshotVersion = 1
	// maxSnapshotPersons bounds the people in one snapshot.
	maxSnapshotPersons = 10000
	// maxSnapshotSize bounds the encoded snapshot (link.MaxContactsSize).
	maxSnapshotSize = 8 << 20
)

// errSnapshot: a snapshot that breaks a rule; nothing is imported.
var errSnapshot = fmt.Errorf("client: the contacts snapshot is malformed")

type contactsSnapshot struct {
	V       int              `json:"v"`
	Persons []snapshotPerson `json:"persons"`
}

type snapshotPerson struct {
	Identity     []byte             `json:"identity"`
	Name         string             `json:"name"`
	Self         bool               `json:"self,omitempty"`
	Verification store.Verification `json:"verification,omitempty"`
	Blocked      bool               `json:"blocked,omitempty"`
	DeviceList   []byte             `json:"device_list,omitempty"`
	Added        time.Time          `json:"added"`
	Devices      []snapshotDevice   `json:"devices"`
}

type snapshotDevice struct {
	DeviceID []byte    `json:"device"`
	Cert     []byte    `json:"cert,omitempty"`
	Relay    string    `json:"relay,omitempty"`
	OwnName  string    `json:"own_name,omitempty"`
	Mailbox  []byte    `json:"mailbox,omitempty"`
	Cap      []byte    `json:"cap,omitempty"`
	Direct   bool      `json:"direct,omitempty"`
	Added    time.Time `json:"added"`
}

// snapshotRoute is a route to the exporting device made for the importer
// (a link: the sibling's own mailbox for the new device).
type snapshotRoute struct {
	mailbox protocol.MailboxID
	cap     protocol.CapabilityToken
}

// exportContacts encodes every person this device knows, itself
// included, with their devices that are not revoked; own, if not nil, is
// the route to this device made for the importer.
func (t *tx) exportContacts(self keys.Fingerprint, ownRelay string, own *snapshotRoute) ([]byte, error) {
	ps, err := t.Persons()
	if err != nil {
		return nil, err
	}
	snap := contactsSnapshot{V: snapshotVersion}
	for _, p := range ps {
		if p.ViaGroup {
			// Known only through a group (groupintro.go): groups are not
			// transferred, and the device introduces itself again.
			continue
		}
		sp := snapshotPerson{
			Identity: p.Identity, Name: p.Name, Self: p.Self, Verification: p.Verification,
			Blocked: p.Blocked, DeviceList: p.DeviceList, Added: p.Added,
		}
		ds, err := t.DevicesOf(p.ID)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			if d.Revoked {
				continue
			}
			sd := snapshotDevice{DeviceID: d.DeviceID, Cert: d.Cert, Relay: d.Relay, OwnName: d.OwnName, Added: d.Added}
			switch {
			case p.Self && bytes.Equal(d.DeviceID, self[:]):
				sd.Relay = ownRelay
				if own != nil {
					sd.Mailbox, sd.Cap, sd.Direct = own.mailbox[:], own.cap.SecretBytes(), true
				}
			case len(d.SendMbx) == 16 && len(d.SendCap) == 32 && !d.Refused:
				// A route this device itself only borrowed (it was linked
				// while the contact was away, and has no route of its own
				// yet) is passed on all the same: without it the new device
				// would have no way to introduce itself to that contact,
				// and nothing would ever give it one.
				sd.Mailbox, sd.Cap = d.SendMbx, d.SendCap
			}
			sp.Devices = append(sp.Devices, sd)
		}
		if len(sp.Devices) > 0 || p.Self {
			snap.Persons = append(snap.Persons, sp)
		}
	}
	b, err := json.Marshal(&snap)
	if err != nil {
		return nil, err
	}
	if len(b) > maxSnapshotSize {
		return nil, fmt.Errorf("client: too many contacts to transfer (%d bytes, at most %d)", len(b), maxSnapshotSize)
	}
	return b, nil
}

// parseSnapshot decodes and checks a snapshot for a device of the person
// whose identity fingerprint is idFP: every size, name, URL and key, and
// exactly one Self person with that identity.
func parseSnapshot(b []byte, idFP keys.Fingerprint) (*contactsSnapshot, error) {
	return decodeSnapshot(b, idFP, false)
}

// decodeSnapshot is parseSnapshot; share: a contact share (share.go),
// exactly one person, a contact, and no record of this person.
func decodeSnapshot(b []byte, idFP keys.Fingerprint, share bool) (*contactsSnapshot, error) {
	if len(b) > maxSnapshotSize {
		return nil, fmt.Errorf("%w: %d bytes", errSnapshot, len(b))
	}
	var snap contactsSnapshot
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&snap); err != nil || dec.More() {
		return nil, fmt.Errorf("%w: does not decode", errSnapshot)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errSnapshot, fmt.Sprintf(format, args...))
	}
	if snap.V != snapshotVersion {
		return nil, bad("version %d", snap.V)
	}
	if len(snap.Persons) > maxSnapshotPersons {
		return nil, bad("%d people", len(snap.Persons))
	}
	selves := 0
	ids, names := map[string]bool{}, map[string]bool{}
	for i := range snap.Persons {
		p := &snap.Persons[i]
		if len(p.Identity) != keys.FingerprintSize || ids[string(p.Identity)] {
			return nil, bad("person %d: identity", i)
		}
		ids[string(p.Identity)] = true
		if p.Self {
			selves++
			if keys.Fingerprint(p.Identity) != idFP {
				return nil, bad("this person's identity differs")
			}
		} else {
			if keys.Fingerprint(p.Identity) == idFP {
				return nil, bad("this person listed as a contact")
			}
			if checkName(p.Name) != nil || names[p.Name] {
				return nil, bad("person %d: name", i)
			}
			names[p.Name] = true
		}
		if p.Verification < store.Unverified || p.Verification > store.Changed {
			return nil, bad("person %d: verification", i)
		}
		if len(p.DeviceList) > 0 {
			l, err := keys.ParseDeviceList(p.DeviceList)
			if err != nil || l.Identity.Fingerprint() != keys.Fingerprint(p.Identity) {
				return nil, bad("person %d: device list", i)
			}
		}
		if len(p.Devices) > keys.MaxDevices || (!p.Self && len(p.Devices) == 0) {
			return nil, bad("person %d: %d devices", i, len(p.Devices))
		}
		devs := map[string]bool{}
		for j := range p.Devices {
			d := &p.Devices[j]
			if len(d.DeviceID) != keys.FingerprintSize || devs[string(d.DeviceID)] {
				return nil, bad("person %d device %d: ID", i, j)
			}
			devs[string(d.DeviceID)] = true
			if len(d.Cert) > 0 {
				cert, err := keys.ParseDeviceCertificate(d.Cert)
				if err != nil || cert.DeviceID() != keys.Fingerprint(d.DeviceID) || cert.Identity.Fingerprint() != keys.Fingerprint(p.Identity) {
					return nil, bad("person %d device %d: certificate", i, j)
				}
			}
			if d.Relay != "" {
				if canon, err := CheckRelayURL(d.Relay); err != nil || canon != d.Relay || len(d.Relay) > MaxRelayURLSize {
					return nil, bad("person %d device %d: relay URL", i, j)
				}
			}
			if d.OwnName != "" && (!p.Self || checkName(d.OwnName) != nil) {
				return nil, bad("person %d device %d: name", i, j)
			}
			if (len(d.Mailbox) != 0 || len(d.Cap) != 0) && (len(d.Mailbox) != 16 || len(d.Cap) != 32 || d.Relay == "") {
				return nil, bad("person %d device %d: route", i, j)
			}
			if d.Direct && (!p.Self || len(d.Mailbox) == 0) {
				return nil, bad("person %d device %d: direct route", i, j)
			}
		}
	}
	switch {
	case share && (selves != 0 || len(snap.Persons) != 1):
		return nil, bad("a share holds one contact")
	case !share && selves != 1:
		return nil, bad("%d records of this person", selves)
	}
	return &snap, nil
}

// importContacts stores a checked snapshot in a new device's store (the
// transaction that creates it): the people, their devices with the routes
// to borrow, and a direct conversation with each contact. Devices of this
// person are its siblings; this device itself is skipped.
func (t *tx) importContacts(snap *contactsSnapshot, devID keys.Fingerprint, now time.Time) error {
	self, err := t.self()
	if err != nil {
		return err
	}
	for i := range snap.Persons {
		sp := &snap.Persons[i]
		p := self
		if sp.Self {
			if len(sp.DeviceList) > 0 {
				if l, err := people.Current(&store.Person{DeviceList: sp.DeviceList}); err == nil && l.Version > self.DeviceListVersion {
					self.DeviceList, self.DeviceListVersion = sp.DeviceList, l.Version
				}
			}
			if err := t.PutPerson(self); err != nil {
				return err
			}
		} else {
			p = &store.Person{
				ID: store.NewID(), Identity: sp.Identity, Name: sp.Name, Verification: sp.Verification,
				Blocked: sp.Blocked, Added: sp.Added,
			}
			if len(sp.DeviceList) > 0 {
				l, err := keys.ParseDeviceList(sp.DeviceList)
				if err != nil {
					return errSnapshot
				}
				p.DeviceList, p.DeviceListVersion = sp.DeviceList, l.Version
			}
			if err := t.PutPerson(p); err != nil {
				return err
			}
			if _, err := t.DirectConversation(p.ID, now); err != nil {
				return err
			}
		}
		for _, sd := range sp.Devices {
			if sp.Self && keys.Fingerprint(sd.DeviceID) == devID {
				continue
			}
			d := &store.Device{
				ID: store.NewID(), Person: p.ID, DeviceID: sd.DeviceID, Cert: sd.Cert, Relay: sd.Relay,
				OwnName: sd.OwnName, Added: sd.Added,
			}
			if len(sd.Mailbox) == 16 {
				d.SendMbx, d.SendCap, d.Borrowed = sd.Mailbox, sd.Cap, !sd.Direct
			}
			if err := t.PutDevice(d); err != nil {
				return err
			}
		}
	}
	return nil
}
