package relay

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// backuper is a store that can copy itself while serving
// (bboltstore.Store).
type backuper interface{ Backup(dest string) error }

// Backup writes a consistent copy of the store to dest (an absolute path,
// mode 0600) while the relay keeps serving. Every write acknowledged
// before the call is in the copy. Admin op "backup".
func (r *Relay) Backup(dest string) error {
	if dest == "" || !filepath.IsAbs(dest) {
		return fmt.Errorf("relay: backup needs an absolute file path, got %q", dest)
	}
	b, ok := r.st.(backuper)
	if !ok {
		return errors.New("relay: this store cannot be backed up online")
	}
	if err := b.Backup(dest); err != nil {
		return fmt.Errorf("relay: backup: %w", err)
	}
	r.log.Info("backup written", "file", dest)
	return nil
}

// backupTimeout bounds an admin "backup" request.
const backupTimeout = time.Hour
