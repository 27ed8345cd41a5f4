package client

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/postern/postern/relay/relaytest"
)

// folderNamed returns c's folder named name, failing the test if there is
// none.
func folderNamed(t *testing.T, c *Client, name string) Folder {
	t.Helper()
	f, err := c.FolderByName(name)
	if err != nil {
		t.Fatalf("folder %q: %v", name, err)
	}
	return f
}

// folderIDs returns the IDs of the messages of folder in c, oldest first.
func folderIDs(t *testing.T, c *Client, folder string) []string {
	t.Helper()
	ms, err := c.Messages(&ListOptions{Folder: folder, Limit: MaxListLimit})
	if err != nil {
		t.Fatalf("Messages(%s): %v", folder, err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	slices.Reverse(out)
	return out
}

// TestFolders: system folders first, own folders by name; names checked
// (system names, duplicates, control characters, length); a message moves
// into a folder and the counts follow; Drafts, Inbox for a sent message and
// Sent for a received one are refused; deleting a folder puts its messages
// back in their default folders; system folders cannot be renamed or
// deleted.
func TestFolders(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	in, err := bob.Send(ctx, "alice", "results are back")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := alice.Send(ctx, "bob", "thanks")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := alice.Folders()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, fmt.Sprintf("%s %d/%d", f.Name, f.Unread, f.Messages))
	}
	if want := []string{"Inbox 1/1", "Sent 0/1", "Drafts 0/0", "Archive 0/0"}; !slices.Equal(got, want) {
		t.Fatalf("folders %v, want %v", got, want)
	}
	for _, name := range []string{"", "inbox", "ARCHIVE", "a\tb", " padded", string(make([]byte, MaxFolderNameSize+1)), "\xff"} {
		if _, err := alice.CreateFolder(ctx, name); !errors.Is(err, ErrFolderName) {
			t.Errorf("CreateFolder(%q): %v, want ErrFolderName", name, err)
		}
	}
	lab, err := alice.CreateFolder(ctx, "Lab results")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.CreateFolder(ctx, "lab RESULTS"); !errors.Is(err, ErrFolderExists) {
		t.Fatalf("a second folder of the same name: %v", err)
	}
	if _, err := alice.CreateFolder(ctx, "Admin"); err != nil {
		t.Fatal(err)
	}
	if err := alice.MoveMessage(ctx, in.ID, lab.ID); err != nil {
		t.Fatal(err)
	}
	if err := alice.MoveMessage(ctx, out.ID, FolderArchive); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ id, folder string }{{in.ID, FolderDrafts}, {in.ID, FolderSent}, {out.ID, FolderInbox}} {
		if err := alice.MoveMessage(ctx, tc.id, tc.folder); !errors.Is(err, ErrFolderNotAllowed) {
			t.Errorf("move to %s: %v, want ErrFolderNotAllowed", tc.folder, err)
		}
	}
	if err := alice.MoveMessage(ctx, in.ID, "00112233445566778899aabbccddeeff"); !errors.Is(err, ErrNoFolder) {
		t.Errorf("move to a folder that does not exist: %v", err)
	}
	if err := alice.MoveMessage(ctx, "0011223344556677", lab.ID); !errors.Is(err, ErrNoMessage) {
		t.Errorf("move of a message that does not exist: %v", err)
	}
	fs, _ = alice.Folders()
	got = got[:0]
	for _, f := range fs {
		got = append(got, fmt.Sprintf("%s %d/%d", f.Name, f.Unread, f.Messages))
	}
	if want := []string{"Inbox 0/0", "Sent 0/0", "Drafts 0/0", "Archive 0/1", "Admin 0/0", "Lab results 1/1"}; !slices.Equal(got, want) {
		t.Fatalf("folders %v, want %v", got, want)
	}
	if m, _ := alice.Message(in.ID); m.Folder != lab.ID || m.Read {
		t.Fatalf("moved message %+v", m)
	}
	if err := alice.RenameFolder(ctx, lab.ID, "Admin"); !errors.Is(err, ErrFolderExists) {
		t.Fatalf("rename to a taken name: %v", err)
	}
	if err := alice.RenameFolder(ctx, lab.ID, "Results"); err != nil {
		t.Fatal(err)
	}
	if f := folderNamed(t, alice, "results"); f.ID != lab.ID {
		t.Fatalf("renamed folder %+v", f)
	}
	for _, id := range []string{FolderInbox, FolderSent, FolderDrafts, FolderArchive} {
		if err := alice.RenameFolder(ctx, id, "X"); !errors.Is(err, ErrSystemFolder) {
			t.Errorf("rename %s: %v", id, err)
		}
		if err := alice.DeleteFolder(ctx, id); !errors.Is(err, ErrSystemFolder) {
			t.Errorf("delete %s: %v", id, err)
		}
	}
	if err := alice.DeleteFolder(ctx, lab.ID); err != nil {
		t.Fatal(err)
	}
	if err := alice.DeleteFolder(ctx, lab.ID); !errors.Is(err, ErrNoFolder) {
		t.Fatalf("deleting a deleted folder: %v", err)
	}
	if ids := folderIDs(t, alice, FolderInbox); !slices.Equal(ids, []string{in.ID}) {
		t.Fatalf("inbox after the folder's deletion %v", ids)
	}
	if _, err := alice.Messages(&ListOptions{Folder: lab.ID}); !errors.Is(err, ErrNoFolder) {
		t.Fatalf("listing a deleted folder: %v", err)
	}
	// A new folder with the deleted one's name is another folder.
	again, err := alice.CreateFolder(ctx, "Results")
	if err != nil || again.ID == lab.ID {
		t.Fatalf("CreateFolder again: %+v, %v", again, err)
	}
	if ids := folderIDs(t, alice, again.ID); len(ids) != 0 {
		t.Fatalf("a new folder holds %v", ids)
	}
}

// TestTooManyFolders: MaxFolders folders of one's own, and no more.
func TestTooManyFolders(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, _ := newTestClient(t, srv, "alice")
	for i := range MaxFolders {
		if _, err := alice.CreateFolder(ctx, fmt.Sprintf("f%d", i)); err != nil {
			t.Fatalf("folder %d: %v", i, err)
		}
	}
	if _, err := alice.CreateFolder(ctx, "one more"); !errors.Is(err, ErrTooManyFolders) {
		t.Fatalf("folder %d: %v, want ErrTooManyFolders", MaxFolders+1, err)
	}
}

// TestMarkReadAndPages: received messages arrive unread and MarkRead
// marks them (sent ones are read already; an unknown ID marks nothing);
// Messages pages newest first with Before, filters by folder and unread.
func TestMarkReadAndPages(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	var sent []string
	for i := range 25 {
		m, err := bob.Send(ctx, "alice", fmt.Sprintf("result %d", i))
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, m.ID)
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := folderIDs(t, alice, FolderInbox); !slices.Equal(got, sent) {
		t.Fatalf("inbox %v, want %v", got, sent)
	}
	var pages []string
	before := ""
	for {
		page, err := alice.Messages(&ListOptions{Folder: FolderInbox, Limit: 10, Before: before})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			pages = append(pages, m.ID)
			if m.Read || m.Folder != FolderInbox {
				t.Fatalf("new message %+v", m)
			}
		}
		if len(page) < 10 {
			break
		}
		before = page[len(page)-1].ID
	}
	slices.Reverse(pages)
	if !slices.Equal(pages, sent) {
		t.Fatalf("pages %v, want %v", pages, sent)
	}
	if err := alice.MarkRead(ctx, sent[0], "ffffffffffffffff"); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("MarkRead of an unknown ID: %v", err)
	}
	if m, _ := alice.Message(sent[0]); m.Read {
		t.Fatal("a failed MarkRead marked a message")
	}
	if err := alice.MarkRead(ctx, sent[:20]...); err != nil {
		t.Fatal(err)
	}
	m, _ := alice.Message(sent[0])
	if !m.Read || m.ReadAt.IsZero() {
		t.Fatalf("read message %+v", m)
	}
	unread, err := alice.Messages(&ListOptions{Unread: true})
	if err != nil || len(unread) != 5 || unread[0].ID != sent[24] {
		t.Fatalf("unread %d, %v", len(unread), err)
	}
	if f := folderNamed(t, alice, "Inbox"); f.Unread != 5 || f.Messages != 25 {
		t.Fatalf("inbox %+v", f)
	}
	// Marking again changes nothing, not even the time.
	if err := alice.MarkRead(ctx, sent[0]); err != nil {
		t.Fatal(err)
	}
	if again, _ := alice.Message(sent[0]); !again.ReadAt.Equal(m.ReadAt) {
		t.Fatalf("read again at %v, first %v", again.ReadAt, m.ReadAt)
	}
	if out, _ := bob.Message(sent[0]); !out.Read || out.Folder != FolderSent {
		t.Fatalf("a sent message %+v", out)
	}
}

// TestThread: replies (either way) and subjects ("Re:" aside) join
// messages of one conversation into a thread, in time order; a message
// with neither is alone.
func TestThread(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	q, err := bob.SendWith(ctx, "alice", "potassium?", &SendOptions{Subject: "Bed 12 labs"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := bob.Send(ctx, "alice", "lunch?")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := alice.SendWith(ctx, "bob", "4.1", &SendOptions{ReplyTo: q.ID})
	if err != nil {
		t.Fatal(err)
	}
	b, err := alice.SendWith(ctx, "bob", "and sodium 139", &SendOptions{Subject: "RE: re: bed 12 LABS"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := bob.SendWith(ctx, "alice", "thanks", &SendOptions{ReplyTo: b.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{q.ID, a.ID, b.ID, c.ID}
	for _, cl := range []*Client{alice, bob} {
		for _, from := range want {
			th, err := cl.Thread(from)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range th {
				got = append(got, m.ID)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("thread of %s: %v, want %v", from, got, want)
			}
		}
		th, err := cl.Thread(other.ID)
		if err != nil || len(th) != 1 || th[0].ID != other.ID {
			t.Fatalf("thread of a lone message: %+v, %v", th, err)
		}
	}
	if _, err := alice.Thread("0011223344556677"); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("thread of an unknown message: %v", err)
	}
}

// TestDrafts: a draft is saved as written, updated in place, listed with
// its contact's name, checked (unknown contact, subject, unknown
// reply-to), sent with its subject and reply-to and then gone; one
// without a recipient is not sent.
func TestDrafts(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	q, err := bob.SendWith(ctx, "alice", "can you cover Friday?", &SendOptions{Subject: "Rota"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := alice.SaveDraft(ctx, Draft{Text: "Ye"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendDraft(ctx, d.ID); !errors.Is(err, ErrDraftIncomplete) {
		t.Fatalf("sending a draft without a recipient: %v", err)
	}
	d.To, d.Subject, d.Text, d.ReplyTo = "bob", "Re: Rota", "Yes, I can.", q.ID
	d2, err := alice.SaveDraft(ctx, d)
	if err != nil || d2.ID != d.ID || d2.To != "bob" || d2.Text != "Yes, I can." || d2.ReplyTo != q.ID {
		t.Fatalf("SaveDraft: %+v, %v", d2, err)
	}
	for _, bad := range []Draft{{To: "carol"}, {Subject: "a\nb"}, {ReplyTo: "0011223344556677"}, {ID: "00112233445566778899aabbccddeeff"}} {
		if _, err := alice.SaveDraft(ctx, bad); err == nil {
			t.Errorf("SaveDraft(%+v) saved", bad)
		}
	}
	ds, err := alice.Drafts()
	if err != nil || len(ds) != 1 || ds[0] != d2 {
		t.Fatalf("Drafts %+v, %v", ds, err)
	}
	if f := folderNamed(t, alice, "Drafts"); f.Messages != 1 {
		t.Fatalf("drafts folder %+v", f)
	}
	m, err := alice.SendDraft(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ds, _ := alice.Drafts(); len(ds) != 0 {
		t.Fatalf("drafts after sending %+v", ds)
	}
	if _, err := bob.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := bob.Message(m.ID)
	if err != nil || got.Subject != "Re: Rota" || got.ReplyTo != q.ID || got.Text != "Yes, I can." {
		t.Fatalf("bob got %+v, %v", got, err)
	}
	if err := alice.DeleteDraft(ctx, d.ID); !errors.Is(err, ErrNoDraft) {
		t.Fatalf("deleting a sent draft: %v", err)
	}
}

// TestHistoryArrivesRead: a device linked with the history gets the
// received messages of the past read, not as a pile of unread ones.
func TestHistoryArrivesRead(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	m, err := bob.Send(ctx, "alice", "before the link")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	office, _ := linkNewWith(t, alice, "OFFICE-PC", true)
	syncAll(t, 3, office, alice)
	got, err := office.Message(m.ID)
	if err != nil || !got.Read || got.Folder != FolderInbox {
		t.Fatalf("office's copy %+v, %v", got, err)
	}
	if f := folderNamed(t, office, "Inbox"); f.Unread != 0 {
		t.Fatalf("office's inbox %+v", f)
	}
}
