package bboltstore

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// A migration step turns a file of schema From into one of schema From+1.
// Steps run inside the one read-write transaction that also creates the
// missing buckets and writes the new version: a migration either
// completes or leaves the file as it was.
type migration func(tx *bolt.Tx) error

// migrations holds the steps keyed by the schema they start from.
// Adding schema N+1: bump SchemaVersion, add migrations[N]. Tests of the
// machinery install their own table (migrate_test.go).
var migrations = map[uint32]migration{
	1: migrate1to2,
	2: migrate2to3,
	3: migrate3to4, // kt.go
}

// migrate2to3 takes the owner device out of every blob record (owner(32)
// || the rest, 104 bytes, becomes the rest, 72 bytes) and gives each blob
// a quota ledger entry instead: the owner, the blob's size, its expiry
// rounded up to the hour, unfinished as the blob is. The entry's slot is
// 32 bytes from crypto/rand: the blob's upload token, which a slot is
// otherwise derived from, was never stored. So an upload that was
// unfinished at the migration and finishes afterwards keeps its
// unfinished slot counted until the entry expires (at most 24 hours
// after the blob's creation). The per-device totals (blob_use) are
// unchanged. A record that is not a schema-2 blob record stops the
// migration, and the file stays as it was.
func migrate2to3(tx *bolt.Tx) error {
	b := tx.Bucket(bBlobs)
	if b == nil {
		return nil
	}
	type rec struct {
		key, v []byte
		q      quotaEntry
	}
	var recs []rec
	err := b.ForEach(func(k, v []byte) error {
		if len(k) != 32 || len(v) != 32+blobRecordSize {
			return fmt.Errorf("blob record of %d bytes is not a schema-2 record", len(v))
		}
		nv := append([]byte(nil), v[32:]...)
		bl, err := decodeBlob(k, nv)
		if err != nil {
			return fmt.Errorf("blob record: %w", err)
		}
		var dev protocol.DeviceID
		copy(dev[:], v[:32])
		recs = append(recs, rec{append([]byte(nil), k...), nv, quotaEntry{dev: dev, bytes: bl.Size, expires: quotaHour(bl.Expires), unfinished: !bl.Done()}})
		return nil
	})
	if err != nil {
		return err
	}
	for _, bn := range [][]byte{bBlobQuota, bBlobQuotaExp} {
		if _, err := tx.CreateBucketIfNotExists(bn); err != nil {
			return err
		}
	}
	for _, r := range recs {
		if err := b.Put(r.key, r.v); err != nil {
			return err
		}
		var slot store.QuotaSlot
		rand.Read(slot[:])
		if err := putQuota(tx, slot, r.q); err != nil {
			return err
		}
	}
	return nil
}

// migrate1to2 adds account labels. Every schema-1 device record
// (flags || enrolled day || public key) becomes a schema-2 one with no
// label (flags || enrolled day || 0x00 || public key), and every schema-1
// invite record (expires u64 || used u8) one with no label
// (expires || used || 0x00), its used byte read as schema 1 read it (not
// 0 = used) and written 0 or 1. The accounts bucket is created (empty:
// no device has a label yet) with the other missing buckets. A record
// that is not a schema-1 record stops the migration, and the file stays
// as it was.
func migrate1to2(tx *bolt.Tx) error {
	type kv struct{ k, v []byte }
	var devs, invs []kv
	if b := tx.Bucket(bDevices); b != nil {
		// Collected first: bbolt does not allow writes during ForEach.
		err := b.ForEach(func(k, v []byte) error {
			if len(k) != 32 || len(v) < 5 || v[0]&^3 != 0 {
				return fmt.Errorf("device record %x (%d bytes) is not a schema-1 record", k[:min(len(k), 4)], len(v))
			}
			nv := make([]byte, 0, len(v)+1)
			nv = append(append(append(nv, v[:5]...), 0), v[5:]...)
			devs = append(devs, kv{append([]byte(nil), k...), nv})
			return nil
		})
		if err != nil {
			return err
		}
	}
	if b := tx.Bucket(bInvites); b != nil {
		err := b.ForEach(func(k, v []byte) error {
			if len(v) != 9 {
				return fmt.Errorf("invite record of %d bytes is not a schema-1 record", len(v))
			}
			used := v[8] != 0
			nv := encodeInvite(invite{expires: binary.BigEndian.Uint64(v[:8]), used: used})
			invs = append(invs, kv{append([]byte(nil), k...), nv})
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, r := range devs {
		if err := tx.Bucket(bDevices).Put(r.k, r.v); err != nil {
			return err
		}
	}
	for _, r := range invs {
		if err := tx.Bucket(bInvites).Put(r.k, r.v); err != nil {
			return err
		}
	}
	return nil
}

// currentSchema is SchemaVersion; tests lower or raise it together with a
// test migration table.
var currentSchema uint32 = SchemaVersion

// BackupSuffix names the automatic backup written before a migration from
// schema n: path + fmt.Sprintf(BackupSuffix, n).
const BackupSuffix = ".schema-%d.bak"

// openSchema brings an open database to currentSchema: a new file is
// stamped, an older one is backed up (path.schema-N.bak) and migrated in
// one transaction, a newer one is refused, and missing buckets are
// created.
func openSchema(db *bolt.DB, path string) error {
	var stored uint32
	var fresh bool
	err := db.View(func(tx *bolt.Tx) error {
		var err error
		stored, fresh, err = schemaOf(tx)
		return err
	})
	if err != nil {
		return err
	}
	if stored > currentSchema {
		return fmt.Errorf("%w: %s has schema %d but this postern-relay reads schemas up to %d; upgrade postern-relay to the release that wrote it (or restore a backup taken before)",
			store.ErrSchemaTooNew, path, stored, currentSchema)
	}
	if !fresh && stored < currentSchema {
		for v := stored; v < currentSchema; v++ {
			if migrations[v] == nil {
				return fmt.Errorf("bboltstore: %s has schema %d and there is no migration from schema %d", path, stored, v)
			}
		}
		bak := path + fmt.Sprintf(BackupSuffix, stored)
		if err := writeBackup(db, bak); err != nil {
			return fmt.Errorf("bboltstore: backup before migrating from schema %d: %w", stored, err)
		}
	}
	return db.Update(func(tx *bolt.Tx) error {
		if !fresh {
			for v := stored; v < currentSchema; v++ {
				if err := migrations[v](tx); err != nil {
					return fmt.Errorf("bboltstore: migration from schema %d to %d: %w", v, v+1, err)
				}
			}
		}
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if err := ensureEnvIDKey(tx); err != nil {
			return err
		}
		if fresh || stored != currentSchema {
			return tx.Bucket(bMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, currentSchema))
		}
		return nil
	})
}

// schemaOf reads the stored schema version; fresh is true for a file
// without one (just created, nothing written yet).
func schemaOf(tx *bolt.Tx) (v uint32, fresh bool, err error) {
	meta := tx.Bucket(bMeta)
	if meta == nil {
		return 0, true, nil
	}
	b := meta.Get(keySchema)
	switch {
	case b == nil:
		return 0, true, nil
	case len(b) != 4:
		return 0, false, fmt.Errorf("bboltstore: schema version of %d bytes", len(b))
	}
	return binary.BigEndian.Uint32(b), false, nil
}
