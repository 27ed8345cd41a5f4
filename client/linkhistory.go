package client

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/postern/postern/client/internal/attach"
	"github.com/postern/postern/client/internal/backup"
	"github.com/postern/postern/client/internal/link"
	"github.com/postern/postern/protocol"
)

// The message history of a device link (`postern device link --history`,
// protocol/SPEC.md section 13.3, "History"): the existing device writes its
// conversations and messages as backup records (section 14.3) into a
// backup-format file under a key derived from a fresh file key, uploads
// that file as a blob in the attachment chunk format (section 12.2) under
// the file key, and names the blob in the link response. The new device
// downloads it (resuming after a dropped connection), checks its digest,
// and imports it. No plaintext of the history is written to either disk.

const linkHistoryKeyLabel = protocol.LabelPrefix + "link history-key"

// ErrHistory: the history of a device link could not be transferred; the
// device is linked without it. The error says why.
var ErrHistory = errors.New("client: the message history could not be transferred")

// historyKey is the backup key of a link's history file, derived from
// its file key (SPEC section 13.3).
func historyKey(fileKey []byte) (backup.RecoveryKey, error) {
	k, err := hkdf.Key(sha256.New, fileKey, nil, linkHistoryKeyLabel, backup.KeySize)
	if err != nil {
		return backup.RecoveryKey{}, err
	}
	return backup.KeyFromBytes(k)
}

// uploadHistory writes and uploads this device's history and returns the
// reference for the link response.
func (c *Client) uploadHistory(ctx context.Context) (*link.HistoryRef, error) {
	dir, err := c.tmpDir()
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "history-*.part")
	if err != nil {
		return nil, fmt.Errorf("client: history: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	fk, err := attach.NewKey()
	if err != nil {
		return nil, err
	}
	hk, err := historyKey(fk.Bytes())
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	w, err := backup.NewWriter(io.MultiWriter(f, h), hk)
	if err != nil {
		return nil, err
	}
	if err := c.writeHistory(ctx, w); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("client: history: %w", localWriteErr(err))
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, err
	}
	if size > attach.MaxPlainSize {
		return nil, fmt.Errorf("%w: %d bytes is more than one blob holds", ErrHistory, size)
	}
	var ref attachmentRef
	if err := c.uploadBlob(ctx, fk, f, size, "history", nil, &ref); err != nil {
		return nil, err
	}
	out := &link.HistoryRef{PlainSize: uint64(size), CipherSize: uint64(attach.CipherSize(size))}
	copy(out.BlobID[:], ref.Blob[:])
	copy(out.Key[:], fk.Bytes())
	copy(out.Digest[:], h.Sum(nil))
	return out, nil
}

// downloadHistory fetches the history named by ref from relay, checks it
// and imports it in one transaction; it returns how many messages it
// stored.
func (c *Client) downloadHistory(ctx context.Context, relay string, ref *link.HistoryRef) (int, error) {
	key, err := attach.KeyFromBytes(ref.Key[:])
	if err != nil {
		return 0, err
	}
	if ref.PlainSize > attach.MaxPlainSize || uint64(attach.CipherSize(int64(ref.PlainSize))) != ref.CipherSize {
		return 0, fmt.Errorf("%w: sizes do not match the chunk format", ErrHistory)
	}
	dir, err := c.tmpDir()
	if err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(dir, "history-*.part")
	if err != nil {
		return 0, fmt.Errorf("client: history: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	dec := attach.NewDecryptor(key, int64(ref.PlainSize), f)
	var id protocol.BlobID
	copy(id[:], ref.BlobID[:])
	if err := c.downloadBlob(ctx, relay, id, int64(ref.CipherSize), dec, "history"); err != nil {
		return 0, err
	}
	digest, err := dec.Close()
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrHistory, err)
	}
	if digest != ref.Digest {
		return 0, fmt.Errorf("%w: its digest does not match the link response", ErrHistory)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	hk, err := historyKey(ref.Key[:])
	if err != nil {
		return 0, err
	}
	r, err := backup.NewReader(f, hk)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrHistory, err)
	}
	st, err := c.importHistoryStats(ctx, r)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrHistory, err)
	}
	return st.Messages, nil
}
