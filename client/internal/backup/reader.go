package backup

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// reorderWindow is how many chunk indices before and after its position a
// chunk that does not authenticate is tried at, to tell reordering from
// damage. It only shapes the error: nothing from such a chunk is returned.
const reorderWindow = 64

// Reader reads a backup's records in order. It returns a record only once
// every chunk holding it has authenticated, so no byte of a chunk that
// does not authenticate is ever returned; records before a damaged chunk
// are. A caller restoring a backup treats the restore as failed unless
// Next ends with io.EOF. Memory is one chunk and one record at most. A
// Reader is not safe for concurrent use.
type Reader struct {
	r    *bufio.Reader
	keys *fileKeys
	ct   []byte
	buf  []byte // authenticated plaintext not yet returned
	n    [chacha20poly1305.NonceSize]byte
	i    uint64 // index of the next chunk
	done bool   // the final chunk has authenticated
	err  error
}

// NewReader reads and checks the header of a backup from r. Errors:
// ErrNotBackup, ErrUnsupportedVersion, ErrTruncated (a short header),
// ErrDamaged (the header checksum), ErrMalformed (header values this
// version does not allow), ErrWrongKey (an intact header, another key).
func NewReader(r io.Reader, key RecoveryKey) (*Reader, error) {
	br := bufio.NewReaderSize(r, CipherChunkSize+1)
	h := make([]byte, HeaderSize)
	n, err := io.ReadFull(br, h)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if !bytes.HasPrefix(h[:n], []byte(Magic)[:min(n, len(Magic))]) || n == 0 {
		return nil, ErrNotBackup
	}
	if n > len(Magic) && h[len(Magic)] != FormatVersion {
		return nil, ErrUnsupportedVersion
	}
	if n < HeaderSize {
		return nil, wrapf(ErrTruncated, "header of %d bytes, want %d", n, HeaderSize)
	}
	signed := h[:signedHeaderSize]
	sumAt := signedHeaderSize + len(fileKeys{}.keyCheck)
	if !bytes.Equal(headerSum(h[:sumAt]), h[sumAt:]) {
		return nil, wrapf(ErrDamaged, "header checksum does not match")
	}
	if h[len(Magic)+1] != kdfNone || binary.BigEndian.Uint32(h[len(Magic)+2:]) != ChunkSize {
		return nil, wrapf(ErrMalformed, "header parameters not allowed in version %d", FormatVersion)
	}
	keys := deriveKeys(&key, signed)
	if !hmac.Equal(keys.keyCheck[:], h[signedHeaderSize:sumAt]) {
		return nil, ErrWrongKey
	}
	return &Reader{r: br, keys: keys, ct: make([]byte, CipherChunkSize)}, nil
}

// Next returns the next record, or io.EOF after the last one of an intact
// backup. Other errors: ErrTruncated, ErrDamaged (ErrOutOfOrder for a
// chunk at the wrong position), ErrMalformed, and read errors of the
// underlying reader. Errors are sticky. Data is the caller's.
func (r *Reader) Next() (Record, error) {
	for r.err == nil {
		if rec, ok, err := r.record(); err != nil {
			r.err = err
		} else if ok {
			return rec, nil
		} else if r.done {
			if len(r.buf) != 0 {
				r.err = wrapf(ErrMalformed, "a record is cut by the end of the backup")
			} else {
				r.err = io.EOF
			}
		} else {
			r.err = r.chunk()
		}
	}
	return Record{}, r.err
}

// record takes one whole record from buf, if there is one.
func (r *Reader) record() (Record, bool, error) {
	if len(r.buf) < RecordHeaderSize {
		return Record{}, false, nil
	}
	typ, n := RecordType(r.buf[0]), binary.BigEndian.Uint32(r.buf[1:])
	if typ == 0 {
		return Record{}, false, wrapf(ErrMalformed, "record type 0")
	}
	if n > MaxRecordSize {
		return Record{}, false, wrapf(ErrMalformed, "record of %d bytes, at most %d", n, MaxRecordSize)
	}
	if uint64(len(r.buf)) < RecordHeaderSize+uint64(n) {
		return Record{}, false, nil
	}
	rec := Record{Type: typ, Data: bytes.Clone(r.buf[RecordHeaderSize : RecordHeaderSize+n])}
	// Move the rest to the front, so buf never holds more than one record
	// and one chunk.
	r.buf = r.buf[:copy(r.buf, r.buf[RecordHeaderSize+n:])]
	return rec, true, nil
}

// chunk reads, authenticates and appends the next chunk.
func (r *Reader) chunk() error {
	n, err := io.ReadFull(r.r, r.ct)
	var last bool
	switch {
	case errors.Is(err, io.EOF): // nothing at all
		return wrapf(ErrTruncated, "no chunk %d (the backup ends after %d chunks without its final one)", r.i, r.i)
	case errors.Is(err, io.ErrUnexpectedEOF):
		last = true
	case err != nil:
		return err
	default:
		_, perr := r.r.Peek(1)
		if perr != nil && !errors.Is(perr, io.EOF) {
			return perr
		}
		last = errors.Is(perr, io.EOF)
	}
	ct := r.ct[:n]
	// Open appends to buf only when the chunk authenticates; on failure
	// buf keeps its length and ct is unchanged (it is not opened in place).
	buf, ok := r.open(r.buf, r.i, last, ct)
	if !ok {
		return r.diagnose(ct, last)
	}
	if last && len(buf) == len(r.buf) && r.i > 0 {
		return wrapf(ErrMalformed, "an empty final chunk after others")
	}
	r.buf = buf
	r.i++
	r.done = last
	return nil
}

func (r *Reader) open(dst []byte, i uint64, last bool, ct []byte) ([]byte, bool) {
	if len(ct) < chacha20poly1305.Overhead {
		return dst, false
	}
	p, err := r.keys.aead.Open(dst, nonce(&r.n, i, last), ct, nil)
	return p, err == nil
}

// diagnose names the failure of chunk r.i: it tries the other flag and
// nearby indices on a copy, and returns the error that fits. It never
// returns plaintext.
func (r *Reader) diagnose(ct []byte, last bool) error {
	i := r.i
	if len(ct) < chacha20poly1305.Overhead {
		return wrapf(ErrDamaged, "chunk %d is cut short", i)
	}
	scratch := make([]byte, 0, ChunkSize)
	try := func(j uint64, l bool) bool {
		_, ok := r.open(scratch, j, l, ct)
		return ok
	}
	if last && try(i, false) {
		return wrapf(ErrTruncated, "the backup ends after chunk %d, which is not its final chunk", i)
	}
	if !last && try(i, true) {
		return wrapf(ErrDamaged, "data after the final chunk (%d)", i)
	}
	lo := uint64(0)
	if i > reorderWindow {
		lo = i - reorderWindow
	}
	for j := lo; j <= i+reorderWindow; j++ {
		if j == i {
			continue
		}
		if try(j, false) || try(j, true) {
			return wrapf(ErrOutOfOrder, "chunk %d of the backup is found at position %d", j, i)
		}
	}
	return wrapf(ErrDamaged, "chunk %d does not authenticate (changed bytes, or the file was cut inside it)", i)
}
