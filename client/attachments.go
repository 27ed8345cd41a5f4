package client

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/postern/postern/client/internal/attach"
	"github.com/postern/postern/client/internal/imgmeta"
	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/protocol"
)

// Attachments in messages (protocol/SPEC.md section 12.3).
// A file is encrypted under a fresh key in fixed-size chunks
// (client/internal/attach), uploaded as a blob, and announced in a session
// message of type 0x04 carrying the blob ID, the key, the plaintext digest
// and sizes, the original file name and the media type. The relay sees
// none of that message.
const (
	// MaxAttachments is the largest number of files in one message.
	MaxAttachments = 16
	// MaxAttachmentNameSize is the largest file name in an attachment
	// message, in bytes of UTF-8.
	MaxAttachmentNameSize = 255
	// MaxMediaTypeSize is the largest media type, in bytes of printable
	// ASCII.
	MaxMediaTypeSize = 127

	attachKeySize = 32
	// attachmentRefMaxSize is the largest encoding of one attachment.
	attachmentRefMaxSize = 32 + attachKeySize + 32 + 8 + 8 + 2 + MaxAttachmentNameSize + 1 + MaxMediaTypeSize
	// fallbackFileName is the saved name of an attachment whose name is
	// empty once made safe.
	fallbackFileName = "attachment"
)

// Attachment describes one file attached to a message.
type Attachment struct {
	Name      string // the sender's file name, as sent: untrusted, make it safe to display
	MediaType string // as the sender detected it, e.g. "image/jpeg"
	Size      int64  // plaintext bytes
}

// Progress reports a file transfer. Done only increases and ends at Total.
type Progress struct {
	File        string // the file's base name
	Done, Total int64  // plaintext bytes
	Phase       string // PhaseUpload or PhaseDownload
}

// Transfer phases in Progress.Phase.
const (
	PhaseUpload   = "encrypt+upload"
	PhaseDownload = "download"
)

// SendOptions configure SendFiles. A nil *SendOptions means all defaults.
type SendOptions struct {
	// KeepMetadata sends JPEG and PNG files as they are. Default (false):
	// their metadata (Exif with GPS position, camera serial numbers, text
	// chunks...) is stripped before encryption; the pixels are unchanged.
	KeepMetadata bool
	// Progress, if set, is called as each file is uploaded, from the
	// calling goroutine. Default: none.
	Progress func(Progress)
	// Subject is the message's subject (at most MaxSubjectSize bytes of
	// UTF-8, no control characters). Default: none.
	Subject string
	// ReplyTo is the ID of the message of the same conversation this one
	// answers; one that is not there is refused with ErrReplyTo and
	// nothing is sent. Default: none.
	ReplyTo string
	// Urgent marks the message urgent: the recipient's client shows it
	// so, a team's queue puts it first and answers it within the urgent
	// response window, and a record export gives it priority "urgent".
	// Default: routine.
	Urgent bool
}

// SaveOptions configure SaveAttachments. A nil *SaveOptions means all
// defaults.
type SaveOptions struct {
	// Force overwrites existing files. Default (false): an existing file
	// is an error matching ErrFileExists and nothing is downloaded.
	Force bool
	// Progress, if set, is called as each file is downloaded, from the
	// calling goroutine. Default: none.
	Progress func(Progress)
}

// attachmentRef is one attachment in a content of type 0x04.
type attachmentRef struct {
	Blob       protocol.BlobID
	Key        [attachKeySize]byte
	Digest     [32]byte // SHA-256 of the plaintext
	PlainSize  uint64
	CipherSize uint64
	Name       string // the original file name, 0..255 bytes UTF-8
	MediaType  string // 0..127 bytes printable ASCII

	// token is the blob's upload token while this client sends it (not
	// encoded): what releaseBlob needs to give the blob up.
	token   protocol.BlobToken
	created bool // the relay made the blob; token is set
}

// appendAttachmentBody encodes the body of an attachment content after the
// message id and time:
//
//	u32(len(caption)) || caption || u8(count) || count × attachment
//	attachment = blob id [32] || key [32] || sha256 [32] || plain size u64 ||
//	             cipher size u64 || u16(len(name)) || name || u8(len(type)) || type
func appendAttachmentBody(b []byte, c *content) ([]byte, error) {
	if len(c.Text) > MaxTextSize {
		return nil, ErrTooLong
	}
	if n := len(c.Attachments); n < 1 || n > MaxAttachments {
		return nil, ErrTooManyFiles
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.Text)))
	b = append(b, c.Text...)
	b = append(b, byte(len(c.Attachments)))
	for i := range c.Attachments {
		a := &c.Attachments[i]
		if !validAttachmentName(a.Name) || !validMediaType(a.MediaType) || !validSizes(a.PlainSize, a.CipherSize) {
			return nil, ErrInvalidAttachment
		}
		b = append(b, a.Blob[:]...)
		b = append(b, a.Key[:]...)
		b = append(b, a.Digest[:]...)
		b = binary.BigEndian.AppendUint64(b, a.PlainSize)
		b = binary.BigEndian.AppendUint64(b, a.CipherSize)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.Name)))
		b = append(b, a.Name...)
		b = append(b, byte(len(a.MediaType)))
		b = append(b, a.MediaType...)
	}
	return b, nil
}

// parseAttachmentBody decodes what appendAttachmentBody wrote; false for
// anything else. Sizes are checked before anything is allocated.
func parseAttachmentBody(r *protocol.Reader, c *content) bool {
	n := r.U32("text length")
	if n > MaxTextSize {
		return false
	}
	c.Text = string(r.Take(int(n), "text"))
	if !utf8.ValidString(c.Text) {
		return false
	}
	count := int(r.U8("attachment count"))
	if r.Err() != nil || count < 1 || count > MaxAttachments {
		return false
	}
	c.Attachments = make([]attachmentRef, count)
	for i := range c.Attachments {
		a := &c.Attachments[i]
		r.Array(a.Blob[:], "blob id")
		r.Array(a.Key[:], "attachment key")
		r.Array(a.Digest[:], "digest")
		a.PlainSize = r.U64("plain size")
		a.CipherSize = r.U64("cipher size")
		nl := int(r.U16("name length"))
		if nl > MaxAttachmentNameSize {
			return false
		}
		a.Name = string(r.Take(nl, "name"))
		tl := int(r.U8("media type length"))
		if tl > MaxMediaTypeSize {
			return false
		}
		a.MediaType = string(r.Take(tl, "media type"))
		if r.Err() != nil || !validAttachmentName(a.Name) || !validMediaType(a.MediaType) || !validSizes(a.PlainSize, a.CipherSize) {
			return false
		}
	}
	return r.Err() == nil
}

func validAttachmentName(s string) bool {
	return len(s) <= MaxAttachmentNameSize && utf8.ValidString(s)
}

func validMediaType(s string) bool {
	if len(s) > MaxMediaTypeSize {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// validSizes checks what the wire can check without the chunk format: a
// cipher size that is a whole, non-zero number of encrypted chunks, no
// smaller than the plaintext. Saving checks it equals
// attach.CipherSize(plain size) exactly.
func validSizes(plain, cipher uint64) bool {
	return cipher > 0 && cipher%protocol.BlobCipherChunkSize == 0 && cipher >= plain && plain <= 1<<62
}

// attachmentRecord is an attachment as the local store keeps it, with the
// key (store.Attachment).
type attachmentRecord = store.Attachment

func attachmentRecords(refs []attachmentRef) []attachmentRecord {
	out := make([]attachmentRecord, len(refs))
	for i, a := range refs {
		out[i] = attachmentRecord{
			Blob: a.Blob[:], Key: a.Key[:], Digest: a.Digest[:],
			PlainSize: a.PlainSize, CipherSize: a.CipherSize, Name: a.Name, MediaType: a.MediaType,
		}
	}
	return out
}

func attachmentRefOf(r *attachmentRecord) (attachmentRef, error) {
	var a attachmentRef
	if len(r.Blob) != len(a.Blob) || len(r.Key) != len(a.Key) || len(r.Digest) != len(a.Digest) {
		return a, errStoreCorrupt
	}
	copy(a.Blob[:], r.Blob)
	copy(a.Key[:], r.Key)
	copy(a.Digest[:], r.Digest)
	a.PlainSize, a.CipherSize, a.Name, a.MediaType = r.PlainSize, r.CipherSize, r.Name, r.MediaType
	return a, nil
}

func publicAttachments(recs []attachmentRecord) []Attachment {
	if len(recs) == 0 {
		return nil
	}
	out := make([]Attachment, len(recs))
	for i, r := range recs {
		out[i] = Attachment{Name: r.Name, MediaType: r.MediaType, Size: int64(min(r.PlainSize, 1<<62))}
	}
	return out
}

// SendFiles sends the files at paths (1..MaxAttachments) to the contact
// named contact, with text as an optional caption, and stores the message
// as outgoing. For each file it detects the media type, strips JPEG and
// PNG metadata unless opts.KeepMetadata (into a temporary file, 0600, in
// the home's tmp directory, removed afterwards), encrypts it under a fresh
// key, asks the relay for a blob over the authenticated connection and
// uploads the ciphertext over HTTP in constant memory. A dropped upload
// resumes from the relay's committed offset (bounded retries with
// backoff); finished chunks are never sent again. When every file is up,
// one session message announces them all; it returns once the relay
// holds that message durably.
//
// Resuming works within one call. Uploads are not remembered across
// process restarts: a new call uploads again. When SendFiles gives up
// (a file that cannot be read or changed while it was sent, an upload
// that keeps failing, a refused message), it deletes the blobs it made on
// the relay, so that they stop counting against the quota; a blob it
// could not delete expires unfinished on the relay (24 hours).
func (c *Client) SendFiles(ctx context.Context, contact, text string, paths []string, opts *SendOptions) (Message, error) {
	files := make([]fileSource, len(paths))
	for i, p := range paths {
		files[i] = fileSource{path: p}
	}
	return c.sendFiles(ctx, contact, text, files, opts)
}

// sendFiles is SendFiles and SendData: files from paths or from readers.
func (c *Client) sendFiles(ctx context.Context, contact, text string, files []fileSource, opts *SendOptions) (Message, error) {
	var o SendOptions
	if opts != nil {
		o = *opts
	}
	if len(files) == 0 || len(files) > MaxAttachments {
		return Message{}, fmt.Errorf("%w: %d files, limit %d", ErrTooManyFiles, len(files), MaxAttachments)
	}
	if len(text) > MaxTextSize {
		return Message{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, len(text), MaxTextSize)
	}
	if !utf8.ValidString(text) {
		return Message{}, ErrInvalidText
	}
	r, err := c.sendable(contact)
	if err != nil {
		return Message{}, err
	}
	if err := c.checkHeaders(r, &o); err != nil {
		return Message{}, err
	}
	if err := c.contactDevicesFresh(ctx, r.Person.ID); err != nil {
		return Message{}, err
	}
	refs := make([]attachmentRef, 0, len(files))
	for _, f := range files {
		ref, err := c.uploadFile(ctx, f, &o)
		if err != nil {
			// The message will not be sent: the files already up would
			// only hold the quota until they expire.
			c.releaseBlobs(ctx, refs)
			return Message{}, err
		}
		refs = append(refs, ref)
	}
	now := c.now()
	ct := &content{Type: contentAttachment, Sender: c.devID, SentMS: uint64(now.UnixMilli()), Text: text, Attachments: refs}
	setHeaders(ct, &o)
	if err := c.setTimer(r, ct); err != nil {
		c.releaseBlobs(ctx, refs)
		return Message{}, err
	}
	copy(ct.MsgID[:], randomID(msgIDSize))
	recs := attachmentRecords(refs)
	keepTokens(refs, recs)
	m := Message{
		ID: localMessageID(c.devID, ct.MsgID), From: Me, To: r.Person.Name, Text: text,
		Time: time.UnixMilli(int64(ct.SentMS)).UTC(), Received: now.UTC(), Outgoing: true,
		Attachments: publicAttachments(recs), Subject: o.Subject, ReplyTo: o.ReplyTo, Urgent: o.Urgent, Expires: expiryOf(ct, now),
	}
	// Stored with its envelope in the outbox (outbox.go).
	if err := c.sendSessionMessage(ctx, r, ct, &m, recs); err != nil {
		if errors.Is(err, ErrQueued) {
			return m, err // the blobs stay: it is sent when the relay is back
		}
		// Only when the message surely did not reach the relay (a
		// refusal, or a failure before sending): after a lost answer the
		// contact may hold it and need the files.
		if isRefusal(err) || errors.Is(err, ErrBlocked) || errors.Is(err, ErrDeviceMismatch) || errors.Is(err, ErrTooLong) {
			c.releaseBlobs(ctx, refs)
		}
		return Message{}, err
	}
	return m, nil
}

// tmpDir is the home's directory for temporary files (stripped copies).
func (c *Client) tmpDir() (string, error) {
	d := filepath.Join(c.home, "tmp")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", fmt.Errorf("client: temporary directory: %w", err)
	}
	return d, nil
}

// uploadFile prepares one file (media type, metadata), encrypts and
// uploads it, and returns its reference for the message.
func (c *Client) uploadFile(ctx context.Context, fs fileSource, o *SendOptions) (attachmentRef, error) {
	var ref attachmentRef
	name, f, size, err := fs.open()
	if err != nil {
		return ref, err
	}
	defer f.Close()
	ref.Name = truncateUTF8(strings.ToValidUTF8(name, "\uFFFD"), MaxAttachmentNameSize)
	head := make([]byte, 512)
	n, err := io.ReadFull(io.NewSectionReader(f, 0, size), head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return ref, fmt.Errorf("client: attach: read %s: %w", name, err)
	}
	ref.MediaType = detectMediaType(head[:n])

	src := io.ReaderAt(f)
	if !o.KeepMetadata && (ref.MediaType == "image/jpeg" || ref.MediaType == "image/png") {
		stripped, tmp, err := c.stripMetadata(ref.MediaType, f)
		if err != nil {
			return ref, fmt.Errorf("client: attach %s: removing metadata: %w (send it with KeepMetadata to send it as it is)", name, err)
		}
		if tmp != nil {
			defer func() {
				tmp.Close()
				os.Remove(tmp.Name())
			}()
			if stripped {
				src = tmp
				st, err := tmp.Stat()
				if err != nil {
					return ref, err
				}
				size = st.Size()
			}
		}
	}
	if err := attach.CheckSize(size); err != nil {
		return ref, fmt.Errorf("%w: %s: %w", ErrInvalidAttachment, name, err)
	}
	key, err := attach.NewKey()
	if err != nil {
		return ref, err
	}
	copy(ref.Key[:], key.Bytes())
	ref.PlainSize = uint64(size)
	ref.CipherSize = uint64(attach.CipherSize(size))

	hr := &hashingReaderAt{r: src, h: sha256.New()}
	if err := c.uploadBlob(ctx, key, hr, size, name, o.Progress, &ref); err != nil {
		c.releaseBlobs(ctx, []attachmentRef{ref})
		return ref, err
	}
	if d, ok := hr.digest(size); ok {
		ref.Digest = d
	} else {
		// The encryptor did not read the file in one ordered pass: a
		// second pass gives the digest.
		d, err := attach.Digest(io.NewSectionReader(src, 0, size))
		if err != nil {
			c.releaseBlobs(ctx, []attachmentRef{ref})
			return ref, fmt.Errorf("client: attach %s: %w", name, err)
		}
		ref.Digest = d
	}
	return ref, nil
}

// stripMetadata writes f without its metadata to a temporary file. It
// returns whether anything was removed and the file (positioned anywhere;
// use ReadAt), or nil if none was made.
func (c *Client) stripMetadata(mediaType string, f io.ReaderAt) (bool, *os.File, error) {
	dir, err := c.tmpDir()
	if err != nil {
		return false, nil, err
	}
	tmp, err := os.CreateTemp(dir, "strip-*") // 0600
	if err != nil {
		return false, nil, err
	}
	stripped, err := imgmeta.Strip(mediaType, io.NewSectionReader(f, 0, 1<<62), tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return false, nil, err
	}
	return stripped, tmp, nil
}

// detectMediaType names the type of a file from its first bytes: images
// by imgmeta's sniffer, everything else by http.DetectContentType.
func detectMediaType(head []byte) string {
	if t := imgmeta.Sniff(head); t != "" {
		return t
	}
	t := http.DetectContentType(head)
	if !validMediaType(t) {
		return "application/octet-stream"
	}
	return t
}

// hashingReaderAt hashes the bytes read through it the first time they
// are read in order, so that the digest of an upload costs no second pass
// over the file. Safe for concurrent use.
type hashingReaderAt struct {
	r      io.ReaderAt
	mu     sync.Mutex
	h      hash.Hash
	hashed int64
}

func (h *hashingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := h.r.ReadAt(p, off)
	h.mu.Lock()
	if off <= h.hashed && off+int64(n) > h.hashed {
		h.h.Write(p[h.hashed-off : n])
		h.hashed = off + int64(n)
	}
	h.mu.Unlock()
	return n, err
}

// digest is the SHA-256 of the first size bytes, if they were all hashed.
func (h *hashingReaderAt) digest(size int64) ([32]byte, bool) {
	var d [32]byte
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hashed != size {
		return d, false
	}
	copy(d[:], h.h.Sum(nil))
	return d, true
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// attachmentsOf returns the stored attachments of message id and the
// relay that holds their blobs: the sender's home relay (SPEC section 12.3),
// that is the relay of the sender's device record for an incoming message
// and this client's own for an outgoing one.
func (c *Client) attachmentsOf(id string) ([]attachmentRecord, string, error) {
	relay := c.relay
	var atts []attachmentRecord
	err := c.st.view(func(t *tx) error {
		r, err := t.MessageByID(id)
		if err != nil {
			return err
		}
		if r == nil {
			return ErrNoMessage
		}
		atts = r.Attachments
		if len(r.Sender) == 0 {
			return nil
		}
		d, err := t.Device(r.Sender)
		if err != nil {
			return err
		}
		if d != nil && d.Relay != "" {
			relay = d.Relay
		}
		return nil
	})
	return atts, relay, err
}

// SaveAttachments downloads the files attached to the message with ID
// messageID into dir and returns the paths it wrote, in the message's
// order. Each file is fetched over HTTP (resuming a dropped download with
// a Range request, bounded retries), decrypted chunk by chunk, every chunk
// verified before its plaintext is written to a hidden DIR/.NAME.part file
// (0600), and the whole plaintext checked against the digest in the
// message; only then is the file renamed to its final name. On any
// failure the .part file is removed, so a partly received or forged file
// never appears under the final name; files already saved by this call
// stay, and their paths are returned with the error.
//
// The final name is the sender's file name made safe (SafeFileName). An
// existing file is not overwritten unless opts.Force: the error matches
// ErrFileExists and nothing is downloaded.
func (c *Client) SaveAttachments(ctx context.Context, messageID, dir string, opts *SaveOptions) ([]string, error) {
	var o SaveOptions
	if opts != nil {
		o = *opts
	}
	recs, relay, err := c.attachmentsOf(messageID)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, ErrNoAttachments
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("client: save: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("client: save: %s is not a directory", dir)
	}
	names := saveNames(recs)
	if !o.Force {
		for _, n := range names {
			if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
				return nil, &fileExistsError{path: filepath.Join(dir, n)}
			}
		}
	}
	var saved []string
	for i := range recs {
		ref, err := attachmentRefOf(&recs[i])
		if err != nil {
			return saved, err
		}
		p, err := c.saveOne(ctx, relay, &ref, dir, names[i], &o)
		if err != nil {
			return saved, err
		}
		saved = append(saved, p)
	}
	return saved, nil
}

// saveNames makes the attachments' names safe and distinct within one
// message: a second "a.jpg" is saved as "a (2).jpg".
func saveNames(recs []attachmentRecord) []string {
	out := make([]string, len(recs))
	taken := make(map[string]bool)
	for i, r := range recs {
		n := SafeFileName(r.Name)
		if taken[strings.ToLower(n)] {
			ext := filepath.Ext(n)
			stem := strings.TrimSuffix(n, ext)
			for k := 2; ; k++ {
				suffix := fmt.Sprintf(" (%d)", k)
				c := truncateUTF8(stem, MaxAttachmentNameSize-len(suffix)-len(ext)) + suffix + ext
				if !taken[strings.ToLower(c)] {
					n = c
					break
				}
			}
		}
		taken[strings.ToLower(n)] = true
		out[i] = n
	}
	return out
}

// saveOne downloads, verifies and saves one attachment as dir/name, from
// the blob on relay.
func (c *Client) saveOne(ctx context.Context, relay string, a *attachmentRef, dir, name string, o *SaveOptions) (_ string, err error) {
	if a.PlainSize > attach.MaxPlainSize || uint64(attach.CipherSize(int64(a.PlainSize))) != a.CipherSize {
		return "", fmt.Errorf("%w: %s: sizes do not match the chunk format", ErrInvalidAttachment, name)
	}
	key, err := attach.KeyFromBytes(a.Key[:])
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrInvalidAttachment, name, err)
	}
	final := filepath.Join(dir, name)
	part := filepath.Join(dir, "."+truncateUTF8(name, MaxAttachmentNameSize-len(".part")-1)+".part")
	if err := os.Remove(part); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("client: save: %w", err)
	}
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("client: save: %w", localWriteErr(err))
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(part)
		}
	}()
	size := int64(a.PlainSize)
	pw := &progressWriter{w: f, p: Progress{File: name, Total: size, Phase: PhaseDownload}, fn: o.Progress}
	dec := attach.NewDecryptor(key, size, pw)
	if err := c.downloadBlob(ctx, relay, a.Blob, int64(a.CipherSize), dec, name); err != nil {
		return "", err
	}
	digest, err := dec.Close()
	if errors.Is(err, errLocalWrite) {
		return "", fmt.Errorf("client: save %s: %w", name, err)
	}
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrAttachmentCorrupt, name, err)
	}
	if digest != a.Digest {
		return "", fmt.Errorf("%w: %s: the file's digest does not match the message", ErrAttachmentCorrupt, name)
	}
	if pw.p.Done != size {
		return "", fmt.Errorf("%w: %s: %d bytes, want %d", ErrAttachmentCorrupt, name, pw.p.Done, size)
	}
	if size == 0 && o.Progress != nil {
		o.Progress(pw.p)
	}
	// A full disk may show only here (delayed allocation): it is this
	// device's failure, like a failed write.
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("client: save %s: %w", name, localWriteErr(err))
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("client: save %s: %w", name, localWriteErr(err))
	}
	if err := publish(part, final, o.Force); err != nil {
		return "", err
	}
	return final, nil
}

// publish gives the verified .part file its final name. Without force an
// existing file is never replaced: a hard link fails if the name exists
// (where links are not supported, a check then a rename).
func publish(part, final string, force bool) error {
	if force {
		if err := os.Rename(part, final); err != nil {
			return fmt.Errorf("client: save: %w", err)
		}
		return nil
	}
	err := os.Link(part, final)
	switch {
	case err == nil:
		os.Remove(part)
		return nil
	case errors.Is(err, os.ErrExist):
		return &fileExistsError{path: final}
	}
	if _, serr := os.Lstat(final); serr == nil {
		return &fileExistsError{path: final}
	}
	if err := os.Rename(part, final); err != nil {
		return fmt.Errorf("client: save: %w", err)
	}
	return nil
}

// errLocalWrite marks a failure to write a downloaded file on this device
// (a full disk): not retried, and not a sign of tampering. It matches
// ErrStore.
var errLocalWrite = fmt.Errorf("%w: writing the file", ErrStore)

// localWriteErr marks err as a failure to write on this device.
func localWriteErr(err error) error {
	if err == nil || errors.Is(err, errLocalWrite) {
		return err
	}
	return fmt.Errorf("%w: %w", errLocalWrite, err)
}

// progressWriter counts plaintext written and reports it.
type progressWriter struct {
	w  io.Writer
	p  Progress
	fn func(Progress)
}

func (w *progressWriter) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	err = localWriteErr(err)
	w.p.Done += int64(n)
	if w.fn != nil && n > 0 {
		w.fn(w.p)
	}
	return n, err
}

// windowsReserved are device names Windows will not create as files,
// with or without an extension.
var windowsReserved = map[string]bool{
	"CON": true, "PRN": true, "AUX": true, "NUL": true, "CONIN$": true, "CONOUT$": true,
	"COM1": true, "COM2": true, "COM3": true, "COM4": true, "COM5": true, "COM6": true, "COM7": true, "COM8": true, "COM9": true,
	"LPT1": true, "LPT2": true, "LPT3": true, "LPT4": true, "LPT5": true, "LPT6": true, "LPT7": true, "LPT8": true, "LPT9": true,
	"COM¹": true, "COM²": true, "COM³": true, "LPT¹": true, "LPT²": true, "LPT³": true,
}

// SafeFileName turns a file name from a message (chosen by the sender:
// untrusted) into a name safe to create in a directory on any system: the
// base name only (after the last / or \), with control and bidirectional
// formatting characters and the characters Windows forbids (<>:"|?*)
// replaced by "_", invalid UTF-8 replaced, leading dots and spaces and
// trailing dots and spaces removed (no hidden files, no "." or ".."),
// Windows device names (CON, NUL, COM1...) prefixed with "_", and at most
// MaxAttachmentNameSize bytes, keeping the extension. A name with nothing
// left is "attachment".
func SafeFileName(name string) string {
	name = strings.ToValidUTF8(name, "_")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case r < 0x20 || r == 0x7f || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) ||
			unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar || strings.ContainsRune(`<>:"|?*`, r):
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	name = strings.TrimLeft(b.String(), ". ")
	name = strings.TrimRight(name, ". ")
	if name == "" {
		return fallbackFileName
	}
	stem, _, _ := strings.Cut(name, ".")
	if windowsReserved[strings.ToUpper(strings.TrimRight(stem, " "))] {
		name = "_" + name
	}
	if len(name) > MaxAttachmentNameSize {
		ext := filepath.Ext(name)
		if len(ext) > 16 || !utf8.ValidString(ext) {
			ext = ""
		}
		name = truncateUTF8(strings.TrimSuffix(name, ext), MaxAttachmentNameSize-len(ext)) + ext
		name = strings.TrimRight(name, ". ")
	}
	return name
}
