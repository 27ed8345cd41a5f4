package relay_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/relaytest"
)

func TestEnrollAndAuth(t *testing.T) {
	srv := relaytest.New(t, nil)
	c := dial(t, srv.URL)
	d := newDevice(t)
	a := wantType[*protocol.Authenticated](t, c.enroll(d, ""))
	if a.Device != deviceID(d) {
		t.Errorf("Authenticated device %s, want %s", a.Device.Short(), deviceID(d).Short())
	}
	wantCode(t, c.enroll(d, ""), protocol.CodeAlreadyAuthed)

	c2 := dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, c2.auth(d))

	c3 := dial(t, srv.URL)
	wantCode(t, c3.auth(newDevice(t)), protocol.CodeUnknownDevice)
	wantCode(t, c3.do(&protocol.CreateMailbox{}), protocol.CodeAuthRequired)

	// Enrolled devices survive a restart.
	for _, c := range []*client{c, c2, c3} {
		c.ws.CloseNow()
	}
	srv.Restart()
	c4 := dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, c4.auth(d))
}

func TestWrongSignature(t *testing.T) {
	srv := relaytest.New(t, nil)
	d := newDevice(t)
	c := dial(t, srv.URL)
	// A signature over another relay's challenge.
	var otherNonce [32]byte
	sig, _ := d.Sign(protocol.AuthContext, protocol.AuthMessage(otherNonce, c.host))
	wantCode(t, c.do(&protocol.Enroll{DeviceKey: d.Certificate().Signing.Bytes(), Signature: sig}), protocol.CodeAuthFailed)
	// A signature for another host.
	sig, _ = d.Sign(protocol.AuthContext, protocol.AuthMessage(c.nonce, "relay.example"))
	wantCode(t, c.do(&protocol.Enroll{DeviceKey: d.Certificate().Signing.Bytes(), Signature: sig}), protocol.CodeAuthFailed)
	// (On another connection: a third failure would close this one.)
	wantCode(t, dial(t, srv.URL).do(&protocol.Enroll{DeviceKey: []byte("not a key"), Signature: sig}), protocol.CodeAuthFailed)
	// Nothing was stored.
	if _, err := srv.Relay().Store().Device(bg, deviceID(d)); err == nil {
		t.Fatal("device stored after a failed enrolment")
	}
	wantCode(t, dial(t, srv.URL).auth(d), protocol.CodeUnknownDevice)
	// The right signature still works on the same connection.
	wantType[*protocol.Authenticated](t, c.enroll(d, ""))
	// Auth with a wrong signature.
	c2 := dial(t, srv.URL)
	sig, _ = d.Sign(protocol.AuthContext, protocol.AuthMessage(otherNonce, c2.host))
	wantCode(t, c2.do(&protocol.Auth{Device: deviceID(d), Signature: sig}), protocol.CodeAuthFailed)
}

func TestCapabilities(t *testing.T) {
	srv := relaytest.New(t, nil)
	own, _, mb, tok := owner(t, srv.URL)
	anon := dial(t, srv.URL)
	blocked := protocol.NewCapabilityToken()
	wantType[*protocol.OK](t, own.do(&protocol.AddCapability{Mailbox: mb, Hash: blocked.Hash()}))
	wantType[*protocol.OK](t, own.do(&protocol.RevokeCapability{Mailbox: mb, Hash: blocked.Hash()}))

	tests := []struct {
		name string
		mb   protocol.MailboxID
		tok  protocol.CapabilityToken
		env  []byte
		want protocol.Code
	}{
		{"unknown capability", mb, protocol.NewCapabilityToken(), sealed(1), protocol.CodeUnknownCapability},
		{"revoked capability", mb, blocked, sealed(1), protocol.CodeCapabilityRevoked},
		{"mailbox does not exist", protocol.NewMailboxID(), tok, sealed(1), protocol.CodeUnknownCapability},
		{"unknown capability and bad envelope", mb, protocol.NewCapabilityToken(), make([]byte, 1000), protocol.CodeUnknownCapability},
		{"envelope not a bucket", mb, tok, append(sealed(1), 0), protocol.CodeBadEnvelope},
		{"envelope version", mb, tok, append([]byte{9}, sealed(1)[1:]...), protocol.CodeBadEnvelope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Marshal refuses bad envelopes, so write the frame by hand.
			b := []byte{byte(protocol.TypeSend), 0, 0, 0, 42}
			b = append(append(append(b, tt.mb[:]...), tt.tok.SecretBytes()...), tt.env...)
			if err := anon.ws.Write(bg, websocket.MessageBinary, b); err != nil {
				t.Fatal(err)
			}
			wantCode(t, anon.answer(42), tt.want)
			wantCode(t, anon.do(&protocol.FetchBundle{Mailbox: tt.mb, Capability: tt.tok}), map[bool]protocol.Code{true: protocol.CodeNoBundle, false: tt.want}[tt.want == protocol.CodeBadEnvelope])
		})
	}
	// Nothing was stored: a subscription drains at once.
	wantType[*protocol.OK](t, own.do(&protocol.Subscribe{Mailbox: mb}))
	wantType[*protocol.Drained](t, own.push())
	// Another device cannot lift the revocation; the owner can (unblock).
	other, _, _, _ := owner(t, srv.URL)
	wantCode(t, other.do(&protocol.AddCapability{Mailbox: mb, Hash: blocked.Hash()}), protocol.CodeNotOwner)
	wantType[*protocol.OK](t, own.do(&protocol.AddCapability{Mailbox: mb, Hash: blocked.Hash()}))
	wantCode(t, other.do(&protocol.Subscribe{Mailbox: mb}), protocol.CodeNotOwner)
	wantCode(t, other.do(&protocol.Subscribe{Mailbox: protocol.NewMailboxID()}), protocol.CodeUnknownMailbox)
}

func TestOversizeFrame(t *testing.T) {
	srv := relaytest.New(t, nil)
	own, _, mb, tok := owner(t, srv.URL)
	bad := dial(t, srv.URL)
	// A Send frame to a real mailbox with a valid capability, one byte too long.
	over := mustMarshal(t, 1, &protocol.Send{Mailbox: mb, Capability: tok, Envelope: sealed(9)})
	over = append(over, make([]byte, protocol.MaxFrameSize+1-len(over))...)
	if err := bad.ws.Write(bg, websocket.MessageBinary, over); err != nil {
		t.Fatal(err)
	}
	wantClose(t, bad, websocket.StatusMessageTooBig)
	// Other connections are unaffected.
	wantType[*protocol.Sent](t, dial(t, srv.URL).send(mb, tok, sealed(1)))
	wantType[*protocol.PrekeyStatus](t, own.do(&protocol.GetPrekeyStatus{}))
	// The largest envelope fits.
	big := make([]byte, protocol.MaxEnvelopeSize)
	big[0], big[1] = protocol.Version, 1
	wantType[*protocol.Sent](t, dial(t, srv.URL).send(mb, tok, big))
	// Nothing of the oversize frame was stored.
	if n := queued(t, own, mb); n != 2 {
		t.Fatalf("mailbox holds %d envelopes, want the 2 sent", n)
	}
}

// queued subscribes own to mb and counts the envelopes delivered before the
// relay reports the mailbox drained.
func queued(t testing.TB, own *client, mb protocol.MailboxID) int {
	t.Helper()
	wantType[*protocol.OK](t, own.do(&protocol.Subscribe{Mailbox: mb}))
	n := 0
	for {
		switch f := own.push().(type) {
		case *protocol.Deliver:
			n++
		case *protocol.Drained:
			return n
		default:
			t.Fatalf("pushed %T", f)
		}
	}
}

func TestGarbageFrame(t *testing.T) {
	srv := relaytest.New(t, nil)
	own, _, mb, tok := owner(t, srv.URL)

	// An unknown frame type keeps the connection.
	c := dial(t, srv.URL)
	c.ws.Write(bg, websocket.MessageBinary, []byte{0x20, 0, 0, 0, 7, 1, 2, 3})
	wantCode(t, c.answer(7), protocol.CodeUnknownFrame)
	c.ws.Write(bg, websocket.MessageBinary, mustMarshal(t, 8, &protocol.OK{}))
	wantCode(t, c.answer(8), protocol.CodeUnknownFrame)
	wantType[*protocol.Sent](t, c.send(mb, tok, sealed(2)))

	// Garbage: CodeMalformed with request ID 0, then close 1008. The last
	// is a real Send cut short in its capability: it must store nothing.
	send := mustMarshal(t, 9, &protocol.Send{Mailbox: mb, Capability: tok, Envelope: sealed(4)})
	for _, garbage := range [][]byte{{1, 2}, {byte(protocol.TypeSubscribe), 0, 0, 0, 9, 1}, send[:protocol.HeaderSize+16+20]} {
		g := dial(t, srv.URL)
		g.ws.Write(bg, websocket.MessageBinary, garbage)
		id, f := g.read()
		if id != 0 {
			t.Errorf("malformed error has request ID %d", id)
		}
		wantCode(t, f, protocol.CodeMalformed)
		t.Logf("malformed: %s", f.(*protocol.ErrorFrame).Msg)
		wantClose(t, g, websocket.StatusPolicyViolation)
	}
	// A text frame: close 1003.
	tx := dial(t, srv.URL)
	tx.ws.Write(bg, websocket.MessageText, []byte("hello"))
	wantClose(t, tx, websocket.StatusUnsupportedData)

	// Others are unaffected.
	wantType[*protocol.Sent](t, c.send(mb, tok, sealed(3)))
	wantType[*protocol.PrekeyStatus](t, own.do(&protocol.GetPrekeyStatus{}))
	// Only the two good sends were stored.
	if n := queued(t, own, mb); n != 2 {
		t.Fatalf("mailbox holds %d envelopes, want the 2 good sends", n)
	}
}

func mustMarshal(t testing.TB, id uint32, f protocol.Frame) []byte {
	b, err := protocol.Marshal(id, f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSendDeliverAck(t *testing.T) {
	srv := relaytest.New(t, nil)
	own, d, mb, tok := owner(t, srv.URL)
	wantType[*protocol.OK](t, own.do(&protocol.Subscribe{Mailbox: mb}))
	wantType[*protocol.Drained](t, own.push())

	// A second connection of the same device subscribes too.
	second := dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, second.auth(d))
	wantType[*protocol.OK](t, second.do(&protocol.Subscribe{Mailbox: mb}))
	wantType[*protocol.Drained](t, second.push())

	sender := dial(t, srv.URL)
	env := sealed(7)
	sent := wantType[*protocol.Sent](t, sender.send(mb, tok, env))
	if sent.Envelope == (protocol.EnvelopeID{}) {
		t.Errorf("envelope ID is zero")
	}
	for _, c := range []*client{own, second} {
		del := wantType[*protocol.Deliver](t, c.push())
		if del.ID != sent.Envelope || del.Mailbox != mb || string(del.Envelope) != string(env) {
			t.Fatalf("delivered %s, want %s", del.ID, sent.Envelope)
		}
		if del.Received%uint64(protocol.TimeGranularity/time.Second) != 0 {
			t.Errorf("received time %d is not coarse", del.Received)
		}
		wantType[*protocol.Drained](t, c.push())
	}
	// Ack from one connection deletes; acking again is fine.
	wantType[*protocol.OK](t, second.do(&protocol.Ack{Mailbox: mb, IDs: []protocol.EnvelopeID{sent.Envelope}}))
	wantType[*protocol.OK](t, own.do(&protocol.Ack{Mailbox: mb, IDs: []protocol.EnvelopeID{sent.Envelope}}))
	// Gone, also after a restart. (Connections that do not read would
	// hold the close handshake for its 5 s timeout: close them first.)
	own.ws.CloseNow()
	second.ws.CloseNow()
	sender.ws.CloseNow()
	srv.Restart()
	c := dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, c.auth(d))
	wantType[*protocol.OK](t, c.do(&protocol.Subscribe{Mailbox: mb}))
	wantType[*protocol.Drained](t, c.push())
	// Anonymous connections cannot ack.
	wantCode(t, dial(t, srv.URL).do(&protocol.Ack{Mailbox: mb, IDs: []protocol.EnvelopeID{sent.Envelope}}), protocol.CodeAuthRequired)
}

func TestOfflineQueueThenSubscribe(t *testing.T) {
	srv := relaytest.New(t, nil)
	own, d, mb, tok := owner(t, srv.URL)
	sender := dial(t, srv.URL)
	const n = protocol.MaxInflight + 10
	ids := make([]protocol.EnvelopeID, n)
	for i := range ids {
		ids[i] = wantType[*protocol.Sent](t, sender.send(mb, tok, sealed(byte(i)))).Envelope
	}
	own.ws.CloseNow()
	sender.ws.CloseNow()
	srv.Restart()
	sender = dial(t, srv.URL)

	c := dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, c.auth(d))
	wantType[*protocol.OK](t, c.do(&protocol.Subscribe{Mailbox: mb}))
	// Oldest first, at most MaxInflight before an ack.
	for i := range protocol.MaxInflight {
		del := wantType[*protocol.Deliver](t, c.push())
		if del.ID != ids[i] {
			t.Fatalf("delivery %d out of order", i)
		}
	}
	// The window is full: the next frame answers a request, no delivery.
	wantType[*protocol.PrekeyStatus](t, c.do(&protocol.GetPrekeyStatus{}))
	if len(c.pushes) != 0 {
		t.Fatalf("%d frames pushed past the window: %T", len(c.pushes), c.pushes[0])
	}
	wantType[*protocol.OK](t, c.do(&protocol.Ack{Mailbox: mb, IDs: ids[:protocol.MaxAckBatch]}))
	for i := protocol.MaxInflight; i < n; i++ {
		del := wantType[*protocol.Deliver](t, c.push())
		if del.ID != ids[i] {
			t.Fatalf("delivery %d out of order", i)
		}
	}
	wantType[*protocol.Drained](t, c.push())

	// New envelopes are pushed at once to the online subscriber.
	sent := wantType[*protocol.Sent](t, sender.send(mb, tok, sealed(1)))
	if del := wantType[*protocol.Deliver](t, c.push()); del.ID != sent.Envelope {
		t.Fatal("pushed the wrong envelope")
	}
	wantType[*protocol.Drained](t, c.push())
}

func TestRetentionPurge(t *testing.T) {
	clk := newClock()
	srv := relaytest.New(t, &relaytest.Options{Now: clk.Now, Retention: 48 * time.Hour})
	_, d, mb, tok := owner(t, srv.URL)
	sender := dial(t, srv.URL)
	old := wantType[*protocol.Sent](t, sender.send(mb, tok, sealed(1)))
	clk.Advance(47 * time.Hour)
	fresh := wantType[*protocol.Sent](t, sender.send(mb, tok, sealed(2)))
	if n, err := srv.Relay().PurgeExpired(bg); err != nil || n != 0 {
		t.Fatalf("early purge = %d, %v", n, err)
	}
	clk.Advance(2 * time.Hour) // the first is now past received (coarse) + 48h
	if n, err := srv.Relay().PurgeExpired(bg); err != nil || n != 1 {
		t.Fatalf("purge = %d, %v; want 1", n, err)
	}
	c := dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, c.auth(d))
	wantType[*protocol.OK](t, c.do(&protocol.Subscribe{Mailbox: mb}))
	if del := wantType[*protocol.Deliver](t, c.push()); del.ID != fresh.Envelope || del.ID == old.Envelope {
		t.Fatal("expired envelope delivered")
	}
	wantType[*protocol.Drained](t, c.push())
}

func TestInviteEnrollment(t *testing.T) {
	srv := relaytest.New(t, &relaytest.Options{Enrollment: relay.EnrollInvite})
	codes, err := srv.Relay().CreateInvites(bg, 2, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		invite string
		want   protocol.Code // 0: accepted
	}{
		{"valid", codes[0], 0},
		{"reused", codes[0], protocol.CodeEnrollmentRefused},
		{"unknown", "aaaaaaaaaaaaaaaaaaaaaaaaaa", protocol.CodeEnrollmentRefused},
		{"none", "", protocol.CodeEnrollmentRefused},
		{"valid, typed in upper case", " " + strings.ToUpper(codes[1]) + " ", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDevice(t)
			f := dial(t, srv.URL).enroll(d, tt.invite)
			if tt.want == 0 {
				wantType[*protocol.Authenticated](t, f)
				return
			}
			wantCode(t, f, tt.want)
			if _, err := srv.Relay().Store().Device(bg, deviceID(d)); err == nil {
				t.Error("refused device was stored")
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	clk := newClock() // frozen: the bucket never refills
	srv := relaytest.New(t, &relaytest.Options{Now: clk.Now})
	c := dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, c.enroll(newDevice(t), "")) // one token
	const extra = 10
	n := protocol.RateBurst - 1 + extra
	done := make(chan int)
	go func() {
		limited := 0
		for range n {
			_, f, err := c.readErr()
			if err != nil {
				break
			}
			if e, ok := f.(*protocol.ErrorFrame); ok && e.Code == protocol.CodeRateLimited {
				limited++
			}
		}
		done <- limited
	}()
	b := mustMarshal(t, 5, &protocol.GetPrekeyStatus{})
	for range n {
		if err := c.ws.Write(bg, websocket.MessageBinary, b); err != nil {
			t.Fatal(err)
		}
	}
	if got := <-done; got != extra {
		t.Fatalf("%d frames rate limited, want %d", got, extra)
	}
	// Other connections have their own bucket.
	wantCode(t, dial(t, srv.URL).do(&protocol.FetchBundle{Mailbox: protocol.NewMailboxID()}), protocol.CodeUnknownCapability)
}

func TestPrekeys(t *testing.T) {
	srv := relaytest.New(t, nil)
	own, _, mb, tok := owner(t, srv.URL)
	anon := dial(t, srv.URL)
	wantCode(t, anon.do(&protocol.FetchBundle{Mailbox: mb, Capability: tok}), protocol.CodeNoBundle)
	wantType[*protocol.OK](t, own.do(&protocol.PublishPrekeys{Bundle: []byte("bundle"), Prekeys: [][]byte{[]byte("p1"), []byte("p2")}}))
	st := wantType[*protocol.PrekeyStatus](t, own.do(&protocol.GetPrekeyStatus{}))
	if st.Count != 2 || !st.HasBundle {
		t.Fatalf("status = %+v", st)
	}
	for _, want := range []string{"p1", "p2", ""} {
		b := wantType[*protocol.Bundle](t, anon.do(&protocol.FetchBundle{Mailbox: mb, Capability: tok}))
		if string(b.Bundle) != "bundle" || string(b.Prekey) != want {
			t.Fatalf("bundle %q prekey %q, want %q", b.Bundle, b.Prekey, want)
		}
	}
	many := make([][]byte, protocol.MaxPrekeysPerPublish)
	for i := range many {
		many[i] = []byte{byte(i)}
	}
	// Fill the device's store exactly to MaxStoredPrekeys, then one more.
	for stored := 0; stored < protocol.MaxStoredPrekeys; stored += len(many) {
		many = many[:min(len(many), protocol.MaxStoredPrekeys-stored)]
		wantType[*protocol.OK](t, own.do(&protocol.PublishPrekeys{Prekeys: many}))
	}
	wantCode(t, own.do(&protocol.PublishPrekeys{Prekeys: many[:1]}), protocol.CodePrekeyLimit)
}

func TestDeleteMailbox(t *testing.T) {
	srv := relaytest.New(t, nil)
	own, _, mb, tok := owner(t, srv.URL)
	wantType[*protocol.Sent](t, dial(t, srv.URL).send(mb, tok, sealed(1)))
	wantType[*protocol.OK](t, own.do(&protocol.DeleteMailbox{Mailbox: mb}))
	wantCode(t, dial(t, srv.URL).send(mb, tok, sealed(1)), protocol.CodeUnknownCapability)
	wantCode(t, own.do(&protocol.Subscribe{Mailbox: mb}), protocol.CodeUnknownMailbox)
}

func TestShutdownClosesGoingAway(t *testing.T) {
	srv := relaytest.New(t, nil)
	c := dial(t, srv.URL)
	done := make(chan struct{})
	go func() { srv.Restart(); close(done) }()
	wantClose(t, c, websocket.StatusGoingAway)
	<-done
	wantType[*protocol.Authenticated](t, dial(t, srv.URL).enroll(newDevice(t), ""))
}

// TestLimitsAndTimeouts uses a relay built directly, with small limits.
func TestLimitsAndTimeouts(t *testing.T) {
	dir := t.TempDir()
	r, err := relay.New(relay.Config{DataDir: dir, Store: relaytest.Store(t, dir), MaxConnections: 2, AuthTimeout: 300 * time.Millisecond, PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(r)
	defer func() { hs.Close(); r.Close() }()
	url := "ws" + strings.TrimPrefix(hs.URL, "http")

	// An idle unauthenticated connection is closed.
	idle := dial(t, url)
	wantClose(t, idle, websocket.StatusPolicyViolation)

	// Authenticated connections are not. (Keys are made before dialling:
	// key generation under -race can outlast the short AuthTimeout.)
	da, db := newDevice(t), newDevice(t)
	a := dial(t, url)
	wantType[*protocol.Authenticated](t, a.enroll(da, ""))
	b := dial(t, url)
	wantType[*protocol.Authenticated](t, b.enroll(db, ""))
	// The third is refused while two are open.
	ws, _, err := websocket.Dial(bg, url+protocol.WebSocketPath, &websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	third := rawClient(t, ws)
	_, f := third.read()
	wantCode(t, f, protocol.CodeTooManyConnections)
	wantClose(t, third, websocket.StatusTryAgainLater)

	// No subprotocol: refused.
	ws, _, err = websocket.Dial(bg, url+protocol.WebSocketPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = ws.Read(bg)
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Errorf("without subprotocol: %v", err)
	}

	resp, err := http.Get(hs.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	a.ws.CloseNow()
	b.ws.CloseNow()
}

// A client may pipeline Sends on one connection: the relay reads on while
// earlier envelopes are being made durable and answers every Send, in any
// order, each once, and only once the envelope is stored.
func TestPipelinedSends(t *testing.T) {
	srv := relaytest.New(t, nil)
	own, _, mb, tok := owner(t, srv.URL)
	anon := dial(t, srv.URL)
	const n = 3 * protocol.MaxPipelinedSends
	want := map[uint32]bool{}
	for i := range n {
		want[anon.write(&protocol.Send{Mailbox: mb, Capability: tok, Envelope: sealed(byte(i))})] = true
	}
	sent := map[protocol.EnvelopeID]bool{}
	for range n {
		id, f := anon.read()
		if !want[id] {
			t.Fatalf("answer to request %d: unknown or answered twice", id)
		}
		delete(want, id)
		sent[wantType[*protocol.Sent](t, f).Envelope] = true
	}
	// Every acknowledged envelope is stored and delivered.
	wantType[*protocol.OK](t, own.do(&protocol.Subscribe{Mailbox: mb}))
	for len(sent) > 0 {
		switch f := own.push().(type) {
		case *protocol.Deliver:
			if !sent[f.ID] {
				t.Fatalf("delivered %s, not acknowledged or delivered twice", f.ID.Short())
			}
			delete(sent, f.ID)
			wantType[*protocol.OK](t, own.do(&protocol.Ack{Mailbox: mb, IDs: []protocol.EnvelopeID{f.ID}}))
		case *protocol.Drained:
			if len(sent) > 0 {
				t.Fatalf("drained with %d acknowledged envelopes undelivered", len(sent))
			}
		}
	}
}
