package protocol

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func mailboxOf(b byte) (m MailboxID) {
	copy(m[:], fill(16, b))
	return m
}

func fanoutOf(b byte) (f FanoutID) {
	copy(f[:], fill(16, b))
	return f
}

// fanoutFrames is one or more well-formed instance of every fan-out frame;
// they are also FuzzParseFanoutFrames' committed seeds.
func fanoutFrames() map[string]Frame {
	newSend := tokenOf(0x99)
	return map[string]Frame{
		"create":        &CreateFanout{Admin: tokenOf(0xad), Send: tokenOf(0x5e), Entries: []FanoutEntry{{mailboxOf(0x12), tokenOf(0x02)}, {mailboxOf(0x11), tokenOf(0x01)}}},
		"create-empty":  &CreateFanout{Admin: tokenOf(0xad), Send: tokenOf(0x5e)},
		"update":        &UpdateFanout{Fanout: fanoutOf(0xf0), Admin: tokenOf(0xad), NewSend: &newSend, Add: []FanoutEntry{{mailboxOf(0x13), tokenOf(0x03)}}, Remove: []MailboxID{mailboxOf(0x12), mailboxOf(0x11)}},
		"update-add":    &UpdateFanout{Fanout: fanoutOf(0xf0), Admin: tokenOf(0xad), Add: []FanoutEntry{{mailboxOf(0x13), tokenOf(0x03)}}},
		"update-delete": &UpdateFanout{Fanout: fanoutOf(0xf0), Admin: tokenOf(0xad), Delete: true},
		"send":          &SendFanout{Fanout: fanoutOf(0xf0), Capability: tokenOf(0x5e), Envelope: envelope(1024)},
		"created":       &FanoutCreated{Fanout: fanoutOf(0xf0)},
		"sent":          &FanoutSent{Stored: 3, Refused: []FanoutRefusal{{1, CodeCapabilityRevoked}, {4, CodeQueueFull}}},
		"sent-all":      &FanoutSent{Stored: 1600},
	}
}

// TestFanoutFrames: each fan-out frame round-trips, its encoding is the
// layout of SPEC.md section 4 (checked byte for byte), and entries are
// encoded in ascending order of mailbox whatever order the caller gave.
func TestFanoutFrames(t *testing.T) {
	for name, f := range fanoutFrames() {
		b, err := Marshal(9, f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		id, g, err := Parse(b)
		if err != nil || id != 9 {
			t.Fatalf("%s: parse: %v", name, err)
		}
		again, err := Marshal(id, g)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%s: not canonical (%v)", name, err)
		}
	}
	hdr := "00000001"
	frames := fanoutFrames()
	cases := []struct {
		name string
		f    Frame
		want string
	}{
		{"create", frames["create"], "13" + hdr + strings.Repeat("ad", 32) + strings.Repeat("5e", 32) + "0002" +
			strings.Repeat("11", 16) + strings.Repeat("01", 32) + strings.Repeat("12", 16) + strings.Repeat("02", 32)},
		{"update", frames["update"], "14" + hdr + strings.Repeat("f0", 16) + strings.Repeat("ad", 32) + "01" + strings.Repeat("99", 32) +
			"0001" + strings.Repeat("13", 16) + strings.Repeat("03", 32) + "0002" + strings.Repeat("11", 16) + strings.Repeat("12", 16)},
		{"delete", frames["update-delete"], "14" + hdr + strings.Repeat("f0", 16) + strings.Repeat("ad", 32) + "02" + "0000" + "0000"},
		{"send", frames["send"], "15" + hdr + strings.Repeat("f0", 16) + strings.Repeat("5e", 32) + hex.EncodeToString(envelope(1024))},
		{"created", frames["created"], "8b" + hdr + strings.Repeat("f0", 16)},
		{"sent", frames["sent"], "8c" + hdr + "0003" + "0002" + "0001" + "0017" + "0004" + "001f"},
	}
	for _, c := range cases {
		b, err := Marshal(1, c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := hex.EncodeToString(b); got != c.want {
			t.Errorf("%s encoding\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

// The largest frames the limits allow fit MaxFrameSize.
func TestFanoutFramesFit(t *testing.T) {
	add := make([]FanoutEntry, MaxFanoutEntriesPerFrame)
	rm := make([]MailboxID, MaxFanoutEntriesPerFrame)
	for i := range add {
		add[i].Mailbox[0], add[i].Mailbox[1] = byte(i>>8), byte(i)
		rm[i][0], rm[i][1], rm[i][2] = 0xff, byte(i>>8), byte(i)
	}
	tok := tokenOf(1)
	refused := make([]FanoutRefusal, MaxFanoutEntries)
	for i := range refused {
		refused[i] = FanoutRefusal{Index: uint16(i), Code: CodeQueueFull}
	}
	for _, f := range []Frame{
		&UpdateFanout{Admin: tok, NewSend: &tok, Add: add, Remove: rm},
		&CreateFanout{Entries: add},
		&FanoutSent{Refused: refused},
		&SendFanout{Envelope: envelope(MaxEnvelopeSize)},
	} {
		b, err := Marshal(1, f)
		if err != nil {
			t.Fatalf("%T: %v", f, err)
		}
		if _, _, err := Parse(b); err != nil {
			t.Fatalf("%T of %d bytes: %v", f, len(b), err)
		}
	}
}

func TestFanoutFramesRefused(t *testing.T) {
	tok := tokenOf(1)
	twice := []FanoutEntry{{mailboxOf(1), tok}, {mailboxOf(1), tok}}
	for name, c := range map[string]struct {
		f    Frame
		want error
	}{
		"create too many":     {&CreateFanout{Entries: make([]FanoutEntry, MaxFanoutEntriesPerFrame+1)}, ErrTooLarge},
		"create twice":        {&CreateFanout{Entries: twice}, ErrMalformed},
		"update add twice":    {&UpdateFanout{Add: twice}, ErrMalformed},
		"update remove twice": {&UpdateFanout{Remove: []MailboxID{mailboxOf(1), mailboxOf(1)}}, ErrMalformed},
		"update too many":     {&UpdateFanout{Remove: make([]MailboxID, MaxFanoutEntriesPerFrame+1)}, ErrTooLarge},
		"update both":         {&UpdateFanout{Add: twice[:1], Remove: []MailboxID{mailboxOf(1)}}, ErrMalformed},
		"delete and add":      {&UpdateFanout{Delete: true, Add: twice[:1]}, ErrMalformed},
		"delete and new send": {&UpdateFanout{Delete: true, NewSend: &tok}, ErrMalformed},
		"send not a bucket":   {&SendFanout{Envelope: envelope(1000)}, ErrMalformed},
		"sent too many":       {&FanoutSent{Stored: MaxFanoutEntries, Refused: []FanoutRefusal{{Index: 1}}}, ErrTooLarge},
		"sent unordered":      {&FanoutSent{Refused: []FanoutRefusal{{Index: 2}, {Index: 1}}}, ErrMalformed},
	} {
		if _, err := Marshal(1, c.f); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", name, err, c.want)
		}
	}
	hdr := "00000001"
	mb := func(b byte) string { return strings.Repeat(fmt.Sprintf("%02x", b), 16) }
	caps := strings.Repeat("ad", 32) + strings.Repeat("5e", 32)
	entry := func(b byte) string { return mb(b) + strings.Repeat("01", 32) }
	upd := "14" + hdr + strings.Repeat("f0", 16) + strings.Repeat("ad", 32)
	for _, c := range []struct{ name, hex, want string }{
		{"create count 1025", "13" + hdr + caps + "0401", "too-large"},
		{"create count beyond frame", "13" + hdr + caps + "0002" + entry(1), "malformed"},
		{"create unordered", "13" + hdr + caps + "0002" + entry(2) + entry(1), "malformed"},
		{"create duplicate", "13" + hdr + caps + "0002" + entry(1) + entry(1), "malformed"},
		{"create trailing", "13" + hdr + caps + "0001" + entry(1) + "00", "malformed"},
		{"create short", "13" + hdr + strings.Repeat("ad", 32), "malformed"},
		{"update undefined flag", upd + "04" + "0000" + "0000", "malformed"},
		{"update delete with add", upd + "02" + "0001" + entry(1) + "0000", "malformed"},
		{"update delete with remove", upd + "02" + "0000" + "0001" + mb(1), "malformed"},
		{"update delete with new send", upd + "03" + strings.Repeat("99", 32) + "0000" + "0000", "malformed"},
		{"update new send missing", upd + "01" + "0000", "malformed"},
		{"update both", upd + "00" + "0001" + entry(1) + "0001" + mb(1), "malformed"},
		{"update removal count 1025", upd + "00" + "0000" + "0401", "too-large"},
		{"update removals unordered", upd + "00" + "0000" + "0002" + mb(2) + mb(1), "malformed"},
		{"update removals short", upd + "00" + "0000" + "0002" + mb(1), "malformed"},
		{"update no removal count", upd + "00" + "0000", "malformed"},
		{"send short", "15" + hdr + strings.Repeat("f0", 16), "malformed"},
		{"created trailing", "8b" + hdr + mb(0xf0) + "00", "malformed"},
		{"sent above the list limit", "8c" + hdr + "0640" + "0001" + "00000017", "too-large"},
		{"sent index at the limit", "8c" + hdr + "0000" + "0001" + "0640" + "0017", "malformed"},
		{"sent unordered", "8c" + hdr + "0000" + "0002" + "00050017" + "00040017", "malformed"},
		{"sent duplicate", "8c" + hdr + "0000" + "0002" + "00050017" + "00050017", "malformed"},
		{"sent short", "8c" + hdr + "0000" + "0002" + "00050017", "malformed"},
	} {
		b, _ := hex.DecodeString(c.hex)
		if _, _, err := Parse(b); outcome(err) != c.want {
			t.Errorf("%s: %v, want %s", c.name, err, c.want)
		}
	}
	// A SendFanout whose envelope is not a bucket parses (the relay
	// answers CodeBadEnvelope and keeps the connection, as for Send).
	b, _ := hex.DecodeString("15" + hdr + mb(0xf0) + strings.Repeat("5e", 32) + "0101ee")
	if _, _, err := Parse(b); err != nil {
		t.Errorf("send with a bad envelope: %v", err)
	}
}

// TestWriteFanoutCorpus rewrites FuzzParseFanoutFrames' committed seeds
// with -update.
func TestWriteFanoutCorpus(t *testing.T) {
	if !*update {
		t.Skip("corpus regeneration only with -update")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParseFanoutFrames")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, f := range fanoutFrames() {
		b, err := Marshal(3, f)
		if err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The committed seeds exist and are the frames fanoutFrames encodes: a
// seed folder that went missing or went stale would let the fuzzer start
// from nothing.
func TestFanoutCorpus(t *testing.T) {
	for name, f := range fanoutFrames() {
		path := filepath.Join("testdata", "fuzz", "FuzzParseFanoutFrames", name)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (regenerate with -update)", err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" {
			t.Fatalf("%s: not a one-argument seed", path)
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		want, _ := Marshal(3, f)
		if s != string(want) {
			t.Errorf("%s is stale (regenerate with -update)", path)
		}
	}
}

// FuzzParseFanoutFrames: FuzzParse's property (no panic; what parses
// re-encodes to the input) seeded with the fan-out frames.
func FuzzParseFanoutFrames(f *testing.F) { f.Fuzz(checkCanonical) }
