package client

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/postern/postern/relay/relaytest"
)

// crossRelayPair makes alice (home on relay a) and bob (home on relay b)
// contacts: alice invites on a, bob accepts from b.
func crossRelayPair(t *testing.T, a, b *relaytest.Server) (alice, bob *Client, aliceHome, bobHome string) {
	t.Helper()
	ctx := testCtx(t)
	alice, aliceHome = newTestClient(t, a, "alice")
	bob, bobHome = newTestClient(t, b, "bob")
	code, err := alice.Invite(ctx)
	if err != nil {
		t.Fatalf("Invite: %v", err)
	}
	if _, err := bob.Accept(ctx, code, "alice"); err != nil {
		t.Fatalf("Accept across relays: %v", err)
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatalf("alice Sync: %v", err)
	}
	settleRoutes(t, alice, bob)
	return
}

// TestContactOnAnotherRelay: an invitation made on relay A is accepted by
// a person whose home is relay B. Each receives on their own relay and
// writes to the other's; texts and attachments go both ways (blobs stay
// on the sender's relay and are downloaded from there).
func TestContactOnAnotherRelay(t *testing.T) {
	t.Parallel()
	srvA := relaytest.New(t, nil)
	srvB := relaytest.New(t, nil)
	alice, bob, _, _ := crossRelayPair(t, srvA, srvB)
	ctx := testCtx(t)

	// Each side writes to the other's home relay, on the route it was
	// given (alice's route for bob came in a route naming relay A).
	ra, err := alice.lookupContact("bob")
	if err != nil {
		t.Fatal(err)
	}
	rb, err := bob.lookupContact("alice")
	if err != nil {
		t.Fatal(err)
	}
	if ra.Relay != srvB.URL || rb.Relay != srvA.URL {
		t.Fatalf("relays: alice writes to bob on %q (want %q), bob to alice on %q (want %q)", ra.Relay, srvB.URL, rb.Relay, srvA.URL)
	}
	if rb.ViaInvitation {
		t.Fatal("bob still writes to alice via the invitation")
	}

	if _, err := alice.Send(ctx, "bob", "hello from A"); err != nil {
		t.Fatal(err)
	}
	got, err := bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "bob sync", got, "alice>me:hello from A")
	if _, err := bob.Send(ctx, "alice", "hello from B"); err != nil {
		t.Fatal(err)
	}
	got, err = alice.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "alice sync", got, "bob>me:hello from B")

	// Attachments both ways.
	dir := t.TempDir()
	for _, tc := range []struct {
		from, to *Client
		toName   string
	}{{alice, bob, "bob"}, {bob, alice, "alice"}} {
		data := make([]byte, 70000) // two chunks
		rand.Read(data)
		src := filepath.Join(dir, tc.toName+"-in.bin")
		if err := os.WriteFile(src, data, 0o600); err != nil {
			t.Fatal(err)
		}
		sent, err := tc.from.SendFiles(ctx, tc.toName, "a file", []string{src}, nil)
		if err != nil {
			t.Fatalf("SendFiles to %s: %v", tc.toName, err)
		}
		got, err := tc.to.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != sent.ID || len(got[0].Attachments) != 1 {
			t.Fatalf("%s received %+v", tc.toName, got)
		}
		out := filepath.Join(dir, tc.toName+"-out")
		if err := os.Mkdir(out, 0o700); err != nil {
			t.Fatal(err)
		}
		saved, err := tc.to.SaveAttachments(ctx, sent.ID, out, nil)
		if err != nil {
			t.Fatalf("%s SaveAttachments: %v", tc.toName, err)
		}
		b, err := os.ReadFile(saved[0])
		if err != nil || !bytes.Equal(b, data) {
			t.Fatalf("%s saved a different file (%v)", tc.toName, err)
		}
	}
}

// TestRelayURLFromPeerChecked: a relay URL inside an introduction (0x10)
// or a route (0x11) is used to dial, so the parser refuses one that is not
// canonical or that is ws:// to a host other than a loopback one.
func TestRelayURLFromPeerChecked(t *testing.T) {
	t.Parallel()
	route := func(relay string) []byte {
		ct := &content{Type: contentRouteRelay}
		rand.Read(ct.Sender[:])
		b, err := ct.appendUnsigned(nil) // the body without a relay yet
		if err == nil {
			t.Fatal("a route without a relay was encoded")
		}
		ct.Type = contentRoute
		b, err = ct.appendUnsigned(make([]byte, padHeaderSize))
		if err != nil {
			t.Fatal(err)
		}
		b[padHeaderSize] = contentRouteRelay
		b = binary.BigEndian.AppendUint16(b, uint16(len(relay)))
		b = append(b, relay...)
		binary.BigEndian.PutUint32(b, uint32(len(b)-padHeaderSize))
		return b
	}
	for _, good := range []string{"wss://relay.example.org", "ws://127.0.0.1:8443", "wss://relay.example.org:444/postern"} {
		enc := route(good)
		ct, err := parseSessionContent(enc)
		if err != nil || ct.ReplyRelay != good {
			t.Errorf("route naming %q: %v", good, err)
			continue
		}
		again, err := ct.marshalSession()
		if err != nil || !bytes.Equal(again, enc) {
			t.Errorf("route naming %q does not re-encode to its bytes: %v", good, err)
		}
	}
	for _, bad := range []string{"", "ws://relay.example.org", "wss://Relay.example.org", "wss://relay.example.org/", "https://relay.example.org", "wss://u@relay.example.org", "wss://relay.example.org?x=1"} {
		if _, err := parseSessionContent(route(bad)); err == nil {
			t.Errorf("route naming %q accepted", bad)
		}
	}
	if _, err := appendRelay(nil, "ws://relay.example.org"); err == nil {
		t.Error("an insecure relay URL was encoded")
	}
}

// TestIntroductionMACBindsReplyRelay: the MAC of an introduction with
// relay (0x10) covers the reply relay, and never equals the MAC of an
// introduction without one (0x05) over the same route.
func TestIntroductionMACBindsReplyRelay(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	rand.Read(key)
	var mb, reply [16]byte
	var a, b, d [32]byte
	var replyCap [32]byte
	rand.Read(replyCap[:])
	mac := func(relay string) [introductionMACSize]byte {
		return introductionMAC(key, "wss://a.example", mb, a, b, d, reply, replyCap, relay)
	}
	none, one, other := mac(""), mac("wss://b.example"), mac("wss://c.example")
	if none == one || one == other || none == other {
		t.Fatal("the reply relay does not change the MAC")
	}
}

// TestPeerRelayAllowed: a client on a wss:// relay does not take a ws://
// (loopback) relay from a peer; one on a ws:// relay (tests, development)
// does.
func TestPeerRelayAllowed(t *testing.T) {
	t.Parallel()
	prod := &Client{relay: "wss://relay.example.org"}
	dev := &Client{relay: "ws://127.0.0.1:8080"}
	if prod.peerRelayAllowed("ws://127.0.0.1:6379") || !prod.peerRelayAllowed("wss://other.example.org") {
		t.Fatal("a wss:// client")
	}
	if !dev.peerRelayAllowed("ws://127.0.0.1:9000") || !dev.peerRelayAllowed("wss://other.example.org") {
		t.Fatal("a ws:// client")
	}
}
