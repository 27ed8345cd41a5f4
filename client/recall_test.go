package client

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/postern/postern/relay/relaytest"
)

// TestRecallContent: the 0x19 encoding round-trips, and every malformed
// body is refused.
func TestRecallContent(t *testing.T) {
	t.Parallel()
	ct := &content{Type: contentRecall, SentMS: 1764100000000, Recalls: [][replyIDSize]byte{{1}, {2}, {3}}}
	copy(ct.MsgID[:], randomID(msgIDSize))
	b, err := ct.marshalSession()
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseSessionContent(b)
	if err != nil || got.Type != contentRecall || len(got.Recalls) != 3 || got.Recalls[2] != ct.Recalls[2] {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	body := len(b) - 1 - 3*replyIDSize // where the count is
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
	}{
		{"count 0", func(p []byte) []byte { p[body] = 0; return p }},
		{"count beyond the IDs", func(p []byte) []byte { p[body] = 4; return p }},
		{"count below the IDs", func(p []byte) []byte { p[body] = 2; return p }},
		{"truncated", func(p []byte) []byte { return fixLen(p[:len(p)-1]) }},
		{"trailing byte", func(p []byte) []byte { return fixLen(append(p, 7)) }},
	} {
		if _, err := parseSessionContent(tc.edit(bytes.Clone(b))); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: %v, want ErrDecrypt", tc.name, err)
		}
	}
	for _, bad := range []*content{
		{Type: contentRecall},
		{Type: contentRecall, Recalls: make([][replyIDSize]byte, MaxRecallIDs+1)},
	} {
		if _, err := bad.marshalSession(); err == nil {
			t.Errorf("marshalled %+v", bad)
		}
	}
}

// TestRecallEveryDevice: alice (two devices) sends bob (two devices) a
// message with a file; her second device deletes it for everyone. On all
// four devices it stays as a tombstone with who and when, without text,
// subject or file; bob's search no longer finds it; the device that
// uploaded the file deletes the blob on the relay. A second recall is
// harmless, and the tombstone survives reopening the store.
func TestRecallEveryDevice(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, bobHome := pair(t, srv)
	ctx := testCtx(t)
	office, _ := linkNew(t, alice, "OFFICE-PC")
	ward, _ := linkNew(t, bob, "WARD-PC")
	syncAll(t, 3, ward, office, bob, alice)
	all := []*Client{alice, office, bob, ward}

	file := filepath.Join(t.TempDir(), "wrong-patient.txt")
	if err := os.WriteFile(file, []byte("results for the wrong patient"), 0o600); err != nil {
		t.Fatal(err)
	}
	sent, err := alice.SendFiles(ctx, "bob", "potassium 6.1 for bed 4", []string{file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, bob, ward, office, alice)
	for _, c := range all {
		if got := messagesLike(t, c, "potassium 6.1"); len(got) != 1 || len(got[0].Attachments) != 1 {
			t.Fatalf("%s holds %+v before the recall", c.Whoami().Name, got)
		}
	}
	recs, _, err := alice.attachmentsOf(sent.ID)
	if err != nil || len(recs) != 1 || len(recs[0].Token) == 0 {
		t.Fatalf("alice's attachment records %+v, %v", recs, err)
	}
	blob := recs[0].Blob
	if hits, err := bob.Search(ctx, "potassium", nil); err != nil || len(hits) != 1 {
		t.Fatalf("bob's search before the recall: %d hits, %v", len(hits), err)
	}

	evs, err := bob.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	m, err := office.Recall(ctx, sent.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Recalled.IsZero() || m.RecalledBy != Me || m.Text != "" || len(m.Attachments) != 0 {
		t.Fatalf("the recalling device's copy %+v", m)
	}
	syncAll(t, 2, bob, ward, alice, office)
	want := map[*Client]string{alice: Me, office: Me, bob: "alice", ward: "alice"}
	for _, c := range all {
		got, err := c.Message(sent.ID)
		if err != nil {
			t.Fatalf("%s: %v", c.Whoami().Name, err)
		}
		if got.Text != "" || got.Subject != "" || len(got.Attachments) != 0 || got.RecalledBy != want[c] ||
			got.Recalled.Before(before) || got.Recalled.After(time.Now()) {
			t.Fatalf("%s holds %+v after the recall", c.Whoami().Name, got)
		}
		if n := len(messagesLike(t, c, "potassium")); n != 0 {
			t.Fatalf("%s still holds the text", c.Whoami().Name)
		}
	}
	recalled := false
	for !recalled {
		select {
		case ev := <-evs:
			recalled = ev.Kind == EventRecalled && ev.Message.ID == sent.ID && ev.Message.RecalledBy == "alice"
		case <-ctx.Done():
			t.Fatal("bob saw no EventRecalled")
		}
	}
	if hits, err := bob.Search(ctx, "potassium", nil); err != nil || len(hits) != 0 {
		t.Fatalf("bob's search after the recall: %d hits, %v", len(hits), err)
	}
	if recs, _, err := bob.attachmentsOf(sent.ID); err != nil || len(recs) != 0 {
		t.Fatalf("bob keeps attachment records %+v, %v", recs, err)
	}
	if s := blobStatus(t, alice, blob); s != http.StatusNotFound {
		t.Fatalf("blob after the recall: status %d, want 404", s)
	}

	// Again, from the first device: nothing changes, no error.
	if _, err := alice.Recall(ctx, sent.ID); err != nil {
		t.Fatalf("a second recall: %v", err)
	}
	bob.Close()
	bob2, err := Open(bobHome, testPass, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	defer bob2.Close()
	if got, err := bob2.Message(sent.ID); err != nil || got.Recalled.IsZero() || got.Text != "" {
		t.Fatalf("after reopening: %+v, %v", got, err)
	}
}

// TestRecallOnlyBySender: an incoming message cannot be recalled by its
// recipient, an unknown ID is refused, and a recall forged by the
// recipient naming the sender's message changes nothing on the sender.
func TestRecallOnlyBySender(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	sent, err := alice.Send(ctx, "bob", "stays")
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, bob)
	if _, err := bob.Recall(ctx, sent.ID); !errors.Is(err, ErrNotSender) {
		t.Fatalf("bob recalls alice's message: %v", err)
	}
	if _, err := alice.Recall(ctx, "0011223344556677"); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("unknown ID: %v", err)
	}
	if _, err := alice.Recall(ctx, "not an id"); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("malformed ID: %v", err)
	}
	// bob's client sends a recall of alice's own message anyway.
	var mid [replyIDSize]byte
	copy(mid[:], mustHex(t, sent.ID))
	devs := devicesOf(t, bob, "alice")
	ct := &content{Type: contentRecall, Sender: bob.devID, SentMS: uint64(time.Now().UnixMilli()), Recalls: [][replyIDSize]byte{mid}}
	copy(ct.MsgID[:], randomID(msgIDSize))
	if err := bob.sendSession(ctx, devs[0], ct); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, alice)
	if got, err := alice.Message(sent.ID); err != nil || got.Text != "stays" || !got.Recalled.IsZero() {
		t.Fatalf("alice's message after bob's forged recall: %+v, %v", got, err)
	}
	if got, err := bob.Message(sent.ID); err != nil || got.Text != "stays" {
		t.Fatalf("bob's copy: %+v, %v", got, err)
	}
}

// TestRecallBeforeItsMessage: a recall that arrives before its message
// (from a sibling of the sender, on another route) is kept, and the
// message is stored deleted when it arrives; one by another person is
// not applied.
func TestRecallBeforeItsMessage(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	_, bob, _, _ := pair(t, srv)
	devs := devicesOf(t, bob, "alice")
	now := time.Now().UTC()
	for _, tc := range []struct {
		id       string
		bySender bool
	}{{"00000000000000a1", true}, {"00000000000000a2", false}} {
		var mid [replyIDSize]byte
		copy(mid[:], mustHex(t, tc.id))
		err := bob.st.update(func(tx *tx) error {
			from := devs[0]
			if !tc.bySender {
				// The recall comes from bob's own person: not the
				// sender of an incoming message.
				self, err := tx.self()
				if err != nil {
					return err
				}
				from = &contactRecord{Device: from.Device, Person: self}
			}
			ct := &content{Type: contentRecall, SentMS: uint64(now.UnixMilli()), Recalls: [][replyIDSize]byte{mid}}
			if err := bob.receiveRecall(tx, from, ct, now, &received{}); err != nil {
				return err
			}
			m := &Message{ID: tc.id, From: "alice", To: Me, Text: "late", Time: now, Received: now}
			_, err := storeMessageRecord(tx, devs[0], m, nil)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := bob.Message(tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if tc.bySender && (got.Recalled.IsZero() || got.Text != "" || got.RecalledBy != "alice") {
			t.Fatalf("a recall by the sender first: stored %+v", got)
		}
		if !tc.bySender && (!got.Recalled.IsZero() || got.Text != "late") {
			t.Fatalf("a recall by someone else first: stored %+v", got)
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
