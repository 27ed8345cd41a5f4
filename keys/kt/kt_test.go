package kt_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/hybrid"
	"github.com/postern/postern/keys/kt"
)

// memTree is a tree in memory: every node Append stores.
type memTree struct {
	nodes map[[2]uint64][kt.HashSize]byte
	size  uint64
	root  [kt.HashSize]byte
}

func newMemTree() *memTree { return &memTree{nodes: map[[2]uint64][kt.HashSize]byte{}} }

func (m *memTree) get(level uint, index uint64) ([kt.HashSize]byte, error) {
	h, ok := m.nodes[[2]uint64{uint64(level), index}]
	if !ok {
		return h, fmt.Errorf("no node %d/%d", level, index)
	}
	return h, nil
}

func (m *memTree) put(level uint, index uint64, h [kt.HashSize]byte) error {
	m.nodes[[2]uint64{uint64(level), index}] = h
	return nil
}

func (m *memTree) append(t testing.TB, leaf [kt.HashSize]byte) {
	root, err := kt.Append(m.get, m.put, m.size, leaf)
	if err != nil {
		t.Fatal(err)
	}
	m.size++
	m.root = root
}

func entry(i int) kt.Entry {
	var e kt.Entry
	binary.BigEndian.PutUint64(e.Identity[:], uint64(i))
	e.Version = uint64(i%7 + 1)
	e.ListHash = sha256.Sum256([]byte(fmt.Sprint("list ", i)))
	return e
}

// mth is RFC 6962's Merkle Tree Hash written out from section 2.1, with
// no code of the merkle library: the reference the tree is checked against.
func mth(leaves [][kt.HashSize]byte) [kt.HashSize]byte {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := mth(leaves[:k]), mth(leaves[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

func TestLeafHash(t *testing.T) {
	e := entry(5)
	data := e.LeafData()
	if !bytes.HasPrefix(data, []byte("postern.v1 kt-leaf")) || len(data) != kt.LeafSize {
		t.Fatalf("leaf data of %d bytes", len(data))
	}
	if e.LeafHash() != sha256.Sum256(append([]byte{0}, data...)) {
		t.Fatal("leaf hash is not SHA-256(0x00 || leaf data)")
	}
	back, err := kt.ParseEntry(e.Bytes())
	if err != nil || back != e {
		t.Fatalf("entry round trip: %v", err)
	}
	if _, err := kt.ParseEntry(e.Bytes()[1:]); !errors.Is(err, kt.ErrMalformed) {
		t.Fatalf("short entry: %v", err)
	}
}

// TestProofs10000: a log of 10,000 entries; the root after each append
// matches RFC 6962's MTH at sampled sizes; every 97th leaf (and the first
// and last) has an inclusion proof that verifies and fails for another
// leaf or index; consistency proofs between several size pairs verify and
// fail against a wrong root.
func TestProofs10000(t *testing.T) {
	const n = 10000
	m := newMemTree()
	leaves := make([][kt.HashSize]byte, 0, n)
	roots := map[uint64][kt.HashSize]byte{0: kt.EmptyRoot()}
	for i := 0; i < n; i++ {
		h := entry(i).LeafHash()
		leaves = append(leaves, h)
		m.append(t, h)
		roots[m.size] = m.root
		if i < 70 || i%997 == 0 || i == n-1 {
			if want := mth(leaves); m.root != want {
				t.Fatalf("root of %d leaves differs from RFC 6962's MTH", m.size)
			}
		}
	}
	if r, err := kt.Root(m.get, n); err != nil || r != m.root {
		t.Fatalf("Root(%d) = %v", n, err)
	}
	checked := 0
	for _, size := range []uint64{1, 2, 3, 1000, 1024, 4097, n} {
		for i := uint64(0); i < size; i += 97 {
			for _, idx := range []uint64{i, size - 1} {
				p, err := kt.InclusionProof(m.get, idx, size)
				if err != nil {
					t.Fatal(err)
				}
				if err := kt.VerifyInclusion(leaves[idx], idx, size, p, roots[size]); err != nil {
					t.Fatalf("inclusion of %d in %d: %v", idx, size, err)
				}
				if size > 1 {
					other := (idx + 1) % size
					if err := kt.VerifyInclusion(leaves[other], idx, size, p, roots[size]); !errors.Is(err, kt.ErrInclusion) {
						t.Fatalf("leaf %d passed as %d in %d: %v", other, idx, size, err)
					}
				}
				checked++
			}
		}
	}
	pairs := [][2]uint64{{0, 1}, {1, 1}, {1, 2}, {1, n}, {2, 3}, {7, 8}, {8, 9}, {1023, 1024}, {1024, 1025}, {3, 9999}, {4096, n}, {5000, 7777}, {9999, n}, {n, n}}
	for _, pr := range pairs {
		p, err := kt.ConsistencyProof(m.get, pr[0], pr[1])
		if err != nil {
			t.Fatal(err)
		}
		if err := kt.VerifyConsistency(pr[0], pr[1], roots[pr[0]], roots[pr[1]], p); err != nil {
			t.Fatalf("consistency %d -> %d: %v", pr[0], pr[1], err)
		}
		if pr[0] > 0 {
			bad := roots[pr[0]]
			bad[0] ^= 1
			if err := kt.VerifyConsistency(pr[0], pr[1], bad, roots[pr[1]], p); !errors.Is(err, kt.ErrFork) {
				t.Fatalf("forked root %d -> %d passed: %v", pr[0], pr[1], err)
			}
		}
		if len(p) > kt.MaxProofHashes {
			t.Fatalf("consistency proof of %d hashes", len(p))
		}
	}
	if err := kt.VerifyConsistency(10, 9, roots[10], roots[9], nil); !errors.Is(err, kt.ErrRollback) {
		t.Fatalf("a smaller head passed: %v", err)
	}
	t.Logf("%d inclusion proofs, %d consistency pairs", checked, len(pairs))
}

func signHead(t testing.TB, s *hybrid.Signer, size uint64, root [kt.HashSize]byte) []byte {
	h := &kt.Head{RelayKey: s.Public().Fingerprint(), Size: size, Root: root, Time: time.Unix(1772366400, 0)}
	sig, err := s.Sign(kt.ContextHead, h.SignedPart())
	if err != nil {
		t.Fatal(err)
	}
	h.Signature = sig
	return h.Bytes()
}

func TestHead(t *testing.T) {
	s, err := hybrid.Generate()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := hybrid.Generate()
	root := sha256.Sum256([]byte("root"))
	b := signHead(t, s, 42, root)
	if len(b) != kt.HeadSize || b[0] != 0x13 || b[1] != 1 {
		t.Fatalf("head of %d bytes starting %x", len(b), b[:2])
	}
	h, err := kt.ParseHead(b, s.Public())
	if err != nil || h.Size != 42 || h.Root != root || !bytes.Equal(h.Bytes(), b) {
		t.Fatalf("ParseHead: %v", err)
	}
	if _, err := kt.ParseHead(b, other.Public()); !errors.Is(err, kt.ErrBadHead) {
		t.Fatalf("another key: %v", err)
	}
	bad := bytes.Clone(b)
	bad[2+32+7] ^= 1 // size
	if _, err := kt.ParseHead(bad, s.Public()); !errors.Is(err, kt.ErrBadHead) {
		t.Fatalf("changed size: %v", err)
	}
	for _, c := range [][]byte{b[:len(b)-1], append(bytes.Clone(b), 0), append([]byte{0x12}, b[1:]...)} {
		if _, err := kt.ParseHead(c, s.Public()); !errors.Is(err, kt.ErrMalformed) {
			t.Fatalf("malformed head: %v", err)
		}
	}
}

// FuzzParseHead: whatever parses re-encodes to the input.
func FuzzParseHead(f *testing.F) {
	s, err := hybrid.Generate()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signHead(f, s, 1, sha256.Sum256(nil)))
	f.Add(make([]byte, kt.HeadSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := kt.ParseHeadUnverified(b)
		if err != nil {
			return
		}
		if !bytes.Equal(h.Bytes(), b) {
			t.Fatal("re-encoding differs")
		}
		if h.Size == 0 && len(h.Signature) != keys.SignatureSize {
			t.Fatal("a head with a short signature parsed")
		}
	})
}

// FuzzVerifyProofs: arbitrary proofs, sizes and indices never panic and
// never verify against a random root.
func FuzzVerifyProofs(f *testing.F) {
	f.Add(uint64(3), uint64(7), []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"))
	f.Add(uint64(0), uint64(1), []byte{})
	f.Fuzz(func(t *testing.T, a, b uint64, raw []byte) {
		var p [][kt.HashSize]byte
		for len(raw) >= kt.HashSize && len(p) < 70 {
			p = append(p, [kt.HashSize]byte(raw[:kt.HashSize]))
			raw = raw[kt.HashSize:]
		}
		root := sha256.Sum256([]byte("a root nobody built"))
		leaf := sha256.Sum256([]byte("a leaf"))
		if kt.VerifyInclusion(leaf, a, b, p, root) == nil {
			t.Fatal("a random inclusion proof verified")
		}
		if a != 0 && a != b && kt.VerifyConsistency(a, b, leaf, root, p) == nil {
			t.Fatal("a random consistency proof verified")
		}
	})
}
