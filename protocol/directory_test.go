package protocol

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// directoryFrames are well-formed directory frames; they join the golden
// file (buildGolden) and seed FuzzDirectoryFrames.
func directoryFrames() []struct {
	name string
	id   uint32
	f    Frame
} {
	proof := []ProofHash{fill32(0xa4), fill32(0xa5)}
	return []struct {
		name string
		id   uint32
		f    Frame
	}{
		{"publish-directory", 30, &PublishDirectory{LogKey: fill32(0xa1), Version: 7, Hash: fill32(0xa2), Capability: tokenOf(0xa3)}},
		{"fetch-directory", 31, &FetchDirectory{LogKey: fill32(0xa1), KnownSize: 12}},
		{"fetch-directory-no-known-size", 31, &FetchDirectory{LogKey: fill32(0xa1)}},
		{"directory-leaf", 31, &DirectoryLeaf{Version: 7, Hash: fill32(0xa2), Index: 11, Inclusion: proof, Head: fill(3457, 0x13), Consistency: proof[:1]}},
		{"directory-leaf-first", 30, &DirectoryLeaf{Version: 1, Hash: fill32(0xa2), Head: fill(3457, 0x13)}},
	}
}

// directoryMalformedFrames are broken directory frames with the outcome
// SPEC.md requires; they join the golden file.
var directoryMalformedFrames = []struct {
	name, hex, expect string
}{
	{"publish-directory-version-0", "1a0000001e" + strings.Repeat("a1", 32) + "0000000000000000" + strings.Repeat("a2", 32) + strings.Repeat("a3", 32), "malformed"},
	{"publish-directory-short", "1a0000001e" + strings.Repeat("a1", 32) + "0000000000000007" + strings.Repeat("a2", 32) + strings.Repeat("a3", 31), "malformed"},
	{"publish-directory-trailing", "1a0000001e" + strings.Repeat("a1", 32) + "0000000000000007" + strings.Repeat("a2", 32) + strings.Repeat("a3", 33), "malformed"},
	{"fetch-directory-short", "1b0000001f" + strings.Repeat("a1", 32) + "00000000000000", "malformed"},
	{"directory-leaf-version-0", "8f0000001f" + "0000000000000000" + strings.Repeat("a2", 32) + "0000000000000000" + "00" + "0001" + "13" + "00", "malformed"},
	{"directory-leaf-empty-head", "8f0000001f" + "0000000000000001" + strings.Repeat("a2", 32) + "0000000000000000" + "00" + "0000" + "00", "malformed"},
	{"directory-leaf-proof-too-long", "8f0000001f" + "0000000000000001" + strings.Repeat("a2", 32) + "0000000000000000" + "41" + strings.Repeat("a4", 65*32) + "0001" + "13" + "00", "too-large"},
	{"directory-leaf-head-too-long", "8f0000001f" + "0000000000000001" + strings.Repeat("a2", 32) + "0000000000000000" + "00" + "1001" + strings.Repeat("13", 4097) + "00", "too-large"},
}

func TestDirectoryFramesRoundTrip(t *testing.T) {
	for _, c := range directoryFrames() {
		t.Run(c.name, func(t *testing.T) {
			b, err := Marshal(c.id, c.f)
			if err != nil {
				t.Fatal(err)
			}
			id, f, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if again, _ := Marshal(id, f); id != c.id || !bytes.Equal(again, b) {
				t.Fatalf("id %d or re-marshal differs", id)
			}
			if !reflect.DeepEqual(f, c.f) {
				t.Fatalf("parsed %+v, want %+v", f, c.f)
			}
		})
	}
}

func TestDirectoryFramesMalformed(t *testing.T) {
	for _, m := range directoryMalformedFrames {
		t.Run(m.name, func(t *testing.T) {
			b, err := hex.DecodeString(m.hex)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = Parse(b)
			want := map[string]error{"malformed": ErrMalformed, "too-large": ErrTooLarge}[m.expect]
			if !errors.Is(err, want) {
				t.Fatalf("err %v, want %v", err, want)
			}
		})
	}
	for _, f := range []Frame{
		&PublishDirectory{},
		&DirectoryLeaf{Head: fill(10, 1)},
		&DirectoryLeaf{Version: 1},
		&DirectoryLeaf{Version: 1, Head: fill(MaxTreeHeadSize+1, 1)},
		&DirectoryLeaf{Version: 1, Head: fill(10, 1), Inclusion: make([]ProofHash, MaxProofHashes+1)},
	} {
		if _, err := Marshal(1, f); err == nil {
			t.Errorf("%T %+v marshalled", f, f)
		}
	}
}

// The publishing capability's hash is apart from a mailbox capability's
// hash of the same token.
func TestDirectoryCapabilityHash(t *testing.T) {
	a, b := tokenOf(1), tokenOf(2)
	if a.DirectoryHash() == b.DirectoryHash() || a.DirectoryHash() == a.Hash() {
		t.Fatal("directory capability hash not separated")
	}
}

// directorySeeds are FuzzDirectoryFrames' committed seeds.
func directorySeeds(t *testing.T) map[string][]byte {
	out := map[string][]byte{}
	for _, c := range directoryFrames() {
		b, err := Marshal(c.id, c.f)
		if err != nil {
			t.Fatal(err)
		}
		out[c.name] = b
	}
	for _, m := range directoryMalformedFrames {
		b, err := hex.DecodeString(m.hex)
		if err != nil {
			t.Fatal(err)
		}
		out["malformed-"+m.name] = b
	}
	return out
}

// TestDirectorySeedCorpus checks the committed seeds of
// FuzzDirectoryFrames (and rewrites them with -update).
func TestDirectorySeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDirectoryFrames")
	seeds := directorySeeds(t)
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range seeds {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, b := range seeds {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%v (regenerate with -update)", err)
		}
		if want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b); string(got) != want {
			t.Fatalf("%s is stale (regenerate with -update)", name)
		}
	}
}

// FuzzDirectoryFrames: the directory decoders never panic, whatever
// parses re-encodes to the same bytes, and no accepted frame breaks a
// rule.
func FuzzDirectoryFrames(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		checkCanonical(t, b)
		_, fr, err := Parse(b)
		if err != nil {
			return
		}
		switch fr := fr.(type) {
		case *PublishDirectory:
			if fr.Version == 0 {
				t.Fatal("version 0 accepted")
			}
		case *DirectoryLeaf:
			if fr.Version == 0 || len(fr.Head) == 0 || len(fr.Head) > MaxTreeHeadSize || len(fr.Inclusion) > MaxProofHashes || len(fr.Consistency) > MaxProofHashes {
				t.Fatalf("leaf %d/%d/%d/%d accepted", fr.Version, len(fr.Head), len(fr.Inclusion), len(fr.Consistency))
			}
		}
	})
}
