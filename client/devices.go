package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/postern/postern/client/internal/people"
	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/protocol"
)

// This device's own signed device list (protocol/SPEC.md section 8
// "Device lists", section 9 "Local state"). Init publishes version 1; a
// home made before device lists publishes it at its first connection. The
// relay's answers are checked by client/internal/people against the log
// key pinned for the relay and the newest head kept for it.

// ErrTransparency: the relay's transparency log does not check out (a
// changed log key, a forked or rolled-back log, a swapped or older device
// list). Nothing was changed; the error says which check failed.
var ErrTransparency = people.ErrTransparency

// DeviceInfo is one device of this person, from the newest verified
// device list.
type DeviceInfo struct {
	ID     keys.Fingerprint // the device ID
	Name   string           // its name, if this device knows it ("" if not)
	This   bool             // this device
	Linked time.Time        // when it was linked
	Relay  string           // the relay it receives on
}

// Devices returns this person's devices from the newest device list,
// fetched from the relay and verified first (connecting as Sync does).
// A relay whose answer does not check out gives ErrTransparency.
func (c *Client) Devices(ctx context.Context) ([]DeviceInfo, error) {
	cn, err := c.authConn(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.ownDeviceList(ctx, cn); err != nil {
		return nil, err
	}
	var out []DeviceInfo
	err = c.st.view(func(t *tx) error {
		self, err := t.self()
		if err != nil {
			return err
		}
		l, err := people.Current(self)
		if err != nil {
			return err
		}
		if l == nil {
			return fmt.Errorf("client: no device list is kept for this person")
		}
		ds, err := t.DevicesOf(self.ID)
		if err != nil {
			return err
		}
		for _, d := range l.Devices {
			info := DeviceInfo{ID: d.ID, This: d.ID == c.devID, Linked: d.Linked, Relay: d.Relay}
			for _, r := range ds {
				if bytes.Equal(r.DeviceID, d.ID[:]) {
					info.Name = r.OwnName
				}
			}
			out = append(out, info)
		}
		return nil
	})
	return out, err
}

// self returns this device's own person.
func (t *tx) self() (*store.Person, error) {
	ps, err := t.Persons()
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if p.Self {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%w: no person of this device", errStoreCorrupt)
}

// ownDeviceList makes sure the relay holds and logs a device list of this
// person, and keeps its newest verified version: it pins the relay's log
// key on first use, publishes version 1 if this person has no list yet
// (a new home, or one made before device lists), then fetches the list
// with a consistency proof from the kept head and verifies it
// (people.Accept). A PublishDeviceList answer carries no consistency
// proof, hence the fetch.
func (c *Client) ownDeviceList(ctx context.Context, cn *conn) error {
	var (
		self *store.Person
		prof *profileRecord
	)
	err := c.st.view(func(t *tx) (err error) {
		if self, err = t.self(); err != nil {
			return err
		}
		prof, err = t.profile()
		return err
	})
	if err != nil {
		return err
	}
	if err := c.pinLogKey(ctx, cn); err != nil {
		return err
	}
	if self.DeviceListVersion == 0 {
		list, err := people.FirstList(c.id, c.devID, c.relay, prof.Created)
		if err != nil {
			return err
		}
		_, err = cn.request(ctx, &protocol.PublishDeviceList{List: list})
		// Stale: the relay holds a list already (a publish whose answer
		// was lost); the fetch below verifies and keeps it.
		if err != nil && !protocol.IsCode(err, protocol.CodeStaleDeviceList) {
			return fmt.Errorf("client: publish device list: %w", err)
		}
	}
	l, err := c.fetchOwnList(ctx, cn)
	if errors.Is(err, errNoList) {
		return fmt.Errorf("%w: the relay holds no device list for this person", ErrTransparency)
	}
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(l.Devices, func(d keys.ListedDevice) bool { return d.ID == c.devID }) {
		// The relay refuses a device its person's list drops
		// (code 13); a list without this device that it still
		// serves to it is not this device's to keep.
		return fmt.Errorf("%w: the person's device list does not hold this device", ErrTransparency)
	}
	return nil
}

// answerOf is the kt.Answer of a DeviceList frame.
func answerOf(dl *protocol.DeviceList) kt.Answer {
	a := kt.Answer{List: dl.List, Index: dl.Index, Head: dl.Head}
	for _, h := range dl.Inclusion {
		a.Inclusion = append(a.Inclusion, [kt.HashSize]byte(h))
	}
	for _, h := range dl.Consistency {
		a.Consistency = append(a.Consistency, [kt.HashSize]byte(h))
	}
	return a
}

// ErrDeviceRevoked: the relay refused this device with code 13 (device
// revoked), at authentication or by closing its connection. The device's
// keys and local store were deleted (or, if the error also says so, their
// deletion failed); the Client stops.
var ErrDeviceRevoked = errors.New("client: this device was revoked by its owner or the relay's operator; its keys and messages were deleted from this computer")

// revokedError is ErrDeviceRevoked with the relay's refusal (code 13)
// and, if deleting failed, why.
type revokedError struct{ cause, wipeErr error }

func (e *revokedError) Error() string {
	if e.wipeErr == nil {
		return ErrDeviceRevoked.Error()
	}
	return "client: this device was revoked by its owner or the relay's operator; deleting its keys and messages from this computer failed (" + e.wipeErr.Error() + "): delete its home directory by hand"
}
func (e *revokedError) Is(target error) bool { return target == ErrDeviceRevoked }
func (e *revokedError) Unwrap() []error {
	if e.wipeErr == nil {
		return []error{e.cause}
	}
	return []error{e.cause, e.wipeErr}
}

// revoked wipes this device after the relay refused it with code 13 and
// stops the Client with ErrDeviceRevoked. Only code 13 leads here: a
// network error, an unknown device or a failed authentication never
// deletes anything.
func (c *Client) revoked(cause error) error {
	c.wipeOnce.Do(func() {
		c.log.Error("the relay says this device was revoked; deleting its keys and local store")
		c.wipeErr = c.wipe()
		if c.wipeErr != nil {
			c.log.Error("could not delete this device's keys and store", "err", c.wipeErr)
		}
	})
	err := &revokedError{cause: cause, wipeErr: c.wipeErr}
	c.mu.Lock()
	c.fatal = err
	c.broadcastLocked()
	c.mu.Unlock()
	c.emitConn(ConnOffline, err)
	return err
}

// wipe deletes erase.keys first (its slots overwritten in place, so that
// session and prekey secrets sealed under record keys are unrecoverable
// from any copy of store.db), then store.db, keys.pstn and the search
// index, syncing the home directory.
func (c *Client) wipe() error {
	c.st.idx.close()
	if err := c.st.Wipe(); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(c.home, KeyFileName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := c.st.idx.remove(); err != nil {
		return err
	}
	return store.SyncDir(c.home)
}

// firstDeviceList publishes this person's first device list on the first
// connection of a home that has none (made before device lists), and pins
// the relay's log key if none is pinned. A failure is logged and tried
// again at the next connection: receiving does not wait for it.
func (c *Client) firstDeviceList(ctx context.Context, cn *conn) {
	var need bool
	err := c.st.view(func(t *tx) error {
		self, err := t.self()
		if err != nil {
			return err
		}
		k, err := people.Pinned(t.Tx, c.relay)
		need = self.DeviceListVersion == 0 || k == nil
		return err
	})
	if err == nil && need {
		err = c.ownDeviceList(ctx, cn)
	}
	if err != nil {
		c.log.Warn("device list not published", "err", err)
	}
}
