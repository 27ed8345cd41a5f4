package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// listenLockName is the file in the home directory that a running
// 'postern listen' holds locked for its whole life. Two listeners on one
// home would each receive part of the messages (the first to store an
// envelope prints it, the other sees a duplicate): the second is refused.
const listenLockName = "listen.lock"

// errLocked: another process holds the lock.
var errLocked = errors.New("locked")

// listenLock holds home's listen lock until release. The lock belongs to
// the open file, so it ends with the process however the process ends; a
// stale file is no obstacle.
type listenLock struct{ f *os.File }

func lockListen(home string) (*listenLock, error) {
	p := filepath.Join(home, listenLockName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", p, err)
	}
	if err := lockFile(f); err != nil {
		pid := readPID(f)
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, &cliError{
				msg:  "postern listen is already running on " + home + pid,
				hint: "stop it first; while it runs, 'postern inbox' shows what it received",
				err:  err,
			}
		}
		return nil, fmt.Errorf("locking %s: %w", p, err)
	}
	// The process ID is for the message above; the lock is what counts.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &listenLock{f: f}, nil
}

func (l *listenLock) release() {
	unlockFile(l.f)
	l.f.Close()
}

// readPID is " (process N)" from a lock file, or "" when it holds none.
func readPID(f *os.File) string {
	b := make([]byte, 16)
	n, _ := f.ReadAt(b, 0)
	s := strings.TrimSpace(string(b[:n]))
	if pid, err := strconv.Atoi(s); err == nil && pid > 0 {
		return fmt.Sprintf(" (process %d)", pid)
	}
	return ""
}
