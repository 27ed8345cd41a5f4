package client

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/team/group"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
)

// The group introduction's fuzz targets and their committed seeds
// (regenerate with `go test ./client -run TestWriteGroupIntroCorpus
// -update-corpus`).
var groupIntroCorpora = []string{"FuzzParseGroupIntro", "FuzzOpenGroupIntro"}

// Fixed inputs of FuzzOpenGroupIntro: the key and mailbox its seeds are
// sealed for.
var (
	fuzzIntroHeaderKey = bytes.Repeat([]byte{0x48}, group.HeaderKeySize)
	fuzzIntroGroup     = group.ID{0x47, 1, 2, 3}
	fuzzIntroMailbox   = protocol.MailboxID{0x4d, 4, 5, 6}
)

// seedGroupIntros are valid introduction bodies (with and without a
// device list, an answer and not) by a fresh device.
func seedGroupIntros(t *testing.T) [][]byte {
	t.Helper()
	id, err := identity.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	dev, err := identity.NewDevice(id)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1764100000, 0)
	l := &keys.DeviceList{Identity: id.Public(), Version: 3, Created: at, Devices: []keys.ListedDevice{{ID: dev.Certificate().DeviceID(), Linked: at, Relay: "wss://relay.example"}}}
	list, err := id.SignDeviceList(l)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for i, g := range []*groupIntro{
		{Group: fuzzIntroGroup, To: keys.Fingerprint{9}, Mailbox: protocol.MailboxID{7}, Capability: [32]byte{8}, List: list},
		{Group: fuzzIntroGroup, To: keys.Fingerprint{10}, Answer: true, Mailbox: protocol.MailboxID{11}, Capability: [32]byte{12}},
	} {
		g.Cert = dev.Certificate().Bytes()
		b, err := g.marshal(dev, fuzzIntroMailbox)
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		out = append(out, b)
	}
	return out
}

func TestWriteGroupIntroCorpus(t *testing.T) {
	t.Parallel()
	if !*updateCorpus {
		t.Skip("corpus regeneration only with -update-corpus")
	}
	bodies := seedGroupIntros(t)
	writeFuzzSeeds(t, "FuzzParseGroupIntro", "valid", bodies)
	var envs [][]byte
	for _, b := range bodies {
		env, err := sealGroupIntro(fuzzIntroHeaderKey, fuzzIntroGroup, fuzzIntroMailbox, b)
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, env)
	}
	writeFuzzSeeds(t, "FuzzOpenGroupIntro", "valid", envs)
}

func TestGroupIntroCorpusPresent(t *testing.T) {
	t.Parallel()
	for _, name := range groupIntroCorpora {
		m, _ := filepath.Glob(filepath.Join("testdata", "fuzz", name, "valid-*"))
		if len(m) == 0 {
			t.Errorf("%s has no valid seeds (regenerate with -update-corpus)", name)
		}
	}
	// The seeds still parse and open (a format change regenerates them).
	for _, m := range must(filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParseGroupIntro", "valid-*"))) {
		if _, _, err := parseGroupIntro(readFuzzSeed(t, m)); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
	for _, m := range must(filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzOpenGroupIntro", "valid-*"))) {
		if _, err := openGroupIntro(fuzzIntroHeaderKey, fuzzIntroGroup, fuzzIntroMailbox, readFuzzSeed(t, m)); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// FuzzParseGroupIntro: an introduction body either fails with ErrDecrypt
// or re-encodes to the same bytes.
func FuzzParseGroupIntro(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		g, unsigned, err := parseGroupIntro(b)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("error %v is not ErrDecrypt", err)
			}
			return
		}
		re, err := g.encode()
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs: %v", err)
		}
		if !bytes.Equal(unsigned, b[:len(b)-keys.SignatureSize]) {
			t.Fatal("unsigned prefix")
		}
	})
}

// FuzzOpenGroupIntro: an envelope either fails to open with ErrDecrypt
// or gives a body within the limits; nothing panics. Sealing the body
// again opens to the same body.
func FuzzOpenGroupIntro(f *testing.F) {
	f.Fuzz(func(t *testing.T, env []byte) {
		body, err := openGroupIntro(fuzzIntroHeaderKey, fuzzIntroGroup, fuzzIntroMailbox, env)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("error %v is not ErrDecrypt", err)
			}
			return
		}
		if len(body) > maxGroupIntroSize {
			t.Fatalf("a body of %d bytes", len(body))
		}
		again, err := sealGroupIntro(fuzzIntroHeaderKey, fuzzIntroGroup, fuzzIntroMailbox, body)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := openGroupIntro(fuzzIntroHeaderKey, fuzzIntroGroup, fuzzIntroMailbox, again); err != nil || !bytes.Equal(b, body) {
			t.Fatalf("resealed: %v", err)
		}
	})
}
