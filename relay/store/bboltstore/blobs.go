package bboltstore

import (
	"context"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// ---- blobs ----
//
// blobs:          key(32) -> size u64 || committed u64 || token hash(32)
//                            || created u64 || finished u64 (0 = unfinished) || expires u64
// blob_exp:       expires u64 || key(32) -> empty
// blob_use:       device(32) -> reserved bytes u64 || unfinished count u32
// blob_quota:     slot(32) -> device(32) || bytes u64 || expires u64 || unfinished u8
// blob_quota_exp: expires u64 || slot(32) -> empty
//
// Schema 3: a blob record names no device. A device's quota is the sum
// of its ledger entries (blob_quota), kept as a running total in
// blob_use; an entry is named by a slot that only the upload token
// links to a blob (store.QuotaSlot), and its expiry is the blob's rounded
// up to the hour, so that equal times do not pair entries with blobs.

const blobRecordSize = 8 + 8 + 32 + 8 + 8 + 8

func encodeBlob(b store.Blob) []byte {
	v := make([]byte, 0, blobRecordSize)
	v = binary.BigEndian.AppendUint64(v, b.Size)
	v = binary.BigEndian.AppendUint64(v, b.Committed)
	v = append(v, b.TokenHash[:]...)
	v = binary.BigEndian.AppendUint64(v, timeU64(b.Created))
	var fin uint64
	if b.Done() {
		fin = timeU64(b.Finished)
		if fin == 0 {
			fin = 1 // 0 means unfinished
		}
	}
	v = binary.BigEndian.AppendUint64(v, fin)
	return binary.BigEndian.AppendUint64(v, timeU64(b.Expires))
}

func decodeBlob(key []byte, v []byte) (store.Blob, error) {
	var b store.Blob
	if len(v) != blobRecordSize || len(key) != 32 {
		return b, corrupt("blob record of %d bytes", len(v))
	}
	copy(b.Key[:], key)
	b.Size = binary.BigEndian.Uint64(v[0:8])
	b.Committed = binary.BigEndian.Uint64(v[8:16])
	copy(b.TokenHash[:], v[16:48])
	created, fin, exp := binary.BigEndian.Uint64(v[48:56]), binary.BigEndian.Uint64(v[56:64]), binary.BigEndian.Uint64(v[64:72])
	if created > maxStoredTime || fin > maxStoredTime || exp > maxStoredTime || b.Committed > b.Size ||
		b.Committed%protocol.BlobCipherChunkSize != 0 || (fin != 0) != (b.Committed == b.Size) {
		return b, corrupt("blob record out of range")
	}
	b.Created = unixTime(created)
	if fin != 0 {
		b.Finished = unixTime(fin)
	}
	b.Expires = unixTime(exp)
	return b, nil
}

// quotaEntry is one blob's reservation in its device's ledger.
type quotaEntry struct {
	dev        protocol.DeviceID
	bytes      uint64
	expires    uint64 // Unix s, a whole hour
	unfinished bool
}

const quotaEntrySize = 32 + 8 + 8 + 1

func encodeQuota(q quotaEntry) []byte {
	v := make([]byte, 0, quotaEntrySize)
	v = append(v, q.dev[:]...)
	v = binary.BigEndian.AppendUint64(v, q.bytes)
	v = binary.BigEndian.AppendUint64(v, q.expires)
	if q.unfinished {
		return append(v, 1)
	}
	return append(v, 0)
}

func decodeQuota(v []byte) (quotaEntry, error) {
	var q quotaEntry
	if len(v) != quotaEntrySize || v[48] > 1 {
		return q, corrupt("quota ledger entry of %d bytes", len(v))
	}
	copy(q.dev[:], v[:32])
	q.bytes = binary.BigEndian.Uint64(v[32:40])
	q.expires = binary.BigEndian.Uint64(v[40:48])
	q.unfinished = v[48] == 1
	if q.expires > maxStoredTime+3600 {
		return q, corrupt("quota ledger entry expiry out of range")
	}
	return q, nil
}

// quotaHour rounds a time up to the next whole hour (Unix s).
func quotaHour(t time.Time) uint64 {
	u := timeU64(t)
	return (u + 3599) / 3600 * 3600
}

func quotaExpKey(exp uint64, slot store.QuotaSlot) []byte { return cat(u64(exp), slot[:]) }

func putQuota(tx *bolt.Tx, slot store.QuotaSlot, q quotaEntry) error {
	if err := tx.Bucket(bBlobQuota).Put(slot[:], encodeQuota(q)); err != nil {
		return err
	}
	return tx.Bucket(bBlobQuotaExp).Put(quotaExpKey(q.expires, slot), nil)
}

func blobUsage(tx *bolt.Tx, dev protocol.DeviceID) (store.BlobUsage, error) {
	v := tx.Bucket(bBlobUse).Get(dev[:])
	switch len(v) {
	case 0:
		return store.BlobUsage{}, nil
	case 12:
		return store.BlobUsage{Bytes: binary.BigEndian.Uint64(v[:8]), Unfinished: int(binary.BigEndian.Uint32(v[8:]))}, nil
	}
	return store.BlobUsage{}, corrupt("blob usage record of %d bytes", len(v))
}

func putBlobUsage(tx *bolt.Tx, dev protocol.DeviceID, u store.BlobUsage) error {
	if u.Bytes == 0 && u.Unfinished == 0 {
		return tx.Bucket(bBlobUse).Delete(dev[:])
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 12), u.Bytes)
	return tx.Bucket(bBlobUse).Put(dev[:], binary.BigEndian.AppendUint32(v, uint32(u.Unfinished)))
}

func blobExpKey(exp time.Time, key store.BlobKey) []byte { return cat(u64(timeU64(exp)), key[:]) }

func (s *Store) CreateBlob(ctx context.Context, b store.Blob, owner protocol.DeviceID, slot store.QuotaSlot, quota uint64, maxUnfinished int) error {
	return s.update(func(tx *bolt.Tx) error {
		blobs := tx.Bucket(bBlobs)
		if blobs.Get(b.Key[:]) != nil || tx.Bucket(bBlobQuota).Get(slot[:]) != nil {
			return store.ErrBlobQuota // a 256-bit random collision; never in practice
		}
		u, err := blobUsage(tx, owner)
		if err != nil {
			return err
		}
		if u.Unfinished >= maxUnfinished || b.Size > quota || u.Bytes > quota-b.Size {
			return store.ErrBlobQuota
		}
		b.Committed, b.Finished = 0, time.Time{}
		if err := blobs.Put(b.Key[:], encodeBlob(b)); err != nil {
			return err
		}
		if err := tx.Bucket(bBlobExp).Put(blobExpKey(b.Expires, b.Key), nil); err != nil {
			return err
		}
		if err := putQuota(tx, slot, quotaEntry{dev: owner, bytes: b.Size, expires: quotaHour(b.Expires), unfinished: true}); err != nil {
			return err
		}
		u.Bytes += b.Size
		u.Unfinished++
		return putBlobUsage(tx, owner, u)
	})
}

func (s *Store) Blob(ctx context.Context, key store.BlobKey) (store.Blob, error) {
	var b store.Blob
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bBlobs).Get(key[:])
		if v == nil {
			return store.ErrUnknownBlob
		}
		var err error
		b, err = decodeBlob(key[:], v)
		return err
	})
	return b, err
}

func (s *Store) CommitBlob(ctx context.Context, key store.BlobKey, slot store.QuotaSlot, from, to uint64, now, finishedExpiry time.Time) (store.Blob, error) {
	var out store.Blob
	err := s.update(func(tx *bolt.Tx) error {
		blobs := tx.Bucket(bBlobs)
		v := blobs.Get(key[:])
		if v == nil {
			return store.ErrUnknownBlob
		}
		b, err := decodeBlob(key[:], v)
		if err != nil {
			return err
		}
		if b.Committed != from || b.Done() || to < from || to > b.Size || to%protocol.BlobCipherChunkSize != 0 {
			return store.ErrBlobOffset
		}
		b.Committed = to
		if to == b.Size {
			// The ledger entry, if this upload's token names one (a blob
			// created before schema 3 has an entry no token names: it
			// expires as it was).
			if v := tx.Bucket(bBlobQuota).Get(slot[:]); v != nil {
				q, err := decodeQuota(v)
				if err != nil {
					return err
				}
				if q.unfinished {
					u, err := blobUsage(tx, q.dev)
					if err != nil {
						return err
					}
					if u.Unfinished > 0 {
						u.Unfinished--
					}
					if err := putBlobUsage(tx, q.dev, u); err != nil {
						return err
					}
				}
				if err := tx.Bucket(bBlobQuotaExp).Delete(quotaExpKey(q.expires, slot)); err != nil {
					return err
				}
				q.unfinished, q.expires = false, quotaHour(finishedExpiry)
				if err := putQuota(tx, slot, q); err != nil {
					return err
				}
			}
			exp := tx.Bucket(bBlobExp)
			if err := exp.Delete(blobExpKey(b.Expires, key)); err != nil {
				return err
			}
			b.Finished, b.Expires = now, finishedExpiry
			if err := exp.Put(blobExpKey(b.Expires, key), nil); err != nil {
				return err
			}
		}
		out = b
		return blobs.Put(key[:], encodeBlob(b))
	})
	return out, err
}

func (s *Store) PurgeBlobs(ctx context.Context, now time.Time, max int) ([]store.BlobKey, error) {
	var keys []store.BlobKey
	err := s.updateFreeing(func(tx *bolt.Tx) error {
		keys = keys[:0]
		var expKeys [][]byte
		limit := timeU64(now)
		c := tx.Bucket(bBlobExp).Cursor()
		for k, _ := c.First(); k != nil && len(keys) < max; k, _ = c.Next() {
			if len(k) != 40 {
				return corrupt("blob expiry key of %d bytes", len(k))
			}
			if binary.BigEndian.Uint64(k[:8]) > limit {
				break
			}
			var key store.BlobKey
			copy(key[:], k[8:])
			keys = append(keys, key)
			expKeys = append(expKeys, append([]byte(nil), k...))
		}
		blobs := tx.Bucket(bBlobs)
		for i, key := range keys {
			if err := tx.Bucket(bBlobExp).Delete(expKeys[i]); err != nil {
				return err
			}
			if err := blobs.Delete(key[:]); err != nil {
				return err
			}
		}
		return purgeQuota(tx, limit, max)
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// purgeQuota deletes up to max ledger entries whose expiry is at or before
// limit, releasing their bytes (and their unfinished slot) from their
// device's usage.
func purgeQuota(tx *bolt.Tx, limit uint64, max int) error {
	var done [][]byte
	c := tx.Bucket(bBlobQuotaExp).Cursor()
	for k, _ := c.First(); k != nil && len(done) < max; k, _ = c.Next() {
		if len(k) != 40 {
			return corrupt("quota expiry key of %d bytes", len(k))
		}
		if binary.BigEndian.Uint64(k[:8]) > limit {
			break
		}
		done = append(done, append([]byte(nil), k...))
	}
	ledger := tx.Bucket(bBlobQuota)
	for _, k := range done {
		if err := tx.Bucket(bBlobQuotaExp).Delete(k); err != nil {
			return err
		}
		v := ledger.Get(k[8:])
		if v == nil {
			continue // a dangling index entry
		}
		q, err := decodeQuota(v)
		if err != nil {
			return err
		}
		if binary.BigEndian.Uint64(k[:8]) != q.expires {
			continue // an index entry left behind by a move; the entry lives on
		}
		if err := releaseQuota(tx, k[8:], q); err != nil {
			return err
		}
	}
	return nil
}

// releaseQuota deletes ledger entry q (at slot) and gives its bytes, and
// its unfinished slot, back to its device's usage. Its expiry index entry
// is the caller's.
func releaseQuota(tx *bolt.Tx, slot []byte, q quotaEntry) error {
	u, err := blobUsage(tx, q.dev)
	if err != nil {
		return err
	}
	u.Bytes -= min(u.Bytes, q.bytes)
	if q.unfinished && u.Unfinished > 0 {
		u.Unfinished--
	}
	if err := putBlobUsage(tx, q.dev, u); err != nil {
		return err
	}
	return tx.Bucket(bBlobQuota).Delete(slot)
}

func (s *Store) BlobUsage(ctx context.Context, dev protocol.DeviceID) (store.BlobUsage, error) {
	var u store.BlobUsage
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		u, err = blobUsage(tx, dev)
		return err
	})
	return u, err
}

// DeleteBlob deletes one blob's record before its expiry, releasing its
// quota (the uploader gave it up: slot is its upload token's ledger entry),
// and returns the record so that the caller can delete the file.
// ErrUnknownBlob if there is none.
func (s *Store) DeleteBlob(ctx context.Context, key store.BlobKey, slot store.QuotaSlot) (store.Blob, error) {
	var b store.Blob
	err := s.update(func(tx *bolt.Tx) error {
		blobs := tx.Bucket(bBlobs)
		v := blobs.Get(key[:])
		if v == nil {
			return store.ErrUnknownBlob
		}
		var err error
		if b, err = decodeBlob(key[:], v); err != nil {
			return err
		}
		if err := tx.Bucket(bBlobExp).Delete(blobExpKey(b.Expires, key)); err != nil {
			return err
		}
		// The ledger entry its upload token names, if any (a blob made
		// before schema 3 has an entry no token names: it expires as it was).
		if v := tx.Bucket(bBlobQuota).Get(slot[:]); v != nil {
			q, err := decodeQuota(v)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bBlobQuotaExp).Delete(quotaExpKey(q.expires, slot)); err != nil {
				return err
			}
			if err := releaseQuota(tx, slot[:], q); err != nil {
				return err
			}
		}
		return blobs.Delete(key[:])
	})
	return b, err
}
