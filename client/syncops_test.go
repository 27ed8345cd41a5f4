package client

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/relay/relaytest"
)

// TestInboxSyncAcrossDevices: folders made, renamed and deleted, messages
// moved and read, drafts saved and deleted on one device of a person show
// on the other; two devices that rename one folder at once agree on the
// later rename.
func TestInboxSyncAcrossDevices(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	office, _ := linkNew(t, alice, "OFFICE-PC")
	syncAll(t, 3, office, bob, alice)

	m1, err := bob.Send(ctx, "alice", "ECG attached to the record")
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, alice, office)
	lab, err := alice.CreateFolder(ctx, "Lab")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.MoveMessage(ctx, m1.ID, lab.ID); err != nil {
		t.Fatal(err)
	}
	if err := alice.MarkRead(ctx, m1.ID); err != nil {
		t.Fatal(err)
	}
	d, err := alice.SaveDraft(ctx, Draft{To: "bob", Subject: "Re: ECG", Text: "Looks"})
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, office, alice)
	if f := folderNamed(t, office, "Lab"); f.ID != lab.ID || f.Messages != 1 || f.Unread != 0 {
		t.Fatalf("office's folder %+v", f)
	}
	got, err := office.Message(m1.ID)
	if err != nil || got.Folder != lab.ID || !got.Read {
		t.Fatalf("office's copy of the message %+v, %v", got, err)
	}
	mine, _ := alice.Message(m1.ID)
	if !got.ReadAt.Equal(mine.ReadAt) {
		t.Fatalf("read at %v on the office, %v on alice", got.ReadAt, mine.ReadAt)
	}
	ds, err := office.Drafts()
	if err != nil || len(ds) != 1 || ds[0].ID != d.ID || ds[0].To != "bob" || ds[0].Text != "Looks" || ds[0].Subject != "Re: ECG" {
		t.Fatalf("office's drafts %+v, %v", ds, err)
	}

	// Both rename the folder and change the draft, each perhaps before
	// hearing of the other's change (both are connected, so perhaps
	// after): whichever change is later by its stamp, both devices end
	// with it.
	if err := office.RenameFolder(ctx, lab.ID, "Labs (office)"); err != nil {
		t.Fatal(err)
	}
	if err := alice.RenameFolder(ctx, lab.ID, "Labs (alice)"); err != nil {
		t.Fatal(err)
	}
	ds[0].Text = "Looks normal."
	if _, err := office.SaveDraft(ctx, ds[0]); err != nil {
		t.Fatal(err)
	}
	if err := alice.DeleteDraft(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, office, alice)
	fa, fo := folderNamed(t, alice, lab.ID), folderNamed(t, office, lab.ID)
	da, _ := alice.Drafts()
	do, _ := office.Drafts()
	if fa.Name != fo.Name || (fa.Name != "Labs (office)" && fa.Name != "Labs (alice)") || !slices.Equal(da, do) {
		t.Fatalf("the devices differ: %+v %+v, drafts %+v %+v", fa, fo, da, do)
	}

	// The office deletes the folder: on alice too, and the message is
	// back in the inbox, still read.
	if err := office.DeleteFolder(ctx, lab.ID); err != nil {
		t.Fatal(err)
	}
	if len(do) == 1 {
		if err := office.DeleteDraft(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, 2, alice, office)
	for _, c := range []*Client{alice, office} {
		if _, err := c.FolderByName(lab.ID); !errors.Is(err, ErrNoFolder) {
			t.Fatalf("%s: the deleted folder: %v", c.devID.Short(), err)
		}
		if m, _ := c.Message(m1.ID); m.Folder != FolderInbox || !m.Read {
			t.Fatalf("%s: message %+v", c.devID.Short(), m)
		}
		if ds, _ := c.Drafts(); len(ds) != 0 {
			t.Fatalf("%s: drafts %+v", c.devID.Short(), ds)
		}
	}

	// A message archived on alice before the office has it: the office
	// files it in Archive when it arrives, whatever comes first.
	m2, err := bob.Send(ctx, "alice", "second")
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, alice)
	if err := alice.MoveMessage(ctx, m2.ID, FolderArchive); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, office)
	if m, err := office.Message(m2.ID); err != nil || m.Folder != FolderArchive {
		t.Fatalf("office: %+v, %v", m, err)
	}
}

// TestSyncOnlyFromOwnDevices: a sync content from a contact's device is
// dropped: it changes nothing.
func TestSyncOnlyFromOwnDevices(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	m, err := bob.Send(ctx, "alice", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := bob.lookupContact("alice")
	if err != nil {
		t.Fatal(err)
	}
	op := syncOp{Kind: syncFolderSet, MS: uint64(time.Now().UnixMilli()), Name: "Planted"}
	copy(op.ID[:], store.NewID())
	mv := syncOp{Kind: syncMove, MS: op.MS, To: syncToArchive}
	messageIDBytes(m.ID, mv.Msg[:])
	rd := syncOp{Kind: syncRead, MS: op.MS, Msg: mv.Msg}
	ct := &content{Type: contentSync, Sender: bob.devID, SentMS: op.MS, Ops: []syncOp{op, mv, rd}}
	copy(ct.MsgID[:], randomID(msgIDSize))
	// Counted before the send: alice, online, may drop it at once.
	before := alice.Stats().Dropped
	if err := bob.sendSession(ctx, r, ct); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if alice.Stats().Dropped != before+1 {
		t.Fatalf("dropped %d, want %d", alice.Stats().Dropped, before+1)
	}
	fs, _ := alice.Folders()
	if len(fs) != 4 {
		t.Fatalf("folders %+v", fs)
	}
	if got, _ := alice.Message(m.ID); got.Folder != FolderInbox || got.Read {
		t.Fatalf("message %+v", got)
	}
}

// inboxState is what a device holds of the inbox, for comparison.
type inboxState struct {
	Folders    []store.Folder
	Drafts     []store.Draft
	Messages   []store.Message
	Placements []*store.Placement
}

var errRollback = errors.New("rollback")

// TestSyncOpsConverge: the operations of two devices, applied in any
// order and any number of times, leave the same inbox.
func TestSyncOpsConverge(t *testing.T) {
	t.Parallel()
	c := newFuzzClient(t)
	devA, devB := keys.Fingerprint{0xa}, keys.Fingerprint{0xb}
	folder, draft := [16]byte{1}, [16]byte{2}
	var msg, absent [replyIDSize]byte
	msg[0], absent[0] = 0x11, 0x22
	type stamped struct {
		op  syncOp
		dev keys.Fingerprint
	}
	ops := []stamped{
		{syncOp{Kind: syncFolderSet, MS: 10, ID: folder, Name: "A"}, devA},
		{syncOp{Kind: syncFolderSet, MS: 12, ID: folder, Name: "B"}, devB},
		{syncOp{Kind: syncFolderSet, MS: 12, ID: folder, Name: "A2"}, devA}, // same time: the larger device wins
		{syncOp{Kind: syncMove, MS: 11, Msg: msg, To: syncToFolder, Folder: folder}, devA},
		{syncOp{Kind: syncMove, MS: 13, Msg: msg, To: syncToArchive}, devB},
		{syncOp{Kind: syncMove, MS: 14, Msg: absent, To: syncToFolder, Folder: folder}, devB},
		{syncOp{Kind: syncRead, MS: 15, Msg: msg}, devA},
		{syncOp{Kind: syncRead, MS: 9, Msg: msg}, devB}, // the earlier read time stays
		{syncOp{Kind: syncRead, MS: 16, Msg: absent}, devA},
		{syncOp{Kind: syncDraftSave, MS: 20, ID: draft, Text: "one"}, devA},
		{syncOp{Kind: syncDraftDelete, MS: 21, ID: draft}, devB},
		{syncOp{Kind: syncDraftSave, MS: 19, ID: draft, Text: "stale"}, devB},
		{syncOp{Kind: syncFolderDelete, MS: 30, ID: [16]byte{3}}, devA},
		{syncOp{Kind: syncFolderSet, MS: 29, ID: [16]byte{3}, Name: "gone"}, devB}, // older than its deletion
	}
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	state := func(order []stamped) inboxState {
		var s inboxState
		err := c.st.update(func(t *tx) error {
			if _, err := t.AddMessage(&messageRecord{ID: hex.EncodeToString(msg[:]), Text: "x", Received: now}); err != nil {
				return err
			}
			for _, o := range order {
				if err := t.applySyncOp(&o.op, o.dev, now, func(string, ...any) {}); err != nil {
					return err
				}
			}
			fs, err := t.Folders()
			for _, f := range fs {
				s.Folders = append(s.Folders, *f)
			}
			ds, err2 := t.Drafts()
			for _, d := range ds {
				s.Drafts = append(s.Drafts, *d)
			}
			err3 := t.Messages(func(m *messageRecord) error { s.Messages = append(s.Messages, *m); return nil })
			p, err4 := t.Placement(hex.EncodeToString(absent[:]))
			s.Placements = append(s.Placements, p)
			return errors.Join(err, err2, err3, err4, errRollback)
		})
		if !errors.Is(err, errRollback) || err.Error() != errRollback.Error() {
			t.Fatal(err)
		}
		return s
	}
	want := state(ops)
	wantJSON, _ := json.Marshal(want)
	// What the state must be.
	if len(want.Folders) != 2 || want.Folders[0].Name != "B" || !want.Folders[1].Deleted {
		t.Fatalf("folders %+v", want.Folders)
	}
	if m := want.Messages[0]; m.Folder != FolderArchive || !m.Read || m.ReadAt.UnixMilli() != 9 {
		t.Fatalf("message %+v", m)
	}
	if d := want.Drafts[0]; !d.Deleted || d.Text != "" {
		t.Fatalf("draft %+v", d)
	}
	if p := want.Placements[0]; p == nil || p.Folder != hex.EncodeToString(folder[:]) || !p.Read || p.ReadAt.UnixMilli() != 16 {
		t.Fatalf("placement %+v", p)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		order := slices.Clone(ops)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		order = append(order, order[:rng.IntN(len(order))]...) // some twice
		got, _ := json.Marshal(state(order))
		if string(got) != string(wantJSON) {
			t.Fatalf("order %v gives\n%s\nwant\n%s", order, got, wantJSON)
		}
	}
}

// TestTombstonesPruned: when deleted folders fill the records, the
// tombstones older than tombstoneAge go and a folder can be made again;
// recent ones stay (an older operation could still arrive), and then a
// new folder is refused, not lost.
func TestTombstonesPruned(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := newFuzzClient(t)
	now := time.Now()
	fill := func(ms uint64) {
		t.Helper()
		err := c.st.update(func(t *tx) error {
			for range maxFolderRecords {
				op := syncOp{Kind: syncFolderDelete, MS: ms}
				copy(op.ID[:], store.NewID())
				if err := t.applySyncOp(&op, keys.Fingerprint{1}, now, func(string, ...any) {}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	fill(uint64(now.Add(-tombstoneAge - time.Hour).UnixMilli()))
	if _, err := c.CreateFolder(ctx, "After the old ones"); err != nil {
		t.Fatalf("CreateFolder with old tombstones: %v", err)
	}
	fill(uint64(now.UnixMilli()))
	if _, err := c.CreateFolder(ctx, "After the recent ones"); !errors.Is(err, ErrTooManyFolders) {
		t.Fatalf("CreateFolder with recent tombstones: %v", err)
	}
	fs, err := c.Folders()
	if err != nil || len(fs) != 5 || fs[4].Name != "After the old ones" {
		t.Fatalf("folders %+v, %v", fs, err)
	}
}
