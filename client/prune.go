package client

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/postern/postern/protocol"
)

// The records of processed envelopes (bucketSeen) exist to show each
// message once although the relay delivers at least once. A relay can
// only deliver an envelope again while it keeps it, that is until its
// retention ends; past that the record is dead weight in every home.
const (
	// seenRetention is how long a processed-envelope record is kept:
	// four times the relay's default retention, so that a relay
	// configured to keep envelopes longer is still covered.
	seenRetention = 4 * protocol.DefaultRetention
	// pruneInterval is how often Sync looks for dead records.
	pruneInterval = 24 * time.Hour
)

var keySeenPruned = []byte("seen-pruned")

// pruneSeen deletes processed-envelope records older than seenRetention,
// at most once per pruneInterval per home (the last run is stored, so
// short-lived CLI processes do not each walk the bucket). It returns how
// many it deleted. Failures are returned for logging; they change nothing.
func (c *Client) pruneSeen() (int, error) {
	now := c.now()
	n := 0
	err := c.st.update(func(t *tx) error {
		n = 0
		var last seenRecord
		if _, err := t.Get(bucketMeta, t.Index(bucketMeta, keySeenPruned), &last); err != nil {
			return err
		}
		if now.Sub(last.At) < pruneInterval {
			return nil
		}
		cutoff := now.Add(-seenRetention)
		var dead [][]byte
		err := t.Each(bucketSeen, func(k, plain []byte) error {
			var r seenRecord
			if err := json.Unmarshal(plain, &r); err != nil {
				return errStoreCorrupt
			}
			if r.At.Before(cutoff) {
				dead = append(dead, bytes.Clone(k)) // deleting under a cursor skips keys
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range dead {
			if err := t.Delete(bucketSeen, k); err != nil {
				return err
			}
		}
		n = len(dead)
		return t.Put(bucketMeta, t.Index(bucketMeta, keySeenPruned), &seenRecord{At: now})
	})
	return n, err
}
