package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/audit"
	"github.com/postern/postern/relay/store"
	"github.com/postern/postern/relay/store/bboltstore"
)

// A backup archive is a tar stream (docs/OPERATIONS.md, "Backups and
// restore"; protocol/SPEC.md section 10, "Backup archive"):
//
//	relay.db        a consistent copy of the database (one read transaction)
//	audit.head      the newest signed head, copied before the log
//	audit.log       the log up to its last complete line
//	relay-key       the relay's signing key (0600)
//	relay-key.pub   its public half
//	blobs/<hex>     one file per blob
//	SHA256SUMS      sha256sum -c format, every file above
//	MANIFEST.json   format, version, creation time, schema, and every file
//	                with its size and SHA-256
//
// The manifest comes last so that the archive can be streamed: each
// file's checksum is known once it has been written.

// archiveFormat and archiveVersion name the archive in its manifest.
const (
	archiveFormat  = "postern-relay-backup"
	archiveVersion = 1
	manifestName   = "MANIFEST.json"
	sumsName       = "SHA256SUMS"
)

type manifest struct {
	Format  string         `json:"format"`
	Version int            `json:"version"`
	Created string         `json:"created"`
	Schema  uint32         `json:"schema"`
	Files   []manifestFile `json:"files"`
}

type manifestFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

var blobName = regexp.MustCompile(`^blobs/[0-9a-f]{64}$`)

// archiveName reports whether name may appear in an archive.
func archiveName(name string) bool {
	switch name {
	case relay.DBFile, audit.LogFile, audit.HeadFile, audit.KeyFile, audit.PublicKeyFile, relay.LogKeyFile:
		return true
	}
	return blobName.MatchString(name)
}

// archiveWriter writes the tar stream and records each file's checksum.
type archiveWriter struct {
	tw    *tar.Writer
	files []manifestFile
	now   time.Time
}

func (a *archiveWriter) header(name string, size int64, mode int64) error {
	return a.tw.WriteHeader(&tar.Header{Name: name, Size: size, Mode: mode, ModTime: a.now, Typeflag: tar.TypeReg, Format: tar.FormatPAX})
}

// add writes size bytes from r as name; a reader that ends early is padded
// with zeros (a blob file cut back to its last whole chunk meanwhile:
// only its committed prefix matters).
func (a *archiveWriter) add(name string, size int64, mode int64, r io.Reader) error {
	if err := a.header(name, size, mode); err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.CopyN(io.MultiWriter(a.tw, h), r, size)
	if errors.Is(err, io.EOF) {
		_, err = io.CopyN(io.MultiWriter(a.tw, h), zeros{}, size-n)
	}
	if err != nil {
		return fmt.Errorf("backup: %s: %w", name, err)
	}
	a.files = append(a.files, manifestFile{Name: name, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))})
	return nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// addFile adds the file at p (skipped if it does not exist).
func (a *archiveWriter) addFile(name, p string, limit func([]byte) int64) error {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	var r io.Reader = f
	if limit != nil {
		b, err := io.ReadAll(io.LimitReader(f, size))
		if err != nil {
			return err
		}
		size = limit(b)
		r = bytes.NewReader(b[:size])
	}
	return a.add(name, size, int64(st.Mode().Perm()), r)
}

// lastLine is the length of b up to its last newline: an audit log copied
// while the relay appends ends at a whole entry.
func lastLine(b []byte) int64 { return int64(bytes.LastIndexByte(b, '\n') + 1) }

// writeArchive writes the backup archive of the relay data directory dir
// to w: the database through the running relay's admin socket, or from
// the file when no relay runs, then the audit log, the key and the blobs.
func writeArchive(ctx context.Context, dir string, w io.Writer) error {
	a := &archiveWriter{tw: tar.NewWriter(w), now: time.Now().UTC().Truncate(time.Second)}
	// The database first: every send acknowledged before this point is in
	// the copy. Through a buffer file? No: the size comes before the bytes.
	dbHash := sha256.New()
	var dbSize int64
	header := func(n int64) error { dbSize = n; return a.header(relay.DBFile, n, 0o600) }
	body := io.MultiWriter(a.tw, dbHash)
	schema, err := relay.AdminSnapshot(ctx, dir, header, body)
	if errors.Is(err, relay.ErrNoAdminSocket) {
		db := filepath.Join(dir, relay.DBFile)
		if _, serr := os.Stat(db); serr != nil {
			return &usageError{msg: fmt.Sprintf("no relay data at %s", db), hint: "pass --data DIR (or set POSTERN_RELAY_DATA) to the relay's data directory"}
		}
		if schema, err = bboltstore.FileSchema(db); err == nil {
			err = bboltstore.SnapshotFile(db, header, body)
		}
	}
	if err != nil {
		return err
	}
	a.files = append(a.files, manifestFile{Name: relay.DBFile, Size: dbSize, SHA256: hex.EncodeToString(dbHash.Sum(nil))})

	// The head before the log: the log only grows, so the copy of the log
	// holds the head the copied head file names.
	if err := a.addFile(audit.HeadFile, filepath.Join(dir, audit.HeadFile), nil); err != nil {
		return err
	}
	if err := a.addFile(audit.LogFile, filepath.Join(dir, audit.LogFile), lastLine); err != nil {
		return err
	}
	// The log key too, so that a restored relay names accounts in its log
	// as before (a relay older than the key has none: addFile skips it).
	for _, name := range []string{audit.KeyFile, audit.PublicKeyFile, relay.LogKeyFile} {
		if err := a.addFile(name, filepath.Join(dir, name), nil); err != nil {
			return err
		}
	}
	ents, err := os.ReadDir(filepath.Join(dir, relay.BlobDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range ents {
		name := relay.BlobDir + "/" + e.Name()
		if !e.Type().IsRegular() || !blobName.MatchString(name) {
			continue // not a blob file (an upload's temporary, say)
		}
		if err := a.addFile(name, filepath.Join(dir, relay.BlobDir, e.Name()), nil); err != nil {
			return err
		}
	}
	var sums bytes.Buffer
	for _, f := range a.files {
		fmt.Fprintf(&sums, "%s  %s\n", f.SHA256, f.Name)
	}
	if err := a.add(sumsName, int64(sums.Len()), 0o600, &sums); err != nil {
		return err
	}
	m := manifest{Format: archiveFormat, Version: archiveVersion, Created: a.now.Format(time.RFC3339), Schema: schema, Files: a.files}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	mb = append(mb, '\n')
	if err := a.header(manifestName, int64(len(mb)), 0o600); err != nil {
		return err
	}
	if _, err := a.tw.Write(mb); err != nil {
		return err
	}
	return a.tw.Close()
}

// isArchive reports whether the file at p starts like a tar archive.
func isArchive(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	b := make([]byte, 512)
	if _, err := io.ReadFull(f, b); err != nil {
		return false, nil // too short for a tar header: not an archive
	}
	return string(b[257:262]) == "ustar", nil
}

// archiveError marks a backup archive that is damaged or not ours: exit
// status exitDamaged, like a damaged database.
func archiveError(src, format string, args ...any) error {
	return fmt.Errorf("%w: backup %s: %s", store.ErrDamaged, src, fmt.Sprintf(format, args...))
}

// restoreArchive unpacks the archive src into dir, which must be empty or
// missing, after verifying all of it: every file's size and SHA-256
// against the manifest, the database (structure, bbolt's check, a schema
// this relay reads), the key, and the audit log against the key. Nothing
// is put in dir unless everything verifies.
func restoreArchive(src, dir string, stdout io.Writer) error {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return &usageError{msg: fmt.Sprintf("%s is not empty: a backup archive is restored into an empty directory", dir),
			hint: fmt.Sprintf("move the old data away (mv %s %s.old) and run restore again", dir, dir)}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// Staged beside dir when its parent is writable, so that one rename
	// of the staging directory puts everything in place at once: a crash
	// half-way leaves dir as it was, never a key without its database or
	// a database without its blobs. Otherwise (restore run as the service
	// user into its own directory) staged inside dir and moved file by
	// file, the database last.
	dir = filepath.Clean(dir)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	stage, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".restore-")
	inside, made := false, false
	if err != nil {
		if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
			if err := os.Mkdir(dir, 0o700); err != nil {
				return err
			}
			made = true
		}
		if stage, err = os.MkdirTemp(dir, ".restore-"); err != nil {
			return err
		}
		inside = true
	}
	ok := false
	defer func() {
		os.RemoveAll(stage)
		if !ok && made {
			os.Remove(dir)
		}
	}()
	got, m, err := unpack(src, stage)
	if err != nil {
		return err
	}
	if err := checkManifest(src, m, got); err != nil {
		return err
	}
	db := filepath.Join(stage, relay.DBFile)
	if err := bboltstore.Check(db); err != nil {
		return fmt.Errorf("backup %s: its database fails the check: %w", src, err)
	}
	v, err := bboltstore.FileSchema(db)
	if err != nil {
		return err
	}
	if v > bboltstore.SchemaVersion {
		return fmt.Errorf("backup %s has schema %d but this postern-relay reads schemas up to %d; upgrade postern-relay first", src, v, bboltstore.SchemaVersion)
	}
	fp := ""
	if _, err := os.Stat(filepath.Join(stage, audit.KeyFile)); err == nil {
		k, err := audit.LoadOrCreateKey(filepath.Join(stage, audit.KeyFile))
		if err != nil {
			return archiveError(src, "relay key: %v", err)
		}
		pub, err := audit.ReadPublicKey(filepath.Join(stage, audit.PublicKeyFile))
		if err != nil || !pub.Equal(k.Public()) {
			return archiveError(src, "relay-key.pub is not the public half of relay-key")
		}
		if _, err := os.Stat(filepath.Join(stage, audit.LogFile)); err == nil {
			if _, err := audit.VerifyDir(stage, k.Public()); err != nil {
				return archiveError(src, "audit log: %v", err)
			}
		}
		f := k.Public().Fingerprint()
		fp = hex.EncodeToString(f[:])
	}
	// Everything verified: put it in place, synced.
	os.Remove(filepath.Join(stage, sumsName))
	if !inside {
		os.Chmod(stage, 0o700)
		// rename(2) replaces an empty directory; elsewhere remove it first.
		if err := os.Rename(stage, dir); err != nil {
			if rerr := os.Remove(dir); rerr != nil {
				return err
			}
			if err := os.Rename(stage, dir); err != nil {
				return err
			}
		}
		syncPath(filepath.Join(dir, relay.BlobDir))
		syncPath(filepath.Dir(dir))
	} else {
		names := make([]string, 0, len(got))
		for n := range got {
			if n != sumsName && n != manifestName && n != relay.DBFile {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		names = append(names, relay.DBFile) // last: a relay starts on nothing until it is there
		for _, n := range names {
			if strings.HasPrefix(n, relay.BlobDir+"/") {
				if err := os.MkdirAll(filepath.Join(dir, relay.BlobDir), 0o700); err != nil {
					return err
				}
			}
			if err := os.Rename(filepath.Join(stage, filepath.FromSlash(n)), filepath.Join(dir, filepath.FromSlash(n))); err != nil {
				return err
			}
		}
		syncPath(filepath.Join(dir, relay.BlobDir))
		syncPath(dir)
	}
	ok = true
	fmt.Fprintf(stdout, "restored %s (%s, schema %d, %d files) to %s\n", src, m.Created, v, len(m.Files), dir)
	if fp != "" {
		fmt.Fprintf(stdout, "relay key fingerprint: %s\n", fp)
	}
	if v < bboltstore.SchemaVersion {
		fmt.Fprintf(stdout, "the relay will migrate the database from schema %d at start\n", v)
	}
	return nil
}

// syncPath fsyncs a directory, if it exists.
func syncPath(p string) {
	if f, err := os.Open(p); err == nil {
		f.Sync()
		f.Close()
	}
}

// unpack extracts the archive src into stage, hashing each file, and
// returns the files' sizes and hashes and the manifest.
func unpack(src, stage string) (map[string]manifestFile, *manifest, error) {
	f, err := os.Open(src)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	got := map[string]manifestFile{}
	var m *manifest
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, archiveError(src, "%v (truncated or not a backup archive)", err)
		}
		name := path.Clean(h.Name)
		if h.Typeflag != tar.TypeReg || name != h.Name || (!archiveName(name) && name != sumsName && name != manifestName) {
			return nil, nil, archiveError(src, "unexpected entry %q", h.Name)
		}
		if _, dup := got[name]; dup {
			return nil, nil, archiveError(src, "%s appears twice", name)
		}
		if name == manifestName {
			b, err := io.ReadAll(io.LimitReader(tr, 64<<20))
			if err != nil {
				return nil, nil, archiveError(src, "manifest: %v", err)
			}
			m = &manifest{}
			if err := json.Unmarshal(b, m); err != nil {
				return nil, nil, archiveError(src, "manifest: %v", err)
			}
			got[name] = manifestFile{Name: name}
			continue
		}
		p := filepath.Join(stage, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, nil, err
		}
		out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, nil, err
		}
		hs := sha256.New()
		n, err := io.Copy(io.MultiWriter(out, hs), tr)
		if err == nil {
			err = out.Sync()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, nil, archiveError(src, "%s: truncated", name)
			}
			return nil, nil, err
		}
		if name == audit.PublicKeyFile {
			os.Chmod(p, 0o644)
		}
		got[name] = manifestFile{Name: name, Size: n, SHA256: hex.EncodeToString(hs.Sum(nil))}
	}
	if m == nil {
		return nil, nil, archiveError(src, "no %s (truncated, or not a postern-relay backup)", manifestName)
	}
	return got, m, nil
}

// checkManifest compares the unpacked files with the manifest: the same
// set of files, each of the size and SHA-256 it lists.
func checkManifest(src string, m *manifest, got map[string]manifestFile) error {
	if m.Format != archiveFormat || m.Version != archiveVersion {
		return archiveError(src, "manifest format %q version %d; this postern-relay reads %q version %d", m.Format, m.Version, archiveFormat, archiveVersion)
	}
	listed := map[string]bool{}
	for _, f := range m.Files {
		g, ok := got[f.Name]
		if !ok {
			return archiveError(src, "%s is listed in the manifest but missing", f.Name)
		}
		if g.Size != f.Size || g.SHA256 != f.SHA256 {
			return archiveError(src, "%s does not match its checksum", f.Name)
		}
		listed[f.Name] = true
	}
	for n := range got {
		if !listed[n] && n != sumsName && n != manifestName {
			return archiveError(src, "%s is not in the manifest", n)
		}
	}
	if !listed[relay.DBFile] {
		return archiveError(src, "no %s", relay.DBFile)
	}
	return nil
}
