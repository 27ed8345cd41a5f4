package client

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/postern/postern/client/internal/attach"
	"github.com/postern/postern/protocol"
)

// MaxFileSize is the largest file whose encrypted, padded blob fits in a
// relay's default blob limit (protocol.DefaultMaxBlobSize): 63,488 chunks
// of 64 KiB, 3.875 GiB. A relay configured with a lower limit refuses a
// smaller file when it is uploaded (protocol.CodeBlobTooLarge).
const MaxFileSize = 63488 * protocol.BlobChunkSize

// FileData is a file to send that is read through Data rather than from
// a path: SendData reads it with ReadAt, in any order and more than once
// (the media type, metadata removal, encryption, a resumed upload).
type FileData struct {
	// Name is the file name sent (a path's last element is taken).
	Name string
	// Size is the number of bytes of Data.
	Size int64
	// Data holds the file's Size bytes.
	Data io.ReaderAt
}

// SendData is SendFiles for files that are not on the file system as
// plaintext: a program that holds them encrypted, or in memory, hands
// them over as readers. Everything else is as SendFiles does it.
func (c *Client) SendData(ctx context.Context, contact, text string, files []FileData, opts *SendOptions) (Message, error) {
	srcs := make([]fileSource, len(files))
	for i := range files {
		f := files[i]
		srcs[i] = fileSource{data: &f}
	}
	return c.sendFiles(ctx, contact, text, srcs, opts)
}

// fileSource is one file of sendFiles: a path, or data.
type fileSource struct {
	path string
	data *FileData
}

// open returns the file's name, its bytes and their size; close what it
// returns.
func (fs fileSource) open() (string, readerAtCloser, int64, error) {
	if fs.data != nil {
		d := fs.data
		name := d.Name
		if i := strings.LastIndexAny(name, `/\`); i >= 0 {
			name = name[i+1:]
		}
		if d.Data == nil || d.Size < 0 {
			return name, nil, 0, fmt.Errorf("%w: %s has no data", ErrInvalidAttachment, name)
		}
		return name, nopCloser{d.Data}, d.Size, nil
	}
	name := filepath.Base(fs.path)
	f, err := os.Open(fs.path)
	if err != nil {
		return name, nil, 0, fmt.Errorf("client: attach: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return name, nil, 0, fmt.Errorf("client: attach: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return name, nil, 0, fmt.Errorf("%w: %s is not a regular file", ErrInvalidAttachment, name)
	}
	return name, f, fi.Size(), nil
}

type readerAtCloser interface {
	io.ReaderAt
	io.Closer
}

type nopCloser struct{ io.ReaderAt }

func (nopCloser) Close() error { return nil }

// ReadAttachment writes the plaintext of file index (0-based, in the
// message's order) of message messageID to w, from plaintext byte offset
// on (0 for the whole file; a resumed download passes what it has). It
// fetches the blob from its relay (resuming a dropped connection with a
// Range request) and decrypts it chunk by chunk; no plaintext touches the
// disk, and nothing reaches w that did not verify.
//
// From offset 0 the last chunk's plaintext is held back until the whole
// file's digest matched the message: a damaged or forged file never
// reaches w whole. From a later offset every chunk is still verified (it
// is bound to its place in the file and to the file's key), but the
// digest of the whole file cannot be, since its beginning is not read.
//
// An index out of range matches ErrNoAttachments, an offset beyond the
// file ErrInvalidAttachment, a file that does not verify
// ErrAttachmentCorrupt; a failure to write to w is returned as it is.
func (c *Client) ReadAttachment(ctx context.Context, messageID string, index int, offset int64, w io.Writer) error {
	recs, relay, err := c.attachmentsOf(messageID)
	if err != nil {
		return err
	}
	if index < 0 || index >= len(recs) {
		return fmt.Errorf("%w: no file %d (the message has %d)", ErrNoAttachments, index, len(recs))
	}
	a, err := attachmentRefOf(&recs[index])
	if err != nil {
		return err
	}
	name := SafeFileName(a.Name)
	if a.PlainSize > attach.MaxPlainSize || uint64(attach.CipherSize(int64(a.PlainSize))) != a.CipherSize {
		return fmt.Errorf("%w: %s: sizes do not match the chunk format", ErrInvalidAttachment, name)
	}
	size := int64(a.PlainSize)
	if offset < 0 || offset > size {
		return fmt.Errorf("%w: %s: offset %d of %d bytes", ErrInvalidAttachment, name, offset, size)
	}
	key, err := attach.KeyFromBytes(a.Key[:])
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalidAttachment, name, err)
	}
	from := offset / attach.ChunkSize
	out := &plainWindow{w: w, skip: offset - from*attach.ChunkSize}
	var dec *attach.Decryptor
	if from == 0 {
		out.holdLast = true
		dec = attach.NewDecryptor(key, size, out)
	} else if dec, err = attach.NewDecryptorAt(key, size, out, from, sha256.New()); err != nil {
		// The prefix hash stands in for bytes not read: the digest is not
		// checked from a later offset.
		return fmt.Errorf("%w: %s: %v", ErrInvalidAttachment, name, err)
	}
	if err := c.downloadBlobFrom(ctx, relay, a.Blob, attach.CipherOffset(from), int64(a.CipherSize), dec, name); err != nil {
		if out.err != nil {
			return out.err
		}
		return err
	}
	digest, err := dec.Close()
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrAttachmentCorrupt, name, err)
	}
	if from == 0 && digest != a.Digest {
		return fmt.Errorf("%w: %s: the file's digest does not match the message", ErrAttachmentCorrupt, name)
	}
	return out.flush()
}

// plainWindow passes a Decryptor's plaintext on to w: it drops the first
// skip bytes (the part of the first chunk before the offset asked for)
// and, with holdLast, keeps the latest chunk back until flush, so that
// the last one is written only once the file verified.
type plainWindow struct {
	w        io.Writer
	skip     int64
	holdLast bool
	held     []byte
	err      error // the first failure to write to w
}

func (p *plainWindow) Write(b []byte) (int, error) {
	n := len(b)
	if p.skip > 0 {
		k := min(p.skip, int64(len(b)))
		b, p.skip = b[k:], p.skip-k
	}
	if !p.holdLast {
		return n, p.pass(b)
	}
	if err := p.pass(p.held); err != nil {
		return 0, err
	}
	p.held = append(p.held[:0], b...)
	return n, nil
}

func (p *plainWindow) pass(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if _, err := p.w.Write(b); err != nil {
		p.err = err
		return err
	}
	return nil
}

func (p *plainWindow) flush() error {
	err := p.pass(p.held)
	p.held = nil
	return err
}
