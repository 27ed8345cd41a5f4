package store

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
)

// TestDirectoryRecord: the record round-trips; a capability of another
// length is refused and nothing is stored.
func TestDirectoryRecord(t *testing.T) {
	st := testStore(t)
	err := st.Update(func(t *Tx) error {
		if r, err := t.Directory(); err != nil || r != nil {
			return fmt.Errorf("empty store: %v %v", r, err)
		}
		if err := t.PutDirectory(&DirectoryRecord{Capability: []byte{1}}); !errors.Is(err, ErrCorrupt) {
			return fmt.Errorf("short capability: %v", err)
		}
		if r, err := t.Directory(); err != nil || r != nil {
			return fmt.Errorf("a refused record was stored: %v", err)
		}
		return t.PutDirectory(&DirectoryRecord{Directory: []byte("d"), Capability: bytes.Repeat([]byte{7}, 32)})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = st.View(func(t *Tx) error {
		r, err := t.Directory()
		if err != nil || r == nil || string(r.Directory) != "d" || len(r.Capability) != 32 {
			return fmt.Errorf("record %+v, %v", r, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateDirectory: a store of the schema before directories gains
// the empty directory bucket and the current schema.
func TestMigrateDirectory(t *testing.T) {
	key := make([]byte, KeySize)
	rand.Read(key)
	path := filepath.Join(t.TempDir(), "store.db")
	st, err := New(path, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(func(t *Tx) error {
		if err := t.bt.DeleteBucket(BucketDirectory); err != nil {
			return err
		}
		r, err := t.Record()
		if err != nil {
			return err
		}
		r.Schema = 7
		return t.putRecord(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err = New(path, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = st.View(func(t *Tx) error {
		if r, err := t.Record(); err != nil || r.Schema != Schema {
			return fmt.Errorf("record %+v, %v", r, err)
		}
		if t.bt.Bucket(BucketDirectory) == nil {
			return errors.New("no directory bucket")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
