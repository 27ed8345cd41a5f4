package relay_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/relaytest"
	"github.com/postern/postern/relay/store"
)

const chunk = protocol.BlobCipherChunkSize

// blobDevice is an authenticated connection for CreateBlob.
func blobDevice(t testing.TB, srv *relaytest.Server) *client {
	t.Helper()
	c := dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, c.enroll(newDevice(t), ""))
	return c
}

func createBlob(t testing.TB, c *client, size uint64) *protocol.BlobCreated {
	t.Helper()
	return wantType[*protocol.BlobCreated](t, c.do(&protocol.CreateBlob{Size: size}))
}

func blobURL(srv *relaytest.Server, id protocol.BlobID) string {
	return srv.HTTPURL + protocol.BlobPath + id.String()
}

func bearer(tok protocol.BlobToken) string { return "Bearer " + hex.EncodeToString(tok[:]) }

// blobReq sends one blob request; auth "" sends no Authorization header and
// off < 0 no Postern-Offset.
func blobReq(t testing.TB, method, url, auth string, off int64, body io.Reader, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if off >= 0 {
		req.Header.Set(protocol.HTTPHeaderOffset, strconv.FormatInt(off, 10))
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func put(t testing.TB, srv *relaytest.Server, b *protocol.BlobCreated, off int64, data []byte) *http.Response {
	t.Helper()
	return blobReq(t, http.MethodPut, blobURL(srv, b.Blob), bearer(b.Token), off, bytes.NewReader(data))
}

// wantHTTP checks a response's status and, for refusals, its Postern-Error.
func wantHTTP(t testing.TB, resp *http.Response, status int, code protocol.Code) {
	t.Helper()
	got := resp.Header.Get(protocol.HTTPHeaderError)
	if resp.StatusCode != status {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: status %d (Postern-Error %q, %q), want %d", resp.Request.Method, resp.Request.URL.Path[:20], resp.StatusCode, got, body, status)
	}
	want := ""
	if code != 0 {
		want = strconv.Itoa(int(code))
	}
	if got != want {
		t.Fatalf("%s: Postern-Error %q, want %q", resp.Request.Method, got, want)
	}
}

func wantOffset(t testing.TB, resp *http.Response, off int) {
	t.Helper()
	if got := resp.Header.Get(protocol.HTTPHeaderOffset); got != strconv.Itoa(off) {
		t.Fatalf("Postern-Offset %q, want %d", got, off)
	}
}

func head(t testing.TB, srv *relaytest.Server, b *protocol.BlobCreated) (off, size int) {
	t.Helper()
	resp := blobReq(t, http.MethodHead, blobURL(srv, b.Blob), bearer(b.Token), -1, nil)
	wantHTTP(t, resp, http.StatusOK, 0)
	off, _ = strconv.Atoi(resp.Header.Get(protocol.HTTPHeaderOffset))
	size, _ = strconv.Atoi(resp.Header.Get(protocol.HTTPHeaderSize))
	return off, size
}

func download(t testing.TB, srv *relaytest.Server, id protocol.BlobID, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	resp := blobReq(t, http.MethodGet, blobURL(srv, id), "", -1, nil, hdr...)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestBlobUploadDownload(t *testing.T) {
	srv := relaytest.New(t, nil)
	c := blobDevice(t, srv)
	data := randomBytes(5 * chunk)
	b := createBlob(t, c, uint64(len(data)))
	if exp := time.Unix(int64(b.Expires), 0); time.Until(exp) < 23*time.Hour || time.Until(exp) > 25*time.Hour {
		t.Errorf("expires in %v, want about 24 h", time.Until(exp))
	}

	for _, step := range [][2]int{{0, 2}, {2, 4}, {4, 5}} {
		resp := put(t, srv, b, int64(step[0]*chunk), data[step[0]*chunk:step[1]*chunk])
		wantHTTP(t, resp, http.StatusNoContent, 0)
		wantOffset(t, resp, step[1]*chunk)
		if step[1] < 5 {
			// Not downloadable before the end.
			resp, _ := download(t, srv, b.Blob)
			wantHTTP(t, resp, http.StatusConflict, protocol.CodeBlobIncomplete)
		}
	}
	if off, size := head(t, srv, b); off != len(data) || size != len(data) {
		t.Fatalf("HEAD offset %d size %d, want %d %d", off, size, len(data), len(data))
	}

	resp, got := download(t, srv, b.Blob)
	wantHTTP(t, resp, http.StatusOK, 0)
	if !bytes.Equal(got, data) {
		t.Fatal("downloaded bytes differ")
	}
	for h, want := range map[string]string{"Content-Type": "application/octet-stream", "Cache-Control": "no-store", "Content-Length": strconv.Itoa(len(data))} {
		if v := resp.Header.Get(h); v != want {
			t.Errorf("%s %q, want %q", h, v, want)
		}
	}
	from := 3*chunk + 7
	resp, got = download(t, srv, b.Blob, "Range", fmt.Sprintf("bytes=%d-", from))
	wantHTTP(t, resp, http.StatusPartialContent, 0)
	if !bytes.Equal(got, data[from:]) {
		t.Fatal("ranged download differs")
	}
	// The file is named by a hash of the ID: no capability on disk.
	names, _ := os.ReadDir(filepath.Join(srv.DataDir, relay.BlobDir))
	if len(names) != 1 || names[0].Name() != relay.BlobFileName(b.Blob) || strings.Contains(names[0].Name(), b.Blob.String()) {
		t.Fatalf("blob directory %v", names)
	}
	// A finished blob takes an empty PUT at its size (a retry) and nothing more.
	wantHTTP(t, put(t, srv, b, int64(len(data)), nil), http.StatusNoContent, 0)
	wantHTTP(t, put(t, srv, b, int64(len(data)), []byte{1}), http.StatusRequestEntityTooLarge, protocol.CodeBlobSize)
}

// putRaw writes a PUT with a Content-Length for the whole rest of the blob
// over a raw connection, sends only part, then drops the connection.
func putRaw(t *testing.T, srv *relaytest.Server, b *protocol.BlobCreated, off, contentLength int, part []byte) {
	t.Helper()
	nc, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(nc)
	fmt.Fprintf(w, "PUT %s%s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\n%s: %d\r\nContent-Length: %d\r\n\r\n",
		protocol.BlobPath, b.Blob, srv.Addr, bearer(b.Token), protocol.HTTPHeaderOffset, off, contentLength)
	w.Write(part)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the relay read it before the drop
	nc.Close()
}

// waitOffset polls HEAD until the relay has committed what a dropped
// request left (it does so when it sees the drop).
func waitOffset(t *testing.T, srv *relaytest.Server, b *protocol.BlobCreated, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second) // a hang guard
	for {
		off, _ := head(t, srv, b)
		if off == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed offset %d, want %d", off, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBlobInterruptedUpload(t *testing.T) {
	srv := relaytest.New(t, nil)
	c := blobDevice(t, srv)
	data := randomBytes(6 * chunk)
	b := createBlob(t, c, uint64(len(data)))
	r := srv.Relay()

	// Two and a half chunks, then the connection drops mid-chunk.
	sent := 2*chunk + chunk/2
	putRaw(t, srv, b, 0, len(data), data[:sent])
	waitOffset(t, srv, b, 2*chunk)
	if fi, err := os.Stat(filepath.Join(srv.DataDir, relay.BlobDir, relay.BlobFileName(b.Blob))); err != nil || fi.Size() != 2*chunk {
		t.Fatalf("blob file after the drop: %v %v, want %d bytes", fi, err, 2*chunk)
	}
	// A second drop after a whole chunk and a few bytes.
	putRaw(t, srv, b, 2*chunk, len(data)-2*chunk, data[2*chunk:3*chunk+10])
	sent += chunk + 10
	waitOffset(t, srv, b, 3*chunk)

	// Resume from HEAD's offset: no finished chunk is sent again.
	off, _ := head(t, srv, b)
	wantHTTP(t, put(t, srv, b, int64(off), data[off:]), http.StatusNoContent, 0)
	sent += len(data) - off
	if got := r.BlobBytesReceived(); got != int64(sent) {
		t.Errorf("relay received %d bytes, the client sent %d", got, sent)
	}
	if resent := sent - len(data); resent != chunk/2+10 {
		t.Errorf("%d bytes sent twice, want only the two partial chunks (%d)", resent, chunk/2+10)
	}
	resp, got := download(t, srv, b.Blob)
	wantHTTP(t, resp, http.StatusOK, 0)
	if !bytes.Equal(got, data) {
		t.Fatal("downloaded bytes differ after resuming")
	}
}

// errReader fails after its data: a client whose body breaks mid-chunk.
type errReader struct{ r io.Reader }

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, fmt.Errorf("disk unplugged")
	}
	return n, err
}

func TestBlobUploadBodyFails(t *testing.T) {
	srv := relaytest.New(t, nil)
	c := blobDevice(t, srv)
	data := randomBytes(3 * chunk)
	b := createBlob(t, c, uint64(len(data)))
	req, _ := http.NewRequest(http.MethodPut, blobURL(srv, b.Blob), &errReader{bytes.NewReader(data[:chunk+100])})
	req.ContentLength = int64(len(data))
	req.Header.Set("Authorization", bearer(b.Token))
	req.Header.Set(protocol.HTTPHeaderOffset, "0")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a failing body still got a response")
	}
	waitOffset(t, srv, b, chunk)
	wantHTTP(t, put(t, srv, b, chunk, data[chunk:]), http.StatusNoContent, 0)
	if _, got := download(t, srv, b.Blob); !bytes.Equal(got, data) {
		t.Fatal("downloaded bytes differ")
	}
}

func TestBlobRefusals(t *testing.T) {
	srv := relaytest.New(t, &relaytest.Options{MaxBlobSize: 8 * chunk})
	c := blobDevice(t, srv)

	// CreateBlob.
	wantCode(t, c.do(&protocol.CreateBlob{Size: 0}), protocol.CodeBlobSize)
	wantCode(t, c.do(&protocol.CreateBlob{Size: chunk + 1}), protocol.CodeBlobSize)
	wantCode(t, c.do(&protocol.CreateBlob{Size: 9 * chunk}), protocol.CodeBlobTooLarge)
	wantCode(t, dial(t, srv.URL).do(&protocol.CreateBlob{Size: chunk}), protocol.CodeAuthRequired)

	data := randomBytes(4 * chunk)
	b := createBlob(t, c, uint64(len(data)))
	other := createBlob(t, c, chunk)
	url := blobURL(srv, b.Blob)
	var zero protocol.BlobToken
	tests := []struct {
		name    string
		method  string
		url     string
		auth    string
		off     int64
		body    []byte
		chunked bool
		status  int
		code    protocol.Code
	}{
		{"missing token", http.MethodPut, url, "", 0, data[:chunk], false, 401, protocol.CodeBlobToken},
		{"wrong token", http.MethodPut, url, bearer(zero), 0, data[:chunk], false, 403, protocol.CodeBlobToken},
		{"another blob's token", http.MethodPut, url, bearer(other.Token), 0, data[:chunk], false, 403, protocol.CodeBlobToken},
		{"malformed token", http.MethodPut, url, "Bearer xyz", 0, data[:chunk], false, 403, protocol.CodeBlobToken},
		{"not bearer", http.MethodPut, url, "Basic " + hex.EncodeToString(zero[:]), 0, data[:chunk], false, 403, protocol.CodeBlobToken},
		{"HEAD without token", http.MethodHead, url, "", -1, nil, false, 401, protocol.CodeBlobToken},
		{"HEAD wrong token", http.MethodHead, url, bearer(zero), -1, nil, false, 403, protocol.CodeBlobToken},
		{"offset ahead", http.MethodPut, url, bearer(b.Token), chunk, data[chunk : 2*chunk], false, 409, protocol.CodeBlobOffset},
		{"offset missing", http.MethodPut, url, bearer(b.Token), -1, data[:chunk], false, 400, protocol.CodeBlobOffset},
		{"past the size", http.MethodPut, url, bearer(b.Token), 0, append(bytes.Clone(data), 0), false, 413, protocol.CodeBlobSize},
		{"past the size, chunked", http.MethodPut, url, bearer(b.Token), 0, append(bytes.Clone(data), 0), true, 413, protocol.CodeBlobSize},
		{"GET unfinished", http.MethodGet, url, "", -1, nil, false, 409, protocol.CodeBlobIncomplete},
		{"GET unknown", http.MethodGet, blobURL(srv, protocol.BlobID{1}), "", -1, nil, false, 404, protocol.CodeUnknownBlob},
		{"PUT unknown", http.MethodPut, blobURL(srv, protocol.BlobID{1}), bearer(b.Token), 0, data[:chunk], false, 404, protocol.CodeUnknownBlob},
		{"HEAD unknown", http.MethodHead, blobURL(srv, protocol.BlobID{1}), bearer(b.Token), -1, nil, false, 404, protocol.CodeUnknownBlob},
		{"not an id", http.MethodGet, srv.HTTPURL + protocol.BlobPath + "abc", "", -1, nil, false, 404, protocol.CodeUnknownBlob},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != nil {
				body = bytes.NewReader(tt.body)
				if tt.chunked {
					body = io.MultiReader(body) // unknown length: sent chunked
				}
			}
			resp := blobReq(t, tt.method, tt.url, tt.auth, tt.off, body)
			wantHTTP(t, resp, tt.status, tt.code)
			if tt.method != http.MethodHead {
				line, _ := io.ReadAll(resp.Body)
				if bytes.Count(line, []byte("\n")) != 1 || !bytes.HasSuffix(line, []byte("\n")) {
					t.Errorf("body %q, want one line", line)
				}
			}
		})
	}
	// Nothing was committed by any refused request.
	if off, _ := head(t, srv, b); off != 0 {
		t.Fatalf("committed %d after refusals", off)
	}
	if got := srv.Relay().BlobBytesReceived(); got > 4*chunk {
		// Only the chunked overrun may have written (then discarded) bytes,
		// and never past the size.
		t.Errorf("relay wrote %d bytes, want at most %d", got, 4*chunk)
	}
	wantHTTP(t, put(t, srv, b, 0, data), http.StatusNoContent, 0)
}

func TestBlobQuota(t *testing.T) {
	srv := relaytest.New(t, &relaytest.Options{BlobQuota: 10 * chunk, MaxBlobSize: 8 * chunk})
	c := blobDevice(t, srv)
	createBlob(t, c, 4*chunk)
	b := createBlob(t, c, 4*chunk)
	wantCode(t, c.do(&protocol.CreateBlob{Size: 4 * chunk}), protocol.CodeBlobQuota)
	createBlob(t, c, 2*chunk) // exactly the quota
	wantCode(t, c.do(&protocol.CreateBlob{Size: chunk}), protocol.CodeBlobQuota)
	// Finished blobs count too.
	wantHTTP(t, put(t, srv, b, 0, randomBytes(4*chunk)), http.StatusNoContent, 0)
	wantCode(t, c.do(&protocol.CreateBlob{Size: chunk}), protocol.CodeBlobQuota)
	// Quotas are per device.
	createBlob(t, blobDevice(t, srv), 8*chunk)

	// At most MaxUnfinishedBlobs unfinished uploads, whatever the quota.
	srv2 := relaytest.New(t, nil)
	c2 := blobDevice(t, srv2)
	var last *protocol.BlobCreated
	for range protocol.MaxUnfinishedBlobs {
		last = createBlob(t, c2, chunk)
	}
	wantCode(t, c2.do(&protocol.CreateBlob{Size: chunk}), protocol.CodeBlobQuota)
	// Finishing one frees a slot.
	wantHTTP(t, put(t, srv2, last, 0, randomBytes(chunk)), http.StatusNoContent, 0)
	createBlob(t, c2, chunk)
}

func TestBlobExpiry(t *testing.T) {
	clk := newClock()
	srv := relaytest.New(t, &relaytest.Options{Now: clk.Now, BlobRetention: 72 * time.Hour, BlobQuota: 20 * chunk})
	c := dial(t, srv.URL)
	d := newDevice(t)
	wantType[*protocol.Authenticated](t, c.enroll(d, ""))
	dev := deviceID(d)
	idx := srv.Relay().Store().(store.BlobStore)
	usage := func() store.BlobUsage {
		u, err := idx.BlobUsage(bg, dev)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	file := func(id protocol.BlobID) string {
		return filepath.Join(srv.DataDir, relay.BlobDir, relay.BlobFileName(id))
	}

	unfinished := createBlob(t, c, 4*chunk)
	wantHTTP(t, put(t, srv, unfinished, 0, randomBytes(chunk)), http.StatusNoContent, 0)
	finished := createBlob(t, c, 2*chunk)
	clk.Advance(12 * time.Hour)
	wantHTTP(t, put(t, srv, finished, 0, randomBytes(2*chunk)), http.StatusNoContent, 0) // finishes at +12 h
	if u := usage(); u.Bytes != 6*chunk || u.Unfinished != 1 {
		t.Fatalf("usage %+v", u)
	}

	// +24 h: the unfinished upload is over its time; refused before the purge…
	clk.Advance(12 * time.Hour)
	wantHTTP(t, blobReq(t, http.MethodHead, blobURL(srv, unfinished.Blob), bearer(unfinished.Token), -1, nil), 404, protocol.CodeUnknownBlob)
	// …and deleted by it, file and quota included.
	if n, err := srv.Relay().PurgeExpiredBlobs(bg); err != nil || n != 1 {
		t.Fatalf("purge: %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(file(unfinished.Blob)); !os.IsNotExist(err) {
		t.Fatalf("unfinished blob file still there: %v", err)
	}
	// The quota ledger (SPEC 12.5) keeps an entry until the whole hour
	// after its blob's expiry (the clock starts at 10:30): the bytes come
	// back at 11:00 a day later, not with the blob.
	if u := usage(); u.Bytes != 6*chunk || u.Unfinished != 1 {
		t.Fatalf("usage right after the first purge %+v", u)
	}
	clk.Advance(30 * time.Minute)
	if n, err := srv.Relay().PurgeExpiredBlobs(bg); err != nil || n != 0 {
		t.Fatalf("purge: %d, %v; want 0", n, err)
	}
	if u := usage(); u.Bytes != 2*chunk || u.Unfinished != 0 {
		t.Fatalf("usage after the first purge %+v", u)
	}
	if resp, _ := download(t, srv, finished.Blob); resp.StatusCode != http.StatusOK {
		t.Fatalf("finished blob: %d", resp.StatusCode)
	}

	// The finished one lives BlobRetention after it finished: +12 h + 72 h.
	clk.Advance(59*time.Hour + 29*time.Minute)
	if n, _ := srv.Relay().PurgeExpiredBlobs(bg); n != 0 {
		t.Fatalf("purged %d blobs before their time", n)
	}
	clk.Advance(time.Minute)
	// A file already missing is fine.
	os.Remove(file(finished.Blob))
	if n, err := srv.Relay().PurgeExpiredBlobs(bg); err != nil || n != 1 {
		t.Fatalf("purge: %d, %v; want 1", n, err)
	}
	resp, _ := download(t, srv, finished.Blob)
	wantHTTP(t, resp, http.StatusNotFound, protocol.CodeUnknownBlob)
	clk.Advance(30 * time.Minute) // the ledger's whole hour
	if _, err := srv.Relay().PurgeExpiredBlobs(bg); err != nil {
		t.Fatal(err)
	}
	if u := usage(); u != (store.BlobUsage{}) {
		t.Fatalf("usage after both purges %+v", u)
	}
	if names, _ := os.ReadDir(filepath.Join(srv.DataDir, relay.BlobDir)); len(names) != 0 {
		t.Fatalf("blob files left: %v", names)
	}
	createBlob(t, c, 20*chunk) // the whole quota is free again
}

func TestBlobRestart(t *testing.T) {
	srv := relaytest.New(t, nil)
	c := blobDevice(t, srv)
	done, part := randomBytes(3*chunk), randomBytes(4*chunk)
	bd := createBlob(t, c, uint64(len(done)))
	bp := createBlob(t, c, uint64(len(part)))
	wantHTTP(t, put(t, srv, bd, 0, done), http.StatusNoContent, 0)
	wantHTTP(t, put(t, srv, bp, 0, part[:2*chunk]), http.StatusNoContent, 0)

	// An orphan (a file without an index entry) and a stranger.
	dir := filepath.Join(srv.DataDir, relay.BlobDir)
	orphan := filepath.Join(dir, relay.BlobFileName(protocol.BlobID{7}))
	stranger := filepath.Join(dir, "notes.txt")
	os.WriteFile(orphan, []byte("left by a crash"), 0o600)
	os.WriteFile(stranger, []byte("not ours"), 0o600)

	c.ws.CloseNow()
	srv.Restart()

	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("orphan blob file survived the restart: %v", err)
	}
	if _, err := os.Stat(stranger); err != nil {
		t.Errorf("a file the relay did not name was deleted: %v", err)
	}
	resp, got := download(t, srv, bd.Blob)
	wantHTTP(t, resp, http.StatusOK, 0)
	if !bytes.Equal(got, done) {
		t.Fatal("finished blob differs after restart")
	}
	off, size := head(t, srv, bp)
	if off != 2*chunk || size != len(part) {
		t.Fatalf("unfinished blob after restart: offset %d size %d", off, size)
	}
	wantHTTP(t, put(t, srv, bp, int64(off), part[off:]), http.StatusNoContent, 0)
	if _, got := download(t, srv, bp.Blob); !bytes.Equal(got, part) {
		t.Fatal("resumed blob differs after restart")
	}
}

// TestBlobShutdownCommits: a relay shutting down makes an upload in
// progress commit its whole chunks and tell the client where to resume.
func TestBlobShutdownCommits(t *testing.T) {
	srv := relaytest.New(t, nil)
	c := blobDevice(t, srv)
	data := randomBytes(4 * chunk)
	b := createBlob(t, c, uint64(len(data)))
	pr, pw := io.Pipe()
	type result struct {
		resp *http.Response
		err  error
	}
	res := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPut, blobURL(srv, b.Blob), pr)
		req.ContentLength = int64(len(data))
		req.Header.Set("Authorization", bearer(b.Token))
		req.Header.Set(protocol.HTTPHeaderOffset, "0")
		resp, err := http.DefaultClient.Do(req)
		res <- result{resp, err}
	}()
	pw.Write(data[:chunk+5])
	deadline := time.Now().Add(10 * time.Second)
	for srv.Relay().BlobBytesReceived() < chunk+5 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	c.ws.CloseNow() // a WebSocket client that is not reading would hold Close for its grace period
	if err := srv.Relay().Close(); err != nil {
		t.Fatal(err)
	}
	r := <-res
	pw.Close()
	if r.err == nil {
		defer r.resp.Body.Close()
		wantHTTP(t, r.resp, http.StatusServiceUnavailable, protocol.CodeShuttingDown)
		wantOffset(t, r.resp, chunk)
	}
	srv.Restart()
	if off, _ := head(t, srv, b); off != chunk {
		t.Fatalf("committed %d after shutdown, want %d", off, chunk)
	}
}

// pattern is an endless deterministic byte stream that allocates nothing.
type pattern struct{ n, limit int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.n >= p.limit {
		return 0, io.EOF
	}
	if int64(len(b)) > p.limit-p.n {
		b = b[:p.limit-p.n]
	}
	for i := range b {
		x := p.n + int64(i)
		b[i] = byte(x ^ x>>8 ^ x>>16)
	}
	p.n += int64(len(b))
	return len(b), nil
}

// TestBlobConstantMemory uploads and downloads 256 MiB through real HTTP
// connections and checks that the heap does not grow with the blob.
func TestBlobConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("256 MiB transfer")
	}
	srv := relaytest.New(t, nil)
	c := blobDevice(t, srv)
	const size = (256 << 20) / chunk * chunk
	b := createBlob(t, c, size)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	req, _ := http.NewRequest(http.MethodPut, blobURL(srv, b.Blob), &pattern{limit: size})
	req.ContentLength = size
	req.Header.Set("Authorization", bearer(b.Token))
	req.Header.Set(protocol.HTTPHeaderOffset, "0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantHTTP(t, resp, http.StatusNoContent, 0)
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	total := after.TotalAlloc - before.TotalAlloc
	t.Logf("upload of %d MiB: heap +%d KiB, allocated %d KiB in all (client and relay)", size>>20, heap>>10, total>>10)
	if heap > 16<<20 || total > 32<<20 {
		t.Errorf("upload of %d MiB grew the heap by %d KiB and allocated %d KiB: not constant memory", size>>20, heap>>10, total>>10)
	}

	runtime.GC()
	runtime.ReadMemStats(&before)
	resp = blobReq(t, http.MethodGet, blobURL(srv, b.Blob), "", -1, nil)
	h, want := sha256.New(), sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil || n != size {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	runtime.ReadMemStats(&after)
	io.Copy(want, &pattern{limit: size})
	if !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
		t.Fatal("downloaded bytes differ")
	}
	heap = int64(after.HeapAlloc) - int64(before.HeapAlloc)
	total = after.TotalAlloc - before.TotalAlloc
	t.Logf("download of %d MiB: heap +%d KiB, allocated %d KiB in all", size>>20, heap>>10, total>>10)
	if heap > 16<<20 || total > 32<<20 {
		t.Errorf("download of %d MiB grew the heap by %d KiB and allocated %d KiB: not constant memory", size>>20, heap>>10, total>>10)
	}
}

// TestBlobUploadTakeover: a PUT while an older PUT of the same blob is
// still open (a half-open connection the client gave up on) takes over:
// the older one commits its whole chunks and ends, the newer one is then
// checked against the new committed length.
func TestBlobUploadTakeover(t *testing.T) {
	srv := relaytest.New(t, nil)
	c := blobDevice(t, srv)
	data := randomBytes(3 * chunk)
	b := createBlob(t, c, uint64(len(data)))
	pr, pw := io.Pipe()
	defer pw.Close()
	first := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPut, blobURL(srv, b.Blob), pr)
		req.ContentLength = int64(len(data))
		req.Header.Set("Authorization", bearer(b.Token))
		req.Header.Set(protocol.HTTPHeaderOffset, "0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			resp = nil
		}
		first <- resp
	}()
	pw.Write(data[:chunk+chunk/2])
	deadline := time.Now().Add(10 * time.Second)
	for srv.Relay().BlobBytesReceived() < chunk+chunk/2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	// The client resumes from what it last knew: 0. The older request
	// commits one chunk first, so this one is told to start there.
	resp := put(t, srv, b, 0, data)
	wantHTTP(t, resp, http.StatusConflict, protocol.CodeBlobOffset)
	wantOffset(t, resp, chunk)
	if r := <-first; r != nil {
		r.Body.Close()
		wantHTTP(t, r, http.StatusConflict, protocol.CodeBlobOffset)
	}
	wantHTTP(t, put(t, srv, b, chunk, data[chunk:]), http.StatusNoContent, 0)
	if _, got := download(t, srv, b.Blob); !bytes.Equal(got, data) {
		t.Fatal("downloaded bytes differ")
	}
}
