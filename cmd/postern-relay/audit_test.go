package main

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/audit"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestAuditCLI(t *testing.T) {
	dir := t.TempDir()
	r, err := relay.New(relay.Config{DataDir: dir, Store: testStore(t, dir), PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	// Offline invite codes are audited too.
	if code, _, stderr := runCLI(t, "invite", "create", "--data", dir, "--count", "2"); code != 0 {
		t.Fatalf("invite create: %s", stderr)
	}
	b, _ := os.ReadFile(filepath.Join(dir, audit.LogFile))
	if !regexp.MustCompile(`"event":"invite.created","fields":\{"count":2,("os_[a-z]+":"[^"]*",)*"ttl_seconds":259200,"via":"offline"\}`).Match(b) {
		t.Errorf("no offline invite entry:\n%s", b)
	}

	code, stdout, stderr := runCLI(t, "audit", "verify", "--data", dir)
	if code != 0 || !strings.HasPrefix(stdout, "audit log ok: 6 entries, 2 signed heads\n") {
		t.Fatalf("verify: %d\n%s%s", code, stdout, stderr)
	}
	pub, _ := audit.ReadPublicKey(filepath.Join(dir, audit.PublicKeyFile))
	f := pub.Fingerprint()
	pin := hex.EncodeToString(f[:])

	bundle := filepath.Join(t.TempDir(), "audit.json")
	if code, _, stderr := runCLI(t, "audit", "export", "--data", dir, "--out", bundle); code != 0 {
		t.Fatalf("export: %s", stderr)
	}
	if code, stdout, stderr := runCLI(t, "audit", "verify", "--file", bundle, "--key-fingerprint", pin); code != 0 || !strings.Contains(stdout, pin) {
		t.Fatalf("verify bundle: %d\n%s%s", code, stdout, stderr)
	}
	wrong := strings.Repeat("0", 64)
	if code, _, stderr := runCLI(t, "audit", "verify", "--file", bundle, "--key-fingerprint", wrong); code != 1 || !strings.Contains(stderr, "not the key given with --key-fingerprint") {
		t.Fatalf("wrong pin: %d %s", code, stderr)
	}

	// Edit entry 2 (relay.start's enrolment policy).
	lines := bytes.Split(b, []byte{'\n'})
	lines[1] = bytes.Replace(lines[1], []byte(`"enrollment":"open"`), []byte(`"enrollment":"invite"`), 1)
	os.WriteFile(filepath.Join(dir, audit.LogFile), bytes.Join(lines, []byte{'\n'}), 0o600)
	code, _, stderr = runCLI(t, "audit", "verify", "--data", dir)
	if want := "postern-relay: error: audit log: entry 2 (line 2) was edited"; code != 1 || !strings.HasPrefix(stderr, want) {
		t.Fatalf("edited log: %d %q, want %q", code, stderr, want)
	}

	if code, _, stderr := runCLI(t, "audit", "verify", "--data", t.TempDir()); code != 1 || !strings.Contains(stderr, "hint: pass --data DIR") {
		t.Fatalf("empty dir: %d %s", code, stderr)
	}
	if code, _, _ := runCLI(t, "audit", "frobnicate"); code != 1 {
		t.Fatal("unknown audit command accepted")
	}
}
