package bboltstore

import (
	"context"
	"encoding/binary"
	"os"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/relay/store"
)

var _ store.StatsReader = (*Store)(nil)

// Stats reports what the store holds, in one read-only transaction that
// never waits for the committer. It counts the expiry index's keys by
// walking its pages (bbolt keeps no key count: about one 8 KiB page per
// 450 envelopes), reads the oldest envelope's header by the sequence index
// (insertion order, so the first key is the oldest) and takes the file
// size from the file system (bbolt grows the file ahead of its pages).
func (s *Store) Stats(ctx context.Context) (store.Stats, error) {
	var st store.Stats
	err := s.view(func(tx *bolt.Tx) error {
		fi, err := os.Stat(tx.DB().Path())
		if err != nil {
			return err
		}
		st.Bytes = fi.Size()
		st.Envelopes = int64(tx.Bucket(bEnvExp).Stats().KeyN)
		k, v := tx.Bucket(bEnv).Cursor().First()
		if k == nil {
			return nil
		}
		if len(k) != 8 || len(v) < envHeader {
			return corrupt("envelope record of %d bytes", len(v))
		}
		received := binary.BigEndian.Uint64(v[32:40])
		if received > maxStoredTime {
			return corrupt("envelope record %d: time out of range", binary.BigEndian.Uint64(k))
		}
		st.OldestReceived = unixTime(received)
		return nil
	})
	return st, err
}
