package client

import (
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/relay/relaytest"
)

// benchHome is a home on srv with one contact, "bob" (a person made in
// the store, with one device), and n messages of size bytes with him.
func benchHome(b *testing.B, srv *relaytest.Server, n, size int) *Client {
	b.Helper()
	c, err := Init(b.Context(), filepath.Join(b.TempDir(), "alice"), testPass, srv.URL, "alice", testOpts())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	err = c.st.update(func(t *tx) error {
		return t.newContact(newContactRecord("bob", randomID(32), nil, randomID(32), "", c.now().UTC()), c.now().UTC())
	})
	if err != nil {
		b.Fatal(err)
	}
	addMessages(b, c, "bob", n, size)
	return c
}

// peakHeap collects garbage, then samples the heap (live and not yet
// collected objects, collected at 10% growth) every millisecond and returns, when stopped, by how
// much the largest value seen exceeds the heap at the start.
func peakHeap() (stop func() uint64) {
	// Collected often while sampled, so that the peak is close to what is
	// live rather than to garbage not yet collected.
	gc := debug.SetGCPercent(10)
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	base := s[0].Value.Uint64()
	var (
		mu   sync.Mutex
		peak uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			mu.Lock()
			peak = max(peak, s[0].Value.Uint64())
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		debug.SetGCPercent(gc)
		return peak - min(peak, base)
	}
}

// BenchmarkBackup10kMessages writes (backup) and restores (restore, as a
// new device on the relay) a backup of 10 000 messages of 512 bytes:
// MB/s of backup file, allocations, and how far the heap grew.
func BenchmarkBackup10kMessages(b *testing.B) {
	const n, size = 10000, 512
	b.Run("backup", func(b *testing.B) {
		srv := relaytest.New(b, nil)
		c := benchHome(b, srv, n, size)
		dir := b.TempDir()
		b.ReportAllocs()
		var bytes int64
		stop := peakHeap()
		for b.Loop() {
			p := filepath.Join(dir, "a.backup")
			if _, err := c.Backup(b.Context(), p); err != nil {
				b.Fatal(err)
			}
			fi, err := os.Stat(p)
			if err != nil {
				b.Fatal(err)
			}
			bytes = fi.Size()
			os.Remove(p)
		}
		b.SetBytes(bytes)
		b.ReportMetric(float64(stop())/(1<<20), "heap-growth-MB")
	})
	b.Run("restore", func(b *testing.B) {
		b.ReportAllocs()
		var bytes int64
		var peak uint64
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			// A relay and a person for each restore: a person has at most
			// 8 devices.
			srv := relaytest.New(b, nil)
			c := benchHome(b, srv, n, size)
			p := filepath.Join(b.TempDir(), "a.backup")
			key, err := c.Backup(b.Context(), p)
			if err != nil {
				b.Fatal(err)
			}
			fi, _ := os.Stat(p)
			bytes = fi.Size()
			stop := peakHeap()
			b.StartTimer()
			r, err := Restore(b.Context(), filepath.Join(b.TempDir(), "restored"), testPass, p, key, "LAPTOP", testOpts())
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			peak = max(peak, stop())
			if _, m := r.Restored(); m != n {
				b.Fatalf("restored %d messages, want %d", m, n)
			}
			r.Close()
			srv.Close()
			b.StartTimer()
		}
		b.SetBytes(bytes)
		b.ReportMetric(float64(peak)/(1<<20), "heap-growth-MB")
	})
}
