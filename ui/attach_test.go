package ui

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/client"
	"github.com/postern/postern/relay/relaytest"
)

var rawBody = map[string]string{"Content-Type": "application/octet-stream"}

func putAt(off int64) map[string]string {
	return map[string]string{"Content-Type": "application/octet-stream", HeaderUploadOffset: strconv.FormatInt(off, 10)}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// createUpload begins an upload of size bytes named name.
func (a *app) createUpload(name string, size int) uploadJSON {
	a.t.Helper()
	resp, body := a.do("POST", "/api/uploads", fmt.Sprintf(`{"name":%s,"size":%d}`, quote(name), size), nil)
	return decode[uploadJSON](a.t, "create upload", resp, body, http.StatusCreated)
}

// cutPut sends a PUT to the upload that announces the whole rest of the
// file but sends only part of it, then closes the connection: what a
// dropped network does.
func (a *app) cutPut(id string, off int64, announced int, part []byte) {
	a.t.Helper()
	u, _ := url.Parse(a.ts.URL)
	var cookie string
	for _, c := range a.hc.Jar.Cookies(u) {
		if c.Name == SessionCookieName {
			cookie = c.Value
		}
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		a.t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT /api/uploads/%s HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\nCookie: %s=%s\r\n"+
		"Content-Type: application/octet-stream\r\n%s: %d\r\nContent-Length: %d\r\n\r\n",
		id, u.Host, a.s.Origin(), SessionCookieName, cookie, HeaderUploadOffset, off, announced)
	conn.Write(part)
	conn.Close()
}

// offsetOf polls the upload's offset until it is want (the server reads
// a cut connection's end a moment later); a hang guard, not a timing.
func (a *app) offsetOf(id string, want int64) {
	a.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, body := a.do("GET", "/api/uploads/"+id, "", nil)
		u := decode[uploadJSON](a.t, "upload", resp, body, http.StatusOK)
		if resp.Header.Get(HeaderUploadOffset) != strconv.FormatInt(u.Offset, 10) {
			a.t.Fatalf("header %q, body %d", resp.Header.Get(HeaderUploadOffset), u.Offset)
		}
		if u.Offset == want && !u.Receiving {
			return // a PUT from here is taken
		}
		if u.Offset > want || time.Now().After(deadline) {
			a.t.Fatalf("offset %d, want %d", u.Offset, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func stagingFiles(t *testing.T, home string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(home, "tmp", stagePrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// An upload cut in the middle resumes from the server's offset; a PUT at
// another offset is refused with the right one; the staging file holds
// no plaintext; the file sent with a reply and a subject arrives whole,
// and the staging file is gone.
func TestUploadResumeAndSend(t *testing.T) {
	home, alice, _, bob := pair(t, relaytest.New(t, nil))
	bg := context.Background()
	first, err := bob.SendWith(bg, "alice", "the scan?", &client.SendOptions{Subject: "Scan"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(bg); err != nil {
		t.Fatal(err)
	}
	alice.Close()
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()

	// A marker repeated through the file, to look for in the staging file.
	marker := []byte("PLAINTEXT-MARKER-")
	data := bytes.Repeat(append(marker, randomBytes(15)...), 200_000/32+1)[:200_000]
	u := a.createUpload("scan.pdf", len(data))
	if u.Offset != 0 || u.Size != int64(len(data)) || u.Name != "scan.pdf" || len(u.ID) < 20 {
		t.Fatalf("created %+v", u)
	}
	// Cut after 100,000 bytes (not a whole piece): the server keeps them.
	a.cutPut(u.ID, 0, len(data), data[:100_000])
	a.offsetOf(u.ID, 100_000)
	// Another offset is refused, and nothing changes.
	resp, body := a.do("PUT", "/api/uploads/"+u.ID, string(data[50_000:]), putAt(50_000))
	if resp.StatusCode != http.StatusConflict || resp.Header.Get(HeaderUploadOffset) != "100000" {
		t.Fatalf("wrong offset: %d %s, offset header %q", resp.StatusCode, body, resp.Header.Get(HeaderUploadOffset))
	}
	if resp, _ := a.do("PUT", "/api/uploads/"+u.ID, "x", rawBody); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("no offset: %d", resp.StatusCode)
	}
	a.offsetOf(u.ID, 100_000)
	// A second cut, then the rest.
	a.cutPut(u.ID, 100_000, len(data)-100_000, data[100_000:150_000])
	a.offsetOf(u.ID, 150_000)
	files := stagingFiles(t, home)
	if len(files) != 1 {
		t.Fatalf("staging files %q", files)
	}
	staged, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(staged) < 2*stagePiece || bytes.Contains(staged, marker) || bytes.Contains(staged, data[:1000]) {
		t.Fatalf("the staging file (%d bytes) holds plaintext or too little", len(staged))
	}
	// More than the file's size is refused.
	if resp, body := a.do("PUT", "/api/uploads/"+u.ID, string(data[150_000:])+"x", putAt(150_000)); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("beyond the size: %d %s", resp.StatusCode, body)
	}
	resp, body = a.do("PUT", "/api/uploads/"+u.ID, string(data[150_000:]), putAt(150_000))
	if done := decode[uploadJSON](t, "last put", resp, body, http.StatusOK); done.Offset != int64(len(data)) {
		t.Fatalf("after the last PUT: %+v", done)
	}

	// An unfinished upload cannot be sent.
	part := a.createUpload("notes.txt", 10)
	resp, body = a.do("POST", "/api/send", fmt.Sprintf(`{"to":"bob","text":"x","attachments":[%s,%s]}`, quote(u.ID), quote(part.ID)), nil)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(errorOf(t, body), "notes.txt is still uploading") {
		t.Fatalf("unfinished: %d %s", resp.StatusCode, body)
	}
	if resp, _ := a.do("DELETE", "/api/uploads/"+part.ID, "", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if resp, body := a.do("GET", "/api/uploads/"+part.ID, "", nil); resp.StatusCode != http.StatusNotFound || errorOf(t, body) != noSuchUpload {
		t.Fatalf("deleted upload: %d %s", resp.StatusCode, body)
	}

	req := fmt.Sprintf(`{"to":"bob","text":"here it is","subject":"Re: Scan","reply_to":%s,"attachments":[%s]}`, quote(first.ID), quote(u.ID))
	resp, body = a.do("POST", "/api/send", req, nil)
	sent := decode[sendResponse](t, "send", resp, body, http.StatusOK)
	if sent.Message.Subject != "Re: Scan" || sent.Message.ReplyTo != first.ID || len(sent.Message.Attachments) != 1 || sent.Message.Attachments[0].Size != int64(len(data)) {
		t.Fatalf("sent %+v", sent.Message)
	}
	if f := stagingFiles(t, home); len(f) != 0 {
		t.Fatalf("staging files after the send: %q", f)
	}
	if resp, _ := a.do("GET", "/api/uploads/"+u.ID, "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the sent upload is still there: %d", resp.StatusCode)
	}
	if _, err := bob.Sync(bg); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := bob.ReadAttachment(bg, sent.Message.ID, 0, 0, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("bob got %d bytes that differ", got.Len())
	}
	m, err := bob.Message(sent.Message.ID)
	if err != nil || m.Subject != "Re: Scan" || m.Attachments[0].Name != "scan.pdf" {
		t.Fatalf("bob's message %+v %v", m, err)
	}
}

// The size limit and the limit on open uploads are refused in the
// CLI's sentences; a body that is not the file's bytes is refused.
func TestUploadLimits(t *testing.T) {
	home, alice, _, _ := pair(t, relaytest.New(t, nil))
	alice.Close()
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()
	resp, body := a.do("POST", "/api/uploads", fmt.Sprintf(`{"name":"huge.iso","size":%d}`, client.MaxFileSize+1), nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || errorOf(t, body) != fileTooLarge || !strings.Contains(body, fileTooLargeHint) {
		t.Fatalf("too large: %d %s", resp.StatusCode, body)
	}
	for _, bad := range []string{`{"name":"a","size":-1}`, `{"name":"a"` + `,"size":"1"}`, `{"name":"a","size":1,"x":1}`} {
		if resp, body := a.do("POST", "/api/uploads", bad, nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, resp.StatusCode, body)
		}
	}
	u := a.createUpload("a.txt", 3)
	for name, hdr := range map[string]map[string]string{
		"form": {"Content-Type": "application/x-www-form-urlencoded", HeaderUploadOffset: "0"},
		"json": {"Content-Type": "application/json", HeaderUploadOffset: "0"},
		"none": {"Content-Type": "", HeaderUploadOffset: "0"},
	} {
		if resp, _ := a.do("PUT", "/api/uploads/"+u.ID, "abc", hdr); resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("PUT as %s: %d", name, resp.StatusCode)
		}
	}
	a.offsetOf(u.ID, 0)
	for i := 1; i < MaxOpenUploads; i++ {
		a.createUpload(fmt.Sprintf("f%d", i), 1)
	}
	resp, body = a.do("POST", "/api/uploads", `{"name":"one more","size":1}`, nil)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(errorOf(t, body), strconv.Itoa(MaxOpenUploads)) {
		t.Fatalf("one upload too many: %d %s", resp.StatusCode, body)
	}
	if n := len(stagingFiles(t, home)); n != MaxOpenUploads {
		t.Fatalf("%d staging files", n)
	}
	// Too many files for one message: the library's limit, refused before
	// anything is sent.
	ids := make([]string, client.MaxAttachments+1)
	for i := range ids {
		ids[i] = quote(u.ID)
	}
	resp, body = a.do("POST", "/api/send", `{"to":"bob","text":"x","attachments":[`+strings.Join(ids, ",")+`]}`, nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("too many files: %d %s", resp.StatusCode, body)
	}
}

// Locking drops every upload: its staging file is deleted at once, its
// key is gone, and it is unknown after the next unlock. A PUT while
// locked is refused.
func TestUploadDroppedOnLock(t *testing.T) {
	home, alice, _, _ := pair(t, relaytest.New(t, nil))
	alice.Close()
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()
	data := randomBytes(3 * stagePiece)
	u := a.createUpload("x.bin", len(data))
	resp, body := a.do("PUT", "/api/uploads/"+u.ID, string(data[:2*stagePiece+5]), putAt(0))
	decode[uploadJSON](t, "put", resp, body, http.StatusOK)
	if n := len(stagingFiles(t, home)); n != 1 {
		t.Fatalf("%d staging files", n)
	}
	if resp, _ := a.do("POST", "/api/lock", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("lock: %d", resp.StatusCode)
	}
	if f := stagingFiles(t, home); len(f) != 0 {
		t.Fatalf("staging files after the lock: %q", f)
	}
	for _, req := range []struct{ method, body string }{{"GET", ""}, {"PUT", "abc"}, {"DELETE", ""}} {
		if resp, body := a.do(req.method, "/api/uploads/"+u.ID, req.body, putAt(int64(2*stagePiece+5))); resp.StatusCode != http.StatusLocked || errorOf(t, body) != lockedSentence {
			t.Errorf("%s while locked: %d %s", req.method, resp.StatusCode, body)
		}
	}
	a.unlock(alicePass)
	if resp, body := a.do("GET", "/api/uploads/"+u.ID, "", nil); resp.StatusCode != http.StatusNotFound || errorOf(t, body) != noSuchUpload {
		t.Fatalf("after unlock: %d %s", resp.StatusCode, body)
	}
	// A staging file a crashed process left is removed by the next
	// upload after a start.
	a.s.Close()
	stale := filepath.Join(home, "tmp", stagePrefix+"left-over")
	if err := os.WriteFile(stale, []byte("sealed"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	b.login()
	b.createUpload("y", 1)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("the stale staging file is still there: %v", err)
	}
}

// A received file downloads whole and in ranges (a resumed download),
// decrypted by the library, with no-store and its name; a range outside
// the file is 416; a locked app refuses.
func TestFileDownloadRange(t *testing.T) {
	home, alice, _, bob := pair(t, relaytest.New(t, nil))
	bg := context.Background()
	data := randomBytes(200_003)
	src := filepath.Join(t.TempDir(), "Befund März.pdf")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sent, err := bob.SendFiles(bg, "alice", "the report", []string{src}, &client.SendOptions{Subject: "Report"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(bg); err != nil {
		t.Fatal(err)
	}
	alice.Close()
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()
	path := "/api/messages/" + sent.ID + "/files/0"
	resp, body := a.do("GET", path, "", nil)
	if resp.StatusCode != http.StatusOK || body != string(data) {
		t.Fatalf("whole file: %d, %d bytes", resp.StatusCode, len(body))
	}
	h := resp.Header
	if h.Get("Cache-Control") != "no-store" || h.Get("Content-Type") != "application/octet-stream" || h.Get("Accept-Ranges") != "bytes" ||
		h.Get("Content-Disposition") != `attachment; filename="Befund M_rz.pdf"; filename*=UTF-8''Befund%20M%C3%A4rz.pdf` {
		t.Fatalf("headers %v", h)
	}
	for _, rg := range []struct {
		header   string
		from, to int
	}{
		{"bytes=70000-", 70000, len(data)},
		{"bytes=0-", 0, len(data)},
		{"bytes=10-19", 10, 20},
		{"bytes=65536-65540", 65536, 65541},
		{"bytes=199999-999999", 199999, len(data)},
	} {
		resp, body := a.do("GET", path, "", map[string]string{"Range": rg.header})
		want := fmt.Sprintf("bytes %d-%d/%d", rg.from, rg.to-1, len(data))
		if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != want || body != string(data[rg.from:rg.to]) {
			t.Errorf("%s: %d %q, %d bytes", rg.header, resp.StatusCode, resp.Header.Get("Content-Range"), len(body))
		}
	}
	for _, bad := range []string{"bytes=200003-", "bytes=5-1", "bytes=0-1,5-6", "items=0-"} {
		if resp, _ := a.do("GET", path, "", map[string]string{"Range": bad}); resp.StatusCode != http.StatusRequestedRangeNotSatisfiable ||
			resp.Header.Get("Content-Range") != "bytes */200003" {
			t.Errorf("%s: %d %q", bad, resp.StatusCode, resp.Header.Get("Content-Range"))
		}
	}
	if resp, _ := a.do("GET", "/api/messages/"+sent.ID+"/files/1", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("file 1 of 1: %d", resp.StatusCode)
	}
	a.do("POST", "/api/lock", "", nil)
	if resp, body := a.do("GET", path, "", nil); resp.StatusCode != http.StatusLocked || errorOf(t, body) != lockedSentence {
		t.Fatalf("locked: %d %s", resp.StatusCode, body)
	}
}

// contentDisposition keeps ASCII names as they are and adds the UTF-8
// name, percent-encoded, when there is more.
func TestContentDisposition(t *testing.T) {
	for in, want := range map[string]string{
		"scan.pdf":     `attachment; filename=scan.pdf`,
		"a b.pdf":      `attachment; filename="a b.pdf"`,
		"50%.txt":      `attachment; filename=50_.txt; filename*=UTF-8''50%25.txt`,
		"Ärztebrief":   `attachment; filename=_rztebrief; filename*=UTF-8''%C3%84rztebrief`,
		`say "hi".txt`: `attachment; filename="say _hi_.txt"; filename*=UTF-8''say%20%22hi%22.txt`,
	} {
		if got := contentDisposition(in); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

// A piece whose write to the staging file failed (a full disk) is
// written again by the next PUT, which goes on from the offset the failed
// one reached; the file reads back whole.
func TestUploadStagingWriteFails(t *testing.T) {
	home, alice, _, _ := pair(t, relaytest.New(t, nil))
	alice.Close()
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()
	data := randomBytes(3*stagePiece + 10)
	id := a.createUpload("x.bin", len(data)).ID
	a.s.uploads.mu.Lock()
	u := a.s.uploads.m[id]
	a.s.uploads.mu.Unlock()
	good := u.f
	ro, err := os.Open(good.Name()) // writes to it fail
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	u.mu.Lock()
	u.f = ro
	u.mu.Unlock()
	resp, body := a.do("PUT", "/api/uploads/"+id, string(data[:stagePiece+100]), putAt(0))
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(errorOf(t, body), "staging file") {
		t.Fatalf("a failed write: %d %s", resp.StatusCode, body)
	}
	a.offsetOf(id, stagePiece)
	u.mu.Lock()
	u.f = good
	u.mu.Unlock()
	resp, body = a.do("PUT", "/api/uploads/"+id, string(data[stagePiece:]), putAt(stagePiece))
	if got := decode[uploadJSON](t, "the rest", resp, body, http.StatusOK); got.Offset != int64(len(data)) {
		t.Fatalf("after the rest: %+v", got)
	}
	back := make([]byte, len(data))
	if n, err := u.ReadAt(back, 0); n != len(data) || err != nil || !bytes.Equal(back, data) {
		t.Fatalf("read back %d bytes, %v, equal %v", n, err, bytes.Equal(back, data))
	}
}
