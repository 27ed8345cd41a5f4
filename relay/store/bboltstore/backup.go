package bboltstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/relay/store"
)

// Backup writes a consistent copy of the open store to dest (mode 0600)
// while it keeps serving: one read transaction sees one committed state,
// and writes go on meanwhile. Every write answered before Backup was
// called is in the copy.
func (s *Store) Backup(dest string) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	return writeBackup(s.db, dest)
}

// BackupFile copies the store file at path, which no relay has open, to
// dest. It opens the file read-only and fails if a relay holds it.
func BackupFile(path, dest string) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	if err := Verify(path, true, time.Second); err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return fmt.Errorf("bboltstore: %s is locked by another process (is the relay running?)", path)
		}
		return fmt.Errorf("bboltstore: open %s: %w", path, err)
	}
	defer db.Close()
	return writeBackup(db, dest)
}

// writeBackup writes db to a temporary file next to dest in one read
// transaction, syncs it, renames it to dest and syncs the directory.
func writeBackup(db *bolt.DB, dest string) error {
	dest = filepath.Clean(dest)
	if dest == filepath.Clean(db.Path()) {
		return fmt.Errorf("bboltstore: backup target %s is the database itself", dest)
	}
	dir := filepath.Dir(dest)
	f, err := os.CreateTemp(dir, "."+filepath.Base(dest)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if err := db.View(func(tx *bolt.Tx) error {
		_, err := tx.WriteTo(f)
		return err
	}); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, dest); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// FileSchema returns the schema version stored in the closed store file
// at path (0 for a file that never had one).
func FileSchema(path string) (uint32, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, err
	}
	if err := Verify(path, true, time.Second); err != nil {
		return 0, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return 0, fmt.Errorf("bboltstore: open %s: %w", path, err)
	}
	defer db.Close()
	var v uint32
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bMeta) == nil {
			return fmt.Errorf("bboltstore: %s is not a relay database (no meta bucket)", path)
		}
		var err error
		v, _, err = schemaOf(tx)
		return err
	})
	return v, err
}

// Ping writes the meta key "ready" through the committer (one small
// durable transaction), proving the store is open and writable. While the
// file system is full it first tries to recover (full.go) and returns an
// error wrapping store.ErrStorageFull if it cannot.
func (s *Store) Ping() error {
	if s.space.isFull() {
		return s.recover()
	}
	return s.queueWrite(pingWrite, probe)
}

// Schema returns the layout version of the open store (SchemaVersion:
// Open migrates older files), which a snapshot of it carries.
func (s *Store) Schema() uint32 { return currentSchema }

// Snapshot writes a consistent copy of the open store to w while it keeps
// serving, as Backup does, calling size with the copy's exact length
// before the first byte (a stream's header needs it).
func (s *Store) Snapshot(size func(n int64) error, w io.Writer) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	return s.db.View(func(tx *bolt.Tx) error {
		if err := size(tx.Size()); err != nil {
			return err
		}
		_, err := tx.WriteTo(w)
		return err
	})
}

// SnapshotFile is Snapshot for the store file at path, which no relay has
// open (verified, opened read-only).
func SnapshotFile(path string, size func(n int64) error, w io.Writer) error {
	if err := Verify(path, true, time.Second); err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return fmt.Errorf("bboltstore: %s is locked by another process (is the relay running?)", path)
		}
		return fmt.Errorf("bboltstore: open %s: %w", path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if err := size(tx.Size()); err != nil {
			return err
		}
		_, err := tx.WriteTo(w)
		return err
	})
}
