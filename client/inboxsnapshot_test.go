package client

import (
	"testing"

	"github.com/postern/postern/relay/relaytest"
)

// TestLinkedDeviceGetsInbox: a device linked after folders were made,
// messages filed and drafts saved gets them (over a relay on loopback):
// the folders and drafts always, the messages' folders with the history.
func TestLinkedDeviceGetsInbox(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	var in []Message
	for _, text := range []string{"potassium 3.1", "sodium 140", "creatinine 88"} {
		m, err := bob.Send(ctx, "alice", text)
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, m)
	}
	syncAll(t, 1, alice)
	lab, err := alice.CreateFolder(ctx, "Lab")
	if err != nil {
		t.Fatal(err)
	}
	old, err := alice.CreateFolder(ctx, "Old")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.DeleteFolder(ctx, old.ID); err != nil {
		t.Fatal(err)
	}
	if err := alice.MoveMessage(ctx, in[0].ID, lab.ID); err != nil {
		t.Fatal(err)
	}
	if err := alice.MoveMessage(ctx, in[1].ID, FolderArchive); err != nil {
		t.Fatal(err)
	}
	d, err := alice.SaveDraft(ctx, Draft{To: "bob", Subject: "Re: potassium", Text: "Repeat it", ReplyTo: in[0].ID})
	if err != nil {
		t.Fatal(err)
	}

	for _, history := range []bool{false, true} {
		name := "LAPTOP"
		if history {
			name = "OFFICE-PC"
		}
		n, _ := linkNewWith(t, alice, name, history)
		syncAll(t, 3, n, alice)
		fs, err := n.Folders()
		if err != nil {
			t.Fatal(err)
		}
		var own []Folder
		for _, f := range fs {
			if !f.System {
				own = append(own, f)
			}
		}
		if len(own) != 1 || own[0].ID != lab.ID || own[0].Name != "Lab" {
			t.Fatalf("%s: folders %+v, want Lab alone", name, own)
		}
		ds, err := n.Drafts()
		if err != nil || len(ds) != 1 || ds[0].ID != d.ID || ds[0].To != "bob" || ds[0].Subject != d.Subject ||
			ds[0].Text != d.Text || ds[0].ReplyTo != in[0].ID {
			t.Fatalf("%s: drafts %+v, %v; want %+v", name, ds, err, d)
		}
		if !history {
			if ms, _ := n.Inbox(); len(ms) > 1 {
				t.Fatalf("%s: %d messages without the history", name, len(ms))
			}
			continue
		}
		for i, want := range []string{lab.ID, FolderArchive, FolderInbox} {
			m, err := n.Message(in[i].ID)
			if err != nil || m.Folder != want {
				t.Errorf("%s: message %d in %q, %v; want %q", name, i, m.Folder, err, want)
			}
		}
		if own[0].Messages != 1 {
			t.Errorf("%s: Lab holds %d", name, own[0].Messages)
		}
	}
}
