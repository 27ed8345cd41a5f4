package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/attach"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

// Unblock makes a blocked contact's messages arrive again, and lets the
// client write to them again.
func TestUnblock(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	if err := bob.Block(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, "bob", "while blocked"); !errors.Is(err, ErrBlocked) {
		t.Fatalf("Send while blocked: %v", err)
	}
	if err := bob.Unblock(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := bob.Unblock(ctx, "alice"); err != nil {
		t.Fatalf("second Unblock: %v", err)
	}
	cs, _ := bob.Contacts()
	if len(cs) != 1 || cs[0].Blocked {
		t.Fatalf("contacts after Unblock %+v", cs)
	}
	if _, err := alice.Send(ctx, "bob", "after unblock"); err != nil {
		t.Fatalf("Send after Unblock: %v", err)
	}
	msgs, err := bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "bob after unblock", msgs, "alice>me:after unblock")
	if _, err := bob.Send(ctx, "alice", "welcome back"); err != nil {
		t.Fatalf("Send to an unblocked contact: %v", err)
	}
	if err := bob.Unblock(ctx, "carol"); !errors.Is(err, ErrUnknownContact) {
		t.Fatalf("Unblock of a stranger: %v", err)
	}
}

// A Client that is receiving picks up mailboxes that another process on
// the same home creates (an invitation made, an invitation accepted),
// without a reconnection or a Sync.
func TestReceiveFromMailboxAddedElsewhere(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	ctx := testCtx(t)
	alice, aliceHome := newTestClient(t, srv, "alice")
	carol, _ := newTestClient(t, srv, "carol")
	dave, _ := newTestClient(t, srv, "dave")
	// alice is the long-running receiver ('postern listen'); other
	// commands on her home run as other Clients.
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	other := dial(t, aliceHome)
	code, err := other.Invite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	if _, err := carol.Accept(ctx, code, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Send(ctx, "alice", "from carol"); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second) // a hang guard
	defer cancel()
	m, err := alice.Receive(rctx)
	if err != nil || m.From != "carol" || m.Text != "from carol" {
		t.Fatalf("Receive = %+v, %v; want carol's message", m, err)
	}

	// alice accepts dave's invitation in another process: dave's replies
	// arrive in the mailbox that process made.
	code, err = dave.Invite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other = dial(t, aliceHome)
	if _, err := other.Accept(ctx, code, "dave"); err != nil {
		t.Fatal(err)
	}
	other.Close()
	if _, err := dave.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dave.Send(ctx, "alice", "from dave"); err != nil {
		t.Fatal(err)
	}
	m, err = alice.Receive(rctx)
	if err != nil || m.From != "dave" || m.Text != "from dave" {
		t.Fatalf("Receive = %+v, %v; want dave's message", m, err)
	}
}

// recordingTransport records the request bodies of blob PUTs as sent, by
// offset, and runs before(n) before the n-th PUT (from 0).
type recordingTransport struct {
	base   http.RoundTripper
	before func(n int)

	mu   sync.Mutex
	puts int
	sent []sentRange
}

type sentRange struct {
	off  int64
	body *bytes.Buffer
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPut {
		return r.base.RoundTrip(req)
	}
	r.mu.Lock()
	n := r.puts
	r.puts++
	off, _ := strconv.ParseInt(req.Header.Get(protocol.HTTPHeaderOffset), 10, 64)
	rec := sentRange{off: off, body: new(bytes.Buffer)}
	r.sent = append(r.sent, rec)
	r.mu.Unlock()
	if r.before != nil {
		r.before(n)
	}
	req = req.Clone(req.Context())
	req.Body = &teeBody{r: req.Body, w: rec.body, mu: &r.mu}
	return r.base.RoundTrip(req)
}

type teeBody struct {
	r  io.ReadCloser
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.mu.Lock()
	t.w.Write(p[:n])
	t.mu.Unlock()
	return n, err
}

func (t *teeBody) Close() error { return t.r.Close() }

// A file that changes between an interrupted upload and its resumption is
// never sealed twice under one key and nonce with different contents:
// every ciphertext chunk the relay was sent (even in part) is the same in
// every attempt, and the upload stops with ErrFileChanged.
func TestResumeOfChangedFile(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, _, _, _ := pair(t, srv)
	const size = 1<<20 + 333
	p := randomFile(t, t.TempDir(), "scan.bin", size)
	rec := &recordingTransport{
		base: &faultyTransport{base: http.DefaultTransport, putCuts: []int64{300<<10 + 7}},
		before: func(n int) {
			if n == 1 {
				// Before the resumption, the file is rewritten in place.
				b := make([]byte, size)
				rand.Read(b)
				if err := os.WriteFile(p, b, 0o600); err != nil {
					t.Error(err)
				}
			}
		},
	}
	fastTransfers(alice, rec)
	_, err := alice.SendFiles(testCtx(t), "bob", "", []string{p}, nil)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.puts < 2 {
		t.Fatalf("%d PUTs: the upload was not resumed", rec.puts)
	}
	// Chunk by chunk, what was sent of it in one attempt must agree with
	// what was sent in any other.
	chunks := map[int64][]byte{}
	for _, s := range rec.sent {
		b := s.body.Bytes()
		for pos := int64(0); pos < int64(len(b)); {
			abs := s.off + pos
			i := abs / protocol.BlobCipherChunkSize
			start := abs % protocol.BlobCipherChunkSize
			n := min(int64(len(b))-pos, protocol.BlobCipherChunkSize-start)
			part := b[pos : pos+n]
			if start != 0 {
				t.Fatalf("a PUT began inside chunk %d", i)
			}
			if prev, ok := chunks[i]; ok {
				m := min(len(prev), len(part))
				if !bytes.Equal(prev[:m], part[:m]) {
					t.Fatalf("chunk %d was sent with two different ciphertexts under one key and nonce", i)
				}
			}
			if len(part) > len(chunks[i]) {
				chunks[i] = append([]byte(nil), part...)
			}
			pos += n
		}
	}
	if !errors.Is(err, ErrFileChanged) {
		t.Fatalf("SendFiles = %v, want ErrFileChanged", err)
	}
}

// No error or log line carries a whole blob ID: it is the blob's download
// capability.
func TestBlobIDNotInErrorsOrLogs(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	var logs bytes.Buffer
	var mu sync.Mutex
	opts := testOpts()
	opts.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	alice, _ := newTestClient(t, srv, "alice")
	ctx := testCtx(t)
	alice.log = opts.Logger
	// Every blob request fails in the network.
	fastTransfers(alice, roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return nil, errors.New("connection reset by peer")
	}))
	var ids []string
	hook := func(req *http.Request) { ids = append(ids, req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]) }
	inner := alice.blobTransport
	alice.blobTransport = roundTripFunc(func(req *http.Request) (*http.Response, error) { hook(req); return inner.RoundTrip(req) })
	p := randomFile(t, t.TempDir(), "a.bin", 100<<10)
	// Uploads go to a contact-less alice's own blob: SendFiles needs a
	// contact, so upload directly.
	var ref attachmentRef
	f, _ := os.Open(p)
	defer f.Close()
	key := mustKey(t)
	uerr := alice.uploadBlob(ctx, key, f, 100<<10, "a.bin", nil, &ref)
	if uerr == nil {
		t.Fatal("upload through a dead network succeeded")
	}
	derr := alice.downloadBlob(ctx, alice.relay, ref.Blob, 65552, io.Discard, "a.bin")
	if derr == nil {
		t.Fatal("download through a dead network succeeded")
	}
	mu.Lock()
	text := logs.String() + "\n" + uerr.Error() + "\n" + derr.Error()
	mu.Unlock()
	if len(ids) == 0 {
		t.Fatal("no blob request was made")
	}
	for _, id := range ids {
		if strings.Contains(strings.ToLower(text), strings.ToLower(id)) {
			t.Fatalf("the whole blob ID %s… appears in errors or logs:\n%s", id[:8], text)
		}
	}
	if !strings.Contains(text, ids[0][:8]) {
		t.Errorf("errors and logs do not name the blob by its short form:\n%s", text)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func mustKey(t *testing.T) attach.Key {
	t.Helper()
	k, err := attach.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// An upload the client gives up stops counting against its quota at once:
// with room for one file, a second file goes up right after the first
// failed.
func TestGivenUpUploadFreesQuota(t *testing.T) {
	t.Parallel()
	const size = 1<<20 + 333
	srv := relaytest.New(t, &relaytest.Options{BlobQuota: attach.CipherSize(size) * 3 / 2})
	alice, bob, _, _ := pair(t, srv)
	p := randomFile(t, t.TempDir(), "scan.bin", size)
	changed := false
	rec := &recordingTransport{
		base: &faultyTransport{base: http.DefaultTransport, putCuts: []int64{300<<10 + 7}},
		before: func(n int) {
			if n == 1 && !changed {
				changed = true
				b := make([]byte, size)
				rand.Read(b)
				if err := os.WriteFile(p, b, 0o600); err != nil {
					t.Error(err)
				}
			}
		},
	}
	fastTransfers(alice, rec)
	if _, err := alice.SendFiles(testCtx(t), "bob", "", []string{p}, nil); !errors.Is(err, ErrFileChanged) {
		t.Fatalf("SendFiles = %v, want ErrFileChanged", err)
	}
	sendFilesTo(t, alice, bob, "again", []string{p}, nil)
}
