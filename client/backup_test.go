package client

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/client/internal/backup"
	"github.com/postern/postern/relay/relaytest"
)

// backupFixture is alice with two contacts: bob (verified, a
// conversation with a subject, a reply, a file and a notice) and carol
// (blocked).
type backupFixture struct {
	*historyFixture
	srv   *relaytest.Server
	carol *Client
}

func newBackupFixture(t *testing.T) *backupFixture {
	t.Helper()
	ctx := testCtx(t)
	f := &backupFixture{historyFixture: newHistoryFixture(t)}
	f.srv = f.historyFixture.srv
	f.carol, _ = newTestClient(t, f.srv, "carol")
	code, err := f.alice.Invite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.carol.Accept(ctx, code, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.carol.Send(ctx, "alice", "hello from carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.alice.Block(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	cs, err := f.alice.Contacts()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Name == "bob" {
			if err := f.alice.VerifyContact("bob", c.SafetyNumber); err != nil {
				t.Fatal(err)
			}
		}
	}
	return f
}

func writeBackup(t *testing.T, c *Client) (path, key string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "alice.backup")
	key, err := c.Backup(testCtx(t), path)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	return path, key
}

func restore(t *testing.T, file, key string) (*Client, string, error) {
	t.Helper()
	home := filepath.Join(t.TempDir(), "restored")
	c, err := Restore(testCtx(t), home, testPass, file, key, "LAPTOP", testOpts())
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, home, err
}

// A backup restores, on a new device of the same person, the contacts
// with their verification and blocked state and every message with its
// subject, reply, attachments and notices; the restored device can fetch
// an attachment with the key from the backup.
func TestBackupRestore(t *testing.T) {
	t.Parallel()
	f := newBackupFixture(t)
	ctx := testCtx(t)
	path, key := writeBackup(t, f.alice)
	if lines := strings.Split(key, "\n"); len(lines) != 4 || len(strings.Fields(key)) != 16 {
		t.Fatalf("recovery key %d lines, %d groups; want 4 lines of 4 groups", len(lines), len(strings.Fields(key)))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(path + ".part"); !os.IsNotExist(err) {
		t.Errorf("%s.part left behind: %v", path, err)
	}
	// An existing file is not overwritten.
	before, _ := os.ReadFile(path)
	if _, err := f.alice.Backup(ctx, path); !errors.Is(err, ErrBackupExists) {
		t.Fatalf("Backup over an existing file: %v, want ErrBackupExists", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("the existing backup was changed")
	}

	r, _, err := restore(t, path, strings.ReplaceAll(key, "\n", " "))
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	wa, wr := f.alice.Whoami(), r.Whoami()
	if wr.Identity != wa.Identity || wr.Name != wa.Name || wr.Relay != wa.Relay {
		t.Errorf("restored whoami %+v, want the identity, name and relay of %+v", wr, wa)
	}
	if wr.Device == wa.Device {
		t.Error("the restored device has the backed-up device's ID")
	}
	src, err := f.alice.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	if nc, nm := r.Restored(); nc != 2 || nm != len(src) {
		t.Errorf("Restored() = %d contacts, %d messages; want 2, %d", nc, nm, len(src))
	}

	want, _ := f.alice.Contacts()
	got, err := r.Contacts()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("restored contacts %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Identity != w.Identity || g.Blocked != w.Blocked || g.Verification != w.Verification {
			t.Errorf("contact %d: got %+v, want %+v", i, g, w)
		}
	}
	if got[0].Name != "bob" || got[0].Verification != Verified || got[1].Name != "carol" || !got[1].Blocked {
		t.Errorf("contacts %+v: want bob verified and carol blocked", got)
	}

	msgs, err := r.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != len(src) {
		t.Fatalf("%d messages restored, want %d", len(msgs), len(src))
	}
	for i := range src {
		g, w := msgs[i], src[i]
		if g.ID != w.ID || g.From != w.From || g.To != w.To || g.Text != w.Text || g.Subject != w.Subject ||
			g.ReplyTo != w.ReplyTo || !g.Time.Equal(w.Time) || g.Outgoing != w.Outgoing || g.Notice != w.Notice ||
			len(g.Attachments) != len(w.Attachments) || g.Conversation == "" {
			t.Errorf("message %d: got %+v, want %+v", i, g, w)
		}
	}
	m, err := r.Message(f.reply.ID)
	if err != nil || m.ReplyTo != f.first.ID {
		t.Errorf("reply: %+v, %v", m, err)
	}
	if m, err := r.Message(f.first.ID); err != nil || m.Subject != "Bed 12" {
		t.Errorf("subject: %+v, %v", m, err)
	}
	if m, err := r.Message(f.notice.ID); err != nil || !m.Notice {
		t.Errorf("notice: %+v, %v", m, err)
	}
	out := t.TempDir()
	paths, err := r.SaveAttachments(ctx, f.file.ID, out, nil)
	if err != nil {
		t.Fatalf("SaveAttachments on the restored device: %v", err)
	}
	if b, err := os.ReadFile(paths[0]); err != nil || string(b) != "Ward 4 handover notes.\n" {
		t.Errorf("saved %q, %v", b, err)
	}

	// The restored device introduced itself: bob's messages reach it,
	// and its messages reach bob.
	for _, c := range []*Client{f.bob, r, f.bob} {
		if _, err := c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.bob.Send(ctx, "alice", "after the restore"); err != nil {
		t.Fatal(err)
	}
	got2, err := r.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "the restored device receives", got2, "bob>me:after the restore")
	if _, err := r.Send(ctx, "bob", "from the laptop"); err != nil {
		t.Fatal(err)
	}
	got2, err = f.bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "bob receives from the restored device", got2, "alice>me:from the laptop")

	// Restoring into a home that exists is refused.
	if _, err := Restore(ctx, f.aliceHome, testPass, path, key, "LAPTOP", testOpts()); !errors.Is(err, ErrExists) {
		t.Errorf("Restore into an initialised home: %v, want ErrExists", err)
	}
}

// noHome fails the test if home holds anything.
func noHome(t *testing.T, home string) {
	t.Helper()
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(home)
		t.Fatalf("the failed restore left %s (%d entries)", home, len(entries))
	}
}

// A wrong or mistyped key is refused before anything is made.
func TestRestoreWrongKey(t *testing.T) {
	t.Parallel()
	f := newBackupFixture(t)
	path, key := writeBackup(t, f.alice)
	_, home, err := restore(t, path, backup.NewRecoveryKey().SecretText())
	if !errors.Is(err, ErrWrongRecoveryKey) || err.Error() != "client: the recovery key does not open this backup" {
		t.Fatalf("another key: %v, want ErrWrongRecoveryKey", err)
	}
	noHome(t, home)

	// One digit of group 3 changed.
	b := []byte(key)
	i := strings.Index(key, " ") + 1
	i += strings.Index(key[i:], " ") + 1
	b[i] = '0' + (b[i]-'0'+1)%10
	_, home, err = restore(t, path, string(b))
	if !errors.Is(err, ErrRecoveryKey) || !strings.Contains(err.Error(), "group 3 of 16") {
		t.Fatalf("mistyped key: %v, want ErrRecoveryKey naming group 3", err)
	}
	noHome(t, home)
}

// A damaged backup (a changed byte in a chunk, a file cut short, a file
// that is not a backup) is refused with ErrBackupDamaged or ErrNotBackup,
// and leaves no home; the person's device list on the relay is unchanged.
func TestRestoreDamaged(t *testing.T) {
	t.Parallel()
	f := newBackupFixture(t)
	// Over several chunks: damage in the last one is found while the
	// import runs, after the head was read.
	addMessages(t, f.alice, "bob", 300, 1024)
	path, key := writeBackup(t, f.alice)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	devicesBefore, err := f.alice.Devices(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		edit   func([]byte) []byte
		target error
		want   string
	}{
		{"a byte of the first chunk", func(b []byte) []byte { b[backup.HeaderSize+10] ^= 1; return b }, ErrBackupDamaged, "chunk 0 does not authenticate"},
		{"the last byte", func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }, ErrBackupDamaged, "does not authenticate"},
		{"a byte of the header", func(b []byte) []byte { b[20] ^= 1; return b }, ErrBackupDamaged, "header checksum"},
		{"cut short", func(b []byte) []byte { return b[:len(b)-100] }, ErrBackupDamaged, "the backup file is damaged ("},
		{"cut at a chunk boundary", func(b []byte) []byte { return b[:backup.HeaderSize+2*backup.CipherChunkSize] }, ErrBackupDamaged, "cut short"},
		{"cut after the header", func(b []byte) []byte { return b[:backup.HeaderSize] }, ErrBackupDamaged, "cut short"},
		{"not a backup", func([]byte) []byte { return []byte("hello") }, ErrNotBackup, "not a Postern backup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.backup")
			if err := os.WriteFile(bad, tt.edit(bytes.Clone(orig)), 0o600); err != nil {
				t.Fatal(err)
			}
			_, home, err := restore(t, bad, key)
			if !errors.Is(err, tt.target) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Restore: %v; want %v saying %q", err, tt.target, tt.want)
			}
			t.Log(err)
			noHome(t, home)
		})
	}
	devicesAfter, err := f.alice.Devices(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(devicesAfter) != len(devicesBefore) {
		t.Fatalf("%d devices after the failed restores, %d before", len(devicesAfter), len(devicesBefore))
	}
}

// A restore whose contacts or history record breaks a rule is refused as
// a damaged backup, and leaves no home.
func TestRestoreInvalidRecord(t *testing.T) {
	t.Parallel()
	f := newBackupFixture(t)
	ctx := testCtx(t)
	// A backup written by hand: the real head and contacts, then a message
	// with a subject that is too long.
	path := filepath.Join(t.TempDir(), "bad.backup")
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	rk := backup.NewRecoveryKey()
	w, err := backup.NewWriter(file, rk)
	if err != nil {
		t.Fatal(err)
	}
	err = f.alice.st.view(func(t *tx) error { return f.alice.writeBackup(ctx, t, w) })
	if err != nil {
		t.Fatal(err)
	}
	m := validHistoryMessage()
	m["subject"] = strings.Repeat("s", MaxSubjectSize+1)
	if err := w.WriteRecord(backup.RecordMessages, messagesRecord(t, m).Data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	file.Close()
	_, home, err := restore(t, path, rk.SecretText())
	t.Log(err)
	if !errors.Is(err, ErrBackupDamaged) || !errors.Is(err, ErrInvalidHistory) || !strings.Contains(err.Error(), "message 1: message subject longer than 256") {
		t.Fatalf("Restore: %v; want ErrBackupDamaged naming the subject", err)
	}
	noHome(t, home)
}

// addMessages stores n messages of size bytes each in c's conversation
// with contact, alternately incoming and outgoing, in one transaction, as
// received and sent messages are stored.
func addMessages(tb testing.TB, c *Client, contact string, n, size int) {
	tb.Helper()
	text := strings.Repeat("x", size)
	err := c.st.update(func(t *tx) error {
		r, err := t.contactByName(contact)
		if err != nil {
			return err
		}
		now := c.now().UTC()
		for i := range n {
			m := &Message{ID: fmt.Sprintf("%016x", 1<<40+i), From: contact, To: Me, Text: text, Time: now, Received: now}
			if i%2 == 1 {
				m.From, m.To, m.Outgoing = Me, contact, true
			}
			if _, err := storeMessage(t, r, m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// A backup that changes between the check and the import (a failing
// disk): the import fails, and the new home's files are removed although
// the device had enrolled.
func TestRestoreChangedBetweenPasses(t *testing.T) {
	f := newBackupFixture(t)
	addMessages(t, f.alice, "bob", 5000, 50) // 20 messages records: two transactions
	path, key := writeBackup(t, f.alice)
	restoreBetweenPasses = func(file string) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Error(err)
			return
		}
		b[len(b)-1] ^= 1
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Error(err)
		}
	}
	defer func() { restoreBetweenPasses = nil }()
	_, home, err := restore(t, path, key)
	if !errors.Is(err, ErrBackupDamaged) || !strings.Contains(err.Error(), "does not authenticate") {
		t.Fatalf("Restore: %v, want ErrBackupDamaged", err)
	}
	noHome(t, home)
}

// Homes made by earlier releases (testdata/home), migrated, back up, and
// the backup restores as a new device with every message.
func TestBackupOfFixtureHomes(t *testing.T) {
	t.Parallel()
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			_, aliceHome, _, opts := fixtureHomes(t, version)
			alice, err := Open(aliceHome, testPass, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer alice.Close()
			path := filepath.Join(t.TempDir(), "alice.backup")
			key, err := alice.Backup(testCtx(t), path)
			if err != nil {
				t.Fatalf("Backup: %v", err)
			}
			src, err := alice.Inbox()
			if err != nil {
				t.Fatal(err)
			}
			r, err := Restore(testCtx(t), filepath.Join(t.TempDir(), "restored"), testPass, path, key, "LAPTOP", opts)
			if err != nil {
				t.Fatalf("Restore: %v", err)
			}
			defer r.Close()
			got, err := r.Inbox()
			if err != nil {
				t.Fatal(err)
			}
			if len(src) == 0 || len(got) != len(src) {
				t.Fatalf("%d messages restored, want %d", len(got), len(src))
			}
			for i := range src {
				if got[i].ID != src[i].ID || got[i].Text != src[i].Text || got[i].From != src[i].From || got[i].To != src[i].To {
					t.Errorf("message %d: %s>%s %q, want %s>%s %q", i, got[i].From, got[i].To, got[i].Text, src[i].From, src[i].To, src[i].Text)
				}
			}
		})
	}
}
