package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/relay/relaytest"
)

// smallFS mounts a tmpfs of size bytes on a new directory for the test,
// or skips the test saying why it cannot.
func smallFS(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+strconv.Itoa(size)+",mode=0700"); err != nil {
		t.Skipf("cannot mount a %d-byte tmpfs to fill (it needs root or CAP_SYS_ADMIN): %v", size, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes to dir until its file system is full, and returns a func
// that frees the space again.
func fill(t *testing.T, dir string) (free func()) {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, n := range []int{1 << 16, 4096, 1} {
		buf := make([]byte, n)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
	return func() {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}

// cliRunner runs the CLI in process with a fixed environment, and with
// kdf, if set, as the cost of the key files init makes.
type cliRunner struct {
	t   *testing.T
	env map[string]string
	kdf *identity.KDFParams
}

func (r *cliRunner) run(stdin string, args ...string) (code int, stdout, stderr string) {
	r.t.Helper()
	return r.runCtx(context.Background(), stdin, args...)
}

func (r *cliRunner) runCtx(ctx context.Context, stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	c := &cli{
		stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb,
		lookupEnv:  func(k string) (string, bool) { v, ok := r.env[k]; return v, ok },
		policyPath: filepath.Join(r.t.TempDir(), "no-policy"),
		kdf:        r.kdf,
	}
	code = c.main(ctx, args)
	return code, out.String(), errb.String()
}

func (r *cliRunner) must(stdin string, args ...string) string {
	r.t.Helper()
	code, out, errs := r.run(stdin, args...)
	if code != 0 {
		r.t.Fatalf("postern %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

var syncCount = regexp.MustCompile(`(?m)^(\d+) new messages?( stored before the failure)?$`)

// A full disk under the home: sync, send and save each fail with a
// non-zero exit and say the disk is full; nothing is lost (what was not
// stored stays on the relay), and each works again once there is space.
func TestDiskFull(t *testing.T) {
	small := smallFS(t, 6<<20)
	srv := relaytest.New(t, nil)
	// A low key-file cost: this test is about the disk, and runs about a
	// hundred commands, each unlocking the key file.
	r := &cliRunner{t: t, env: map[string]string{"POSTERN_PASSPHRASE": "plum harbour lantern tuesday"},
		kdf: &identity.KDFParams{Time: 1, MemoryKiB: 8 << 10, Threads: 1}}
	alice := filepath.Join(small, "alice") // on the small file system
	bob := filepath.Join(t.TempDir(), "bob")
	r.must("", "--home", alice, "init", "--relay", srv.URL, "--name", "Alice")
	r.must("", "--home", bob, "init", "--relay", srv.URL, "--name", "Bob")
	code := r.must("", "--home", alice, "invite")
	r.must(code, "--home", bob, "accept", "-", "--as", "Alice")
	r.must("", "--home", alice, "sync")

	// sync: more than fits in the store file's free pages.
	const n = 24
	for i := range n {
		r.must(strconv.Itoa(i)+strings.Repeat(" filler text", 1300), "--home", bob, "send", "Alice", "-")
	}
	free := fill(t, small)
	got := 0
	code2, out, errs := r.run("", "--home", alice, "sync")
	if code2 != 1 || !strings.Contains(errs, "postern: error: the disk of this device is full") || regexp.MustCompile(`(?m)^0 new messages$`).MatchString(out) {
		t.Fatalf("sync on a full disk: exit %d\nstdout %q\nstderr %q", code2, out, errs)
	}
	if m := syncCount.FindStringSubmatch(out); m != nil {
		got, _ = strconv.Atoi(m[1])
	}
	t.Logf("sync on a full disk: %q %q", out, errs)
	free()
	out = r.must("", "--home", alice, "sync")
	m := syncCount.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("sync: %q", out)
	}
	more, _ := strconv.Atoi(m[1])
	if got+more != n {
		t.Fatalf("%d messages stored before the failure and %d after; %d were sent", got, more, n)
	}
	if k := incoming(t, r.must("", "--home", alice, "inbox", "--json")); k != n {
		t.Fatalf("inbox holds %d incoming messages, want %d", k, n)
	}

	// listen: it stops with the error instead of going on without the
	// messages it could not store.
	free = fill(t, small)
	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	lctx, stop := context.WithTimeout(context.Background(), 2*time.Minute) // a hang guard
	defer stop()
	go func() {
		code, out, errs := r.runCtx(lctx, "", "--home", alice, "listen")
		done <- result{code, out, errs}
	}()
	for i := range n {
		r.must(strconv.Itoa(i)+strings.Repeat(" listen filler", 1100), "--home", bob, "send", "Alice", "-")
	}
	res := <-done
	if lctx.Err() != nil || res.code != 1 || !strings.Contains(res.err, "postern: error: the disk of this device is full") {
		t.Fatalf("listen on a full disk: exit %d (%v)\nstdout %q\nstderr %q", res.code, lctx.Err(), res.out, res.err)
	}
	printed := strings.Count(res.out, "\n")
	free()
	out = r.must("", "--home", alice, "sync")
	if m := syncCount.FindStringSubmatch(out); m == nil || m[1] != strconv.Itoa(n-printed) {
		t.Fatalf("listen printed %d of %d messages; the next sync says %q", printed, n, out)
	}

	// send: the outgoing copy (or the session state before it) cannot be
	// stored. The store file may have free pages left, so the first sends
	// can succeed; each says truly whether the message went.
	free = fill(t, small)
	sent, failed := 0, false
	for i := 0; i < 40 && !failed; i++ {
		code2, out, errs = r.run(strconv.Itoa(i)+strings.Repeat(" a reply that needs space", 600), "--home", alice, "send", "Bob", "-")
		switch {
		case code2 == 0 && strings.HasPrefix(out, "Sent to Bob ("):
			sent++
		case code2 == 1 && out == "" && strings.Contains(errs, "but this device could not keep a copy: the disk is full"):
			t.Logf("send on a full disk: %q", errs)
			sent++ // delivered, and said so
			failed = true
		case code2 == 1 && out == "" && strings.HasPrefix(errs, "postern: error: the disk of this device is full"):
			t.Logf("send on a full disk: %q", errs)
			failed = true
		default:
			t.Fatalf("send on a full disk: exit %d\nstdout %q\nstderr %q", code2, out, errs)
		}
	}
	if !failed {
		t.Fatal("40 sends of 15 KiB on a full disk all succeeded")
	}
	free()
	if out := r.must("", "--home", bob, "sync"); out != fmt.Sprintf("%d new message%s\n", sent, map[bool]string{true: "", false: "s"}[sent == 1]) {
		t.Fatalf("alice's sends said %d messages went; bob's sync says %q", sent, out)
	}
	r.must("", "--home", alice, "send", "Bob", "sent once there is space")

	// save: an attachment on a full disk is not "tampered with".
	file := filepath.Join(t.TempDir(), "scan.bin")
	data := make([]byte, 1<<20)
	rand.Read(data)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r.must("", "--home", bob, "send", "Alice", "--attach", file, "the scan")
	r.must("", "--home", alice, "sync")
	id := lastID(t, r.must("", "--home", alice, "inbox", "--json"))
	downloads := filepath.Join(small, "downloads")
	if err := os.Mkdir(downloads, 0o700); err != nil {
		t.Fatal(err)
	}
	free = fill(t, small)
	code2, out, errs = r.run("", "--home", alice, "save", id, "--out", downloads)
	if code2 != 1 || !strings.Contains(errs, "postern: error: the disk is full: the file could not be saved in "+downloads) || strings.Contains(errs, "tamper") || strings.Contains(errs, "damaged") {
		t.Fatalf("save on a full disk: exit %d\nstdout %q\nstderr %q", code2, out, errs)
	}
	if ents, _ := os.ReadDir(downloads); len(ents) != 0 {
		t.Fatalf("a failed save left %v", ents)
	}
	free()
	r.must("", "--home", alice, "save", id, "--out", downloads)
	saved, err := os.ReadFile(filepath.Join(downloads, "scan.bin"))
	if err != nil || sha256.Sum256(saved) != sha256.Sum256(data) {
		t.Fatalf("saved file differs (%v)", err)
	}
}

func incoming(t *testing.T, js string) int {
	t.Helper()
	var ms []jsonMessage
	if err := json.Unmarshal([]byte(js), &ms); err != nil {
		t.Fatal(err)
	}
	k := 0
	for _, m := range ms {
		if !m.Outgoing && !m.Notice {
			k++
		}
	}
	return k
}

func lastID(t *testing.T, js string) string {
	t.Helper()
	var ms []jsonMessage
	if err := json.Unmarshal([]byte(js), &ms); err != nil || len(ms) == 0 {
		t.Fatalf("inbox: %v", err)
	}
	return ms[len(ms)-1].ID
}
