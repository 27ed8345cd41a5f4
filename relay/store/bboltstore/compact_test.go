package bboltstore

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// dumpStoreFile returns every bucket's keys, values and sequence of a closed
// store file, as text.
func dumpStoreFile(t *testing.T, path string) map[string]string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]string{}
	var walk func(prefix string, b *bolt.Bucket)
	walk = func(prefix string, b *bolt.Bucket) {
		out[prefix+"#seq"] = fmt.Sprint(b.Sequence())
		b.ForEach(func(k, v []byte) error {
			if nb := b.Bucket(k); nb != nil {
				walk(prefix+"/"+string(k), nb)
				return nil
			}
			out[prefix+"/"+fmt.Sprintf("%x", k)] = fmt.Sprintf("%x", v)
			return nil
		})
	}
	db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { walk(string(name), b); return nil })
	})
	return out
}

// TestCompactFileShrinks: a store that held many envelopes and had most of
// them acknowledged shrinks on CompactFile, keeps every record (envelopes,
// blobs, devices, invites, capabilities, sequences) and opens.
func TestCompactFileShrinks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := s.EnrollDevice(ctx, store.Device{ID: protocol.DeviceID{byte(i + 1)}, PublicKey: []byte{1, 2, 3}, Enrolled: t0}, nil, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddInvites(ctx, []store.InviteHash{{9}}, t0.Add(time.Hour), "dr.who"); err != nil {
		t.Fatal(err)
	}
	var bk store.BlobKey
	rand.Read(bk[:])
	if err := s.CreateBlob(ctx, store.Blob{Key: bk, Size: protocol.BlobCipherChunkSize, Created: t0, Expires: t0.Add(time.Hour)}, ownr, store.QuotaSlot{7}, 1<<30, 10); err != nil {
		t.Fatal(err)
	}
	mb, h := mailboxWithCap(t, s)
	var ids []protocol.EnvelopeID
	for i := range 3000 {
		e, err := s.Append(ctx, envelope(mb, t0.Add(time.Duration(i)*time.Second)), h)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	for i := 0; i < 2950; i += 50 {
		if _, err := s.Ack(ctx, mb, ids[i:i+50]); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	before := dumpStoreFile(t, path)

	res, err := CompactFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compacted %d -> %d bytes", res.Before, res.After)
	if res.After*4 > res.Before {
		t.Errorf("file %d bytes after compaction, %d before: not given back", res.After, res.Before)
	}
	if fi, _ := os.Stat(path); fi.Size() != res.After {
		t.Errorf("result says %d bytes, file has %d", res.After, fi.Size())
	}
	after := dumpStoreFile(t, path)
	if len(after) != len(before) {
		t.Errorf("%d records after, %d before", len(after), len(before))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("record %s changed", k)
			break
		}
	}
	if _, err := os.Stat(res.Kept); err != nil {
		t.Errorf("old file not kept: %v", err)
	}
	s, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Range(ctx, mb, 0, 1000)
	if err != nil || len(got) != 50 || got[0].ID != ids[2950] {
		t.Errorf("after compaction: %d envelopes, %v", len(got), err)
	}
	if e, err := s.Append(ctx, envelope(mb, t0), h); err != nil || e.Seq <= got[len(got)-1].Seq {
		t.Errorf("append after compaction: seq %d, %v", e.Seq, err)
	}
	if _, err := s.Blob(ctx, bk); err != nil {
		t.Errorf("blob after compaction: %v", err)
	}
	s.Close()
	// A second compaction refuses to overwrite the kept copy.
	if _, err := CompactFile(path); err == nil {
		t.Error("compaction over an earlier kept copy")
	}
}
