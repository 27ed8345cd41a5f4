package store

import (
	"context"
	"time"
)

// Stats is a snapshot of what a store holds, for metrics. It names no
// mailbox, device or envelope.
type Stats struct {
	// Envelopes is the number of queued (stored, unacknowledged,
	// unpurged) envelopes.
	Envelopes int64
	// OldestReceived is the received time of the oldest queued envelope
	// (coarse: truncated to protocol.TimeGranularity); zero when none is
	// queued.
	OldestReceived time.Time
	// Bytes is the size of the store on disk.
	Bytes int64
}

// StatsReader is implemented by a Store that can report Stats cheaply
// enough to be called on every metrics scrape (read-only, no write
// transaction). The default bboltstore does.
type StatsReader interface {
	Stats(ctx context.Context) (Stats, error)
}
