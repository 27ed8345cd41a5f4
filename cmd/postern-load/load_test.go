package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/postern/postern/relay/relaytest"
	"github.com/postern/postern/relay/store"
)

var resultLine = regexp.MustCompile(`RESULT phase=(\w+) pairs=(\d+) offered=(\d+)/s cycles=(\d+) rate=(\d+)/s deliver_p50=\S+ deliver_p99=\S+ deliver_p999=\S+ durable_p50=\S+ durable_p99=\S+`)

// The load tool completes full cycles against a real relay, flat out and
// paced at half of the capacity it measured, and says so in RESULT lines.
func TestLoadAgainstRelay(t *testing.T) {
	srv := relaytest.New(t, nil)
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"--url", srv.URL, "--pairs", "3", "--half", "--probe", "400ms", "--duration", "400ms"}, &out, &errb)
	if err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want a capacity and a paced line, got:\n%s", out.String())
	}
	var capacity float64
	for i, want := range []string{"capacity", "paced"} {
		m := resultLine.FindStringSubmatch(lines[i])
		if m == nil || m[1] != want || m[2] != "3" {
			t.Fatalf("line %d = %q, want phase %s with 3 pairs", i, lines[i], want)
		}
		cycles, _ := strconv.Atoi(m[4])
		rate, _ := strconv.ParseFloat(m[5], 64)
		if cycles == 0 || rate == 0 {
			t.Fatalf("%s: no cycle completed: %q", want, lines[i])
		}
		if want == "capacity" {
			capacity = rate
		} else if offered, _ := strconv.ParseFloat(m[3], 64); offered < capacity/2-1 || offered > capacity/2+1 {
			t.Fatalf("paced phase offered %v/s, want half of %v", offered, capacity)
		}
	}
	// Everything was acknowledged: the relay holds no envelope.
	sr, ok := srv.Relay().Store().(store.StatsReader)
	if !ok {
		t.Fatal("the relay's store reports no stats")
	}
	st, err := sr.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Envelopes != 0 {
		t.Fatalf("the relay still holds %d envelopes", st.Envelopes)
	}
}

func TestLoadRefusesBadOptions(t *testing.T) {
	for _, args := range [][]string{
		{"--url", "http://127.0.0.1:1"},
		{"--size", "1000"},
		{"--window", "0"},
		{"--pairs", "0"},
		{"extra"},
	} {
		var out, errb bytes.Buffer
		if err := run(context.Background(), args, &out, &errb); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}
