package client

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/search"
	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/relay/relaytest"
)

// searchBenchHome returns a client whose store holds n generated messages
// (words under a Zipf law over a 20,000-word vocabulary), not indexed.
func searchBenchHome(b *testing.B, n int) (*Client, []string) {
	srv := relaytest.New(b, nil)
	c, _ := newTestClient(b, srv, "alice")
	r := rand.New(rand.NewPCG(1, 2))
	vocab := make([]string, 20000)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("w%dx", i)
	}
	z := rand.NewZipf(r, 1.07, 1, uint64(len(vocab)-1))
	words := func(k int) string {
		var s []string
		for range k {
			s = append(s, vocab[z.Uint64()])
		}
		return strings.Join(s, " ")
	}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for done := 0; done < n; {
		err := c.st.Store.Update(func(t *store.Tx) error {
			for i := 0; i < 1000 && done < n; i, done = i+1, done+1 {
				at := start.Add(time.Duration(done) * time.Minute)
				m := &messageRecord{ID: fmt.Sprintf("%016x", done+1), From: fmt.Sprintf("Person %d", r.IntN(400)), To: Me,
					Subject: words(3 + r.IntN(5)), Text: words(20 + r.IntN(180)), Time: at, Received: at}
				if _, err := t.AddMessage(m); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return c, vocab
}

// BenchmarkSearchRebuild: the first search of a home of 10,000 messages,
// which makes the index from the store.
func BenchmarkSearchRebuild(b *testing.B) {
	c, _ := searchBenchHome(b, 10000)
	ctx := b.Context()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		old := c.st.idx
		old.close()
		if err := search.Remove(old.path); err != nil {
			b.Fatal(err)
		}
		c.st.idx = &searchIndex{path: old.path, key: old.key, log: old.log}
		b.StartTimer()
		if _, err := c.Search(ctx, "w100x", nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkSearchWord: a one-word search (top 50, read back from the
// store) in a home of 10,000 indexed messages.
func BenchmarkSearchWord(b *testing.B) {
	c, vocab := searchBenchHome(b, 10000)
	ctx := b.Context()
	if _, err := c.Search(ctx, "w1x", nil); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for b.Loop() {
		if _, err := c.Search(ctx, vocab[20+r.IntN(2000)], nil); err != nil {
			b.Fatal(err)
		}
	}
}
