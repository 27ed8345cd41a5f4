package client

import (
	"fmt"
	"testing"
	"time"
)

// benchInbox is a client whose store holds n messages (a third sent).
func benchInbox(b *testing.B, n int) *Client {
	c := newFuzzClient(b)
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for i := 0; i < n; i += 1000 {
		err := c.st.update(func(t *tx) error {
			for j := i; j < min(i+1000, n); j++ {
				m := &messageRecord{
					ID: fmt.Sprintf("%016x", j), From: "bob", To: Me, Text: fmt.Sprintf("message %d about the ward round", j),
					Subject: "Ward round", Time: now, Received: now, Outgoing: j%3 == 0,
				}
				if _, err := t.AddMessage(m); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return c
}

// BenchmarkInbox10k: with 10,000 messages stored, the first page of 50
// of the Inbox (what a screen shows first), and the folder list with its
// counts (kept by the store since schema 5: 0.40 ms, where reading every
// message took 35 ms; go test -run XXX -bench BenchmarkInbox10k
// -benchtime 20x ./client/).
func BenchmarkInbox10k(b *testing.B) {
	c := benchInbox(b, 10000)
	b.Run("page", func(b *testing.B) {
		for b.Loop() {
			ms, err := c.Messages(&ListOptions{Folder: FolderInbox, Limit: 50})
			if err != nil || len(ms) != 50 {
				b.Fatal(len(ms), err)
			}
		}
	})
	b.Run("folders", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Folders(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
