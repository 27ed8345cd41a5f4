package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/relay/relaytest"
)

// postern backup on a full disk: exit status 1, a sentence that says so,
// and nothing left at the file's name or its .part.
func TestBackupDiskFull(t *testing.T) {
	small := smallFS(t, 1<<20)
	srv := relaytest.New(t, nil)
	r := &cliRunner{t: t, env: map[string]string{"POSTERN_PASSPHRASE": "plum harbour lantern tuesday"}}
	alice := filepath.Join(t.TempDir(), "alice")
	r.must("", "--home", alice, "init", "--relay", srv.URL, "--name", "Alice")
	free := fill(t, small)
	file := filepath.Join(small, "alice.backup")
	code, _, stderr := r.run("", "--home", alice, "backup", file)
	if code != 1 || !strings.Contains(stderr, "postern: error: the disk is full: the backup was not written, and nothing was left at "+file+"\n") {
		t.Fatalf("backup on a full disk: exit %d, stderr %q", code, stderr)
	}
	for _, p := range []string{file, file + ".part"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s: %v, want no file", p, err)
		}
	}
	free()
	out := r.must("", "--home", alice, "backup", file)
	if !strings.Contains(out, "Keep the recovery key apart from the file") {
		t.Fatalf("backup with room: %q", out)
	}
}
