package client

import (
	"testing"

	"github.com/postern/postern/relay/relaytest"
)

// scannedFolders are Folders' counts as reading every message gives them.
func scannedFolders(t *testing.T, c *Client) map[string][2]int {
	t.Helper()
	out := map[string][2]int{}
	err := c.st.view(func(t *tx) error {
		live, err := t.liveFolders()
		if err != nil {
			return err
		}
		set := liveSet(live)
		return t.Messages(func(m *messageRecord) error {
			f := folderOf(m, set)
			n := out[f]
			n[0]++
			if unread(m) {
				n[1]++
			}
			out[f] = n
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkFolderCounts checks Folders' counts (kept by the store) against a
// scan of the messages, and that some folder holds messages.
func checkFolderCounts(t *testing.T, step string, cs ...*Client) {
	t.Helper()
	for _, c := range cs {
		fs, err := c.Folders()
		if err != nil {
			t.Fatal(err)
		}
		scan := scannedFolders(t, c)
		total := 0
		for _, f := range fs {
			if f.ID == FolderDrafts {
				continue
			}
			if got, want := [2]int{f.Messages, f.Unread}, scan[f.ID]; got != want {
				t.Errorf("%s, device %s: folder %s counts %d/%d, the messages give %d/%d", step, c.devID.Short(), f.Name, got[0], got[1], want[0], want[1])
			}
			total += f.Messages
		}
		if total == 0 {
			t.Errorf("%s: no messages counted", step)
		}
	}
}

// TestFolderCountsKept: the counts Folders gives without reading the
// messages stay those of the messages through arrivals, sends, moves,
// reads, a folder's deletion, a message's deletion, and the same changes
// made on another device of the person and synced.
func TestFolderCountsKept(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	office, _ := linkNew(t, alice, "OFFICE-PC")
	syncAll(t, 3, office, bob, alice)

	var in []Message
	for _, text := range []string{"potassium 3.1", "sodium 140", "creatinine 88"} {
		m, err := bob.Send(ctx, "alice", text)
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, m)
	}
	syncAll(t, 2, alice, office)
	if _, err := alice.Send(ctx, "bob", "thanks"); err != nil {
		t.Fatal(err)
	}
	checkFolderCounts(t, "arrived and sent", alice, office)

	lab, err := alice.CreateFolder(ctx, "Lab")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.MoveMessage(ctx, in[0].ID, lab.ID); err != nil {
		t.Fatal(err)
	}
	if err := alice.MoveMessage(ctx, in[1].ID, FolderArchive); err != nil {
		t.Fatal(err)
	}
	if err := alice.MarkRead(ctx, in[0].ID); err != nil {
		t.Fatal(err)
	}
	checkFolderCounts(t, "moved and read", alice)
	if f := folderNamed(t, alice, "Lab"); f.Messages != 1 || f.Unread != 0 {
		t.Errorf("Lab %+v", f)
	}
	syncAll(t, 2, office, alice)
	checkFolderCounts(t, "moves and read synced", alice, office)

	// The office reads and moves; alice hears of it.
	if err := office.MarkRead(ctx, in[2].ID); err != nil {
		t.Fatal(err)
	}
	if err := office.MoveMessage(ctx, in[2].ID, lab.ID); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, alice, office)
	checkFolderCounts(t, "the office's changes synced", alice, office)
	if f := folderNamed(t, alice, "Lab"); f.Messages != 2 || f.Unread != 0 {
		t.Errorf("Lab on alice %+v", f)
	}

	// The folder deleted on the office: its messages back in the Inbox.
	inbox := folderNamed(t, alice, "Inbox").Messages
	if err := office.DeleteFolder(ctx, lab.ID); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, alice, office)
	checkFolderCounts(t, "folder deleted", alice, office)
	if f := folderNamed(t, alice, "Inbox"); f.Messages != inbox+2 {
		t.Errorf("Inbox after the folder's deletion %+v, had %d", f, inbox)
	}

	// A message deleted.
	if err := alice.st.update(func(t *tx) error { return t.DeleteMessage(in[1].ID) }); err != nil {
		t.Fatal(err)
	}
	checkFolderCounts(t, "message deleted", alice)
	if f := folderNamed(t, alice, "Archive"); f.Messages != 0 {
		t.Errorf("Archive after the deletion %+v", f)
	}
}
