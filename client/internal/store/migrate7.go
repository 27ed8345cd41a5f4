package store

// migrateDirectory (schema 7 to 8) adds the bucket of the organisation
// directory (directory.go), empty; the schema number moves so that a
// version that knows nothing of directories refuses the store (ErrTooNew)
// instead of dropping what it cannot read.
func migrateDirectory(t *Tx, _ *Record) error {
	_, err := t.bt.CreateBucketIfNotExists(BucketDirectory)
	return err
}
