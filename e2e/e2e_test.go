package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/client"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/relay/relaytest"
)

var pass = []byte("e2e passphrase")

// fastKDF keeps Argon2id cheap in tests; the default cost is tested in keys/identity.
func opts() *client.Options {
	return &client.Options{KDF: &identity.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

type person struct {
	home string
	c    *client.Client
}

func newPerson(t *testing.T, ctx context.Context, url, name string) *person {
	t.Helper()
	home := filepath.Join(t.TempDir(), name)
	c, err := client.Init(ctx, home, pass, url, name, opts())
	if err != nil {
		t.Fatalf("init %s: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	return &person{home: home, c: c}
}

func (p *person) redial(t *testing.T, ctx context.Context) {
	t.Helper()
	p.c.Close()
	c, err := client.Dial(ctx, p.home, pass, opts())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	p.c = c
}

// connect makes a contact of b for a (inviter) and of a for b, the way two
// people do it: a invites, b accepts, a syncs to learn of b.
func connect(t *testing.T, ctx context.Context, a, b *person, aName, bName string) {
	t.Helper()
	code, err := a.c.Invite(ctx)
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	if _, err := b.c.Accept(ctx, code, aName); err != nil {
		t.Fatalf("accept: %v", err)
	}
	if _, err := a.c.Sync(ctx); err != nil {
		t.Fatalf("sync after accept: %v", err)
	}
	cs, err := a.c.Contacts()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range cs {
		if c.Name == bName {
			found = true
		}
	}
	if !found {
		t.Fatalf("inviter does not see %q among contacts %v after sync", bName, cs)
	}
}

func texts(t *testing.T, c *client.Client, from string) []string {
	t.Helper()
	ms, err := c.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		if !m.Outgoing && m.From == from {
			out = append(out, m.Text)
		}
	}
	return out
}

func TestConversationBothWays(t *testing.T) {
	ctx := ctxT(t)
	srv := relaytest.New(t, nil)
	alice := newPerson(t, ctx, srv.URL, "Alice")
	bob := newPerson(t, ctx, srv.URL, "Bob")
	connect(t, ctx, alice, bob, "Alice", "Bob")

	if _, err := bob.c.Send(ctx, "Alice", "hello from bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := texts(t, alice.c, "Bob"); len(got) != 1 || got[0] != "hello from bob" {
		t.Fatalf("alice got %q", got)
	}
	if _, err := alice.c.Send(ctx, "Bob", "hello from alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := texts(t, bob.c, "Alice"); len(got) != 1 || got[0] != "hello from alice" {
		t.Fatalf("bob got %q", got)
	}
	// Safety numbers agree on both sides.
	ac, _ := alice.c.Contacts()
	bc, _ := bob.c.Contacts()
	if len(ac) != 1 || len(bc) != 1 || ac[0].SafetyNumber != bc[0].SafetyNumber || ac[0].SafetyNumber == "" {
		t.Fatalf("safety numbers differ: %+v vs %+v", ac, bc)
	}
}

func TestOfflineRecipientGetsMessagesOnReconnect(t *testing.T) {
	ctx := ctxT(t)
	srv := relaytest.New(t, nil)
	alice := newPerson(t, ctx, srv.URL, "Alice")
	bob := newPerson(t, ctx, srv.URL, "Bob")
	connect(t, ctx, alice, bob, "Alice", "Bob")

	alice.c.Close() // offline
	const n = 20
	for i := range n {
		if _, err := bob.c.Send(ctx, "Alice", fmt.Sprintf("queued %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	alice.redial(t, ctx)
	if _, err := alice.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got := texts(t, alice.c, "Bob")
	if len(got) != n {
		t.Fatalf("got %d messages after reconnect, want %d", len(got), n)
	}
	// A second sync finds nothing new: the relay copies were acknowledged.
	ms, err := alice.c.Sync(ctx)
	if err != nil || len(ms) != 0 {
		t.Fatalf("second sync: %d new, %v", len(ms), err)
	}
}

func TestRelayRestartBetweenSendAndReceive(t *testing.T) {
	ctx := ctxT(t)
	srv := relaytest.New(t, nil)
	alice := newPerson(t, ctx, srv.URL, "Alice")
	bob := newPerson(t, ctx, srv.URL, "Bob")
	connect(t, ctx, alice, bob, "Alice", "Bob")
	alice.c.Close()

	for i := range 5 {
		if _, err := bob.c.Send(ctx, "Alice", fmt.Sprintf("before restart %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	srv.Restart()
	alice.redial(t, ctx)
	if _, err := alice.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := texts(t, alice.c, "Bob"); len(got) != 5 {
		t.Fatalf("after relay restart got %d messages, want 5: %q", len(got), got)
	}
}

// syncBuffer is a concurrency-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

func TestRelayKeepsNoPlaintext(t *testing.T) {
	ctx := ctxT(t)
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := relaytest.New(t, &relaytest.Options{Logger: logger})
	alice := newPerson(t, ctx, srv.URL, "Alice-Plaintext-Name")
	bob := newPerson(t, ctx, srv.URL, "Bob-Plaintext-Name")
	connect(t, ctx, alice, bob, "Alice-Plaintext-Name", "Bob-Plaintext-Name")

	secrets := []string{"Alice-Plaintext-Name", "Bob-Plaintext-Name"}
	alice.c.Close() // keep Bob's messages queued on disk
	for i := range 10 {
		s := fmt.Sprintf("PLAINTEXT-MARKER-%d-the-patient-in-bed-%d", i, i*7)
		secrets = append(secrets, s)
		if _, err := bob.c.Send(ctx, "Alice-Plaintext-Name", s); err != nil {
			t.Fatal(err)
		}
	}
	srv.Close() // flush and release the database file
	var files [][]byte
	err := filepath.WalkDir(srv.DataDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&os.ModeSocket != 0 {
			return err
		}
		b, err := os.ReadFile(path)
		files = append(files, b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("relay data directory is empty")
	}
	for _, s := range secrets {
		for _, hay := range append(files, logs.Bytes()) {
			for _, form := range [][]byte{[]byte(s), []byte(strings.ToLower(s)), utf16(s)} {
				if bytes.Contains(hay, form) {
					t.Fatalf("relay data or logs contain plaintext %q", s)
				}
			}
		}
	}
	if len(logs.Bytes()) == 0 {
		t.Fatal("relay logged nothing: the log check would be vacuous")
	}
}

func utf16(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r), 0)
	}
	return b
}
