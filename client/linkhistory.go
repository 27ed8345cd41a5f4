package client

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
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
// device is linked without it (the next Sync tries again). The error says
// why.
var ErrHistory = errors.New("client: the message history could not be transferred")

// maxHistoryAttempts is how many times a linked device tries to fetch its
// history (at linking, then at each Sync) before it gives up and says so
// in a notice.
const maxHistoryAttempts = 5

// HistoryGivenUpNotice is the notice a linked device stores when its
// message history could not be transferred.
const HistoryGivenUpNotice = "The message history from the device that linked this one could not be transferred. Messages from before the link are on your other devices."

var keyLinkHistory = []byte("link-history")

// pendingHistory is the history a linked device has yet to fetch: kept
// from the transaction that creates its home until it is imported, so
// that a restart or a dropped connection does not lose it.
type pendingHistory struct {
	V          int    `json:"v"`
	Relay      string `json:"relay"`
	Blob       []byte `json:"blob"`
	Key        []byte `json:"key"`
	Digest     []byte `json:"digest"`
	PlainSize  uint64 `json:"size"`
	CipherSize uint64 `json:"cipher_size"`
	Attempts   int    `json:"attempts,omitempty"`
}

func (p *pendingHistory) ref() *link.HistoryRef {
	r := &link.HistoryRef{PlainSize: p.PlainSize, CipherSize: p.CipherSize}
	copy(r.BlobID[:], p.Blob)
	copy(r.Key[:], p.Key)
	copy(r.Digest[:], p.Digest)
	return r
}

// putPendingHistory records the history of a link response to fetch.
func (t *tx) putPendingHistory(relay string, r *link.HistoryRef) error {
	return t.Put(bucketMeta, t.Index(bucketMeta, keyLinkHistory), &pendingHistory{
		V: 1, Relay: relay, Blob: r.BlobID[:], Key: r.Key[:], Digest: r.Digest[:],
		PlainSize: r.PlainSize, CipherSize: r.CipherSize,
	})
}

// resumeHistory fetches and imports the history this device has yet to
// fetch, if any; after maxHistoryAttempts failures it gives up with a
// notice. It returns how many messages it stored.
func (c *Client) resumeHistory(ctx context.Context) (int, error) {
	var p pendingHistory
	var ok bool
	if err := c.st.view(func(t *tx) (err error) {
		ok, err = t.Get(bucketMeta, t.Index(bucketMeta, keyLinkHistory), &p)
		return err
	}); err != nil || !ok {
		return 0, err
	}
	n, herr := c.downloadHistory(ctx, p.Relay, p.ref())
	err := c.st.update(func(t *tx) error {
		key := t.Index(bucketMeta, keyLinkHistory)
		if herr == nil {
			return t.Delete(bucketMeta, key)
		}
		p.Attempts++
		if p.Attempts < maxHistoryAttempts {
			return t.Put(bucketMeta, key, &p)
		}
		self, err := t.self()
		if err != nil {
			return err
		}
		now := c.now().UTC()
		m := &Message{ID: hex.EncodeToString(p.Digest[:8]), From: Me, To: Me, Text: HistoryGivenUpNotice, Time: now, Received: now, Notice: true}
		if _, err := storeMessage(t, &contactRecord{Person: self}, m); err != nil {
			return err
		}
		return t.Delete(bucketMeta, key)
	})
	if herr != nil {
		return 0, fmt.Errorf("%w: %w", ErrHistory, herr)
	}
	return n, err
}

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
