package bboltstore

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/postern/postern/relay/store"
)

// damageFixture writes a closed store with enough envelopes for a tree of
// several levels and returns its path, its bytes, the envelopes' count and
// the verifier's view of it (page size, pages in use).
func damageFixture(t *testing.T) (path string, orig []byte, n int, v *verifier) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "relay.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	mb, h := mailboxWithCap(t, s)
	for i := range 300 {
		if _, err := s.Append(ctx, envelope(mb, t0.Add(time.Duration(i)*time.Second)), h); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	orig, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	st, _ := f.Stat()
	v = &verifier{f: f, path: path, size: st.Size()}
	if err := v.run(); err != nil {
		t.Fatalf("fixture does not verify: %v", err)
	}
	return path, orig, 300, v
}

// openDamaged opens a damaged copy: it must either refuse with
// store.ErrDamaged naming the file, or open with every envelope readable.
// A SIGBUS or an unrecovered panic in bbolt ends the test binary: that is
// the failure this test was written against.
// want < 0 accepts -want or -want-1 envelopes: a damaged newest meta page
// makes bbolt fall back to the one before, which is the state before the
// last commit (as after a crash during that commit).
func openDamaged(t *testing.T, path string, want int) (refused bool) {
	t.Helper()
	s, err := Open(path, &Options{LockTimeout: -1})
	if err != nil {
		if !errors.Is(err, store.ErrDamaged) || !bytes.Contains([]byte(err.Error()), []byte(path)) {
			t.Fatalf("open: %v; want store.ErrDamaged naming %s", err, path)
		}
		if cerr := Check(path); !errors.Is(cerr, store.ErrDamaged) {
			t.Errorf("Check = %v after Open refused", cerr)
		}
		return true
	}
	defer s.Close()
	st, err := s.Stats(ctx)
	if err != nil || (want >= 0 && st.Envelopes != int64(want)) || (want < 0 && st.Envelopes != int64(-want) && st.Envelopes != int64(-want-1)) {
		t.Fatalf("opened a damaged file: stats %+v, %v; want %d envelopes", st, err, want)
	}
	return false
}

func TestOpenRefusesTruncatedFile(t *testing.T) {
	path, orig, n, v := damageFixture(t)
	used := int64(v.hwm) * v.pageSize
	for _, size := range []int64{1, 100, 4096, v.pageSize, v.pageSize + 100, 2 * v.pageSize, 3 * v.pageSize, used / 2, used - v.pageSize, used - 1} {
		if err := os.WriteFile(path, orig[:size], 0o600); err != nil {
			t.Fatal(err)
		}
		if !openDamaged(t, path, n) {
			t.Errorf("truncated to %d of %d bytes: opened", size, used)
		}
	}
	// Past the pages in use (bbolt grows the file ahead of them), nothing
	// is lost and the file opens.
	if int64(len(orig)) > used {
		os.WriteFile(path, orig[:used], 0o600)
		if openDamaged(t, path, n) {
			t.Error("a file cut after its last page was refused")
		}
	}
}

func TestOpenRefusesOverwrittenPage(t *testing.T) {
	path, orig, n, v := damageFixture(t)
	junk := make([]byte, v.pageSize)
	refused := 0
	for p := uint64(0); p < v.hwm; p++ {
		b := bytes.Clone(orig)
		rand.Read(junk)
		copy(b[int64(p)*v.pageSize:], junk)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		inUse := v.seen[p/64]&(1<<(p%64)) != 0
		want := n
		if p < 2 {
			want = -n
		}
		got := openDamaged(t, path, want)
		if got {
			refused++
		}
		// A page in use other than one meta page must be refused; one meta
		// page alone is recovered from the other, as bbolt does.
		if inUse && p >= 2 && !got {
			t.Errorf("page %d (in use) overwritten: opened", p)
		}
	}
	// Both meta pages gone: nothing to trust.
	b := bytes.Clone(orig)
	copy(b, bytes.Repeat([]byte{0xAB}, int(2*v.pageSize)))
	os.WriteFile(path, b, 0o600)
	if !openDamaged(t, path, n) {
		t.Error("both meta pages overwritten: opened")
	}
	t.Logf("%d pages, %d overwrites refused", v.hwm, refused)
}
