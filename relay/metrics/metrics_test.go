package metrics

import (
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
