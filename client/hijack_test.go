package client

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

// relayDouble is a malicious relay: the real relay behind a WebSocket
// proxy that records every capability a client presents (bundle fetches
// and sends) and, the first time it sees one, introduces a device of its
// own to that mailbox before it forwards the client's request. With
// invitation format 1 the capability was the invitation token, so the
// double's introduction was accepted and the inviter held the relay's
// identity under the invitee's name (the attack this reproduces).
type relayDouble struct {
	t        *testing.T
	upstream string // the real relay's base URL
	URL      string // the double's base URL, given to the clients

	mu       sync.Mutex
	seen     map[protocol.MailboxID]protocol.CapabilityToken
	injected int
	dev      *identity.Device
}

func newRelayDouble(t *testing.T, srv *relaytest.Server) *relayDouble {
	t.Helper()
	id, err := identity.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	dev, err := identity.NewDevice(id)
	if err != nil {
		t.Fatal(err)
	}
	d := &relayDouble{t: t, upstream: srv.URL, seen: make(map[protocol.MailboxID]protocol.CapabilityToken), dev: dev}
	hs := httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(hs.Close)
	d.URL = "ws://" + strings.TrimPrefix(hs.URL, "http://")
	return d
}

// bridge accepts the client's WebSocket on r and dials the relay at
// upstream for it: the two ends of a relay double. The Host the client
// dialled goes upstream, so that its signed authentication (bound to that
// host) verifies at the real relay. The caller closes both.
func bridge(w http.ResponseWriter, r *http.Request, upstream string) (down, up *websocket.Conn, ok bool) {
	if r.URL.Path != protocol.WebSocketPath {
		http.NotFound(w, r)
		return nil, nil, false
	}
	down, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{protocol.Subprotocol}, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return nil, nil, false
	}
	up, _, err = websocket.Dial(r.Context(), upstream+protocol.WebSocketPath, &websocket.DialOptions{
		Subprotocols: []string{protocol.Subprotocol}, CompressionMode: websocket.CompressionDisabled, Host: r.Host,
	})
	if err != nil {
		down.CloseNow()
		return nil, nil, false
	}
	down.SetReadLimit(protocol.MaxFrameSize)
	up.SetReadLimit(protocol.MaxFrameSize)
	return down, up, true
}

func (d *relayDouble) serve(w http.ResponseWriter, r *http.Request) {
	down, up, ok := bridge(w, r, d.upstream)
	if !ok {
		return
	}
	defer down.CloseNow()
	defer up.CloseNow()
	ctx := r.Context()
	go func() {
		for {
			typ, b, err := up.Read(ctx)
			if err != nil {
				down.CloseNow()
				return
			}
			if down.Write(ctx, typ, b) != nil {
				return
			}
		}
	}()
	for {
		typ, b, err := down.Read(ctx)
		if err != nil {
			return
		}
		if _, f, err := protocol.Parse(b); err == nil {
			switch f := f.(type) {
			case *protocol.FetchBundle:
				d.record(ctx, f.Mailbox, f.Capability)
			case *protocol.Send:
				d.record(ctx, f.Mailbox, f.Capability)
			}
		}
		if up.Write(ctx, typ, b) != nil {
			return
		}
	}
}

// record notes a capability and, the first time, introduces the double's
// own device to its mailbox in every way it can: a format-2 introduction
// whose MAC is keyed with the capability (the best it can do without the
// invitation secret), and the format-1 introduction that carried the
// capability as its token.
func (d *relayDouble) record(ctx context.Context, mb protocol.MailboxID, tok protocol.CapabilityToken) {
	d.mu.Lock()
	if _, ok := d.seen[mb]; ok {
		d.mu.Unlock()
		return
	}
	d.seen[mb] = tok
	d.mu.Unlock()

	cn, err := dialRelay(ctx, d.upstream, nil, nil)
	if err != nil {
		return
	}
	defer cn.close()
	r, err := cn.request(ctx, &protocol.FetchBundle{Mailbox: mb, Capability: tok})
	if err != nil {
		return // not a mailbox with a bundle (a send to a contact's mailbox)
	}
	b, ok := r.(*protocol.Bundle)
	if !ok {
		return
	}
	victim, _, err := parseBundle(b.Bundle)
	if err != nil {
		return
	}
	devID := d.dev.Certificate().DeviceID()
	var reply protocol.MailboxID
	copy(reply[:], randomID(16))
	replyCap := protocol.NewCapabilityToken()

	// Format 2, with a MAC under the only key the relay could guess.
	ct := &content{Type: contentIntroduction, Sender: devID, SentMS: uint64(time.Now().UnixMilli()),
		Name: "bob", Cert: d.dev.Certificate().Bytes(), ReplyMailbox: reply}
	copy(ct.MsgID[:], randomID(msgIDSize))
	copy(ct.ReplyCap[:], replyCap.SecretBytes())
	m := hmac.New(sha256.New, tok.SecretBytes())
	m.Write([]byte(d.upstream))
	m.Sum(ct.IntroMAC[:0])
	signed, err := ct.marshalSigned(d.dev, victim.DeviceID(), mb)
	if err != nil {
		d.t.Error(err)
		return
	}
	d.send(ctx, cn, victim, mb, tok, signed)

	// Format 1: type 0x02 with the capability as the invitation token.
	old := []byte{0x02}
	old = append(old, devID[:]...)
	old = append(old, randomID(msgIDSize)...)
	old = binary.BigEndian.AppendUint64(old, uint64(time.Now().UnixMilli()))
	old = binary.BigEndian.AppendUint16(old, 3)
	old = append(old, "bob"...)
	old = binary.BigEndian.AppendUint16(old, keys.DeviceCertificateSize)
	old = append(old, d.dev.Certificate().Bytes()...)
	old = append(old, tok.SecretBytes()...)
	old = append(old, reply[:]...)
	old = append(old, replyCap.SecretBytes()...)
	sig, err := d.dev.Sign(SealedSignatureContext, signedMessage(victim.DeviceID(), mb, old))
	if err != nil {
		d.t.Error(err)
		return
	}
	old = binary.BigEndian.AppendUint16(old, uint16(len(sig)))
	d.send(ctx, cn, victim, mb, tok, append(old, sig...))
}

func (d *relayDouble) send(ctx context.Context, cn *conn, victim *keys.DeviceCertificate, mb protocol.MailboxID, tok protocol.CapabilityToken, signed []byte) {
	env, err := sealEnvelope(victim.KEM, mb, signed)
	if err != nil {
		d.t.Error(err)
		return
	}
	if _, err := cn.request(ctx, &protocol.Send{Mailbox: mb, Capability: tok, Envelope: env}); err == nil {
		d.mu.Lock()
		d.injected++
		d.mu.Unlock()
	}
}

// TestRelayDoubleCannotHijackInvitation: a relay that records the
// invitation's capability and introduces its own device first does not
// become the contact; the real invitee does, and their messages arrive.
func TestRelayDoubleCannotHijackInvitation(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	double := newRelayDouble(t, srv)
	ctx := testCtx(t)
	newClient := func(name string) *Client {
		c, err := Init(ctx, t.TempDir()+"/"+name, testPass, double.URL, name, testOpts())
		if err != nil {
			t.Fatalf("Init %s: %v", name, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	alice, bob := newClient("alice"), newClient("bob")
	code, err := alice.Invite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Accept(ctx, code, "alice"); err != nil {
		t.Fatalf("Accept: %v", err)
	}
	double.mu.Lock()
	injected := double.injected
	double.mu.Unlock()
	if injected < 2 {
		t.Fatalf("the relay double injected %d introductions, want both forms", injected)
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	cs, err := alice.Contacts()
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Identity != bob.Whoami().Identity {
		t.Fatalf("alice's contacts %+v: want exactly bob (identity %s)", cs, bob.Whoami().Identity.Short())
	}
	if s := alice.Stats(); s.Dropped < 2 {
		t.Fatalf("alice dropped %d envelopes, want the double's introductions dropped", s.Dropped)
	}
	send(t, bob, "alice", "the real bob")
	syncWant(t, alice, "alice", "bob>me:the real bob")
	send(t, alice, "bob", "hello, real bob")
	syncWant(t, bob, "bob", "alice>me:hello, real bob")
}

// TestSpentInvitation: a third person using an invitation that was used
// gets a clear error — from the relay once the inviter revoked it, or from
// the inviter's refusal when both introductions raced — never "sent" and
// silence; they drain no one-time prekeys; and garbage they send with the
// invitation's capability before it is revoked resets the conversation
// at most once.
func TestSpentInvitation(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	t.Run("revoked", func(t *testing.T) {
		srv := relaytest.New(t, nil)
		alice, _ := newTestClient(t, srv, "alice")
		bob, _ := newTestClient(t, srv, "bob")
		carol, _ := newTestClient(t, srv, "carol")
		code, err := alice.Invite(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bob.Accept(ctx, code, "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		settleRoutes(t, alice, bob)
		alice.syncPrekeys(ctx)
		before := oneTimeLeft(t, alice)
		for range 5 {
			_, err := carol.Accept(ctx, code, "alice")
			if !errors.Is(err, ErrInvitationSpent) {
				t.Fatalf("carol's Accept of a spent invitation: %v, want ErrInvitationSpent", err)
			}
		}
		if after := oneTimeLeft(t, alice); after != before {
			t.Fatalf("alice's one-time prekeys went from %d to %d", before, after)
		}
		if cs, _ := carol.Contacts(); len(cs) != 0 {
			t.Fatalf("carol has contacts %+v", cs)
		}
		send(t, bob, "alice", "still fine")
		syncWant(t, alice, "alice", "bob>me:still fine")
	})
	t.Run("raced", func(t *testing.T) {
		srv := relaytest.New(t, nil)
		alice, _ := newTestClient(t, srv, "alice")
		bob, _ := newTestClient(t, srv, "bob")
		carol, _ := newTestClient(t, srv, "carol")
		alice.Close() // offline while both accept
		aliceHome := alice.home
		code := inviteOffline(t, srv, aliceHome)
		if _, err := bob.Accept(ctx, code, "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := carol.Accept(ctx, code, "alice"); err != nil {
			t.Fatalf("carol's Accept before the inviter saw either: %v", err)
		}
		send(t, carol, "alice", "from carol")
		alice2 := dial(t, aliceHome)
		if _, err := alice2.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		cs, _ := alice2.Contacts()
		if len(cs) != 1 || cs[0].Identity != bob.Whoami().Identity {
			t.Fatalf("alice's contacts %+v, want only bob", cs)
		}
		got, err := carol.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !got[0].Notice || !strings.Contains(got[0].Text, "already been used") {
			t.Fatalf("carol's sync %+v, want the refusal notice", got)
		}
		_, err = carol.Send(ctx, "alice", "hello?")
		if !errors.Is(err, ErrInvitationSpent) || !strings.Contains(err.Error(), "alice's invitation was already used") {
			t.Fatalf("carol's Send after the refusal: %v, want ErrInvitationSpent naming alice", err)
		}
	})
	t.Run("no reset storm", func(t *testing.T) {
		srv := relaytest.New(t, nil)
		alice, bob, _, _ := pair(t, srv)
		r, _ := alice.lookupContact("bob")
		// The capability bob used before his route (the invitation's),
		// while it was live: garbage through it, many times over.
		var mb protocol.MailboxID
		copy(mb[:], r.PrevRecvMbx)
		inv := r.PrevRecvCap
		if len(inv) == 0 {
			// Settled: revoked and forgotten. Use the live route, as a
			// malicious relay could.
			copy(mb[:], r.RecvMbx)
			inv = r.RecvCap
		}
		tok, _ := protocol.CapabilityTokenFromBytes(inv)
		env, _ := sealText(t, bob, "alice", "x")
		for i := range 4 * sessionResetFailures {
			bad := bytes.Clone(env)
			bad[len(bad)-1-i%16] ^= 0xff
			if _, err := bob.anonRequest(ctx, "", "garbage", &protocol.Send{Mailbox: mb, Capability: tok, Envelope: bad}); err != nil && !protocol.IsCode(err, protocol.CodeCapabilityRevoked) {
				t.Fatal(err)
			}
		}
		if _, err := alice.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(notices(t, alice)); n > 1 {
			t.Fatalf("%d session resets from garbage, want at most 1", n)
		}
	})
}

// inviteOffline makes an invitation on the home of a closed client, as the
// CLI's `postern invite` does (a process of its own).
func inviteOffline(t *testing.T, srv *relaytest.Server, home string) string {
	t.Helper()
	c, err := Open(home, testPass, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	code, err := c.Invite(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func oneTimeLeft(t *testing.T, c *Client) uint32 {
	t.Helper()
	cn, err := c.authConn(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	r, err := cn.request(testCtx(t), &protocol.GetPrekeyStatus{})
	if err != nil {
		t.Fatal(err)
	}
	return r.(*protocol.PrekeyStatus).Count
}

// TestStaleSignedPrekeyRefused: an initiator refuses a signed prekey older
// than MaxSignedPrekeyAge, so a relay cannot keep serving a stale bundle.
func TestStaleSignedPrekeyRefused(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	bob.Close()
	r, _ := alice.lookupContact("bob")
	if err := alice.st.update(func(t *tx) error { return t.putSessionRecord(r.ID, &sessionRecord{}) }); err != nil {
		t.Fatal(err)
	}
	base := time.Now()
	alice.now = func() time.Time { return base.Add(MaxSignedPrekeyAge + time.Hour) }
	_, err := alice.Send(testCtx(t), "bob", "hello")
	if !errors.Is(err, ErrStalePrekey) || !strings.Contains(err.Error(), "bob's keys on the relay") {
		t.Fatalf("Send with a stale bundle: %v, want ErrStalePrekey naming bob", err)
	}
	if rec := sessionOf(t, alice, "bob"); rec.State != nil {
		t.Fatal("a session was started on a stale prekey")
	}
	alice.now = func() time.Time { return base.Add(MaxSignedPrekeyAge - time.Hour) }
	if _, err := alice.Send(testCtx(t), "bob", "hello"); err != nil {
		t.Fatalf("Send within the age limit: %v", err)
	}
}

// TestAcceptUsesItsOneTimePrekey: Accept starts the session with the
// one-time prekey its bundle fetch consumed, instead of wasting it and
// taking another at the first Send.
func TestAcceptUsesItsOneTimePrekey(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, _ := newTestClient(t, srv, "alice")
	bob, _ := newTestClient(t, srv, "bob")
	code, err := alice.Invite(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	alice.syncPrekeys(testCtx(t)) // the top-up after Init is done: counts are stable
	before := oneTimeLeft(t, alice)
	if _, err := bob.Accept(testCtx(t), code, "alice"); err != nil {
		t.Fatal(err)
	}
	if rec := sessionOf(t, bob, "alice"); rec.State == nil {
		t.Fatal("Accept stored no session")
	}
	send(t, bob, "alice", "first")
	if after := oneTimeLeft(t, alice); after != before-1 {
		t.Fatalf("one-time prekeys %d → %d, want exactly one used", before, after)
	}
	syncWant(t, alice, "alice", "bob>me:first")
}

// TestOneTimePrekeySecretsExpire: unused one-time prekey secrets are
// deleted once older than oneTimePrekeyLife; younger ones stay.
func TestOneTimePrekeySecretsExpire(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, _ := newTestClient(t, srv, "alice")
	count := func() (oneTime int) {
		alice.st.view(func(t *tx) error {
			return t.Each(bucketPrekeys, func(_, b []byte) error {
				if p, err := identity.ParsePrekeySecret(b); err == nil && p.Public().OneTime {
					oneTime++
				}
				return nil
			})
		})
		return oneTime
	}
	n := count()
	if n == 0 {
		t.Fatal("no one-time prekeys")
	}
	if err := alice.purgeExpiredOneTimePrekeys(time.Now().Add(oneTimePrekeyLife - time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != n {
		t.Fatalf("%d of %d one-time prekeys left before their expiry", got, n)
	}
	if err := alice.purgeExpiredOneTimePrekeys(time.Now().Add(oneTimePrekeyLife + 25*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 0 {
		t.Fatalf("%d one-time prekey secrets left after their expiry", got)
	}
}
