//go:build !unix

package bboltstore

import (
	"errors"
	"os"
	"time"
)

var errLocked = errors.New("bboltstore: file locked")

// lockFile is a no-op where flock does not exist: bbolt's own lock guards
// the file there, after Verify.
func lockFile(*os.File, bool, time.Duration) error { return nil }

// freeBytes is unknown here: recovery relies on re-creating the reserve.
func freeBytes(string) (int64, bool) { return 0, false }
