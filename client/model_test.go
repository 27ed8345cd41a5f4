package client

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/relay/relaytest"
)

// TestSendSubjectReplyTo: a message carries a subject and the ID of the
// message it answers in the same conversation; a reply to a message that
// is not stored, or is in another conversation, is refused with
// ErrReplyTo and nothing is sent; so is a subject that is too long.
func TestSendSubjectReplyTo(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	carol, _ := newTestClient(t, srv, "carol")
	code, err := carol.Invite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Accept(ctx, code, "carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	settleRoutes(t, carol, bob)

	first, err := alice.Send(ctx, "bob", "bed 12 needs a review")
	if err != nil {
		t.Fatal(err)
	}
	got, err := bob.Sync(ctx)
	if err != nil || len(got) != 1 || got[0].ID != first.ID {
		t.Fatalf("bob sync: %v, %v", texts(got), err)
	}
	if got[0].Conversation == "" {
		t.Fatalf("received message without a conversation: %+v", got[0])
	}
	fromCarol, err := carol.Send(ctx, "bob", "shift swap?")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	reply, err := bob.SendWith(ctx, "alice", "done at 14:05", &SendOptions{Subject: "Bed 12", ReplyTo: first.ID})
	if err != nil {
		t.Fatal(err)
	}
	if reply.Subject != "Bed 12" || reply.ReplyTo != first.ID || reply.Conversation != got[0].Conversation {
		t.Fatalf("reply as sent: %+v (conversation of the first %s)", reply, got[0].Conversation)
	}
	stored, err := bob.Message(reply.ID)
	if err != nil || stored.Subject != "Bed 12" || stored.ReplyTo != first.ID || stored.Conversation != reply.Conversation {
		t.Fatalf("reply as stored: %+v, %v", stored, err)
	}

	before, _ := bob.Inbox()
	for name, o := range map[string]*SendOptions{
		"unknown message":           {ReplyTo: "0123456789abcdef"},
		"another conversation's":    {ReplyTo: fromCarol.ID, Subject: "x"},
		"subject too long":          {Subject: strings.Repeat("s", MaxSubjectSize+1)},
		"subject with control char": {Subject: "a\nb"},
	} {
		_, err := bob.SendWith(ctx, "alice", "should not go", o)
		want := ErrReplyTo
		if strings.HasPrefix(name, "subject") {
			want = ErrInvalidSubject
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	if after, _ := bob.Inbox(); len(after) != len(before) {
		t.Fatal("a refused reply was stored")
	}
	// The reply in carol's conversation is fine.
	if _, err := bob.SendWith(ctx, "carol", "yes", &SendOptions{ReplyTo: fromCarol.ID}); err != nil {
		t.Fatal(err)
	}
	got, err = alice.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "alice receives only the accepted reply", got, "bob>me:done at 14:05")
	if got[0].Conversation == "" || got[0].Conversation != first.Conversation {
		t.Fatalf("alice's conversation: reply %q, first %q", got[0].Conversation, first.Conversation)
	}
	// The subject and the reply-to travel in the session.
	if got[0].Subject != "Bed 12" || got[0].ReplyTo != first.ID {
		t.Fatalf("alice received subject %q, reply-to %q", got[0].Subject, got[0].ReplyTo)
	}
	if m, err := alice.Message(got[0].ID); err != nil || m.Subject != "Bed 12" || m.ReplyTo != first.ID {
		t.Fatalf("alice stored %+v, %v", m, err)
	}

	// Files with a subject; a reply-to naming a message the recipient does
	// not have in this conversation is dropped on receipt, the message kept.
	file := filepath.Join(t.TempDir(), "obs.txt")
	if err := os.WriteFile(file, []byte("BP 120/80"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendFiles(ctx, "bob", "observations", []string{file}, &SendOptions{Subject: "Obs", ReplyTo: reply.ID}); err != nil {
		t.Fatal(err)
	}
	got, err = bob.Sync(ctx)
	if err != nil || len(got) != 1 || got[0].Subject != "Obs" || got[0].ReplyTo != reply.ID || len(got[0].Attachments) != 1 {
		t.Fatalf("bob received %+v, %v", got, err)
	}
	r, err := bob.lookupContact("alice")
	if err != nil {
		t.Fatal(err)
	}
	ct := &content{Type: contentTextHeaders, Sender: bob.devID, SentMS: 1, Text: "stray", HasReply: true}
	copy(ct.MsgID[:], randomID(msgIDSize))
	copy(ct.ReplyTo[:], []byte{1, 2, 3, 4, 5, 6, 7, 8})
	if err := bob.sendSession(ctx, r, ct); err != nil {
		t.Fatal(err)
	}
	got, err = alice.Sync(ctx)
	if err != nil || len(got) != 1 || got[0].Text != "stray" || got[0].ReplyTo != "" {
		t.Fatalf("alice received %+v, %v", got, err)
	}
}

// TestHomeV1MigrationOneTransaction: a schema 1 home (testdata/home/v1)
// whose last message does not decode fails in the migration from schema
// 2, after the migration from schema 1 has run in the same transaction:
// nothing is committed (store.db unchanged, no erase.keys left).
func TestHomeV1MigrationOneTransaction(t *testing.T) {
	t.Parallel()
	checkMigrationFailure(t, bucketMessages, true, "migrate the local store from schema 2")
}

// checkModel checks what the migration to schema 3 made of a fixture
// home: this device's person marked Self, one device per contact found
// through the mailbox index by its route, and every message of a contact
// in that contact's direct conversation.
func checkModel(t *testing.T, c *Client) {
	t.Helper()
	err := c.st.view(func(t *tx) error {
		rec, err := t.Record()
		if err != nil || rec.Schema != store.Schema {
			return errors.Join(err, errors.New("not at the current schema"))
		}
		ps, err := t.Persons()
		if err != nil {
			return err
		}
		self := 0
		for _, p := range ps {
			if p.Self {
				self++
			}
		}
		cs, err := t.contacts()
		if err != nil {
			return err
		}
		if self != 1 || len(ps) != len(cs)+1 {
			return errors.New("persons: want one self and one per contact")
		}
		convOf := map[string][]byte{}
		for _, r := range cs {
			found, err := t.contactByMailbox(r.RecvMbx)
			if err != nil || found == nil || !bytes.Equal(found.ID, r.ID) {
				return errors.Join(err, errors.New(r.Person.Name+": not found by its mailbox"))
			}
			convOf[r.Person.Name] = t.DirectConversationID(r.Person.ID)
		}
		return t.Messages(func(m *messageRecord) error {
			other := m.From
			if m.From == Me {
				other = m.To
			}
			if !bytes.Equal(m.Conversation, convOf[other]) {
				return errors.New("message " + m.ID + " is not in the conversation with " + other)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatalf("%s: %v", c.Whoami().Name, err)
	}
}

// TestHomeNewerSchemaRefused: a home whose store names a schema newer
// than this code's is refused by Open with ErrStoreTooNew and a hint to
// upgrade, and not a byte of store.db or erase.keys changes.
func TestHomeNewerSchemaRefused(t *testing.T) {
	t.Parallel()
	_, aliceHome, _, opts := fixtureHomes(t, "v2")
	c, err := Open(aliceHome, testPass, opts)
	if err != nil {
		t.Fatal(err)
	}
	err = c.st.update(func(t *tx) error {
		rec, err := t.Record()
		if err != nil {
			return err
		}
		rec.Schema = store.Schema + 1
		return t.Put(bucketMeta, t.Index(bucketMeta, []byte("store")), rec)
	})
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	files := []string{filepath.Join(aliceHome, StoreFileName), filepath.Join(aliceHome, EraseKeysFileName)}
	var before [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, b)
	}
	_, err = Open(aliceHome, testPass, opts)
	if !errors.Is(err, ErrStoreTooNew) || !strings.Contains(err.Error(), "upgrade postern") {
		t.Fatalf("Open: %v, want ErrStoreTooNew with a hint", err)
	}
	for i, f := range files {
		if after, _ := os.ReadFile(f); !bytes.Equal(before[i], after) {
			t.Errorf("%s changed", filepath.Base(f))
		}
	}
}
