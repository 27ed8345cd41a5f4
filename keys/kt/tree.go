package kt

import (
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
)

// Nodes reads the stored hash of a perfect subtree: the node at level
// covering leaves [index<<level, (index+1)<<level). A store that keeps every
// leaf hash (level 0) and every perfect subtree's root built by Append can
// answer every proof without hashing more than O(log n) nodes.
type Nodes func(level uint, index uint64) ([HashSize]byte, error)

// PutNode stores the hash of a node Append built.
type PutNode func(level uint, index uint64, h [HashSize]byte) error

// rangeOf loads the compact range [0, size): the roots of the perfect
// subtrees that cover it, left to right (one per set bit of size).
func rangeOf(get Nodes, size uint64) (*compact.Range, error) {
	ids := compact.RangeNodes(0, size, nil)
	hs := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := get(id.Level, id.Index)
		if err != nil {
			return nil, err
		}
		hs[i] = h[:]
	}
	return factory.NewRange(0, size, hs)
}

// Root returns the root of the tree of the first size leaves.
func Root(get Nodes, size uint64) ([HashSize]byte, error) {
	if size == 0 {
		return EmptyRoot(), nil
	}
	r, err := rangeOf(get, size)
	if err != nil {
		return [HashSize]byte{}, err
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		return [HashSize]byte{}, err
	}
	return toHash(root), nil
}

// Append adds leaf as leaf number size (the tree had size leaves), storing
// the leaf hash and every perfect subtree root it completes through put,
// and returns the new root (of size+1 leaves).
func Append(get Nodes, put PutNode, size uint64, leaf [HashSize]byte) ([HashSize]byte, error) {
	r, err := rangeOf(get, size)
	if err != nil {
		return [HashSize]byte{}, err
	}
	var perr error
	visit := func(id compact.NodeID, h []byte) {
		if perr == nil {
			perr = put(id.Level, id.Index, toHash(h))
		}
	}
	if err := r.Append(leaf[:], visit); err != nil {
		return [HashSize]byte{}, err
	}
	if perr != nil {
		return [HashSize]byte{}, perr
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		return [HashSize]byte{}, err
	}
	return toHash(root), nil
}

// fetch builds a proof from its node IDs.
func fetch(get Nodes, n proof.Nodes) ([][HashSize]byte, error) {
	hs := make([][]byte, len(n.IDs))
	for i, id := range n.IDs {
		h, err := get(id.Level, id.Index)
		if err != nil {
			return nil, err
		}
		hs[i] = h[:]
	}
	out, err := n.Rehash(hs, Hasher.HashChildren)
	if err != nil {
		return nil, err
	}
	p := make([][HashSize]byte, len(out))
	for i := range out {
		p[i] = toHash(out[i])
	}
	return p, nil
}

// InclusionProof returns the proof that leaf index is in the tree of size
// leaves.
func InclusionProof(get Nodes, index, size uint64) ([][HashSize]byte, error) {
	n, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("kt: inclusion proof: %w", err)
	}
	return fetch(get, n)
}

// ConsistencyProof returns the proof that the tree of size2 leaves extends
// the tree of size1 (empty when size1 is 0 or equal to size2).
func ConsistencyProof(get Nodes, size1, size2 uint64) ([][HashSize]byte, error) {
	n, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, fmt.Errorf("kt: consistency proof: %w", err)
	}
	return fetch(get, n)
}
