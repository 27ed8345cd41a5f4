package bboltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/transparency-dev/merkle/compact"
	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/kt"
)

// ErrKTMismatch is what VerifyKT returns (wrapped, with what and where)
// when the stored log does not hold together: a leaf, node, head or list
// that differs from what the others imply.
var ErrKTMismatch = errors.New("bboltstore: transparency log mismatch")

// KTReport summarizes a verified log.
type KTReport struct {
	Size        uint64           // leaves
	Root        [32]byte         // root of the whole tree
	Heads       int              // stored signed heads checked
	Identities  int              // stored device lists checked
	Directories int              // logged organisation directories checked
	Nodes       int              // stored tree nodes checked
	Newest      time.Time        // time of the newest head
	Key         keys.Fingerprint // the relay key the heads are signed by
}

func mismatch(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrKTMismatch}, args...)...)
}

// VerifyKT checks the transparency log of the store file at path, which no
// relay has open (opened read-only): every leaf is recomputed from its
// entry and the tree rebuilt from them; every stored node must equal the
// rebuilt one, every stored head must be signed by relayKey with the
// rebuilt root of its size, the newest head must cover the whole tree, and
// every stored device list must verify and have its leaf (identity,
// version, list hash) at the index stored with it, and every logged
// directory its leaf (log key, version, hash).
func VerifyKT(path string, relayKey *keys.SigningPublicKey) (KTReport, error) {
	var rep KTReport
	if err := Verify(path, true, time.Second); err != nil {
		return rep, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return rep, fmt.Errorf("bboltstore: %s is locked by another process (is the relay running? verify a copy: postern-relay backup)", path)
		}
		return rep, fmt.Errorf("bboltstore: open %s: %w", path, err)
	}
	defer db.Close()
	rep.Key = relayKey.Fingerprint()
	err = db.View(func(tx *bolt.Tx) error {
		v, _, err := schemaOf(tx)
		if err != nil {
			return err
		}
		if v < 4 {
			return fmt.Errorf("bboltstore: %s has schema %d, before the transparency log (schema 4); nothing to verify", path, v)
		}
		if v > currentSchema {
			return fmt.Errorf("bboltstore: %s has schema %d but this postern-relay reads schemas up to %d", path, v, currentSchema)
		}
		leaves, nodes, heads, lists := tx.Bucket(bKTLeaves), tx.Bucket(bKTNodes), tx.Bucket(bKTHeads), tx.Bucket(bKTLists)
		if leaves == nil || nodes == nil || heads == nil || lists == nil {
			return mismatch("a kt_ bucket is missing")
		}
		if rep.Size, err = ktSize(tx); err != nil {
			return err
		}
		if n := uint64(leaves.Stats().KeyN); n != rep.Size {
			return mismatch("%d leaves stored, the tree size says %d", n, rep.Size)
		}
		// Heads by size, checked as the rebuild reaches their size.
		want := map[uint64][]byte{}
		err = heads.ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return mismatch("head key of %d bytes", len(k))
			}
			s := binary.BigEndian.Uint64(k)
			if s == 0 || s > rep.Size {
				return mismatch("head of size %d in a tree of %d leaves", s, rep.Size)
			}
			want[s] = v
			return nil
		})
		if err != nil {
			return err
		}
		if rep.Size > 0 && want[rep.Size] == nil {
			return mismatch("no signed head for the whole tree (%d leaves)", rep.Size)
		}
		// Rebuild: one compact range, every node it makes compared with
		// the stored one.
		r := factory().NewEmptyRange(0)
		var nerr error
		visit := func(id compact.NodeID, h []byte) {
			if nerr != nil {
				return
			}
			got := nodes.Get(nodeKey(id.Level, id.Index))
			if !bytes.Equal(got, h) {
				nerr = mismatch("tree node level %d index %d differs from the one the leaves give", id.Level, id.Index)
			}
			rep.Nodes++
		}
		c := leaves.Cursor()
		i := uint64(0)
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 8 || binary.BigEndian.Uint64(k) != i {
				return mismatch("leaf key %x where leaf %d belongs", k, i)
			}
			e, err := kt.ParseEntry(v)
			if err != nil {
				return mismatch("leaf %d: %v", i, err)
			}
			h := e.LeafHash()
			if err := r.Append(h[:], visit); err != nil {
				return err
			}
			if nerr != nil {
				return nerr
			}
			i++
			if hb, ok := want[i]; ok {
				root, err := r.GetRootHash(nil)
				if err != nil {
					return err
				}
				head, err := kt.ParseHead(hb, relayKey)
				if err != nil {
					return mismatch("head of size %d: %v", i, err)
				}
				if head.Size != i || !bytes.Equal(head.Root[:], root) {
					return mismatch("head of size %d signs a root the leaves do not give", i)
				}
				rep.Heads++
				if i == rep.Size {
					rep.Newest = head.Time
					copy(rep.Root[:], root)
				}
			}
		}
		if rep.Size == 0 {
			rep.Root = kt.EmptyRoot()
		}
		if rep.Directories, err = verifyDirectories(tx, rep.Size); err != nil {
			return err
		}
		return lists.ForEach(func(k, v []byte) error {
			sl, err := decodeStoredList(v)
			if err != nil {
				return mismatch("list record %x: %v", k[:min(len(k), 8)], err)
			}
			l, err := keys.ParseDeviceList(sl.List)
			if err != nil {
				return mismatch("list of identity %x: %v", k[:min(len(k), 8)], err)
			}
			fp := l.Identity.Fingerprint()
			if !bytes.Equal(fp[:], k) || l.Version != sl.Version {
				return mismatch("list of identity %x is stored under another identity or version", k[:min(len(k), 8)])
			}
			if sl.Index >= rep.Size {
				return mismatch("list of identity %x names leaf %d beyond the tree", k[:8], sl.Index)
			}
			e, err := kt.ParseEntry(leaves.Get(u64Key(sl.Index)))
			if err != nil || e != kt.EntryOf(l, sl.List) {
				return mismatch("list of identity %x (version %d) is not the one its leaf %d records", k[:8], sl.Version, sl.Index)
			}
			rep.Identities++
			return nil
		})
	})
	return rep, err
}

func factory() *compact.RangeFactory { return &compact.RangeFactory{Hash: kt.Hasher.HashChildren} }
