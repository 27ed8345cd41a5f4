package store

import (
	"bytes"
	"testing"
	"time"
)

// TestOutboxOrder: entries come back in the order they were added, across
// a reopening of the store; a deleted one is gone; the queued state of a
// message is updated in place and an unsent message can be deleted.
func TestOutboxOrder(t *testing.T) {
	st := testStore(t)
	var seqs []uint64
	for i := byte(1); i <= 3; i++ {
		err := st.Update(func(t *Tx) error {
			seq, err := t.AddOutbox(&OutboxEntry{Device: []byte{i}, Relay: "wss://relay.example.org", Mailbox: mbx(i), Capability: make([]byte, 32), Envelope: bytes.Repeat([]byte{i}, 1024), Created: time.Unix(int64(i), 0)})
			seqs = append(seqs, seq)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Update(func(t *Tx) error { return t.DeleteOutbox(seqs[1]) }); err != nil {
		t.Fatal(err)
	}
	var items []OutboxItem
	if err := st.View(func(t *Tx) (err error) { items, err = t.Outbox(); return err }); err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].Seq != seqs[0] || items[1].Seq != seqs[2] || items[1].Envelope[0] != 3 || items[1].Relay != "wss://relay.example.org" {
		t.Fatalf("outbox after a deletion: %+v", items)
	}

	m := &Message{ID: "0123456789abcdef", To: "bob", Outgoing: true, Queued: true}
	if err := st.Update(func(t *Tx) error { _, err := t.AddMessage(m); return err }); err != nil {
		t.Fatal(err)
	}
	var found bool
	err := st.Update(func(t *Tx) (err error) {
		found, err = t.UpdateMessage(m.ID, func(m *Message) { m.Queued, m.SendError = false, "refused" })
		return err
	})
	if err != nil || !found {
		t.Fatalf("UpdateMessage: %v, %v", found, err)
	}
	var got *Message
	if err := st.View(func(t *Tx) (err error) { got, err = t.MessageByID(m.ID); return err }); err != nil || got == nil || got.Queued || got.SendError != "refused" || got.To != "bob" {
		t.Fatalf("after UpdateMessage: %+v, %v", got, err)
	}
	if err := st.Update(func(t *Tx) error { return t.DeleteMessage(m.ID) }); err != nil {
		t.Fatal(err)
	}
	if err := st.View(func(t *Tx) (err error) { got, err = t.MessageByID(m.ID); return err }); err != nil || got != nil {
		t.Fatalf("after DeleteMessage: %+v, %v", got, err)
	}
}
