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

// listenLock holds home's listen lock until release. 'postern ui' takes
// it too while it receives: the file names who holds it. The lock belongs to
// the open file, so it ends with the process however the process ends; a
// stale file is no obstacle.
type listenLock struct{ f *os.File }

func lockListen(home string) (*listenLock, error) { return lockReceiving(home, "postern listen") }

// lockReceiving takes home's listen lock for holder ("postern listen",
// "postern ui"), which the file records for the message of the next one
// refused.
func lockReceiving(home, holder string) (*listenLock, error) {
	p := filepath.Join(home, listenLockName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", p, err)
	}
	if err := lockFile(f); err != nil {
		other, pid := readHolder(f)
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, &cliError{
				msg:  other + " is already running on " + home + pid,
				hint: "stop it first; while it runs, 'postern inbox' shows what it received",
				err:  err,
			}
		}
		return nil, fmt.Errorf("locking %s: %w", p, err)
	}
	// The process ID and the holder are for the message above; the lock
	// is what counts.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"+holder+"\n"), 0)
	}
	return &listenLock{f: f}, nil
}

func (l *listenLock) release() {
	unlockFile(l.f)
	l.f.Close()
}

// readHolder reads who holds a lock file ("postern listen" in a file
// that names none) and " (process N)", or "" when it holds no number.
func readHolder(f *os.File) (holder, pid string) {
	b := make([]byte, 64)
	n, _ := f.ReadAt(b, 0)
	lines := strings.Split(string(b[:n]), "\n")
	holder = "postern listen"
	if len(lines) > 1 {
		switch h := strings.TrimSpace(lines[1]); h {
		case "postern listen", "postern ui":
			holder = h
		}
	}
	if p, err := strconv.Atoi(strings.TrimSpace(lines[0])); err == nil && p > 0 {
		pid = fmt.Sprintf(" (process %d)", p)
	}
	return holder, pid
}
