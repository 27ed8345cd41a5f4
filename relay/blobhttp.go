package relay

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/metrics"
	"github.com/postern/postern/relay/store"
)

// serveBlob serves protocol.BlobPath + {id}: PUT (upload), HEAD (upload
// status), GET (download) and DELETE (the uploader gives it up), SPEC.md
// 12.1.
func (r *Relay) serveBlob(w http.ResponseWriter, req *http.Request) {
	b := &r.blobs
	if !b.enabled() {
		blobError(w, http.StatusNotFound, protocol.CodeUnknownBlob, "this relay does not store blobs")
		return
	}
	id, err := protocol.ParseBlobID(strings.TrimPrefix(req.URL.Path, protocol.BlobPath))
	if err != nil {
		blobError(w, http.StatusNotFound, protocol.CodeUnknownBlob, "not a blob id")
		return
	}
	key := blobKey(id)
	switch req.Method {
	case http.MethodPut:
		r.putBlob(w, req, id, key)
	case http.MethodHead:
		rec, ok := r.blobRecord(w, key)
		if !ok {
			return
		}
		if _, ok := checkBlobToken(w, req, rec); !ok {
			return
		}
		h := w.Header()
		h.Set(protocol.HTTPHeaderOffset, strconv.FormatUint(rec.Committed, 10))
		h.Set(protocol.HTTPHeaderSize, strconv.FormatUint(rec.Size, 10))
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	case http.MethodGet:
		r.getBlob(w, req, key)
	case http.MethodDelete:
		r.deleteBlob(w, req, key)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// blobError writes a refusal: an HTTP status, the Postern-Error header and
// a one-line text body.
func blobError(w http.ResponseWriter, status int, code protocol.Code, msg string) {
	h := w.Header()
	h.Set(protocol.HTTPHeaderError, strconv.Itoa(int(code)))
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	w.WriteHeader(status)
	if msg == "" {
		fmt.Fprintf(w, "%s\n", code)
		return
	}
	fmt.Fprintf(w, "%s: %s\n", code, msg)
}

// storeError answers a failed store call.
func (r *Relay) storeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrUnknownBlob):
		blobError(w, http.StatusNotFound, protocol.CodeUnknownBlob, "")
	case errors.Is(err, store.ErrBlobOffset):
		blobError(w, http.StatusConflict, protocol.CodeBlobOffset, "the committed length moved")
	case errors.Is(err, store.ErrClosed):
		blobError(w, http.StatusServiceUnavailable, protocol.CodeShuttingDown, "")
	case errors.Is(err, store.ErrStorageFull), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		blobError(w, http.StatusInsufficientStorage, protocol.CodeStorageFull, "the relay's disk is full; try again later")
	default:
		r.log.Error("blob store failed", "err", err)
		blobError(w, http.StatusInternalServerError, protocol.CodeInternal, "relay storage failed")
	}
}

// blobRecord looks a blob up; an expired blob not yet purged is unknown.
func (r *Relay) blobRecord(w http.ResponseWriter, key store.BlobKey) (store.Blob, bool) {
	rec, err := r.blobs.idx.Blob(context.Background(), key)
	if err == nil && !r.cfg.Now().Before(rec.Expires) {
		err = store.ErrUnknownBlob
	}
	if err != nil {
		r.storeError(w, err)
		return rec, false
	}
	return rec, true
}

// checkBlobToken checks "Authorization: Bearer <hex token>" against the
// stored hash, in constant time: 401 when missing, 403 when wrong.
// It returns the token, which the upload needs for its quota slot.
func checkBlobToken(w http.ResponseWriter, req *http.Request, rec store.Blob) (protocol.BlobToken, bool) {
	auth := req.Header.Get("Authorization")
	if auth == "" {
		w.Header().Set("WWW-Authenticate", "Bearer")
		blobError(w, http.StatusUnauthorized, protocol.CodeBlobToken, "upload token required")
		return protocol.BlobToken{}, false
	}
	var tok protocol.BlobToken
	s, ok := strings.CutPrefix(auth, "Bearer ")
	if ok && len(s) == 2*len(tok) {
		_, err := hex.Decode(tok[:], []byte(s))
		ok = err == nil
	} else {
		ok = false
	}
	h := blobTokenHash(tok)
	if subtle.ConstantTimeCompare(h[:], rec.TokenHash[:]) != 1 || !ok {
		blobError(w, http.StatusForbidden, protocol.CodeBlobToken, "wrong upload token")
		return protocol.BlobToken{}, false
	}
	return tok, true
}

// startUpload registers the upload of a blob. A PUT of a blob that is
// already being uploaded takes over: the client holds the token and has
// given up on the older request (its connection may be half-open for
// minutes), so the older one is stopped, commits its whole chunks and
// returns first. It reports closing when the relay is shutting down.
func (b *blobs) startUpload(key store.BlobKey, u *upload) (closing bool) {
	for {
		b.mu.Lock()
		if b.closing {
			b.mu.Unlock()
			return true
		}
		old := b.active[key]
		if old == nil {
			b.active[key] = u
			b.uploads.Add(1)
			b.mu.Unlock()
			return false
		}
		old.stop(true)
		b.mu.Unlock()
		<-old.done
	}
}

func (b *blobs) endUpload(key store.BlobKey, u *upload) {
	b.mu.Lock()
	delete(b.active, key)
	b.mu.Unlock()
	close(u.done)
	b.uploads.Done()
}

// DefaultMinUploadRate is Config.MinUploadRate's default, in bytes per
// second averaged over blobRateWindow: 60 KiB a minute, about one chunk,
// which a phone on a poor mobile link still sends, while an upload that
// trickles a few bytes to hold a connection (and a file, and a quota
// reservation) open is cut.
const DefaultMinUploadRate = 1024

// blobRateWindow is the window over which an upload's rate is measured.
// A variable so that tests need not wait a minute.
var blobRateWindow = durationVar(time.Minute)

// extend moves the read deadline to t, unless the relay stopped the
// upload.
func (u *upload) extend(t time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.stopped {
		return false
	}
	u.rc.SetReadDeadline(t)
	return true
}

func (r *Relay) putBlob(w http.ResponseWriter, req *http.Request, id protocol.BlobID, key store.BlobKey) {
	b := &r.blobs
	rec, ok := r.blobRecord(w, key)
	if !ok {
		return
	}
	tok, ok := checkBlobToken(w, req, rec)
	if !ok {
		return
	}
	slot := blobQuotaSlot(tok)
	off, err := strconv.ParseUint(req.Header.Get(protocol.HTTPHeaderOffset), 10, 64)
	if err != nil {
		blobError(w, http.StatusBadRequest, protocol.CodeBlobOffset, "Postern-Offset missing or not a number")
		return
	}
	u := &upload{rc: http.NewResponseController(w), done: make(chan struct{})}
	if b.startUpload(key, u) {
		blobError(w, http.StatusServiceUnavailable, protocol.CodeShuttingDown, "")
		return
	}
	defer b.endUpload(key, u)
	// Read again now that this upload holds the blob.
	if rec, ok = r.blobRecord(w, key); !ok {
		return
	}
	if off != rec.Committed {
		w.Header().Set(protocol.HTTPHeaderOffset, strconv.FormatUint(rec.Committed, 10))
		blobError(w, http.StatusConflict, protocol.CodeBlobOffset, fmt.Sprintf("upload must start at the committed length %d", rec.Committed))
		return
	}
	remaining := rec.Size - off
	if req.ContentLength > 0 && uint64(req.ContentLength) > remaining {
		w.Header().Set(protocol.HTTPHeaderOffset, strconv.FormatUint(rec.Committed, 10))
		blobError(w, http.StatusRequestEntityTooLarge, protocol.CodeBlobSize, fmt.Sprintf("body ends past the blob size %d", rec.Size))
		return
	}

	f, err := r.openBlobFile(key, off)
	if err != nil {
		r.log.Error("open blob file", "blob", id.Short(), "err", err)
		blobError(w, http.StatusInternalServerError, protocol.CodeInternal, "relay storage failed")
		return
	}
	defer f.Close()

	bufp := b.buf.Get().(*[]byte)
	defer b.buf.Put(bufp)
	buf := *bufp
	committed := off
	var n uint64 // bytes of this request written
	var overrun, stopped, superseded, tooSlow bool
	var werr error
	// commit makes the whole chunks written so far durable and records
	// them in the index, in that order.
	commit := func(to uint64) error {
		if err := f.Sync(); err != nil {
			return err
		}
		now := r.cfg.Now()
		rec, err := b.idx.CommitBlob(context.Background(), key, slot, committed, to, now, now.Add(r.set().blobRetention))
		if err != nil {
			return err
		}
		committed = to
		if rec.Done() {
			r.log.Info("blob finished", "blob", id.Short(), "size", rec.Size)
		}
		return nil
	}
	// Progress. With a minimum rate, each window of blobRateWindow must
	// bring quota bytes: the read deadline is the window's end, and a
	// window whose quota is met starts the next at once, so only an
	// upload slower than the minimum meets the deadline. Without one, the
	// deadline is blobIdleTimeout past the last read (moved at most once a
	// second).
	minRate := r.cfg.MinUploadRate
	window := blobRateWindow.get()
	quota := int64(float64(minRate) * window.Seconds())
	var last time.Time
	var winBytes int64
	for {
		if now := time.Now(); minRate > 0 && (last.IsZero() || winBytes >= quota) {
			if !u.extend(now.Add(window)) {
				stopped = true
				break
			}
			last, winBytes = now, 0
		} else if minRate <= 0 && now.Sub(last) > time.Second {
			if !u.extend(now.Add(blobIdleTimeout)) {
				stopped = true
				break
			}
			last = now
		}
		m, rerr := req.Body.Read(buf)
		winBytes += int64(m)
		if m > 0 {
			if uint64(m) > remaining-n {
				overrun = true
				break
			}
			if _, werr = f.Write(buf[:m]); werr != nil {
				break
			}
			n += uint64(m)
			b.received.Add(int64(m))
			r.cfg.Metrics.BlobUploaded(m)
			if whole := off + n/protocol.BlobCipherChunkSize*protocol.BlobCipherChunkSize; whole-committed >= blobCommitEvery {
				if werr = commit(whole); werr != nil {
					break
				}
			}
		}
		if rerr != nil {
			if rerr != io.EOF {
				u.mu.Lock()
				stopped = stopped || u.stopped
				u.mu.Unlock()
				tooSlow = !stopped && minRate > 0 && errors.Is(rerr, os.ErrDeadlineExceeded)
			}
			break // io.EOF, or the request ended early: keep its whole chunks
		}
	}
	// What this request adds: its whole chunks, unless it failed or ran
	// past the size (then nothing beyond what was already committed).
	end := off + n/protocol.BlobCipherChunkSize*protocol.BlobCipherChunkSize
	if overrun || werr != nil {
		end = committed
	}
	if err := f.Truncate(int64(end)); err != nil && werr == nil {
		werr = err
		end = committed
	}
	if end > committed && werr == nil {
		werr = commit(end)
	}
	u.mu.Lock()
	superseded = u.superseded
	u.mu.Unlock()
	u.rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	w.Header().Set(protocol.HTTPHeaderOffset, strconv.FormatUint(committed, 10))
	switch {
	case werr != nil:
		if errors.Is(werr, store.ErrUnknownBlob) {
			os.Remove(b.path(key)) // the blob expired under the upload
		}
		r.storeError(w, werr)
	case overrun:
		blobError(w, http.StatusRequestEntityTooLarge, protocol.CodeBlobSize, fmt.Sprintf("body ends past the blob size %d", rec.Size))
	case superseded:
		blobError(w, http.StatusConflict, protocol.CodeBlobOffset, "a newer upload of this blob took over")
	case stopped:
		blobError(w, http.StatusServiceUnavailable, protocol.CodeShuttingDown, "upload interrupted; resume from Postern-Offset")
	case tooSlow:
		r.blobSlow.log(r.log, r.cfg.Now(), "blob uploads cut below the minimum rate", "min_bytes_per_s", minRate)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusRequestTimeout)
		fmt.Fprintf(w, "upload slower than %d bytes/s over %s; resume from Postern-Offset\n", minRate, window)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// openBlobFile opens the blob's file for writing at off, creating it (and
// making its directory entry durable) on the first upload.
func (r *Relay) openBlobFile(key store.BlobKey, off uint64) (*os.File, error) {
	path := r.blobs.path(key)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		if err := syncDir(r.blobs.dir); err != nil {
			f.Close()
			return nil, err
		}
	} else if errors.Is(err, fs.ErrExist) {
		f, err = os.OpenFile(path, os.O_RDWR, 0)
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && uint64(fi.Size()) < off {
		err = fmt.Errorf("blob file of %d bytes is shorter than its committed length %d", fi.Size(), off)
	}
	if err == nil {
		_, err = f.Seek(int64(off), io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (r *Relay) getBlob(w http.ResponseWriter, req *http.Request, key store.BlobKey) {
	rec, ok := r.blobRecord(w, key)
	if !ok {
		return
	}
	if !rec.Done() {
		blobError(w, http.StatusConflict, protocol.CodeBlobIncomplete, "the upload has not finished")
		return
	}
	f, err := os.Open(r.blobs.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		blobError(w, http.StatusNotFound, protocol.CodeUnknownBlob, "") // purged just now
		return
	}
	if err != nil {
		r.log.Error("open blob file", "err", err)
		blobError(w, http.StatusInternalServerError, protocol.CodeInternal, "relay storage failed")
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// ServeContent handles Range (206) and copies through a fixed buffer.
	// The reader pushes the write deadline on as the download progresses.
	pr := &progressReader{ReadSeeker: io.NewSectionReader(f, 0, int64(rec.Size)), rc: http.NewResponseController(w), m: r.cfg.Metrics}
	http.ServeContent(w, req, "", time.Time{}, pr)
}

// progressReader extends the response's write deadline while it is read.
type progressReader struct {
	io.ReadSeeker
	rc   *http.ResponseController
	last time.Time
	m    *metrics.Metrics // counts the bytes read
}

func (p *progressReader) Read(b []byte) (int, error) {
	if now := time.Now(); now.Sub(p.last) > time.Second {
		p.rc.SetWriteDeadline(now.Add(blobIdleTimeout))
		p.last = now
	}
	n, err := p.ReadSeeker.Read(b)
	p.m.BlobDownloaded(n)
	return n, err
}

// blobDeleter is a blob index that can delete one blob before its expiry
// (bboltstore's can).
type blobDeleter interface {
	DeleteBlob(ctx context.Context, key store.BlobKey, slot store.QuotaSlot) (store.Blob, error)
}

// deleteBlob answers DELETE with the upload token: the uploader gives the
// blob up (an upload it abandoned, a file it did not send after all), and
// its reserved size stops counting against the device's quota at once
// instead of at expiry.
func (r *Relay) deleteBlob(w http.ResponseWriter, req *http.Request, key store.BlobKey) {
	b := &r.blobs
	del, ok := b.idx.(blobDeleter)
	if !ok {
		w.Header().Set("Allow", "GET, HEAD, PUT")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rec, ok := r.blobRecord(w, key)
	if !ok {
		return
	}
	tok, ok := checkBlobToken(w, req, rec)
	if !ok {
		return
	}
	// Hold the blob as an upload does: a running PUT is stopped first.
	u := &upload{rc: http.NewResponseController(w), done: make(chan struct{})}
	if b.startUpload(key, u) {
		blobError(w, http.StatusServiceUnavailable, protocol.CodeShuttingDown, "")
		return
	}
	defer b.endUpload(key, u)
	if _, err := del.DeleteBlob(req.Context(), key, blobQuotaSlot(tok)); err != nil {
		r.storeError(w, err)
		return
	}
	// The record is gone (durably): a crash now leaves an orphan file,
	// which the next start deletes.
	if err := os.Remove(b.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.log.Error("delete blob file", "err", err)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
