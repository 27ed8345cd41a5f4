package store

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testKey is the meta key of the test record.
var testKey = []byte("test-record")

type testRecord struct {
	Name string `json:"name"`
}

func putTest(t *Tx, name string) error {
	return t.Put(BucketMeta, t.Index(BucketMeta, testKey), &testRecord{Name: name})
}

// testStore makes a store with a record in a temporary home.
func testStore(t *testing.T) *Store {
	t.Helper()
	key := make([]byte, KeySize)
	rand.Read(key)
	st, err := New(filepath.Join(t.TempDir(), "store.db"), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(t *Tx) error { return putTest(t, "x") }); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestStoreNewerSchemaRefused: a store written by a newer version is
// refused by both kinds of transaction with ErrTooNew, and neither
// changes a byte of it.
func TestStoreNewerSchemaRefused(t *testing.T) {
	st := testStore(t)
	err := st.Update(func(t *Tx) error {
		r, err := t.Record()
		if err != nil {
			return err
		}
		r.Schema = Schema + 1
		return t.putRecord(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(st.Path())
	if err != nil {
		t.Fatal(err)
	}
	keysBefore, err := os.ReadFile(st.eraseKeysPath())
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"update": st.Update(func(t *Tx) error { return putTest(t, "y") }),
		"view": st.View(func(t *Tx) error {
			var r testRecord
			_, err := t.Get(BucketMeta, t.Index(BucketMeta, testKey), &r)
			return err
		}),
	} {
		if !errors.Is(err, ErrTooNew) || !strings.Contains(err.Error(), "upgrade postern") {
			t.Errorf("%s: %v, want ErrTooNew with a hint", name, err)
		}
	}
	after, _ := os.ReadFile(st.Path())
	keysAfter, _ := os.ReadFile(st.eraseKeysPath())
	if !bytes.Equal(before, after) || !bytes.Equal(keysBefore, keysAfter) {
		t.Error("the refused store was changed")
	}
}

// TestEraseKeysRotation: a transaction that replaces or deletes an
// ephemeral value moves to a new epoch and wipes the old epoch's slot;
// one that only adds does not rotate; a slot the store does not name
// (left by a crash between a commit and the wipe) is wiped at the next
// read-write open.
func TestEraseKeysRotation(t *testing.T) {
	st := testStore(t)
	epoch := func() uint64 {
		var e uint64
		err := st.View(func(t *Tx) error {
			r, err := t.Record()
			if err == nil {
				e = r.Epoch
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	slots := func() [eraseSlots]uint64 {
		e, _, err := st.readSlots()
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	k := []byte("session-key")
	put := func(v string) {
		if err := st.Update(func(t *Tx) error { return t.PutRaw(BucketSessions, k, []byte(v)) }); err != nil {
			t.Fatal(err)
		}
	}
	e0 := epoch()
	put("one") // added: no rotation
	if e := epoch(); e != e0 {
		t.Fatalf("adding rotated: epoch %d -> %d", e0, e)
	}
	put("two") // replaced
	if e := epoch(); e != e0+1 || slots() != [eraseSlots]uint64{0, e0 + 1} && slots() != [eraseSlots]uint64{e0 + 1, 0} {
		t.Fatalf("after a replacement: epoch %d, slots %v", e, slots())
	}
	if err := st.Update(func(t *Tx) error { return t.Delete(BucketSessions, k) }); err != nil {
		t.Fatal(err)
	}
	if e := epoch(); e != e0+2 {
		t.Fatalf("after a deletion: epoch %d", e)
	}
	// A crash after writing the next slot, before the commit.
	cur := slots()
	free := 0
	if cur[0] != 0 {
		free = 1
	}
	key := make([]byte, eraseKeySize)
	if err := st.writeSlot(free, st.sealSlot(free, e0+3, key)); err != nil {
		t.Fatal(err)
	}
	if s := slots(); s[free] != e0+3 {
		t.Fatal("slot not written")
	}
	put("three")
	if s := slots(); s[free] != 0 || epoch() != e0+2 {
		t.Fatalf("stale slot not wiped: slots %v, epoch %d", s, epoch())
	}
	var got []byte
	if err := st.View(func(t *Tx) (err error) { got, err = t.GetRaw(BucketSessions, k); return err }); err != nil || string(got) != "three" {
		t.Fatalf("read back %q, %v", got, err)
	}
}

// BenchmarkStoreUpdate: one read-write transaction replacing a 30 KB
// value, in an ephemeral bucket (with the epoch rotation) and in an
// ordinary one.
func BenchmarkStoreUpdate(b *testing.B) {
	for _, bucket := range [][]byte{BucketSessions, BucketDevices} {
		b.Run(string(bucket), func(b *testing.B) {
			key := make([]byte, KeySize)
			rand.Read(key)
			st, err := New(filepath.Join(b.TempDir(), "store.db"), key, nil)
			if err != nil {
				b.Fatal(err)
			}
			v := make([]byte, 30<<10)
			for b.Loop() {
				if err := st.Update(func(t *Tx) error { return t.PutRaw(bucket, []byte("k"), v) }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestEraseKeysConcurrentStores: two stores on one home (as two processes
// would have) write, replace and delete ephemeral values while a third
// reads; every epoch change happens under the file lock, so no reader
// ever misses its epoch key and one slot is left at the end.
func TestEraseKeysConcurrentStores(t *testing.T) {
	key := make([]byte, KeySize)
	rand.Read(key)
	path := filepath.Join(t.TempDir(), "store.db")
	var stores []*Store
	for range 3 {
		st, err := New(path, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, st)
	}
	if err := stores[0].Update(func(t *Tx) error { return putTest(t, "x") }); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 3)
	for w := range 2 {
		go func(st *Store, w int) {
			for i := range 25 {
				k := []byte{byte(w), byte(i % 5)}
				err := st.Update(func(t *Tx) error {
					if i%3 == 2 {
						return t.Delete(BucketSessions, k)
					}
					return t.PutRaw(BucketSessions, k, []byte{byte(w), byte(i)})
				})
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}(stores[w], w)
	}
	go func() {
		for range 40 {
			err := stores[2].View(func(t *Tx) error {
				return t.Each(BucketSessions, func(k, p []byte) error {
					if len(p) != 2 || p[0] != k[0] {
						return ErrCorrupt
					}
					return nil
				})
			})
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	epochs, _, err := stores[2].readSlots()
	if err != nil {
		t.Fatal(err)
	}
	var rec *Record
	if err := stores[2].View(func(t *Tx) (err error) { rec, err = t.Record(); return err }); err != nil {
		t.Fatal(err)
	}
	if n := min(epochs[0], 1) + min(epochs[1], 1); n != 1 || max(epochs[0], epochs[1]) != rec.Epoch || rec.Epoch < 10 {
		t.Fatalf("slots %v, store epoch %d", epochs, rec.Epoch)
	}
}

// TestMigrationsInOrder: the migrations form one chain from schema 1 to
// Schema, each entry migrating the schema after the one before.
func TestMigrationsInOrder(t *testing.T) {
	for i, m := range migrations {
		if m.from != i+1 || m.run == nil || m.what == "" {
			t.Fatalf("migration %d: from %d", i, m.from)
		}
	}
	if len(migrations)+1 != Schema {
		t.Fatalf("%d migrations reach schema %d, want %d", len(migrations), len(migrations)+1, Schema)
	}
}

// TestMissingStoreNotRecreated: the store of an existing home whose file
// is gone is an error, and no empty store is made in its place.
func TestMissingStoreNotRecreated(t *testing.T) {
	st := testStore(t)
	key := make([]byte, KeySize)
	again, err := New(st.Path(), key, &Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(st.Path()); err != nil {
		t.Fatal(err)
	}
	if err := again.Update(func(*Tx) error { return nil }); !errors.Is(err, ErrMissing) {
		t.Fatalf("Update of a missing store: %v, want ErrMissing", err)
	}
	if err := again.View(func(*Tx) error { return nil }); !errors.Is(err, ErrMissing) {
		t.Fatalf("View of a missing store: %v, want ErrMissing", err)
	}
	if _, err := os.Stat(st.Path()); !os.IsNotExist(err) {
		t.Fatalf("a store file was made: %v", err)
	}
}
