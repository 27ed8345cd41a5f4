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

// backupCmd runs `postern-relay backup FILE [--data DIR]`: through the
// admin socket when a relay is serving (a consistent online copy), else
// straight from the closed database file.
func backupCmd(args []string, stdout, stderr io.Writer) error {
	fs, data := adminFlags("backup", stderr)
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return &usageError{msg: "backup needs one FILE", hint: "postern-relay backup FILE [--data DIR]"}
	}
	dest, err := filepath.Abs(pos[0])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, err = relay.Admin(ctx, *data, relay.AdminRequest{Op: "backup", Path: dest})
	if errors.Is(err, relay.ErrNoAdminSocket) {
		db := filepath.Join(*data, relay.DBFile)
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

// restoreCmd runs `postern-relay restore FILE --data DIR`: with no relay
// running, it checks FILE (bbolt's consistency check, a schema this relay
// reads) and atomically replaces DIR/relay.db with a copy of it, keeping
// the old database as relay.db.before-restore.
func restoreCmd(args []string, stdout, stderr io.Writer) error {
	fs, data := adminFlags("restore", stderr)
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
