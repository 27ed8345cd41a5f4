package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/postern/postern/relay/metrics"
)

// defaultMetricsListen is where /metrics is served unless told otherwise:
// loopback, so that a relay's totals are not published by accident.
const defaultMetricsListen = "127.0.0.1:9178"

// metricsFlags are the serve flags for the metrics listener.
type metricsFlags struct {
	listen *string
	public *bool
}

func addMetricsFlags(fs *flag.FlagSet) metricsFlags {
	return metricsFlags{
		listen: fs.String("metrics-listen", defaultMetricsListen, "address to serve Prometheus metrics on at /metrics (a separate listener; empty disables)"),
		public: fs.Bool("metrics-listen-public", false, "allow --metrics-listen on a non-loopback address"),
	}
}

// check refuses a non-loopback metrics address unless allowed. It returns
// false when metrics are disabled.
func (f metricsFlags) check() (bool, error) {
	addr := *f.listen
	if addr == "" {
		return false, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return false, &usageError{msg: fmt.Sprintf("--metrics-listen %q: %v", addr, err), hint: "give host:port, e.g. " + defaultMetricsListen}
	}
	if !isLoopback(addr) && !*f.public {
		return false, &usageError{
			msg:  fmt.Sprintf("refusing to serve metrics on non-loopback address %s", addr),
			hint: "scrape over loopback or a private network; pass --metrics-listen-public to serve it there anyway, or --metrics-listen= to disable metrics",
		}
	}
	return true, nil
}

// metricsServer serves m's /metrics on its own listener.
type metricsServer struct {
	srv  *http.Server
	ln   net.Listener
	errc chan error
}

func startMetrics(addr string, m *metrics.Metrics, logger *slog.Logger) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	s := &metricsServer{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		ln:   ln,
		errc: make(chan error, 1),
	}
	logger.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	go func() { s.errc <- s.srv.Serve(ln) }()
	return s, nil
}

// shutdown stops the metrics server; a nil server is fine.
func (s *metricsServer) shutdown(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.srv.Shutdown(ctx)
	if err := <-s.errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
