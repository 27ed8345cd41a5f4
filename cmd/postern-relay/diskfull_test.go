package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
)

// mountTmpfs mounts a tmpfs of size bytes on a temporary directory, or
// skips the test saying why.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs for a full file system (needs root or CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

func readyz(addr string) (int, string) {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDiskFull runs the real relay on a small tmpfs: sends fill it until
// the relay refuses with CodeStorageFull and /readyz says not ready;
// acknowledgements still work; when space returns (the test deletes a
// ballast file), the relay is ready again by itself and takes sends.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the relay binary")
	}
	fsDir := mountTmpfs(t, "40m")
	bin := buildRelay(t)
	ballast := filepath.Join(fsDir, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 12<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(fsDir, "data")
	addr := freeAddr(t)
	startRelay(t, bin, addr, data)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // hang guard
	defer cancel()

	id, _ := identity.GenerateIdentity()
	dev, _ := identity.NewDevice(id)
	own, err := dialRelay(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := own.authenticate(ctx, dev, true); err != nil {
		t.Fatal(err)
	}
	var tok protocol.CapabilityToken
	var mbs []protocol.MailboxID
	newMailbox := func() protocol.MailboxID {
		f, err := own.do(ctx, &protocol.CreateMailbox{})
		if err != nil {
			t.Fatal(err)
		}
		mb := f.(*protocol.MailboxCreated).Mailbox
		if _, err := own.do(ctx, &protocol.AddCapability{Mailbox: mb, Hash: tok.Hash()}); err != nil {
			t.Fatal(err)
		}
		mbs = append(mbs, mb)
		return mb
	}
	tok = protocol.NewCapabilityToken()
	snd, err := dialRelay(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	env := make([]byte, protocol.MaxEnvelopeSize)
	env[0], env[1] = protocol.Version, 1
	mb := newMailbox()
	sent := map[protocol.MailboxID]int{}
	var full error
	for i := 0; i < 100000 && full == nil; i++ {
		if sent[mb] >= protocol.MaxQueueDepth {
			mb = newMailbox()
		}
		_, err := snd.do(ctx, &protocol.Send{Mailbox: mb, Capability: tok, Envelope: env})
		switch {
		case err == nil:
			sent[mb]++
		case protocol.IsCode(err, protocol.CodeStorageFull):
			full = err
		default:
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if full == nil {
		t.Fatal("the file system never filled")
	}
	total := 0
	for _, n := range sent {
		total += n
	}
	t.Logf("%d envelopes of %d bytes stored before: %v", total, len(env), full)
	if code, body := readyz(addr); code != http.StatusServiceUnavailable || !strings.Contains(body, "storage full") {
		t.Errorf("/readyz on a full disk = %d %q", code, body)
	}
	// A new attachment is refused the same way.
	if _, err := own.do(ctx, &protocol.CreateBlob{Size: protocol.BlobCipherChunkSize}); !protocol.IsCode(err, protocol.CodeStorageFull) {
		t.Errorf("CreateBlob while full: %v", err)
	}
	// Still full: a second send is refused the same way.
	if _, err := snd.do(ctx, &protocol.Send{Mailbox: mbs[0], Capability: tok, Envelope: env}); !protocol.IsCode(err, protocol.CodeStorageFull) {
		t.Errorf("send while full: %v", err)
	}

	// Acknowledgements work on the full disk.
	acked := 0
	for _, m := range mbs {
		if _, err := own.do(ctx, &protocol.Subscribe{Mailbox: m}); err != nil {
			t.Fatal(err)
		}
		var batch []protocol.EnvelopeID
		for drained := false; !drained; {
			var f protocol.Frame
			if len(own.pushes) > 0 {
				f, own.pushes = own.pushes[0], own.pushes[1:]
			} else if _, f, err = own.read(ctx); err != nil {
				t.Fatal(err)
			}
			switch f := f.(type) {
			case *protocol.Deliver:
				batch = append(batch, f.ID)
			case *protocol.Drained:
				drained = true
			}
			if len(batch) == 64 || (drained && len(batch) > 0) {
				if _, err := own.do(ctx, &protocol.Ack{Mailbox: m, IDs: batch}); err != nil {
					t.Fatalf("ack on a full disk: %v", err)
				}
				acked += len(batch)
				batch = nil
			}
		}
	}
	if acked != total {
		t.Errorf("acknowledged %d of %d envelopes", acked, total)
	}

	// Space returns: the relay recovers by itself.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	for {
		code, _ := readyz(addr)
		if code == http.StatusOK {
			break
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatal("the relay did not become ready after space returned")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := snd.do(ctx, &protocol.Send{Mailbox: mbs[0], Capability: tok, Envelope: env}); err != nil {
		t.Fatalf("send after recovery: %v", err)
	}
}
