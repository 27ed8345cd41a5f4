package client

import (
	"bytes"
	"errors"
	"testing"

	"github.com/postern/postern/relay/relaytest"
)

// TestUrgentHeaders: the urgent flag round-trips with and without a
// reply-to, moves a plain text to the type with headers, and a flags byte
// with an unknown bit is refused.
func TestUrgentHeaders(t *testing.T) {
	t.Parallel()
	for _, ct := range []*content{
		{Type: contentTextHeaders, SentMS: 1764100000000, Text: "Call the ward", Urgent: true},
		{Type: contentTextHeaders, SentMS: 1764100000000, Text: "Call the ward", Subject: "K 6.1", Urgent: true, HasReply: true, ReplyTo: [replyIDSize]byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{Type: contentAttachmentHeaders, SentMS: 1764100000000, Urgent: true, Attachments: []attachmentRef{seedAttachment()}},
	} {
		b, err := ct.marshalSession()
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseSessionContent(b)
		if err != nil || !got.Urgent || got.HasReply != ct.HasReply || got.ReplyTo != ct.ReplyTo || got.Subject != ct.Subject {
			t.Fatalf("round trip of %+v: %+v, %v", ct, got, err)
		}
		again, err := got.marshalSession()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	}
	plain := &content{Type: contentText, Text: "x"}
	setHeaders(plain, &SendOptions{Urgent: true})
	if plain.Type != contentTextHeaders || !plain.Urgent {
		t.Fatalf("an urgent text is sent as %+v", plain)
	}
	routine := &content{Type: contentText, Text: "x"}
	setHeaders(routine, &SendOptions{})
	if routine.Type != contentText {
		t.Fatalf("a routine text moved to type %#x", routine.Type)
	}
	ct := &content{Type: contentTextHeaders, SentMS: 1, Text: "x"}
	b, err := ct.marshalSession()
	if err != nil {
		t.Fatal(err)
	}
	// The content ends with the empty subject's length, the flags byte,
	// the text's length and the text.
	i := len(b) - 1 - 4 - 1
	if !bytes.HasSuffix(b, []byte{0, 0, 0, 0, 0, 0, 1, 'x'}) || b[i] != 0 {
		t.Fatalf("flags byte not found in %x", b)
	}
	for _, f := range []byte{4, 0x80, 0xff} {
		bad := bytes.Clone(b)
		bad[i] = f
		if _, err := parseSessionContent(bad); !errors.Is(err, ErrDecrypt) {
			t.Errorf("flags %#x: %v, want ErrDecrypt", f, err)
		}
	}
}

// TestUrgentMessage: an urgent message shows as urgent on the recipient
// and on the sender's other device, a reply keeps its own urgency, and a
// record export gives it priority "urgent".
func TestUrgentMessage(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	office, _ := linkNew(t, alice, "OFFICE-PC")
	syncAll(t, 3, office, bob, alice)

	m, err := alice.SendWith(ctx, "bob", "Potassium 6.1: call the ward now", &SendOptions{Urgent: true})
	if err != nil || !m.Urgent {
		t.Fatalf("send: %+v, %v", m, err)
	}
	routine, err := alice.Send(ctx, "bob", "Routine follow-up on Monday")
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, bob, office)
	for _, c := range []*Client{bob, office, alice} {
		got, err := c.Message(m.ID)
		if err != nil || !got.Urgent {
			t.Fatalf("%s holds %+v, %v", c.Whoami().Name, got, err)
		}
		if got, err := c.Message(routine.ID); err != nil || got.Urgent {
			t.Fatalf("%s: the routine message %+v, %v", c.Whoami().Name, got, err)
		}
	}
	reply, err := bob.SendWith(ctx, "alice", "Calling now", &SendOptions{ReplyTo: m.ID, Urgent: true})
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, alice)
	if got, err := alice.Message(reply.ID); err != nil || !got.Urgent || got.ReplyTo != m.ID {
		t.Fatalf("the urgent reply: %+v, %v", got, err)
	}
	var buf bytes.Buffer
	if _, err := alice.ExportRecord(ctx, &buf, ExportOptions{MessageID: m.ID}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte(`"priority":"urgent"`)) {
		t.Fatal("the export of an urgent message lacks its priority")
	}
}
