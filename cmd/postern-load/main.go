// Command postern-load drives a running relay with the full message cycle
// and reports throughput and latency: the relay's load tool. It runs as a
// process of its own, so the relay under test shares its runtime with
// nothing (the Go benchmarks in relay/ run client and relay in one
// process).
//
//	postern-relay serve --data /tmp/load --metrics-listen= &
//	postern-load --url ws://127.0.0.1:7878 --pairs 64 --duration 10s
//	postern-load --url ws://127.0.0.1:7878 --half       # half of the measured capacity
//
// Each pair is an enrolled owner device subscribed to a mailbox and an
// unauthenticated sender connection, as real senders are (sealed sender).
// A cycle is send -> durable (Sent) -> delivered -> acknowledged ->
// deleted (the Ack answered). The relay must allow open enrolment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "postern-load: error: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("postern-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "ws://127.0.0.1:7878", "the relay's WebSocket URL (ws:// or wss://, without the path)")
	pairs := fs.Int("pairs", 64, "sender/owner pairs")
	window := fs.Int("window", 8, "sends in flight per sender")
	rate := fs.Float64("rate", 0, "messages per second over all pairs, paced evenly (0: as fast as the relay takes them)")
	half := fs.Bool("half", false, "measure the capacity flat out for --probe, then offer half of it for --duration")
	probe := fs.Duration("probe", 5*time.Second, "how long --half measures the capacity")
	duration := fs.Duration("duration", 10*time.Second, "how long to send")
	size := fs.Int("size", 1024, "envelope size in bytes: a padding bucket, 1 KiB to 64 KiB")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg := config{url: *url, pairs: *pairs, window: *window, size: *size}
	if err := cfg.check(); err != nil {
		return err
	}
	if *half {
		ps, err := setup(ctx, cfg)
		if err != nil {
			return err
		}
		capRes, err := ps.run(ctx, *probe, 0)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, capRes.line("capacity"))
		*rate = capRes.rate / 2
	}
	ps, err := setup(ctx, cfg) // fresh pairs: run closes its own
	if err != nil {
		return err
	}
	res, err := ps.run(ctx, *duration, *rate)
	if err != nil {
		return err
	}
	name := "flat"
	if *rate > 0 {
		name = "paced"
	}
	fmt.Fprintln(stdout, res.line(name))
	return nil
}
