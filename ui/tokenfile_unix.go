//go:build unix

package ui

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// maxTokenFile bounds what is read from the token file.
const maxTokenFile = 4096

// readPrivate reads path if only its owner, this user, can read or write
// it: a token that others can read authorises them too.
func readPrivate(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrBadTokenFile, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; make it private with: chmod 600 %s", ErrTokenFileMode, path, perm, path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return nil, fmt.Errorf("%w: %s belongs to another user", ErrTokenFileMode, path)
	}
	return io.ReadAll(io.LimitReader(f, maxTokenFile))
}
