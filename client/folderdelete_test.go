package client

import (
	"encoding/hex"
	"slices"
	"testing"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/relay/relaytest"
)

// TestDeletedFolderShowsDefault: a message whose record names a folder
// that is deleted, or that this device does not know, shows in its
// default folder everywhere: Message, Inbox, Messages, Sync's new
// messages (as events carry them), search results and the counts. Two
// ways a record comes to name one: another device moved the message into
// a folder before it arrived here and the folder was deleted in between
// (the waiting placement names it), and a move from another device into a
// folder whose creation has not reached this one.
func TestDeletedFolderShowsDefault(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	office, _ := linkNew(t, alice, "OFFICE-PC")
	syncAll(t, 3, office, bob, alice)

	// The office hears of a move of a message it does not have yet into
	// folder Lab, then of Lab's deletion; then the message comes.
	m, err := bob.Send(ctx, "alice", "potassium result attached")
	if err != nil {
		t.Fatal(err)
	}
	lab, err := office.CreateFolder(ctx, "Lab")
	if err != nil {
		t.Fatal(err)
	}
	var fid [16]byte
	b, _ := hex.DecodeString(lab.ID)
	copy(fid[:], b)
	move := syncOp{Kind: syncMove, MS: uint64(office.now().UnixMilli()) + 1, To: syncToFolder, Folder: fid}
	messageIDBytes(m.ID, move.Msg[:])
	var other keys.Fingerprint
	other[0] = 0xee // another device of this person
	if err := office.st.update(func(t *tx) error { return t.applySyncOp(&move, other, office.now(), office.log.Warn) }); err != nil {
		t.Fatal(err)
	}
	if err := office.DeleteFolder(ctx, lab.ID); err != nil {
		t.Fatal(err)
	}
	got, err := office.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(got, func(g Message) bool { return g.ID == m.ID })
	if i < 0 {
		t.Fatalf("the message did not arrive: %+v", got)
	}
	if got[i].Folder != FolderInbox {
		t.Errorf("new message's folder %q, want inbox", got[i].Folder)
	}
	checkShownIn(t, office, m.ID, FolderInbox)

	// A move from another device into a folder this one has not heard of.
	var unknown [16]byte
	unknown[0] = 0x42
	move = syncOp{Kind: syncMove, MS: uint64(office.now().UnixMilli()) + 10, To: syncToFolder, Folder: unknown}
	messageIDBytes(m.ID, move.Msg[:])
	if err := office.st.update(func(t *tx) error { return t.applySyncOp(&move, other, office.now(), office.log.Warn) }); err != nil {
		t.Fatal(err)
	}
	checkShownIn(t, office, m.ID, FolderInbox)

	// Moved into a live folder, then that folder deleted here.
	admin, err := office.CreateFolder(ctx, "Admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := office.MoveMessage(ctx, m.ID, admin.ID); err != nil {
		t.Fatal(err)
	}
	checkShownIn(t, office, m.ID, admin.ID)
	if err := office.DeleteFolder(ctx, admin.ID); err != nil {
		t.Fatal(err)
	}
	checkShownIn(t, office, m.ID, FolderInbox)
}

// checkShownIn checks that message id shows in folder everywhere on c.
func checkShownIn(t *testing.T, c *Client, id, folder string) {
	t.Helper()
	if m, err := c.Message(id); err != nil || m.Folder != folder {
		t.Errorf("Message: folder %q, %v; want %q", m.Folder, err, folder)
	}
	all, err := c.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(all, func(m Message) bool { return m.ID == id }); i < 0 || all[i].Folder != folder {
		t.Errorf("Inbox: %+v", all)
	}
	page, err := c.Messages(&ListOptions{Folder: folder})
	if err != nil || !slices.ContainsFunc(page, func(m Message) bool { return m.ID == id && m.Folder == folder }) {
		t.Errorf("Messages(%s): %+v, %v", folder, page, err)
	}
	hits, err := c.Search(testCtx(t), "potassium", nil)
	if err != nil || len(hits) != 1 || hits[0].Folder != folder {
		t.Errorf("Search: %+v, %v; want the message in %q", hits, err, folder)
	}
	hits, err = c.Search(testCtx(t), "potassium", &SearchOptions{Folder: folder})
	if err != nil || len(hits) != 1 {
		t.Errorf("Search in %q: %+v, %v", folder, hits, err)
	}
	fs, err := c.Folders()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		want := 0
		if f.ID == folder {
			want = 1
		}
		if f.ID != FolderSent && f.ID != FolderDrafts && f.Messages != want {
			t.Errorf("folder %s holds %d, want %d", f.Name, f.Messages, want)
		}
	}
}
