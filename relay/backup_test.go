package relay_test

import (
	"net/http"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/relaytest"
	"github.com/postern/postern/relay/store/bboltstore"
)

// TestAdminBackupDuringSends: the admin "backup" op, taken while senders
// keep sending, writes a file that passes bbolt's check and holds every
// envelope whose Sent arrived before the backup was requested.
func TestAdminBackupDuringSends(t *testing.T) {
	srv := relaytest.New(t, nil)
	serveAdmin(t, srv)
	_, _, mb, tok := owner(t, srv.URL)
	var (
		mu    sync.Mutex
		acked []protocol.EnvelopeID
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	for range 4 {
		c := dial(t, srv.URL)
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if s, ok := c.send(mb, tok, sealed(byte(i))).(*protocol.Sent); ok {
					mu.Lock()
					acked = append(acked, s.Envelope)
					mu.Unlock()
				}
			}
		})
	}
	for n := 0; n < 40; {
		mu.Lock()
		n = len(acked)
		mu.Unlock()
	}
	mu.Lock()
	before := append([]protocol.EnvelopeID(nil), acked...)
	mu.Unlock()
	dest := filepath.Join(t.TempDir(), "backup.db")
	if _, err := admin(t, srv, relay.AdminRequest{Op: "backup", Path: dest}); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if err := bboltstore.Check(dest); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(dest, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		// Envelope records: mailbox (16) || envelope ID (16) || ... (SPEC 10).
		stored := map[protocol.EnvelopeID]bool{}
		tx.Bucket([]byte("env")).ForEach(func(_, v []byte) error {
			if len(v) >= 32 {
				stored[protocol.EnvelopeID(v[16:32])] = true
			}
			return nil
		})
		for _, id := range before {
			if !stored[id] {
				t.Errorf("envelope %s acknowledged before the backup is missing", id)
			}
		}
		return nil
	})
	t.Logf("%d envelopes acknowledged before the backup, all present", len(before))
	if _, err := admin(t, srv, relay.AdminRequest{Op: "backup", Path: "relative.db"}); err == nil {
		t.Error("relative backup path accepted")
	}
}

// TestReadyz: /readyz is 200 while the store takes writes and 503 once it
// is closed; /healthz (liveness) is unaffected.
func TestReadyz(t *testing.T) {
	srv := relaytest.New(t, nil)
	get := func(path string) int {
		t.Helper()
		resp, err := http.Get(srv.HTTPURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get("/readyz"); c != http.StatusOK {
		t.Fatalf("/readyz = %d, want 200", c)
	}
	srv.Relay().Store().Close()
	if c := get("/readyz"); c != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the store closed = %d, want 503", c)
	}
	if c := get("/healthz"); c != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", c)
	}
}
