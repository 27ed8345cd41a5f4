package bboltstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

var (
	ctx  = context.Background()
	t0   = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	ownr = protocol.DeviceID{1, 2, 3}
)

func envelope(mb protocol.MailboxID, received time.Time) store.Envelope {
	data := make([]byte, 1024)
	data[0], data[1] = protocol.Version, 1
	return store.Envelope{Mailbox: mb, ID: protocol.NewEnvelopeID(), Received: received, Expires: received.Add(time.Hour), Data: data}
}

// mailboxWithCap creates a mailbox owned by ownr with one live capability.
func mailboxWithCap(t testing.TB, s *Store) (protocol.MailboxID, protocol.CapabilityHash) {
	t.Helper()
	mb := protocol.NewMailboxID()
	if err := s.CreateMailbox(ctx, ownr, mb); err != nil {
		t.Fatal(err)
	}
	h := protocol.NewCapabilityToken().Hash()
	if err := s.AddCapability(ctx, ownr, mb, h); err != nil {
		t.Fatal(err)
	}
	return mb, h
}

func TestAppendRangeAckPurge(t *testing.T) {
	s, _ := openTest(t)
	mb, h := mailboxWithCap(t, s)
	other, oh := mailboxWithCap(t, s)

	var ids []protocol.EnvelopeID
	for i := range 5 {
		e, err := s.Append(ctx, envelope(mb, t0.Add(time.Duration(i)*time.Hour)), h)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	if _, err := s.Append(ctx, envelope(other, t0), oh); err != nil {
		t.Fatal(err)
	}
	got, err := s.Range(ctx, mb, 0, 100)
	if err != nil || len(got) != 5 {
		t.Fatalf("Range = %d envelopes, %v; want 5", len(got), err)
	}
	for i, e := range got {
		if e.ID != ids[i] || e.Mailbox != mb || len(e.Data) != 1024 || !e.Received.Equal(t0.Add(time.Duration(i)*time.Hour)) {
			t.Errorf("envelope %d = %+v", i, e.ID)
		}
	}
	// Paging by sequence.
	page, _ := s.Range(ctx, mb, got[1].Seq, 2)
	if len(page) != 2 || page[0].ID != ids[2] {
		t.Errorf("page after seq %d = %d envelopes", got[1].Seq, len(page))
	}
	// Ack: an ID of another mailbox and an unknown ID are ignored.
	otherEnv, _ := s.Range(ctx, other, 0, 1)
	n, err := s.Ack(ctx, mb, []protocol.EnvelopeID{ids[0], otherEnv[0].ID, protocol.NewEnvelopeID()})
	if err != nil || n != 1 {
		t.Fatalf("Ack = %d, %v; want 1", n, err)
	}
	if n, _ := s.Ack(ctx, mb, ids[:1]); n != 0 {
		t.Errorf("second ack deleted %d", n)
	}
	// Purge: envelopes received at t0+1h and t0+2h expire by t0+3h.
	n, err = s.Purge(ctx, t0.Add(3*time.Hour), 1000)
	if err != nil || n != 3 { // the other mailbox's one, and ids[1], ids[2]
		t.Fatalf("Purge = %d, %v; want 3", n, err)
	}
	got, _ = s.Range(ctx, mb, 0, 100)
	if len(got) != 2 || got[0].ID != ids[3] {
		t.Fatalf("after purge: %d envelopes", len(got))
	}
	// Bounded batch.
	if n, _ := s.Purge(ctx, t0.Add(100*time.Hour), 1); n != 1 {
		t.Errorf("bounded purge deleted %d", n)
	}
	checkDepth(t, s, mb, 1)
}

func checkDepth(t *testing.T, s *Store, mb protocol.MailboxID, want uint32) {
	t.Helper()
	s.db.View(func(tx *bolt.Tx) error {
		_, d, _ := mailboxRecord(tx, mb)
		if d != want {
			t.Errorf("depth = %d, want %d", d, want)
		}
		return nil
	})
}

func TestCapabilities(t *testing.T) {
	s, _ := openTest(t)
	mb, h := mailboxWithCap(t, s)
	e := envelope(mb, t0)
	tests := []struct {
		name string
		mb   protocol.MailboxID
		h    protocol.CapabilityHash
		want error
	}{
		{"unknown capability", mb, protocol.NewCapabilityToken().Hash(), store.ErrUnknownCapability},
		{"unknown mailbox", protocol.NewMailboxID(), h, store.ErrUnknownCapability},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e
			e.Mailbox = tt.mb
			if _, err := s.Append(ctx, e, tt.h); !errors.Is(err, tt.want) {
				t.Errorf("Append = %v, want %v", err, tt.want)
			}
		})
	}
	if err := s.RevokeCapability(ctx, ownr, mb, h, protocol.RevokeBlocked); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, e, h); !errors.Is(err, store.ErrCapabilityRevoked) {
		t.Errorf("Append with revoked = %v", err)
	}
	// The owner lifts the revocation (unblock): the capability is live
	// again; revoking it once more blocks again.
	if err := s.AddCapability(ctx, ownr, mb, h); err != nil {
		t.Errorf("re-adding revoked = %v", err)
	}
	if err := s.CheckCapability(ctx, mb, h); err != nil {
		t.Errorf("CheckCapability after re-adding = %v", err)
	}
	if err := s.RevokeCapability(ctx, ownr, mb, h, protocol.RevokeBlocked); err != nil {
		t.Fatal(err)
	}
	if err := s.AddCapability(ctx, protocol.DeviceID{9}, mb, h); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("AddCapability by another device = %v", err)
	}
	got, _ := s.Range(ctx, mb, 0, 10)
	if len(got) != 0 {
		t.Errorf("refused sends stored %d envelopes", len(got))
	}
	for range protocol.MaxCapabilitiesPerMailbox {
		if err := s.AddCapability(ctx, ownr, mb, protocol.NewCapabilityToken().Hash()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddCapability(ctx, ownr, mb, protocol.NewCapabilityToken().Hash()); !errors.Is(err, store.ErrCapabilityLimit) {
		t.Errorf("capability past limit = %v", err)
	}
	if err := s.DeleteMailbox(ctx, ownr, mb); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckCapability(ctx, mb, h); !errors.Is(err, store.ErrUnknownCapability) {
		t.Errorf("capability of deleted mailbox = %v", err)
	}
}

func TestEnrollAndInvites(t *testing.T) {
	s, _ := openTest(t)
	valid, used, expired := store.InviteHash{1}, store.InviteHash{2}, store.InviteHash{3}
	s.AddInvites(ctx, []store.InviteHash{valid, used}, t0.Add(time.Hour), "")
	s.AddInvites(ctx, []store.InviteHash{expired}, t0, "")
	dev := func(b byte) store.Device {
		return store.Device{ID: protocol.DeviceID{b}, PublicKey: []byte{b, b}, Enrolled: t0}
	}
	if _, err := s.EnrollDevice(ctx, dev(1), &used, t0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		invite *store.InviteHash
		want   error
	}{
		{"valid", &valid, nil},
		{"reused", &used, store.ErrEnrollmentRefused},
		{"expired", &expired, store.ErrEnrollmentRefused},
		{"unknown", &store.InviteHash{4}, store.ErrEnrollmentRefused},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := byte(10 + i)
			_, err := s.EnrollDevice(ctx, dev(id), tt.invite, t0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("EnrollDevice = %v, want %v", err, tt.want)
			}
			_, err = s.Device(ctx, protocol.DeviceID{id})
			if (err == nil) != (tt.want == nil) {
				t.Errorf("device stored = %v, want %v", err == nil, tt.want == nil)
			}
		})
	}
	d, err := s.Device(ctx, protocol.DeviceID{1})
	if err != nil || !d.Enrolled.Equal(t0.Truncate(24*time.Hour)) || string(d.PublicKey) != "\x01\x01" {
		t.Errorf("Device = %+v, %v", d, err)
	}
	s.RevokeDevice(ctx, protocol.DeviceID{1})
	if _, err := s.EnrollDevice(ctx, dev(1), nil, t0); !errors.Is(err, store.ErrDeviceRevoked) {
		t.Errorf("re-enrolling revoked = %v", err)
	}
}

// TestGroupCommit: 64 concurrent writers; every append is acknowledged and
// stored, in fewer commits than appends.
func TestGroupCommit(t *testing.T) {
	s, _ := openTest(t)
	mb, h := mailboxWithCap(t, s)
	const writers, each = 64, 20
	tx0, _ := s.Commits()
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for range writers {
		wg.Go(func() {
			for range each {
				if _, err := s.Append(ctx, envelope(mb, t0), h); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, _ := s.Range(ctx, mb, 0, writers*each+1)
	if len(got) != writers*each {
		t.Fatalf("stored %d, want %d", len(got), writers*each)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatal("sequence not increasing")
		}
	}
	tx1, _ := s.Commits()
	t.Logf("%d appends in %d commits", writers*each, tx1-tx0)
	checkDepth(t, s, mb, writers*each)
}

func TestRestartPersistence(t *testing.T) {
	s, path := openTest(t)
	mb, h := mailboxWithCap(t, s)
	e, err := s.Append(ctx, envelope(mb, t0), h)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.Range(ctx, mb, 0, 10)
	if err != nil || len(got) != 1 || got[0].ID != e.ID {
		t.Fatalf("after reopen: %d envelopes, %v", len(got), err)
	}
	if _, err := s2.Append(ctx, envelope(mb, t0), h); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, envelope(mb, t0), h); !errors.Is(err, store.ErrClosed) {
		t.Errorf("append on closed store = %v", err)
	}
}

func TestSchemaRefusal(t *testing.T) {
	s, path := openTest(t)
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, SchemaVersion+1))
	})
	db.Close()
	_, err = Open(path, nil)
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
	}
	t.Log(err)
}

// TestPrekeyPoppedOnce: many concurrent fetches never get the same
// one-time prekey twice, and get each stored one exactly once.
func TestPrekeyPoppedOnce(t *testing.T) {
	s, _ := openTest(t)
	mb, h := mailboxWithCap(t, s)
	if _, _, err := s.FetchBundle(ctx, mb, h); !errors.Is(err, store.ErrNoBundle) {
		t.Errorf("fetch before publish = %v", err)
	}
	var pks [][]byte
	for i := range 50 {
		pks = append(pks, []byte(fmt.Sprintf("prekey-%03d", i)))
	}
	if err := s.PublishPrekeys(ctx, ownr, []byte("bundle"), pks); err != nil {
		t.Fatal(err)
	}
	if n, hb, _ := s.PrekeyStatus(ctx, ownr); n != 50 || !hb {
		t.Fatalf("status = %d, %v", n, hb)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	empty := 0
	var wg sync.WaitGroup
	for range 80 {
		wg.Go(func() {
			b, p, err := s.FetchBundle(ctx, mb, h)
			if err != nil || string(b) != "bundle" {
				t.Errorf("FetchBundle = %q, %v", b, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if p == nil {
				empty++
			} else {
				seen[string(p)]++
			}
		})
	}
	wg.Wait()
	if len(seen) != 50 || empty != 30 {
		t.Errorf("distinct prekeys = %d, empty = %d; want 50, 30", len(seen), empty)
	}
	for p, n := range seen {
		if n != 1 {
			t.Errorf("%s handed out %d times", p, n)
		}
	}
	more := make([][]byte, protocol.MaxStoredPrekeys+1)
	for i := range more {
		more[i] = []byte{1}
	}
	if err := s.PublishPrekeys(ctx, ownr, nil, more); !errors.Is(err, store.ErrPrekeyLimit) {
		t.Errorf("publish past limit = %v", err)
	}
}

func TestMailboxLimit(t *testing.T) {
	s, _ := openTest(t)
	for range protocol.MaxMailboxesPerDevice {
		if err := s.CreateMailbox(ctx, ownr, protocol.NewMailboxID()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateMailbox(ctx, ownr, protocol.NewMailboxID()); !errors.Is(err, store.ErrMailboxLimit) {
		t.Errorf("mailbox past limit = %v", err)
	}
}

// TestBytesPerMessage reports the bytes the store keeps per 1 KiB-bucket
// envelope beyond the ciphertext (live pages / N − 1024).
func TestBytesPerMessage(t *testing.T) {
	s, _ := openTest(t)
	mb, h := mailboxWithCap(t, s)
	live := func() int64 {
		var n int64
		s.db.View(func(tx *bolt.Tx) error {
			st := s.db.Stats()
			n = tx.Size() - int64(st.FreePageN+st.PendingPageN)*int64(s.db.Info().PageSize)
			return nil
		})
		return n
	}
	before := live()
	const n = 5000
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range n / 50 {
				if _, err := s.Append(ctx, envelope(mb, t0), h); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	per := float64(live()-before) / n
	t.Logf("bytes per 1 KiB envelope: %.0f (overhead beyond ciphertext: %.0f)", per, per-1024)
}
