package e2e

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/client"
	"github.com/postern/postern/relay/relaytest"
)

// link makes a new device named name of p's person in a home of its own.
func link(t *testing.T, ctx context.Context, p *person, name string) *person {
	t.Helper()
	home := filepath.Join(t.TempDir(), name)
	codes := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		_, err := p.c.LinkDevice(ctx, &client.LinkOptions{Show: func(code string) { codes <- code }})
		done <- err
	}()
	var code string
	select {
	case code = <-codes:
	case err := <-done:
		t.Fatalf("LinkDevice: %v", err)
	}
	c, err := client.LinkWith(ctx, home, pass, code, name, opts())
	if err != nil {
		t.Fatalf("LinkWith %s: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := <-done; err != nil {
		t.Fatalf("LinkDevice: %v", err)
	}
	return &person{home: home, c: c}
}

func syncEach(t *testing.T, ctx context.Context, rounds int, ps ...*person) {
	t.Helper()
	for range rounds {
		for _, p := range ps {
			if _, err := p.c.Sync(ctx); err != nil {
				t.Fatalf("sync: %v", err)
			}
		}
	}
}

// count is how many stored messages of p hold text.
func count(t *testing.T, p *person, text string, outgoing bool) int {
	t.Helper()
	ms, err := p.c.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range ms {
		if m.Text == text && m.Outgoing == outgoing {
			n++
		}
	}
	return n
}

// TestPersonWithThreeDevicesOverTwoRelays: alice, on relay A, links two
// more devices; bob is on relay B. A message of bob's reaches each of
// alice's devices once; one sent from one of alice's devices reaches bob
// and shows on her other two; revoking a device from another one cuts it
// off at once and it deletes itself; the relays never see a device name or
// a message.
func TestPersonWithThreeDevicesOverTwoRelays(t *testing.T) {
	ctx := ctxT(t)
	var logsA, logsB syncBuffer
	srvA := relaytest.New(t, &relaytest.Options{Logger: slog.New(slog.NewJSONHandler(&logsA, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	srvB := relaytest.New(t, &relaytest.Options{Logger: slog.New(slog.NewJSONHandler(&logsB, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	alice := newPerson(t, ctx, srvA.URL, "Alice")
	bob := newPerson(t, ctx, srvB.URL, "Bob")
	connect(t, ctx, alice, bob, "Alice", "Bob")
	syncEach(t, ctx, 2, bob, alice)
	office := link(t, ctx, alice, "OFFICE-PC-SECRETNAME")
	laptop := link(t, ctx, office, "LAPTOP-SECRETNAME")
	syncEach(t, ctx, 3, office, laptop, alice, bob)

	const fromBob = "MARKER-bob-to-every-device"
	if _, err := bob.c.Send(ctx, "Alice", fromBob); err != nil {
		t.Fatal(err)
	}
	syncEach(t, ctx, 1, alice, office, laptop)
	for i, d := range []*person{alice, office, laptop} {
		if n := count(t, d, fromBob, false); n != 1 {
			t.Fatalf("alice's device %d (of alice, office, laptop) holds bob's message %d times", i, n)
		}
	}
	const fromOffice = "MARKER-from-the-office"
	if _, err := office.c.Send(ctx, "Bob", fromOffice); err != nil {
		t.Fatal(err)
	}
	syncEach(t, ctx, 1, bob, alice, laptop)
	if n := count(t, bob, fromOffice, false); n != 1 {
		t.Fatalf("bob holds the office's message %d times", n)
	}
	for _, d := range []*person{alice, laptop} {
		if n := count(t, d, fromOffice, true); n != 1 {
			t.Fatalf("another device of alice's holds her sent message %d times", n)
		}
	}

	// The laptop revokes the office; the office is cut off at once and
	// deletes itself when its receive loop is refused.
	if _, err := laptop.c.RevokeDevice(ctx, "OFFICE-PC-SECRETNAME"); err != nil {
		t.Fatal(err)
	}
	if _, err := office.c.Sync(ctx); !errors.Is(err, client.ErrDeviceRevoked) {
		t.Fatalf("the revoked office's sync: %v", err)
	}
	if _, err := os.Stat(filepath.Join(office.home, client.KeyFileName)); !os.IsNotExist(err) {
		t.Fatalf("the revoked office kept its key file: %v", err)
	}
	syncEach(t, ctx, 1, bob)
	const after = "MARKER-after-the-revoke"
	if _, err := bob.c.Send(ctx, "Alice", after); err != nil {
		t.Fatal(err)
	}
	syncEach(t, ctx, 1, alice, laptop)
	for _, d := range []*person{alice, laptop} {
		if n := count(t, d, after, false); n != 1 {
			t.Fatalf("a device of alice's holds bob's later message %d times", n)
		}
	}

	// Neither relay saw a device name or a message.
	srvA.Close()
	srvB.Close()
	secrets := []string{"OFFICE-PC-SECRETNAME", "LAPTOP-SECRETNAME", fromBob, fromOffice, after}
	for _, srv := range []*relaytest.Server{srvA, srvB} {
		err := filepath.WalkDir(srv.DataDir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Type()&os.ModeSocket != 0 {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, s := range secrets {
				if bytes.Contains(b, []byte(s)) || bytes.Contains(b, []byte(strings.ToLower(s))) {
					t.Errorf("%s holds %q", path, s)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, logs := range []*syncBuffer{&logsA, &logsB} {
		for _, s := range secrets {
			if bytes.Contains(logs.Bytes(), []byte(s)) {
				t.Errorf("a relay logged %q", s)
			}
		}
	}
}
