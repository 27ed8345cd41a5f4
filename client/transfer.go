package client

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/postern/postern/client/internal/attach"
	"github.com/postern/postern/protocol"
)

// Blob transfers over HTTP (protocol/SPEC.md section 12.1). Uploads and
// downloads stream: memory use does not depend on the file size. Both
// resume after a failure where the relay (upload) or this client
// (download) stopped, with bounded retries.
const (
	// maxTransferFailures is how many attempts in a row may fail without
	// moving the transfer forward before it gives up. An attempt that
	// moves it forward resets the count, so a transfer over a flaky link
	// finishes as long as each attempt gets somewhere.
	maxTransferFailures = 6
	// transferBackoff is the first pause after a failure; it doubles up to
	// maxTransferBackoff.
	transferBackoff    = 250 * time.Millisecond
	maxTransferBackoff = 8 * time.Second
	// stallTimeout ends an attempt that moved no byte for this long, so
	// that a dead connection is retried instead of waited on forever.
	stallTimeout = 60 * time.Second
	// maxHTTPErrorText caps the relay's one-line error text that is read.
	maxHTTPErrorText = 256
)

// errLocalRead marks a failure to read the file being sent: not retried.
var errLocalRead = errors.New("client: reading the file")

// redactURL hides the blob ID in an error from net/http, whose *url.Error
// quotes the whole request URL: the ID is the blob's download capability,
// and errors are logged and printed. What is left is the ID's short form.
func redactURL(err error) error {
	var ue *url.Error
	if err != nil && errors.As(err, &ue) {
		if i := strings.LastIndex(ue.URL, protocol.BlobPath); i >= 0 {
			id := ue.URL[i+len(protocol.BlobPath):]
			if len(id) > 8 {
				ue.URL = ue.URL[:i+len(protocol.BlobPath)] + id[:8] + "…"
			}
		}
	}
	return err
}

// blobHTTP returns the HTTP client for blob transfers: no compression
// (ciphertext does not compress, and a gzip-decoding transport would hide
// Range offsets), no automatic retries of bodies, and the test hook's
// transport when one is set.
func (c *Client) blobHTTP() *http.Client {
	c.httpOnce.Do(func() {
		var rt http.RoundTripper
		if c.blobTransport != nil {
			rt = c.blobTransport
		} else {
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.DisableCompression = true
			t.ResponseHeaderTimeout = stallTimeout
			if c.tlsConf != nil {
				t.TLSClientConfig = c.tlsConf.Clone()
			}
			rt = t
		}
		c.httpc = &http.Client{
			Transport: rt,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // the blob URL is the capability: never follow it elsewhere
			},
		}
	})
	return c.httpc
}

// blobURL is the URL of a blob on this client's relay: the relay URL with
// ws(s) replaced by http(s), then protocol.BlobPath and the ID in hex.
func blobURL(relay string, id protocol.BlobID) (string, error) {
	var base string
	switch {
	case strings.HasPrefix(relay, "wss://"):
		base = "https://" + strings.TrimPrefix(relay, "wss://")
	case strings.HasPrefix(relay, "ws://"):
		base = "http://" + strings.TrimPrefix(relay, "ws://")
	default:
		return "", ErrInvalidRelayURL
	}
	return strings.TrimSuffix(base, "/") + protocol.BlobPath + id.String(), nil
}

func (c *Client) backoff(ctx context.Context, failures int) error {
	base := transferBackoff
	if c.retryBase > 0 {
		base = c.retryBase
	}
	d := min(base<<min(failures-1, 10), maxTransferBackoff)
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryable reports whether a failed transfer attempt may be tried again.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, errLocalRead) || errors.Is(err, errLocalWrite) || errors.Is(err, ErrAttachmentCorrupt) || errors.Is(err, ErrFileChanged) {
		return false
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		switch pe.Code {
		case protocol.CodeInternal, protocol.CodeShuttingDown, protocol.CodeRateLimited, protocol.CodeBlobOffset:
			return true
		}
		return false
	}
	var he *httpStatusError
	if errors.As(err, &he) {
		return he.status >= 500 || he.status == http.StatusTooManyRequests
	}
	return true // the network: a reset, a timeout, a short body
}

// httpStatusError is an HTTP refusal without a Postern-Error code.
type httpStatusError struct{ status int }

func (e *httpStatusError) Error() string {
	return fmt.Sprintf("client: relay answered HTTP %d %s", e.status, http.StatusText(e.status))
}

// responseError turns a refused blob request into a *protocol.Error from
// its Postern-Error header and one-line body, or an httpStatusError.
func responseError(resp *http.Response) error {
	code, err := strconv.ParseUint(resp.Header.Get(protocol.HTTPHeaderError), 10, 16)
	if err != nil || code == 0 {
		return &httpStatusError{status: resp.StatusCode}
	}
	line, _ := bufio.NewReader(io.LimitReader(resp.Body, maxHTTPErrorText)).ReadString('\n')
	msg := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, strings.TrimSpace(line))
	return &protocol.Error{Code: protocol.Code(code), Msg: msg}
}

// drain reads a little of a response body and closes it, so that the
// connection can be reused.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
}

// watchdog cancels an attempt that has not moved for stallTimeout.
type watchdog struct {
	t *time.Timer
}

func newWatchdog(cancel context.CancelFunc) *watchdog {
	return &watchdog{t: time.AfterFunc(stallTimeout, cancel)}
}

func (w *watchdog) kick() { w.t.Reset(stallTimeout) }
func (w *watchdog) stop() { w.t.Stop() }

// createBlob asks the relay for a blob of size ciphertext bytes over the
// authenticated connection (retried once on a lost connection).
func (c *Client) createBlob(ctx context.Context, size int64) (*protocol.BlobCreated, error) {
	for attempt := 0; ; attempt++ {
		cn, err := c.authConn(ctx)
		if err != nil {
			return nil, err
		}
		r, err := cn.request(ctx, &protocol.CreateBlob{Size: uint64(size)})
		if errors.Is(err, errConnClosed) && attempt == 0 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("client: create blob: %w", err)
		}
		bc, ok := r.(*protocol.BlobCreated)
		if !ok {
			return nil, unexpected(r)
		}
		return bc, nil
	}
}

// uploadProgress turns ciphertext bytes taken by the transport into
// plaintext bytes for Progress, never going back.
type uploadProgress struct {
	p  Progress
	fn func(Progress)
}

func (u *uploadProgress) cipherAt(off int64) {
	chunks, rem := off/protocol.BlobCipherChunkSize, off%protocol.BlobCipherChunkSize
	plain := min(chunks*protocol.BlobChunkSize+min(rem, protocol.BlobChunkSize), u.p.Total)
	if plain > u.p.Done {
		u.p.Done = plain
		if u.fn != nil {
			u.fn(u.p)
		}
	}
}

func (u *uploadProgress) finish() {
	if u.p.Done < u.p.Total || u.p.Total == 0 {
		u.p.Done = u.p.Total
		if u.fn != nil {
			u.fn(u.p)
		}
	}
}

// uploadBlob creates a blob for the encryption of src (size plaintext
// bytes) under key and uploads it, resuming from the relay's committed
// offset after a failure. It sets ref.Blob.
func (c *Client) uploadBlob(ctx context.Context, key attach.Key, src io.ReaderAt, size int64, name string, progress func(Progress), ref *attachmentRef) error {
	cipherSize := attach.CipherSize(size)
	bc, err := c.createBlob(ctx, cipherSize)
	if err != nil {
		return err
	}
	ref.Blob, ref.token, ref.created = bc.Blob, bc.Token, true
	url, err := blobURL(c.relay, bc.Blob)
	if err != nil {
		return err
	}
	guard := newResumeGuard(src)
	enc := attach.NewEncryptor(key, guard, size)
	prog := &uploadProgress{p: Progress{File: name, Total: size, Phase: PhaseUpload}, fn: progress}
	var offset int64
	failures := 0
	for {
		committed, err := c.putBlob(ctx, url, bc.Token, enc, offset, cipherSize, prog)
		if err == nil && committed == cipherSize {
			break
		}
		if err == nil {
			// The relay kept what arrived and the request ended early.
			guard.committed(committed / protocol.BlobCipherChunkSize)
			err = fmt.Errorf("client: upload ended at %d of %d bytes", committed, cipherSize)
		} else if !retryable(ctx, err) {
			return c.uploadErr(ctx, name, err)
		}
		failures++
		if failures > maxTransferFailures {
			return fmt.Errorf("client: upload of %s failed %d times in a row: %w", name, failures, err)
		}
		c.log.Debug("upload interrupted; resuming", "blob", bc.Blob.Short(), "attempt", failures, "err", err)
		if err := c.backoff(ctx, failures); err != nil {
			return c.uploadErr(ctx, name, err)
		}
		committed, err = c.headBlob(ctx, url, bc.Token, cipherSize)
		if err != nil {
			if !retryable(ctx, err) {
				return c.uploadErr(ctx, name, err)
			}
			continue // HEAD again after the next failure's pause
		}
		if committed > offset {
			failures = 0
		}
		guard.committed(committed / protocol.BlobCipherChunkSize)
		offset = committed
		if offset == cipherSize {
			break // the last attempt finished; only its answer was lost
		}
	}
	prog.finish()
	return nil
}

func (c *Client) uploadErr(ctx context.Context, name string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("client: upload of %s: %w", name, err)
}

// putBlob sends the ciphertext from offset to the end in one PUT and
// returns the committed length the relay reports.
func (c *Client) putBlob(ctx context.Context, url string, tok protocol.BlobToken, enc *attach.Encryptor, offset, size int64, prog *uploadProgress) (int64, error) {
	if offset%protocol.BlobCipherChunkSize != 0 || offset < 0 || offset > size {
		return 0, fmt.Errorf("client: relay committed %d bytes: not a whole number of chunks", offset)
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	wd := newWatchdog(cancel)
	defer wd.stop()
	body := &uploadBody{r: enc.Reader(offset / protocol.BlobCipherChunkSize), off: offset, prog: prog, wd: wd}
	req, err := http.NewRequestWithContext(actx, http.MethodPut, url, body)
	if err != nil {
		return 0, redactURL(err)
	}
	req.ContentLength = size - offset
	req.GetBody = nil
	req.Header.Set("Authorization", "Bearer "+hex.EncodeToString(tok[:]))
	req.Header.Set(protocol.HTTPHeaderOffset, strconv.FormatInt(offset, 10))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.blobHTTP().Do(req)
	if body.err != nil {
		if resp != nil {
			drain(resp)
		}
		return 0, body.err
	}
	if err != nil {
		return 0, redactURL(err)
	}
	defer drain(resp)
	if resp.StatusCode/100 != 2 {
		return 0, responseError(resp)
	}
	return committedOffset(resp, size)
}

func committedOffset(resp *http.Response, size int64) (int64, error) {
	n, err := strconv.ParseInt(resp.Header.Get(protocol.HTTPHeaderOffset), 10, 64)
	if err != nil || n < 0 || n > size || n%protocol.BlobCipherChunkSize != 0 {
		return 0, fmt.Errorf("client: relay reported a bad committed offset")
	}
	return n, nil
}

// headBlob asks for the committed length of an upload.
func (c *Client) headBlob(ctx context.Context, url string, tok protocol.BlobToken, size int64) (int64, error) {
	actx, cancel := context.WithTimeout(ctx, stallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodHead, url, nil)
	if err != nil {
		return 0, redactURL(err)
	}
	req.Header.Set("Authorization", "Bearer "+hex.EncodeToString(tok[:]))
	resp, err := c.blobHTTP().Do(req)
	if err != nil {
		return 0, redactURL(err)
	}
	defer drain(resp)
	if resp.StatusCode/100 != 2 {
		return 0, responseError(resp)
	}
	if s := resp.Header.Get(protocol.HTTPHeaderSize); s != "" && s != strconv.FormatInt(size, 10) {
		return 0, fmt.Errorf("client: relay reports another blob size")
	}
	return committedOffset(resp, size)
}

// uploadBody is a PUT body: the encryptor's output from off on. It reports
// progress, keeps the watchdog quiet while bytes flow, and records a
// failure to read the file (not to be retried).
type uploadBody struct {
	r    io.Reader
	off  int64
	prog *uploadProgress
	wd   *watchdog
	mu   sync.Mutex
	err  error
}

func (b *uploadBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.wd.kick()
		b.off += int64(n)
		b.prog.cipherAt(b.off)
	}
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %w", errLocalRead, err)
		b.mu.Lock()
		b.err = err
		b.mu.Unlock()
	}
	return n, err
}

// downloadBlob fetches size ciphertext bytes of blob id into dst,
// resuming with a Range request after a dropped connection. A write to
// dst that fails (a chunk that does not verify) ends it at once. relay is
// the relay that holds the blob: the sender's home.
func (c *Client) downloadBlob(ctx context.Context, relay string, id protocol.BlobID, size int64, dst io.Writer, name string) error {
	return c.downloadBlobFrom(ctx, relay, id, 0, size, dst, name)
}

// downloadBlobFrom is downloadBlob from byte from of the blob on.
func (c *Client) downloadBlobFrom(ctx context.Context, relay string, id protocol.BlobID, from, size int64, dst io.Writer, name string) error {
	url, err := blobURL(relay, id)
	if err != nil {
		return err
	}
	got := from
	failures := 0
	for got < size {
		n, err := c.getBlob(ctx, url, got, size, dst)
		got += n
		if err == nil && got < size {
			err = fmt.Errorf("client: download ended at %d of %d bytes", got, size)
		}
		if err == nil {
			break
		}
		if !retryable(ctx, err) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("client: download of %s: %w", name, err)
		}
		if (got-n)/protocol.BlobCipherChunkSize < got/protocol.BlobCipherChunkSize {
			failures = 0 // a chunk further: not stuck
		}
		failures++
		if failures > maxTransferFailures {
			return fmt.Errorf("client: download of %s failed %d times in a row: %w", name, failures, err)
		}
		c.log.Debug("download interrupted; resuming", "blob", id.Short(), "at", got, "attempt", failures, "err", err)
		if err := c.backoff(ctx, failures); err != nil {
			return err
		}
	}
	return nil
}

// getBlob fetches the blob from byte from on and writes it to dst. It
// returns how many bytes it wrote.
func (c *Client) getBlob(ctx context.Context, url string, from, size int64, dst io.Writer) (int64, error) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	wd := newWatchdog(cancel)
	defer wd.stop()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, url, nil)
	if err != nil {
		return 0, redactURL(err)
	}
	if from > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(from, 10)+"-")
	}
	resp, err := c.blobHTTP().Do(req)
	if err != nil {
		return 0, redactURL(err)
	}
	defer resp.Body.Close()
	body := io.Reader(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != size {
			return 0, fmt.Errorf("%w: the relay holds %d bytes, the message says %d", ErrAttachmentCorrupt, resp.ContentLength, size)
		}
		if from > 0 {
			// The relay ignored the range: skip what was written already.
			if _, err := io.CopyN(io.Discard, body, from); err != nil {
				return 0, err
			}
		}
	case http.StatusPartialContent:
		if !contentRangeFrom(resp.Header.Get("Content-Range"), from, size) {
			return 0, fmt.Errorf("%w: the relay answered another range or size", ErrAttachmentCorrupt)
		}
	default:
		return 0, responseError(resp)
	}
	w := &downloadSink{w: dst, wd: wd}
	n, err := io.Copy(w, io.LimitReader(body, size-from))
	if errors.Is(w.err, errLocalWrite) {
		return n, w.err // this device's disk, not the relay's copy
	}
	if w.err != nil {
		return n, fmt.Errorf("%w: %w", ErrAttachmentCorrupt, w.err)
	}
	if err != nil {
		return n, err
	}
	if from+n == size {
		// Nothing may follow the blob's last byte.
		var one [1]byte
		if k, _ := io.ReadFull(body, one[:]); k > 0 {
			return n, fmt.Errorf("%w: the relay sent more than the blob", ErrAttachmentCorrupt)
		}
	}
	return n, nil
}

// contentRangeFrom checks "bytes FROM-(SIZE-1)/SIZE".
func contentRangeFrom(h string, from, size int64) bool {
	return h == fmt.Sprintf("bytes %d-%d/%d", from, size-1, size)
}

// downloadSink writes to the decryptor and records its failures apart
// from the network's.
type downloadSink struct {
	w   io.Writer
	wd  *watchdog
	err error
}

func (s *downloadSink) Write(p []byte) (int, error) {
	s.wd.kick()
	n, err := s.w.Write(p)
	if err != nil {
		s.err = err
	}
	return n, err
}

// maxGuardedChunks bounds the digests a resumeGuard keeps: chunks sent but
// not committed by the relay (an honest relay commits as chunks arrive,
// so a handful). Past it, a resumption that would read an unguarded chunk
// again is refused rather than trusted.
const maxGuardedChunks = 1 << 16

// resumeGuard stands between an upload's encryptor and the file. The
// encryptor seals chunk i under the file key and nonce i, and a resumed
// upload seals again every chunk from the relay's committed length on,
// some of which the relay may have seen already in the interrupted
// attempt. If the file changed in between, the same key and nonce would
// seal different plaintexts (SPEC.md 12.3). So a chunk read a second time
// must hash to what it hashed to the first time, or the read fails with
// ErrFileChanged before anything is sealed. Digests are kept only for
// chunks not yet committed.
type resumeGuard struct {
	r io.ReaderAt

	mu    sync.Mutex
	next  int64 // the first chunk never read
	floor int64 // chunks below it are committed: their digests are gone
	sums  map[int64][32]byte
}

func newResumeGuard(r io.ReaderAt) *resumeGuard {
	return &resumeGuard{r: r, sums: make(map[int64][32]byte)}
}

// ReadAt reads one chunk's plaintext, as attach.Encryptor asks for it
// (whole chunks at chunk offsets).
func (g *resumeGuard) ReadAt(p []byte, off int64) (int, error) {
	n, err := g.r.ReadAt(p, off)
	if off%attach.ChunkSize != 0 || len(p) > attach.ChunkSize {
		return 0, fmt.Errorf("client: upload read %d bytes at %d: not one chunk", len(p), off)
	}
	if n < len(p) {
		return n, err // the encryptor fails on a short read
	}
	i := off / attach.ChunkSize
	sum := sha256.Sum256(p[:n])
	g.mu.Lock()
	defer g.mu.Unlock()
	if i >= g.next {
		if i < g.floor+maxGuardedChunks {
			g.sums[i] = sum
		}
		g.next = i + 1
		return n, err
	}
	was, ok := g.sums[i]
	switch {
	case i < g.floor:
		return 0, fmt.Errorf("client: the relay's committed length went back to chunk %d of the upload; it cannot resume safely", i)
	case !ok:
		return 0, fmt.Errorf("client: too much of the upload is uncommitted on the relay to resume it safely")
	case was != sum:
		return 0, ErrFileChanged
	}
	return n, err
}

// committed drops the digests of chunks below the relay's committed
// length: they are never sealed again.
func (g *resumeGuard) committed(chunk int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := g.floor; i < min(chunk, g.next); i++ {
		delete(g.sums, i)
	}
	g.floor = max(g.floor, chunk)
}

// releaseTimeout bounds the deletion of a blob that is given up: it runs
// after a failure, even after ctx was cancelled (Ctrl-C).
const releaseTimeout = 5 * time.Second

// releaseBlobs deletes the relay's copy of blobs this client created and
// will not announce (SPEC.md 12.1, DELETE), so that their reserved size
// stops counting against the quota now rather than at expiry. It is best
// effort: a blob it cannot delete expires on its own.
func (c *Client) releaseBlobs(ctx context.Context, refs []attachmentRef) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	for _, ref := range refs {
		if !ref.created {
			continue
		}
		if err := c.deleteBlob(ctx, ref.Blob, ref.token); err != nil {
			c.log.Debug("could not give up a blob; it expires on the relay", "blob", ref.Blob.Short(), "err", err)
			continue
		}
		c.log.Debug("gave up a blob", "blob", ref.Blob.Short())
	}
}

func (c *Client) deleteBlob(ctx context.Context, id protocol.BlobID, tok protocol.BlobToken) error {
	url, err := blobURL(c.relay, id)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, url, nil)
	if err != nil {
		return redactURL(err)
	}
	req.Header.Set("Authorization", "Bearer "+hex.EncodeToString(tok[:]))
	resp, err := c.blobHTTP().Do(req)
	if err != nil {
		return redactURL(err)
	}
	defer drain(resp)
	if resp.StatusCode/100 != 2 {
		return responseError(resp)
	}
	return nil
}
