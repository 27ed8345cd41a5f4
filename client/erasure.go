package client

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/postern/postern/protocol"
)

// Crypto-erasure of short-lived secrets (protocol/SPEC.md section 9
// "Erasure"). bbolt never overwrites a page in place: a deleted or
// replaced value stays in a free page until the page is reused, and a
// value sealed under the long-term store key would decrypt from there
// for as long as the key file does. So the values of the ephemeral
// buckets (prekey secrets, session states) are each sealed under a record
// key of their own, fresh on every write; the record keys are in the
// keyring, sealed under the current epoch key; the epoch key lives only
// in a slot of erase.keys, a small file overwritten in place. A
// transaction that deletes or replaces an ephemeral value moves to a new
// epoch: the old keyring, the only place the dropped record key was kept,
// was sealed under an epoch key that is then overwritten.
const (
	// EraseKeysFileName is the file of epoch-key slots under the home.
	EraseKeysFileName = "erase.keys"

	// storeSchema is the store layout this code reads and writes. Schema
	// 1 (no store record) is the layout before erasure; it is migrated.
	storeSchema = 2

	eraseSlotLabel = "postern.v1 store-erase-slot"
	eraseSlots     = 2
	eraseSlotSize  = 128 // nonce (24) || sealed u64 epoch || key (32) + tag (16) || random padding
	eraseKeySize   = chacha20poly1305.KeySize
)

var (
	// bucketErasure holds the keyring, sealed under the epoch key.
	bucketErasure = []byte("erasure")
	// ephemeralBuckets are the buckets whose old values must not survive
	// their deletion or replacement.
	ephemeralBuckets = [][]byte{bucketPrekeys, bucketSessions}

	keyStoreRecord = []byte("store")
	keyKeyring     = []byte("keyring")
)

var (
	// ErrStoreTooNew: the home's store was written by a newer version
	// with a layout this one does not know. Nothing is changed.
	ErrStoreTooNew = errors.New("client: the local store was written by a newer version of postern")
	// errEraseKeys: erase.keys is missing or does not hold the epoch
	// key that the store names.
	errEraseKeys = errors.New("client: " + EraseKeysFileName + " is missing or damaged: this home's sessions and prekeys cannot be read")
)

// storeRecord is the store's own bookkeeping, in the meta bucket (sealed
// under the store key like every meta value).
type storeRecord struct {
	V      int    `json:"v"`
	Schema int    `json:"schema"`
	Epoch  uint64 `json:"epoch"` // the epoch whose key seals the keyring
	// Scrub: free pages may still hold values sealed under the store key
	// by schema 1; they are overwritten with zeros, then this is cleared.
	Scrub bool `json:"scrub,omitempty"`
}

// eraseState is a transaction's view of the keyring, loaded on first use.
type eraseState struct {
	epoch uint64
	key   []byte            // the epoch key
	ring  map[string][]byte // ringID(bucket, key) -> record key
	dirty bool              // the keyring changed: seal and store it
	shred bool              // a record key was dropped: move to a new epoch
	// After finish: the slot written for a new epoch, and the slot of the
	// old one (-1: none).
	newSlot, oldSlot int
}

func isEphemeral(bucket []byte) bool {
	for _, b := range ephemeralBuckets {
		if bytes.Equal(b, bucket) {
			return true
		}
	}
	return false
}

func ringID(bucket, key []byte) string { return string(bucket) + "\x00" + string(key) }

func (s *store) eraseKeysPath() string {
	return filepath.Join(filepath.Dir(s.path), EraseKeysFileName)
}

// ---- erase.keys ----

func slotAD(i int) []byte { return append([]byte(eraseSlotLabel), byte(i)) }

func (s *store) sealSlot(i int, epoch uint64, key []byte) []byte {
	b := make([]byte, eraseSlotSize)
	rand.Read(b)
	plain := append(binary.BigEndian.AppendUint64(nil, epoch), key...)
	s.slotAEAD.Seal(b[:chacha20poly1305.NonceSizeX], b[:chacha20poly1305.NonceSizeX], plain, slotAD(i))
	return b
}

// readSlots returns the epoch and key of each slot that opens; a wiped
// slot gives epoch 0.
func (s *store) readSlots() (epochs [eraseSlots]uint64, ks [eraseSlots][]byte, err error) {
	b, err := os.ReadFile(s.eraseKeysPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return epochs, ks, fmt.Errorf("client: read %s: %w", EraseKeysFileName, err)
	}
	if err != nil || len(b) != eraseSlots*eraseSlotSize {
		return epochs, ks, errEraseKeys
	}
	const n = chacha20poly1305.NonceSizeX
	for i := range eraseSlots {
		sl := b[i*eraseSlotSize : (i+1)*eraseSlotSize]
		p, err := s.slotAEAD.Open(nil, sl[:n], sl[n:n+8+eraseKeySize+chacha20poly1305.Overhead], slotAD(i))
		if err != nil {
			continue
		}
		epochs[i], ks[i] = binary.BigEndian.Uint64(p), p[8:]
	}
	return epochs, ks, nil
}

// writeSlot overwrites slot i in place and syncs the file.
func (s *store) writeSlot(i int, b []byte) error {
	f, err := os.OpenFile(s.eraseKeysPath(), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("client: %s: %w", EraseKeysFileName, err)
	}
	_, err = f.WriteAt(b, int64(i*eraseSlotSize))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("client: %s: %w", EraseKeysFileName, err)
	}
	return nil
}

// wipeSlot overwrites slot i with random bytes.
func (s *store) wipeSlot(i int) error {
	b := make([]byte, eraseSlotSize)
	rand.Read(b)
	return s.writeSlot(i, b)
}

// createEraseKeys writes a new erase.keys holding the key of epoch in
// slot 0 (slot 1 random), synced with its directory.
func (s *store) createEraseKeys(epoch uint64, key []byte) error {
	b := make([]byte, eraseSlots*eraseSlotSize)
	rand.Read(b)
	copy(b, s.sealSlot(0, epoch, key))
	p := s.eraseKeysPath()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("client: create %s: %w", EraseKeysFileName, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(p))
	}
	if err != nil {
		return fmt.Errorf("client: create %s: %w", EraseKeysFileName, err)
	}
	return nil
}

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for sync; NTFS journals the metadata
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ---- the keyring ----

// encodeRing: u32 n || n × (u8 len || bucket || u8 len || key || record
// key [32]), sorted.
func encodeRing(ring map[string][]byte) []byte {
	ids := make([]string, 0, len(ring))
	for id := range ring {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	b := binary.BigEndian.AppendUint32(nil, uint32(len(ids)))
	for _, id := range ids {
		bucket, key, _ := bytes.Cut([]byte(id), []byte{0})
		b = append(b, byte(len(bucket)))
		b = append(b, bucket...)
		b = append(b, byte(len(key)))
		b = append(b, key...)
		b = append(b, ring[id]...)
	}
	return b
}

func decodeRing(b []byte) (map[string][]byte, error) {
	r := protocol.NewReader(b)
	n := int(r.U32("key count"))
	if r.Err() != nil || n > len(b) {
		return nil, errStoreCorrupt
	}
	ring := make(map[string][]byte, n)
	for range n {
		bucket := r.Take(int(r.U8("bucket length")), "bucket")
		key := r.Take(int(r.U8("key length")), "key")
		k := r.Take(eraseKeySize, "erasure key")
		if r.Err() != nil {
			return nil, errStoreCorrupt
		}
		ring[ringID(bucket, key)] = bytes.Clone(k)
	}
	if r.Len() != 0 {
		return nil, errStoreCorrupt
	}
	return ring, nil
}

func sealWith(key, plain, ad []byte) []byte {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		panic(err) // key sizes are constants
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(plain)+chacha20poly1305.Overhead)
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, ad)
}

func openWith(key, v, ad []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil || len(v) < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return nil, errStoreCorrupt
	}
	p, err := aead.Open(nil, v[:chacha20poly1305.NonceSizeX], v[chacha20poly1305.NonceSizeX:], ad)
	if err != nil {
		return nil, errStoreCorrupt
	}
	return p, nil
}

func (t *tx) storeRecord() (*storeRecord, error) {
	var r storeRecord
	ok, err := t.get(bucketMeta, t.s.index(bucketMeta, keyStoreRecord), &r)
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

func (t *tx) putStoreRecord(r *storeRecord) error {
	r.V = 1
	return t.put(bucketMeta, t.s.index(bucketMeta, keyStoreRecord), r)
}

// erasure returns the transaction's keyring, loading it on first use.
func (t *tx) erasure() (*eraseState, error) {
	if t.er != nil {
		return t.er, nil
	}
	rec, err := t.storeRecord()
	if err != nil {
		return nil, err
	}
	if rec == nil || rec.Schema < 2 {
		return nil, errStoreCorrupt // prepare migrates schema 1 first
	}
	epochs, ks, err := t.s.readSlots()
	if err != nil {
		return nil, err
	}
	st := &eraseState{epoch: rec.Epoch, newSlot: -1, oldSlot: -1}
	for i := range eraseSlots {
		if epochs[i] == rec.Epoch {
			st.key = ks[i]
		}
	}
	if st.key == nil {
		return nil, errEraseKeys
	}
	rk := t.s.index(bucketErasure, keyKeyring)
	v := t.bt.Bucket(bucketErasure).Get(rk)
	if v == nil {
		st.ring = map[string][]byte{}
	} else {
		p, err := openWith(st.key, v, ad(bucketErasure, rk))
		if err != nil {
			return nil, err
		}
		if st.ring, err = decodeRing(p); err != nil {
			return nil, err
		}
	}
	t.er = st
	return st, nil
}

// putEphemeral seals v under a fresh record key; a record key it replaces
// is dropped.
func (t *tx) putEphemeral(bucket, key, val []byte) error {
	st, err := t.erasure()
	if err != nil {
		return err
	}
	if len(key) > 255 {
		return errors.New("client: ephemeral record key too long") // keys are 16-byte indexes and IDs
	}
	id := ringID(bucket, key)
	if _, ok := st.ring[id]; ok {
		st.shred = true
	}
	k := make([]byte, eraseKeySize)
	rand.Read(k)
	st.ring[id], st.dirty = k, true
	return t.bt.Bucket(bucket).Put(key, sealWith(k, val, ad(bucket, key)))
}

func (t *tx) openEphemeral(bucket, key, v []byte) ([]byte, error) {
	st, err := t.erasure()
	if err != nil {
		return nil, err
	}
	k, ok := st.ring[ringID(bucket, key)]
	if !ok {
		return nil, errStoreCorrupt
	}
	return openWith(k, v, ad(bucket, key))
}

func (t *tx) delEphemeral(bucket, key []byte) error {
	st, err := t.erasure()
	if err != nil {
		return err
	}
	id := ringID(bucket, key)
	if _, ok := st.ring[id]; ok {
		delete(st.ring, id)
		st.shred, st.dirty = true, true
	}
	return t.bt.Bucket(bucket).Delete(key)
}

// finish stores a changed keyring at the end of a read-write transaction:
// after a record key was dropped, under the key of a new epoch, written
// to the other slot of erase.keys (and synced) before the commit.
func (t *tx) finish() error {
	st := t.er
	if st == nil || !st.dirty {
		return nil
	}
	if st.shred {
		epochs, _, err := t.s.readSlots()
		if err != nil {
			return err
		}
		cur := -1
		for i := range eraseSlots {
			if epochs[i] == st.epoch {
				cur = i
			}
		}
		if cur < 0 {
			return errEraseKeys
		}
		next := make([]byte, eraseKeySize)
		rand.Read(next)
		st.newSlot = 1 - cur
		if err := t.s.writeSlot(st.newSlot, t.s.sealSlot(st.newSlot, st.epoch+1, next)); err != nil {
			return err
		}
		rec, err := t.storeRecord()
		if err != nil {
			return err
		}
		rec.Epoch = st.epoch + 1
		if err := t.putStoreRecord(rec); err != nil {
			return err
		}
		st.oldSlot, st.epoch, st.key = cur, st.epoch+1, next
	}
	rk := t.s.index(bucketErasure, keyKeyring)
	return t.bt.Bucket(bucketErasure).Put(rk, sealWith(st.key, encodeRing(st.ring), ad(bucketErasure, rk)))
}

// afterCommit destroys the old epoch's key once the new epoch is
// committed, or the new epoch's key if the commit failed (then the store
// still names the old one).
func (t *tx) afterCommit(committed bool) error {
	st := t.er
	if st == nil || st.newSlot < 0 {
		return nil
	}
	if committed {
		return t.s.wipeSlot(st.oldSlot)
	}
	return t.s.wipeSlot(st.newSlot)
}

// ---- schema, migration, scrubbing ----

// prepare runs at the start of every read-write open: it creates the
// store record of a new store, migrates an older schema (one transaction),
// refuses a newer one, finishes a scrub, and wipes any slot of erase.keys
// that the store does not name (left by a crash between a commit and a
// wipe).
func (s *store) prepare(db *bolt.DB) error {
	var rec *storeRecord
	err := db.View(func(bt *bolt.Tx) error {
		if bt.Bucket(bucketMeta) == nil {
			return nil
		}
		var err error
		rec, err = (&tx{s: s, bt: bt}).storeRecord()
		return err
	})
	if err != nil {
		return err
	}
	if rec != nil && rec.Schema > storeSchema {
		return fmt.Errorf("%w (store schema %d; this version reads schema %d and older): upgrade postern to open this home", ErrStoreTooNew, rec.Schema, storeSchema)
	}
	if rec == nil || rec.Schema < storeSchema {
		fresh := rec == nil
		err = db.Update(func(bt *bolt.Tx) error {
			for _, b := range allBuckets {
				if _, err := bt.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			t := &tx{s: s, bt: bt}
			var err error
			if rec == nil {
				if rec, err = t.newStoreRecord(); err != nil {
					return err
				}
			}
			for rec.Schema < storeSchema {
				if err := migrations[rec.Schema](t, rec); err != nil {
					return fmt.Errorf("client: migrate the local store from schema %d: %w", rec.Schema, err)
				}
				rec.Schema++
			}
			if err := t.putStoreRecord(rec); err != nil {
				return err
			}
			return t.finish()
		})
		if err != nil {
			if fresh {
				// Not committed: the store names no epoch, and the
				// erase.keys just made belongs to nothing.
				os.Remove(s.eraseKeysPath())
			}
			return err
		}
	}
	if rec.Scrub {
		if err := s.scrub(db); err != nil {
			return err
		}
	}
	epochs, _, err := s.readSlots()
	if errors.Is(err, errEraseKeys) || (err == nil && epochs[0] != rec.Epoch && epochs[1] != rec.Epoch) {
		return s.lost(db)
	}
	if err != nil {
		return err
	}
	for i, e := range epochs {
		if e != 0 && e != rec.Epoch {
			if err := s.wipeSlot(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// lost handles a store whose epoch key is not in erase.keys: a store.db
// restored from a copy, or an erase.keys deleted or damaged. Its
// ephemeral values cannot be read by anyone any more (that is the point):
// they are deleted and a new epoch starts, so that the sessions are
// started again (with a notice, session.go) and the prekeys replaced
// (prekeys.go: the signed prekey is rotated and republished at the next
// check; IDs keep increasing).
func (s *store) lost(db *bolt.DB) error {
	return db.Update(func(bt *bolt.Tx) error {
		t := &tx{s: s, bt: bt}
		rec, err := t.storeRecord()
		if err != nil || rec == nil {
			return errors.Join(err, errStoreCorrupt)
		}
		for _, b := range append([][]byte{bucketErasure}, ephemeralBuckets...) {
			if err := bt.DeleteBucket(b); err != nil {
				return err
			}
			if _, err := bt.CreateBucket(b); err != nil {
				return err
			}
		}
		if ps, err := t.prekeyState(); err != nil {
			return err
		} else if ps != nil {
			ps.Signed, ps.SignedAt, ps.BundleStale, ps.Retired = 0, time.Time{}, true, nil
			if err := t.putPrekeyState(ps); err != nil {
				return err
			}
		}
		key := make([]byte, eraseKeySize)
		rand.Read(key)
		rec.Epoch++
		if err := s.createEraseKeys(rec.Epoch, key); err != nil {
			return err
		}
		t.er = &eraseState{epoch: rec.Epoch, key: key, ring: map[string][]byte{}, dirty: true, newSlot: -1, oldSlot: -1}
		if err := t.putStoreRecord(rec); err != nil {
			return err
		}
		return t.finish()
	})
}

// migrations[n] brings a store of schema n to schema n+1. prepare runs
// every one that is due in a single transaction, with the store record
// saved at the end, so a store is at one schema or the next, never
// between. Schema 1 is a store without a store record.
var migrations = map[int]func(*tx, *storeRecord) error{
	1: migrate1to2,
}

// newStoreRecord starts the erasure of a store that has no store record:
// erase.keys with epoch 1 and an empty keyring. It reports whether the
// store held anything (then it is schema 1, the layout before erasure).
func (t *tx) newStoreRecord() (*storeRecord, error) {
	legacy := false
	for _, b := range allBuckets {
		if k, _ := t.bt.Bucket(b).Cursor().First(); k != nil {
			legacy = true
		}
	}
	key := make([]byte, eraseKeySize)
	rand.Read(key)
	if err := t.s.createEraseKeys(1, key); err != nil {
		return nil, err
	}
	t.er = &eraseState{epoch: 1, key: key, ring: map[string][]byte{}, dirty: true, newSlot: -1, oldSlot: -1}
	if legacy {
		return &storeRecord{Schema: 1, Epoch: 1}, nil
	}
	return &storeRecord{Schema: storeSchema, Epoch: 1}, nil
}

// migrate1to2: every value of the ephemeral buckets is re-sealed under a
// record key, and the store is marked for scrubbing (its free pages, and
// the pages this transaction frees, hold values sealed under Kenc).
func migrate1to2(t *tx, rec *storeRecord) error {
	rec.Scrub = true
	return t.resealEphemeral(bucketPrekeys, bucketSessions)
}

// resealEphemeral re-seals every value of buckets, sealed under Kenc,
// under record keys: the migration of a bucket that becomes ephemeral
// (which also needs the scrub).
func (t *tx) resealEphemeral(buckets ...[]byte) error {
	for _, b := range buckets {
		type kv struct{ k, v []byte }
		var all []kv
		c := t.bt.Bucket(b).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			p, err := t.decryptEnc(b, k, v)
			if err != nil {
				return err
			}
			all = append(all, kv{bytes.Clone(k), p})
		}
		for _, e := range all {
			if err := t.putEphemeral(b, e.k, e.v); err != nil {
				return err
			}
		}
	}
	return nil
}

// scrub overwrites every free page of the store file, and the file past
// its last page, with zeros, syncs, and clears the store record's Scrub.
// The write lock is held (db is open read-write), so no other process
// reads the pages.
func (s *store) scrub(db *bolt.DB) error {
	return db.Update(func(bt *bolt.Tx) error {
		f, err := os.OpenFile(s.path, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("client: scrub local store: %w", err)
		}
		defer f.Close()
		ps := db.Info().PageSize
		zero := make([]byte, ps)
		id := 0
		for ; ; id++ {
			info, err := bt.Page(id)
			if err != nil {
				return err
			}
			if info == nil {
				break // the high-water mark
			}
			if info.Type == "free" {
				if _, err := f.WriteAt(zero, int64(id)*int64(ps)); err != nil {
					return fmt.Errorf("client: scrub local store: %w", err)
				}
			}
		}
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		for off := int64(id) * int64(ps); off < fi.Size(); off += int64(ps) {
			if _, err := f.WriteAt(zero[:min(int64(ps), fi.Size()-off)], off); err != nil {
				return fmt.Errorf("client: scrub local store: %w", err)
			}
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("client: scrub local store: %w", err)
		}
		t := &tx{s: s, bt: bt}
		rec, err := t.storeRecord()
		if err != nil || rec == nil {
			return errors.Join(err, errStoreCorrupt)
		}
		rec.Scrub = false
		return t.putStoreRecord(rec)
	})
}

// checkSchema is view's check: a store this code can read as it is, or
// errNeedsPrepare (an older schema, or a scrub or migration pending).
func checkSchema(bt *bolt.Tx, s *store) error {
	t := &tx{s: s, bt: bt}
	if bt.Bucket(bucketMeta) == nil {
		return errNeedsPrepare
	}
	rec, err := t.storeRecord()
	if err != nil {
		return err
	}
	switch {
	case rec == nil || rec.Scrub || rec.Schema < storeSchema:
		return errNeedsPrepare
	case rec.Schema > storeSchema:
		return fmt.Errorf("%w (store schema %d; this version reads schema %d and older): upgrade postern to open this home", ErrStoreTooNew, rec.Schema, storeSchema)
	}
	return nil
}

var errNeedsPrepare = errors.New("client: local store needs a read-write open first")
