package bboltstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CompactSuffix names the copy of the database that CompactFile keeps:
// path + CompactSuffix.
const CompactSuffix = ".before-compact"

// CompactResult reports what CompactFile did.
type CompactResult struct {
	Before, After int64  // file sizes in bytes
	Kept          string // the old file, kept as path + CompactSuffix
}

// CompactFile rewrites the closed store file at path without its free
// pages, so that the space acknowledged and expired data took is given
// back to the file system: bbolt never shrinks a file itself. The old
// file is verified first; the new one is written beside it (bolt.Compact
// into a temporary file), synced, verified (structure, bbolt's check, and
// every bucket, key, value and bucket sequence equal to the old file's),
// and only then renamed over path. The old file stays as path +
// CompactSuffix (a hard link made before the rename), which must not
// exist beforehand. Nothing is changed on any failure. No relay may have
// the file open (its lock is held shared throughout).
func CompactFile(path string) (CompactResult, error) {
	var res CompactResult
	keep := path + CompactSuffix
	if _, err := os.Lstat(keep); err == nil {
		return res, fmt.Errorf("bboltstore: %s exists from an earlier compaction; move it away (or delete it) first", keep)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return res, err
	}
	res.Before = fi.Size()
	if err := Check(path); err != nil {
		return res, err
	}
	src, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return res, fmt.Errorf("bboltstore: %s is locked by another process (is the relay running?)", path)
		}
		return res, fmt.Errorf("bboltstore: open %s: %w", path, err)
	}
	defer src.Close()
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".compact-*")
	if err != nil {
		return res, err
	}
	tmp := f.Name()
	f.Close()
	done := false
	defer func() {
		if !done {
			os.Remove(tmp)
		}
	}()
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{
		Timeout:        time.Second,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
		PageSize:       src.Info().PageSize, // the file keeps its page size
		NoSync:         true,                // one sync at the end
	})
	if err != nil {
		return res, err
	}
	err = bolt.Compact(dst, src, 64<<20)
	if err == nil {
		err = dst.Sync()
	}
	if err == nil {
		err = sameContents(src, dst)
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, fmt.Errorf("bboltstore: compact %s: %w", path, err)
	}
	if err := Check(tmp); err != nil {
		return res, fmt.Errorf("bboltstore: the compacted copy fails its check: %w", err)
	}
	if err := os.Link(path, keep); err != nil {
		return res, fmt.Errorf("bboltstore: keeping the old file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(keep)
		return res, err
	}
	done = true
	if err := syncDir(dir); err != nil {
		return res, err
	}
	if fi, err := os.Stat(path); err == nil {
		res.After = fi.Size()
	}
	res.Kept = keep
	return res, nil
}

// sameContents compares every bucket of a and b: keys, values, nested
// buckets and bucket sequences.
func sameContents(a, b *bolt.DB) error {
	return a.View(func(ta *bolt.Tx) error {
		return b.View(func(tb *bolt.Tx) error {
			na, nb := 0, 0
			err := ta.ForEach(func(name []byte, ba *bolt.Bucket) error {
				na++
				bb := tb.Bucket(name)
				if bb == nil {
					return fmt.Errorf("bucket %q missing from the copy", name)
				}
				return sameBucket(string(name), ba, bb)
			})
			if err != nil {
				return err
			}
			tb.ForEach(func([]byte, *bolt.Bucket) error { nb++; return nil })
			if na != nb {
				return fmt.Errorf("the copy has %d top-level buckets, the original %d", nb, na)
			}
			return nil
		})
	})
}

func sameBucket(name string, a, b *bolt.Bucket) error {
	if a.Sequence() != b.Sequence() {
		return fmt.Errorf("bucket %q: sequence %d, copy %d", name, a.Sequence(), b.Sequence())
	}
	ca, cb := a.Cursor(), b.Cursor()
	ka, va := ca.First()
	kb, vb := cb.First()
	for ; ka != nil || kb != nil; ka, va, kb, vb = nextPair(ca, cb) {
		if ka == nil || kb == nil || !bytes.Equal(ka, kb) || !bytes.Equal(va, vb) {
			return fmt.Errorf("bucket %q differs in the copy", name)
		}
		na, nb := a.Bucket(ka), b.Bucket(kb)
		if (na == nil) != (nb == nil) {
			return fmt.Errorf("bucket %q: a nested bucket differs in the copy", name)
		}
		if na != nil {
			if err := sameBucket(name+"/"+string(ka), na, nb); err != nil {
				return err
			}
		}
	}
	return nil
}

func nextPair(ca, cb *bolt.Cursor) (ka, va, kb, vb []byte) {
	ka, va = ca.Next()
	kb, vb = cb.Next()
	return
}
