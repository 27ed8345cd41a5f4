package relay

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestSampledLog: a flood of refusals costs one log line per interval,
// and the line counts them.
func TestSampledLog(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, nil))
	s := sampledLog{every: 10 * time.Second}
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for i := range 1000 {
		s.log(l, now.Add(time.Duration(i)*time.Millisecond), "refused")
	}
	if n := strings.Count(buf.String(), "refused"); n != 1 {
		t.Fatalf("%d log lines for 1000 refusals in one second, want 1:\n%s", n, buf.String())
	}
	s.log(l, now.Add(11*time.Second), "refused")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "count=1000") {
		t.Fatalf("second line %q, want the 1000 refusals since the first", lines[len(lines)-1])
	}
}

// TestBucketGiveBack: a token given back is there again, up to the burst;
// tokens refill at the rate.
func TestBucketGiveBack(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	const rate, burst = 1.0 / 60, 2 // one a minute
	b := newBucket(now, burst)
	for i := range burst {
		if ok, _ := b.take(now, rate, burst); !ok {
			t.Fatalf("take %d refused from a full bucket", i)
		}
	}
	ok, wait := b.take(now, rate, burst)
	if ok || wait != time.Minute {
		t.Fatalf("empty bucket: take = %v, wait %v; want refused, a minute", ok, wait)
	}
	b.give(now, rate, burst)
	if ok, _ := b.take(now, rate, burst); !ok {
		t.Fatal("token given back is not there")
	}
	b.give(now, rate, burst)
	b.give(now, rate, burst)
	b.give(now, rate, burst)
	if lvl := b.level(now, rate, burst); lvl != burst {
		t.Fatalf("level %v after giving back more than was taken, want the burst %d", lvl, burst)
	}
	b.take(now, rate, burst)
	b.take(now, rate, burst)
	if ok, _ := b.take(now.Add(time.Minute), rate, burst); !ok {
		t.Fatal("no token a minute later")
	}
}
