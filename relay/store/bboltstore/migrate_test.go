package bboltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// withSchema installs a test schema version and migration table.
func withSchema(t *testing.T, v uint32, m map[uint32]migration) {
	oldV, oldM := currentSchema, migrations
	currentSchema, migrations = v, m
	t.Cleanup(func() { currentSchema, migrations = oldV, oldM })
}

func setSchema(t *testing.T, path string, v uint32) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, v))
	}); err != nil {
		t.Fatal(err)
	}
}

// TestMigration: the machinery, with a test step from the current schema
// (N) to N+1: the file is backed up to relay.db.schema-N.bak, migrated in
// one transaction, and stamped N+1; its data survives.
func TestMigration(t *testing.T) {
	s, path := openTest(t)
	mb, h := mailboxWithCap(t, s)
	e, err := s.Append(ctx, envelope(mb, t0), h)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	ran := 0
	withSchema(t, SchemaVersion+1, map[uint32]migration{SchemaVersion: func(tx *bolt.Tx) error {
		ran++
		b, err := tx.CreateBucket([]byte("v2_test"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}})
	s2, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ran != 1 {
		t.Errorf("migration ran %d times", ran)
	}
	got, err := s2.Range(ctx, mb, 0, 10)
	if err != nil || len(got) != 1 || got[0].ID != e.ID {
		t.Errorf("after migration Range = %v, %v", got, err)
	}
	s2.view(func(tx *bolt.Tx) error {
		if v, _, _ := schemaOf(tx); v != SchemaVersion+1 {
			t.Errorf("schema after migration = %d", v)
		}
		if tx.Bucket([]byte("v2_test")) == nil {
			t.Error("migration's bucket missing")
		}
		return nil
	})
	s2.Close()
	bak := path + fmt.Sprintf(BackupSuffix, SchemaVersion)
	if v, err := FileSchema(bak); err != nil || v != SchemaVersion {
		t.Errorf("automatic backup schema = %d, %v", v, err)
	}
	if err := Check(bak); err != nil {
		t.Error(err)
	}
	if fi, err := os.Stat(bak); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v", fi.Mode())
	}
	// Opened again: nothing to migrate.
	s3, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s3.Close()
	if ran != 1 {
		t.Errorf("migration ran again")
	}
}

// TestMigrationAtomic: when the second of two steps fails, the first
// step's change is rolled back too and the schema stays as it was.
func TestMigrationAtomic(t *testing.T) {
	s, path := openTest(t)
	s.Close()
	withSchema(t, SchemaVersion+2, map[uint32]migration{
		SchemaVersion:     func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("step1")); return err },
		SchemaVersion + 1: func(tx *bolt.Tx) error { return errors.New("boom") },
	})
	if _, err := Open(path, nil); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Open = %v, want the step's failure", err)
	}
	if v, err := FileSchema(path); err != nil || v != SchemaVersion {
		t.Errorf("schema after failed migration = %d, %v", v, err)
	}
	db, _ := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("step1")) != nil {
			t.Error("step 1 committed although step 2 failed")
		}
		return nil
	})
	db.Close()
	// A missing step is refused before anything is written.
	withSchema(t, SchemaVersion+2, map[uint32]migration{SchemaVersion: func(tx *bolt.Tx) error { return nil }})
	if _, err := Open(path, nil); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("no migration from schema %d", SchemaVersion+1)) {
		t.Errorf("Open with a gap = %v", err)
	}
}

// TestNewerSchemaMessage: the refusal names both versions and the fix.
func TestNewerSchemaMessage(t *testing.T) {
	s, path := openTest(t)
	s.Close()
	setSchema(t, path, SchemaVersion+1)
	_, err := Open(path, nil)
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("Open = %v", err)
	}
	for _, want := range []string{fmt.Sprintf("schema %d", SchemaVersion+1), fmt.Sprintf("up to %d", SchemaVersion), "upgrade postern-relay"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	setSchema(t, path, SchemaVersion) // let openTest's cleanup check pass
}

// TestBackupDuringBurst: a backup taken while goroutines append holds
// every envelope acknowledged before it began, and passes bbolt's check.
func TestBackupDuringBurst(t *testing.T) {
	s, path := openTest(t)
	const writers = 8
	var (
		mu    sync.Mutex
		acked []protocol.EnvelopeID
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	for range writers {
		mb, h := mailboxWithCap(t, s)
		wg.Go(func() {
			for i := 0; i < protocol.MaxQueueDepth; i++ {
				select {
				case <-stop:
					return
				default:
				}
				e, err := s.Append(ctx, envelope(mb, t0), h)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked = append(acked, e.ID)
				mu.Unlock()
			}
		})
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 500 {
			break
		}
	}
	mu.Lock()
	before := append([]protocol.EnvelopeID(nil), acked...)
	mu.Unlock()
	bak := path + ".bak"
	if err := s.Backup(bak); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if err := Check(bak); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(bak, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		// An envelope ID names its sequence under the file's key, which
		// the backup shares (envid.go).
		env := tx.Bucket(bEnv)
		missing := 0
		for _, id := range before {
			if v := env.Get(u64(s.seqOf(id))); len(v) < envHeader || !bytes.Equal(v[16:32], id[:]) {
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("%d of %d acknowledged envelopes missing from the backup", missing, len(before))
		}
		t.Logf("backup holds all %d envelopes acknowledged before it began (%d in total)", len(before), env.Stats().KeyN)
		return nil
	})
	if err := s.Backup(path); err == nil {
		t.Error("backup onto the database itself was accepted")
	}
}
