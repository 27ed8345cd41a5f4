package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/store/bboltstore"
)

const backupUsage = `usage: postern-relay backup (FILE | --out FILE | --out -) [--data DIR] [--db-only]

Writes one archive (tar) that brings the relay back on a new disk: a
consistent copy of the database (taken through the running relay's admin
socket, or from the file when no relay runs), the relay's signing key, the
audit log and every blob, with a manifest and SHA-256 checksums. --out -
streams it to standard output, so that nothing is written where the
relay's service is confined:

  sudo -u postern postern-relay backup --out - --data /var/lib/postern-relay > relay.tar

The archive holds the relay's private key: keep it as you keep the key.
--db-only writes only a copy of the database (the relay writes it itself,
under its data directory when it runs confined).

`

// backupCmd runs `postern-relay backup`.
func backupCmd(args []string, stdout, stderr io.Writer) error {
	fs, data := storeFlags("backup", backupUsage, stderr)
	out := fs.String("out", "", "write the archive to FILE, or to standard output with -")
	dbOnly := fs.Bool("db-only", false, "write only a copy of the database (the format of earlier releases)")
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 1 && *out == "":
		*out = pos[0]
	case len(pos) > 1 || (len(pos) == 1 && *out != ""), *out == "":
		return &usageError{msg: "backup needs one FILE (or --out FILE, or --out - for standard output)", hint: "postern-relay backup --out FILE [--data DIR]"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 24*time.Hour)
	defer cancel()
	if *dbOnly {
		return backupDBOnly(ctx, *data, *out, stdout)
	}
	if *out == "-" {
		return writeArchive(ctx, *data, stdout)
	}
	dest, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after the rename, a no-op
	err = f.Chmod(0o600)
	if err == nil {
		err = writeArchive(ctx, *data, f)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), dest)
	}
	if err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(dest)); err == nil {
		d.Sync()
		d.Close()
	}
	fmt.Fprintf(stdout, "backup written to %s\n", dest)
	return nil
}

// backupDBOnly writes a copy of the database alone: through the admin
// socket when a relay is serving, else straight from the closed file.
func backupDBOnly(ctx context.Context, data, out string, stdout io.Writer) error {
	if out == "-" {
		return &usageError{msg: "--db-only writes a file, not standard output", hint: "drop --db-only to stream an archive"}
	}
	dest, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	_, err = relay.Admin(ctx, data, relay.AdminRequest{Op: "backup", Path: dest})
	if errors.Is(err, relay.ErrNoAdminSocket) {
		db := filepath.Join(data, relay.DBFile)
		if _, serr := os.Stat(db); serr != nil {
			return &usageError{msg: fmt.Sprintf("no relay data at %s", db), hint: "pass --data DIR (or set POSTERN_RELAY_DATA) to the relay's data directory"}
		}
		err = bboltstore.BackupFile(db, dest)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup written to %s\n", dest)
	return nil
}

const restoreUsage = `usage: postern-relay restore FILE --data DIR

With the relay stopped, puts a backup in place. FILE is either

  an archive from postern-relay backup: restored into DIR, which must be
  empty or missing (move old data away first); every file is checked
  against the manifest's SHA-256, the database, the key and the audit log
  are verified, and only then is anything written to DIR; or

  a database copy (backup --db-only, or an earlier release's backup):
  checked, then put in place of DIR/relay.db, the old one kept as
  relay.db.before-restore.

A damaged backup is refused (exit status 65) and nothing is changed.

`

// restoreCmd runs `postern-relay restore FILE --data DIR`: with no relay
// running, it checks FILE (bbolt's consistency check, a schema this relay
// reads) and atomically replaces DIR/relay.db with a copy of it, keeping
// the old database as relay.db.before-restore.
func restoreCmd(args []string, stdout, stderr io.Writer) error {
	fs, data := storeFlags("restore", restoreUsage, stderr)
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return &usageError{msg: "restore needs one FILE", hint: "postern-relay restore FILE --data DIR (with the relay stopped)"}
	}
	src := pos[0]
	if err := relayRunning(*data); err != nil {
		return err
	}
	arch, err := isArchive(src)
	if err != nil {
		return err
	}
	if arch {
		return restoreArchive(src, *data, stdout)
	}
	if err := bboltstore.Check(src); err != nil {
		return fmt.Errorf("backup %s fails the consistency check: %w", src, err)
	}
	v, err := bboltstore.FileSchema(src)
	if err != nil {
		return err
	}
	if v > bboltstore.SchemaVersion {
		return fmt.Errorf("backup %s has schema %d but this postern-relay reads schemas up to %d; upgrade postern-relay first", src, v, bboltstore.SchemaVersion)
	}
	db := filepath.Join(*data, relay.DBFile)
	keep := db + ".before-restore"
	if err := os.MkdirAll(*data, 0o700); err != nil {
		return err
	}
	if _, err := os.Lstat(keep); err == nil {
		return &usageError{msg: fmt.Sprintf("%s exists from an earlier restore", keep), hint: "move it away (or delete it) and run restore again"}
	}
	tmp, err := copyToTemp(src, *data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // after the rename, a no-op
	had := false
	if _, err := os.Stat(db); err == nil {
		had = true
		if err := os.Link(db, keep); err != nil {
			return fmt.Errorf("keeping the current database: %w", err)
		}
	}
	if err := os.Rename(tmp, db); err != nil {
		return err
	}
	if d, err := os.Open(*data); err == nil {
		d.Sync()
		d.Close()
	}
	fmt.Fprintf(stdout, "restored %s (schema %d) to %s\n", src, v, db)
	if had {
		fmt.Fprintf(stdout, "the previous database is kept as %s\n", keep)
	}
	if v < bboltstore.SchemaVersion {
		fmt.Fprintf(stdout, "the relay will migrate it from schema %d at start\n", v)
	}
	return nil
}

// relayRunning returns an error when a relay serves dir: its admin socket
// answers, or it holds the database's lock.
func relayRunning(dir string) error {
	hint := "stop the relay (systemctl stop postern-relay) and run restore again"
	if c, err := net.DialTimeout("unix", filepath.Join(dir, relay.AdminSocket), time.Second); err == nil {
		c.Close()
		return &usageError{msg: "a relay is serving " + dir, hint: hint}
	}
	path := filepath.Join(dir, relay.DBFile)
	busy, err := bboltstore.InUse(path)
	if err != nil {
		return err
	}
	if busy {
		return &usageError{msg: path + " is locked by another process", hint: hint}
	}
	return nil // a damaged current file may still be replaced
}

// copyToTemp copies src to a synced 0600 temporary file in dir.
func copyToTemp(src, dir string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, ".relay.db.restore-*")
	if err != nil {
		return "", err
	}
	if err = out.Chmod(0o600); err == nil {
		if _, err = io.Copy(out, in); err == nil {
			err = out.Sync()
		}
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out.Name())
		return "", err
	}
	return out.Name(), nil
}

// storeFlags is the flag set of backup, restore and compact: --data, and
// a usage line of the command's own.
func storeFlags(name, usage string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./postern-data", "the relay's data directory")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	return fs, data
}

const compactUsage = `usage: postern-relay compact --data DIR

Rewrites DIR/relay.db without its free pages, giving back to the file
system the space that acknowledged and expired envelopes took (the file
never shrinks by itself). Run it with the relay stopped: it needs no
other downtime. The database is checked first; the new file is checked
and compared record by record before it replaces the old one, which is
kept as relay.db.before-compact (delete it once the relay runs well).

`

// compactCmd runs `postern-relay compact --data DIR`.
func compactCmd(args []string, stdout, stderr io.Writer) error {
	fs, data := storeFlags("compact", compactUsage, stderr)
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return &usageError{msg: "compact takes no arguments", hint: "postern-relay compact --data DIR (with the relay stopped)"}
	}
	if err := relayRunning(*data); err != nil {
		return err
	}
	db := filepath.Join(*data, relay.DBFile)
	if _, err := os.Stat(db); err != nil {
		return &usageError{msg: fmt.Sprintf("no relay data at %s", db), hint: "pass --data DIR (or set POSTERN_RELAY_DATA) to the relay's data directory"}
	}
	res, err := bboltstore.CompactFile(db)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "compacted %s: %d bytes, was %d\n", db, res.After, res.Before)
	fmt.Fprintf(stdout, "the previous file is kept as %s; delete it once the relay runs well\n", res.Kept)
	return nil
}
