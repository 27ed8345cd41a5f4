package metrics

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/postern/postern/protocol"
)

func samples(t *testing.T, m *Metrics) uint64 {
	t.Helper()
	var out dto.Metric
	if err := m.latency.Write(&out); err != nil {
		t.Fatal(err)
	}
	return out.Histogram.GetSampleCount()
}

func TestDeliveryLatency(t *testing.T) {
	now := time.Unix(1000, 0)
	m := New()
	m.now = func() time.Time { return now }

	// A mailbox without a subscriber: nothing kept, no sample.
	offline := protocol.NewEnvelopeID()
	m.Sent(offline, false)
	m.Delivered(offline)
	if len(m.pending) != 0 || samples(t, m) != 0 {
		t.Fatalf("offline send: %d pending, %d samples", len(m.pending), samples(t, m))
	}

	// First delivery samples; a second delivery of the same envelope does not.
	live := protocol.NewEnvelopeID()
	m.Sent(live, true)
	now = now.Add(3 * time.Millisecond)
	m.Delivered(live)
	m.Delivered(live)
	if len(m.pending) != 0 || samples(t, m) != 1 {
		t.Fatalf("live send: %d pending, %d samples", len(m.pending), samples(t, m))
	}

	// Past the horizon: dropped without a sample.
	late := protocol.NewEnvelopeID()
	m.Sent(late, true)
	now = now.Add(latencyHorizon + time.Second)
	m.Delivered(late)
	if len(m.pending) != 0 || samples(t, m) != 1 {
		t.Fatalf("late delivery: %d pending, %d samples", len(m.pending), samples(t, m))
	}

	// Never more than maxPending kept; old entries make room.
	for range maxPending + 10 {
		m.Sent(protocol.NewEnvelopeID(), true)
	}
	if len(m.pending) != maxPending {
		t.Fatalf("%d pending, want the cap %d", len(m.pending), maxPending)
	}
	now = now.Add(latencyHorizon + time.Second)
	m.Sent(protocol.NewEnvelopeID(), true)
	if len(m.pending) != 1 {
		t.Fatalf("after the horizon: %d pending, want 1", len(m.pending))
	}
}

// TestBlobBytes: the blob bytes gauge sums the files of the blob
// directory, rereads it only after blobDirTTL, and is 0 before the
// directory exists.
func TestBlobBytes(t *testing.T) {
	now := time.Unix(1000, 0)
	m := New()
	m.now = func() time.Time { return now }
	dir := filepath.Join(t.TempDir(), "blobs")
	m.WatchBlobDir(dir)
	value := func() float64 {
		t.Helper()
		fams, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() == Namespace+"_blob_bytes" {
				return f.Metric[0].Gauge.GetValue()
			}
		}
		t.Fatal("no blob_bytes series")
		return 0
	}
	if v := value(); v != 0 {
		t.Fatalf("no directory: %v", v)
	}
	os.Mkdir(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "a"), make([]byte, 1000), 0o600)
	os.WriteFile(filepath.Join(dir, "b"), make([]byte, 24), 0o600)
	os.Mkdir(filepath.Join(dir, "sub"), 0o700) // not a blob file
	now = now.Add(blobDirTTL)
	if v := value(); v != 1024 {
		t.Fatalf("blob bytes %v, want 1024", v)
	}
	os.Remove(filepath.Join(dir, "a"))
	now = now.Add(time.Second)
	if v := value(); v != 1024 {
		t.Fatalf("within the TTL: %v, want the cached 1024", v)
	}
	now = now.Add(blobDirTTL)
	if v := value(); v != 24 {
		t.Fatalf("after the TTL: %v, want 24", v)
	}
}
