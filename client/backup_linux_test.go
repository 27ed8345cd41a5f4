package client

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A backup that does not fit on its disk fails with ErrStore (ENOSPC)
// and leaves nothing: neither the file nor its .part.
func TestBackupDiskFull(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=65536,mode=0700"); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (it needs root or CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	f := newHistoryFixture(t)
	addMessages(t, f.alice, "bob", 300, 1024) // about 350 KB of backup
	path := filepath.Join(dir, "alice.backup")
	key, err := f.alice.Backup(testCtx(t), path)
	if !errors.Is(err, ErrStore) || !errors.Is(err, syscall.ENOSPC) || key != "" {
		t.Fatalf("Backup on a full disk: %q, %v; want ErrStore (ENOSPC) and no key", key, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
	// With room, the same backup is written.
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=4194304"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.alice.Backup(testCtx(t), path); err != nil {
		t.Fatalf("Backup with room: %v", err)
	}
}
