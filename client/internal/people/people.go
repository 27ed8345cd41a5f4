package people

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/keys/kt"
)

// ErrTransparency: a relay's answer that does not check out against what
// this device holds: a changed log key, a head not signed by the pinned
// key, a list not in the signed log, a head older than or inconsistent
// with the kept one (fork), another version's list under a version
// already verified (swap) or a lower list version (rollback). The wrapped
// kt error says which. Nothing is changed.
var ErrTransparency = errors.New("people: the relay's transparency log does not check out")

// ErrNoKey: no log key is pinned for the relay yet (Pin first).
var ErrNoKey = errors.New("people: no log key pinned for this relay")

func transparency(err error) error { return fmt.Errorf("%w: %w", ErrTransparency, err) }

// Pinned returns the log key pinned for relay, nil if none.
func Pinned(t *store.Tx, relay string) (*keys.SigningPublicKey, error) {
	tr, err := t.RelayTrust(relay)
	if err != nil || tr == nil {
		return nil, err
	}
	k, err := keys.ParseSigningPublicKey(tr.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: pinned log key: %v", store.ErrCorrupt, err)
	}
	return k, nil
}

// Pin pins key (the relay's answer to FetchLogKey) as relay's log key on
// first use. A relay that later gives another key is refused
// (ErrTransparency): heads signed by it would not be believed anyway.
func Pin(t *store.Tx, relay string, key []byte) (*keys.SigningPublicKey, error) {
	k, err := keys.ParseSigningPublicKey(key)
	if err != nil {
		return nil, transparency(fmt.Errorf("%w: log key: %v", kt.ErrBadHead, err))
	}
	tr, err := t.RelayTrust(relay)
	if err != nil {
		return nil, err
	}
	if tr != nil {
		if !bytes.Equal(tr.Key, k.Bytes()) {
			return nil, transparency(fmt.Errorf("%w: the relay's log key changed since it was pinned", kt.ErrBadHead))
		}
		return k, nil
	}
	if err := t.PutRelayTrust(&store.RelayTrust{Relay: relay, Key: k.Bytes()}); err != nil {
		return nil, err
	}
	return k, nil
}

// KnownSize is the size of the newest head kept for relay (0: none), for
// FetchDeviceList's known size.
func KnownSize(t *store.Tx, relay string) (uint64, error) {
	_, h, err := known(t, relay)
	if err != nil || h == nil {
		return 0, err
	}
	return h.Size, nil
}

// known returns the pinned key and the kept head of relay.
func known(t *store.Tx, relay string) (*keys.SigningPublicKey, *kt.Head, error) {
	tr, err := t.RelayTrust(relay)
	if err != nil {
		return nil, nil, err
	}
	if tr == nil {
		return nil, nil, ErrNoKey
	}
	k, err := keys.ParseSigningPublicKey(tr.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: pinned log key: %v", store.ErrCorrupt, err)
	}
	if len(tr.Head) == 0 {
		return k, nil, nil
	}
	h, err := kt.ParseHead(tr.Head, k)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: kept tree head: %v", store.ErrCorrupt, err)
	}
	return k, h, nil
}

// Accept verifies a relay's answer for person p (kt.VerifyAnswer against
// relay's pinned key and kept head) and keeps, in t, the newer head and
// the newer list (p is updated and stored). It refuses a list version
// lower than p's (rollback) and, under p's own version, a list other than
// the one kept (swap). On any error nothing is written: the caller's
// transaction is to be rolled back by returning it.
func Accept(t *store.Tx, relay string, p *store.Person, a kt.Answer) (*keys.DeviceList, error) {
	if len(p.Identity) != keys.FingerprintSize {
		return nil, store.ErrCorrupt
	}
	key, head, err := known(t, relay)
	if err != nil {
		return nil, err
	}
	l, h, err := kt.VerifyAnswer(a, key, keys.Fingerprint(p.Identity), head)
	if err != nil {
		return nil, transparency(err)
	}
	switch {
	case l.Version < p.DeviceListVersion:
		return nil, transparency(fmt.Errorf("%w: device list version %d after version %d", kt.ErrRollback, l.Version, p.DeviceListVersion))
	case l.Version == p.DeviceListVersion && !bytes.Equal(a.List, p.DeviceList):
		return nil, transparency(fmt.Errorf("%w: another device list under version %d", kt.ErrFork, l.Version))
	}
	if head == nil || h.Size > head.Size {
		tr, err := t.RelayTrust(relay)
		if err != nil {
			return nil, err
		}
		tr.Head = h.Bytes()
		if err := t.PutRelayTrust(tr); err != nil {
			return nil, err
		}
	}
	if l.Version > p.DeviceListVersion {
		p.DeviceList, p.DeviceListVersion = bytes.Clone(a.List), l.Version
		if err := t.PutPerson(p); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// FirstList signs version 1 of a person's device list with one device,
// dev, receiving on relay, linked at linked.
func FirstList(id *identity.Identity, dev keys.Fingerprint, relay string, linked time.Time) ([]byte, error) {
	linked = linked.Truncate(time.Second)
	return id.SignDeviceList(&keys.DeviceList{
		Version: 1,
		Created: linked,
		Devices: []keys.ListedDevice{{ID: dev, Linked: linked, Relay: relay}},
	})
}

// Current parses p's kept list, nil if it has none.
func Current(p *store.Person) (*keys.DeviceList, error) {
	if len(p.DeviceList) == 0 {
		return nil, nil
	}
	l, err := keys.ParseDeviceList(p.DeviceList)
	if err != nil {
		return nil, fmt.Errorf("%w: kept device list: %v", store.ErrCorrupt, err)
	}
	return l, nil
}

// Kept returns the log key pinned for relay and the newest head kept for
// it (nil if none): what a gossiped head of that relay is compared with.
// ErrNoKey if no key is pinned.
func Kept(t *store.Tx, relay string) (*keys.SigningPublicKey, *kt.Head, error) {
	return known(t, relay)
}
