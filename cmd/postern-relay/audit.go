package main

// The audit subcommands:
//
//	postern-relay audit verify [--data DIR | --file BUNDLE] [--key-fingerprint HEX]
//	postern-relay audit export [--data DIR] [--out FILE]

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/relay/audit"
)

func auditVerify(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./postern-data", "data directory holding audit.log, audit.head and relay-key.pub")
	file := fs.String("file", "", "verify an export bundle instead of a data directory")
	pin := fs.String("key-fingerprint", "", "the relay key's fingerprint (64 hex digits) obtained out of band; heads must be signed by it")
	if err := parse(fs, args); err != nil {
		return err
	}
	var pub *keys.SigningPublicKey
	var err error
	var rep audit.Report
	if *file != "" {
		var b []byte
		if b, err = os.ReadFile(*file); err != nil {
			return err
		}
		if pub, err = bundleKey(b, *pin); err != nil {
			return err
		}
		rep, err = audit.VerifyBundle(bytes.NewReader(b), pub)
	} else {
		pub, err = audit.ReadPublicKey(filepath.Join(*data, audit.PublicKeyFile))
		if errors.Is(err, os.ErrNotExist) {
			return &usageError{msg: fmt.Sprintf("no relay key at %s", filepath.Join(*data, audit.PublicKeyFile)),
				hint: "pass --data DIR (or set POSTERN_RELAY_DATA) to the relay's data directory; the relay creates its key and audit log on first start"}
		}
		if err != nil {
			return fmt.Errorf("relay public key: %v", err)
		}
		if err = checkPin(pub, *pin); err != nil {
			return err
		}
		rep, err = audit.VerifyDir(*data, pub)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "audit log ok: %d entries, %d signed heads", rep.Entries, rep.Heads)
	if rep.Unsigned > 0 {
		fmt.Fprintf(stdout, "; the last %d entries are chained but not yet signed (the relay signs a head every %d entries and when it stops)", rep.Unsigned, audit.DefaultHeadEvery)
	}
	fmt.Fprintf(stdout, "\nrelay key fingerprint: %s\n", hex.EncodeToString(rep.Fingerprint[:]))
	if *pin == "" {
		fmt.Fprintln(stdout, "(compare it with the fingerprint you obtained from the operator, or pass --key-fingerprint)")
	}
	return nil
}

// bundleKey returns the key to verify a bundle with: its own, which must
// match pin if one is given.
func bundleKey(b []byte, pin string) (*keys.SigningPublicKey, error) {
	var bundle struct {
		PublicKey string `json:"public_key"`
	}
	if err := json.Unmarshal(b, &bundle); err != nil {
		return nil, fmt.Errorf("%w: %v", audit.ErrBundle, err)
	}
	pub, err := audit.ParsePublicKey(bundle.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", audit.ErrBundle, err)
	}
	return pub, checkPin(pub, pin)
}

func checkPin(pub *keys.SigningPublicKey, pin string) error {
	if pin == "" {
		return nil
	}
	fp := pub.Fingerprint()
	got := hex.EncodeToString(fp[:])
	if strings.ToLower(strings.TrimSpace(pin)) != got {
		return &usageError{msg: fmt.Sprintf("audit log: signed with relay key %s, not the key given with --key-fingerprint", got),
			hint: "the log or its key was replaced, or the fingerprint is wrong"}
	}
	return nil
}

func auditExport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./postern-data", "data directory holding audit.log and relay-key.pub")
	out := fs.String("out", "", "write the bundle to this file (default: standard output)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := audit.Export(*data, &buf); err != nil {
		return err
	}
	if *out == "" {
		_, err := stdout.Write(buf.Bytes())
		return err
	}
	return os.WriteFile(*out, buf.Bytes(), 0o644)
}

// auditOfflineInvites records invite codes made while no relay runs (the
// relay records its own).
func auditOfflineInvites(dir string, n int, ttl time.Duration, account string) error {
	l, err := audit.Open(dir, nil)
	if err != nil {
		return err
	}
	f := audit.Fields{"count": n, "ttl_seconds": int64(ttl / time.Second), "via": "offline"}
	if account != "" {
		f["account"] = account
	}
	// The operator is this process's user (the relay's admin entries take
	// it from the admin socket's peer credentials).
	if uid := os.Getuid(); uid >= 0 {
		f["os_uid"] = strconv.Itoa(uid)
	}
	if u, err := user.Current(); err == nil && u.Username != "" && len(u.Username) <= 64 {
		f["os_user"] = u.Username
	}
	err = l.Append(audit.EventInvitesCreated, f)
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	return err
}
