package backup

import (
	"crypto/rand"
	"encoding/binary"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// Writer writes a backup: the header at creation, then records, sealed in
// chunks as they fill. Memory is one chunk whatever the backup's size. A
// Writer is not safe for concurrent use. After an error every call
// returns it again; the output is then incomplete and must be discarded.
type Writer struct {
	w     io.Writer
	keys  *fileKeys
	buf   []byte // plaintext of the chunk being filled
	out   []byte // its ciphertext
	n     [chacha20poly1305.NonceSize]byte
	i     uint64 // index of the chunk being filled
	err   error
	close bool
}

// NewWriter writes the header of a new backup under key to w, with a
// fresh salt from crypto/rand. Write records with WriteRecord, then Close
// (which does not close w).
func NewWriter(w io.Writer, key RecoveryKey) (*Writer, error) {
	var salt [SaltSize]byte
	rand.Read(salt[:]) // never fails (Go 1.24+)
	return newWriter(w, key, salt)
}

// newWriter is NewWriter with a given salt (known-answer vectors).
func newWriter(w io.Writer, key RecoveryKey, salt [SaltSize]byte) (*Writer, error) {
	signed := signedHeader(&salt)
	bw := &Writer{w: w, keys: deriveKeys(&key, signed), buf: make([]byte, 0, ChunkSize), out: make([]byte, 0, CipherChunkSize)}
	h := append(signed, bw.keys.keyCheck[:]...)
	h = append(h, headerSum(h)...)
	if _, err := w.Write(h); err != nil {
		return nil, err
	}
	return bw, nil
}

// WriteRecord appends one record. typ must not be 0, and data is at most
// MaxRecordSize bytes (ErrTooLarge). The record is on w once the chunks
// holding it are sealed: by later records or by Close.
func (w *Writer) WriteRecord(typ RecordType, data []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.close {
		return ErrClosed
	}
	if typ == 0 {
		return wrapf(ErrMalformed, "record type 0")
	}
	if len(data) > MaxRecordSize {
		return wrapf(ErrTooLarge, "record of %d bytes, at most %d", len(data), MaxRecordSize)
	}
	var h [RecordHeaderSize]byte
	h[0] = byte(typ)
	binary.BigEndian.PutUint32(h[1:], uint32(len(data)))
	if err := w.write(h[:]); err != nil {
		return err
	}
	return w.write(data)
}

// write fills chunks. A full chunk is sealed only when more bytes follow,
// so the last one is sealed by Close with the final flag.
func (w *Writer) write(p []byte) error {
	for len(p) > 0 {
		if len(w.buf) == ChunkSize {
			if err := w.seal(false); err != nil {
				return err
			}
		}
		n := copy(w.buf[len(w.buf):ChunkSize], p)
		w.buf = w.buf[:len(w.buf)+n]
		p = p[n:]
	}
	return nil
}

func (w *Writer) seal(last bool) error {
	if w.i >= MaxChunks {
		w.err = wrapf(ErrTooLarge, "more than %d chunks", uint64(MaxChunks))
		return w.err
	}
	w.out = w.keys.aead.Seal(w.out[:0], nonce(&w.n, w.i, last), w.buf, nil)
	if _, err := w.w.Write(w.out); err != nil {
		w.err = err
		return err
	}
	w.i++
	w.buf = w.buf[:0]
	return nil
}

// Close seals the final chunk (empty when there were no records) and
// writes it. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.close {
		return ErrClosed
	}
	w.close = true
	return w.seal(true)
}
