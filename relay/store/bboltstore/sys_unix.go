//go:build unix

package bboltstore

import (
	"errors"
	"os"
	"syscall"
	"time"
)

var errLocked = errors.New("bboltstore: file locked")

// lockFile takes a flock on f as bbolt does (exclusive, or shared for a
// read-only open), retrying until timeout; errLocked if another process
// holds it.
func lockFile(f *os.File, shared bool, timeout time.Duration) error {
	how := syscall.LOCK_EX
	if shared {
		how = syscall.LOCK_SH
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if err != syscall.EWOULDBLOCK {
			return err
		}
		if time.Now().After(deadline) {
			return errLocked
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeBytes returns the bytes available to this user on dir's file system.
func freeBytes(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}
