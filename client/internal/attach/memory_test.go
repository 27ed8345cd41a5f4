package attach

import (
	"io"
	"runtime"
	"testing"
)

// TestConstantMemory streams a 256 MiB file (generated, not stored)
// through an Encryptor and a Decryptor and bounds the bytes allocated:
// memory must not grow with the file size.
func TestConstantMemory(t *testing.T) {
	size := int64(256 << 20)
	if testing.Short() || raceEnabled {
		size = 16 << 20 // the bound is the same; only the time differs
	}
	const budget = 1 << 20 // two chunk buffers, one copy buffer, two AEADs, a hash
	key := testKey()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	enc := NewEncryptor(key, pattern{size}, size)
	h := &countWriter{}
	dec := NewDecryptor(key, size, h)
	buf := make([]byte, 32<<10)
	if _, err := io.CopyBuffer(dec, enc.Reader(0), buf); err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d MiB streamed; %d bytes allocated in total (budget %d)", size>>20, alloc, budget)
	if alloc > budget {
		t.Fatalf("allocated %d bytes for a %d-byte file, budget %d", alloc, size, budget)
	}
	if h.n != size {
		t.Fatalf("wrote %d plaintext bytes, want %d", h.n, size)
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// TestSteadyStateAllocs: sealing and opening a chunk in a running stream
// allocates nothing.
func TestSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes escape analysis and adds allocations")
	}
	key := testKey()
	size := int64(1 << 30)
	r := NewEncryptor(key, pattern{size}, size).Reader(0)
	d := NewDecryptor(key, size, io.Discard)
	chunk := make([]byte, CipherChunkSize)
	small := make([]byte, 4096)
	io.ReadFull(r, chunk) // warm up: allocates the Reader's buffer
	d.Write(chunk)
	read := testing.AllocsPerRun(100, func() {
		if _, err := io.ReadFull(r, chunk); err != nil {
			t.Fatal(err)
		}
	})
	readSmall := testing.AllocsPerRun(100, func() {
		if _, err := r.Read(small); err != nil {
			t.Fatal(err)
		}
	})
	// Keep d aligned on chunks: feed it what r produces, chunk by chunk.
	r2 := NewEncryptor(key, pattern{size}, size).Reader(1)
	write := testing.AllocsPerRun(100, func() {
		io.ReadFull(r2, chunk)
		if _, err := d.Write(chunk); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("allocations per chunk: Reader %.1f (small reads %.1f), Decryptor.Write %.1f", read, readSmall, write)
	if read != 0 || readSmall != 0 || write != 0 {
		t.Fatal("steady-state chunk processing allocates")
	}
}
