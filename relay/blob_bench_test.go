package relay_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

const benchBlobSize = (64 << 20) / chunk * chunk // ~64 MiB

// BenchmarkBlobUpload: one 64 MiB PUT per iteration over loopback HTTP,
// fsync and index commit included. Each blob is purged afterwards so the
// disk does not fill.
func BenchmarkBlobUpload(b *testing.B) {
	clk := newClock()
	srv := relaytest.New(b, &relaytest.Options{Now: clk.Now, BlobQuota: 1 << 50})
	c := blobDevice(b, srv)
	b.SetBytes(benchBlobSize)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		bc := createBlob(b, c, benchBlobSize)
		req, _ := http.NewRequest(http.MethodPut, blobURL(srv, bc.Blob), &pattern{limit: benchBlobSize})
		req.ContentLength = benchBlobSize
		req.Header.Set("Authorization", bearer(bc.Token))
		req.Header.Set(protocol.HTTPHeaderOffset, "0")
		b.StartTimer()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			b.Fatalf("status %d", resp.StatusCode)
		}
		b.StopTimer()
		clk.Advance(30 * 24 * time.Hour)
		if _, err := srv.Relay().PurgeExpiredBlobs(bg); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkBlobDownload: one 64 MiB GET per iteration over loopback HTTP.
func BenchmarkBlobDownload(b *testing.B) {
	srv := relaytest.New(b, nil)
	c := blobDevice(b, srv)
	bc := createBlob(b, c, benchBlobSize)
	req, _ := http.NewRequest(http.MethodPut, blobURL(srv, bc.Blob), &pattern{limit: benchBlobSize})
	req.ContentLength = benchBlobSize
	req.Header.Set("Authorization", bearer(bc.Token))
	req.Header.Set(protocol.HTTPHeaderOffset, "0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		b.Fatalf("upload: %v %v", resp, err)
	}
	resp.Body.Close()
	url := blobURL(srv, bc.Blob)
	b.SetBytes(benchBlobSize)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != benchBlobSize {
			b.Fatalf("download: %d bytes, %v", n, err)
		}
	}
}
