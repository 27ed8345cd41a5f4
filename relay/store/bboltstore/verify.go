package bboltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"time"

	"github.com/postern/postern/relay/store"
)

// Why this file exists: bbolt maps the database into memory and trusts
// what it finds. A truncated file, or a page overwritten with other bytes,
// makes bbolt read past the end of the mapping (SIGBUS, a fault that no
// recover catches) or panic on a goroutine of its own while it rebuilds
// the free list at open. Verify reads the file with ordinary reads, and
// checks every page the database can reach against the file's size and
// bbolt's page format before bbolt is allowed to map it.
//
// The layout read here is bbolt's file format version 2 (go.etcd.io/bbolt
// internal/common): native byte order, which is little-endian on every
// platform the relay is built for.

const (
	boltMagic         = 0xED0CDAED
	boltVersion       = 2
	pageHeaderSize    = 16 // id u64, flags u16, count u16, overflow u32
	branchElementSize = 16 // pos u32, ksize u32, pgid u64
	leafElementSize   = 16 // flags u32, pos u32, ksize u32, vsize u32
	bucketHeaderSize  = 16 // root pgid u64, sequence u64
	metaSize          = 64 // magic, version, page size, flags, root(16), freelist, pgid, txid, checksum

	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	metaPageFlag     = 0x04
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01

	noFreelist = ^uint64(0)
	// maxTreeDepth bounds the walk: a B+tree of 8 KiB pages is a handful
	// of levels deep; a deeper chain is a damaged file.
	maxTreeDepth = 64
)

var le = binary.LittleEndian

// damaged returns an error wrapping store.ErrDamaged that names the file.
func damaged(path, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", store.ErrDamaged, path, fmt.Sprintf(format, args...))
}

type boltMeta struct {
	pageSize       uint32
	root, freelist uint64
	pgid, txid     uint64
}

// parseMeta reads a meta page (header and meta) from b; ok is false when
// the magic, version or checksum is wrong.
func parseMeta(b []byte) (m boltMeta, ok bool) {
	if len(b) < pageHeaderSize+metaSize {
		return m, false
	}
	flags := le.Uint16(b[8:10])
	v := b[pageHeaderSize : pageHeaderSize+metaSize]
	if flags != metaPageFlag || le.Uint32(v[0:4]) != boltMagic || le.Uint32(v[4:8]) != boltVersion {
		return m, false
	}
	h := fnv.New64a()
	h.Write(v[:56])
	if h.Sum64() != le.Uint64(v[56:64]) {
		return m, false
	}
	m.pageSize = le.Uint32(v[8:12])
	m.root = le.Uint64(v[16:24])
	m.freelist = le.Uint64(v[32:40])
	m.pgid = le.Uint64(v[40:48])
	m.txid = le.Uint64(v[48:56])
	return m, true
}

// Verify checks the structure of the closed database file at path
// without mapping it: both meta pages, the file's size against the
// highest page in use, and every page reachable from the root (types,
// bounds, element offsets, key order, no page used twice), the free list
// included. It returns nil for a missing or empty file (Open creates
// one), an error wrapping store.ErrDamaged that names the file and the
// first problem found, or another error when the file cannot be read.
// It waits up to lockTimeout for a relay holding the file (shared is
// false: an exclusive lock, as for Open; true: a shared one, as for a
// read-only open).
func Verify(path string, shared bool, lockTimeout time.Duration) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bboltstore: open %s: %w", path, err)
	}
	defer f.Close() // releases the lock
	if err := lockFile(f, shared, lockTimeout); err != nil {
		return fmt.Errorf("bboltstore: %s is locked by another process (is the relay running?)", path)
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return damaged(path, "not a regular file")
	}
	if st.Size() == 0 {
		return nil
	}
	v := &verifier{f: f, path: path, size: st.Size()}
	return v.run()
}

type verifier struct {
	f        *os.File
	path     string
	size     int64
	pageSize int64
	hwm      uint64
	seen     []uint64 // bit set of pages in use
}

func (v *verifier) run() error {
	meta, err := v.meta()
	if err != nil {
		return err
	}
	v.hwm = meta.pgid
	if v.hwm < 3 || meta.root < 2 || meta.root >= v.hwm {
		return damaged(v.path, "meta page names root page %d of %d pages", meta.root, v.hwm)
	}
	if need := int64(v.hwm) * v.pageSize; need > v.size || need/v.pageSize != int64(v.hwm) {
		return damaged(v.path, "the file is %d bytes but its database needs %d (truncated)", v.size, int64(v.hwm)*v.pageSize)
	}
	v.seen = make([]uint64, (v.hwm+63)/64)
	v.mark(0)
	v.mark(1)
	if meta.freelist != noFreelist {
		if err := v.freelist(meta.freelist); err != nil {
			return err
		}
	}
	return v.tree(meta.root, 0)
}

// meta finds the page size and returns the newest valid meta page, as
// bbolt does: the one with the higher transaction ID if it is valid,
// else the other.
func (v *verifier) meta() (boltMeta, error) {
	buf := make([]byte, pageHeaderSize+metaSize)
	var m0, m1 boltMeta
	var ok0, ok1 bool
	if _, err := v.f.ReadAt(buf, 0); err == nil {
		m0, ok0 = parseMeta(buf)
	}
	ps := int64(m0.pageSize)
	if !ok0 {
		// Page 0 is damaged: look for page 1 at each possible page size.
		for i := 0; i <= 14; i++ {
			pos := int64(1024) << i
			if pos+int64(len(buf)) > v.size {
				break
			}
			if _, err := v.f.ReadAt(buf, pos); err == nil {
				if m, ok := parseMeta(buf); ok && int64(m.pageSize) == pos {
					m1, ok1, ps = m, true, pos
					break
				}
			}
		}
		if !ok1 {
			return boltMeta{}, damaged(v.path, "no valid meta page (not a database, or its first pages are overwritten)")
		}
	}
	if ps < 1024 || ps > 1<<24 || ps&(ps-1) != 0 {
		return boltMeta{}, damaged(v.path, "page size %d", ps)
	}
	v.pageSize = ps
	if ok0 {
		if _, err := v.f.ReadAt(buf, ps); err == nil {
			m1, ok1 = parseMeta(buf)
			ok1 = ok1 && int64(m1.pageSize) == ps
		}
	}
	switch {
	case ok0 && ok1 && m1.txid > m0.txid, !ok0:
		return m1, nil
	}
	return m0, nil
}

func (v *verifier) mark(id uint64) bool {
	w, bit := id/64, uint64(1)<<(id%64)
	if v.seen[w]&bit != 0 {
		return false
	}
	v.seen[w] |= bit
	return true
}

// page reads page id with its overflow pages, checking that every one of
// them lies below the high-water mark and is used once.
func (v *verifier) page(id uint64, what string) ([]byte, error) {
	if id < 2 || id >= v.hwm {
		return nil, damaged(v.path, "%s page %d outside the database's %d pages", what, id, v.hwm)
	}
	hdr := make([]byte, pageHeaderSize)
	if _, err := v.f.ReadAt(hdr, int64(id)*v.pageSize); err != nil {
		return nil, damaged(v.path, "%s page %d: %v", what, id, err)
	}
	if got := le.Uint64(hdr[0:8]); got != id {
		return nil, damaged(v.path, "%s page %d holds page %d's header (overwritten)", what, id, got)
	}
	overflow := uint64(le.Uint32(hdr[12:16]))
	if overflow >= v.hwm-id {
		return nil, damaged(v.path, "%s page %d runs past the database's %d pages", what, id, v.hwm)
	}
	for p := id; p <= id+overflow; p++ {
		if !v.mark(p) {
			return nil, damaged(v.path, "page %d is used twice", p)
		}
	}
	b := make([]byte, int64(overflow+1)*v.pageSize)
	if _, err := v.f.ReadAt(b, int64(id)*v.pageSize); err != nil {
		return nil, damaged(v.path, "%s page %d: %v", what, id, err)
	}
	return b, nil
}

func (v *verifier) freelist(id uint64) error {
	b, err := v.page(id, "freelist")
	if err != nil {
		return err
	}
	if le.Uint16(b[8:10]) != freelistPageFlag {
		return damaged(v.path, "freelist page %d has flags %#x", id, le.Uint16(b[8:10]))
	}
	start, n := uint64(pageHeaderSize), uint64(le.Uint16(b[10:12]))
	if n == 0xFFFF {
		n = le.Uint64(b[pageHeaderSize:])
		start += 8
	}
	if n > (uint64(len(b))-start)/8 {
		return damaged(v.path, "freelist page %d lists %d pages in %d bytes", id, n, len(b))
	}
	for i := range n {
		if p := le.Uint64(b[start+8*i:]); p < 2 || p >= v.hwm {
			return damaged(v.path, "freelist page %d lists page %d of %d", id, p, v.hwm)
		}
	}
	return nil
}

// tree checks the B+tree rooted at page id.
func (v *verifier) tree(id uint64, depth int) error {
	if depth > maxTreeDepth {
		return damaged(v.path, "tree deeper than %d levels at page %d", maxTreeDepth, id)
	}
	b, err := v.page(id, "tree")
	if err != nil {
		return err
	}
	return v.node(b, id, depth)
}

// node checks one branch or leaf page held in b (a page read from the
// file, or an inline bucket's page inside a value).
func (v *verifier) node(b []byte, id uint64, depth int) error {
	flags, count := le.Uint16(b[8:10]), int(le.Uint16(b[10:12]))
	if int64(count) > (int64(len(b))-pageHeaderSize)/16 {
		return damaged(v.path, "page %d claims %d elements in %d bytes", id, count, len(b))
	}
	var prev []byte
	for i := range count {
		el := pageHeaderSize + i*16
		var pos, ksize, vsize uint64
		var flag uint32
		var child uint64
		switch flags {
		case branchPageFlag:
			pos, ksize, child = uint64(le.Uint32(b[el:])), uint64(le.Uint32(b[el+4:])), le.Uint64(b[el+8:])
		case leafPageFlag:
			flag, pos, ksize, vsize = le.Uint32(b[el:]), uint64(le.Uint32(b[el+4:])), uint64(le.Uint32(b[el+8:])), uint64(le.Uint32(b[el+12:]))
		default:
			return damaged(v.path, "page %d has flags %#x where a branch or leaf belongs (overwritten)", id, flags)
		}
		kstart := uint64(el) + pos
		if kstart+ksize+vsize > uint64(len(b)) || kstart < uint64(el) {
			return damaged(v.path, "page %d element %d lies outside the page", id, i)
		}
		key := b[kstart : kstart+ksize]
		if i > 0 && bytes.Compare(prev, key) >= 0 {
			return damaged(v.path, "page %d keys out of order at element %d", id, i)
		}
		prev = key
		if flags == branchPageFlag {
			if err := v.tree(child, depth+1); err != nil {
				return err
			}
			continue
		}
		if flag&bucketLeafFlag == 0 {
			continue
		}
		val := b[kstart+ksize : kstart+ksize+vsize]
		if len(val) < bucketHeaderSize {
			return damaged(v.path, "page %d: bucket header of %d bytes", id, len(val))
		}
		if root := le.Uint64(val); root != 0 {
			if err := v.tree(root, depth+1); err != nil {
				return err
			}
			continue
		}
		inline := val[bucketHeaderSize:]
		if len(inline) < pageHeaderSize {
			return damaged(v.path, "page %d: inline bucket of %d bytes", id, len(inline))
		}
		if le.Uint16(inline[8:10]) != leafPageFlag {
			return damaged(v.path, "page %d: inline bucket page has flags %#x", id, le.Uint16(inline[8:10]))
		}
		if depth+1 > maxTreeDepth {
			return damaged(v.path, "buckets nested deeper than %d at page %d", maxTreeDepth, id)
		}
		if err := v.node(inline, id, depth+1); err != nil {
			return err
		}
	}
	if flags == branchPageFlag && count == 0 {
		return damaged(v.path, "branch page %d is empty", id)
	}
	return nil
}

// InUse reports whether a process (a running relay) holds the lock on the
// database file at path. It only takes and drops a shared lock: it never
// maps the file, so a damaged file is safe to ask about.
func InUse(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := lockFile(f, true, 500*time.Millisecond); err != nil {
		if errors.Is(err, errLocked) {
			return true, nil
		}
		return false, err
	}
	return false, nil
}
