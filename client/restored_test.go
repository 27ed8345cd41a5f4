package client

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/postern/postern/relay/relaytest"
)

// TestRestoredHomeNeverRepeatsKeystream reproduces the restored-home
// attack: a home copied aside, a message sent, the copy put back, and
// another message sent from the same session state. The message key is
// the same both times (the state is), so the body must be sealed under a
// fresh nonce: the zero padding at the end of both bodies (the same
// plaintext bytes) must encrypt differently. Under the fixed body nonce of
// the first session construction it encrypted identically, and the XOR of
// the two ciphertexts gave the XOR of the two texts.
func TestRestoredHomeNeverRepeatsKeystream(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, aliceHome, _ := pair(t, srv)
	send(t, alice, "bob", "warm up")
	syncWant(t, bob, "bob", "alice>me:warm up")
	send(t, bob, "alice", "reply")
	syncWant(t, alice, "alice", "bob>me:reply")
	// Alice's next message starts her new sending chain (a fresh ratchet
	// key); the copy is taken after it, inside the chain, so that both
	// messages below derive the same message key.
	send(t, alice, "bob", "chain started")
	alice.Close()

	// The whole home: store.db with erase.keys, whose epoch key the
	// session states are sealed under (a copy of store.db alone no longer
	// holds a usable session).
	saved := map[string][]byte{}
	entries, err := os.ReadDir(aliceHome)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			b, err := os.ReadFile(filepath.Join(aliceHome, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			saved[e.Name()] = b
		}
	}
	capture := func(c *Client) *[][]byte {
		var mu sync.Mutex
		var out [][]byte
		h := func(outgoing bool, env []byte) {
			if outgoing {
				mu.Lock()
				out = append(out, bytes.Clone(env))
				mu.Unlock()
			}
		}
		c.envelopeHook.Store(&h)
		return &out
	}
	sendFrom := func(text string) []byte {
		c, err := Open(aliceHome, testPass, testOpts())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		got := capture(c)
		send(t, c, "bob", text)
		if len(*got) != 1 {
			t.Fatalf("%d envelopes sent, want 1", len(*got))
		}
		return (*got)[0]
	}
	first := sendFrom("the first secret")
	// The home goes back to the copy made before the first send.
	for name, b := range saved {
		if err := os.WriteFile(filepath.Join(aliceHome, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	second := sendFrom("another secret!!") // same length
	if len(first) != len(second) || len(first) < 512 {
		t.Fatalf("envelopes of %d and %d bytes", len(first), len(second))
	}
	// The last 16 bytes are the tag; the 256 before it are the zero
	// padding of both plaintexts.
	n := len(first)
	a, b := first[n-16-256:n-16], second[n-16-256:n-16]
	if bytes.Equal(a, b) {
		t.Fatal("the same plaintext bytes encrypted to the same ciphertext after a restore: (key, nonce) repeated")
	}
	same := 0
	for i := range a {
		if a[i] == b[i] {
			same++
		}
	}
	if same > 16 { // about 1 in 256 by chance
		t.Fatalf("%d of 256 padding bytes encrypt alike: keystream reused", same)
	}
}
