package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// RelayTrust is what this device holds of one relay's transparency log
// (protocol/SPEC.md section 9 "Local state"): the relay's log signing
// key, pinned the first time the relay was asked for it, and the newest
// signed tree head this device has verified from it. Both are public; the
// record is sealed under the store key like the rest.
type RelayTrust struct {
	V     int    `json:"v"`
	Relay string `json:"relay"`          // the canonical relay URL
	Key   []byte `json:"key"`            // keys.SigningPublicKey encoding
	Head  []byte `json:"head,omitempty"` // the newest verified head (kt.Head encoding)
}

var keyRelayTrust = []byte("relay-trust")

// RelayTrust returns what is kept for relay, nil if nothing.
func (t *Tx) RelayTrust(relay string) (*RelayTrust, error) {
	var r RelayTrust
	ok, err := t.Get(BucketMeta, t.Index(BucketMeta, keyRelayTrust, []byte(relay)), &r)
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

// PutRelayTrust stores r under its relay URL.
func (t *Tx) PutRelayTrust(r *RelayTrust) error {
	if r.Relay == "" || len(r.Key) == 0 {
		return ErrCorrupt
	}
	r.V = 1
	return t.Put(BucketMeta, t.Index(BucketMeta, keyRelayTrust, []byte(r.Relay)), r)
}

// ErrWiped: the store was deleted by Wipe; nothing more is read or
// written through this Store.
var ErrWiped = errors.New("store: the local store was deleted")

// Wipe deletes the store for good, holding the file lock so that no
// other process is inside a transaction: first both slots of erase.keys
// are overwritten with random bytes and synced (so that every value sealed
// under a record key, session and prekey secrets, is unrecoverable even
// from a copy of store.db), then erase.keys and store.db are removed and
// the directory is synced. Later transactions of this Store return
// ErrWiped instead of making a new file. Wiping a store whose files are
// already gone is not an error.
func (s *Store) Wipe() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wiped = true
	if err := s.wipeEraseKeys(); err != nil {
		return err
	}
	// store.db is removed after its lock is released: Windows does not
	// remove a file that is open.
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("store: remove %s: %w", filepath.Base(s.path), err)
	}
	return SyncDir(filepath.Dir(s.path))
}

// wipeEraseKeys overwrites and removes erase.keys under store.db's lock.
func (s *Store) wipeEraseKeys() error {
	if _, err := os.Stat(s.path); err == nil {
		db, err := s.open(false)
		if err != nil {
			return err
		}
		defer db.Close()
	}
	if _, err := os.Stat(s.eraseKeysPath()); err == nil {
		for i := range eraseSlots {
			if err := s.wipeSlot(i); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(s.eraseKeysPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("store: remove %s: %w", EraseKeysFileName, err)
	}
	return nil
}
