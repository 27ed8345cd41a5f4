package store

import (
	"cmp"
	"slices"
)

// Folder counts (schema 5): how many messages each folder a message
// record names holds, and how many of them are unread, kept in the meta
// bucket and changed in the transaction that adds, changes or deletes a
// message (AddMessage, UpdateMessage, DeleteMessage), so that listing the
// folders with their counts reads one record instead of every message.
// The store counts by what records name; the client maps a name to the
// folder it shows in (a deleted folder's to the default one).

// FolderKey is what a count is of: the folder messages name ("" for their
// default one, "archive", or a folder ID in hex) and their direction.
type FolderKey struct {
	Folder   string `json:"folder,omitempty"`
	Outgoing bool   `json:"outgoing,omitempty"`
}

// FolderCount is the messages of one FolderKey (notices included) and
// those of them unread (Unread).
type FolderCount struct {
	FolderKey
	Messages int `json:"messages"`
	Unread   int `json:"unread,omitempty"`
}

type folderCounts struct {
	V      int           `json:"v"`
	Counts []FolderCount `json:"counts"`
}

var keyFolderCounts = []byte("folder-counts")

// Unread reports whether m counts as unread: an incoming message (not a
// notice) that this person has not read on any device.
func (m *Message) Unread() bool { return !m.Outgoing && !m.Notice && !m.Read }

func (m *Message) folderKey() FolderKey { return FolderKey{Folder: m.Folder, Outgoing: m.Outgoing} }

// FolderCounts returns the counts, by folder name and direction, in key
// order. A store without its record of counts (it is written with the
// first message) gets them from its messages.
func (t *Tx) FolderCounts() ([]FolderCount, error) {
	var fc folderCounts
	ok, err := t.Get(BucketMeta, t.Index(BucketMeta, keyFolderCounts), &fc)
	if err != nil {
		return nil, err
	}
	if !ok {
		return t.countFolders()
	}
	return fc.Counts, nil
}

// countFolders counts every message (the migration to schema 5, and the
// repair of a missing record).
func (t *Tx) countFolders() ([]FolderCount, error) {
	m := map[FolderKey]*FolderCount{}
	err := t.Messages(func(msg *Message) error {
		countMessage(m, msg, 1)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sortedCounts(m), nil
}

// RecountFolders counts every message again and stores the counts.
func (t *Tx) RecountFolders() error {
	cs, err := t.countFolders()
	if err != nil {
		return err
	}
	return t.Put(BucketMeta, t.Index(BucketMeta, keyFolderCounts), &folderCounts{V: 1, Counts: cs})
}

func countMessage(m map[FolderKey]*FolderCount, msg *Message, d int) {
	k := msg.folderKey()
	c := m[k]
	if c == nil {
		c = &FolderCount{FolderKey: k}
		m[k] = c
	}
	c.Messages += d
	if msg.Unread() {
		c.Unread += d
	}
}

func sortedCounts(m map[FolderKey]*FolderCount) []FolderCount {
	out := make([]FolderCount, 0, len(m))
	for _, c := range m {
		if c.Messages > 0 || c.Unread > 0 {
			out = append(out, *c)
		}
	}
	slices.SortFunc(out, func(a, b FolderCount) int {
		return cmp.Or(cmp.Compare(a.Folder, b.Folder), boolCompare(a.Outgoing, b.Outgoing))
	})
	return out
}

func boolCompare(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// recount applies a change of one message to the stored counts: old is
// the message before (nil when added), new after (nil when deleted).
func (t *Tx) recount(old, new *Message) error {
	if old != nil && new != nil && old.folderKey() == new.folderKey() && old.Unread() == new.Unread() {
		return nil
	}
	cs, err := t.FolderCounts()
	if err != nil {
		return err
	}
	m := make(map[FolderKey]*FolderCount, len(cs)+1)
	for i := range cs {
		m[cs[i].FolderKey] = &cs[i]
	}
	if old != nil {
		countMessage(m, old, -1)
	}
	if new != nil {
		countMessage(m, new, 1)
	}
	return t.Put(BucketMeta, t.Index(BucketMeta, keyFolderCounts), &folderCounts{V: 1, Counts: sortedCounts(m)})
}

// migrate4to5 counts the messages of each folder (counts.go).
func migrate4to5(t *Tx, _ *Record) error { return t.RecountFolders() }
