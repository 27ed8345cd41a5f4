package relay

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"time"
)

// backuper is a store that can copy itself while serving
// (bboltstore.Store).
type backuper interface{ Backup(dest string) error }

// Backup writes a consistent copy of the store to dest (an absolute path,
// mode 0600) while the relay keeps serving. Every write acknowledged
// before the call is in the copy. Admin op "backup".
func (r *Relay) Backup(dest string) error {
	if dest == "" || !filepath.IsAbs(dest) {
		return fmt.Errorf("relay: backup needs an absolute file path, got %q", dest)
	}
	b, ok := r.st.(backuper)
	if !ok {
		return errors.New("relay: this store cannot be backed up online")
	}
	if err := b.Backup(dest); err != nil {
		return fmt.Errorf("relay: backup: %w", err)
	}
	r.log.Info("backup written", "file", dest)
	return nil
}

// backupTimeout bounds an admin "backup" request.
const backupTimeout = time.Hour

// snapshotter is a store that can stream a consistent copy of itself
// and names the layout version of that copy (bboltstore.Store).
type snapshotter interface {
	Snapshot(size func(n int64) error, w io.Writer) error
	Schema() uint32
}

// snapshotHeader starts the answer to admin op "backup.stream": one JSON
// line, then Size bytes of the database (or nothing, with Error set).
type snapshotHeader struct {
	Size   int64  `json:"size"`
	Schema uint32 `json:"schema,omitempty"` // the serving relay's store schema
	Error  string `json:"error,omitempty"`
}

// streamSnapshot answers admin op "backup.stream" on c: a consistent copy
// of the database, streamed, so that the copy is written by the caller
// (who may pipe it anywhere) rather than by the relay under its own
// confinement.
func (r *Relay) streamSnapshot(c net.Conn) {
	c.SetDeadline(time.Now().Add(backupTimeout))
	enc := json.NewEncoder(c)
	s, ok := r.st.(snapshotter)
	if !ok {
		enc.Encode(snapshotHeader{Error: "this store cannot be backed up online"})
		return
	}
	err := s.Snapshot(func(n int64) error { return enc.Encode(snapshotHeader{Size: n, Schema: s.Schema()}) }, c)
	if err != nil {
		r.log.Error("backup stream failed", "err", err)
		return
	}
	r.log.Info("backup streamed")
}

// AdminSnapshot asks the relay serving dir for a consistent copy of its
// database, calls size with its length and copies it to w. It returns the
// copy's schema, or an error wrapping ErrNoAdminSocket when no relay is
// running there.
func AdminSnapshot(ctx context.Context, dir string, size func(n int64) error, w io.Writer) (schema uint32, err error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", filepath.Join(dir, AdminSocket))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNoAdminSocket, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if err := json.NewEncoder(c).Encode(AdminRequest{Op: "backup.stream"}); err != nil {
		return 0, err
	}
	br := bufio.NewReader(c)
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, fmt.Errorf("relay: backup stream: %w", err)
	}
	var h snapshotHeader
	if err := json.Unmarshal(line, &h); err != nil {
		return 0, fmt.Errorf("relay: backup stream header: %w", err)
	}
	if h.Error != "" {
		return 0, fmt.Errorf("relay: admin: %s", h.Error)
	}
	if err := size(h.Size); err != nil {
		return 0, err
	}
	n, err := io.CopyN(w, br, h.Size)
	if err != nil {
		return 0, fmt.Errorf("relay: backup stream ended after %d of %d bytes: %w", n, h.Size, err)
	}
	return h.Schema, nil
}
