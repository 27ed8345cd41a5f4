package session

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/postern/postern/keys/identity"
)

var update = flag.Bool("update", false, "rewrite the golden vectors and the fuzz seed corpora")

// vectorFile holds the vectors of this format (revision 2: body nonce,
// state version 2); legacyVectorFile those of the previous release (body
// nonce 0^12), kept to show that its messages still open. Both have the
// same inputs.
const (
	vectorFile       = "../../../testdata/vectors/sessions/sessions-v1r2.json"
	legacyVectorFile = "../../../testdata/vectors/sessions/sessions-v1.json"
)

type vectorMessage struct {
	From      string `json:"from"`
	Plaintext string `json:"plaintext"`
	PadTo     int    `json:"pad_to"`
	PQ        bool   `json:"pq_step_attached"`
	Init      bool   `json:"init_attached"`
	Message   string `json:"message"`
}

type vectors struct {
	Comment                string          `json:"comment"`
	Seed                   uint64          `json:"seed"`
	ClockUnix              int64           `json:"clock_unix"`
	InitiatorDeviceSecret  string          `json:"initiator_device_secret"`
	ResponderDeviceSecret  string          `json:"responder_device_secret"`
	ResponderPrekeySecret  string          `json:"responder_prekey_secret"`
	ResponderOneTimeSecret string          `json:"responder_one_time_prekey_secret"`
	Init                   string          `json:"init"`
	InitID                 string          `json:"init_id"`
	TranscriptHash         string          `json:"transcript_hash"`
	Messages               []vectorMessage `json:"messages"`
	InitiatorStateSHA256   string          `json:"final_initiator_state_sha256"`
	ResponderStateSHA256   string          `json:"final_responder_state_sha256"`
}

func readVectors(t *testing.T, name string) vectors {
	var in vectors
	b, err := os.ReadFile(name)
	if err != nil || len(b) == 0 {
		t.Fatalf("vector file %s missing or empty: %v", name, err)
	}
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatal(err)
	}
	return in
}

// TestVectors replays a fixed handshake and a 22-message conversation (with
// PQ steps, a padded message and an out-of-order pair) under
// cryptotest.SetGlobalRandom and compares the result byte for byte with the
// committed file. With -update it writes the file from the inputs of the
// previous release's file (or new key material if that is missing).
func TestVectors(t *testing.T) {
	var in vectors
	switch _, err := os.Stat(legacyVectorFile); {
	case !*update:
		in = readVectors(t, vectorFile)
	case err == nil:
		in = readVectors(t, legacyVectorFile)
	default:
		cryptotest.SetGlobalRandom(t, 7)
		in = vectors{Seed: 1, ClockUnix: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Unix()}
		p := newParty(t, 0)
		q := newParty(t, 0)
		opk, err := identity.NewPrekey(q.dev, 42, true)
		if err != nil {
			t.Fatal(err)
		}
		in.InitiatorDeviceSecret = hex.EncodeToString(p.dev.MarshalSecret())
		in.ResponderDeviceSecret = hex.EncodeToString(q.dev.MarshalSecret())
		in.ResponderPrekeySecret = hex.EncodeToString(q.spk.MarshalSecret())
		in.ResponderOneTimeSecret = hex.EncodeToString(opk.MarshalSecret())
	}
	got := runVectors(t, in, bodyNonce)
	for _, m := range got.Messages {
		if b, _ := hex.DecodeString(m.Message); b[0]&flagNonceBody == 0 {
			t.Fatal("a vector message of this format lacks flag 0x04")
		}
	}
	out, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, '\n')
	if *update {
		if err := os.MkdirAll(filepath.Dir(vectorFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorFile, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, _ := os.ReadFile(vectorFile)
	if !bytes.Equal(out, want) {
		t.Fatalf("vectors differ from %s (%d vs %d bytes); if the change is intended, run with -update and review the diff", vectorFile, len(out), len(want))
	}
}

// TestVectorsPreviousFormat replays the previous release's vectors with the
// read-only legacy seal path: every message comes out byte for byte as that
// release sealed it, and this version's Open reads each one (runVectors opens
// every message on the other side).
func TestVectorsPreviousFormat(t *testing.T) {
	in := readVectors(t, legacyVectorFile)
	got := runVectors(t, in, bodyLegacy)
	if got.Init != in.Init || got.InitID != in.InitID || got.TranscriptHash != in.TranscriptHash {
		t.Fatal("handshake differs from the previous release's")
	}
	if len(got.Messages) != len(in.Messages) || len(in.Messages) == 0 {
		t.Fatalf("%d messages, file has %d", len(got.Messages), len(in.Messages))
	}
	for i := range in.Messages {
		if got.Messages[i] != in.Messages[i] {
			t.Fatalf("message %d differs from the previous release's", i)
		}
		if b, _ := hex.DecodeString(in.Messages[i].Message); b[0]&flagNonceBody != 0 {
			t.Fatalf("message %d has flag 0x04", i)
		}
	}
}

func runVectors(t *testing.T, in vectors, body bodyFormat) vectors {
	dec := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pdev, err := identity.ParseDeviceSecret(dec(in.InitiatorDeviceSecret))
	if err != nil {
		t.Fatal(err)
	}
	qdev, err := identity.ParseDeviceSecret(dec(in.ResponderDeviceSecret))
	if err != nil {
		t.Fatal(err)
	}
	spk, err := identity.ParsePrekeySecret(dec(in.ResponderPrekeySecret))
	if err != nil {
		t.Fatal(err)
	}
	opk, err := identity.ParsePrekeySecret(dec(in.ResponderOneTimeSecret))
	if err != nil {
		t.Fatal(err)
	}
	cryptotest.SetGlobalRandom(t, in.Seed)
	c := &clock{t: time.Unix(in.ClockUnix, 0).UTC()}
	out := in
	out.Comment = "Postern sessions v1, format revision 2 (body nonce, flag 0x04; state version 2), golden vectors (protocol/SPEC.md section 11). Generated by client/internal/session TestVectors -update with testing/cryptotest.SetGlobalRandom(seed); inputs are the secrets (those of sessions-v1.json), outputs every message byte."
	out.Messages = nil
	a, init, err := Initiate(pdev, PeerBundle{Cert: qdev.Certificate(), SignedPrekey: spk.Public(), OneTime: opk.Public()}, c.opts())
	if err != nil {
		t.Fatal(err)
	}
	out.Init = hex.EncodeToString(init.Marshal())
	id := init.ID()
	out.InitID = hex.EncodeToString(id[:])
	out.TranscriptHash = hex.EncodeToString(a.st.ad[:])
	var b *Session
	seal := func(from string, s *Session, pt string, padTo int) []byte {
		m, err := s.sealAppend(nil, []byte(pt), padTo, body)
		if err != nil {
			t.Fatal(err)
		}
		out.Messages = append(out.Messages, vectorMessage{From: from, Plaintext: pt, PadTo: padTo,
			PQ: m[0]&flagPQ != 0, Init: m[0]&flagInit != 0, Message: hex.EncodeToString(m)})
		return m
	}
	open := func(s *Session, m []byte, want string) {
		pt, err := s.Open(m)
		if err != nil || !bytes.HasPrefix(pt, []byte(want)) {
			t.Fatalf("vector message %q: %v", want, err)
		}
	}
	m := seal("initiator", a, "hello", 0)
	b, err = Respond(qdev, spk, opk, init, c.opts())
	if err != nil {
		t.Fatal(err)
	}
	open(b, m, "hello")
	for i := range 10 {
		if i == 6 {
			c.advance(PQInterval) // a second round of PQ steps
		}
		pb := fmt.Sprintf("responder %d", i)
		pa := fmt.Sprintf("initiator %d", i)
		if i == 3 { // two in a row, delivered in reverse order
			m1 := seal("responder", b, pb+"a", 0)
			m2 := seal("responder", b, pb+"b", 0)
			open(a, m2, pb+"b")
			open(a, m1, pb+"a")
		} else {
			open(a, seal("responder", b, pb, 0), pb)
		}
		padTo := 0
		if i == 8 {
			padTo = 1024 - 2
		}
		open(b, seal("initiator", a, pa, padTo), pa)
	}
	ha, hb := sha256.Sum256(a.MarshalSecret()), sha256.Sum256(b.MarshalSecret())
	out.InitiatorStateSHA256 = hex.EncodeToString(ha[:])
	out.ResponderStateSHA256 = hex.EncodeToString(hb[:])
	return out
}
