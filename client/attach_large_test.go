package client

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/relay/relaytest"
)

// attachLarge runs TestAttachmentLarge with 1 GiB instead of 16 MiB:
//
//	go test -run TestAttachmentLarge -attach.large -timeout 30m ./client
var attachLarge = flag.Bool("attach.large", false, "send and save a 1 GiB attachment in TestAttachmentLarge")

// TestAttachmentLarge sends and saves a generated file end to end through a
// relay on loopback and reports upload and download throughput and the
// process's peak RSS. 16 MiB by default, 1 GiB with -attach.large.
func TestAttachmentLarge(t *testing.T) {
	t.Parallel()
	size := int64(16 << 20)
	if *attachLarge {
		size = 1 << 30
	}
	up, down, rss := attachmentRoundTrip(t, size)
	t.Logf("%d MiB: upload %.1f MB/s, download %.1f MB/s, peak RSS %s", size>>20, up, down, rss)
}

// BenchmarkAttachment1GiB is TestAttachmentLarge at 1 GiB as a benchmark
// (one iteration is the whole file): go test -run - -bench Attachment1GiB -benchtime 1x ./client
func BenchmarkAttachment1GiB(b *testing.B) {
	for b.Loop() {
		up, down, rss := attachmentRoundTrip(b, 1<<30)
		b.ReportMetric(up, "upload-MB/s")
		b.ReportMetric(down, "download-MB/s")
		if kib, err := strconv.ParseFloat(strings.TrimSuffix(rss, " kB"), 64); err == nil {
			b.ReportMetric(kib/1024, "peakRSS-MiB")
		}
	}
}

// attachmentRoundTrip sends a file of size bytes from alice to bob and
// saves it; it returns the upload and download rates (MB/s, plaintext) and
// VmHWM.
func attachmentRoundTrip(tb testing.TB, size int64) (upMBs, downMBs float64, peakRSS string) {
	srv := relaytest.New(tb, nil)
	alice, bob := pairTB(tb, srv)
	dir := tb.TempDir()
	p := filepath.Join(dir, "big.bin")
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	// A cheap pseudo-random pattern: the cipher does not care, and
	// crypto/rand would dominate the setup time.
	if _, err := io.CopyN(f, &patternReader{}, size); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	ctx := tb.Context()
	start := time.Now()
	sent, err := alice.SendFiles(ctx, "bob", "", []string{p}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	upMBs = float64(size) / 1e6 / time.Since(start).Seconds()
	if _, err := bob.Sync(ctx); err != nil {
		tb.Fatal(err)
	}
	out := tb.TempDir()
	start = time.Now()
	saved, err := bob.SaveAttachments(ctx, sent.ID, out, nil)
	if err != nil {
		tb.Fatal(err)
	}
	downMBs = float64(size) / 1e6 / time.Since(start).Seconds()
	if fi, err := os.Stat(saved[0]); err != nil || fi.Size() != size {
		tb.Fatalf("saved %v, %v", fi, err)
	}
	return upMBs, downMBs, vmHWM()
}

// vmHWM is the process's peak resident set size from /proc (Linux only).
func vmHWM() string {
	if runtime.GOOS != "linux" {
		return "n/a"
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "n/a"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "n/a"
}

type patternReader struct{ x uint64 }

func (r *patternReader) Read(p []byte) (int, error) {
	for i := range p {
		r.x = r.x*6364136223846793005 + 1442695040888963407
		p[i] = byte(r.x >> 56)
	}
	return len(p), nil
}

// pairTB is pair for benchmarks too: alice invites, bob accepts.
func pairTB(tb testing.TB, srv *relaytest.Server) (alice, bob *Client) {
	tb.Helper()
	ctx := tb.Context()
	mk := func(name string) *Client {
		c, err := Init(ctx, filepath.Join(tb.TempDir(), name), testPass, srv.URL, name, testOpts())
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { c.Close() })
		return c
	}
	alice, bob = mk("alice"), mk("bob")
	code, err := alice.Invite(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := bob.Accept(ctx, code, "alice"); err != nil {
		tb.Fatal(err)
	}
	if _, err := alice.Sync(ctx); err != nil {
		tb.Fatal(err)
	}
	return alice, bob
}
