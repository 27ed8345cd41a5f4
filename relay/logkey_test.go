package relay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/protocol"
)

// TestAccountLogIDKeyed: logs name an account by a keyed hash under a
// per-relay secret (DATA/log.key), not by a plain hash anyone can compute
// from a guessed label; the ID is stable across restarts of one relay and
// differs between relays; the label itself is never logged.
func TestAccountLogIDKeyed(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	open := func(dir string) *Relay {
		t.Helper()
		r, err := New(Config{DataDir: dir, Store: testStore(t, dir), PurgeInterval: -1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	r := open(dir)
	if _, err := r.CreateAccountInvites(context.Background(), 1, time.Hour, "dr.smith"); err != nil {
		t.Fatal(err)
	}
	id := r.accountLogID("dr.smith")
	plain := sha256.Sum256([]byte(protocol.LabelPrefix + "account-log" + "dr.smith"))
	if id == hex.EncodeToString(plain[:4]) {
		t.Fatal("the account ID is the plain, unkeyed hash of the label")
	}
	if !strings.Contains(logs.String(), "account="+id) || strings.Contains(logs.String(), "dr.smith") {
		t.Errorf("log:\n%s\nwant account=%s and no label", logs.String(), id)
	}
	fi, err := os.Stat(filepath.Join(dir, LogKeyFile))
	if err != nil || fi.Size() != logKeySize || fi.Mode().Perm() != 0o600 {
		t.Fatalf("log key file: %v, %v", fi, err)
	}
	r.Close()
	if again := open(dir).accountLogID("dr.smith"); again != id {
		t.Errorf("after a restart the ID is %s, was %s", again, id)
	}
	if other := open(t.TempDir()).accountLogID("dr.smith"); other == id {
		t.Error("two relays give the same ID: the key is not per relay")
	}

	// A damaged key file: a warning and a per-process key, no panic.
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, LogKeyFile), []byte("short"), 0o600)
	logs.Reset()
	if open(bad).accountLogID("dr.smith") == "" || !strings.Contains(logs.String(), "account log key unavailable") {
		t.Errorf("damaged key file: log:\n%s", logs.String())
	}
}
