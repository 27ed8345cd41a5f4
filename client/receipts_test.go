package client

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/postern/postern/relay/relaytest"
)

// befriend makes b a contact of a's (named aName on b's side) and lets
// the routes settle.
func befriend(t *testing.T, a, b *Client, aName string) {
	t.Helper()
	ctx := testCtx(t)
	code, err := a.Invite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Accept(ctx, code, aName); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{a, b, a, b, a} {
		if _, err := c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// sealedCount is how many envelopes c sealed since watch.
func sealedCount(l *envelopeLog) int {
	s, _ := l.get()
	return len(s)
}

// receipts drains the events queued on ch and returns the EventReceipt
// messages among them.
func receiptEvents(ch <-chan Event) []Message {
	var out []Message
	for {
		select {
		case ev := <-ch:
			if ev.Kind == EventReceipt {
				out = append(out, ev.Message)
			}
		default:
			return out
		}
	}
}

func message(t *testing.T, c *Client, id string) Message {
	t.Helper()
	m, err := c.Message(id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestReceiptDelivered: bob's Sync stores alice's messages and sends one
// delivered receipt back; alice's Sync records it on her outgoing messages
// (once, with an EventReceipt each) and sends nothing in return.
func TestReceiptDelivered(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	evs, err := alice.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Both receive loops run: bob may store the messages, and alice the
	// receipts, before the Syncs below, which make sure they have.
	bl := watch(bob)
	m1, err := alice.Send(ctx, "bob", "handover at 14:00")
	if err != nil {
		t.Fatal(err)
	}
	m2, err := alice.SendWith(ctx, "bob", "bed 12", &SendOptions{Subject: "Obs"})
	if err != nil {
		t.Fatal(err)
	}
	al := watch(alice)
	if !m1.Delivered.IsZero() || !m1.ReadReceipt.IsZero() {
		t.Fatal("a message is delivered as it is sent")
	}
	if _, err := bob.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := sealedCount(bl); n < 1 || n > 2 {
		t.Fatalf("bob sealed %d envelopes for two messages, want a delivered receipt (two at most)", n)
	}
	syncWant(t, alice, "alice")
	if n := sealedCount(al); n != 0 {
		t.Fatalf("alice sealed %d envelopes on receiving receipts: a receipt must not trigger a receipt", n)
	}
	for _, sent := range []Message{m1, m2} {
		got := message(t, alice, sent.ID)
		if got.Delivered.IsZero() || !got.ReadReceipt.IsZero() {
			t.Fatalf("%s: delivered %v, read %v; want delivered only", sent.Text, got.Delivered, got.ReadReceipt)
		}
		if got.Delivered.Before(sent.Time) || got.Delivered.After(time.Now()) {
			t.Fatalf("delivered at %v, sent at %v", got.Delivered, sent.Time)
		}
	}
	got := receiptEvents(evs)
	if len(got) != 2 || got[0].ID != m1.ID || got[1].ID != m2.ID || got[1].Delivered.IsZero() || got[1].Subject != "Obs" {
		t.Fatalf("receipt events %+v, want one for each message, as stored", got)
	}

	// Bob's copy of alice's message carries no receipts: they are for
	// outgoing messages.
	if m := message(t, bob, m1.ID); !m.Delivered.IsZero() || !m.ReadReceipt.IsZero() {
		t.Fatalf("bob's incoming copy has receipts: %+v", m)
	}
}

// TestReceiptRead: a read receipt sets ReadReceipt, with the reader's time;
// a second one moves nothing and emits nothing.
func TestReceiptRead(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	m, err := alice.Send(ctx, "bob", "please confirm")
	if err != nil {
		t.Fatal(err)
	}
	syncWant(t, bob, "bob", "alice>me:please confirm")
	if !bob.ReadReceipts() {
		t.Fatal("read receipts are off by default")
	}
	bl := watch(bob)
	if err := bob.sendReadReceipts(ctx, []string{m.ID}); err != nil {
		t.Fatal(err)
	}
	if n := sealedCount(bl); n != 1 {
		t.Fatalf("bob sealed %d envelopes for one read receipt", n)
	}
	syncWant(t, alice, "alice")
	got := message(t, alice, m.ID)
	if got.ReadReceipt.IsZero() || got.Delivered.IsZero() {
		t.Fatalf("after bob read it: delivered %v, read %v", got.Delivered, got.ReadReceipt)
	}
	if got.ReadReceipt.Before(m.Time) || got.ReadReceipt.After(time.Now()) {
		t.Fatalf("read at %v, sent at %v", got.ReadReceipt, m.Time)
	}

	// Read again (another device of bob's, or a second MarkRead): the
	// first time stands.
	evs, err := alice.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // so that a moved time would differ
	if err := bob.SendReadReceipts(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	syncWant(t, alice, "alice")
	if again := message(t, alice, m.ID); !again.ReadReceipt.Equal(got.ReadReceipt) || !again.Delivered.Equal(got.Delivered) {
		t.Fatalf("a later read receipt moved the times: %v/%v to %v/%v", got.Delivered, got.ReadReceipt, again.Delivered, again.ReadReceipt)
	}
	if evs := receiptEvents(evs); len(evs) != 0 {
		t.Fatalf("a later read receipt emitted %d events", len(evs))
	}

	// The public entry checks its IDs; outgoing messages are skipped.
	if err := bob.SendReadReceipts(ctx, "0123456789abcdef"); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("unknown ID: %v, want ErrNoMessage", err)
	}
	reply, err := bob.Send(ctx, "alice", "confirmed")
	if err != nil {
		t.Fatal(err)
	}
	bl = watch(bob)
	if err := bob.SendReadReceipts(ctx, reply.ID); err != nil || sealedCount(bl) != 0 {
		t.Fatalf("read receipt for an outgoing message: %v, %d envelopes", err, sealedCount(bl))
	}
}

// TestReceiptReadOff: with read receipts off (kept in the store) nothing
// read is sent; delivered receipts still are.
func TestReceiptReadOff(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, bobHome := pair(t, srv)
	ctx := testCtx(t)
	if err := bob.SetReadReceipts(false); err != nil {
		t.Fatal(err)
	}
	if bob.ReadReceipts() {
		t.Fatal("ReadReceipts after SetReadReceipts(false)")
	}
	other, err := Open(bobHome, testPass, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	if other.ReadReceipts() {
		t.Fatal("the setting was not kept in the store")
	}
	other.Close()

	m, err := alice.Send(ctx, "bob", "private")
	if err != nil {
		t.Fatal(err)
	}
	syncWant(t, bob, "bob", "alice>me:private")
	bl := watch(bob)
	if err := bob.SendReadReceipts(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if n := sealedCount(bl); n != 0 {
		t.Fatalf("bob sealed %d envelopes with read receipts off", n)
	}
	syncWant(t, alice, "alice")
	if got := message(t, alice, m.ID); got.Delivered.IsZero() || !got.ReadReceipt.IsZero() {
		t.Fatalf("with bob's read receipts off: delivered %v, read %v; want delivered only", got.Delivered, got.ReadReceipt)
	}

	// On again: the next read is reported.
	if err := bob.SetReadReceipts(true); err != nil {
		t.Fatal(err)
	}
	if err := bob.SendReadReceipts(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	syncWant(t, alice, "alice")
	if got := message(t, alice, m.ID); got.ReadReceipt.IsZero() {
		t.Fatal("no read receipt after turning them on again")
	}
}

// TestReceiptForged: a receipt changes only outgoing messages to the
// person whose device sent it. Carol, who learned the ID of alice's
// message to bob, cannot mark it delivered or read; nor can bob mark
// alice's message to carol, or one of his own to alice.
func TestReceiptForged(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	carol, _ := newTestClient(t, srv, "carol")
	befriend(t, alice, carol, "alice")
	ctx := testCtx(t)

	toBob, err := alice.Send(ctx, "bob", "for bob only")
	if err != nil {
		t.Fatal(err)
	}
	toCarol, err := alice.Send(ctx, "carol", "for carol")
	if err != nil {
		t.Fatal(err)
	}
	fromBob, err := bob.Send(ctx, "alice", "from bob")
	if err != nil {
		t.Fatal(err)
	}
	syncWant(t, bob, "bob", "alice>me:for bob only")
	syncWant(t, carol, "carol", "alice>me:for carol")
	// The delivered receipts of bob and carol arrive, and alice stores
	// bob's message; forget those, to see only what the forgeries do.
	syncWant(t, alice, "alice", "bob>me:from bob")
	err = alice.st.update(func(t *tx) error {
		for _, id := range []string{toBob.ID, toCarol.ID} {
			if _, err := t.UpdateMessage(id, func(m *messageRecord) { m.Delivered, m.ReadReceipt = time.Time{}, time.Time{} }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	contentID := func(c *Client, id string) [msgIDSize]byte {
		r, err := c.messageRecordByID(id)
		if err != nil || len(r.ContentID) != msgIDSize {
			t.Fatalf("content ID of %s: %v", id, err)
		}
		var mid [msgIDSize]byte
		copy(mid[:], r.ContentID)
		return mid
	}
	bobMID := contentID(bob, toBob.ID)
	carolMID := contentID(carol, toCarol.ID)
	fromBobMID := contentID(alice, fromBob.ID) // bob's outgoing record keeps none
	forge := func(from *Client, contact string, kind byte, ids ...[msgIDSize]byte) {
		t.Helper()
		r, err := from.lookupContact(contact)
		if err != nil {
			t.Fatal(err)
		}
		if err := from.sendReceipt(ctx, r.ID, kind, ids); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := alice.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	forge(carol, "alice", receiptRead, bobMID)                 // another person's message
	forge(bob, "alice", receiptRead, carolMID, fromBobMID)     // alice's to carol; one alice received
	forge(bob, "alice", receiptDelivered, [msgIDSize]byte{42}) // no such message
	syncWant(t, alice, "alice")
	for _, id := range []string{toBob.ID, toCarol.ID, fromBob.ID} {
		if m := message(t, alice, id); !m.Delivered.IsZero() || !m.ReadReceipt.IsZero() {
			t.Fatalf("a forged receipt changed %q: delivered %v, read %v", m.Text, m.Delivered, m.ReadReceipt)
		}
	}
	if got := receiptEvents(evs); len(got) != 0 {
		t.Fatalf("forged receipts emitted %d events", len(got))
	}

	// The same receipts from the right person do count.
	forge(carol, "alice", receiptRead, carolMID)
	forge(bob, "alice", receiptRead, bobMID)
	syncWant(t, alice, "alice")
	for _, id := range []string{toBob.ID, toCarol.ID} {
		if m := message(t, alice, id); m.ReadReceipt.IsZero() {
			t.Fatalf("%q: a genuine read receipt was not recorded", m.Text)
		}
	}
	if got := receiptEvents(evs); len(got) != 2 {
		t.Fatalf("genuine receipts emitted %d events, want 2", len(got))
	}
}

// TestReceiptBlocked: nothing is sent to a contact this device blocked.
func TestReceiptBlocked(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	m, err := alice.Send(ctx, "bob", "hello")
	if err != nil {
		t.Fatal(err)
	}
	syncWant(t, bob, "bob", "alice>me:hello")
	if err := bob.Block(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	bl := watch(bob)
	if err := bob.SendReadReceipts(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if n := sealedCount(bl); n != 0 {
		t.Fatalf("bob sealed %d envelopes for a blocked contact", n)
	}
}

// TestReceiptSplit: a receipt names at most MaxReceiptIDs messages; more
// go in several.
func TestReceiptSplit(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	m, err := alice.Send(ctx, "bob", "one of many")
	if err != nil {
		t.Fatal(err)
	}
	syncWant(t, bob, "bob", "alice>me:one of many")
	r, err := bob.messageRecordByID(m.ID)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([][msgIDSize]byte, MaxReceiptIDs+1)
	for i := range ids {
		binary.BigEndian.PutUint32(ids[i][:], uint32(i+1))
	}
	copy(ids[MaxReceiptIDs][:], r.ContentID) // the real one in the second receipt
	rec, err := bob.lookupContact("alice")
	if err != nil {
		t.Fatal(err)
	}
	bl := watch(bob)
	if err := bob.sendReceipt(ctx, rec.ID, receiptRead, ids); err != nil {
		t.Fatal(err)
	}
	if n := sealedCount(bl); n != 2 {
		t.Fatalf("%d IDs went in %d receipts, want 2", len(ids), n)
	}
	syncWant(t, alice, "alice")
	if got := message(t, alice, m.ID); got.ReadReceipt.IsZero() {
		t.Fatal("the message named in the second receipt was not marked read")
	}
}

// TestReceiptQueueBatches: delivered receipts wait per sender device, in
// the order their first message arrived, until taken; a batch reports
// its size so that a full one is sent at once.
func TestReceiptQueueBatches(t *testing.T) {
	t.Parallel()
	var q deliveredQueue
	a, b := []byte("device-a"), []byte("device-b")
	for i, step := range []struct {
		dev  []byte
		id   byte
		want int
	}{{a, 1, 1}, {b, 2, 1}, {a, 3, 2}} {
		if n := q.add(step.dev, [msgIDSize]byte{step.id}); n != step.want {
			t.Fatalf("add %d: %d waiting, want %d", i, n, step.want)
		}
	}
	got := q.take()
	if len(got) != 2 || !bytes.Equal(got[0].dev, a) || len(got[0].ids) != 2 || got[0].ids[1][0] != 3 ||
		!bytes.Equal(got[1].dev, b) || len(got[1].ids) != 1 {
		t.Fatalf("batches %+v", got)
	}
	if len(q.take()) != 0 {
		t.Fatal("take did not empty the queue")
	}
}

// TestReceiptContent: the 0x16 encoding round-trips, and every malformed
// body is refused.
func TestReceiptContent(t *testing.T) {
	t.Parallel()
	ct := &content{Type: contentReceipt, SentMS: 1764100000000, ReceiptKind: receiptRead,
		Receipts: [][msgIDSize]byte{{1}, {2}, {3}}}
	copy(ct.MsgID[:], randomID(msgIDSize))
	b, err := ct.marshalSession()
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseSessionContent(b)
	if err != nil || got.Type != contentReceipt || got.ReceiptKind != receiptRead || len(got.Receipts) != 3 || got.Receipts[2] != ct.Receipts[2] {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	body := len(b) - 2 - 3*msgIDSize // where kind and count start
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
	}{
		{"kind 0", func(p []byte) []byte { p[body] = 0; return p }},
		{"kind 3", func(p []byte) []byte { p[body] = 3; return p }},
		{"count 0", func(p []byte) []byte { p[body+1] = 0; return p }},
		{"count beyond the IDs", func(p []byte) []byte { p[body+1] = 4; return p }},
		{"count below the IDs", func(p []byte) []byte { p[body+1] = 2; return p }},
		{"truncated", func(p []byte) []byte { return fixLen(p[:len(p)-1]) }},
		{"trailing byte", func(p []byte) []byte { return fixLen(append(p, 7)) }},
	} {
		if _, err := parseSessionContent(tc.edit(bytes.Clone(b))); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: %v, want ErrDecrypt", tc.name, err)
		}
	}
	for _, bad := range []*content{
		{Type: contentReceipt, ReceiptKind: receiptDelivered},
		{Type: contentReceipt, ReceiptKind: 9, Receipts: [][msgIDSize]byte{{1}}},
		{Type: contentReceipt, ReceiptKind: receiptRead, Receipts: make([][msgIDSize]byte, MaxReceiptIDs+1)},
	} {
		if _, err := bad.marshalSession(); err == nil {
			t.Errorf("marshalled %+v", bad)
		}
	}
}

// fixLen rewrites the length prefix of a session plaintext after an edit.
func fixLen(p []byte) []byte {
	binary.BigEndian.PutUint32(p, uint32(len(p)-padHeaderSize))
	return p
}

// TestReceiptDevices: bob's two devices both acknowledge alice's message;
// the first receipt counts and the second moves nothing; a read on the
// second device reaches alice. Alice's own second device, which gets a
// sent copy of her message, sends no receipt for it, and receipts go to
// the device that sent the message only.
func TestReceiptDevices(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	ward, _ := linkNew(t, bob, "WARD-PC")
	office, _ := linkNew(t, alice, "OFFICE-PC")
	syncAll(t, 3, ward, office, bob, alice)
	if n := len(devicesOf(t, alice, "bob")); n != 2 {
		t.Fatalf("alice writes to %d of bob's devices, want 2", n)
	}

	evs, err := alice.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ol, bl, wl := watch(office), watch(bob), watch(ward)
	m, err := alice.Send(ctx, "bob", "to both of bob's")
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, bob, ward, office)
	if sealedCount(bl) == 0 || sealedCount(wl) == 0 {
		t.Fatalf("bob's devices sealed %d and %d envelopes, want a receipt each", sealedCount(bl), sealedCount(wl))
	}
	if n := sealedCount(ol); n != 0 {
		t.Fatalf("alice's other device sealed %d envelopes for a sent copy", n)
	}
	if copies := messagesLike(t, office, "to both of bob's"); len(copies) != 1 || !copies[0].Outgoing {
		t.Fatalf("office copies %+v", copies)
	}
	syncWant(t, alice, "alice")
	first := message(t, alice, m.ID)
	if first.Delivered.IsZero() || !first.ReadReceipt.IsZero() {
		t.Fatalf("delivered %v, read %v", first.Delivered, first.ReadReceipt)
	}
	if got := receiptEvents(evs); len(got) != 1 {
		t.Fatalf("%d receipt events for two delivered receipts, want 1", len(got))
	}

	wardCopy := messagesLike(t, ward, "to both of bob's")
	if len(wardCopy) != 1 {
		t.Fatalf("ward has %+v", wardCopy)
	}
	if err := ward.SendReadReceipts(ctx, wardCopy[0].ID); err != nil {
		t.Fatal(err)
	}
	syncWant(t, alice, "alice")
	read := message(t, alice, m.ID)
	if read.ReadReceipt.IsZero() || !read.Delivered.Equal(first.Delivered) {
		t.Fatalf("after ward read it: delivered %v (was %v), read %v", read.Delivered, first.Delivered, read.ReadReceipt)
	}
	if got := receiptEvents(evs); len(got) != 1 || got[0].ReadReceipt.IsZero() {
		t.Fatalf("receipt events %+v after the read", got)
	}
}

// TestMarkReadSendsReceipt: reading a message with MarkRead tells its
// sender, once: a second MarkRead of the same message sends nothing.
func TestMarkReadSendsReceipt(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	m, err := alice.Send(ctx, "bob", "ward round at 9")
	if err != nil {
		t.Fatal(err)
	}
	syncWant(t, bob, "bob", "alice>me:ward round at 9")
	bl := watch(bob)
	if err := bob.MarkRead(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if n := sealedCount(bl); n != 1 {
		t.Fatalf("bob sealed %d envelopes for reading one message, want one read receipt", n)
	}
	syncWant(t, alice, "alice")
	if got := message(t, alice, m.ID); got.ReadReceipt.IsZero() {
		t.Fatalf("alice's message after bob read it: %+v", got)
	}
	if err := bob.MarkRead(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if n := sealedCount(bl); n != 1 {
		t.Fatalf("a second MarkRead sealed %d envelopes in all, want still one", n)
	}
}
