package directory

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/postern/postern/keys"
)

// fuzzSeeds returns genuine encodings: directories, a role record and
// statuses.
func fuzzSeeds(t testing.TB) (dirs, roles, statuses [][]byte) {
	d := sampleDirectory(t)
	dirs = append(dirs, signed(t, d, "admin"))
	e := &Directory{Org: testOrg, Version: 7, Issued: issued, Admins: sortedFP(fp(t, "admin"))}
	dirs = append(dirs, signed(t, e, "admin"))
	r := &RoleRecord{Org: testOrg, Role: onCall, Seq: 1, Time: issued, Holder: fp(t, "bob")}
	b, err := r.Sign(who(t, "bob"))
	if err != nil {
		t.Fatal(err)
	}
	roles = append(roles, b)
	for _, s := range []*Status{
		{Org: testOrg, Time: issued, State: Busy},
		{Org: testOrg, Time: issued, State: OffDuty, DNDUntil: issued.Add(time.Hour), Forward: fp(t, "bob")},
	} {
		b, err := s.Sign(who(t, "alice"))
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, b)
	}
	return dirs, roles, statuses
}

// signedBySeed reports whether b's signed part (all but the signature) is
// a seed's. Signatures are hedged, so the fuzzing workers' seeds carry other
// signatures over the same signed bytes than the coordinator's.
func signedBySeed(b []byte, seeds [][]byte) bool {
	end := len(b) - keys.SignatureSize
	for _, s := range seeds {
		if len(s) == len(b) && bytes.Equal(s[:end], b[:end]) {
			return true
		}
	}
	return false
}

// FuzzDecodeDirectory: any input is refused with ErrMalformed or decodes
// to a directory that re-encodes to the same bytes; nothing panics, and
// only the genuine seeds verify.
func FuzzDecodeDirectory(f *testing.F) {
	dirs, _, _ := fuzzSeeds(f)
	for _, b := range dirs {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
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
		d.Lookup("a b", 3)
		d.OutsiderView(map[TeamID]bool{{}: true}).Lookup("x", 0)
		for _, r := range d.Roles {
			h, _ := d.Holding(r.ID)
			d.Holder(h)
		}
		if _, err := Accept(Anchor{Org: d.Org, Admins: d.Admins}, b); err == nil && !signedBySeed(b, dirs) {
			t.Fatal("a changed directory verified")
		}
	})
}

func FuzzDecodeRoleRecord(f *testing.F) {
	_, roles, _ := fuzzSeeds(f)
	for _, b := range roles {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
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
		if _, err := ParseRoleRecord(b); err == nil && !signedBySeed(b, roles) {
			t.Fatal("a changed role record verified")
		}
	})
}

func FuzzDecodeStatus(f *testing.F) {
	_, _, statuses := fuzzSeeds(f)
	for _, b := range statuses {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
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
		if _, err := ParseStatus(b); err == nil && !signedBySeed(b, statuses) {
			t.Fatal("a changed status verified")
		}
	})
}

// TestWriteFuzzCorpus writes the seeds into testdata/fuzz (with -update),
// so that the committed corpora hold genuine encodings; without -update it
// checks that each corpus is there.
func TestWriteFuzzCorpus(t *testing.T) {
	dirs, roles, statuses := fuzzSeeds(t)
	for name, seeds := range map[string][][]byte{
		"FuzzDecodeDirectory":  dirs,
		"FuzzDecodeRoleRecord": roles,
		"FuzzDecodeStatus":     statuses,
	} {
		dir := filepath.Join("testdata", "fuzz", name)
		if !*update {
			if ents, err := os.ReadDir(dir); err != nil || len(ents) == 0 {
				t.Errorf("fuzz corpus %s missing or empty (run with -update): %v", dir, err)
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
