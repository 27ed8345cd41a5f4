package directory

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/postern/postern/keys"
)

// The fuzz targets take the part of an encoding before its signer key
// (the layout each decoder reads) and append a fixed trailer: a genuine
// key, the signature length and a zero signature. Expanding a mutated
// ML-DSA-65 key or verifying a signature under the fuzzer's
// instrumentation leaves a few executions per second, and neither is this
// package's code: the trailer's own faults (length, trailing bytes,
// truncation) and every signature failure are unit-tested and in the
// vectors. Decoding checks no signature, so the bodies are deterministic
// and the committed corpora are compared exactly (TestWriteFuzzCorpus).

// fuzzSeeds returns genuine encodings: directories, a role record and
// statuses.
func fuzzSeeds(t testing.TB) (dirs, roles, statuses [][]byte) {
	d := sampleDirectory(t)
	dirs = append(dirs, signed(t, d, "admin"))
	e := &Directory{Org: testOrg, Version: 7, Issued: issued, Admins: sortedFP(fp(t, "admin"))}
	dirs = append(dirs, signed(t, e, "admin"))
	r := &RoleRecord{Org: testOrg, Role: onCall, Seq: 1, Time: issued, Holder: fp(t, "bob")}
	b, err := r.Sign(who(t, "admin"))
	if err != nil {
		t.Fatal(err)
	}
	roles = append(roles, b)
	for _, s := range []*Status{
		{Org: testOrg, Time: issued, State: Busy},
		{Org: testOrg, Time: issued, State: OffDuty, DNDUntil: issued.Add(time.Hour), Forward: fp(t, "bob")},
	} {
		b, err := s.Sign(who(t, "admin"))
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, b)
	}
	return dirs, roles, statuses
}

// bodies strips the trailer (signer key, signature length, signature).
func bodies(encs [][]byte) [][]byte {
	var out [][]byte
	for _, e := range encs {
		out = append(out, e[:len(e)-trailerSize])
	}
	return out
}

// fuzzTrailer is the admin's key, the signature length and a zero
// signature. The admin signs every seed, so a seed's body with it is that
// seed with its signature zeroed.
func fuzzTrailer(tb testing.TB) []byte {
	b := who(tb, "admin").Public().Bytes()
	b = binary.BigEndian.AppendUint16(b, keys.SignatureSize)
	return append(b, make([]byte, keys.SignatureSize)...)
}

// memoizeSigners makes the decoders parse each distinct signer key once
// (see parseSigner). Fuzz workers run one input at a time.
func memoizeSigners(f *testing.F) {
	seen := map[string]*keys.SigningPublicKey{}
	f.Cleanup(func() { parseSigner = keys.ParseSigningPublicKey })
	parseSigner = func(b []byte) (*keys.SigningPublicKey, error) {
		if k, ok := seen[string(b)]; ok {
			return k, nil
		}
		k, err := keys.ParseSigningPublicKey(b)
		if err == nil && len(seen) < 64 {
			seen[string(b)] = k
		}
		return k, err
	}
}

// FuzzDecodeDirectory: any layout is refused with ErrMalformed or decodes
// to a directory that re-encodes to the same bytes and can be looked up,
// viewed and asked for role holders without panic; nothing is accepted
// without a signature.
func FuzzDecodeDirectory(f *testing.F) {
	memoizeSigners(f)
	trailer := fuzzTrailer(f)
	dirs, _, _ := fuzzSeeds(f)
	for _, b := range bodies(dirs) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b := append(body[:len(body):len(body)], trailer...)
		d, _, err := decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode: %v", err)
			}
			return
		}
		again, err := d.Bytes()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %v", err)
		}
		v := d.View()
		v.Lookup("a b", 3)
		v.Lookup("x", 0)
		d.OutsiderView(map[TeamID]bool{{}: true}).Lookup("x", 0)
		for _, r := range d.Roles {
			h, _ := d.Holding(r.ID)
			d.Holder(h)
		}
	})
}

func FuzzDecodeRoleRecord(f *testing.F) {
	memoizeSigners(f)
	trailer := fuzzTrailer(f)
	_, roles, _ := fuzzSeeds(f)
	for _, b := range bodies(roles) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b := append(body[:len(body):len(body)], trailer...)
		r, err := decodeRoleRecord(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode: %v", err)
			}
			return
		}
		again, err := r.Bytes()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %v", err)
		}
		r.Holding()
	})
}

func FuzzDecodeStatus(f *testing.F) {
	memoizeSigners(f)
	trailer := fuzzTrailer(f)
	_, _, statuses := fuzzSeeds(f)
	for _, b := range bodies(statuses) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b := append(body[:len(body):len(body)], trailer...)
		s, err := decodeStatus(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotEntitled) {
				t.Fatalf("decode: %v", err)
			}
			return
		}
		again, err := s.Bytes()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %v", err)
		}
		s.Forwarding(issued)
	})
}

// TestWriteFuzzCorpus: the committed corpora are the seeds' bodies (with
// -update, they are written).
func TestWriteFuzzCorpus(t *testing.T) {
	dirs, roles, statuses := fuzzSeeds(t)
	for name, seeds := range map[string][][]byte{
		"FuzzDecodeDirectory":  bodies(dirs),
		"FuzzDecodeRoleRecord": bodies(roles),
		"FuzzDecodeStatus":     bodies(statuses),
	} {
		dir := filepath.Join("testdata", "fuzz", name)
		if *update {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for i, s := range seeds {
			path := filepath.Join(dir, fmt.Sprintf("seed-%d", i))
			body := []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s))
			if *update {
				if err := os.WriteFile(path, body, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, body) {
				t.Errorf("%s missing or different (run with -update): %v", path, err)
			}
		}
	}
}
