package relay

import (
	"errors"
	"testing"
	"time"
)

// TestConfigRefusesNegativeDurations: a negative retention was silently
// replaced by the default; now it is a configuration error, as the blob
// retention already was. Zero still means the default.
func TestConfigRefusesNegativeDurations(t *testing.T) {
	for _, c := range []Config{
		{DataDir: "x", Retention: -time.Hour},
		{DataDir: "x", BlobRetention: -time.Hour},
	} {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("Validate(%+v) = %v, want ErrConfig", c, err)
		}
	}
	if err := (Config{DataDir: "x"}).Validate(); err != nil {
		t.Errorf("zero durations (defaults): %v", err)
	}
}
