package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/postern/postern/client/internal/people"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
)

// Homes for a new person (Init) and for a new device of an existing person
// (a linked device, a restored backup): protocol/SPEC.md section 9 "Local
// state" and section 13.

// ErrTooManyDevices: the person has keys.MaxDevices devices already; a
// device must be revoked before another is linked or restored.
var ErrTooManyDevices = fmt.Errorf("client: this person already has %d devices, the most there can be; revoke one first (postern device revoke NAME)", keys.MaxDevices)

// homeSpec is what createHome makes a home from.
type homeSpec struct {
	relay      string
	personName string
	id         *identity.Identity
	dev        *identity.Device
	// deviceName is this device's own name (a linked or restored device);
	// "" for a person's first device.
	deviceName string
	// join: a new device of an existing person. Instead of publishing
	// version 1 of the device list, the device makes sure it is in the
	// person's list (adding itself when it holds the identity and is not).
	join bool
	// enrolled: the device enrolled on the relay already (a linked device
	// enrols to receive the link response); it authenticates instead.
	enrolled bool
	// mailboxes made before the home existed (the link reply mailbox),
	// recorded with the default one.
	mailboxes []mailboxRecord
	// imports runs in the transaction that stores the profile: the
	// contacts snapshot, the sibling that linked the device.
	imports func(t *tx, c *Client) error
}

// createHome writes the key file and the store of a new home, enrols the
// device, creates its first mailbox, publishes its prekeys and its place
// in the person's device list, and returns the connected Client. If any
// step fails, the home's files are removed so it can be tried again.
func createHome(ctx context.Context, home string, passphrase []byte, spec *homeSpec, opts *Options) (_ *Client, err error) {
	o := opts.defaults()
	if len(passphrase) == 0 {
		return nil, ErrEmptyPassphrase
	}
	keyPath, dbPath := filepath.Join(home, KeyFileName), filepath.Join(home, StoreFileName)
	if exists(keyPath) || exists(dbPath) {
		return nil, ErrExists
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("client: create home: %w", err)
	}
	storeKey := make([]byte, storeKeySize)
	rand.Read(storeKey)
	file, err := identity.SealKeyFile(passphrase, marshalKeyPayload(spec.id, spec.dev, storeKey), *o.KDF)
	if err != nil {
		return nil, err
	}
	if err := identity.WriteKeyFile(keyPath, file); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, ErrExists
		}
		return nil, fmt.Errorf("client: write key file: %w", err)
	}
	var c *Client
	defer func() {
		if err != nil {
			if c != nil {
				c.Close()
			}
			os.Remove(dbPath)
			os.Remove(filepath.Join(home, EraseKeysFileName))
			os.Remove(keyPath)
		}
	}()
	st, err := newStore(dbPath, storeKey)
	if err != nil {
		return nil, err
	}
	c = newClient(home, o, spec.dev, spec.personName, spec.relay, st)
	c.id = spec.id
	prof := &profileRecord{
		Name: spec.personName, Relay: spec.relay,
		Identity: c.idFP[:], Device: c.devID[:],
		Created: o.Now().UTC(),
	}
	err = st.update(func(t *tx) error {
		if err := t.putProfile(prof); err != nil {
			return err
		}
		if err := t.putSelf(prof, spec.deviceName); err != nil {
			return err
		}
		for _, m := range spec.mailboxes {
			if err := t.addMailbox(m); err != nil {
				return err
			}
		}
		if spec.imports != nil {
			return spec.imports(t, c)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	cn, err := dialRelay(ctx, spec.relay, newPushQueue(), c.tlsConf)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			cn.close()
		}
	}()
	if err := cn.authenticate(ctx, certSigner{spec.dev}, !spec.enrolled, o.Invite); err != nil {
		return nil, fmt.Errorf("client: enrol: %w", err)
	}
	r, err := cn.request(ctx, &protocol.CreateMailbox{})
	if err != nil {
		return nil, fmt.Errorf("client: create mailbox: %w", err)
	}
	mc, ok := r.(*protocol.MailboxCreated)
	if !ok {
		return nil, unexpected(r)
	}
	pub, err := c.makePrekeys(0, OneTimePrekeys)
	if err != nil {
		return nil, err
	}
	if err := cn.ok(ctx, pub); err != nil {
		return nil, fmt.Errorf("client: publish prekeys: %w", err)
	}
	err = st.update(func(t *tx) error {
		if err := t.addMailbox(mailboxRecord{ID: mc.Mailbox[:], Purpose: "default", Created: o.Now().UTC()}); err != nil {
			return err
		}
		prof.Enrolled = true
		return t.putProfile(prof)
	})
	if err != nil {
		return nil, err
	}
	// Spare mailboxes now, while enrolling: the first Accept then makes
	// no authenticated request (introduction.go).
	if err := c.fillSpares(ctx, cn); err != nil {
		c.log.Warn("could not prepare spare mailboxes", "err", err)
	}
	if spec.join {
		err = c.joinDeviceList(ctx, cn)
	} else {
		// Version 1 of this person's signed device list: this device
		// alone.
		err = c.ownDeviceList(ctx, cn)
	}
	if err != nil {
		return nil, err
	}
	if _, err := c.start(ctx, cn); err != nil {
		return nil, err
	}
	c.log.Info("initialised", "device", c.devID.Short(), "relay", spec.relay, "joined", spec.join)
	return c, nil
}

// joinHome makes home the home of a new device of the person whose
// identity is id (a restored backup): dev is the device, certified by id;
// it receives on relay. The device adds itself to the person's device
// list (ErrTooManyDevices if it holds keys.MaxDevices already). imports,
// if not nil, runs in the transaction that stores the profile.
func joinHome(ctx context.Context, home string, passphrase []byte, relay, personName, deviceName string, id *identity.Identity, dev *identity.Device, imports func(t *tx, c *Client) error, opts *Options) (*Client, error) {
	relay, err := CheckRelayURL(relay)
	if err != nil {
		return nil, err
	}
	if err := checkName(personName); err != nil {
		return nil, err
	}
	if err := checkName(deviceName); err != nil {
		return nil, err
	}
	if dev.Certificate().Identity.Fingerprint() != id.Public().Fingerprint() {
		return nil, fmt.Errorf("client: the device is not certified by this identity")
	}
	return createHome(ctx, home, passphrase, &homeSpec{
		relay: relay, personName: personName, deviceName: deviceName,
		id: id, dev: dev, join: true, imports: imports,
	}, opts)
}

// joinDeviceList makes sure this device, new to an existing person, is in
// the person's signed device list on the relay: it fetches and verifies
// the current list (pinning the relay's log key), and if this device is not
// in it, signs and publishes the next version with it added
// (ErrTooManyDevices when the list is full).
func (c *Client) joinDeviceList(ctx context.Context, cn *conn) error {
	l, err := c.fetchOwnList(ctx, cn)
	if err != nil && !errors.Is(err, errNoList) {
		return err
	}
	if l != nil && l.Contains(c.devID) {
		return nil
	}
	if l != nil && len(l.Devices) >= keys.MaxDevices {
		return ErrTooManyDevices
	}
	signed, err := c.id.SignDeviceList(listWith(l, c.devID, c.relay, c.now()))
	if err != nil {
		return err
	}
	if _, err := cn.request(ctx, &protocol.PublishDeviceList{List: signed}); err != nil {
		return fmt.Errorf("client: publish device list: %w", err)
	}
	if l, err = c.fetchOwnList(ctx, cn); err != nil {
		return err
	}
	if !l.Contains(c.devID) {
		return fmt.Errorf("%w: the person's device list does not hold this device", ErrTransparency)
	}
	return nil
}

// errNoList: the relay holds no device list for this person.
var errNoList = errors.New("client: no device list")

// fetchOwnList pins the relay's log key on first use, fetches this
// person's device list with proofs from the kept head, verifies it and
// keeps it (people.Accept). errNoList if the relay holds none.
func (c *Client) fetchOwnList(ctx context.Context, cn *conn) (*keys.DeviceList, error) {
	if err := c.pinLogKey(ctx, cn); err != nil {
		return nil, err
	}
	var known uint64
	if err := c.st.view(func(t *tx) (err error) { known, err = people.KnownSize(t.Tx, c.relay); return err }); err != nil {
		return nil, err
	}
	r, err := cn.request(ctx, &protocol.FetchDeviceList{Identity: c.idFP, KnownSize: known})
	if protocol.IsCode(err, protocol.CodeUnknownIdentity) {
		return nil, errNoList
	}
	if err != nil {
		return nil, fmt.Errorf("client: fetch device list: %w", err)
	}
	dl, ok := r.(*protocol.DeviceList)
	if !ok {
		return nil, unexpected(r)
	}
	var l *keys.DeviceList
	err = c.st.update(func(t *tx) error {
		self, err := t.self()
		if err != nil {
			return err
		}
		l, err = people.Accept(t.Tx, c.relay, self, answerOf(dl))
		return err
	})
	return l, err
}

// pinLogKey pins the relay's log key if none is pinned for it.
func (c *Client) pinLogKey(ctx context.Context, cn *conn) error {
	var pinned *keys.SigningPublicKey
	if err := c.st.view(func(t *tx) (err error) { pinned, err = people.Pinned(t.Tx, c.relay); return err }); err != nil || pinned != nil {
		return err
	}
	r, err := cn.request(ctx, &protocol.FetchLogKey{})
	if err != nil {
		return fmt.Errorf("client: fetch the relay's log key: %w", err)
	}
	lk, ok := r.(*protocol.LogKey)
	if !ok {
		return unexpected(r)
	}
	return c.st.update(func(t *tx) error { _, err := people.Pin(t.Tx, c.relay, lk.Key); return err })
}

// listWith is the next version of l (nil: none yet) with device id, on
// relay, linked now, added in device-ID order.
func listWith(l *keys.DeviceList, id keys.Fingerprint, relay string, now time.Time) *keys.DeviceList {
	next := &keys.DeviceList{Version: 1, Created: now.UTC().Truncate(time.Second)}
	if l != nil {
		next.Version, next.Devices = l.Version+1, slices.Clone(l.Devices)
	}
	next.Devices = append(next.Devices, keys.ListedDevice{ID: id, Linked: next.Created, Relay: relay})
	slices.SortFunc(next.Devices, func(a, b keys.ListedDevice) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return next
}
