package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/protocol"
)

// Run `go test ./client -run TestWriteFuzzCorpus -update-corpus` to
// regenerate the committed seed corpora of the fuzz targets below from
// fresh, valid encodings (new keys each time, so the files change).
var updateCorpus = flag.Bool("update-corpus", false, "rewrite the testdata/fuzz seed corpora of fuzz_test.go")

// The targets of this file and the seeds each must have.
var fuzzCorpora = []string{"FuzzParseBundle", "FuzzParseKeyPayload", "FuzzStoreRecord", "FuzzStoreCiphertext", "FuzzParseSessionContent"}

func TestWriteFuzzCorpus(t *testing.T) {
	t.Parallel()
	if !*updateCorpus {
		t.Skip("corpus regeneration only with -update-corpus")
	}
	id, err := identity.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	dev, err := identity.NewDevice(id)
	if err != nil {
		t.Fatal(err)
	}
	var bundles [][]byte
	for _, pid := range []uint32{0, 0xfffffffe} {
		lr, err := identity.NewPrekey(dev, pid, false)
		if err != nil {
			t.Fatal(err)
		}
		bundles = append(bundles, marshalBundle(dev.Certificate(), lr.Public()))
	}
	writeFuzzSeeds(t, "FuzzParseBundle", "valid", bundles)

	var contents [][]byte
	for _, ct := range []*content{
		{Type: contentText, SentMS: 1764100000000, Text: "The 14:00 handover moved to bed 12."},
		{Type: contentText, SentMS: 1, Text: strings.Repeat("ü", 100)},
		{Type: contentReset, SentMS: 1 << 40},
		{Type: contentAttachment, SentMS: 1764100000000, Text: "scan attached", Attachments: []attachmentRef{seedAttachment()}},
		{Type: contentTextHeaders, SentMS: 1764100000000, Text: "done at 14:05", Subject: "Bed 12", HasReply: true, ReplyTo: [replyIDSize]byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{Type: contentAttachmentHeaders, SentMS: 1764100000000, Subject: "Obs", Attachments: []attachmentRef{seedAttachment()}},
		{Type: contentHeads, SentMS: 1764100000000, Heads: [][]byte{seedHead(7), seedHead(1 << 20)}},
		{Type: contentSync, SentMS: 1764100000000, Ops: seedSyncOps()},
		{Type: contentReceipt, SentMS: 1764100000000, ReceiptKind: receiptRead, Receipts: [][msgIDSize]byte{{1, 2, 3}, {0xff}}},
		{Type: contentRecall, SentMS: 1764100000000, Recalls: [][replyIDSize]byte{{1, 2, 3, 4, 5, 6, 7, 8}, {0xff}}},
	} {
		b, err := ct.marshalSession()
		if err != nil {
			t.Fatal(err)
		}
		contents = append(contents, b, append(bytes.Clone(b), make([]byte, 64)...)) // bare and padded
	}
	writeFuzzSeeds(t, "FuzzParseSessionContent", "valid", contents)
	writeFuzzSeeds(t, "FuzzParseBundle", "invalid", [][]byte{
		bundles[0][:len(bundles[0])-1],                       // truncated
		append(bytes.Clone(bundles[0]), 0),                   // trailing byte
		append([]byte{bundleVersion + 1}, bundles[0][1:]...), // unknown version
	})

	payload := marshalKeyPayload(id, dev, bytes.Repeat([]byte{0x5a}, storeKeySize))
	other, err := identity.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	writeFuzzSeeds(t, "FuzzParseKeyPayload", "valid", [][]byte{payload})
	writeFuzzSeeds(t, "FuzzParseKeyPayload", "invalid", [][]byte{
		payload[:len(payload)-1], // short store key
		marshalKeyPayload(other, dev, bytes.Repeat([]byte{0x5a}, storeKeySize)), // device of another identity
	})

	records := seedRecords(dev)
	writeFuzzSeeds(t, "FuzzStoreRecord", "valid", records)
	writeFuzzSeeds(t, "FuzzStoreRecord", "invalid", [][]byte{
		[]byte("{"), []byte("null"), []byte("[]"), []byte(`{"v":1,"created":"yesterday"}`), []byte(`{"identity":"!!"}`),
	})

	// Ciphertexts as the store writes them, each at the slot (bucket and
	// key) it was sealed for, under the fixed test store key.
	c := newFuzzClient(t)
	var cts [][]byte
	for i, slot := range fuzzSlots(c.st) {
		err := c.st.update(func(t *tx) error {
			if err := t.PutRaw(slot.bucket, slot.key, records[i%len(records)]); err != nil {
				return err
			}
			cts = append(cts, bytes.Clone(t.Bolt().Bucket(slot.bucket).Get(slot.key)))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	writeFuzzSeeds(t, "FuzzStoreCiphertext", "valid", cts)
	writeFuzzSeeds(t, "FuzzStoreCiphertext", "invalid", [][]byte{cts[0][:39], make([]byte, 64)})
}

// seedHead is a tree head of size leaves as keys/kt encodes it (its
// signature is not checked by the parser).
func seedHead(size uint64) []byte {
	h := &kt.Head{Size: size, Root: kt.EmptyRoot(), Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Signature: make([]byte, keys.SignatureSize)}
	return h.Bytes()
}

// seedRecords returns one valid JSON encoding of each store record type.
func seedRecords(dev *identity.Device) [][]byte {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cert := dev.Certificate()
	devID := cert.DeviceID()
	idFP := cert.Identity.Fingerprint()
	tok := protocol.NewCapabilityToken()
	mb := protocol.MailboxID{1, 2, 3}
	recs := []any{
		&profileRecord{V: 1, Name: "alice", Relay: "wss://relay.example.org", Identity: idFP[:], Device: devID[:], Created: now, Enrolled: true},
		&mailboxesRecord{V: 1, List: []mailboxRecord{{ID: mb[:], Purpose: "default", Created: now}, {ID: make([]byte, 16), Purpose: "invitation", Created: now}}},
		&store.Person{V: 1, ID: fuzzPersonID, Name: "bob", Identity: idFP[:], Added: now, Blocked: true},
		&store.Device{V: 1, ID: fuzzContactID, Person: fuzzPersonID, Cert: cert.Bytes(), DeviceID: devID[:], Relay: "wss://relay.example.org",
			SendMbx: mb[:], SendCap: tok.SecretBytes(), RecvMbx: mb[:], RecvCap: tok.SecretBytes(), Added: now},
		&messageRecord{V: 1, ID: "0123456789abcdef", Conversation: bytes.Repeat([]byte{8}, 16), Sender: fuzzContactID, From: "bob", To: "me", Text: "hello",
			Subject: "handover", ReplyTo: "fedcba9876543210", Time: now, Received: now.Add(time.Second), Mailbox: mb[:], Envelope: bytes.Repeat([]byte{9}, 16)},
		&store.Conversation{V: 1, ID: bytes.Repeat([]byte{8}, 16), Type: store.Direct, Person: fuzzPersonID, Created: now},
		&messageRecord{V: 1, ID: "fedcba9876543210", From: "me", To: "bob", Text: "hi", Time: now, Received: now, Outgoing: true},
		&invitationRecord{V: 1, Mailbox: mb[:], Created: now, Used: true},
		&seenRecord{At: now},
	}
	var out [][]byte
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			panic(err)
		}
		out = append(out, b)
	}
	return out
}

// writeFuzzSeeds writes one []byte seed per file in the `go test fuzz v1`
// format, named prefix-0, prefix-1...
func writeFuzzSeeds(t *testing.T, target, prefix string, inputs [][]byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, in := range inputs {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", in)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d", prefix, i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A fuzz target whose seed folder is gone would quietly start from nothing.
func TestFuzzCorpusPresent(t *testing.T) {
	t.Parallel()
	for _, name := range fuzzCorpora {
		m, _ := filepath.Glob(filepath.Join("testdata", "fuzz", name, "valid-*"))
		if len(m) == 0 {
			t.Errorf("%s has no valid seeds (regenerate with -update-corpus)", name)
		}
	}
}

// readFuzzSeed reads a one-argument []byte seed file.
func readFuzzSeed(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
		t.Fatalf("%s: not a one-argument []byte seed", path)
	}
	v, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(v)
}

// The valid-* seeds are valid: the fuzzer starts from real inputs.
func TestFuzzSeedsValid(t *testing.T) {
	t.Parallel()
	seeds := func(name string) []string {
		m, _ := filepath.Glob(filepath.Join("testdata", "fuzz", name, "valid-*"))
		slices.Sort(m)
		return m
	}
	for _, p := range seeds("FuzzParseBundle") {
		if _, _, err := parseBundle(readFuzzSeed(t, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range seeds("FuzzParseKeyPayload") {
		if _, _, _, err := parseKeyPayload(readFuzzSeed(t, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range seeds("FuzzStoreRecord") {
		var m map[string]any
		if err := json.Unmarshal(readFuzzSeed(t, p), &m); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	c := newFuzzClient(t)
	slots := fuzzSlots(c.st)
	for _, p := range seeds("FuzzStoreCiphertext") {
		var i int
		if _, err := fmt.Sscanf(filepath.Base(p), "valid-%d", &i); err != nil || i >= len(slots) {
			t.Errorf("%s: no slot", p)
			continue
		}
		raw := readFuzzSeed(t, p)
		// Written as it is and read back, then rolled back.
		errRollback := errors.New("rollback")
		err := c.st.update(func(t *tx) error {
			if err := t.Bolt().Bucket(slots[i].bucket).Put(slots[i].key, raw); err != nil {
				return err
			}
			if _, err := t.GetRaw(slots[i].bucket, slots[i].key); err != nil {
				return err
			}
			return errRollback
		})
		if err != errRollback {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// FuzzParseBundle: the prekey bundle comes from the relay, so from anyone.
// No input panics; whatever parses carries a verifying certificate and
// re-encodes to exactly the input (one encoding per bundle).
func FuzzParseBundle(f *testing.F) {
	f.Add([]byte{bundleVersion, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		cert, pk, err := parseBundle(b)
		if err != nil {
			if cert != nil || pk != nil {
				t.Fatal("values returned with an error")
			}
			return
		}
		if err := cert.Verify(); err != nil {
			t.Fatalf("parsed certificate does not verify: %v", err)
		}
		if again := marshalBundle(cert, pk); !bytes.Equal(again, b) {
			t.Fatalf("not canonical:\n got %x\nwant %x", again, b)
		}
	})
}

// FuzzParseKeyPayload: the decrypted key file. No input panics; whatever
// parses has a device certified by the identity, a store key of the right
// size, and re-encodes to exactly the input.
func FuzzParseKeyPayload(f *testing.F) {
	f.Add([]byte{keyPayloadVersion, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, dev, sk, err := parseKeyPayload(b)
		if err != nil {
			if id != nil || dev != nil || sk != nil {
				t.Fatal("values returned with an error")
			}
			return
		}
		if dev.Certificate().Identity.Fingerprint() != id.Public().Fingerprint() {
			t.Fatal("device not certified by the identity")
		}
		if len(sk) != storeKeySize {
			t.Fatalf("store key of %d bytes", len(sk))
		}
		if again := marshalKeyPayload(id, dev, sk); !bytes.Equal(again, b) {
			t.Fatalf("not canonical:\n got %x\nwant %x", again, b)
		}
	})
}

// fuzzStoreKey is fixed so that committed ciphertext seeds stay openable.
var fuzzStoreKey = bytes.Repeat([]byte{0x42}, storeKeySize)

const (
	fuzzMsgID   = "fuzz-message"
	fuzzIndexID = "fuzz-index" // its message-ids value is the fuzz input
)

var (
	fuzzContactID = []byte("fuzz-contact-id!") // the device record
	fuzzPersonID  = []byte("fuzz-person-id!!")
	fuzzMailbox   = bytes.Repeat([]byte{0x66}, 16)
	fuzzToken     = bytes.Repeat([]byte{0x77}, 32)
)

// newFuzzClient returns a Client with no connection over a store on a temp
// dir: enough for everything that only reads the store.
func newFuzzClient(tb testing.TB) *Client {
	tb.Helper()
	dir := tb.TempDir()
	st, err := newStore(filepath.Join(dir, StoreFileName), fuzzStoreKey)
	if err != nil {
		tb.Fatal(err)
	}
	if err := st.update(func(*tx) error { return nil }); err != nil { // creates the file and buckets
		tb.Fatal(err)
	}
	c := newClient(dir, (*Options)(nil).defaults(), newTestDevice(tb).dev, "me", "ws://127.0.0.1:1", st)
	tb.Cleanup(func() { c.Close() })
	return c
}

type fuzzSlot struct{ bucket, key []byte }

// fuzzSlots are the places a stored record is read from: the profile, the
// mailbox list, a person, a device, a message, a message-ID index entry,
// an invitation, a conversation and a mailbox index entry.
func fuzzSlots(s *localStore) []fuzzSlot {
	return []fuzzSlot{
		{bucketMeta, s.Index(bucketMeta, keyProfile)},
		{bucketMeta, s.Index(bucketMeta, keyMailboxes)},
		{store.BucketPersons, fuzzPersonID},
		{store.BucketDevices, fuzzContactID},
		{bucketMessages, fuzzMsgKey},
		{bucketMessageIDs, s.Index(bucketMessageIDs, []byte(fuzzIndexID))},
		{bucketInvitations, s.Index(bucketInvitations, fuzzToken)},
		{store.BucketConversations, s.Index(store.BucketConversations, []byte("direct"), fuzzPersonID)},
		{store.BucketMailboxIndex, s.Index(store.BucketMailboxIndex, fuzzMailbox)},
	}
}

var fuzzMsgKey = []byte("fuzz-message-key")

// readAll runs every reader of stored records and returns their errors.
// None may panic.
func (c *Client) fuzzReadAll() []error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	add(c.st.view(func(t *tx) error { _, err := t.profile(); return err }))
	add(c.st.view(func(t *tx) error { _, err := t.mailboxes(); return err }))
	add(c.st.view(func(t *tx) error {
		var inv invitationRecord
		_, err := t.Get(bucketInvitations, t.Index(bucketInvitations, fuzzToken), &inv)
		return err
	}))
	_, err := c.Contacts()
	add(err)
	add(c.st.view(func(t *tx) error { _, err := t.contactByMailbox(fuzzMailbox); return err }))
	add(c.st.view(func(t *tx) error { _, err := t.Conversation(t.DirectConversationID(fuzzPersonID)); return err }))
	r, err := c.lookupContact("bob")
	if err == nil {
		c.certificate(r) // a stored certificate is parsed, not trusted
		clear(c.certs)
	} else if !errors.Is(err, ErrUnknownContact) {
		add(err)
	}
	_, err = c.Inbox()
	add(err)
	if _, err := c.Message(fuzzMsgID); !errors.Is(err, ErrNoMessage) {
		add(err)
	}
	if _, err := c.Message(fuzzIndexID); !errors.Is(err, ErrNoMessage) {
		add(err)
	}
	return errs
}

// checkStoreErrors fails on any error but errStoreCorrupt or, for a value
// that reads as absent, ErrNotInitialised.
func checkStoreErrors(t *testing.T, errs []error) {
	t.Helper()
	for _, err := range errs {
		if err != nil && !errors.Is(err, errStoreCorrupt) && !errors.Is(err, ErrNotInitialised) && !errors.Is(err, store.ErrConversationType) {
			t.Fatalf("error %v is neither errStoreCorrupt nor ErrNotInitialised", err)
		}
	}
}

// FuzzStoreRecord: a decrypted store value that does not decode (a bug in
// an older version, or a store from elsewhere) gives errStoreCorrupt from
// every reader, never a panic. What decodes re-encodes stably.
func FuzzStoreRecord(f *testing.F) {
	c := newFuzzClient(f)
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, plain []byte) {
		err := c.st.update(func(t *tx) error {
			for _, s := range fuzzSlots(c.st) {
				if err := t.PutRaw(s.bucket, s.key, plain); err != nil {
					return err
				}
			}
			// The message ID index points at the fuzzed message.
			return t.PutRaw(bucketMessageIDs, t.Index(bucketMessageIDs, []byte(fuzzMsgID)), fuzzMsgKey)
		})
		if err != nil {
			t.Fatal(err)
		}
		checkStoreErrors(t, c.fuzzReadAll())
		for _, r := range []any{&profileRecord{}, &mailboxesRecord{}, &store.Person{}, &store.Device{}, &store.Conversation{}, &messageRecord{}, &invitationRecord{}, &seenRecord{}} {
			if json.Unmarshal(plain, r) != nil {
				continue
			}
			once, err := json.Marshal(r)
			if err != nil {
				t.Fatalf("%T decodes but does not encode: %v", r, err)
			}
			if err := json.Unmarshal(once, r); err != nil {
				t.Fatalf("%T re-encoding does not decode: %v", r, err)
			}
			if twice, _ := json.Marshal(r); !bytes.Equal(once, twice) {
				t.Fatalf("%T re-encoding unstable:\n%s\n%s", r, once, twice)
			}
		}
	})
}

// FuzzStoreCiphertext: a store value as it sits on disk (nonce ||
// XChaCha20-Poly1305 ciphertext), possibly corrupted. Readers return it
// decoded or errStoreCorrupt, never panic.
func FuzzStoreCiphertext(f *testing.F) {
	c := newFuzzClient(f)
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, raw []byte) {
		err := c.st.update(func(t *tx) error {
			for _, s := range fuzzSlots(c.st) {
				if err := t.Bolt().Bucket(s.bucket).Put(s.key, raw); err != nil {
					return err
				}
			}
			return t.Bolt().Bucket(bucketMessageIDs).Put(t.Index(bucketMessageIDs, []byte(fuzzMsgID)), raw)
		})
		if err != nil {
			t.Fatal(err)
		}
		checkStoreErrors(t, c.fuzzReadAll())
	})
}

// seedAttachment is a fixed attachment reference for seeds.
func seedAttachment() attachmentRef {
	a := attachmentRef{Name: "scan 2026-03.pdf", MediaType: "application/pdf", PlainSize: 200000, CipherSize: 4 * protocol.BlobCipherChunkSize}
	for i := range a.Blob {
		a.Blob[i], a.Key[i], a.Digest[i] = byte(i), byte(i+1), byte(i+2)
	}
	return a
}

// seedSyncOps is one inbox operation of each kind (syncops.go).
func seedSyncOps() []syncOp {
	id := [16]byte{0xf0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	msg := [replyIDSize]byte{1, 2, 3, 4, 5, 6, 7, 8}
	return []syncOp{
		{Kind: syncFolderSet, MS: 1764100000000, ID: id, Name: "Ward 7 – handovers"},
		{Kind: syncMove, MS: 1764100000001, Msg: msg, To: syncToFolder, Folder: id},
		{Kind: syncMove, MS: 1764100000002, Msg: msg, To: syncToArchive},
		{Kind: syncMove, MS: 1764100000003, Msg: msg, To: syncToDefault},
		{Kind: syncRead, MS: 1764100000004, Msg: msg},
		{Kind: syncDraftSave, MS: 1764100000005, ID: id, HasTo: true, Person: keys.Fingerprint{9}, Subject: "Re: Bed 12", HasReply: true, ReplyTo: msg, Text: "Seen at 14:10."},
		{Kind: syncDraftSave, MS: 1764100000006, ID: id},
		{Kind: syncDraftDelete, MS: 1764100000007, ID: id},
		{Kind: syncFolderDelete, MS: 1764100000008, ID: id},
	}
}
