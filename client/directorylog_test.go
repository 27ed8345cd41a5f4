package client

import (
	"errors"
	"testing"
	"time"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/hybrid"
	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/protocol"
)

// testLog is a transparency log in memory, signed by its own key, for
// checking directory leaves as a lying relay could answer them.
type testLog struct {
	t      *testing.T
	signer *hybrid.Signer
	nodes  map[[2]uint64][32]byte
	size   uint64
}

func newTestLog(t *testing.T) *testLog {
	s, err := hybrid.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{t: t, signer: s, nodes: map[[2]uint64][32]byte{}}
}

func (l *testLog) get(level uint, index uint64) ([32]byte, error) {
	h, ok := l.nodes[[2]uint64{uint64(level), index}]
	if !ok {
		return h, errors.New("no node")
	}
	return h, nil
}

// add appends the leaf of (logKey, version, hash) and returns its index.
func (l *testLog) add(logKey keys.Fingerprint, version uint64, hash [32]byte) uint64 {
	e := kt.Entry{Identity: logKey, Version: version, ListHash: hash}
	put := func(level uint, index uint64, h [32]byte) error {
		l.nodes[[2]uint64{uint64(level), index}] = h
		return nil
	}
	if _, err := kt.Append(l.get, put, l.size, e.LeafHash()); err != nil {
		l.t.Fatal(err)
	}
	l.size++
	return l.size - 1
}

// head signs the head of the tree as it is.
func (l *testLog) head(signer *hybrid.Signer) *kt.Head {
	root, err := kt.Root(l.get, l.size)
	if err != nil {
		l.t.Fatal(err)
	}
	h := &kt.Head{RelayKey: signer.Public().Fingerprint(), Size: l.size, Root: root, Time: time.Unix(1772366400, 0)}
	if h.Signature, err = signer.Sign(kt.ContextHead, h.SignedPart()); err != nil {
		l.t.Fatal(err)
	}
	return h
}

// leaf is the answer for leaf index, with a consistency proof from known.
func (l *testLog) leaf(index, version uint64, hash [32]byte, h *kt.Head, known uint64) *protocol.DirectoryLeaf {
	inc, err := kt.InclusionProof(l.get, index, l.size)
	if err != nil {
		l.t.Fatal(err)
	}
	f := &protocol.DirectoryLeaf{Version: version, Hash: hash, Index: index, Head: h.Bytes()}
	for _, p := range inc {
		f.Inclusion = append(f.Inclusion, p)
	}
	if known > 0 && known < l.size {
		con, err := kt.ConsistencyProof(l.get, known, l.size)
		if err != nil {
			l.t.Fatal(err)
		}
		for _, p := range con {
			f.Consistency = append(f.Consistency, p)
		}
	}
	return f
}

// TestVerifyDirectoryLeaf: a leaf proved in a head signed by the pinned
// key and consistent with the kept head verifies; a head signed by
// another key, a leaf of another log key or version, a head that does
// not extend the kept one (a fork, or an older one: a rollback) and
// consistency proofs that are missing or unasked for are refused.
func TestVerifyDirectoryLeaf(t *testing.T) {
	t.Parallel()
	l := newTestLog(t)
	org, other := keys.Fingerprint{1}, keys.Fingerprint{2}
	hash := [32]byte{9}
	l.add(other, 1, [32]byte{3})
	l.add(org, 1, [32]byte{4})
	kept := l.head(l.signer)
	i := l.add(org, 2, hash)
	l.add(other, 2, [32]byte{5})
	h := l.head(l.signer)
	key := l.signer.Public()

	if got, err := verifyDirectoryLeaf(l.leaf(i, 2, hash, h, kept.Size), key, org, kept); err != nil || got.Size != 4 {
		t.Fatalf("a true answer: %v", err)
	}
	if _, err := verifyDirectoryLeaf(l.leaf(i, 2, hash, h, 0), key, org, nil); err != nil {
		t.Fatalf("a true answer without a kept head: %v", err)
	}
	mallory, err := hybrid.Generate()
	if err != nil {
		t.Fatal(err)
	}
	forked := newTestLog(t)
	forked.add(other, 1, [32]byte{3})
	forked.add(org, 1, [32]byte{4})
	forked.add(other, 9, [32]byte{8}) // what the others see at index 2
	forked.add(org, 2, hash)
	fh := forked.head(l.signer)
	old := &testLog{t: t, signer: l.signer, nodes: map[[2]uint64][32]byte{}}
	old.add(other, 1, [32]byte{3})
	old.add(org, 1, [32]byte{4})
	for _, tc := range []struct {
		name   string
		f      *protocol.DirectoryLeaf
		logKey keys.Fingerprint
		known  *kt.Head
		want   error
	}{
		{"head signed by another key", l.leaf(i, 2, hash, l.head(mallory), kept.Size), org, kept, kt.ErrBadHead},
		{"another organisation's key", l.leaf(i, 2, hash, h, kept.Size), other, kept, kt.ErrInclusion},
		{"another version", l.leaf(i, 3, hash, h, kept.Size), org, kept, kt.ErrInclusion},
		{"another hash", l.leaf(i, 2, [32]byte{7}, h, kept.Size), org, kept, kt.ErrInclusion},
		{"a head that does not extend the kept one", forked.leaf(3, 2, hash, fh, kept.Size), org, h, kt.ErrFork},
		{"an older head than the kept one", old.leaf(1, 1, [32]byte{4}, old.head(l.signer), 0), org, h, kt.ErrRollback},
		{"no consistency proof", l.leaf(i, 2, hash, h, 0), org, kept, kt.ErrFork},
		{"a consistency proof without a kept head", l.leaf(i, 2, hash, h, kept.Size), org, nil, kt.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := verifyDirectoryLeaf(tc.f, key, tc.logKey, tc.known); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}
