package imgmeta

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// FuzzStrip: any input never panics, fails only with ErrMalformed, and a
// successful strip re-strips to itself.
func FuzzStrip(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, asPNG bool) {
		mt := JPEG
		if asPNG {
			mt = PNG
		}
		var out bytes.Buffer
		ok, err := Strip(mt, bytes.NewReader(data), &out)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || ok {
				t.Fatalf("unexpected failure %v (stripped %v)", err, ok)
			}
			return
		}
		var again bytes.Buffer
		if _, err := Strip(mt, bytes.NewReader(out.Bytes()), &again); err != nil {
			t.Fatalf("stripped output does not strip: %v", err)
		}
		if !bytes.Equal(again.Bytes(), out.Bytes()) {
			t.Fatal("stripping is not idempotent")
		}
	})
}

// TestWriteFuzzCorpus writes the committed seed corpus with -update: the
// test images with their metadata, and a few broken ones.
func TestWriteFuzzCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to regenerate testdata/fuzz")
	}
	dj, _ := dirtyJPEG(t)
	dp, _ := dirtyPNG(t)
	write := func(name string, data []byte, asPNG bool) {
		dir := filepath.Join("testdata", "fuzz", "FuzzStrip")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nbool(%t)\n", data, asPNG)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("jpeg-with-metadata", dj, false)
	write("png-with-metadata", dp, true)
	write("jpeg-minimal-exif", append(append([]byte{0xff, 0xd8}, segment(0xe1, minimalExif(nil, 3))...), 0xff, 0xd9), false)
	write("jpeg-truncated", dj[:200], false)
	write("png-truncated", dp[:100], true)
}

func TestFuzzCorpusPresent(t *testing.T) {
	m, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzStrip", "*"))
	if len(m) == 0 {
		t.Error("no committed seed corpus for FuzzStrip (run with -update)")
	}
}
