//go:build !unix

package ui

import (
	"fmt"
	"io"
	"os"
)

// maxTokenFile bounds what is read from the token file.
const maxTokenFile = 4096

// readPrivate reads path. On Windows the file's access is decided by its
// ACL, which it inherits from the home directory (the user's profile,
// private to the user); there are no mode bits to check.
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
	return io.ReadAll(io.LimitReader(f, maxTokenFile))
}
