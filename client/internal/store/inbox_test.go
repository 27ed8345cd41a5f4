package store

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestMigrate3to4: a store of an older schema (2, through 3) reaches
// schema 4 (and on, Schema) with the buckets of folders, drafts and placements, and every
// incoming message read at the time it was received, outgoing ones as they
// were; every message stays in its default folder.
func TestMigrate3to4(t *testing.T) {
	h := makeSchema2(t, t.TempDir(), 3, 90)
	st, err := New(h.path, h.key, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = st.View(func(t *Tx) error {
		if r, err := t.Record(); err != nil || r.Schema != Schema {
			return fmt.Errorf("record %+v, %v", r, err)
		}
		for _, b := range [][]byte{BucketFolders, BucketDrafts, BucketPlacements} {
			if t.bt.Bucket(b) == nil {
				return fmt.Errorf("no bucket %s", b)
			}
		}
		n := 0
		err := t.Messages(func(m *Message) error {
			n++
			switch {
			case m.Folder != "" || !m.FolderStamp.IsZero():
				return fmt.Errorf("message %s in folder %q", m.ID, m.Folder)
			case m.Outgoing && (m.Read || !m.ReadAt.IsZero()):
				return fmt.Errorf("outgoing message %s marked read", m.ID)
			case !m.Outgoing && (!m.Read || !m.ReadAt.Equal(m.Received)):
				return fmt.Errorf("incoming message %s: read %v at %v", m.ID, m.Read, m.ReadAt)
			}
			return nil
		})
		if err == nil && n != h.msgs {
			err = fmt.Errorf("%d messages, want %d", n, h.msgs)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, st, nil) // schema 5: the counts of each folder, stored
}

// TestStampOrder: the later time wins, then the larger device ID; a
// stamp is not after itself.
func TestStampOrder(t *testing.T) {
	a := Stamp{MS: 10, Device: []byte{1}}
	for _, tc := range []struct {
		name string
		s, o Stamp
		want bool
	}{
		{"later time", Stamp{MS: 11, Device: []byte{0}}, a, true},
		{"earlier time", Stamp{MS: 9, Device: []byte{9}}, a, false},
		{"same time, larger device", Stamp{MS: 10, Device: []byte{2}}, a, true},
		{"same time, smaller device", Stamp{MS: 10, Device: []byte{0}}, a, false},
		{"itself", a, a, false},
		{"anything after none", a, Stamp{}, true},
	} {
		if got := tc.s.After(tc.o); got != tc.want {
			t.Errorf("%s: After = %v", tc.name, got)
		}
	}
}

// TestPlacementBeforeMessage: a placement stored before its message is
// applied when the message is stored, and then gone; one with an older
// folder stamp than the message's does not move it.
func TestPlacementBeforeMessage(t *testing.T) {
	st := testStore(t)
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	err := st.Update(func(t *Tx) error {
		p := &Placement{Message: "00000000000000aa", Folder: "archive", FolderStamp: Stamp{MS: 5, Device: []byte{1}}, Read: true, ReadAt: now, Added: now}
		if ok, err := t.PutPlacement(p); err != nil || !ok {
			return fmt.Errorf("PutPlacement: %v, %v", ok, err)
		}
		if _, err := t.AddMessage(&Message{ID: "00000000000000aa", Text: "x", Received: now}); err != nil {
			return err
		}
		m, err := t.MessageByID("00000000000000aa")
		if err != nil {
			return err
		}
		if m.Folder != "archive" || !m.Read || !m.ReadAt.Equal(now) {
			return fmt.Errorf("stored %+v", m)
		}
		if p, err := t.Placement(m.ID); err != nil || p != nil {
			return fmt.Errorf("placement still there: %+v, %v", p, err)
		}
		old := &Placement{Message: "x", Folder: "archive", FolderStamp: Stamp{MS: 1}}
		m2 := &Message{Folder: "", FolderStamp: Stamp{MS: 2}}
		old.Apply(m2)
		if m2.Folder != "" {
			return errors.New("an older placement moved a message")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPlacementsCapped: no more than MaxPlacements wait; one for a
// message that waits already is replaced; when they are full, those older
// than PlacementAge make room.
func TestPlacementsCapped(t *testing.T) {
	st := testStore(t)
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	err := st.Update(func(t *Tx) error {
		for i := range MaxPlacements {
			added := now
			if i < 10 {
				added = now.Add(-PlacementAge - time.Hour)
			}
			if ok, err := t.PutPlacement(&Placement{Message: fmt.Sprintf("%016x", i), Added: added}); err != nil || !ok {
				return fmt.Errorf("placement %d: %v, %v", i, ok, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(func(t *Tx) error {
		if ok, err := t.PutPlacement(&Placement{Message: fmt.Sprintf("%016x", 20), Read: true, Added: now}); err != nil || !ok {
			return fmt.Errorf("replacing a placement: %v, %v", ok, err)
		}
		// Full: the ten old ones make room for the next.
		if ok, err := t.PutPlacement(&Placement{Message: "ffffffffffffffff", Added: now}); err != nil || !ok {
			return fmt.Errorf("placement with old ones to drop: %v, %v", ok, err)
		}
		if p, err := t.Placement(fmt.Sprintf("%016x", 3)); err != nil || p != nil {
			return fmt.Errorf("an old placement stayed: %+v, %v", p, err)
		}
		if ok, err := t.PutPlacement(&Placement{Message: "fffffffffffffffe", Added: now}); err != nil || !ok {
			return fmt.Errorf("placement in the room made: %v, %v", ok, err)
		}
		for i := range 8 {
			if _, err := t.PutPlacement(&Placement{Message: fmt.Sprintf("e%015x", i), Added: now}); err != nil {
				return err
			}
		}
		// Full of recent ones: refused.
		if ok, err := t.PutPlacement(&Placement{Message: "fffffffffffffffd", Added: now}); err != nil || ok {
			return fmt.Errorf("placement beyond the cap: %v, %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMessagesBefore: pages from the newest message back, each starting
// after the last of the one before, meet every message once.
func TestMessagesBefore(t *testing.T) {
	st := testStore(t)
	var ids []string
	err := st.Update(func(t *Tx) error {
		for i := range 25 {
			id := fmt.Sprintf("%016x", i)
			ids = append(ids, id)
			if _, err := t.AddMessage(&Message{ID: id}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	before := ""
	for range 10 {
		var page []string
		err := st.View(func(t *Tx) error {
			return t.MessagesBefore(before, func(m *Message) error {
				page = append(page, m.ID)
				if len(page) == 10 {
					return ErrStop
				}
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		before = page[len(page)-1]
	}
	slices.Reverse(ids)
	if !slices.Equal(got, ids) {
		t.Fatalf("pages %v, want %v", got, ids)
	}
	// A cursor that names no message gives nothing.
	err = st.View(func(t *Tx) error {
		return t.MessagesBefore("0123456789abcdef", func(*Message) error { return errors.New("called") })
	})
	if err != nil {
		t.Fatal(err)
	}
}
