package store

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

// Record is the store's own bookkeeping, in the meta bucket (sealed
// under the store key like every meta value).
type Record struct {
	V      int    `json:"v"`
	Schema int    `json:"schema"`
	Epoch  uint64 `json:"epoch"` // the epoch whose key seals the keyring
	// Scrub: free pages may still hold values sealed under the store key
	// by schema 1; they are overwritten with zeros, then this is cleared.
	Scrub bool `json:"scrub,omitempty"`
}

// Record returns the store record, or nil in a store that has none
// (schema 1, or a file not made yet).
func (t *Tx) Record() (*Record, error) {
	var r Record
	ok, err := t.Get(BucketMeta, t.s.Index(BucketMeta, keyStoreRecord), &r)
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

func (t *Tx) putRecord(r *Record) error {
	r.V = 1
	return t.Put(BucketMeta, t.s.Index(BucketMeta, keyStoreRecord), r)
}

// ---- schema, migration, scrubbing ----

// Schema is the store layout this code reads and writes (protocol/SPEC.md
// section 9 "Local state"). A store of an older schema is migrated by
// every due entry of migrations, in one transaction; a newer one is
// refused with ErrTooNew and left as it is.
const Schema = 9

// migration brings a store of schema from to schema from+1. It runs
// inside the transaction of every other due migration and the store
// record's update, so a store is at its old schema or at Schema, never
// between; a migration that fails leaves the file as it was.
type migration struct {
	from int
	what string
	run  func(*Tx, *Record) error
}

// migrations, in order; entry i migrates schema i+1. Schema 1 is a store
// without a store record (release 0.2.0).
var migrations = []migration{
	{1, "prekeys and sessions sealed under erasable record keys", migrate1to2},
	{2, "contacts become people with devices, messages belong to conversations", migrate2to3},
	{3, "folders, drafts and placements", migrate3to4},
	{4, "the counts of each folder", migrate4to5},
	{5, "groups", migrate5to6},
	{6, "teams and their queue conversations", migrate6to7},
	{7, "the organisation directory", migrateDirectory},             // migrate7.go
	{8, "the index of each person's devices", migratePersonDevices}, // migrate8.go
}

// migrate runs every migration due for rec, in t.
func migrate(t *Tx, rec *Record) error {
	for _, m := range migrations {
		if m.from != rec.Schema {
			continue
		}
		if err := m.run(t, rec); err != nil {
			return fmt.Errorf("store: migrate the local store from schema %d (%s): %w", m.from, m.what, err)
		}
		rec.Schema++
	}
	if rec.Schema != Schema {
		return fmt.Errorf("store: no migration from schema %d: %w", rec.Schema, ErrCorrupt)
	}
	return nil
}

// tooNew is the refusal of a store of a newer schema.
func tooNew(schema int) error {
	return fmt.Errorf("%w (store schema %d; this version reads schema %d and older): upgrade postern to open this home", ErrTooNew, schema, Schema)
}

// prepare runs at the start of every read-write open: it creates the
// store record of a new store, migrates an older schema (one transaction),
// refuses a newer one, finishes a scrub, and wipes any slot of erase.keys
// that the store does not name (left by a crash between a commit and a
// wipe).
func (s *Store) prepare(db *bolt.DB) error {
	var rec *Record
	err := db.View(func(bt *bolt.Tx) error {
		if bt.Bucket(BucketMeta) == nil {
			return nil
		}
		var err error
		rec, err = (&Tx{s: s, bt: bt}).Record()
		return err
	})
	if err != nil {
		return err
	}
	if rec != nil && rec.Schema > Schema {
		return tooNew(rec.Schema)
	}
	if rec == nil || rec.Schema < Schema {
		fresh := rec == nil
		err = db.Update(func(bt *bolt.Tx) error {
			for _, b := range allBuckets {
				if _, err := bt.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			t := &Tx{s: s, bt: bt}
			var err error
			if rec == nil {
				if rec, err = t.newStoreRecord(); err != nil {
					return err
				}
			}
			if err := migrate(t, rec); err != nil {
				return err
			}
			if err := t.putRecord(rec); err != nil {
				return err
			}
			return t.finish()
		})
		if err != nil {
			if fresh {
				// Not committed: the store names no epoch, and the
				// erase.keys just made belongs to nothing.
				os.Remove(s.eraseKeysPath())
			}
			return err
		}
	}
	if rec.Scrub {
		if err := s.scrub(db); err != nil {
			return err
		}
	}
	epochs, _, err := s.readSlots()
	if errors.Is(err, ErrEraseKeys) || (err == nil && epochs[0] != rec.Epoch && epochs[1] != rec.Epoch) {
		return s.lost(db)
	}
	if err != nil {
		return err
	}
	for i, e := range epochs {
		if e != 0 && e != rec.Epoch {
			if err := s.wipeSlot(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// lost handles a store whose epoch key is not in erase.keys: a store.db
// restored from a copy, or an erase.keys deleted or damaged. Its
// ephemeral values cannot be read by anyone any more (that is the point):
// they are deleted and a new epoch starts, and Options.Lost fixes what
// referred to them (the client rotates its signed prekey; its sessions
// start again with a notice).
func (s *Store) lost(db *bolt.DB) error {
	return db.Update(func(bt *bolt.Tx) error {
		t := &Tx{s: s, bt: bt}
		rec, err := t.Record()
		if err != nil || rec == nil {
			return errors.Join(err, ErrCorrupt)
		}
		for _, b := range append([][]byte{BucketErasure}, ephemeralBuckets...) {
			if err := bt.DeleteBucket(b); err != nil {
				return err
			}
			if _, err := bt.CreateBucket(b); err != nil {
				return err
			}
		}
		key := make([]byte, eraseKeySize)
		rand.Read(key)
		rec.Epoch++
		if err := s.createEraseKeys(rec.Epoch, key); err != nil {
			return err
		}
		t.er = &eraseState{epoch: rec.Epoch, key: key, ring: map[string][]byte{}, dirty: true, newSlot: -1, oldSlot: -1}
		if s.lostFn != nil {
			if err := s.lostFn(t); err != nil {
				return err
			}
		}
		if err := t.putRecord(rec); err != nil {
			return err
		}
		return t.finish()
	})
}

// newStoreRecord starts the erasure of a store that has no store record:
// erase.keys with epoch 1 and an empty keyring. It reports whether the
// store held anything (then it is schema 1, the layout before erasure).
func (t *Tx) newStoreRecord() (*Record, error) {
	legacy := false
	for _, b := range allBuckets {
		if k, _ := t.bt.Bucket(b).Cursor().First(); k != nil {
			legacy = true
		}
	}
	key := make([]byte, eraseKeySize)
	rand.Read(key)
	if err := t.s.createEraseKeys(1, key); err != nil {
		return nil, err
	}
	t.er = &eraseState{epoch: 1, key: key, ring: map[string][]byte{}, dirty: true, newSlot: -1, oldSlot: -1}
	if legacy {
		return &Record{Schema: 1, Epoch: 1}, nil
	}
	return &Record{Schema: Schema, Epoch: 1}, nil
}

// migrate1to2: every value of the ephemeral buckets is re-sealed under a
// record key, and the store is marked for scrubbing (its free pages, and
// the pages this transaction frees, hold values sealed under Kenc).
func migrate1to2(t *Tx, rec *Record) error {
	rec.Scrub = true
	return t.resealEphemeral(BucketPrekeys, BucketSessions)
}

// resealEphemeral re-seals every value of buckets, sealed under Kenc,
// under record keys: the migration of a bucket that becomes ephemeral
// (which also needs the scrub).
func (t *Tx) resealEphemeral(buckets ...[]byte) error {
	for _, b := range buckets {
		type kv struct{ k, v []byte }
		var all []kv
		c := t.bt.Bucket(b).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			p, err := t.decryptEnc(b, k, v)
			if err != nil {
				return err
			}
			all = append(all, kv{bytes.Clone(k), p})
		}
		for _, e := range all {
			if err := t.putEphemeral(b, e.k, e.v); err != nil {
				return err
			}
		}
	}
	return nil
}

// scrub overwrites every free page of the store file, and the file past
// its last page, with zeros, syncs, and clears the store record's Scrub.
// The write lock is held (db is open read-write), so no other process
// reads the pages.
func (s *Store) scrub(db *bolt.DB) error {
	return db.Update(func(bt *bolt.Tx) error {
		f, err := os.OpenFile(s.path, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("store: scrub local store: %w", err)
		}
		defer f.Close()
		ps := db.Info().PageSize
		zero := make([]byte, ps)
		id := 0
		for ; ; id++ {
			info, err := bt.Page(id)
			if err != nil {
				return err
			}
			if info == nil {
				break // the high-water mark
			}
			if info.Type == "free" {
				if _, err := f.WriteAt(zero, int64(id)*int64(ps)); err != nil {
					return fmt.Errorf("store: scrub local store: %w", err)
				}
			}
		}
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		for off := int64(id) * int64(ps); off < fi.Size(); off += int64(ps) {
			if _, err := f.WriteAt(zero[:min(int64(ps), fi.Size()-off)], off); err != nil {
				return fmt.Errorf("store: scrub local store: %w", err)
			}
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("store: scrub local store: %w", err)
		}
		t := &Tx{s: s, bt: bt}
		rec, err := t.Record()
		if err != nil || rec == nil {
			return errors.Join(err, ErrCorrupt)
		}
		rec.Scrub = false
		return t.putRecord(rec)
	})
}

// checkSchema is view's check: a store this code can read as it is, or
// errNeedsPrepare (an older schema, or a scrub or migration pending).
func checkSchema(bt *bolt.Tx, s *Store) error {
	t := &Tx{s: s, bt: bt}
	if bt.Bucket(BucketMeta) == nil {
		return errNeedsPrepare
	}
	rec, err := t.Record()
	if err != nil {
		return err
	}
	switch {
	case rec == nil || rec.Scrub || rec.Schema < Schema:
		return errNeedsPrepare
	case rec.Schema > Schema:
		return tooNew(rec.Schema)
	}
	return nil
}
