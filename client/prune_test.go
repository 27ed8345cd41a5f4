package client

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/postern/postern/relay/relaytest"
)

// Processed-envelope records older than seenRetention are deleted, at most
// once per pruneInterval, and recent ones are kept: a relay can no longer
// deliver the old envelopes again, and may still deliver the recent ones.
func TestPruneSeen(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	clk := &testClock{t: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
	opts := testOpts()
	opts.Now = clk.Now
	c, err := Init(testCtx(t), filepath.Join(t.TempDir(), "alice"), testPass, srv.URL, "alice", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mark := func(name string) []byte {
		k := c.st.Index(bucketSeen, []byte(name))
		if err := c.st.update(func(t *tx) error { return t.Put(bucketSeen, k, &seenRecord{At: clk.Now()}) }); err != nil {
			t.Fatal(err)
		}
		return k
	}
	present := func(k []byte) bool {
		var ok bool
		c.st.view(func(t *tx) error { ok = t.Has(bucketSeen, k); return nil })
		return ok
	}

	old := mark("old")
	clk.advance(seenRetention - time.Hour)
	recent := mark("recent")
	clk.advance(2 * time.Hour) // old is now past seenRetention, recent is not
	if n, err := c.pruneSeen(); err != nil || n != 1 {
		t.Fatalf("pruneSeen = %d, %v; want 1", n, err)
	}
	if present(old) || !present(recent) {
		t.Fatalf("after pruning: old present %v, recent present %v", present(old), present(recent))
	}

	// Within pruneInterval nothing is walked, even though recent is now old.
	clk.advance(seenRetention)
	fresh := mark("fresh")
	clk.advance(-seenRetention + pruneInterval/2)
	if n, err := c.pruneSeen(); err != nil || n != 0 {
		t.Fatalf("second pruneSeen within the interval = %d, %v; want 0", n, err)
	}
	clk.advance(seenRetention)
	if n, err := c.pruneSeen(); err != nil || n != 1 || present(recent) || !present(fresh) {
		t.Fatalf("pruneSeen after the interval = %d, %v (recent present %v, fresh present %v); want 1, recent gone, fresh kept",
			n, err, present(recent), present(fresh))
	}
}
