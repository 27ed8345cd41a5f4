package group

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/hybrid"
	"github.com/postern/postern/protocol"
)

var update = flag.Bool("update", false, "rewrite testdata/state-v1.bin and the fuzz seed corpus")

// goldenPath is a fixed state (fixedState, signed by the admin "ada" from
// fixed seeds). Signatures are randomized (ML-DSA-65 in hedged mode), so
// the known answer is the signed part, which must not change, and a
// signature over it that must keep verifying.
const goldenPath = "testdata/state-v1.bin"

func seeded(t testing.TB, name string) *hybrid.Signer {
	t.Helper()
	ed := sha256.Sum256([]byte("group test ed25519 " + name))
	ml := sha256.Sum256([]byte("group test ml-dsa-65 " + name))
	s, err := hybrid.FromSeeds(ed[:], ml[:])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fixedState: an admin with two devices (one joined), a member, an
// observer and the member's delegate.
func fixedState(t testing.TB) *State {
	t.Helper()
	id := func(name string) keys.Fingerprint { return seeded(t, name).Public().Fingerprint() }
	s := &State{
		Group: ID{0x67, 0x72, 0x6f, 0x75, 0x70}, Version: 3, Name: "Ward 4", Relay: "wss://relay.example.org",
		Fanout: protocol.FanoutID{0xfa}, SendCap: [32]byte{0x5e}, HeaderKey: [32]byte{0x4b},
		Members: []Member{
			{Identity: id("ada"), Name: "Ada", Role: RoleAdmin, Devices: []Device{
				{ID: keys.Fingerprint{0x01}, Joined: true, Mailbox: protocol.MailboxID{0x11}, Capability: [32]byte{0x21}},
				{ID: keys.Fingerprint{0x02}},
			}},
			{Identity: id("ben"), Name: "Ben", Role: RoleMember, Devices: []Device{
				{ID: keys.Fingerprint{0x03}, Joined: true, Mailbox: protocol.MailboxID{0x13}, Capability: [32]byte{0x23}},
			}},
			{Identity: id("cy"), Name: "Cy", Role: RoleObserver},
			{Identity: id("di"), Name: "Di", Role: RoleDelegate, For: id("ben"), Devices: []Device{
				{ID: keys.Fingerprint{0x04}, Joined: true, Mailbox: protocol.MailboxID{0x14}, Capability: [32]byte{0x24}},
			}},
		},
	}
	sortMembers(s)
	return s
}

func TestKnownState(t *testing.T) {
	admin := seeded(t, "ada")
	fresh, err := Sign(fixedState(t), admin)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(goldenPath, fresh, 0o644); err != nil {
			t.Fatal(err)
		}
		writeFuzzSeeds(t, fresh)
	}
	golden, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (go test -run TestKnownState -update writes it)", err)
	}
	s, err := Parse(golden)
	if err != nil {
		t.Fatalf("the committed state no longer parses: %v", err)
	}
	if !s.Signer.Equal(admin.Public()) || s.Version != 3 || len(s.Members) != 4 {
		t.Fatalf("the committed state reads as %v", s)
	}
	if err := AcceptFirst(s, admin.Public().Fingerprint(), seeded(t, "cy").Public().Fingerprint()); err != nil {
		t.Fatalf("the committed state is not accepted by its observer: %v", err)
	}
	d := s.Member(seeded(t, "di").Public().Fingerprint())
	if d == nil || s.DisplayName(d) != "Di for Ben" {
		t.Fatal("the delegate of the committed state")
	}
	fs := fixedState(t)
	fs.Signer = admin.Public()
	want, err := fs.SignedPart()
	if err != nil {
		t.Fatal(err)
	}
	if got := golden[:len(golden)-2-keys.SignatureSize]; !bytes.Equal(got, want) {
		t.Fatal("the signed part of the same state changed: the format (SPEC section 15.5) changed; if on purpose, bump the version and run with -update")
	}
	if !*update && bytes.Equal(fresh, golden) {
		t.Fatal("two signatures over the same state are equal: the ML-DSA-65 half is not randomized")
	}
}

// writeFuzzSeeds writes the seed corpus of FuzzParse: the state and near
// misses that reach each check.
func writeFuzzSeeds(t *testing.T, state []byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte { b := bytes.Clone(state); b[i] ^= 1; return b }
	seeds := map[string][]byte{
		"valid":           state,
		"version-byte":    flip(1),
		"name-changed":    flip(2 + IDSize + 8 + 1),
		"signature-bit":   flip(len(state) - 1),
		"trailing-byte":   append(bytes.Clone(state), 0),
		"truncated":       state[:len(state)-1],
		"header-only":     state[:2+IDSize+8],
		"no-members":      append(bytes.Clone(state[:2+IDSize+8+1+6+2+23+16+32+32]), 0, 0),
		"tag-and-version": {tagState, encodingVersion},
	}
	for name, b := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
