package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/crypto/chacha20poly1305"
)

// A sealed file holds a stream of bytes encrypted in chunks with
// XChaCha20-Poly1305:
//
//	header: magic "PSTSEAL1" || file id [16] (random)
//	chunk:  u32 ciphertext length || nonce [24] (random) || ciphertext
//
// Each chunk's associated data is header || u64 chunk index || u8 last,
// so chunks cannot be reordered, dropped, moved between files, or the
// stream cut short after a whole chunk (the last chunk says it is last).
// Chunks hold sealChunk bytes of plaintext (the last one fewer, possibly
// none), so neither writing nor reading needs the whole plaintext in
// memory at once.

const (
	sealMagic = "PSTSEAL1"
	sealChunk = 1 << 20
	sealHead  = len(sealMagic) + 16
)

var ErrSealed = errors.New("search: sealed file: wrong key, damaged or cut short")

type sealWriter struct {
	f      *os.File
	tmp    string
	path   string
	aead   cipherAEAD
	head   []byte
	buf    []byte
	index  uint64
	closed bool
}

type cipherAEAD interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
	NonceSize() int
	Overhead() int
}

// createSealed starts a sealed file that replaces path only when Close
// succeeds (written to a temporary file in the same directory, synced,
// renamed): a crash leaves the old file or the new one, never half.
func createSealed(path string, key []byte) (*sealWriter, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("search: sealed file: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".seal-*")
	if err != nil {
		return nil, fmt.Errorf("search: sealed file: %w", err)
	}
	head := make([]byte, sealHead)
	copy(head, sealMagic)
	if _, err := rand.Read(head[len(sealMagic):]); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	if _, err := f.Write(head); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("search: sealed file: %w", err)
	}
	return &sealWriter{f: f, tmp: f.Name(), path: path, aead: aead, head: head, buf: make([]byte, 0, sealChunk)}, nil
}

func sealAD(head []byte, index uint64, last bool) []byte {
	ad := make([]byte, 0, len(head)+9)
	ad = append(ad, head...)
	ad = binary.BigEndian.AppendUint64(ad, index)
	if last {
		return append(ad, 1)
	}
	return append(ad, 0)
}

func (w *sealWriter) flush(last bool) error {
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	out := make([]byte, 4, 4+len(nonce)+len(w.buf)+w.aead.Overhead())
	out = append(out, nonce...)
	out = w.aead.Seal(out, nonce, w.buf, sealAD(w.head, w.index, last))
	binary.BigEndian.PutUint32(out, uint32(len(out)-4-len(nonce)))
	w.index++
	w.buf = w.buf[:0]
	if _, err := w.f.Write(out); err != nil {
		return fmt.Errorf("search: sealed file: %w", err)
	}
	return nil
}

func (w *sealWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), sealChunk-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(w.buf) == sealChunk {
			if err := w.flush(false); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// Abort drops the temporary file; the old sealed file stays.
func (w *sealWriter) Abort() {
	if !w.closed {
		w.closed = true
		w.f.Close()
		os.Remove(w.tmp)
	}
}

func (w *sealWriter) Close() error {
	if w.closed {
		return nil
	}
	err := w.flush(true)
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.closed = true
	if err == nil {
		err = os.Rename(w.tmp, w.path)
	}
	if err != nil {
		os.Remove(w.tmp)
		return fmt.Errorf("search: sealed file: %w", err)
	}
	return nil
}

type sealReader struct {
	r     *bufio.Reader
	aead  cipherAEAD
	head  []byte
	index uint64
	buf   []byte // decrypted, not yet read
	last  bool
	chunk []byte
	plain []byte
}

// openSealed reads a sealed file; every byte Read returns has been
// authenticated, and the end of the stream is reported only after the
// chunk marked last (a file cut short gives ErrSealed, not io.EOF).
func openSealed(r io.Reader, key []byte) (*sealReader, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("search: sealed file: %w", err)
	}
	br := bufio.NewReaderSize(r, 1<<16)
	head := make([]byte, sealHead)
	if _, err := io.ReadFull(br, head); err != nil || !bytes.Equal(head[:len(sealMagic)], []byte(sealMagic)) {
		return nil, ErrSealed
	}
	return &sealReader{r: br, aead: aead, head: head}, nil
}

func (s *sealReader) next() error {
	var hdr [4 + chacha20poly1305.NonceSizeX]byte
	if _, err := io.ReadFull(s.r, hdr[:]); err != nil {
		return ErrSealed
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < uint32(s.aead.Overhead()) || n > sealChunk+uint32(s.aead.Overhead()) {
		return ErrSealed
	}
	if cap(s.chunk) < int(n) {
		s.chunk = make([]byte, n)
	}
	ct := s.chunk[:n]
	if _, err := io.ReadFull(s.r, ct); err != nil {
		return ErrSealed
	}
	nonce := hdr[4:]
	// Try "not last" first: every chunk but one is. The plaintext goes
	// to its own buffer: a failed Open clears its output, which must not
	// be the ciphertext that the second try needs.
	pt, err := s.aead.Open(s.plain[:0], nonce, ct, sealAD(s.head, s.index, false))
	if err != nil {
		pt, err = s.aead.Open(s.plain[:0], nonce, ct, sealAD(s.head, s.index, true))
		if err != nil {
			return ErrSealed
		}
		s.last = true
		if _, err := s.r.ReadByte(); err != io.EOF {
			return ErrSealed // bytes after the last chunk
		}
	}
	s.index++
	s.plain = pt
	s.buf = pt
	return nil
}

func (s *sealReader) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		if s.last {
			return 0, io.EOF
		}
		if err := s.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}
