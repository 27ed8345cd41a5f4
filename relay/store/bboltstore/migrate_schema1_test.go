package bboltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// copyFixture copies the committed schema-1 fixture to a temp dir as
// relay.db and returns the copy's path and the fixture's manifest.
func copyFixture(t *testing.T) (string, fixtureManifest) {
	t.Helper()
	b, err := os.ReadFile(schema1FixturePath)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "relay.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := os.ReadFile(strings.TrimSuffix(schema1FixturePath, ".db") + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var m fixtureManifest
	if err := json.Unmarshal(j, &m); err != nil {
		t.Fatal(err)
	}
	return path, m
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMigrateSchema1Fixture opens a copy of the committed schema-1 file
// with the current code: it is backed up byte for byte, stamped schema 2,
// every record of every bucket is still there (devices and invites in the
// schema-2 layout with no account, everything else byte-identical), and
// the Store API reads back what the manifest says was stored.
func TestMigrateSchema1Fixture(t *testing.T) {
	path, m := copyFixture(t)
	fixture, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := FileSchema(path); err != nil || v != 1 {
		t.Fatalf("fixture schema = %d, %v; want 1", v, err)
	}
	before := dumpFile(t, path)

	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	checkFile(t, path)

	// Record for record: devices and invites gained an empty label,
	// nothing else changed.
	after := dumpFile(t, path)
	if len(after) != len(before)+7+3+3+1 {
		t.Errorf("%d buckets after migration, %d before: want fourteen more (accounts, blob_quota, blob_quota_exp, the four kt_ buckets, the three claim buckets, the three fan-out buckets and kt_directories)", len(after), len(before))
	}
	if q := after["blob_quota"]; q == nil || len(q.records) != len(m.Blobs) || len(after["blob_quota_exp"].records) != len(m.Blobs) {
		t.Errorf("quota ledger = %+v, want one entry per blob", q)
	}
	if v, err := FileSchema(path); err != nil || v != SchemaVersion {
		t.Errorf("schema after migration = %d, %v", v, err)
	}
	if a := after["accounts"]; a == nil || len(a.records) != 0 {
		t.Errorf("accounts bucket = %+v, want empty", a)
	}
	for name, b := range before {
		a := after[name]
		if a == nil {
			t.Errorf("bucket %s gone", name)
			continue
		}
		want := len(b.records)
		if name == "meta" {
			want++ // the envelope-ID key (envid.go)
		}
		if a.seq != b.seq || len(a.records) != want {
			t.Errorf("bucket %s: sequence %d and %d records, was %d and %d", name, a.seq, len(a.records), b.seq, len(b.records))
		}
		for k, v := range b.records {
			got, ok := a.records[k]
			if !ok {
				t.Errorf("bucket %s: key %x gone", name, k)
				continue
			}
			want := v
			switch name {
			case "devices":
				want = cat(v[:5], []byte{0}, v[5:])
			case "invites":
				want = append(bytes.Clone(v), 0)
			case "blobs":
				want = v[32:] // schema 3: no owner
			case "meta":
				if k == string(keySchema) {
					want = binary.BigEndian.AppendUint32(nil, SchemaVersion)
				}
			}
			if !bytes.Equal(got, want) {
				t.Errorf("bucket %s: key %x: %x, want %x", name, k, got[:min(len(got), 40)], want[:min(len(want), 40)])
			}
		}
	}

	s, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); checkFile(t, path) })

	// The automatic backup is the schema-1 file as it was.
	bak, err := os.ReadFile(path + fmt.Sprintf(BackupSuffix, 1))
	if err != nil {
		t.Fatalf("no automatic backup: %v", err)
	}
	if !bytes.Equal(bak, fixture) {
		t.Error("the automatic backup differs from the schema-1 file")
	}

	// Store API: what the manifest says.
	devs, err := s.Devices(ctx)
	if err != nil || len(devs) != len(m.Devices) {
		t.Fatalf("Devices = %d, %v; want %d", len(devs), err, len(m.Devices))
	}
	byID := map[string]store.Device{}
	for _, d := range devs {
		byID[d.ID.String()] = d
	}
	for _, md := range m.Devices {
		d, ok := byID[md.ID]
		if !ok {
			t.Errorf("device %s missing", md.Name)
			continue
		}
		state := "active"
		if d.Revoked {
			state = "revoked"
		} else if d.Suspended {
			state = "suspended"
		}
		if state != md.State || d.Account != "" || d.Enrolled.Format(time.DateOnly) != md.Enrolled || d.LastSeen.Format(time.DateOnly) != md.LastSeen {
			t.Errorf("device %s = %+v, want %+v and no account", md.Name, d, md)
		}
		full, err := s.Device(ctx, d.ID)
		idn, _ := fixtureIdentity(t, md.Name)
		if err != nil || !bytes.Equal(full.PublicKey, idn.Public().Bytes()) {
			t.Errorf("device %s key changed: %v", md.Name, err)
		}
	}
	for _, mb := range m.Mailboxes {
		id := protocol.MailboxID(unhex(t, mb.ID))
		owner, err := s.MailboxOwner(ctx, id)
		if mb.Deleted {
			if !errors.Is(err, store.ErrUnknownMailbox) {
				t.Errorf("mailbox of a revoked device: %v", err)
			}
			continue
		}
		if err != nil || owner.String() != mb.Owner {
			t.Errorf("mailbox %s owner = %v, %v", mb.ID[:8], owner, err)
		}
		for _, c := range mb.Capabilities {
			tok, _ := protocol.CapabilityTokenFromBytes(unhex(t, c.Token))
			err := s.CheckCapability(ctx, id, tok.Hash())
			if (c.State == "live") != (err == nil) || (c.State == "revoked") != errors.Is(err, store.ErrCapabilityRevoked) {
				t.Errorf("capability (%s) = %v", c.State, err)
			}
		}
		envs, err := s.Range(ctx, id, 0, 100)
		if err != nil || len(envs) != len(mb.Envelopes) {
			t.Fatalf("mailbox %s: %d envelopes, %v; want %d", mb.ID[:8], len(envs), err, len(mb.Envelopes))
		}
		for i, e := range envs {
			want := mb.Envelopes[i]
			if e.ID.String() != want.ID || !bytes.Equal(e.Data, fixtureEnvelopeData(want.Fill, want.Size)) {
				t.Errorf("mailbox %s envelope %d = %s, want %s", mb.ID[:8], i, e.ID, want.ID)
			}
		}
	}
	for _, p := range m.Prekeys {
		n, has, err := s.PrekeyStatus(ctx, protocol.DeviceID(unhex(t, p.Device)))
		if err != nil || n != len(p.OneTime) || !has {
			t.Errorf("prekeys of %s: %d, %v, %v", p.Device[:8], n, has, err)
		}
	}
	for _, mb := range m.Blobs {
		b, err := s.Blob(ctx, store.BlobKey(unhex(t, mb.Key)))
		if err != nil || b.Size != mb.Size || b.Committed != mb.Committed || b.Done() != mb.Finished {
			t.Errorf("blob = %+v, %v", b, err)
		}
		if u, err := s.BlobUsage(ctx, protocol.DeviceID(unhex(t, mb.Owner))); err != nil || u.Bytes < mb.Size {
			t.Errorf("owner's usage after migration = %+v, %v", u, err)
		}
	}
	if accts, err := s.Accounts(ctx, fixtureT0); err != nil || len(accts) != 0 {
		t.Errorf("accounts after migration = %v, %v; want none", accts, err)
	}

	// The invites keep their state; the unused ones enrol a device with
	// no account.
	newDev := store.Device{ID: protocol.DeviceID{0xee}, PublicKey: []byte{1}, Enrolled: fixtureT0}
	for _, inv := range m.Invites {
		h := fixtureInviteHash(inv.Code)
		_, err := s.EnrollDevice(ctx, newDev, &h, fixtureT0.Add(time.Hour))
		if inv.Used {
			if !errors.Is(err, store.ErrEnrollmentRefused) {
				t.Errorf("enrol with the used invite = %v", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("enrol with unused invite = %v", err)
		}
		if d, _ := s.Device(ctx, newDev.ID); d.Account != "" {
			t.Errorf("device enrolled with an unlabelled invite has account %q", d.Account)
		}
		newDev.ID[1]++
	}
}

// TestMigrateSchema1Refused: a record the migration cannot read as
// schema 1 stops it (the relay does not start), and the file is left
// exactly as it was, still schema 1, with the backup beside it.
// TestMigrationAtomic covers a step that fails after writing.
func TestMigrateSchema1Refused(t *testing.T) {
	path, _ := copyFixture(t)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bInvites).Put(bytes.Repeat([]byte{0xff}, 32), []byte{1, 2, 3})
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, nil)
	if err == nil || !strings.Contains(err.Error(), "migration from schema 1 to 2") || !strings.Contains(err.Error(), "invite record of 3 bytes is not a schema-1 record") {
		t.Fatalf("Open = %v", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("a failed migration changed the file")
	}
	if v, err := FileSchema(path); err != nil || v != 1 {
		t.Errorf("schema after a failed migration = %d, %v", v, err)
	}
	if v, err := FileSchema(path + fmt.Sprintf(BackupSuffix, 1)); err != nil || v != 1 {
		t.Errorf("backup schema = %d, %v", v, err)
	}
}

// TestSchema3Refused: a file claiming a newer schema than this code
// writes is refused with ErrSchemaTooNew and a message naming both
// versions; nothing is written, not even a backup.
func TestNewerSchemaRefused(t *testing.T) {
	path, _ := copyFixture(t)
	setSchema(t, path, SchemaVersion+1)
	before, _ := os.ReadFile(path)
	_, err := Open(path, nil)
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
	}
	for _, want := range []string{fmt.Sprintf("has schema %d", SchemaVersion+1), fmt.Sprintf("reads schemas up to %d", SchemaVersion), "upgrade postern-relay"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("the refused file was changed")
	}
	if m, _ := filepath.Glob(path + ".schema-*"); len(m) != 0 {
		t.Errorf("backups written for a refused file: %v", m)
	}
}
