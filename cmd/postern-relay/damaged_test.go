package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/store"
	"github.com/postern/postern/relay/store/bboltstore"
)

// fillStore writes a relay data directory with a mailbox and n envelopes.
func fillStore(t *testing.T, dir string, n int) {
	t.Helper()
	st, err := bboltstore.Open(filepath.Join(dir, relay.DBFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	dev, mb := protocol.DeviceID{7}, protocol.NewMailboxID()
	if err := st.CreateMailbox(ctx, dev, mb); err != nil {
		t.Fatal(err)
	}
	h := protocol.NewCapabilityToken().Hash()
	if err := st.AddCapability(ctx, dev, mb, h); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1024)
	data[0], data[1] = protocol.Version, 1
	for range n {
		e := store.Envelope{Mailbox: mb, ID: protocol.NewEnvelopeID(), Received: time.Now(), Expires: time.Now().Add(time.Hour), Data: data}
		if _, err := st.Append(ctx, e, h); err != nil {
			t.Fatal(err)
		}
	}
}

// damagedCopies returns damaged versions of the database file b: cut at
// several offsets, and with the newest root page overwritten.
func damagedCopies(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	const ps = 8 << 10 // bboltstore's page size
	// The meta page with the higher transaction ID names the live root
	// and the pages in use (bbolt grows the file ahead of them).
	meta := func(p int) (root, pages, txid uint64) {
		m := b[p*ps+16:]
		return binary.LittleEndian.Uint64(m[16:]), binary.LittleEndian.Uint64(m[40:]), binary.LittleEndian.Uint64(m[48:])
	}
	root, pages, tx0 := meta(0)
	if r1, p1, tx1 := meta(1); tx1 > tx0 {
		root, pages = r1, p1
	}
	used := int(pages) * ps
	out := map[string][]byte{}
	for _, n := range []int{100, ps, 2*ps + 100, used / 2, used - ps} {
		out[fmt.Sprintf("truncated-at-%d", n)] = bytes.Clone(b[:n])
	}
	ow := bytes.Clone(b)
	copy(ow[root*ps:(root+1)*ps], bytes.Repeat([]byte("overwritten "), ps/12+1))
	out["root-page-overwritten"] = ow
	return out
}

func exitStatus(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return 0
}

// TestDamagedDatabase runs the real binary on damaged database files:
// serve refuses to start and restore refuses the backup, each with a
// message naming the file and exit status exitDamaged, never a fault or a
// panic; restore replaces nothing.
func TestDamagedDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the relay binary")
	}
	bin := buildRelay(t)
	src := t.TempDir()
	fillStore(t, src, 400)
	good, err := os.ReadFile(filepath.Join(src, relay.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	// A hang guard per command: a relay that starts on a damaged file
	// would serve until killed.
	run := func(args ...string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return exec.CommandContext(ctx, bin, args...).CombinedOutput()
	}
	check := func(t *testing.T, what string, out []byte, err error, file string) {
		t.Helper()
		s := string(out)
		if code := exitStatus(err); code != exitDamaged {
			t.Errorf("%s: exit %d (%v), want %d\n%s", what, code, err, exitDamaged, s)
		}
		if !strings.Contains(s, "damaged") || !strings.Contains(s, file) {
			t.Errorf("%s: message does not say the file %s is damaged:\n%s", what, file, s)
		}
		for _, bad := range []string{"panic", "goroutine ", "SIGBUS", "SIGSEGV", "fatal error"} {
			if strings.Contains(s, bad) {
				t.Errorf("%s: crashed:\n%s", what, s)
				break
			}
		}
	}
	for name, b := range damagedCopies(t, good) {
		t.Run(name, func(t *testing.T) {
			// serve on a damaged live file.
			data := t.TempDir()
			db := filepath.Join(data, relay.DBFile)
			if err := os.WriteFile(db, b, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := run("serve", "--listen", freeAddr(t), "--data", data, "--metrics-listen=")
			check(t, "serve", out, err, db)
			if got, _ := os.ReadFile(db); !bytes.Equal(got, b) {
				t.Error("serve changed the damaged file")
			}

			// restore of a damaged backup over a good database.
			target := t.TempDir()
			live := filepath.Join(target, relay.DBFile)
			os.WriteFile(live, good, 0o600)
			bak := filepath.Join(t.TempDir(), "backup.db")
			os.WriteFile(bak, b, 0o600)
			out, err = run("restore", bak, "--data", target)
			check(t, "restore", out, err, bak)
			if got, _ := os.ReadFile(live); sha256.Sum256(got) != sha256.Sum256(good) {
				t.Error("restore replaced the database with a damaged backup")
			}
			if ents, _ := os.ReadDir(target); len(ents) != 1 {
				t.Errorf("restore left files behind: %v", ents)
			}
		})
	}
}
