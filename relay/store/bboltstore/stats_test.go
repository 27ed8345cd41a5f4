package bboltstore

import (
	"os"
	"testing"
	"time"

	"github.com/postern/postern/protocol"
)

func TestStats(t *testing.T) {
	s, path := openTest(t)
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Envelopes != 0 || !st.OldestReceived.IsZero() || st.Bytes <= 0 {
		t.Fatalf("empty store: Stats = %+v, want 0 envelopes, no oldest, a positive size", st)
	}
	mb, h := mailboxWithCap(t, s)
	var ids []protocol.EnvelopeID
	for i := range 3 {
		e, err := s.Append(ctx, envelope(mb, t0.Add(time.Duration(i)*time.Hour)), h)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	st, err = s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Envelopes != 3 || !st.OldestReceived.Equal(t0) || st.Bytes != fi.Size() {
		t.Fatalf("Stats = %+v, want 3 envelopes, oldest %v, %d bytes", st, t0, fi.Size())
	}
	// Acking the oldest moves the oldest on.
	if _, err := s.Ack(ctx, mb, ids[:1]); err != nil {
		t.Fatal(err)
	}
	st, _ = s.Stats(ctx)
	if st.Envelopes != 2 || !st.OldestReceived.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after ack: Stats = %+v, want 2 envelopes, oldest %v", st, t0.Add(time.Hour))
	}
	s.Close()
	if _, err := s.Stats(ctx); err == nil {
		t.Fatal("Stats on a closed store succeeded")
	}
}
