package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func mbx(b byte) []byte { return bytes.Repeat([]byte{b}, 16) }

// TestMailboxIndex: the index gives the device that writes to a mailbox
// in one lookup, follows route changes (new route, previous route kept,
// then dropped), refuses a mailbox of another device, and forgets a
// deleted device.
func TestMailboxIndex(t *testing.T) {
	st := testStore(t)
	p := &Person{ID: NewID(), Identity: make([]byte, 32), Name: "bob"}
	d := &Device{ID: NewID(), Person: p.ID, DeviceID: make([]byte, 32), RecvMbx: mbx(1)}
	other := &Device{ID: NewID(), Person: p.ID, DeviceID: make([]byte, 32), RecvMbx: mbx(9)}
	owner := func(mb []byte) []byte {
		t.Helper()
		var id []byte
		err := st.View(func(t *Tx) error {
			d, err := t.DeviceByMailbox(mb)
			if d != nil {
				id = d.ID
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	put := func(d *Device) error { return st.Update(func(t *Tx) error { return t.PutDevice(d) }) }
	if err := st.Update(func(t *Tx) error { return t.PutPerson(p) }); err != nil {
		t.Fatal(err)
	}
	for _, dv := range []*Device{d, other} {
		if err := put(dv); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(owner(mbx(1)), d.ID) || !bytes.Equal(owner(mbx(9)), other.ID) || owner(mbx(2)) != nil {
		t.Fatal("lookup after the first put")
	}
	// A new route; the previous one is still read.
	d.PrevRecvMbx, d.RecvMbx = d.RecvMbx, mbx(2)
	if err := put(d); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(owner(mbx(1)), d.ID) || !bytes.Equal(owner(mbx(2)), d.ID) {
		t.Fatal("lookup of the route and the previous route")
	}
	d.PrevRecvMbx = nil
	if err := put(d); err != nil {
		t.Fatal(err)
	}
	if owner(mbx(1)) != nil || !bytes.Equal(owner(mbx(2)), d.ID) {
		t.Fatal("the dropped previous route still names the device")
	}
	// One mailbox, one device.
	other.RecvMbx = mbx(2)
	if err := put(other); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a mailbox of another device: %v", err)
	}
	if !bytes.Equal(owner(mbx(9)), other.ID) {
		t.Fatal("the refused put changed the index")
	}
	if err := st.Update(func(t *Tx) error { return t.DeleteDevice(d.ID) }); err != nil {
		t.Fatal(err)
	}
	if owner(mbx(2)) != nil {
		t.Fatal("a deleted device is still found")
	}
}

// TestConversationTypes: a direct conversation is found by its person in
// one lookup; team-queue conversations are refused, when stored and when
// read (groups: TestGroupRecords).
func TestConversationTypes(t *testing.T) {
	st := testStore(t)
	person := NewID()
	err := st.Update(func(t *Tx) error {
		c, err := t.DirectConversation(person, time.Now())
		if err != nil {
			return err
		}
		again, err := t.DirectConversation(person, time.Now())
		if err != nil {
			return err
		}
		if !bytes.Equal(c.ID, again.ID) || !bytes.Equal(c.ID, t.DirectConversationID(person)) || c.Type != Direct {
			return fmt.Errorf("direct conversation %x, again %x", c.ID, again.ID)
		}
		// A team queue's conversation goes only with its queue record.
		if err := t.PutConversation(&Conversation{ID: NewID(), Type: TeamQueue, Title: "ward 4"}); !errors.Is(err, ErrConversationType) {
			return fmt.Errorf("a queue conversation stored alone: %v", err)
		}
		if err := t.PutConversation(&Conversation{ID: NewID(), Type: 7}); !errors.Is(err, ErrCorrupt) {
			return fmt.Errorf("unknown type: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// schema2Home describes a schema 2 store made by makeSchema2.
type schema2Home struct {
	path     string
	key      []byte
	contacts []contactV2
	msgs     int
}

// makeSchema2 writes, in a new store at dir, the layout of schema 2: a
// profile, n contacts (each with a session), m messages spread over them
// (a third outgoing, one in a hundred of a contact that is gone), and a
// store record naming schema 2. Schema 2 is what release 0.3.0 wrote
// (testdata/home/v2 is a real one).
func makeSchema2(tb testing.TB, dir string, n, m int) *schema2Home {
	tb.Helper()
	key := make([]byte, KeySize)
	rand.Read(key)
	h := &schema2Home{path: filepath.Join(dir, "store.db"), key: key, msgs: m}
	st, err := New(h.path, key, nil)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	err = st.Update(func(t *Tx) error {
		for _, b := range [][]byte{BucketPersons, BucketDevices, BucketConversations, BucketMailboxIndex, BucketFolders, BucketDrafts, BucketPlacements} {
			if err := t.bt.DeleteBucket(b); err != nil {
				return err
			}
		}
		if _, err := t.bt.CreateBucket(bucketContactsV2); err != nil {
			return err
		}
		prof := map[string]any{"v": 1, "name": "alice", "relay": "wss://relay.example.org", "identity": mbx(0xa1), "device": mbx(0xa2), "created": now, "enrolled": true}
		if err := t.Put(BucketMeta, t.Index(BucketMeta, []byte("profile")), prof); err != nil {
			return err
		}
		for i := range n {
			c := contactV2{
				ID: NewID(), Name: fmt.Sprintf("contact-%d", i), Identity: bytes.Repeat([]byte{byte(i)}, 32), Cert: []byte("cert"),
				Device: bytes.Repeat([]byte{byte(i + 1)}, 32), SendMbx: mbx(byte(3 * i)), SendCap: mbx(7), RecvMbx: mbx(byte(3*i + 1)),
				RecvCap: mbx(8), Added: now, Session: true, Blocked: i == 1,
			}
			if i == 0 {
				c.PrevRecvMbx, c.PrevRecvCap = mbx(byte(3*i+2)), mbx(9)
			}
			if err := t.Put(bucketContactsV2, c.ID, &c); err != nil {
				return err
			}
			if err := t.PutRaw(BucketSessions, c.ID, []byte("session of "+c.Name)); err != nil {
				return err
			}
			h.contacts = append(h.contacts, c)
		}
		for j := range m {
			contact := h.contacts[j%n].ID
			if j%100 == 99 {
				contact = NewID() // gone
			}
			rec := map[string]any{
				"v": 1, "id": fmt.Sprintf("%016x", j), "contact": contact, "from": "x", "to": "me",
				"text": "message " + fmt.Sprint(j), "time": now, "received": now, "outgoing": j%3 == 0,
			}
			if j%50 == 0 {
				rec["attachments"] = []Attachment{{Blob: mbx(1), Key: mbx(2), Digest: mbx(3), PlainSize: 10, CipherSize: 20, Name: "notes.txt"}}
			}
			seq, err := t.NextSequence(BucketMessages)
			if err != nil {
				return err
			}
			k := binary.BigEndian.AppendUint64(nil, seq)
			if err := t.Put(BucketMessages, k, rec); err != nil {
				return err
			}
			if err := t.PutRaw(BucketMessageIDs, t.Index(BucketMessageIDs, []byte(rec["id"].(string))), k); err != nil {
				return err
			}
		}
		r, err := t.Record()
		if err != nil {
			return err
		}
		r.Schema = 2
		return t.putRecord(r)
	})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// TestMigrate2to3: every contact becomes a person with one device (the
// device keeps the contact's record ID, so its session is there as it
// was), with a direct conversation; this device becomes a device of a
// person marked Self; every message keeps its key, ID, text and
// attachments and gets its contact's conversation (none for a contact that
// is gone); the mailbox index finds each device by its route and previous
// route; the contacts bucket is gone.
func TestMigrate2to3(t *testing.T) {
	h := makeSchema2(t, t.TempDir(), 3, 300)
	st, err := New(h.path, h.key, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = st.View(func(t *Tx) error {
		if r, err := t.Record(); err != nil || r.Schema != Schema {
			return fmt.Errorf("record %+v, %v", r, err)
		}
		if t.bt.Bucket(bucketContactsV2) != nil {
			return errors.New("the contacts bucket is still there")
		}
		ps, err := t.Persons()
		if err != nil {
			return err
		}
		var self int
		for _, p := range ps {
			if p.Self {
				self++
				if p.Name != "alice" || !bytes.Equal(p.Identity, mbx(0xa1)) {
					return fmt.Errorf("self %+v", p)
				}
			}
		}
		if self != 1 || len(ps) != len(h.contacts)+1 {
			return fmt.Errorf("%d persons, %d self", len(ps), self)
		}
		convs := map[string]string{}
		for _, c := range h.contacts {
			d, err := t.Device(c.ID)
			if err != nil || d == nil {
				return fmt.Errorf("device of %s: %v", c.Name, err)
			}
			p, err := t.Person(d.Person)
			if err != nil || p == nil {
				return fmt.Errorf("person of %s: %v", c.Name, err)
			}
			if p.Name != c.Name || !bytes.Equal(p.Identity, c.Identity) || p.Blocked != c.Blocked || p.Verification != Unverified ||
				!bytes.Equal(d.DeviceID, c.Device) || !bytes.Equal(d.SendMbx, c.SendMbx) || !bytes.Equal(d.RecvCap, c.RecvCap) ||
				!d.Session || d.Relay != "wss://relay.example.org" {
				return fmt.Errorf("%s: person %+v device %+v", c.Name, p, d)
			}
			for _, mb := range [][]byte{c.RecvMbx, c.PrevRecvMbx} {
				if mb == nil {
					continue
				}
				got, err := t.DeviceByMailbox(mb)
				if err != nil || got == nil || !bytes.Equal(got.ID, c.ID) {
					return fmt.Errorf("%s: mailbox lookup %v", c.Name, err)
				}
			}
			s, err := t.GetRaw(BucketSessions, c.ID)
			if err != nil || string(s) != "session of "+c.Name {
				return fmt.Errorf("%s: session %q, %v", c.Name, s, err)
			}
			conv, err := t.Conversation(t.DirectConversationID(p.ID))
			if err != nil || conv == nil || conv.Type != Direct || !bytes.Equal(conv.Person, p.ID) {
				return fmt.Errorf("%s: conversation %+v, %v", c.Name, conv, err)
			}
			convs[string(c.ID)] = string(conv.ID)
		}
		n := 0
		err = t.Messages(func(m *Message) error {
			j := n
			n++
			if m.ID != fmt.Sprintf("%016x", j) || m.Text != "message "+fmt.Sprint(j) || m.Outgoing != (j%3 == 0) {
				return fmt.Errorf("message %d: %+v", j, m)
			}
			if (j%50 == 0) != (len(m.Attachments) == 1) || (j%50 == 0 && m.Attachments[0].Name != "notes.txt") {
				return fmt.Errorf("message %d: attachments %+v", j, m.Attachments)
			}
			want := convs[string(h.contacts[j%len(h.contacts)].ID)]
			if j%100 == 99 {
				want = ""
			}
			if string(m.Conversation) != want {
				return fmt.Errorf("message %d: conversation %x", j, m.Conversation)
			}
			if want != "" && !m.Outgoing && !bytes.Equal(m.Sender, h.contacts[j%len(h.contacts)].ID) {
				return fmt.Errorf("message %d: sender %x", j, m.Sender)
			}
			if byID, err := t.MessageByID(m.ID); err != nil || byID == nil || byID.Text != m.Text {
				return fmt.Errorf("message %d by ID: %v", j, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if n != h.msgs {
			return fmt.Errorf("%d messages, want %d", n, h.msgs)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrate2to3FailureChangesNothing: a schema 2 store with a message
// that does not decode is refused by the migration with an error naming
// schema 2, and neither store.db nor erase.keys changes.
func TestMigrate2to3FailureChangesNothing(t *testing.T) {
	h := makeSchema2(t, t.TempDir(), 2, 20)
	st, err := New(h.path, h.key, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Corrupt the last message below the store (no migration runs), as a
	// damaged disk would: the migration has rewritten the others by the
	// time it finds it.
	db, err := st.open(false)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(bt *bolt.Tx) error {
		tx := &Tx{s: st, bt: bt}
		return tx.Put(BucketMessages, binary.BigEndian.AppendUint64(nil, 20), "not a message record")
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(h.path)
	keysBefore, _ := os.ReadFile(st.EraseKeysPath())
	for name, err := range map[string]error{
		"update": st.Update(func(*Tx) error { return nil }),
		"view":   st.View(func(*Tx) error { return nil }),
	} {
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "migrate the local store from schema 2") {
			t.Errorf("%s: %v, want the migration's error", name, err)
		}
	}
	after, _ := os.ReadFile(h.path)
	keysAfter, _ := os.ReadFile(st.EraseKeysPath())
	if !bytes.Equal(before, after) || !bytes.Equal(keysBefore, keysAfter) {
		t.Error("the failed migration changed the store")
	}
}

// BenchmarkMigrate10kMessages: the migration from schema 2 to 3 of a home
// with 20 contacts and 10,000 messages (one read-write transaction,
// committed with fsync), each iteration on a fresh copy.
func BenchmarkMigrate10kMessages(b *testing.B) {
	src := b.TempDir()
	h := makeSchema2(b, src, 20, 10000)
	db, _ := os.ReadFile(h.path)
	keys, _ := os.ReadFile(filepath.Join(src, EraseKeysFileName))
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		path := filepath.Join(dir, "store.db")
		if err := os.WriteFile(path, db, 0o600); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, EraseKeysFileName), keys, 0o600); err != nil {
			b.Fatal(err)
		}
		st, err := New(path, h.key, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := st.Update(func(*Tx) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
