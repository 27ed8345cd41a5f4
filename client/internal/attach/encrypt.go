package attach

import (
	"crypto/cipher"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// Encryptor encrypts one file for upload. It reads the plaintext with
// ReadAt, so it can start at any chunk: an upload resumes at the relay's
// committed offset with Reader(committed / CipherChunkSize). It holds no
// buffer itself; each Reader holds one chunk. An Encryptor may serve
// several Readers, sequentially or concurrently, if src allows concurrent
// ReadAt (os.File does).
type Encryptor struct {
	aead      cipher.AEAD
	src       io.ReaderAt
	plainSize int64
	chunks    int64
	err       error
}

// NewEncryptor prepares to encrypt plainSize bytes of src under key. A
// size CheckSize refuses makes every Reader fail with that error.
func NewEncryptor(key Key, src io.ReaderAt, plainSize int64) *Encryptor {
	e := &Encryptor{src: src, plainSize: plainSize, chunks: Chunks(plainSize), err: CheckSize(plainSize)}
	if e.err == nil {
		e.aead = newAEAD(key)
	}
	return e
}

// Chunks is the padded chunk count of the file.
func (e *Encryptor) Chunks() int64 { return e.chunks }

// Size is the ciphertext size, CipherSize(plainSize).
func (e *Encryptor) Size() int64 { return CipherSize(e.plainSize) }

// Reader streams the ciphertext of chunks fromChunk..Chunks()-1, padding
// chunks included, then io.EOF. fromChunk = Chunks() gives an empty
// stream; outside [0, Chunks()] the Reader fails with ErrMalformed. If src
// ends before plainSize bytes the Reader fails with ErrTruncated; other
// read errors of src are wrapped. The caller must not change the file
// between an upload and its resumption: the recipient would get a mix of
// both versions and a digest that does not match (SPEC.md 12.3).
func (e *Encryptor) Reader(fromChunk int64) io.Reader {
	r := &chunkReader{e: e, next: fromChunk}
	if e.err != nil {
		r.err = e.err
	} else if fromChunk < 0 || fromChunk > e.chunks {
		r.err = fmt.Errorf("%w: chunk %d of %d", ErrMalformed, fromChunk, e.chunks)
	}
	return r
}

type chunkReader struct {
	e    *Encryptor
	next int64  // next chunk to seal
	buf  []byte // one chunk buffer, CipherChunkSize capacity, allocated on first use
	out  []byte // unread part of the current sealed chunk
	err  error

	nonce [chacha20poly1305.NonceSize]byte
}

func (r *chunkReader) Read(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if len(r.out) == 0 {
			if r.err != nil {
				break
			}
			if r.next == r.e.chunks {
				r.err = io.EOF
				break
			}
			if len(p) >= CipherChunkSize {
				// Seal straight into the caller's buffer: no copy.
				if err := r.e.seal(&r.nonce, r.next, p[:CipherChunkSize]); err != nil {
					r.err = err
					break
				}
				r.next++
				p = p[CipherChunkSize:]
				n += CipherChunkSize
				continue
			}
			if r.buf == nil {
				r.buf = make([]byte, CipherChunkSize)
			}
			if err := r.e.seal(&r.nonce, r.next, r.buf); err != nil {
				r.err = err
				break
			}
			r.next++
			r.out = r.buf
		}
		c := copy(p, r.out)
		r.out = r.out[c:]
		p = p[c:]
		n += c
	}
	if n > 0 {
		return n, nil
	}
	return 0, r.err
}

// seal reads chunk i's plaintext into buf, pads it with zeros and seals it
// in place; buf is CipherChunkSize bytes.
func (e *Encryptor) seal(nb *[chacha20poly1305.NonceSize]byte, i int64, buf []byte) error {
	plain := buf[:ChunkSize]
	off := i * ChunkSize
	data := min(max(e.plainSize-off, 0), ChunkSize)
	if data > 0 {
		got, err := e.src.ReadAt(plain[:data], off)
		if int64(got) < data {
			if err == nil || errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: plaintext source ended at byte %d of %d", ErrTruncated, off+int64(got), e.plainSize)
			}
			return fmt.Errorf("attach: reading plaintext: %w", err)
		}
	}
	clear(plain[data:])
	sealChunk(e.aead, nb, i, i == e.chunks-1, plain, plain[:0])
	return nil
}

// Digest is the SHA-256 of a plaintext, read to its end: the digest the
// attachment announcement carries and Decryptor.Close returns.
func Digest(r io.Reader) ([32]byte, error) {
	h := sha256.New()
	var d [32]byte
	if _, err := io.Copy(h, r); err != nil {
		return d, err
	}
	h.Sum(d[:0])
	return d, nil
}
