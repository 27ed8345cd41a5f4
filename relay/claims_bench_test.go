package relay_test

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

// BenchmarkClaims measures compare-and-set claims through real WebSockets
// on loopback: 64 claimers, each on its own unauthenticated connection,
// each waiting for its ClaimState before the next SetClaim. Every other
// claim is on the claimer's own register (it always wins: the claimer
// knows its version) and the rest on one of 4 registers all claimers
// share (a claimer sets from the version it last saw, so most of those
// lose to another claimer and learn the new version from the answer).
// Each claim that wins is durable before its answer. Reported: claims per
// second (won and lost), the latency of one SetClaim from write to answer
// at the 50th and 99th percentile, and the share of shared claims won.
//
//	go test ./relay -run '^$' -bench Claims -benchtime 20000x
func BenchmarkClaims(b *testing.B) {
	const claimers, shared = 64, 4
	srv := relaytest.New(b, nil)
	_, sp, _, write := claimTeam(b, srv.URL)
	conns := make([]*client, claimers)
	for i := range conns {
		conns[i] = dial(b, srv.URL)
	}
	latencies := make([][]time.Duration, claimers)
	var next, sharedSets, sharedWins atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			own := protocol.ClaimToken{0xa0, byte(i)}
			var ownVersion uint64
			var seen [shared]uint64
			value := []byte(fmt.Sprintf("claimer %d", i))
			for n := uint32(1); ; n++ {
				k := next.Add(1)
				if k > int64(b.N) {
					return
				}
				f := &protocol.SetClaim{Space: sp, Write: write, Token: own, Expected: ownVersion, Value: value}
				s := -1
				if n%2 == 0 {
					s = int(k) % shared
					f.Token, f.Expected = protocol.ClaimToken{0xb0, byte(s)}, seen[s]
				}
				t0 := time.Now()
				st, err := claim(c, n, f)
				if err != nil {
					b.Error(err)
					return
				}
				latencies[i] = append(latencies[i], time.Since(t0))
				if s < 0 {
					if !st.OK {
						b.Errorf("claimer %d lost its own register at version %d", i, ownVersion)
						return
					}
					ownVersion = st.Version
					continue
				}
				seen[s] = st.Version
				sharedSets.Add(1)
				if st.OK {
					sharedWins.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(latencies...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(all))/b.Elapsed().Seconds(), "claims/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	if n := sharedSets.Load(); n > 0 {
		b.ReportMetric(float64(sharedWins.Load())/float64(n), "shared-won")
	}
}
