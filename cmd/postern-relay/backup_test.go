package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/store"
	"github.com/postern/postern/relay/store/bboltstore"
)

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := dispatch(args, &out, &errb)
	return out.String() + errb.String(), err
}

// TestBackupRestoreRoundTrip: offline backup, a change, restore: the
// change is gone, the old file is kept as relay.db.before-restore, and a
// second restore refuses to overwrite it.
func TestBackupRestoreRoundTrip(t *testing.T) {
	data := t.TempDir()
	db := filepath.Join(data, relay.DBFile)
	st, err := bboltstore.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	codes, err := relay.CreateInvites(ctx, st, 1, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Refused while the store is open (the bbolt lock is held).
	if _, err := runCmd(t, "restore", db, "--data", data); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("restore while locked = %v", err)
	}
	st.Close()

	bak := filepath.Join(t.TempDir(), "b.db")
	if out, err := runCmd(t, "backup", "--db-only", bak, "--data", data); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if fi, err := os.Stat(bak); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	// Change the live database: revoke the invite.
	st, _ = bboltstore.Open(db, nil)
	if _, err := st.RevokeInvite(ctx, relay.InviteHash(codes[0])); err != nil {
		t.Fatal(err)
	}
	st.Close()

	if out, err := runCmd(t, "restore", bak, "--data", data); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if _, err := os.Stat(db + ".before-restore"); err != nil {
		t.Error(err)
	}
	st, err = bboltstore.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.RevokeInvite(ctx, relay.InviteHash(codes[0])); err != nil {
		t.Errorf("invite not back after restore: %v", err)
	}
	st.Close()
	if _, err := runCmd(t, "restore", bak, "--data", data); err == nil {
		t.Error("second restore overwrote relay.db.before-restore")
	}

	// A damaged backup is refused before anything is replaced.
	os.Remove(db + ".before-restore")
	bad := filepath.Join(t.TempDir(), "bad.db")
	os.WriteFile(bad, bytes.Repeat([]byte{0xAB}, 64<<10), 0o600)
	if _, err := runCmd(t, "restore", bad, "--data", data); err == nil {
		t.Error("garbage backup restored")
	}
	if _, err := os.Stat(db + ".before-restore"); err == nil {
		t.Error("relay.db replaced by a garbage backup")
	}
}

// TestRestoreRefusedWhileServing: the admin socket answers, so restore
// refuses; backup goes through the running relay.
func TestRestoreRefusedWhileServing(t *testing.T) {
	data := t.TempDir()
	r, err := relay.New(relay.Config{DataDir: data, Store: testStore(t, data)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	l, err := relay.ListenAdmin(data)
	if err != nil {
		t.Fatal(err)
	}
	go r.ServeAdmin(l)
	bak := filepath.Join(t.TempDir(), "online.db")
	if out, err := runCmd(t, "backup", "--db-only", bak, "--data", data); err != nil {
		t.Fatalf("online backup: %v\n%s", err, out)
	}
	if err := bboltstore.Check(bak); err != nil {
		t.Error(err)
	}
	if _, err := runCmd(t, "restore", bak, "--data", data); err == nil || !strings.Contains(err.Error(), "serving") {
		t.Errorf("restore while serving = %v", err)
	}
}

// TestSystemdUnit lints docs/postern-relay.service for the hardening
// directives, and runs systemd-analyze verify when it is installed.
func TestSystemdUnit(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "postern-relay.service")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{
		"User=postern",
		"StateDirectory=postern-relay",
		"ExecStart=/usr/local/bin/postern-relay serve --config /etc/postern/relay.conf",
		"ExecReload=/bin/kill -HUP $MAINPID",
		"Restart=on-failure",
		"RestartPreventExitStatus=" + strconv.Itoa(exitDamaged),
		"LimitNOFILE=65536",
		"ProtectSystem=strict",
		"ProtectHome=true",
		"PrivateTmp=true",
		"NoNewPrivileges=true",
		"ProtectKernelTunables=true",
		"ProtectKernelModules=true",
		"ProtectControlGroups=true",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
		"CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE",
		"MemoryDenyWriteExecute=true",
		"LockPersonality=true",
		"SystemCallFilter=@system-service",
		"ReadWritePaths=/var/lib/postern-relay",
	} {
		if !lines[want] {
			t.Errorf("unit lacks %q", want)
		}
	}
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: directive lint only")
	}
	out, err := exec.Command(sa, "verify", path).CombinedOutput()
	// verify also complains that /usr/local/bin/postern-relay is missing
	// on a build machine; only unknown or bad directives fail the test.
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "Unknown key") || strings.Contains(l, "Failed to parse") || strings.Contains(l, "Invalid") {
			t.Errorf("systemd-analyze: %s", l)
		}
	}
	t.Logf("systemd-analyze verify: %v\n%s", err, out)
}

// TestSystemdUnitKeepsConfigData: the shipped unit's command line and
// environment leave the data directory to the config file. The unit's
// ExecStart arguments, with its config file swapped for one that sets
// data, are checked with config check: the effective data directory is
// the file's.
func TestSystemdUnitKeepsConfigData(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "postern-relay.service"))
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			args = strings.Fields(v)[1:] // without the binary
		}
		if strings.HasPrefix(l, "Environment") && strings.Contains(l, "POSTERN_RELAY_") {
			t.Errorf("unit sets the relay's environment: %s", l)
		}
	}
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("unit ExecStart args %q", args)
	}
	dir := t.TempDir()
	want := filepath.Join(dir, "data-from-file")
	conf := filepath.Join(dir, "relay.conf")
	if err := os.WriteFile(conf, []byte("data = "+want+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	check := []string{"config", "check"}
	sawConfig := false
	for i := 1; i < len(args); i++ {
		if args[i] == "--config" && i+1 < len(args) {
			check = append(check, "--config", conf)
			i++
			sawConfig = true
			continue
		}
		check = append(check, args[i])
	}
	if !sawConfig {
		t.Fatal("unit passes no --config")
	}
	t.Setenv("POSTERN_RELAY_DATA", "") // unset below: only the unit's own settings count
	os.Unsetenv("POSTERN_RELAY_DATA")
	out, err := runCmd(t, check...)
	if err != nil {
		t.Fatalf("config check %q: %v\n%s", check, err, out)
	}
	if !strings.Contains(out, "data = "+strconv.Quote(want)+"  # ") {
		t.Errorf("the unit overrides the config file's data:\n%s", out)
	}
}

// TestCompactCommand: compact shrinks a drained database, keeps what is
// queued and the old file, and refuses while the database is in use.
func TestCompactCommand(t *testing.T) {
	data := t.TempDir()
	db := filepath.Join(data, relay.DBFile)
	st, err := bboltstore.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dev, mb := protocol.DeviceID{7}, protocol.NewMailboxID()
	st.CreateMailbox(ctx, dev, mb)
	h := protocol.NewCapabilityToken().Hash()
	st.AddCapability(ctx, dev, mb, h)
	env := make([]byte, 16<<10)
	env[0], env[1] = protocol.Version, 1
	var ids []protocol.EnvelopeID
	for range 600 {
		e, err := st.Append(ctx, store.Envelope{Mailbox: mb, ID: protocol.NewEnvelopeID(), Received: time.Now(), Expires: time.Now().Add(time.Hour), Data: env}, h)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	if _, err := st.Ack(ctx, mb, ids[:590]); err != nil {
		t.Fatal(err)
	}
	if _, err := runCmd(t, "compact", "--data", data); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("compact while open = %v", err)
	}
	st.Close()
	fi, _ := os.Stat(db)
	out, err := runCmd(t, "compact", "--data", data)
	if err != nil {
		t.Fatalf("compact: %v\n%s", err, out)
	}
	fa, _ := os.Stat(db)
	t.Logf("%s", out)
	if fa.Size()*4 > fi.Size() {
		t.Errorf("relay.db %d bytes after compact, %d before", fa.Size(), fi.Size())
	}
	if _, err := os.Stat(db + bboltstore.CompactSuffix); err != nil {
		t.Errorf("old file not kept: %v", err)
	}
	st, err = bboltstore.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got, err := st.Range(ctx, mb, 0, 100); err != nil || len(got) != 10 || got[0].ID != ids[590] {
		t.Errorf("after compact: %d envelopes, %v", len(got), err)
	}
}
