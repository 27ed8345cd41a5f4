package store

// migrate5to6 adds the buckets of group records and of what waits for
// them (group.go), empty; the
// schema number moves so that a version that knows nothing of groups
// refuses the store (ErrTooNew) instead of dropping what it cannot read.
func migrate5to6(t *Tx, _ *Record) error {
	for _, b := range [][]byte{BucketGroups, BucketGroupPending} {
		if _, err := t.bt.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}
