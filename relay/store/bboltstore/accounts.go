package bboltstore

import (
	"context"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// ---- accounts ----
//
// A device's account label is in its record (ops.go) and indexed in the
// accounts bucket (label || 0x00 || device ID); an invite's label is in
// the invite record. Account operations read the index with one prefix
// scan and change every device of the account in one transaction.

func checkLabel(account string) error {
	if account == "" {
		return store.ErrUnknownAccount
	}
	return store.CheckAccountLabel(account)
}

// accountDevices reads the devices of an account from the index.
func accountDevices(tx *bolt.Tx, account string) ([]store.Device, error) {
	var out []store.Device
	p := accountPrefix(account)
	c := tx.Bucket(bAccounts).Cursor()
	for k, _ := c.Seek(p); k != nil && hasPrefix(k, p); k, _ = c.Next() {
		if len(k) != len(p)+len(protocol.DeviceID{}) {
			return nil, corrupt("account key of %d bytes", len(k))
		}
		d, ok := readDevice(tx, k[len(p):])
		if !ok || d.Account != account {
			return nil, corrupt("account index names device %x, whose record does not match", k[len(p):len(p)+4])
		}
		out = append(out, d)
	}
	return out, nil
}

// accountInvites returns the keys of the account's unused invites.
func accountInvites(tx *bolt.Tx, account string) ([][]byte, error) {
	var out [][]byte
	err := tx.Bucket(bInvites).ForEach(func(k, v []byte) error {
		if i, ok := decodeInvite(v); ok && !i.used && i.account == account {
			out = append(out, append([]byte(nil), k...))
		}
		return nil
	})
	return out, err
}

func (s *Store) AssignAccount(ctx context.Context, ids []protocol.DeviceID, account string) ([]string, error) {
	if account != "" {
		if err := store.CheckAccountLabel(account); err != nil {
			return nil, err
		}
	}
	var previous []string
	err := s.update(func(tx *bolt.Tx) error {
		previous = make([]string, len(ids))
		devs := make([]store.Device, len(ids))
		// Every device is read before anything is written: an unknown
		// one refuses the whole request.
		for i, id := range ids {
			d, ok := decodeDevice(id[:], tx.Bucket(bDevices).Get(id[:]))
			if !ok {
				return store.ErrUnknownDevice
			}
			devs[i], previous[i] = d, d.Account
		}
		for _, d := range devs {
			// Read again: the same device may be named twice.
			old, _ := decodeDevice(d.ID[:], tx.Bucket(bDevices).Get(d.ID[:]))
			nd := old
			nd.Account = account
			if err := putDevice(tx, old, nd); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return previous, nil
}

func (s *Store) AccountDevices(ctx context.Context, account string) ([]store.Device, error) {
	if account == "" {
		return nil, nil
	}
	if err := store.CheckAccountLabel(account); err != nil {
		return nil, err
	}
	var out []store.Device
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = accountDevices(tx, account)
		for i := range out {
			out[i].PublicKey = nil // not needed to list
		}
		return err
	})
	return out, err
}

func (s *Store) Accounts(ctx context.Context, now time.Time) ([]store.Account, error) {
	var out []store.Account
	err := s.view(func(tx *bolt.Tx) error {
		byLabel := map[string]*store.Account{}
		get := func(label string) *store.Account {
			a := byLabel[label]
			if a == nil {
				a = &store.Account{Label: label}
				byLabel[label] = a
			}
			return a
		}
		err := tx.Bucket(bAccounts).ForEach(func(k, _ []byte) error {
			label, id, err := splitAccountKey(k)
			if err != nil {
				return err
			}
			d, ok := readDevice(tx, id[:])
			if !ok || d.Account != label {
				return corrupt("account index names device %x, whose record does not match", id[:4])
			}
			a := get(label)
			switch {
			case d.Revoked:
				a.Revoked++
			case d.Suspended:
				a.Suspended++
			default:
				a.Active++
			}
			if d.LastSeen.After(a.LastSeen) {
				a.LastSeen = d.LastSeen
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bInvites).ForEach(func(_, v []byte) error {
			if i, ok := decodeInvite(v); ok && i.account != "" && !i.used && now.Before(unixTime(i.expires)) {
				get(i.account).Invites++
			}
			return nil
		})
		if err != nil {
			return err
		}
		out = make([]store.Account, 0, len(byLabel))
		for _, a := range byLabel {
			out = append(out, *a)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Label < out[j].Label })
		return nil
	})
	return out, err
}

func (s *Store) RevokeAccount(ctx context.Context, account string) (revoked []protocol.DeviceID, invites int, err error) {
	if err := checkLabel(account); err != nil {
		return nil, 0, err
	}
	err = s.updateFreeing(func(tx *bolt.Tx) error {
		revoked, invites = nil, 0
		devs, err := accountDevices(tx, account)
		if err != nil {
			return err
		}
		keys, err := accountInvites(tx, account)
		if err != nil {
			return err
		}
		if len(devs) == 0 && len(keys) == 0 {
			return store.ErrUnknownAccount
		}
		for _, d := range devs {
			if d.Revoked {
				continue
			}
			if err := revokeDevice(tx, d); err != nil {
				return err
			}
			revoked = append(revoked, d.ID)
		}
		for _, k := range keys {
			if err := tx.Bucket(bInvites).Delete(k); err != nil {
				return err
			}
		}
		invites = len(keys)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return revoked, invites, nil
}

func (s *Store) SuspendAccount(ctx context.Context, account string, suspended bool) (changed []protocol.DeviceID, err error) {
	if err := checkLabel(account); err != nil {
		return nil, err
	}
	err = s.updateFreeing(func(tx *bolt.Tx) error {
		changed = nil
		devs, err := accountDevices(tx, account)
		if err != nil {
			return err
		}
		if len(devs) == 0 {
			return store.ErrUnknownAccount
		}
		for _, d := range devs {
			if d.Revoked || d.Suspended == suspended {
				continue
			}
			old := d
			d.Suspended = suspended
			if err := putDevice(tx, old, d); err != nil {
				return err
			}
			changed = append(changed, d.ID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return changed, nil
}
