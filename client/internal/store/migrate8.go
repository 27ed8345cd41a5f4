package store

// migrateDirectory adds the bucket of the organisation directory
// (directory.go), empty; the schema number moves so that a version that
// knows nothing of directories refuses the store (ErrTooNew) instead of
// dropping what it cannot read. It is the store's schema 8 once the
// teams' schema 7 precedes it; on its own it follows schema 6.
func migrateDirectory(t *Tx, _ *Record) error {
	_, err := t.bt.CreateBucketIfNotExists(BucketDirectory)
	return err
}
