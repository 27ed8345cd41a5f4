package store

// migrate5to6 adds the bucket of group records (group.go), empty; the
// schema number moves so that a version that knows nothing of groups
// refuses the store (ErrTooNew) instead of dropping what it cannot read.
func migrate5to6(t *Tx, _ *Record) error {
	_, err := t.bt.CreateBucketIfNotExists(BucketGroups)
	return err
}
