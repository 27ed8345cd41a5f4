package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/audit"
)

// uploadBlob creates and uploads a blob of n chunks of random bytes.
func uploadBlob(t *testing.T, ctx context.Context, c *wsClient, addr string, chunks int) (protocol.BlobID, []byte) {
	t.Helper()
	body := make([]byte, chunks*protocol.BlobCipherChunkSize)
	rand.Read(body)
	f, err := c.do(ctx, &protocol.CreateBlob{Size: uint64(len(body))})
	if err != nil {
		t.Fatal(err)
	}
	bc := f.(*protocol.BlobCreated)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+addr+protocol.BlobPath+bc.Blob.String(), bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+hex.EncodeToString(bc.Token[:]))
	req.Header.Set(protocol.HTTPHeaderOffset, "0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("upload: %s", resp.Status)
	}
	return bc.Blob, body
}

// TestBackupArchiveDuringBurst: an archive streamed to standard output
// while senders keep sending, restored into an empty directory elsewhere,
// gives back the same relay: the same key fingerprint, an audit log that
// verifies against it, every envelope whose Sent arrived before the backup
// began, and every blob.
func TestBackupArchiveDuringBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the relay binary")
	}
	bin := buildRelay(t)
	addr, data := freeAddr(t), t.TempDir()
	proc := startRelay(t, bin, addr, data)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // hang guard
	defer cancel()

	own, dev, mb, tok := enrolOwner(t, ctx, addr)
	blobs := map[protocol.BlobID][]byte{}
	for _, n := range []int{1, 3} {
		id, b := uploadBlob(t, ctx, own, addr, n)
		blobs[id] = b
	}

	// The burst: senders record each envelope whose Sent they received.
	var mu sync.Mutex
	acked := map[protocol.EnvelopeID]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	env := make([]byte, 1024)
	env[0], env[1] = protocol.Version, 1
	for range 4 {
		wg.Go(func() {
			c, err := dialRelay(ctx, addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.ws.CloseNow()
			for {
				select {
				case <-stop:
					return
				default:
				}
				f, err := c.do(ctx, &protocol.Send{Mailbox: mb, Capability: tok, Envelope: env})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[f.(*protocol.Sent).Envelope] = true
				mu.Unlock()
			}
		})
	}
	for { // let the burst run
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	before := make([]protocol.EnvelopeID, 0, len(acked))
	for id := range acked {
		before = append(before, id)
	}
	mu.Unlock()
	archive := filepath.Join(t.TempDir(), "relay.tar")
	out, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, "backup", "--out", "-", "--data", data)
	cmd.Stdout = out
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("backup --out -: %v\n%s", err, stderr.String())
	}
	out.Close()
	close(stop)
	wg.Wait()
	mu.Lock()
	t.Logf("%d sends acknowledged before the backup began, %d by the end of the burst", len(before), len(acked))
	mu.Unlock()
	pubBefore, err := audit.ReadPublicKey(filepath.Join(data, audit.PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	fp := pubBefore.Fingerprint()
	proc.Process.Signal(syscall.SIGTERM)
	proc.Wait()

	// Restore on "a new disk": an empty directory on another path.
	restored := filepath.Join(t.TempDir(), "new-disk", "postern-relay")
	o, err := exec.CommandContext(ctx, bin, "restore", archive, "--data", restored).CombinedOutput()
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, o)
	}
	if !strings.Contains(string(o), hex.EncodeToString(fp[:])) {
		t.Errorf("restore does not print the key fingerprint:\n%s", o)
	}
	o, err = exec.CommandContext(ctx, bin, "audit", "verify", "--data", restored, "--key-fingerprint", hex.EncodeToString(fp[:])).CombinedOutput()
	if err != nil {
		t.Fatalf("audit verify against the old key: %v\n%s", err, o)
	}
	// Into an existing empty directory: the same files.
	empty := t.TempDir()
	if o, err := exec.CommandContext(ctx, bin, "restore", archive, "--data", empty).CombinedOutput(); err != nil {
		t.Fatalf("restore into an empty directory: %v\n%s", err, o)
	}
	// The log key comes back too: account IDs in the log stay the same.
	if x, err := os.ReadFile(filepath.Join(data, relay.LogKeyFile)); err == nil {
		y, err := os.ReadFile(filepath.Join(restored, relay.LogKeyFile))
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("%s not restored: %v", relay.LogKeyFile, err)
		}
	}
	for _, n := range []string{"relay.db", audit.KeyFile, audit.LogFile} {
		x, _ := os.ReadFile(filepath.Join(restored, n))
		y, err := os.ReadFile(filepath.Join(empty, n))
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two restores: %v", n, err)
		}
	}
	if fi, err := os.Stat(empty); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("restored directory: %v, %v", fi, err)
	}
	// A restore into a directory that is not empty is refused.
	if o, err := exec.CommandContext(ctx, bin, "restore", archive, "--data", restored).CombinedOutput(); err == nil {
		t.Errorf("restore over existing data: %s", o)
	}

	addr2 := freeAddr(t)
	startRelay(t, bin, addr2, restored)
	c, err := dialRelay(ctx, addr2)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.authenticate(ctx, dev, false); err != nil {
		t.Fatalf("the restored relay does not know the device: %v", err)
	}
	if _, err := c.do(ctx, &protocol.Subscribe{Mailbox: mb}); err != nil {
		t.Fatal(err)
	}
	got := map[protocol.EnvelopeID]bool{}
	var batch []protocol.EnvelopeID
	for drained := false; !drained; {
		var f protocol.Frame
		if len(c.pushes) > 0 {
			f, c.pushes = c.pushes[0], c.pushes[1:]
		} else if _, f, err = c.read(ctx); err != nil {
			t.Fatal(err)
		}
		switch f := f.(type) {
		case *protocol.Deliver:
			got[f.ID] = true
			batch = append(batch, f.ID)
		case *protocol.Drained:
			drained = true
		}
		if len(batch) == 128 || (drained && len(batch) > 0) {
			if _, err := c.do(ctx, &protocol.Ack{Mailbox: mb, IDs: batch}); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	missing := 0
	for _, id := range before {
		if !got[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d envelopes acknowledged before the backup are missing after restore", missing, len(before))
	}
	for id, want := range blobs {
		resp, err := http.Get("http://" + addr2 + protocol.BlobPath + id.String())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(b, want) {
			t.Errorf("blob %s after restore: %s, %d bytes (want %d)", id.Short(), resp.Status, len(b), len(want))
		}
	}

	// A damaged archive is refused, nothing written.
	ab, _ := os.ReadFile(archive)
	for _, cut := range []int{len(ab) / 3, len(ab) - 2048} {
		bad := filepath.Join(t.TempDir(), "cut-"+strconv.Itoa(cut)+".tar")
		os.WriteFile(bad, ab[:cut], 0o600)
		dir := filepath.Join(t.TempDir(), "empty")
		o, err := exec.CommandContext(ctx, bin, "restore", bad, "--data", dir).CombinedOutput()
		if exitStatus(err) != exitDamaged || !strings.Contains(string(o), bad) {
			t.Errorf("truncated archive: %v\n%s", err, o)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("a refused restore left %s behind", dir)
		}
	}
}

// TestBackupArchiveOffline: with no relay running, backup reads the
// closed database (and says its schema in the manifest); restore puts the
// same database back into an empty directory.
func TestBackupArchiveOffline(t *testing.T) {
	data := t.TempDir()
	fillStore(t, data, 20)
	arch := filepath.Join(t.TempDir(), "b.tar")
	if out, err := runCmd(t, "backup", "--out", arch, "--data", data); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if ok, err := isArchive(arch); !ok || err != nil {
		t.Fatalf("not an archive: %v", err)
	}
	dest := filepath.Join(t.TempDir(), "restored")
	if out, err := runCmd(t, "restore", arch, "--data", dest); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	x, _ := os.ReadFile(filepath.Join(data, "relay.db"))
	y, err := os.ReadFile(filepath.Join(dest, "relay.db"))
	if err != nil || len(y) == 0 {
		t.Fatalf("restored database: %v", err)
	}
	// The copy holds the pages in use only; the records are the same.
	if len(y) > len(x) {
		t.Errorf("restored database %d bytes, original %d", len(y), len(x))
	}
	if entries, _ := os.ReadDir(dest); len(entries) != 1 {
		t.Errorf("restored directory holds %d entries, want relay.db only (the source had no key, log or blobs)", len(entries))
	}
}
