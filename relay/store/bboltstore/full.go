package bboltstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/relay/store"
)

// A full file system. A commit that fails with ENOSPC or EDQUOT puts the
// store in the full state: every write that adds data (a send, an upload,
// an enrolment) is refused at once with store.ErrStorageFull, so that the
// relay can tell the sender why, and the reserve file beside the database
// is deleted, so that the writes that free space (acknowledgements,
// purges, revocations: updateFreeing) still find room for their commit,
// which writes new pages before it frees the old ones. Every
// RecoverInterval, and on every Ping (/readyz), the store tries to
// re-create its reserve and commit a test write; when both succeed, it
// leaves the full state by itself.

// ReserveSuffix names the reserve file: the database path + ReserveSuffix.
const ReserveSuffix = ".reserve"

// DefaultReserve is the reserve file's default size: room for many
// acknowledgement commits of 8 KiB pages on a database of any size.
const DefaultReserve = 8 << 20

type writeKind uint8

const (
	growing writeKind = iota // refused while the file system is full
	freeing                  // runs while full: acks, purges, revocations
	probe                    // the recovery test write
)

// isNoSpace reports whether err is a write that failed for want of space.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, store.ErrStorageFull)
}

type space struct {
	path     string // the reserve file; "" for none
	size     int64
	interval time.Duration
	full     atomic.Bool
	mu       sync.Mutex // one recovery at a time
	quit     chan struct{}
	once     sync.Once
}

func (sp *space) init(dbPath string, size int64, interval time.Duration) {
	if size == 0 {
		size = DefaultReserve
	}
	if interval <= 0 {
		interval = 5 * time.Second
	}
	sp.interval, sp.quit = interval, make(chan struct{})
	if size > 0 {
		sp.path, sp.size = dbPath+ReserveSuffix, size
		// Best effort: a relay that starts on a full disk starts full.
		if err := sp.fillReserve(); err != nil && isNoSpace(err) {
			sp.full.Store(true)
		}
	}
}

func (sp *space) isFull() bool { return sp.full.Load() }

func (sp *space) stop() { sp.once.Do(func() { close(sp.quit) }) }

// setFull enters the full state and gives the reserve back to the file
// system.
func (sp *space) setFull() {
	if sp.full.Swap(true) || sp.path == "" {
		return
	}
	os.Remove(sp.path)
}

// fillReserve makes the reserve file its full size with written blocks
// (not a sparse file, which would reserve nothing), synced.
func (sp *space) fillReserve() error {
	if sp.path == "" {
		return nil
	}
	if fi, err := os.Stat(sp.path); err == nil && fi.Size() == sp.size {
		return nil
	}
	f, err := os.OpenFile(sp.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	for n := int64(0); n < sp.size && err == nil; n += int64(len(buf)) {
		_, err = f.Write(buf[:min(int64(len(buf)), sp.size-n)])
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(sp.path)
		return fmt.Errorf("bboltstore: reserve file: %w", err)
	}
	return nil
}

// recover tries to leave the full state: the reserve is re-created and a
// test write commits. It returns store.ErrStorageFull (wrapped) while the
// file system is still full.
func (s *Store) recover() error {
	s.space.mu.Lock()
	defer s.space.mu.Unlock()
	if !s.space.isFull() {
		return nil
	}
	// Room for the reserve and as much again: the reserve given back
	// when the disk filled must not count as space returning.
	if free, ok := freeBytes(filepath.Dir(s.space.path)); ok && s.space.path != "" && free < 2*s.space.size {
		return fmt.Errorf("%w: %d bytes free", store.ErrStorageFull, free)
	}
	if err := s.space.fillReserve(); err != nil {
		return fmt.Errorf("%w: %v", store.ErrStorageFull, err)
	}
	if err := s.queueWrite(pingWrite, probe); err != nil {
		if isNoSpace(err) {
			s.space.setFull() // the probe may have been refused before it set full
			return fmt.Errorf("%w: %v", store.ErrStorageFull, err)
		}
		return err
	}
	s.space.full.Store(false)
	return nil
}

// recoverLoop retries recovery while the store is full, so that it serves
// again by itself when space returns.
func (s *Store) recoverLoop() {
	t := time.NewTicker(s.space.interval)
	defer t.Stop()
	for {
		select {
		case <-s.space.quit:
			return
		case <-t.C:
			if s.space.isFull() {
				s.recover()
			}
		}
	}
}

// Full reports whether the store is refusing writes for want of space.
func (s *Store) Full() bool { return s.space.isFull() }

func pingWrite(tx *bolt.Tx) error {
	return tx.Bucket(bMeta).Put([]byte("ready"), u64(uint64(time.Now().Unix())))
}
