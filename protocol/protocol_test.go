package protocol

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden wire vectors and fuzz seed corpora")

const goldenPath = "../testdata/vectors/protocol/wire-v1.txt"

func fill(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

func envelope(size int) []byte {
	e := fill(size, 0xee)
	e[0], e[1] = Version, byte(KindSealed)
	return e
}

func fill32(b byte) (out [32]byte) {
	copy(out[:], fill(32, b))
	return out
}

func tokenOf(b byte) CapabilityToken {
	t, _ := CapabilityTokenFromBytes(fill(32, b))
	return t
}

// validFrames is one well-formed instance of every frame type; the golden
// file holds their encodings, so any change to a layout shows up as a diff.
func validFrames() []struct {
	name string
	id   uint32
	f    Frame
} {
	var mb MailboxID
	copy(mb[:], fill(16, 0x11))
	var env EnvelopeID
	copy(env[:], fill(16, 0x22))
	var dev DeviceID
	copy(dev[:], fill(32, 0x33))
	var h CapabilityHash
	copy(h[:], fill(32, 0x44))
	var nonce [32]byte
	copy(nonce[:], fill(32, 0x55))
	return []struct {
		name string
		id   uint32
		f    Frame
	}{
		{"enroll", 1, &Enroll{Invite: "abc-123", DeviceKey: fill(8, 0x01), Signature: fill(4, 0x02)}},
		{"enroll-open", 1, &Enroll{DeviceKey: fill(8, 0x01), Signature: fill(4, 0x02)}},
		{"auth", 2, &Auth{Device: dev, Signature: fill(4, 0x02)}},
		{"create-mailbox", 3, &CreateMailbox{}},
		{"add-capability", 4, &AddCapability{Mailbox: mb, Hash: h}},
		{"revoke-capability", 5, &RevokeCapability{Mailbox: mb, Hash: h}},
		{"publish-prekeys", 6, &PublishPrekeys{Bundle: fill(5, 0x03), Prekeys: [][]byte{fill(3, 0x04), fill(2, 0x05)}}},
		{"publish-prekeys-only-onetime", 6, &PublishPrekeys{Prekeys: [][]byte{fill(3, 0x04)}}},
		{"fetch-bundle", 7, &FetchBundle{Mailbox: mb, Capability: tokenOf(0x66)}},
		{"send", 8, &Send{Mailbox: mb, Capability: tokenOf(0x66), Envelope: envelope(1024)}},
		{"subscribe", 9, &Subscribe{Mailbox: mb}},
		{"ack", 10, &Ack{Mailbox: mb, IDs: []EnvelopeID{env, env}}},
		{"get-prekey-status", 11, &GetPrekeyStatus{}},
		{"delete-mailbox", 12, &DeleteMailbox{Mailbox: mb}},
		{"create-blob", 13, &CreateBlob{Size: 3 * BlobCipherChunkSize}},
		{"challenge", 0, &Challenge{Nonce: nonce, Time: 1764100000}},
		{"ok", 9, &OK{}},
		{"error", 8, &ErrorFrame{Code: CodeCapabilityRevoked, Msg: "blocked"}},
		{"authenticated", 2, &Authenticated{Device: dev}},
		{"mailbox-created", 3, &MailboxCreated{Mailbox: mb}},
		{"bundle", 7, &Bundle{Bundle: fill(5, 0x03), Prekey: fill(3, 0x04)}},
		{"bundle-no-prekey", 7, &Bundle{Bundle: fill(5, 0x03)}},
		{"sent", 8, &Sent{Envelope: env}},
		{"deliver", 0, &Deliver{Mailbox: mb, ID: env, Received: 1764100800, Envelope: envelope(1024)}},
		{"prekey-status", 11, &PrekeyStatus{Count: 42, HasBundle: true}},
		{"drained", 0, &Drained{Mailbox: mb}},
		{"blob-created", 13, &BlobCreated{Blob: BlobID(fill32(0x77)), Token: BlobToken(fill32(0x88)), Expires: 1764187200}},
	}
}

// malformedFrames are hostile or broken inputs with the outcome SPEC.md
// requires. "%s" in a pattern is replaced by a 1 KiB sealed envelope.
var malformedFrames = []struct {
	name, hex, expect string
}{
	{"empty", "", "malformed"},
	{"short-header", "0900", "malformed"},
	{"unknown-type", "7f00000001", "unknown-type"},
	{"unknown-relay-type", "ff00000000", "unknown-type"},
	{"subscribe-truncated", "0900000001" + strings.Repeat("11", 15), "malformed"},
	{"subscribe-trailing", "0900000001" + strings.Repeat("11", 17), "malformed"},
	{"create-mailbox-trailing", "030000000100", "malformed"},
	{"enroll-invite-too-long", "0100000001" + "0041" + strings.Repeat("61", 65) + "0000" + "0000", "too-large"},
	{"enroll-length-beyond-frame", "0100000001" + "0010" + "61", "malformed"},
	{"send-not-bucket", "0800000001" + strings.Repeat("11", 16) + strings.Repeat("66", 32) + "0101" + strings.Repeat("ee", 98), "ok"},
	{"ack-zero-ids", "0a00000001" + strings.Repeat("11", 16) + "0000", "too-large"},
	{"ack-count-mismatch", "0a00000001" + strings.Repeat("11", 16) + "0002" + strings.Repeat("22", 16), "malformed"},
	{"ack-too-many", "0a00000001" + strings.Repeat("11", 16) + "0101", "too-large"},
	{"publish-too-many", "0600000001" + "0000" + "0065", "too-large"},
	{"publish-empty-prekey", "0600000001" + "0000" + "0001" + "0000", "malformed"},
	{"deliver-not-bucket", "8700000000" + strings.Repeat("11", 16) + strings.Repeat("22", 16) + "0000000069274cc0" + "0101ee", "malformed"},
	{"deliver-bad-version", "8700000000" + strings.Repeat("11", 16) + strings.Repeat("22", 16) + "0000000069274cc0" + "02" + "01" + strings.Repeat("ee", 1022), "version"},
	{"prekey-status-bad-bool", "880000000b0000002a02", "malformed"},
	{"create-blob-short", "0d0000000d" + "00000000000300", "malformed"},
	{"error-message-too-long", "8200000001" + "0017" + "0101" + strings.Repeat("61", 257), "too-large"},
}

func outcome(err error) string {
	var ut *UnknownTypeError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ut):
		return "unknown-type"
	case errors.Is(err, ErrTooLarge):
		return "too-large"
	case errors.Is(err, ErrVersion):
		return "version"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	}
	return "other: " + err.Error()
}

// golden is one case of the golden file. Frame cases hold the whole frame
// in hex; envelope cases hold the envelope's first bytes in hex and its
// total length, the rest being 0xee (so 64 KiB cases stay readable).
type golden struct {
	kind, name, hex, expect string
	length                  int
}

// envelopeCases are what CheckEnvelope (the relay's only look inside an
// envelope) must accept and refuse.
var envelopeCases = []struct {
	name, head, expect string
	length             int
}{
	{"sealed-1k", "0101", "ok", 1024},
	{"sealed-2k", "0101", "ok", 2048},
	{"sealed-4k", "0101", "ok", 4096},
	{"sealed-8k", "0101", "ok", 8192},
	{"sealed-16k", "0101", "ok", 16384},
	{"sealed-32k", "0101", "ok", 32768},
	{"sealed-64k", "0101", "ok", 65536},
	{"session-1k", "0102", "ok", 1024},
	{"future-kind", "01ff", "ok", 1024},
	{"empty", "", "malformed", 0},
	{"header-only", "0101", "malformed", 2},
	{"one-short", "0101", "malformed", 1023},
	{"one-over", "0101", "malformed", 1025},
	{"between-buckets", "0101", "malformed", 3000},
	{"above-largest", "0101", "too-large", 65537},
	{"version-0", "0001", "version", 1024},
	{"version-2", "0201", "version", 1024},
	{"kind-0", "0100", "malformed", 1024},
}

func (g golden) envelope() []byte {
	head, _ := hex.DecodeString(g.hex)
	b := fill(g.length, 0xee)
	copy(b, head)
	return b[:max(g.length, 0)]
}

func buildGolden(t *testing.T) []golden {
	var out []golden
	for _, v := range append(append(validFrames(), claimFrames()...), directoryFrames()...) { // claim_test.go, directory_test.go
		b, err := Marshal(v.id, v.f)
		if err != nil {
			t.Fatalf("marshal %s: %v", v.name, err)
		}
		out = append(out, golden{kind: "frame", name: v.name, hex: hex.EncodeToString(b), expect: "ok"})
	}
	for _, m := range append(append(malformedFrames, claimMalformedFrames...), directoryMalformedFrames...) { // claim_test.go, directory_test.go
		out = append(out, golden{kind: "frame", name: "malformed-" + m.name, hex: m.hex, expect: m.expect})
	}
	for _, e := range envelopeCases {
		out = append(out, golden{kind: "envelope", name: e.name, hex: e.head, expect: e.expect, length: e.length})
	}
	return out
}

func renderGolden(g []golden) []byte {
	var b bytes.Buffer
	b.WriteString("# Postern protocol v1 golden frames and envelopes. Generated by `go test ./protocol -update`; do not edit.\n")
	b.WriteString("# Each frame case: a name, the frame in hex, and the outcome a v1 parser must give.\n")
	b.WriteString("# Each envelope case: a name, the envelope's first bytes in hex, its total length\n")
	b.WriteString("# (every further byte is 0xee), and the outcome of the relay's envelope check.\n")
	for _, c := range g {
		if c.kind == "envelope" {
			fmt.Fprintf(&b, "\nenvelope: %s\nhex: %s\nlength: %d\nexpect: %s\n", c.name, c.hex, c.length, c.expect)
			continue
		}
		fmt.Fprintf(&b, "\nframe: %s\nhex: %s\nexpect: %s\n", c.name, c.hex, c.expect)
	}
	return b.Bytes()
}

func readGolden(t *testing.T) []golden {
	f, err := os.Open(goldenPath)
	if err != nil {
		t.Fatalf("golden file: %v (regenerate with -update)", err)
	}
	defer f.Close()
	var out []golden
	var cur golden
	s := bufio.NewScanner(f)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		line := s.Text()
		switch {
		case strings.HasPrefix(line, "frame: "):
			cur = golden{kind: "frame", name: strings.TrimPrefix(line, "frame: ")}
		case strings.HasPrefix(line, "envelope: "):
			cur = golden{kind: "envelope", name: strings.TrimPrefix(line, "envelope: ")}
		case strings.HasPrefix(line, "length: "):
			n, err := strconv.Atoi(strings.TrimPrefix(line, "length: "))
			if err != nil {
				t.Fatalf("golden file: %q: %v", line, err)
			}
			cur.length = n
		case strings.HasPrefix(line, "hex: ") || line == "hex:":
			cur.hex = strings.TrimSpace(strings.TrimPrefix(line, "hex:"))
		case strings.HasPrefix(line, "expect: "):
			cur.expect = strings.TrimPrefix(line, "expect: ")
			out = append(out, cur)
		}
	}
	if len(out) == 0 {
		t.Fatalf("golden file %s holds no cases", goldenPath)
	}
	return out
}

func TestGoldenFrames(t *testing.T) {
	want := renderGolden(buildGolden(t))
	if *update {
		if err := os.MkdirAll(filepath.Dir(goldenPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
		writeSeedCorpus(t, buildGolden(t))
	}
	got, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("golden file: %v (regenerate with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: the encoders changed; review and regenerate with -update", goldenPath)
	}
	var frames, envelopes int
	for _, c := range readGolden(t) {
		if c.kind == "envelope" {
			envelopes++
			t.Run("envelope-"+c.name, func(t *testing.T) {
				if got := outcome(CheckEnvelope(c.envelope())); got != c.expect {
					t.Fatalf("outcome %q, want %q", got, c.expect)
				}
			})
			continue
		}
		frames++
		t.Run(c.name, func(t *testing.T) {
			b, err := hex.DecodeString(c.hex)
			if err != nil {
				t.Fatal(err)
			}
			id, f, err := Parse(b)
			if got := outcome(err); got != c.expect {
				t.Fatalf("outcome %q, want %q (err %v)", got, c.expect, err)
			}
			if err != nil {
				return
			}
			again, err := Marshal(id, f)
			if err != nil {
				// A parsed frame the encoder refuses (an envelope that is
				// not a bucket in Send) is fine only if the relay then
				// refuses it: CheckEnvelope must fail.
				if s, ok := f.(*Send); ok && CheckEnvelope(s.Envelope) != nil {
					return
				}
				t.Fatalf("re-marshal: %v", err)
			}
			if !bytes.Equal(again, b) {
				t.Fatalf("parse then marshal changed the bytes:\n got %x\nwant %x", again, b)
			}
		})
	}
	if frames == 0 || envelopes == 0 {
		t.Fatalf("golden file holds %d frame and %d envelope cases; both must be present", frames, envelopes)
	}
}

// writeSeedCorpus commits every golden case as a seed for FuzzParse, so the
// fuzzer starts from real frames of every type.
func writeSeedCorpus(t *testing.T, g []golden) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range g {
		if c.kind != "frame" {
			continue
		}
		b, _ := hex.DecodeString(c.hex)
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, c.name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSeedCorpusPresent(t *testing.T) {
	m, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParse", "*"))
	if len(m) < len(validFrames()) {
		t.Fatalf("FuzzParse seed corpus has %d files, want at least %d (regenerate with -update)", len(m), len(validFrames()))
	}
}

// FuzzParse: no input panics, and whatever parses re-encodes to the same
// bytes (canonical encoding: one frame, one byte string).
func FuzzParse(f *testing.F) { f.Fuzz(checkCanonical) }

// checkCanonical is FuzzParse's property: no input panics, and whatever
// parses re-encodes to the same bytes.
func checkCanonical(t *testing.T, b []byte) {
	id, fr, err := Parse(b)
	if err != nil {
		return
	}
	again, err := Marshal(id, fr)
	if err != nil {
		if s, ok := fr.(*Send); ok && CheckEnvelope(s.Envelope) != nil {
			return
		}
		if s, ok := fr.(*SendFanout); ok && CheckEnvelope(s.Envelope) != nil {
			return // as Send: the relay refuses it with CodeBadEnvelope
		}
		t.Fatalf("parsed frame does not marshal: %v", err)
	}
	if !bytes.Equal(again, b) {
		t.Fatalf("not canonical:\n got %x\nwant %x", again, b)
	}
}

func FuzzCheckEnvelope(f *testing.F) {
	f.Add(envelope(1024))
	f.Add(envelope(2048))
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := CheckEnvelope(b); err == nil {
			if BucketIndex(len(b)) < 0 || b[0] != Version || b[1] == 0 {
				t.Fatalf("accepted a bad envelope of %d bytes", len(b))
			}
		}
	})
}

func TestMarshalRefusesBrokenFrames(t *testing.T) {
	cases := []struct {
		name string
		f    Frame
		want error
	}{
		{"send envelope not a bucket", &Send{Envelope: envelope(1000)}, ErrMalformed},
		{"send envelope too large", &Send{Envelope: envelope(MaxEnvelopeSize + 1)}, ErrTooLarge},
		{"ack empty", &Ack{}, ErrTooLarge},
		{"ack too many", &Ack{IDs: make([]EnvelopeID, MaxAckBatch+1)}, ErrTooLarge},
		{"prekeys too many", &PublishPrekeys{Prekeys: make([][]byte, MaxPrekeysPerPublish+1)}, ErrTooLarge},
		{"prekey empty", &PublishPrekeys{Prekeys: [][]byte{nil}}, ErrMalformed},
		{"invite too long", &Enroll{Invite: strings.Repeat("x", MaxInviteCodeSize+1)}, ErrTooLarge},
		{"bundle too large", &PublishPrekeys{Bundle: make([]byte, MaxBundleSize+1)}, ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Marshal(1, c.f); !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
		})
	}
}

func TestBuckets(t *testing.T) {
	cases := []struct{ n, want int }{{0, 1024}, {1024, 1024}, {1025, 2048}, {4600, 8192}, {65536, 65536}}
	for _, c := range cases {
		got, err := BucketFor(c.n)
		if err != nil || got != c.want {
			t.Errorf("BucketFor(%d) = %d, %v; want %d", c.n, got, err, c.want)
		}
	}
	if _, err := BucketFor(MaxEnvelopeSize + 1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("BucketFor(max+1) err %v", err)
	}
}

func TestCapabilityToken(t *testing.T) {
	a, b := NewCapabilityToken(), NewCapabilityToken()
	if a.Equal(b) || a.Hash() == b.Hash() {
		t.Fatal("two fresh tokens collide")
	}
	c, err := CapabilityTokenFromBytes(a.SecretBytes())
	if err != nil || !c.Equal(a) || c.Hash() != a.Hash() {
		t.Fatalf("round trip: %v", err)
	}
	for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%v %+v %#v %s", a, a, a, a)} {
		if strings.Contains(s, hex.EncodeToString(a.SecretBytes())[:8]) {
			t.Fatalf("token printed: %s", s)
		}
	}
	if _, err := CapabilityTokenFromBytes(make([]byte, 31)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short token: %v", err)
	}
}

func TestErrorIs(t *testing.T) {
	err := fmt.Errorf("send: %w", (&ErrorFrame{Code: CodeCapabilityRevoked, Msg: "x"}).Err())
	if !errors.Is(err, &Error{Code: CodeCapabilityRevoked}) || !IsCode(err, CodeCapabilityRevoked) || IsCode(err, CodeQueueFull) {
		t.Fatal("error code matching")
	}
}

func TestEnvelopeIDIsUUIDv4(t *testing.T) {
	e := NewEnvelopeID()
	if e[6]>>4 != 4 || e[8]>>6 != 2 {
		t.Fatalf("not a v4 UUID: %x", e)
	}
}

func TestParseAllocatesNothingForSubscribe(t *testing.T) {
	var mb MailboxID
	b, _ := Marshal(1, &Subscribe{Mailbox: mb})
	n := testing.AllocsPerRun(100, func() { Parse(b) })
	if n > 2 {
		t.Fatalf("Parse(Subscribe) allocates %v times, budget 2", n)
	}
}
