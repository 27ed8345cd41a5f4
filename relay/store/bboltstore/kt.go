package bboltstore

// Signed device lists and the key-transparency log (schema 4; SPEC.md
// section 10, "Storage layout" and "Key transparency").
//
// The tree is kept as its perfect subtrees: kt_nodes holds every leaf
// hash (level 0) and the root of every perfect subtree appends have
// completed, about 2 hashes per leaf. The root of any size is then the
// fold of at most 64 stored nodes (one per set bit of the size), and every
// inclusion or consistency proof is at most 64 stored nodes plus at most
// one rehashed from them (keys/kt, transparency-dev/merkle's proof
// package): O(log n) reads at any size, no rebuild after a restart.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

var (
	// identity fingerprint -> u64 version || u64 leaf index || list
	bKTLists = []byte("kt_lists")
	// u64 leaf index -> entry (kt.EntrySize bytes)
	bKTLeaves = []byte("kt_leaves")
	// u8 level || u64 index -> hash (32)
	bKTNodes = []byte("kt_nodes")
	// u64 tree size -> signed head; the newest KeptHeads
	bKTHeads = []byte("kt_heads")
	// meta: u64 number of leaves
	keyKTSize = []byte("kt_size")
)

// KeptHeads is how many of the newest signed heads the store keeps
// (older ones are deleted as new ones are added). Any size's root and
// proofs can be recomputed from the nodes; heads are kept for audits.
var KeptHeads uint64 = 1024 // a variable only so that tests can lower it

var _ store.KTStore = (*Store)(nil)

func nodeKey(level uint, index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{byte(level)}, index)
}

func u64Key(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// ktSize reads the number of leaves.
func ktSize(tx *bolt.Tx) (uint64, error) {
	v := tx.Bucket(bMeta).Get(keyKTSize)
	switch len(v) {
	case 0:
		return 0, nil
	case 8:
		return binary.BigEndian.Uint64(v), nil
	}
	return 0, corrupt("kt size of %d bytes", len(v))
}

// nodesOf reads tree nodes in tx.
func nodesOf(tx *bolt.Tx) kt.Nodes {
	b := tx.Bucket(bKTNodes)
	return func(level uint, index uint64) ([32]byte, error) {
		var h [32]byte
		v := b.Get(nodeKey(level, index))
		if len(v) != 32 {
			return h, corrupt("kt node %d/%d missing or of %d bytes", level, index, len(v))
		}
		copy(h[:], v)
		return h, nil
	}
}

func decodeStoredList(v []byte) (store.StoredList, error) {
	if len(v) < 16+1 || len(v) > 16+protocol.MaxDeviceListSize {
		return store.StoredList{}, corrupt("kt list record of %d bytes", len(v))
	}
	return store.StoredList{
		Version: binary.BigEndian.Uint64(v),
		Index:   binary.BigEndian.Uint64(v[8:]),
		List:    bytes.Clone(v[16:]),
	}, nil
}

// DeviceList returns identity's newest stored list.
func (s *Store) DeviceList(ctx context.Context, identity [32]byte) (store.StoredList, error) {
	var out store.StoredList
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bKTLists).Get(identity[:])
		if v == nil {
			return store.ErrUnknownIdentity
		}
		var err error
		out, err = decodeStoredList(v)
		return err
	})
	return out, err
}

// PublishDeviceList stores a list, appends its leaf, revokes what it
// must and stores the new signed head, in one durable transaction.
func (s *Store) PublishDeviceList(ctx context.Context, p store.Publish, sign store.SignHead) (store.Published, error) {
	if len(p.Entry) != kt.EntrySize || len(p.List) == 0 || len(p.List) > protocol.MaxDeviceListSize || sign == nil {
		return store.Published{}, fmt.Errorf("bboltstore: publish: entry of %d bytes, list of %d", len(p.Entry), len(p.List))
	}
	e, err := kt.ParseEntry(p.Entry)
	if err != nil {
		return store.Published{}, err
	}
	leaf := e.LeafHash()
	var out store.Published
	err = s.update(func(tx *bolt.Tx) error {
		out = store.Published{}
		lists := tx.Bucket(bKTLists)
		var stored uint64
		if v := lists.Get(p.Identity[:]); v != nil {
			sl, err := decodeStoredList(v)
			if err != nil {
				return err
			}
			stored = sl.Version
		}
		if p.Version <= stored {
			return store.ErrStaleDeviceList
		}
		if stored != p.Prev {
			return store.ErrDeviceListMoved
		}
		// Checks done; from here on every error is a failure that rolls
		// the transaction back.
		index, head, err := appendLeaf(tx, p.Entry, leaf, sign)
		if err != nil {
			return err
		}
		rec := binary.BigEndian.AppendUint64(nil, p.Version)
		rec = binary.BigEndian.AppendUint64(rec, index)
		if err := lists.Put(p.Identity[:], append(rec, p.List...)); err != nil {
			return err
		}
		for _, id := range p.Revoke {
			d, ok := decodeDevice(id[:], tx.Bucket(bDevices).Get(id[:]))
			if !ok || d.Revoked {
				continue
			}
			if err := revokeDevice(tx, d); err != nil {
				return err
			}
			out.Revoked = append(out.Revoked, id)
		}
		out.Index, out.Head = index, head
		return nil
	})
	if err != nil {
		return store.Published{}, err
	}
	return out, nil
}

// leafProofs reads, in tx, the newest head, the inclusion proof of leaf
// index in it, and (when the asker knows an older tree of knownSize
// leaves) the consistency proof from that tree.
func leafProofs(tx *bolt.Tx, index, knownSize uint64) (head []byte, inc, con [][32]byte, err error) {
	size, err := ktSize(tx)
	if err != nil {
		return nil, nil, nil, err
	}
	head = tx.Bucket(bKTHeads).Get(u64Key(size))
	if head == nil || index >= size {
		return nil, nil, nil, corrupt("kt: no head for size %d, or leaf %d beyond it", size, index)
	}
	get := nodesOf(tx)
	if inc, err = kt.InclusionProof(get, index, size); err != nil {
		return nil, nil, nil, err
	}
	if knownSize > 0 && knownSize < size {
		if con, err = kt.ConsistencyProof(get, knownSize, size); err != nil {
			return nil, nil, nil, err
		}
	}
	return bytes.Clone(head), inc, con, nil
}

// KTAnswer reads a list, its proofs and the newest head in one view.
func (s *Store) KTAnswer(ctx context.Context, identity [32]byte, knownSize uint64) (store.KTAnswer, error) {
	var out store.KTAnswer
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bKTLists).Get(identity[:])
		if v == nil {
			return store.ErrUnknownIdentity
		}
		sl, err := decodeStoredList(v)
		if err != nil {
			return err
		}
		head, inc, con, err := leafProofs(tx, sl.Index, knownSize)
		if err != nil {
			return err
		}
		out = store.KTAnswer{StoredList: sl, Inclusion: inc, Head: head, Consistency: con}
		return nil
	})
	return out, err
}

// KTHead returns the newest signed head and the tree size.
func (s *Store) KTHead(ctx context.Context) ([]byte, uint64, error) {
	var head []byte
	var size uint64
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		if size, err = ktSize(tx); err != nil || size == 0 {
			return err
		}
		head = bytes.Clone(tx.Bucket(bKTHeads).Get(u64Key(size)))
		if head == nil {
			return corrupt("kt: no head for size %d", size)
		}
		return nil
	})
	return head, size, err
}

// migrate3to4 adds the transparency log: its buckets start empty (no
// list was ever published before schema 4), created with the other
// missing buckets in the migration's transaction.
func migrate3to4(tx *bolt.Tx) error {
	for _, bn := range [][]byte{bKTLists, bKTLeaves, bKTNodes, bKTHeads} {
		if _, err := tx.CreateBucketIfNotExists(bn); err != nil {
			return err
		}
	}
	return nil
}
