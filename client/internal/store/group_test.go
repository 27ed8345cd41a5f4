package store

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestGroupRecords: a group record is stored with its conversation (type
// Group, found by the group's index), its mailbox is in the mailbox index
// apart from the devices', a changed mailbox moves the entry, a mailbox
// of another group is refused with nothing changed, and a group
// conversation with a person is corrupt.
func TestGroupRecords(t *testing.T) {
	st := testStore(t)
	gid, gid2 := NewID(), NewID()
	mb, mb2 := NewID(), NewID()
	err := st.Update(func(t *Tx) error {
		g := &GroupRecord{ID: t.GroupConversationID(gid), Group: gid, Mailbox: mb, State: []byte{1}, Created: time.Now()}
		if err := t.PutGroup(g, "Ward 4"); err != nil {
			return err
		}
		c, err := t.Conversation(g.ID)
		if err != nil || c == nil || c.Type != Group || c.Title != "Ward 4" {
			return fmt.Errorf("conversation %+v, %v", c, err)
		}
		if d, err := t.DeviceByMailbox(mb); err != nil || d != nil {
			return fmt.Errorf("a group mailbox names a device: %v %v", d, err)
		}
		got, err := t.GroupByMailbox(mb)
		if err != nil || got == nil || !bytes.Equal(got.Group, gid) {
			return fmt.Errorf("group by mailbox: %v", err)
		}
		other := &GroupRecord{ID: t.GroupConversationID(gid2), Group: gid2, Mailbox: mb, Created: time.Now()}
		if err := t.PutGroup(other, "Other"); !errors.Is(err, ErrCorrupt) {
			return fmt.Errorf("a mailbox of another group: %v", err)
		}
		if g, err := t.Group(other.ID); err != nil || g != nil {
			return fmt.Errorf("refused group stored: %v", err)
		}
		g.Mailbox = mb2
		if err := t.PutGroup(g, "Ward 5"); err != nil {
			return err
		}
		if got, err := t.GroupByMailbox(mb); err != nil || got != nil {
			return fmt.Errorf("old mailbox still indexed: %v", err)
		}
		if got, err := t.GroupByMailbox(mb2); err != nil || got == nil {
			return fmt.Errorf("new mailbox not indexed: %v", err)
		}
		if c, _ := t.Conversation(g.ID); c.Title != "Ward 5" {
			return fmt.Errorf("title %q", c.Title)
		}
		if gs, err := t.Groups(); err != nil || len(gs) != 1 {
			return fmt.Errorf("%d groups, %v", len(gs), err)
		}
		bad := &GroupRecord{ID: NewID(), Group: gid2}
		if err := t.PutGroup(bad, "x"); !errors.Is(err, ErrCorrupt) {
			return fmt.Errorf("a record ID that is not the group's index: %v", err)
		}
		if err := t.PutConversation(&Conversation{ID: NewID(), Type: Group, Person: NewID()}); !errors.Is(err, ErrCorrupt) {
			return fmt.Errorf("a group conversation with a person: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
