package attach

import (
	"crypto/cipher"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// Decryptor decrypts one downloaded file. Write it the ciphertext, in any
// split; it verifies each complete chunk before writing that chunk's
// plaintext to dst, so dst only ever receives authenticated bytes, in
// order, truncated to the file's size. Close checks that every padded chunk
// arrived and returns the SHA-256 of the plaintext, which the caller
// compares with the announced digest. It holds one chunk of buffer. A
// Decryptor is not safe for concurrent use. After an error every method
// returns that error.
type Decryptor struct {
	aead      cipher.AEAD
	dst       io.Writer
	plainSize int64
	chunks    int64
	next      int64  // next chunk expected
	buf       []byte // partial chunk, CipherChunkSize capacity
	h         hash.Hash
	err       error
	nonce     [chacha20poly1305.NonceSize]byte
}

// NewDecryptor decrypts a file of plainSize bytes (from the announcement)
// under key into dst, from chunk 0. A size CheckSize refuses makes Write
// and Close fail with that error.
func NewDecryptor(key Key, plainSize int64, dst io.Writer) *Decryptor {
	d := &Decryptor{dst: dst, plainSize: plainSize, chunks: Chunks(plainSize), h: sha256.New(), err: CheckSize(plainSize)}
	if d.err == nil {
		d.aead = newAEAD(key)
	}
	return d
}

// NewDecryptorAt resumes a download at chunk fromChunk (see ResumeAt).
// prefix is a SHA-256 (crypto/sha256.New) into which the caller has
// written exactly the PlainOffset(plainSize, fromChunk) plaintext bytes
// already in its partial file, re-read from disk; dst continues after them.
// The Decryptor then expects ciphertext from CipherOffset(fromChunk) on. A
// nil prefix is allowed only when that offset is 0. The chunks before
// fromChunk are not verified again: they were verified when written.
func NewDecryptorAt(key Key, plainSize int64, dst io.Writer, fromChunk int64, prefix hash.Hash) (*Decryptor, error) {
	if err := CheckSize(plainSize); err != nil {
		return nil, err
	}
	chunks := Chunks(plainSize)
	if fromChunk < 0 || fromChunk > chunks {
		return nil, fmt.Errorf("%w: resume at chunk %d of %d", ErrMalformed, fromChunk, chunks)
	}
	if prefix == nil {
		if PlainOffset(plainSize, fromChunk) != 0 {
			return nil, fmt.Errorf("%w: resume at chunk %d needs the hash of the plaintext prefix", ErrMalformed, fromChunk)
		}
		prefix = sha256.New()
	}
	if prefix.Size() != sha256.Size {
		return nil, fmt.Errorf("%w: prefix hash is not SHA-256", ErrMalformed)
	}
	return &Decryptor{aead: newAEAD(key), dst: dst, plainSize: plainSize, chunks: chunks, next: fromChunk, h: prefix}, nil
}

// Next is the index of the next chunk expected: the number of chunks
// verified (and written) so far, counting those skipped by NewDecryptorAt.
func (d *Decryptor) Next() int64 { return d.next }

// Write consumes ciphertext. It returns ErrDecrypt for a chunk that does
// not authenticate, ErrMalformed for ciphertext beyond the last chunk or
// non-zero padding, and dst's error (wrapped) if dst fails. It never writes
// unverified plaintext to dst.
func (d *Decryptor) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n := 0
	for len(p) > 0 {
		if d.next == d.chunks {
			d.err = fmt.Errorf("%w: ciphertext beyond the last chunk", ErrMalformed)
			return n, d.err
		}
		if d.buf == nil {
			d.buf = make([]byte, 0, CipherChunkSize)
		}
		c := min(len(p), CipherChunkSize-len(d.buf))
		d.buf = append(d.buf, p[:c]...)
		p = p[c:]
		n += c
		if len(d.buf) < CipherChunkSize {
			break
		}
		if err := d.chunk(); err != nil {
			d.err = err
			return n, err
		}
	}
	return n, nil
}

// chunk opens the full chunk in d.buf in place, checks its padding, and
// passes its data to the hash and dst.
func (d *Decryptor) chunk() error {
	i := d.next
	pt, err := openChunk(d.aead, &d.nonce, i, i == d.chunks-1, d.buf, d.buf[:0])
	d.buf = d.buf[:0]
	if err != nil {
		return err
	}
	data := min(max(d.plainSize-i*ChunkSize, 0), ChunkSize)
	var acc byte
	for _, b := range pt[data:] {
		acc |= b
	}
	if acc != 0 {
		return fmt.Errorf("%w: non-zero padding in chunk %d", ErrMalformed, i)
	}
	d.next++
	if data == 0 {
		return nil
	}
	d.h.Write(pt[:data])
	if _, err := d.dst.Write(pt[:data]); err != nil {
		return fmt.Errorf("attach: writing plaintext: %w", err)
	}
	return nil
}

// Close ends the stream. It fails with ErrTruncated unless every padded
// chunk arrived and nothing is left over, and otherwise returns the
// SHA-256 of the whole plaintext (including a prefix given to
// NewDecryptorAt). It does not close dst.
func (d *Decryptor) Close() (digest [32]byte, err error) {
	if d.err != nil {
		return digest, d.err
	}
	if d.next != d.chunks || len(d.buf) != 0 {
		d.err = fmt.Errorf("%w: %d of %d chunks and %d bytes", ErrTruncated, d.next, d.chunks, len(d.buf))
		return digest, d.err
	}
	d.h.Sum(digest[:0])
	return digest, nil
}
