package store

import "bytes"

// migrate3to4 adds the inbox (inbox.go): the buckets of folders, drafts
// and placements, empty; messages stay in their default folders. Every
// incoming message of schema 3 is marked read (at the time it was
// received): this version counts unread messages, and a home that has
// been read for years must not open with all of them unread. No receipt
// is sent for them. The schema number moves so that a version that knows
// nothing of folders and drafts refuses the store (ErrTooNew) instead of
// working on it without them.
func migrate3to4(t *Tx, _ *Record) error {
	for _, b := range [][]byte{BucketFolders, BucketDrafts, BucketPlacements} {
		if _, err := t.bt.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	type kv struct{ k, v []byte }
	var msgs []kv
	err := t.Each(BucketMessages, func(k, v []byte) error {
		var m Message
		if err := Unmarshal(v, &m); err != nil {
			return err
		}
		if m.Outgoing || m.Notice || m.Read {
			return nil
		}
		m.Read, m.ReadAt = true, m.Received
		b, err := marshal(&m)
		if err != nil {
			return err
		}
		msgs = append(msgs, kv{bytes.Clone(k), b})
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := t.PutRaw(BucketMessages, m.k, m.v); err != nil {
			return err
		}
	}
	return nil
}
