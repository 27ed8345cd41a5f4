package store

// migratePersonDevices (schema 8 to 9) builds the person -> devices index
// (persondevices.go) from every device record, in the migration's one
// transaction: from schema 9 on, DevicesOf reads only the index and the
// person's own records, so a store without the index would show every
// person without devices. The schema number moves so that a version that
// does not keep the index refuses the store (ErrTooNew) instead of
// writing device records without their entries.
func migratePersonDevices(t *Tx, _ *Record) error {
	return t.rebuildPersonDevices()
}
