package store

// migrate6to7 adds the buckets of team records, queue conversations
// (team.go) and the team agent's records (teamagent.go), empty; the schema number moves so that a version that knows
// nothing of teams refuses the store (ErrTooNew) instead of dropping what
// it cannot read, as a team queue's conversation.
func migrate6to7(t *Tx, _ *Record) error {
	for _, b := range [][]byte{BucketTeams, BucketQueues, BucketTeamAgent} {
		if _, err := t.bt.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}
