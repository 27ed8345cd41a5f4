package bboltstore

import "time"

// ObserveCommits makes the committer call fn with the duration of every
// commit it makes (the write transaction and its fsync), for the relay's
// commit latency histogram. fn runs on the committer goroutine: it must
// be quick. A later call replaces fn; nil stops the calls.
func (s *Store) ObserveCommits(fn func(time.Duration)) {
	if fn == nil {
		s.onCommit.Store(nil)
		return
	}
	s.onCommit.Store(&fn)
}

// observeCommit reports a commit that began at start.
func (s *Store) observeCommit(start time.Time) {
	if fn := s.onCommit.Load(); fn != nil {
		(*fn)(time.Since(start))
	}
}
