package ui

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/postern/postern/client"
)

// Attachments on the page: a file is uploaded to this server in pieces
// (resumable after a dropped connection), held encrypted in a staging
// file until the message that carries it is sent, then handed to the
// library (client.SendData), which encrypts and uploads it to the relay.
// A received file is downloaded from here, decrypted by the library as it
// streams (client.ReadAttachment), with Range support so that a dropped
// download resumes.
//
// The staging file never holds plaintext: every 64 KiB piece is sealed
// with AES-256-GCM under a key made for that upload (crypto/rand), kept
// in this process's memory only, the nonce being the piece's index. Keys
// and files go when the app locks, when the message is sent, or when the
// page removes the file; files a crashed process left are removed at the
// first upload after a start. The unsealed tail of the piece being
// received (under 64 KiB) is kept in memory.

func init() {
	addRoutes(map[string]apiRoute{
		"POST /api/uploads":                {handler: (*Server).apiCreateUpload, content: true},
		"GET /api/uploads/{id}":            {handler: (*Server).apiUpload, content: true},
		"PUT /api/uploads/{id}":            {handler: (*Server).apiPutUpload, content: true, raw: true},
		"DELETE /api/uploads/{id}":         {handler: (*Server).apiDeleteUpload, content: true},
		"GET /api/messages/{id}/files/{n}": {handler: (*Server).apiFile, content: true},
	})
}

const (
	// MaxOpenUploads bounds the uploads held at once (twice the files of
	// one message).
	MaxOpenUploads = 2 * client.MaxAttachments
	// HeaderUploadOffset names, in a PUT, where its bytes start in the
	// file, and in every answer about an upload, how many bytes the
	// server holds.
	HeaderUploadOffset = "Upload-Offset"

	stagePiece    = 64 << 10 // plaintext bytes per sealed piece
	stagePrefix   = "ui-upload-"
	uploadIDBytes = 16
)

// The sentences of the upload endpoints. fileTooLarge is the CLI's for a
// file the relay refuses as too large.
const (
	fileTooLarge     = "the file is larger than the relay accepts"
	fileTooLargeHint = "send a smaller file, or split it"
	noSuchUpload     = "no such upload"
	noSuchUploadHint = "uploads end when Postern locks or the message is sent; add the file again"
)

// uploadStore holds the open uploads of a Server. The zero value is
// empty and ready.
type uploadStore struct {
	mu    sync.Mutex
	m     map[string]*upload
	swept bool // leftovers of an earlier process removed
}

// upload is one file being received. mu guards every field; a PUT does
// not hold it while it reads the network, so that locking never waits
// for a slow upload.
type upload struct {
	mu       sync.Mutex
	id, name string
	size     int64
	received int64 // bytes held: sealed pieces plus tail
	aead     cipher.AEAD
	f        *os.File
	tail     []byte // the piece being received, not sealed yet
	busy     bool   // a PUT or a send is using it
	closed   bool   // dropped: the file and key are gone
	cache    struct {
		i     int64
		plain []byte
	}
}

type uploadJSON struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	Offset int64  `json:"offset"`
	// Receiving: an earlier PUT is still being read (its connection may
	// have broken without the server knowing yet); a PUT now is refused
	// with 409 until it ends.
	Receiving bool `json:"receiving,omitempty"`
}

func (u *upload) json() uploadJSON {
	return uploadJSON{ID: u.id, Name: u.name, Size: u.size, Offset: u.received, Receiving: u.busy}
}

// stageDir is the home's directory for temporary files, as the library
// uses it.
func (s *Server) stageDir() (string, error) {
	d := filepath.Join(s.home, "tmp")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", fmt.Errorf("ui: temporary directory: %w", err)
	}
	return d, nil
}

func (s *Server) apiCreateUpload(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	var req struct {
		Name string `json:"name"`
		Size int64  `json:"size"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	switch {
	case req.Size < 0 || !utf8.ValidString(req.Name) || len(req.Name) > client.MaxAttachmentNameSize:
		writeError(w, http.StatusBadRequest, "an upload needs the file's name (at most 255 bytes) and its size in bytes", "see docs/API.md")
		return
	case req.Size > client.MaxFileSize:
		writeError(w, http.StatusRequestEntityTooLarge, fileTooLarge, fileTooLargeHint)
		return
	}
	dir, err := s.stageDir()
	if err != nil {
		s.fail(w, err)
		return
	}
	key := make([]byte, 32)
	id := make([]byte, uploadIDBytes)
	if _, err := rand.Read(key); err != nil {
		s.fail(w, err)
		return
	}
	if _, err := rand.Read(id); err != nil {
		s.fail(w, err)
		return
	}
	block, _ := aes.NewCipher(key) // a 32-byte key cannot fail
	aead, _ := cipher.NewGCM(block)
	u := &upload{id: base64.RawURLEncoding.EncodeToString(id), name: req.Name, size: req.Size, aead: aead}

	st := &s.uploads
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.swept {
		sweepStaging(dir)
		st.swept = true
	}
	if len(st.m) >= MaxOpenUploads {
		writeError(w, http.StatusConflict, fmt.Sprintf("at most %d files can be uploading or waiting to be sent", MaxOpenUploads),
			"send the message, or remove files from it, then add more")
		return
	}
	if s.client() == nil { // locked meanwhile: nothing may outlive the lock
		writeLocked(w)
		return
	}
	if u.f, err = os.CreateTemp(dir, stagePrefix+"*"); err != nil { // 0600
		s.fail(w, fmt.Errorf("ui: staging file: %w", err))
		return
	}
	if st.m == nil {
		st.m = map[string]*upload{}
	}
	st.m[u.id] = u
	if u.size == 0 {
		u.finish()
	}
	w.Header().Set(HeaderUploadOffset, "0")
	writeJSON(w, http.StatusCreated, u.json())
}

// sweepStaging removes staging files left by a process that ended
// without locking: their keys died with it.
func sweepStaging(dir string) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range es {
		if strings.HasPrefix(e.Name(), stagePrefix) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// get finds an upload, answering a missing one itself.
func (s *Server) getUpload(w http.ResponseWriter, r *http.Request) *upload {
	st := &s.uploads
	st.mu.Lock()
	u := st.m[r.PathValue("id")]
	st.mu.Unlock()
	if u == nil {
		writeError(w, http.StatusNotFound, noSuchUpload, noSuchUploadHint)
	}
	return u
}

func (s *Server) apiUpload(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	u := s.getUpload(w, r)
	if u == nil {
		return
	}
	u.mu.Lock()
	j := u.json()
	u.mu.Unlock()
	w.Header().Set(HeaderUploadOffset, strconv.FormatInt(j.Offset, 10))
	writeJSON(w, http.StatusOK, j)
}

// apiPutUpload appends the body to the upload. Its Upload-Offset must be
// the number of bytes the server holds (GET tells it after a dropped
// connection): anything else is refused with 409 and the right offset.
// What arrives is kept as it arrives, so a connection cut in the middle
// loses nothing that reached the server.
func (s *Server) apiPutUpload(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	u := s.getUpload(w, r)
	if u == nil {
		return
	}
	off, err := strconv.ParseInt(r.Header.Get(HeaderUploadOffset), 10, 64)
	if err != nil || off < 0 {
		writeError(w, http.StatusBadRequest, "a PUT to an upload needs the Upload-Offset header: where its bytes start in the file", "see docs/API.md")
		return
	}
	u.mu.Lock()
	held := u.received
	switch {
	case u.closed:
		u.mu.Unlock()
		writeError(w, http.StatusNotFound, noSuchUpload, noSuchUploadHint)
		return
	case u.busy:
		u.mu.Unlock()
		w.Header().Set(HeaderUploadOffset, strconv.FormatInt(held, 10))
		writeError(w, http.StatusConflict, "the upload is still receiving an earlier request", "ask for its offset (GET) and try again")
		return
	case off != held:
		u.mu.Unlock()
		w.Header().Set(HeaderUploadOffset, strconv.FormatInt(held, 10))
		writeError(w, http.StatusConflict, fmt.Sprintf("the upload holds %d bytes; send from there", held), "the Upload-Offset header of this answer says where")
		return
	case r.ContentLength > u.size-held:
		u.mu.Unlock()
		writeError(w, http.StatusRequestEntityTooLarge, "more bytes than the file's size given when the upload began", "")
		return
	}
	u.busy = true
	u.mu.Unlock()

	err = u.receive(r.Body)
	u.mu.Lock()
	u.busy = false
	j, closed := u.json(), u.closed
	u.mu.Unlock()
	switch {
	case closed:
		writeLocked(w) // dropped by the lock while it was received
		return
	case errors.Is(err, errBeyondSize):
		w.Header().Set(HeaderUploadOffset, strconv.FormatInt(j.Offset, 10))
		writeError(w, http.StatusRequestEntityTooLarge, "more bytes than the file's size given when the upload began", "")
		return
	case err != nil:
		// The connection broke (the page asks for the offset and goes on)
		// or the disk failed.
		s.log.Debug("ui: upload interrupted", "err", err)
		w.Header().Set(HeaderUploadOffset, strconv.FormatInt(j.Offset, 10))
		s.fail(w, err)
		return
	}
	w.Header().Set(HeaderUploadOffset, strconv.FormatInt(j.Offset, 10))
	writeJSON(w, http.StatusOK, j)
}

var errBeyondSize = errors.New("ui: more bytes than the upload's size")

// receive reads body into the upload, sealing each full piece.
func (u *upload) receive(body io.Reader) error {
	buf := make([]byte, stagePiece)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if err := u.append(buf[:n]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// append adds b to the upload under its lock.
func (u *upload) append(b []byte) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return errDropped
	}
	if int64(len(b)) > u.size-u.received {
		return errBeyondSize
	}
	for len(b) > 0 {
		k := min(len(b), stagePiece-len(u.tail))
		u.tail = append(u.tail, b[:k]...)
		b = b[k:]
		u.received += int64(k)
		if len(u.tail) == stagePiece {
			if err := u.seal(); err != nil {
				return err
			}
		}
	}
	if u.received == u.size {
		return u.finish()
	}
	return nil
}

var errDropped = errors.New("ui: the upload was dropped")

// seal writes the tail as the next piece. A failed write leaves the
// upload where it was (received counts the tail, which stays, to be
// sealed again: the same piece under the same nonce, the same bytes).
func (u *upload) seal() error {
	i := (u.received - int64(len(u.tail))) / stagePiece
	var nonce [12]byte
	binary.BigEndian.PutUint64(nonce[4:], uint64(i))
	ct := u.aead.Seal(nil, nonce[:], u.tail, nil)
	if _, err := u.f.WriteAt(ct, i*(stagePiece+16)); err != nil {
		return fmt.Errorf("ui: staging file: %w", err)
	}
	clear(u.tail)
	u.tail = u.tail[:0]
	return nil
}

// finish seals the last, short piece.
func (u *upload) finish() error {
	if len(u.tail) == 0 {
		return nil
	}
	return u.seal()
}

func (u *upload) complete() bool { return !u.closed && u.received == u.size && len(u.tail) == 0 }

// ReadAt reads the staged plaintext, opening the pieces it needs (the
// last one read is kept open for the next read). It is what the library
// reads the file through.
func (u *upload) ReadAt(p []byte, off int64) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return 0, errDropped
	}
	if off < 0 {
		return 0, errors.New("ui: negative offset")
	}
	n := 0
	for n < len(p) && off < u.size {
		i := off / stagePiece
		plain, err := u.piece(i)
		if err != nil {
			return n, err
		}
		k := copy(p[n:], plain[off-i*stagePiece:])
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (u *upload) piece(i int64) ([]byte, error) {
	if u.cache.plain != nil && u.cache.i == i {
		return u.cache.plain, nil
	}
	size := min(stagePiece, u.size-i*stagePiece)
	ct := make([]byte, size+16)
	if _, err := u.f.ReadAt(ct, i*(stagePiece+16)); err != nil {
		return nil, fmt.Errorf("ui: staging file: %w", err)
	}
	var nonce [12]byte
	binary.BigEndian.PutUint64(nonce[4:], uint64(i))
	plain, err := u.aead.Open(ct[:0], nonce[:], ct, nil)
	if err != nil {
		return nil, errors.New("ui: the staging file was changed on disk")
	}
	u.cache.i, u.cache.plain = i, plain
	return plain, nil
}

// drop removes the upload's file and forgets its key. Call with u.mu
// held.
func (u *upload) drop() {
	if u.closed {
		return
	}
	u.closed = true
	u.f.Close()
	os.Remove(u.f.Name())
	u.aead, u.tail, u.cache.plain = nil, nil, nil
}

// remove takes the upload out of the store and drops it.
func (st *uploadStore) remove(u *upload) {
	st.mu.Lock()
	delete(st.m, u.id)
	st.mu.Unlock()
	u.mu.Lock()
	u.drop()
	u.mu.Unlock()
}

// dropAll drops every upload: the app locks.
func (st *uploadStore) dropAll(log *slog.Logger) {
	st.mu.Lock()
	m := st.m
	st.m = nil
	st.mu.Unlock()
	for _, u := range m {
		u.mu.Lock()
		u.drop()
		u.mu.Unlock()
	}
	if len(m) > 0 {
		log.Info("ui: uploads dropped at lock", "n", len(m))
	}
}

func (s *Server) apiDeleteUpload(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	u := s.getUpload(w, r)
	if u == nil {
		return
	}
	u.mu.Lock()
	busy := u.busy
	u.mu.Unlock()
	if busy {
		writeError(w, http.StatusConflict, "the file is being received or sent", "try again when that is over")
		return
	}
	s.uploads.remove(u)
	w.WriteHeader(http.StatusNoContent)
}

// sendUploads is POST /api/send with attachments: the finished uploads
// are sent through the library, then dropped (also when the message
// waits in the outbox: the files are on the relay already). After a
// failure they stay, for the page to send again.
func (s *Server) sendUploads(w http.ResponseWriter, r *http.Request, cl *client.Client, req *sendRequest) {
	ups, files, release, ok := s.takeUploads(w, req.Attachments)
	if !ok {
		return
	}
	// A long upload to the relay is activity: the lock waits for it.
	progress := func(client.Progress) { s.touch() }
	m, err := cl.SendData(r.Context(), req.To, req.Text, files, &client.SendOptions{Subject: req.Subject, ReplyTo: req.ReplyTo, Urgent: req.Urgent, Progress: progress})
	release()
	if err == nil || errors.Is(err, client.ErrQueued) {
		for _, u := range ups {
			s.uploads.remove(u)
		}
	}
	s.writeSent(w, m, err)
}

// takeUploads marks the finished uploads ids busy and returns them as
// files to send; release unmarks them. It answers an unknown, unfinished
// or busy upload, or too many, itself (ok false, nothing marked).
func (s *Server) takeUploads(w http.ResponseWriter, ids []string) (ups []*upload, files []client.FileData, release func(), ok bool) {
	if len(ids) > client.MaxAttachments {
		s.fail(w, fmt.Errorf("%w: %d files, limit %d", client.ErrTooManyFiles, len(ids), client.MaxAttachments))
		return nil, nil, nil, false
	}
	release = func() {
		for _, u := range ups {
			u.mu.Lock()
			u.busy = false
			u.mu.Unlock()
		}
	}
	files = make([]client.FileData, 0, len(ids))
	for _, id := range ids {
		s.uploads.mu.Lock()
		u := s.uploads.m[id]
		s.uploads.mu.Unlock()
		if u == nil {
			release()
			writeError(w, http.StatusNotFound, noSuchUpload, noSuchUploadHint)
			return nil, nil, nil, false
		}
		u.mu.Lock()
		complete, busy := u.complete(), u.busy
		if complete && !busy {
			u.busy = true
		}
		u.mu.Unlock()
		if !complete || busy {
			release()
			writeError(w, http.StatusConflict, fmt.Sprintf("%s is still uploading", client.SafeFileName(u.name)), "send when its upload is complete")
			return nil, nil, nil, false
		}
		ups = append(ups, u)
		files = append(files, client.FileData{Name: u.name, Size: u.size, Data: u})
	}
	return ups, files, release, true
}

// apiFile sends file n (0-based) of a message, decrypted as it streams
// from the relay. "Range: bytes=FROM-" or "bytes=FROM-TO" answers 206
// with that part, so that a dropped download resumes where it broke; a
// range is verified chunk by chunk (every chunk is bound to its place in
// the file and its key), the whole file's digest only on a full read,
// whose last piece is sent only once it matched. The status and headers
// wait for the first byte: a failure before it (the relay cannot be
// reached) is answered as an error; a failure after it cuts the response
// short of its Content-Length.
func (s *Server) apiFile(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	m, err := cl.Message(r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 || n >= len(m.Attachments) {
		writeError(w, http.StatusNotFound, "no such file in this message", "")
		return
	}
	a := m.Attachments[n]
	from, to, partial, ok := parseRange(r.Header.Get("Range"), a.Size)
	if !ok {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(a.Size, 10))
		writeError(w, http.StatusRequestedRangeNotSatisfiable, "the range asked for is not in the file", "ask for bytes=FROM- with FROM below the file's size")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream") // never shown in the app's origin
	h.Set("Content-Disposition", contentDisposition(client.SafeFileName(a.Name)))
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Length", strconv.FormatInt(to-from, 10))
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to-1, a.Size))
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	out := &lazyResponse{w: w, status: status, left: to - from, touch: s.touch}
	err = cl.ReadAttachment(r.Context(), m.ID, n, from, out)
	if errors.Is(err, errRangeDone) {
		err = nil
	}
	switch {
	case err == nil && !out.started:
		w.WriteHeader(status) // an empty file or range
	case err != nil && !out.started:
		for _, k := range []string{"Content-Disposition", "Accept-Ranges", "Content-Length", "Content-Range"} {
			h.Del(k)
		}
		s.fail(w, err)
	case err != nil:
		// Headers are out: the response ends short, and the page resumes
		// from what it has.
		s.log.Debug("ui: download cut", "err", err)
	}
}

// lazyResponse writes the status line with the first byte, and stops
// (errRangeDone) once the range is sent.
type lazyResponse struct {
	w       http.ResponseWriter
	status  int
	started bool
	left    int64
	touch   func() // a download in progress is activity
}

var errRangeDone = errors.New("ui: range sent")

func (l *lazyResponse) Write(b []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.WriteHeader(l.status)
	}
	n := len(b)
	if int64(len(b)) > l.left {
		b = b[:l.left]
	}
	k, err := l.w.Write(b)
	l.left -= int64(k)
	l.touch()
	if err != nil {
		return k, err
	}
	if l.left == 0 && k < n {
		return k, errRangeDone
	}
	return n, nil
}

// parseRange reads a Range header of one range, "bytes=FROM-" or
// "bytes=FROM-TO" (TO included, cut to the file), and returns the bytes
// [from, to) to send. No header: the whole file. Anything else, or a
// FROM at or beyond the end of a non-empty file, is not ok.
func parseRange(h string, size int64) (from, to int64, partial, ok bool) {
	if h == "" {
		return 0, size, false, true
	}
	spec, found := strings.CutPrefix(h, "bytes=")
	a, b, dash := strings.Cut(spec, "-")
	if !found || !dash || strings.Contains(b, ",") {
		return 0, 0, false, false
	}
	from, err := strconv.ParseInt(a, 10, 64)
	if err != nil || from < 0 || from >= size {
		return 0, 0, false, false
	}
	to = size
	if b != "" {
		last, err := strconv.ParseInt(b, 10, 64)
		if err != nil || last < from {
			return 0, 0, false, false
		}
		to = min(last+1, size)
	}
	return from, to, true, true
}

// contentDisposition names the file for a browser's or curl's download:
// an ASCII fallback and the UTF-8 name (RFC 6266).
func contentDisposition(name string) string {
	ascii := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' || r == '%' {
			return '_'
		}
		return r
	}, name)
	v := mime.FormatMediaType("attachment", map[string]string{"filename": ascii})
	if v == "" {
		v = "attachment"
	}
	if ascii != name {
		v += "; filename*=UTF-8''" + percentEncode(name)
	}
	return v
}

// percentEncode encodes every byte but RFC 8187's attr-char.
func percentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
