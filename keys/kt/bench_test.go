package kt_test

import (
	"fmt"
	"testing"

	"github.com/postern/postern/keys/kt"
)

// benchTrees caches the trees the benchmarks build (10^6 appends take a
// few seconds).
var benchTrees = map[int]*memTree{}

func benchTree(b *testing.B, n int) *memTree {
	m := benchTrees[n]
	if m == nil {
		m = newMemTree()
		for i := 0; i < n; i++ {
			m.append(b, entry(i).LeafHash())
		}
		benchTrees[n] = m
	}
	return m
}

// BenchmarkInclusion: proof size (hashes, bytes on the wire) and
// verification time of an inclusion proof at 10^3 and 10^6 leaves.
func BenchmarkInclusion(b *testing.B) {
	for _, n := range []int{1000, 1000000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			m := benchTree(b, n)
			idx := uint64(n / 3)
			p, err := kt.InclusionProof(m.get, idx, m.size)
			if err != nil {
				b.Fatal(err)
			}
			leaf := entry(int(idx)).LeafHash()
			b.ResetTimer()
			for range b.N {
				if err := kt.VerifyInclusion(leaf, idx, m.size, p, m.root); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(p)), "hashes")
			b.ReportMetric(float64(1+32*len(p)), "proof-bytes")
		})
	}
}

// BenchmarkConsistency: the same for a consistency proof from a tree of
// two thirds of the leaves.
func BenchmarkConsistency(b *testing.B) {
	for _, n := range []int{1000, 1000000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			m := benchTree(b, n)
			old := uint64(n*2/3 + 1)
			oldRoot, err := kt.Root(m.get, old)
			if err != nil {
				b.Fatal(err)
			}
			p, err := kt.ConsistencyProof(m.get, old, m.size)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if err := kt.VerifyConsistency(old, m.size, oldRoot, m.root, p); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(p)), "hashes")
			b.ReportMetric(float64(1+32*len(p)), "proof-bytes")
		})
	}
}

// BenchmarkProofBuild: building an inclusion proof from stored nodes at
// 10^6 leaves (what the relay does per fetch, before its store reads).
func BenchmarkProofBuild(b *testing.B) {
	m := benchTree(b, 1000000)
	b.ResetTimer()
	for i := range b.N {
		if _, err := kt.InclusionProof(m.get, uint64(i*7919)%m.size, m.size); err != nil {
			b.Fatal(err)
		}
	}
}
