package store

// migrate6to7 adds the buckets of team records and queue conversations
// (team.go), empty; the schema number moves so that a version that knows
// nothing of teams refuses the store (ErrTooNew) instead of dropping what
// it cannot read, as a team queue's conversation.
func migrate6to7(t *Tx, _ *Record) error {
	for _, b := range [][]byte{BucketTeams, BucketQueues} {
		if _, err := t.bt.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}
