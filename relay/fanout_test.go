package relay_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/coder/websocket"

	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

// groupMember is one device of a group: its connection (subscribed to its
// mailbox) and the mailbox's capability.
type groupMember struct {
	c   *client
	d   *identity.Device
	mb  protocol.MailboxID
	tok protocol.CapabilityToken
}

// group makes n members, each on its own device, subscribed to its
// mailbox and drained, in ascending order of mailbox (the list's order).
func group(t *testing.T, url string, n int) []groupMember {
	t.Helper()
	var ms []groupMember
	for range n {
		c, d, mb, tok := owner(t, url)
		wantType[*protocol.OK](t, c.do(&protocol.Subscribe{Mailbox: mb}))
		wantType[*protocol.Drained](t, c.push())
		ms = append(ms, groupMember{c, d, mb, tok})
	}
	slices.SortFunc(ms, func(a, b groupMember) int { return bytes.Compare(a.mb[:], b.mb[:]) })
	return ms
}

func entriesOf(ms []groupMember) []protocol.FanoutEntry {
	var out []protocol.FanoutEntry
	for _, m := range ms {
		out = append(out, protocol.FanoutEntry{Mailbox: m.mb, Capability: m.tok})
	}
	return out
}

// wantDelivery reads the next push of m: a Deliver of env into m's
// mailbox, then Drained. It returns the envelope ID.
func wantDelivery(t *testing.T, m groupMember, env []byte) protocol.EnvelopeID {
	t.Helper()
	d := wantType[*protocol.Deliver](t, m.c.push())
	if d.Mailbox != m.mb || !bytes.Equal(d.Envelope, env) {
		t.Fatalf("delivered into %s an envelope starting %x", d.Mailbox.Short(), d.Envelope[:4])
	}
	wantType[*protocol.Drained](t, m.c.push())
	return d.ID
}

// wantOnce checks that m received nothing after its last delivery: a
// plain Send is the next thing it sees.
func wantOnce(t *testing.T, m groupMember, sender *client) {
	t.Helper()
	marker := sealed(0x4d)
	wantType[*protocol.Sent](t, sender.send(m.mb, m.tok, marker))
	wantDelivery(t, m, marker)
}

func TestFanoutSendOnce(t *testing.T) {
	srv := relaytest.New(t, nil)
	ms := group(t, srv.URL, 5)
	admin, send := protocol.NewCapabilityToken(), protocol.NewCapabilityToken()
	fid := wantType[*protocol.FanoutCreated](t, ms[0].c.do(&protocol.CreateFanout{Admin: admin, Send: send, Entries: entriesOf(ms)})).Fanout

	anon := dial(t, srv.URL) // sealed sender: never authenticates
	env := sealed(0x61)
	sent := wantType[*protocol.FanoutSent](t, anon.do(&protocol.SendFanout{Fanout: fid, Capability: send, Envelope: env}))
	if sent.Stored != 5 || len(sent.Refused) != 0 {
		t.Fatalf("FanoutSent %+v, want 5 stored", sent)
	}
	ids := map[protocol.EnvelopeID]bool{}
	for _, m := range ms {
		ids[wantDelivery(t, m, env)] = true
	}
	if len(ids) != 5 {
		t.Fatalf("%d distinct envelope IDs for 5 copies", len(ids))
	}
	for _, m := range ms {
		wantOnce(t, m, anon)
	}
}

func TestFanoutRefusedEntries(t *testing.T) {
	srv := relaytest.New(t, nil)
	ms := group(t, srv.URL, 4)
	admin, send := protocol.NewCapabilityToken(), protocol.NewCapabilityToken()
	fid := wantType[*protocol.FanoutCreated](t, ms[0].c.do(&protocol.CreateFanout{Admin: admin, Send: send, Entries: entriesOf(ms)})).Fanout
	// Member 1 blocks the group's capability; groupMember 3 deletes its
	// mailbox (the list still names it).
	wantType[*protocol.OK](t, ms[1].c.do(&protocol.RevokeCapability{Mailbox: ms[1].mb, Hash: ms[1].tok.Hash()}))
	wantType[*protocol.OK](t, ms[3].c.do(&protocol.DeleteMailbox{Mailbox: ms[3].mb}))

	anon := dial(t, srv.URL)
	env := sealed(0x62)
	sent := wantType[*protocol.FanoutSent](t, anon.do(&protocol.SendFanout{Fanout: fid, Capability: send, Envelope: env}))
	want := []protocol.FanoutRefusal{{Index: 1, Code: protocol.CodeCapabilityRevoked}, {Index: 3, Code: protocol.CodeUnknownCapability}}
	if sent.Stored != 2 || !slices.Equal(sent.Refused, want) {
		t.Fatalf("FanoutSent %+v, want 2 stored and refused %+v", sent, want)
	}
	wantDelivery(t, ms[0], env)
	wantDelivery(t, ms[2], env)
	wantOnce(t, ms[0], anon)
	// The refused groupMember got nothing: its next delivery is a plain Send
	// with another capability of its own.
	other := protocol.NewCapabilityToken()
	wantType[*protocol.OK](t, ms[1].c.do(&protocol.AddCapability{Mailbox: ms[1].mb, Hash: other.Hash()}))
	ms[1].tok = other
	wantOnce(t, ms[1], anon)
}

func TestFanoutCapabilities(t *testing.T) {
	srv := relaytest.New(t, nil)
	ms := group(t, srv.URL, 2)
	admin, send := protocol.NewCapabilityToken(), protocol.NewCapabilityToken()
	anon := dial(t, srv.URL)
	// Creating needs an authenticated device.
	wantCode(t, anon.do(&protocol.CreateFanout{Admin: admin, Send: send}), protocol.CodeAuthRequired)
	fid := wantType[*protocol.FanoutCreated](t, ms[0].c.do(&protocol.CreateFanout{Admin: admin, Send: send, Entries: entriesOf(ms[:1])})).Fanout
	env := sealed(0x63)

	wantCode(t, anon.do(&protocol.SendFanout{Fanout: fid, Capability: protocol.NewCapabilityToken(), Envelope: env}), protocol.CodeFanoutCapability)
	wantCode(t, anon.do(&protocol.SendFanout{Fanout: fid, Capability: admin, Envelope: env}), protocol.CodeFanoutCapability)
	wantCode(t, anon.do(&protocol.SendFanout{Fanout: protocol.NewFanoutID(), Capability: send, Envelope: env}), protocol.CodeUnknownFanout)
	// Marshal refuses a bad envelope, so the frame is written by hand.
	b := append([]byte{byte(protocol.TypeSendFanout), 0, 0, 0, 42}, fid[:]...)
	b = append(append(b, send.SecretBytes()...), env[:1000]...)
	if err := anon.ws.Write(bg, websocket.MessageBinary, b); err != nil {
		t.Fatal(err)
	}
	wantCode(t, anon.answer(42), protocol.CodeBadEnvelope)
	wantCode(t, anon.do(&protocol.UpdateFanout{Fanout: fid, Admin: send, Add: entriesOf(ms[1:])}), protocol.CodeFanoutCapability)
	wantCode(t, anon.do(&protocol.UpdateFanout{Fanout: protocol.NewFanoutID(), Admin: admin}), protocol.CodeUnknownFanout)
	wantCode(t, anon.do(&protocol.UpdateFanout{Fanout: fid, Admin: send, Delete: true}), protocol.CodeFanoutCapability)
	// Nothing was stored by the refusals, and the list is unchanged.
	if got, _ := srv.Relay().Store().Range(bg, ms[1].mb, 0, 10); len(got) != 0 {
		t.Fatal("a refused request stored an envelope")
	}

	// An admin, on a connection that never authenticates, adds groupMember 1
	// and replaces the send capability: the old one is refused at once.
	newSend := protocol.NewCapabilityToken()
	wantType[*protocol.OK](t, anon.do(&protocol.UpdateFanout{Fanout: fid, Admin: admin, NewSend: &newSend, Add: entriesOf(ms[1:])}))
	wantCode(t, anon.do(&protocol.SendFanout{Fanout: fid, Capability: send, Envelope: env}), protocol.CodeFanoutCapability)
	sent := wantType[*protocol.FanoutSent](t, anon.do(&protocol.SendFanout{Fanout: fid, Capability: newSend, Envelope: env}))
	if sent.Stored != 2 || len(sent.Refused) != 0 {
		t.Fatalf("FanoutSent %+v, want 2 stored", sent)
	}
	for _, m := range ms {
		wantDelivery(t, m, env)
	}
	// Removing groupMember 0: it gets nothing more.
	wantType[*protocol.OK](t, anon.do(&protocol.UpdateFanout{Fanout: fid, Admin: admin, Remove: []protocol.MailboxID{ms[0].mb}}))
	env2 := sealed(0x64)
	sent = wantType[*protocol.FanoutSent](t, anon.do(&protocol.SendFanout{Fanout: fid, Capability: newSend, Envelope: env2}))
	if sent.Stored != 1 || len(sent.Refused) != 0 {
		t.Fatalf("FanoutSent %+v, want 1 stored", sent)
	}
	wantDelivery(t, ms[1], env2)
	wantOnce(t, ms[0], anon)
	// Deleting: the list is gone for its senders and its admins.
	wantType[*protocol.OK](t, anon.do(&protocol.UpdateFanout{Fanout: fid, Admin: admin, Delete: true}))
	wantCode(t, anon.do(&protocol.SendFanout{Fanout: fid, Capability: newSend, Envelope: env}), protocol.CodeUnknownFanout)
	wantCode(t, anon.do(&protocol.UpdateFanout{Fanout: fid, Admin: admin}), protocol.CodeUnknownFanout)
}

// fakeEntries are n entries of mailboxes that do not exist, from first up.
func fakeEntries(first, n int) []protocol.FanoutEntry {
	out := make([]protocol.FanoutEntry, n)
	tok := protocol.NewCapabilityToken()
	for i := range out {
		v := first + i
		out[i].Mailbox[0], out[i].Mailbox[1], out[i].Mailbox[15] = byte(v>>8), byte(v), 0xfe
		out[i].Capability = tok
	}
	return out
}

func TestFanoutLimits(t *testing.T) {
	srv := relaytest.New(t, nil)
	c := dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, c.enroll(newDevice(t), ""))
	admin, send := protocol.NewCapabilityToken(), protocol.NewCapabilityToken()
	fid := wantType[*protocol.FanoutCreated](t, c.do(&protocol.CreateFanout{Admin: admin, Send: send, Entries: fakeEntries(0, protocol.MaxFanoutEntriesPerFrame)})).Fanout
	// 1024 + 1024 entries pass MaxFanoutEntries: refused, nothing added.
	wantCode(t, c.do(&protocol.UpdateFanout{Fanout: fid, Admin: admin, Add: fakeEntries(protocol.MaxFanoutEntriesPerFrame, protocol.MaxFanoutEntriesPerFrame)}), protocol.CodeFanoutLimit)
	env := sealed(0x65)
	sent := wantType[*protocol.FanoutSent](t, c.do(&protocol.SendFanout{Fanout: fid, Capability: send, Envelope: env}))
	if sent.Stored != 0 || len(sent.Refused) != protocol.MaxFanoutEntriesPerFrame {
		t.Fatalf("FanoutSent: %d stored, %d refused; want 0 and %d", sent.Stored, len(sent.Refused), protocol.MaxFanoutEntriesPerFrame)
	}
	for i, r := range sent.Refused {
		if int(r.Index) != i || r.Code != protocol.CodeUnknownCapability {
			t.Fatalf("refusal %d: %+v", i, r)
		}
	}
	// Up to exactly MaxFanoutEntries.
	rest := protocol.MaxFanoutEntries - protocol.MaxFanoutEntriesPerFrame
	wantType[*protocol.OK](t, c.do(&protocol.UpdateFanout{Fanout: fid, Admin: admin, Add: fakeEntries(protocol.MaxFanoutEntriesPerFrame, rest)}))
	wantCode(t, c.do(&protocol.UpdateFanout{Fanout: fid, Admin: admin, Add: fakeEntries(protocol.MaxFanoutEntries, 1)}), protocol.CodeFanoutLimit)
	// 1600 copies of a 16 KiB envelope pass MaxFanoutSendBytes.
	big := make([]byte, 16<<10)
	big[0], big[1] = protocol.Version, byte(protocol.KindSealed)
	wantCode(t, c.do(&protocol.SendFanout{Fanout: fid, Capability: send, Envelope: big}), protocol.CodeFanoutLimit)
	sent = wantType[*protocol.FanoutSent](t, c.do(&protocol.SendFanout{Fanout: fid, Capability: send, Envelope: env}))
	if len(sent.Refused) != protocol.MaxFanoutEntries {
		t.Fatalf("%d refused, want %d", len(sent.Refused), protocol.MaxFanoutEntries)
	}
	// MaxFanoutsPerDevice lists per device; a deletion gives one back.
	for i := 1; i < protocol.MaxFanoutsPerDevice; i++ {
		wantType[*protocol.FanoutCreated](t, c.do(&protocol.CreateFanout{Admin: admin, Send: send}))
	}
	wantCode(t, c.do(&protocol.CreateFanout{Admin: admin, Send: send}), protocol.CodeFanoutLimit)
	wantType[*protocol.OK](t, c.do(&protocol.UpdateFanout{Fanout: fid, Admin: admin, Delete: true}))
	wantType[*protocol.FanoutCreated](t, c.do(&protocol.CreateFanout{Admin: admin, Send: send}))
}

// An acknowledged fan-out send survives a restart of the relay.
func TestFanoutDurable(t *testing.T) {
	srv := relaytest.New(t, nil)
	ms := group(t, srv.URL, 3)
	admin, send := protocol.NewCapabilityToken(), protocol.NewCapabilityToken()
	fid := wantType[*protocol.FanoutCreated](t, ms[0].c.do(&protocol.CreateFanout{Admin: admin, Send: send, Entries: entriesOf(ms)})).Fanout
	// The members stop listening; the send is acknowledged; the relay
	// restarts.
	for _, m := range ms {
		m.c.ws.CloseNow()
	}
	env := sealed(0x66)
	anon := dial(t, srv.URL)
	wantType[*protocol.FanoutSent](t, anon.do(&protocol.SendFanout{Fanout: fid, Capability: send, Envelope: env}))
	anon.ws.CloseNow()
	srv.Restart()
	// Each groupMember, reconnecting, gets its copy once; the list survives
	// too.
	anon = dial(t, srv.URL)
	for i := range ms {
		ms[i].c = dial(t, srv.URL)
		wantType[*protocol.Authenticated](t, ms[i].c.auth(ms[i].d))
		wantType[*protocol.OK](t, ms[i].c.do(&protocol.Subscribe{Mailbox: ms[i].mb}))
		wantDelivery(t, ms[i], env)
		wantOnce(t, ms[i], anon)
	}
	env2 := sealed(0x67)
	sent := wantType[*protocol.FanoutSent](t, anon.do(&protocol.SendFanout{Fanout: fid, Capability: send, Envelope: env2}))
	if sent.Stored != 3 {
		t.Fatalf("after restart: %+v", sent)
	}
	for _, m := range ms {
		wantDelivery(t, m, env2)
	}
}
