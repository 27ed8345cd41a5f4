package protocol

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func ktFrames() []Frame {
	p := []ProofHash{ProofHash(fill32(0xa1)), ProofHash(fill32(0xa2))}
	return []Frame{
		&PublishDeviceList{List: fill(100, 0x12)},
		&FetchDeviceList{Identity: fill32(0x33), KnownSize: 7},
		&FetchLogKey{},
		&DeviceList{List: fill(100, 0x12), Index: 5, Inclusion: p, Head: fill(50, 0x13), Consistency: p[:1]},
		&DeviceList{List: fill(1, 0x12), Head: fill(1, 0x13)},
		&LogKey{Key: fill(64, 0x77)},
	}
}

// TestKTFrames: each transparency frame round-trips, and its encoding is
// the layout of SPEC.md section 4 (checked byte for byte for DeviceList).
func TestKTFrames(t *testing.T) {
	for _, f := range ktFrames() {
		b, err := Marshal(9, f)
		if err != nil {
			t.Fatalf("%T: %v", f, err)
		}
		id, g, err := Parse(b)
		if err != nil || id != 9 {
			t.Fatalf("%T: parse: %v", f, err)
		}
		again, _ := Marshal(id, g)
		if !bytes.Equal(again, b) {
			t.Fatalf("%T: not canonical", f)
		}
	}
	b, _ := Marshal(1, &DeviceList{List: []byte{0x12}, Index: 2, Inclusion: []ProofHash{ProofHash(fill32(0xaa))}, Head: []byte{0x13, 0x01}})
	want := "90" + "00000001" + "0001" + "12" + "0000000000000002" + "01" + strings.Repeat("aa", 32) + "0002" + "1301" + "00"
	if hex.EncodeToString(b) != want {
		t.Fatalf("DeviceList encoding\n got %x\nwant %s", b, want)
	}
	if b, _ := Marshal(1, &FetchDeviceList{Identity: fill32(0x33), KnownSize: 258}); hex.EncodeToString(b) != "11"+"00000001"+strings.Repeat("33", 32)+"0000000000000102" {
		t.Fatalf("FetchDeviceList encoding %x", b)
	}
}

func TestKTFramesRefused(t *testing.T) {
	many := make([]ProofHash, MaxProofHashes+1)
	for _, f := range []Frame{
		&PublishDeviceList{},
		&PublishDeviceList{List: fill(MaxDeviceListSize+1, 1)},
		&DeviceList{List: fill(1, 1), Head: fill(1, 1), Inclusion: many},
		&DeviceList{List: fill(1, 1)},
		&LogKey{},
	} {
		if _, err := Marshal(1, f); err == nil {
			t.Errorf("%T with a broken field marshalled", f)
		}
	}
	hdr := "00000001"
	for _, c := range []struct{ name, hex string }{
		{"publish empty", "10" + hdr},
		{"publish too large", "10" + hdr + strings.Repeat("12", MaxDeviceListSize+1)},
		{"fetch short", "11" + hdr + strings.Repeat("33", 32) + "00"},
		{"fetch trailing", "11" + hdr + strings.Repeat("33", 32) + "000000000000000100"},
		{"log key trailing", "12" + hdr + "00"},
		{"proof count 65", "90" + hdr + "000112" + "0000000000000000" + "41"},
		{"proof truncated", "90" + hdr + "000112" + "0000000000000000" + "02" + strings.Repeat("aa", 40)},
		{"empty head", "90" + hdr + "000112" + "0000000000000000" + "00" + "0000" + "00"},
		{"empty list", "90" + hdr + "0000" + "0000000000000000" + "00" + "000113" + "00"},
		{"list length beyond frame", "90" + hdr + "0100" + "12"},
		{"empty log key", "91" + hdr + "0000"},
	} {
		b, _ := hex.DecodeString(c.hex)
		if _, _, err := Parse(b); err == nil || !(errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge)) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// FuzzParseKTFrames: FuzzParse's property (no panic; what parses
// re-encodes to the input) seeded with the transparency frames.
func FuzzParseKTFrames(f *testing.F) {
	for _, fr := range ktFrames() {
		b, err := Marshal(3, fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(checkCanonical)
}
