package store

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"testing"
	"time"
)

// checkDevicesOf: for every person of persons and one unknown, DevicesOf
// is Devices filtered by person, in the same order; the index holds one
// entry per device record and no other (nothing stale), and its keys
// hold no person ID in clear.
func checkDevicesOf(t *Tx, persons [][]byte) error {
	all, err := t.Devices()
	if err != nil {
		return err
	}
	for _, p := range append(persons, NewID()) {
		var want [][]byte
		for _, d := range all {
			if bytes.Equal(d.Person, p) {
				want = append(want, d.ID)
			}
		}
		got, err := t.DevicesOf(p)
		if err != nil {
			return fmt.Errorf("DevicesOf: %w", err)
		}
		if len(got) != len(want) {
			return fmt.Errorf("person %x: %d devices, want %d", p, len(got), len(want))
		}
		for i, d := range got {
			if !bytes.Equal(d.ID, want[i]) || !bytes.Equal(d.Person, p) {
				return fmt.Errorf("person %x: device %d is %x, want %x", p, i, d.ID, want[i])
			}
		}
	}
	n := 0
	c := t.bt.Bucket(BucketPersonDevices).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		n++
		if _, err := t.decrypt(BucketPersonDevices, k, v); err != nil {
			return fmt.Errorf("index entry %x: %w", k, err)
		}
		for _, p := range persons {
			if bytes.Contains(k, p) {
				return fmt.Errorf("index key %x holds person ID %x", k, p)
			}
		}
	}
	if n != len(all) {
		return fmt.Errorf("%d index entries for %d device records", n, len(all))
	}
	return nil
}

// TestDevicesOfRandomOperations: DevicesOf agrees with a filtered Devices
// after every step of a random sequence of device puts, updates, moves to
// another person, device deletions and person deletions, with the
// migration to schema 9 run (on an index emptied and on one left with
// stale entries) in the middle.
func TestDevicesOfRandomOperations(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, 0x706f737465726e))
	key := make([]byte, KeySize)
	rand.Read(key)
	path := filepath.Join(t.TempDir(), "store.db")
	st, err := New(path, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	persons := make([][]byte, 6)
	for i := range persons {
		persons[i] = NewID()
	}
	var devices [][]byte // record IDs put (some since deleted)
	step := func(tx *Tx) error {
		switch op := rng.IntN(10); {
		case op < 4 || len(devices) == 0: // a new device
			d := &Device{ID: NewID(), Person: persons[rng.IntN(len(persons))], DeviceID: make([]byte, 32), Cert: []byte("cert")}
			devices = append(devices, d.ID)
			return tx.PutDevice(d)
		case op < 7: // an update, moving it to another person half the time
			d, err := tx.Device(devices[rng.IntN(len(devices))])
			if err != nil || d == nil {
				return err
			}
			if rng.IntN(2) == 0 {
				d.Person = persons[rng.IntN(len(persons))]
			}
			d.Relay = fmt.Sprint("wss://relay-", rng.IntN(100))
			return tx.PutDevice(d)
		case op < 9:
			return tx.DeleteDevice(devices[rng.IntN(len(devices))])
		default:
			return tx.DeletePerson(persons[rng.IntN(len(persons))])
		}
	}
	for i := range 300 {
		// Several operations in one transaction, so that a transaction
		// sees its own changes, then checked in a read-only one.
		err := st.Update(func(tx *Tx) error {
			for range 1 + rng.IntN(3) {
				if err := step(tx); err != nil {
					return err
				}
			}
			return checkDevicesOf(tx, persons)
		})
		if err == nil {
			err = st.View(func(tx *Tx) error { return checkDevicesOf(tx, persons) })
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if i == 100 || i == 200 {
			// Back to schema 8: at 100 without the index bucket, at 200
			// with an entry for a device that is gone and one that names
			// another person's device.
			err := st.Update(func(tx *Tx) error {
				if i == 100 {
					if err := tx.bt.DeleteBucket(BucketPersonDevices); err != nil {
						return err
					}
				} else {
					if err := tx.PutRaw(BucketPersonDevices, tx.personDeviceKey(persons[0], NewID()), nil); err != nil {
						return err
					}
					ds, err := tx.Devices()
					if err != nil {
						return err
					}
					for _, d := range ds {
						if !bytes.Equal(d.Person, persons[1]) {
							if err := tx.PutRaw(BucketPersonDevices, tx.personDeviceKey(persons[1], d.ID), nil); err != nil {
								return err
							}
							break
						}
					}
				}
				r, err := tx.Record()
				if err != nil {
					return err
				}
				r.Schema = 8
				return tx.putRecord(r)
			})
			if err != nil {
				t.Fatal(err)
			}
			err = st.View(func(tx *Tx) error {
				if r, err := tx.Record(); err != nil || r.Schema != Schema {
					return fmt.Errorf("record %+v, %v", r, err)
				}
				return checkDevicesOf(tx, persons)
			})
			if err != nil {
				t.Fatalf("after the migration at step %d: %v", i, err)
			}
		}
	}
}

// TestDevicesOfAfterMigrationFrom2: a schema 2 home migrated through
// every schema gets each person's devices from the index.
func TestDevicesOfAfterMigrationFrom2(t *testing.T) {
	h := makeSchema2(t, t.TempDir(), 4, 10)
	st, err := New(h.path, h.key, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = st.View(func(tx *Tx) error {
		ps, err := tx.Persons()
		if err != nil {
			return err
		}
		var ids [][]byte
		for _, p := range ps {
			ids = append(ids, p.ID)
			ds, err := tx.DevicesOf(p.ID)
			if err != nil {
				return err
			}
			if len(ds) != 1 {
				return fmt.Errorf("person %q has %d devices", p.Name, len(ds))
			}
		}
		if len(ps) != 5 {
			return fmt.Errorf("%d persons", len(ps))
		}
		return checkDevicesOf(tx, ids)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigratePersonDevicesFailureChangesNothing: a device record that
// does not decode fails the migration to schema 9, which leaves the
// store at schema 8, without the index.
func TestMigratePersonDevicesFailureChangesNothing(t *testing.T) {
	st := testStore(t)
	err := st.Update(func(tx *Tx) error {
		if err := tx.PutDevice(&Device{ID: NewID(), Person: NewID()}); err != nil {
			return err
		}
		if err := tx.Put(BucketDevices, NewID(), "not a device record"); err != nil {
			return err
		}
		if err := tx.bt.DeleteBucket(BucketPersonDevices); err != nil {
			return err
		}
		r, err := tx.Record()
		if err != nil {
			return err
		}
		r.Schema = 8
		return tx.putRecord(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(*Tx) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("migration: %v, want ErrCorrupt", err)
	}
	db, err := st.open(true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	r, err := (&Tx{s: st, bt: tx}).Record()
	if err != nil || r.Schema != 8 || tx.Bucket(BucketPersonDevices) != nil {
		t.Fatalf("after the failed migration: record %+v, %v; index bucket %v", r, err, tx.Bucket(BucketPersonDevices) != nil)
	}
}

// TestDevicesOfStaleEntry: an index entry naming a device record that is
// gone, or one of another person, is ErrCorrupt, not a device.
func TestDevicesOfStaleEntry(t *testing.T) {
	st := testStore(t)
	alice, bob := NewID(), NewID()
	d := &Device{ID: NewID(), Person: bob}
	err := st.Update(func(tx *Tx) error {
		if err := tx.PutDevice(d); err != nil {
			return err
		}
		if err := tx.PutRaw(BucketPersonDevices, tx.personDeviceKey(alice, d.ID), nil); err != nil {
			return err
		}
		return tx.PutRaw(BucketPersonDevices, tx.personDeviceKey(bob, NewID()), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = st.View(func(tx *Tx) error {
		for _, p := range [][]byte{alice, bob} {
			if ds, err := tx.DevicesOf(p); !errors.Is(err, ErrCorrupt) {
				return fmt.Errorf("%d devices, %v; want ErrCorrupt", len(ds), err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkDevicesOf: one person's devices in a store of 500 device
// records (each with a certificate of 8.5 KB, as a real one) of 100
// persons, in one read-only transaction. "scan" is the way before the
// index: every record opened and decoded, then filtered.
func BenchmarkDevicesOf(b *testing.B) {
	key := make([]byte, KeySize)
	rand.Read(key)
	st, err := New(filepath.Join(b.TempDir(), "store.db"), key, nil)
	if err != nil {
		b.Fatal(err)
	}
	persons := make([][]byte, 100)
	for i := range persons {
		persons[i] = NewID()
	}
	cert := make([]byte, 8500)
	rand.Read(cert)
	err = st.Update(func(tx *Tx) error {
		for i := range 500 {
			if err := tx.PutDevice(&Device{ID: NewID(), Person: persons[i%len(persons)], DeviceID: NewID(), Cert: cert, Relay: "wss://relay.example.org"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, bm := range []struct {
		name string
		of   func(*Tx, []byte) ([]*Device, error)
	}{
		{"index", (*Tx).DevicesOf},
		{"scan", func(tx *Tx, p []byte) ([]*Device, error) {
			all, err := tx.Devices()
			var out []*Device
			for _, d := range all {
				if bytes.Equal(d.Person, p) {
					out = append(out, d)
				}
			}
			return out, err
		}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			err := st.View(func(tx *Tx) error {
				i := 0
				for b.Loop() {
					ds, err := bm.of(tx, persons[i%len(persons)])
					if err != nil {
						return err
					}
					if len(ds) != 5 {
						return fmt.Errorf("%d devices", len(ds))
					}
					i++
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}
