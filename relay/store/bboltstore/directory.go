package bboltstore

// Organisation directories in the transparency log (SPEC.md section 10,
// "Key transparency", and section 15.7): one leaf per published version,
// (log key, version, hash), in the device lists' tree. The store keeps,
// per log key, the newest logged version, its hash and leaf index and the
// hash of the organisation's publishing capability; never a directory.
// The bucket was added within schema 4 (Open creates missing buckets, as
// for fan-out lists and claim spaces): a file without it simply has no
// directory logged.

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// log key -> u64 version || u64 leaf index || hash (32) || capability hash (32)
var bKTDirectories = []byte("kt_directories")

const directoryRecordSize = 8 + 8 + 32 + 32

func init() { allBuckets = append(allBuckets, bKTDirectories) }

var _ store.DirectoryLog = (*Store)(nil)

type directoryRecord struct {
	store.LoggedDirectory
	capability protocol.CapabilityHash
}

func decodeDirectory(v []byte) (directoryRecord, error) {
	if len(v) != directoryRecordSize {
		return directoryRecord{}, corrupt("kt directory record of %d bytes", len(v))
	}
	var r directoryRecord
	r.Version = binary.BigEndian.Uint64(v)
	r.Index = binary.BigEndian.Uint64(v[8:])
	copy(r.Hash[:], v[16:48])
	copy(r.capability[:], v[48:])
	if r.Version == 0 {
		return directoryRecord{}, corrupt("kt directory record of version 0")
	}
	return r, nil
}

func (r directoryRecord) encode() []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, directoryRecordSize), r.Version)
	b = binary.BigEndian.AppendUint64(b, r.Index)
	b = append(b, r.Hash[:]...)
	return append(b, r.capability[:]...)
}

// PublishDirectory appends a directory's leaf and stores the new signed
// head, in one durable transaction.
func (s *Store) PublishDirectory(ctx context.Context, p store.DirectoryPublish, sign store.SignHead) (store.Published, error) {
	if len(p.Entry) != kt.EntrySize || p.Version == 0 || sign == nil {
		return store.Published{}, fmt.Errorf("bboltstore: publish directory: entry of %d bytes, version %d", len(p.Entry), p.Version)
	}
	e, err := kt.ParseEntry(p.Entry)
	if err != nil {
		return store.Published{}, err
	}
	if [32]byte(e.Identity) != p.LogKey || e.Version != p.Version || e.ListHash != p.Hash {
		return store.Published{}, fmt.Errorf("bboltstore: publish directory: the entry is not the leaf of the publish")
	}
	var out store.Published
	err = s.update(func(tx *bolt.Tx) error {
		out = store.Published{}
		dirs := tx.Bucket(bKTDirectories)
		var prev uint64
		if v := dirs.Get(p.LogKey[:]); v != nil {
			r, err := decodeDirectory(v)
			if err != nil {
				return err
			}
			if subtle.ConstantTimeCompare(r.capability[:], p.Capability[:]) != 1 {
				return store.ErrDirectoryCapability
			}
			prev = r.Version
		}
		if p.Version <= prev {
			return store.ErrStaleDirectory
		}
		index, head, err := appendLeaf(tx, p.Entry, e.LeafHash(), sign)
		if err != nil {
			return err
		}
		rec := directoryRecord{store.LoggedDirectory{Version: p.Version, Hash: p.Hash, Index: index}, p.Capability}
		if err := dirs.Put(p.LogKey[:], rec.encode()); err != nil {
			return err
		}
		out.Index, out.Head = index, head
		return nil
	})
	if err != nil {
		return store.Published{}, err
	}
	return out, nil
}

// appendLeaf appends one leaf (entry, its hash) to the log in tx and
// stores the head sign returns for the new tree, keeping the newest
// KeptHeads heads. It returns the leaf's index and the head.
func appendLeaf(tx *bolt.Tx, entry []byte, leaf [32]byte, sign store.SignHead) (uint64, []byte, error) {
	size, err := ktSize(tx)
	if err != nil {
		return 0, nil, err
	}
	if err := tx.Bucket(bKTLeaves).Put(u64Key(size), entry); err != nil {
		return 0, nil, err
	}
	nodes := tx.Bucket(bKTNodes)
	put := func(level uint, index uint64, h [32]byte) error { return nodes.Put(nodeKey(level, index), h[:]) }
	root, err := kt.Append(nodesOf(tx), put, size, leaf)
	if err != nil {
		return 0, nil, err
	}
	size++
	if err := tx.Bucket(bMeta).Put(keyKTSize, u64Key(size)); err != nil {
		return 0, nil, err
	}
	head, err := sign(size, root)
	if err != nil {
		return 0, nil, fmt.Errorf("bboltstore: sign tree head: %w", err)
	}
	heads := tx.Bucket(bKTHeads)
	if err := heads.Put(u64Key(size), head); err != nil {
		return 0, nil, err
	}
	if size > KeptHeads {
		if err := heads.Delete(u64Key(size - KeptHeads)); err != nil {
			return 0, nil, err
		}
	}
	return size - 1, head, nil
}

// DirectoryAnswer reads a directory's leaf, its proofs and the newest
// head in one view.
func (s *Store) DirectoryAnswer(ctx context.Context, logKey [32]byte, knownSize uint64) (store.DirectoryAnswer, error) {
	var out store.DirectoryAnswer
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bKTDirectories).Get(logKey[:])
		if v == nil {
			return store.ErrUnknownDirectory
		}
		r, err := decodeDirectory(v)
		if err != nil {
			return err
		}
		head, inc, con, err := leafProofs(tx, r.Index, knownSize)
		if err != nil {
			return err
		}
		out = store.DirectoryAnswer{LoggedDirectory: r.LoggedDirectory, Inclusion: inc, Head: head, Consistency: con}
		return nil
	})
	return out, err
}

// verifyDirectories checks, for VerifyKT, that every directory record
// names a leaf of the tree that records its log key, version and hash.
func verifyDirectories(tx *bolt.Tx, size uint64) (int, error) {
	dirs, leaves := tx.Bucket(bKTDirectories), tx.Bucket(bKTLeaves)
	if dirs == nil {
		return 0, nil // a file from before directories: none logged
	}
	n := 0
	err := dirs.ForEach(func(k, v []byte) error {
		r, err := decodeDirectory(v)
		if err != nil || len(k) != 32 {
			return mismatch("directory record %x: %v", k[:min(len(k), 8)], err)
		}
		if r.Index >= size {
			return mismatch("directory %x names leaf %d beyond the tree", k[:8], r.Index)
		}
		e, err := kt.ParseEntry(leaves.Get(u64Key(r.Index)))
		if err != nil || !bytes.Equal(e.Identity[:], k) || e.Version != r.Version || e.ListHash != r.Hash {
			return mismatch("directory %x (version %d) is not the one its leaf %d records", k[:8], r.Version, r.Index)
		}
		n++
		return nil
	})
	return n, err
}
