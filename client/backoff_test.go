package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/postern/postern/protocol"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, v string
		want    time.Duration
	}{
		{"seconds", "7", 7 * time.Second},
		{"date", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"past date", now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"missing", "", 0},
		{"garbage", "soon", 0},
		{"negative", "-3", 0},
		{"huge", "999999", maxRetryAfter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseRetryAfter(tc.v, now); got != tc.want {
				t.Fatalf("parseRetryAfter(%q) = %v, want %v", tc.v, got, tc.want)
			}
		})
	}
}

// TestReconnectDelay: full jitter within a window that doubles up to the
// cap, and a refusal's Retry-After as a floor with a random part on top.
func TestReconnectDelay(t *testing.T) {
	t.Parallel()
	for n := range 10 {
		window := min(reconnectBase<<n, reconnectCap)
		seen := map[time.Duration]bool{}
		for range 200 {
			d := reconnectDelay(n, errors.New("dial failed"))
			if d < 0 || d >= window {
				t.Fatalf("attempt %d: delay %v outside [0, %v)", n, d, window)
			}
			seen[d] = true
		}
		if len(seen) < 50 {
			t.Fatalf("attempt %d: %d distinct delays in 200: not jittered", n, len(seen))
		}
	}
	refused := &refusedError{err: &protocol.Error{Code: protocol.CodeTooManyConnections}, retryAfter: 10 * time.Second}
	wrapped := errors.Join(errors.New("client: connect to relay"), refused)
	for range 200 {
		d := reconnectDelay(0, wrapped)
		if d < 10*time.Second || d >= 20*time.Second {
			t.Fatalf("delay %v after Retry-After 10 s, want in [10 s, 20 s)", d)
		}
	}
}

// TestDialRefusalCarriesRetryAfter: a 429 before the upgrade is reported
// with its code and its Retry-After, which the reconnect loop honours.
func TestDialRefusalCarriesRetryAfter(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "12")
		w.Header().Set(protocol.HTTPHeaderError, strconv.Itoa(int(protocol.CodeTooManyConnections)))
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte("too many connections from this address\n"))
	}))
	defer srv.Close()
	_, err := dialRelay(context.Background(), "ws"+srv.URL[len("http"):], nil, nil)
	if !protocol.IsCode(err, protocol.CodeTooManyConnections) {
		t.Fatalf("dial: %v, want code %d", err, protocol.CodeTooManyConnections)
	}
	var re *refusedError
	if !errors.As(err, &re) || re.retryAfter != 12*time.Second {
		t.Fatalf("dial error %v carries no Retry-After of 12 s", err)
	}
	if d := reconnectDelay(3, err); d < 12*time.Second {
		t.Fatalf("next attempt after %v, before the Retry-After", d)
	}
}
