package main

// postern-relay kt verify [--data DIR] [--key-fingerprint HEX]
//
// Checks the key-transparency log offline (SPEC.md section 10, "Key
// transparency"): the database is opened read-only, so the relay must be
// stopped, or the command run on a copy (postern-relay backup).

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/audit"
	"github.com/postern/postern/relay/store/bboltstore"
)

func ktVerify(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kt verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./postern-data", "data directory holding relay.db and relay-key.pub (of a stopped relay, or a copy)")
	pin := fs.String("key-fingerprint", "", "the relay key's fingerprint (64 hex digits) obtained out of band; heads must be signed by it")
	if err := parse(fs, args); err != nil {
		return err
	}
	db := filepath.Join(*data, relay.DBFile)
	if _, err := os.Stat(db); err != nil {
		return &usageError{msg: fmt.Sprintf("no relay database at %s", db), hint: "pass --data DIR (or set POSTERN_RELAY_DATA) to the relay's data directory"}
	}
	pub, err := audit.ReadPublicKey(filepath.Join(*data, audit.PublicKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		return &usageError{msg: fmt.Sprintf("no relay key at %s", filepath.Join(*data, audit.PublicKeyFile)),
			hint: "the relay writes relay-key.pub beside its database on first start; copy it with the database"}
	}
	if err != nil {
		return fmt.Errorf("relay public key: %v", err)
	}
	if err := checkPin(pub, *pin); err != nil {
		return err
	}
	rep, err := bboltstore.VerifyKT(db, pub)
	if errors.Is(err, bboltstore.ErrKTMismatch) {
		return fmt.Errorf("transparency log does NOT verify: %v", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "transparency log ok: %d leaves, %d tree nodes, %d signed heads, %d device lists\n", rep.Size, rep.Nodes, rep.Heads, rep.Identities)
	if rep.Size > 0 {
		fmt.Fprintf(stdout, "newest head: %d leaves, root %s, signed %s\n", rep.Size, hex.EncodeToString(rep.Root[:]), rep.Newest.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(stdout, "relay key fingerprint: %s\n", rep.Key)
	if *pin == "" {
		fmt.Fprintln(stdout, "(compare it with the fingerprint you obtained from the operator, or pass --key-fingerprint)")
	}
	return nil
}
