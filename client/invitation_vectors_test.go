package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

const invitationVectorFile = "../testdata/vectors/client/invitation-v2.json"

// invitationVector is one known-answer case of invitation format 2
// (protocol/SPEC.md section 9 "Invitations" and "Introductions"): every
// input, and every derived value an independent implementation must
// reproduce.
type invitationVector struct {
	Comment string `json:"comment"`
	// Inputs.
	Relay      string `json:"relay"`
	Mailbox    string `json:"mailbox"`
	Secret     string `json:"secret"`
	Inviter    string `json:"inviter_identity"`
	Introducer string `json:"introducer_identity"`
	Device     string `json:"introducer_device"`
	ReplyMbx   string `json:"reply_mailbox"`
	ReplyCap   string `json:"reply_capability"`
	// Outputs.
	Code           string `json:"code"`
	Capability     string `json:"capability"`
	CapabilityHash string `json:"capability_hash"`
	IntroKey       string `json:"introduction_key"`
	Transcript     string `json:"mac_transcript"`
	MAC            string `json:"mac"`
}

func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func (v *invitationVector) compute(t *testing.T) {
	t.Helper()
	dec := func(s string, n int) []byte {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != n {
			t.Fatalf("vector field %q: want %d hex bytes", s, n)
		}
		return b
	}
	inv := &Invitation{Relay: v.Relay}
	copy(inv.Mailbox[:], dec(v.Mailbox, 16))
	copy(inv.Secret[:], dec(v.Secret, 32))
	copy(inv.Identity[:], dec(v.Inviter, 32))
	var introducer, device keys.Fingerprint
	copy(introducer[:], dec(v.Introducer, 32))
	copy(device[:], dec(v.Device, 32))
	var replyMbx protocol.MailboxID
	copy(replyMbx[:], dec(v.ReplyMbx, 16))
	var replyCap [32]byte
	copy(replyCap[:], dec(v.ReplyCap, 32))

	v.Code = inv.Code()
	tok := inv.Capability()
	v.Capability = hex.EncodeToString(tok.SecretBytes())
	h := tok.Hash()
	v.CapabilityHash = hex.EncodeToString(h[:])
	v.IntroKey = hex.EncodeToString(inv.introKey())
	v.Transcript = hex.EncodeToString(introductionTranscript(inv.Relay, inv.Mailbox, inv.Identity, introducer, device, replyMbx, replyCap, ""))
	mac := introductionMAC(inv.introKey(), inv.Relay, inv.Mailbox, inv.Identity, introducer, device, replyMbx, replyCap, "")
	v.MAC = hex.EncodeToString(mac[:])
}

func invitationVectorInputs() []invitationVector {
	h := func(s string) string { d := sha256.Sum256([]byte(s)); return hex.EncodeToString(d[:]) }
	return []invitationVector{
		{
			Comment: "sequential inputs; identities and device are SHA-256 of ASCII names",
			Relay:   "wss://relay.example.org", Mailbox: hex.EncodeToString(seq(0x10, 16)), Secret: hex.EncodeToString(seq(0x00, 32)),
			Inviter: h("alice identity"), Introducer: h("bob identity"), Device: h("bob device"),
			ReplyMbx: hex.EncodeToString(seq(0x40, 16)), ReplyCap: hex.EncodeToString(seq(0x60, 32)),
		},
		{
			Comment: "a loopback relay with a port and a path; all-0xff secret",
			Relay:   "ws://127.0.0.1:7878/postern", Mailbox: hex.EncodeToString(bytes.Repeat([]byte{0xa5}, 16)), Secret: hex.EncodeToString(bytes.Repeat([]byte{0xff}, 32)),
			Inviter: h("carol identity"), Introducer: h("dave identity"), Device: h("dave device"),
			ReplyMbx: hex.EncodeToString(seq(0xf0, 16)), ReplyCap: hex.EncodeToString(seq(0x80, 32)),
		},
	}
}

// TestInvitationVectors checks the committed known-answer vectors of
// invitation format 2 (run with -update to rewrite them), and that each
// code parses back to its inputs.
func TestInvitationVectors(t *testing.T) {
	t.Parallel()
	if *update {
		vs := invitationVectorInputs()
		for i := range vs {
			vs[i].compute(t)
		}
		b, err := json.MarshalIndent(vs, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(invitationVectorFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(invitationVectorFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(invitationVectorFile)
	if err != nil {
		t.Fatal(err)
	}
	var vs []invitationVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("no invitation vectors")
	}
	for _, want := range vs {
		got := want
		got.compute(t)
		if got != want {
			t.Errorf("%s:\n got %+v\nwant %+v", want.Comment, got, want)
		}
		inv, err := ParseInvitation(want.Code)
		if err != nil {
			t.Fatalf("%s: %v", want.Comment, err)
		}
		if inv.Relay != want.Relay || hex.EncodeToString(inv.Secret[:]) != want.Secret || hex.EncodeToString(inv.Mailbox[:]) != want.Mailbox {
			t.Errorf("%s: parsed %v", want.Comment, inv)
		}
	}
}
