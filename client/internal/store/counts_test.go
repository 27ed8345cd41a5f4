package store

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// checkCounts checks the counts as stored against those counted from the
// messages, and against want unless it is nil.
func checkCounts(t *testing.T, st *Store, want []FolderCount) {
	t.Helper()
	err := st.View(func(tx *Tx) error {
		var fc folderCounts
		ok, err := tx.Get(BucketMeta, tx.Index(BucketMeta, keyFolderCounts), &fc)
		if err != nil || !ok {
			return fmt.Errorf("no record of counts: %v", err)
		}
		scan, err := tx.countFolders()
		if err != nil {
			return err
		}
		if !slices.Equal(fc.Counts, scan) {
			return fmt.Errorf("stored counts %+v, the messages give %+v", fc.Counts, scan)
		}
		if want != nil && !slices.Equal(fc.Counts, want) {
			return fmt.Errorf("counts %+v, want %+v", fc.Counts, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFolderCounts: the stored counts follow every add, change and
// delete of a message, in the same transaction; a change rolled back
// leaves them as they were; a store whose record of counts is missing
// counts its messages again.
func TestFolderCounts(t *testing.T) {
	st := testStore(t)
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	update := func(fn func(*Tx) error) {
		t.Helper()
		if err := st.Update(fn); err != nil {
			t.Fatal(err)
		}
	}
	update(func(tx *Tx) error {
		for i := range 6 {
			m := &Message{ID: fmt.Sprintf("%016x", i), Text: "x", Received: now, Outgoing: i >= 4, Notice: i == 3}
			if _, err := tx.AddMessage(m); err != nil {
				return err
			}
		}
		// A placement that files the next message in Archive, read.
		if _, err := tx.PutPlacement(&Placement{Message: fmt.Sprintf("%016x", 6), Folder: "archive", FolderStamp: Stamp{MS: 1}, Read: true, ReadAt: now, Added: now}); err != nil {
			return err
		}
		_, err := tx.AddMessage(&Message{ID: fmt.Sprintf("%016x", 6), Text: "x", Received: now})
		return err
	})
	checkCounts(t, st, []FolderCount{
		{FolderKey{}, 4, 3},
		{FolderKey{Outgoing: true}, 2, 0},
		{FolderKey{Folder: "archive"}, 1, 0},
	})
	lab := "00112233445566778899aabbccddeeff"
	update(func(tx *Tx) error {
		if _, err := tx.UpdateMessage(fmt.Sprintf("%016x", 0), func(m *Message) { m.Folder = lab }); err != nil {
			return err
		}
		if _, err := tx.UpdateMessage(fmt.Sprintf("%016x", 1), func(m *Message) { m.Read = true }); err != nil {
			return err
		}
		if _, err := tx.UpdateMessage(fmt.Sprintf("%016x", 4), func(m *Message) { m.Folder = "archive" }); err != nil {
			return err
		}
		if _, err := tx.UpdateMessage(fmt.Sprintf("%016x", 5), func(m *Message) { m.Text = "unchanged folder" }); err != nil {
			return err
		}
		return tx.DeleteMessage(fmt.Sprintf("%016x", 2))
	})
	want := []FolderCount{
		{FolderKey{}, 2, 0},
		{FolderKey{Folder: lab}, 1, 1},
		{FolderKey{Folder: "archive"}, 1, 0},
		{FolderKey{Folder: "archive", Outgoing: true}, 1, 0},
		{FolderKey{Outgoing: true}, 1, 0},
	}
	slices.SortFunc(want, func(a, b FolderCount) int { return compareCount(a, b) })
	checkCounts(t, st, want)

	// Rolled back with the transaction.
	err := st.Update(func(tx *Tx) error {
		if _, err := tx.AddMessage(&Message{ID: "ffffffffffffffff", Text: "x", Received: now}); err != nil {
			return err
		}
		return fmt.Errorf("roll back")
	})
	if err == nil {
		t.Fatal("the update did not fail")
	}
	checkCounts(t, st, want)

	// The record lost: read from the messages, stored again with the
	// next change.
	update(func(tx *Tx) error { return tx.Delete(BucketMeta, tx.Index(BucketMeta, keyFolderCounts)) })
	err = st.View(func(tx *Tx) error {
		got, err := tx.FolderCounts()
		if err == nil && !slices.Equal(got, want) {
			err = fmt.Errorf("counts %+v without the record, want %+v", got, want)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	update(func(tx *Tx) error {
		_, err := tx.UpdateMessage(fmt.Sprintf("%016x", 0), func(m *Message) { m.Read = true })
		return err
	})
	checkCounts(t, st, nil)
}

func compareCount(a, b FolderCount) int {
	s := sortedCounts(map[FolderKey]*FolderCount{a.FolderKey: &a, b.FolderKey: &b})
	if len(s) < 2 || a.FolderKey == b.FolderKey {
		return 0
	}
	if s[0].FolderKey == a.FolderKey {
		return -1
	}
	return 1
}
