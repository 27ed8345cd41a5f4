package store

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestMigrate6to7: a store of schema 6 (no team buckets) reaches Schema
// with both buckets, empty, and what it held kept.
func TestMigrate6to7(t *testing.T) {
	st := testStore(t)
	err := st.Update(func(t *Tx) error {
		for _, b := range [][]byte{BucketTeams, BucketQueues, BucketTeamAgent} {
			if err := t.bt.DeleteBucket(b); err != nil {
				return err
			}
		}
		r, err := t.Record()
		if err != nil {
			return err
		}
		r.Schema = 6
		return t.putRecord(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(func(t *Tx) error {
		if r, err := t.Record(); err != nil || r.Schema != Schema {
			return fmt.Errorf("record %+v, %v", r, err)
		}
		for _, b := range [][]byte{BucketTeams, BucketQueues, BucketTeamAgent} {
			if t.bt.Bucket(b) == nil {
				return fmt.Errorf("no bucket %s", b)
			}
		}
		if ts, err := t.Teams(); err != nil || len(ts) != 0 {
			return fmt.Errorf("%d teams, %v", len(ts), err)
		}
		var r testRecord
		if ok, err := t.Get(BucketMeta, t.Index(BucketMeta, testKey), &r); err != nil || !ok || r.Name != "x" {
			return fmt.Errorf("the store's value lost: %v %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTeamRecords: a team record is found under its staff group's
// conversation ID and refused under another; a queue record comes with
// its conversation (type TeamQueue, titled with the outsider), is listed
// per team, and refused under an ID that is not its index.
func TestTeamRecords(t *testing.T) {
	st := testStore(t)
	gid, gid2, conv := NewID(), NewID(), NewID()
	err := st.Update(func(t *Tx) error {
		r := &TeamRecord{ID: t.GroupConversationID(gid), Group: gid, Name: "Pharmacy", ClaimKey: []byte{1}, Created: time.Now()}
		if err := t.PutTeam(r); err != nil {
			return err
		}
		if err := t.PutTeam(&TeamRecord{ID: NewID(), Group: gid2}); !errors.Is(err, ErrCorrupt) {
			return fmt.Errorf("a team under another ID: %v", err)
		}
		got, err := t.Team(r.ID)
		if err != nil || got == nil || got.Name != "Pharmacy" {
			return fmt.Errorf("team %+v, %v", got, err)
		}
		q := &QueueRecord{ID: t.QueueConversationID(gid, conv), Team: gid, Conversation: conv, Outsider: "Pat", Created: time.Now()}
		if err := t.PutQueue(q); err != nil {
			return err
		}
		c, err := t.Conversation(q.ID)
		if err != nil || c == nil || c.Type != TeamQueue || c.Title != "Pat" {
			return fmt.Errorf("conversation %+v, %v", c, err)
		}
		if err := t.PutQueue(&QueueRecord{ID: NewID(), Team: gid, Conversation: conv}); !errors.Is(err, ErrCorrupt) {
			return fmt.Errorf("a queue under another ID: %v", err)
		}
		if qs, err := t.Queues(gid); err != nil || len(qs) != 1 || !bytes.Equal(qs[0].Conversation, conv) {
			return fmt.Errorf("queues %v, %v", qs, err)
		}
		if qs, err := t.Queues(gid2); err != nil || len(qs) != 0 {
			return fmt.Errorf("another team's queues %v, %v", qs, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTeamLogRecords: a team's log takes records only in sequence, each
// with its head in the same transaction; the team's events, the pruning of
// its agent records and another team's log leave them as they are.
func TestTeamLogRecords(t *testing.T) {
	st := testStore(t)
	team, other := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 16)
	hash := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	err := st.Update(func(t *Tx) error {
		if h, err := t.TeamLogHead(team); err != nil || h != nil {
			return fmt.Errorf("an empty log's head %+v, %v", h, err)
		}
		if err := t.AppendTeamLog(team, 2, []byte("two"), hash(2)); !errors.Is(err, ErrCorrupt) {
			return fmt.Errorf("record 2 first: %v", err)
		}
		for i := byte(1); i <= 3; i++ {
			if err := t.AppendTeamLog(team, uint64(i), []byte{i}, hash(i)); err != nil {
				return err
			}
		}
		if err := t.AppendTeamLog(team, 3, []byte("again"), hash(9)); !errors.Is(err, ErrCorrupt) {
			return fmt.Errorf("record 3 again: %v", err)
		}
		if err := t.PutTeamEvent(team, bytes.Repeat([]byte{7}, 75)); err != nil {
			return err
		}
		if err := t.AppendTeamLog(other, 1, []byte("other"), hash(5)); err != nil {
			return err
		}
		return t.PruneAgentRecords(team, func([]byte) bool { return false })
	})
	if err != nil {
		t.Fatal(err)
	}
	err = st.View(func(t *Tx) error {
		h, err := t.TeamLogHead(team)
		if err != nil || h == nil || h.Seq != 3 || !bytes.Equal(h.Hash, hash(3)) {
			return fmt.Errorf("head %+v, %v", h, err)
		}
		for i := byte(1); i <= 3; i++ {
			if b, err := t.TeamLogRecord(team, uint64(i)); err != nil || !bytes.Equal(b, []byte{i}) {
				return fmt.Errorf("record %d: %q, %v", i, b, err)
			}
		}
		if b, err := t.TeamLogRecord(team, 4); err != nil || b != nil {
			return fmt.Errorf("record 4: %q, %v", b, err)
		}
		n := 0
		if err := t.TeamEvents(team, func([]byte) error { n++; return nil }); err != nil || n != 1 {
			return fmt.Errorf("%d events, %v", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
