package relay_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkPlainHTTPCopy is the baseline for the blob benchmarks: the same
// bytes through a bare net/http handler on loopback that writes the PUT
// body to a file and fsyncs it (upload), or serves the file (download),
// with nothing of Postern's in the way. Blob figures are reported as
// ratios to these.
func BenchmarkPlainHTTPCopy(b *testing.B) {
	path := filepath.Join(b.TempDir(), "copy")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPut:
			f, err := os.Create(path)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			defer f.Close()
			if _, err := io.CopyBuffer(f, r.Body, make([]byte, 1<<20)); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			if err := f.Sync(); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		case http.MethodGet:
			http.ServeFile(w, r, path)
		}
	}))
	defer srv.Close()
	put := func() {
		req, _ := http.NewRequest(http.MethodPut, srv.URL, &pattern{limit: benchBlobSize})
		req.ContentLength = benchBlobSize
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.Run("upload", func(b *testing.B) {
		b.SetBytes(benchBlobSize)
		for b.Loop() {
			put()
		}
	})
	b.Run("download", func(b *testing.B) {
		put()
		b.SetBytes(benchBlobSize)
		buf := make([]byte, 1<<20)
		for b.Loop() {
			resp, err := http.Get(srv.URL)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.CopyBuffer(io.Discard, resp.Body, buf)
			resp.Body.Close()
			if err != nil || n != benchBlobSize {
				b.Fatalf("read %d: %v", n, err)
			}
		}
	})
}
