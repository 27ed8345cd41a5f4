package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/attach"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

func testAttachmentRef(name, mt string, plain int64) attachmentRef {
	a := attachmentRef{Name: name, MediaType: mt, PlainSize: uint64(plain), CipherSize: uint64(attach.CipherSize(plain))}
	rand.Read(a.Blob[:])
	rand.Read(a.Key[:])
	rand.Read(a.Digest[:])
	return a
}

func TestAttachmentContentEncoding(t *testing.T) {
	t.Parallel()
	full := make([]attachmentRef, MaxAttachments)
	for i := range full {
		full[i] = testAttachmentRef(strings.Repeat("ü", 127)+"x", strings.Repeat("a", MaxMediaTypeSize), 1<<30)
	}
	valid := []struct {
		name string
		ct   *content
	}{
		{"one file, no caption", &content{Type: contentAttachment, SentMS: 1, Attachments: []attachmentRef{testAttachmentRef("photo.jpg", "image/jpeg", 12345)}}},
		{"caption", &content{Type: contentAttachment, SentMS: 2, Text: "the scan", Attachments: []attachmentRef{testAttachmentRef("scan.pdf", "application/pdf", 0)}}},
		{"empty name and type", &content{Type: contentAttachment, Attachments: []attachmentRef{testAttachmentRef("", "", 1)}}},
		{"largest", &content{Type: contentAttachment, Text: strings.Repeat("x", MaxTextSize), Attachments: full}},
	}
	for _, tc := range valid {
		t.Run(tc.name, func(t *testing.T) {
			rand.Read(tc.ct.Sender[:])
			rand.Read(tc.ct.MsgID[:])
			b, err := tc.ct.marshalSession()
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseSessionContent(append(bytes.Clone(b), 0, 0, 0))
			if err != nil {
				t.Fatal(err)
			}
			again, err := got.marshalSession()
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("re-encoding differs (%v)", err)
			}
			if len(got.Attachments) != len(tc.ct.Attachments) || got.Attachments[0] != tc.ct.Attachments[0] || got.Text != tc.ct.Text {
				t.Fatalf("parsed %+v", got)
			}
			// The largest content still fits the largest envelope with an Init.
			if n := protocol.EnvelopeHeaderSize + 20000 + len(b); n > protocol.MaxEnvelopeSize {
				t.Errorf("content of %d bytes may not fit an envelope", len(b))
			}
		})
	}

	bad := []struct {
		name string
		refs []attachmentRef
		text string
	}{
		{"no file", nil, ""},
		{"17 files", make([]attachmentRef, MaxAttachments+1), ""},
		{"long name", []attachmentRef{testAttachmentRef(strings.Repeat("n", 256), "", 1)}, ""},
		{"name not UTF-8", []attachmentRef{testAttachmentRef("\xff", "", 1)}, ""},
		{"long type", []attachmentRef{testAttachmentRef("a", strings.Repeat("t", 128), 1)}, ""},
		{"type not ASCII", []attachmentRef{testAttachmentRef("a", "image/jpég", 1)}, ""},
		{"type with control", []attachmentRef{testAttachmentRef("a", "image/jpeg\n", 1)}, ""},
		{"cipher size not chunks", []attachmentRef{{Name: "a", PlainSize: 1, CipherSize: 100}}, ""},
		{"cipher smaller than plain", []attachmentRef{{Name: "a", PlainSize: 1 << 20, CipherSize: protocol.BlobCipherChunkSize}}, ""},
	}
	for _, tc := range bad {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			ct := &content{Type: contentAttachment, Text: tc.text, Attachments: tc.refs}
			if _, err := ct.marshalSession(); err == nil {
				t.Fatal("marshalled")
			}
		})
	}

	// Hand-made encodings the parser refuses.
	ok := &content{Type: contentAttachment, Attachments: []attachmentRef{testAttachmentRef("a.txt", "text/plain", 5)}}
	b, err := ok.marshalSession()
	if err != nil {
		t.Fatal(err)
	}
	countAt := padHeaderSize + 1 + 32 + 16 + 8 + 4
	for name, mutate := range map[string]func([]byte) []byte{
		"count 0":      func(b []byte) []byte { b[countAt] = 0; return b },
		"count 2 of 1": func(b []byte) []byte { b[countAt] = 2; return b },
		"trailing byte": func(b []byte) []byte {
			binary.BigEndian.PutUint32(b, uint32(len(b)-padHeaderSize+1))
			return append(b, 1)
		},
		"truncated": func(b []byte) []byte {
			binary.BigEndian.PutUint32(b, uint32(len(b)-padHeaderSize-1))
			return b[:len(b)-1]
		},
	} {
		if _, err := parseSessionContent(mutate(bytes.Clone(b))); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: parsed (%v)", name, err)
		}
	}
	// Introductions stay sealed-only: type 0x04 is refused in a sealed content.
	if _, _, err := parseContent(append(bytes.Clone(b[padHeaderSize:]), make([]byte, 2+3373)...)); !errors.Is(err, ErrDecrypt) {
		t.Errorf("sealed attachment content parsed")
	}
}

func TestSafeFileName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 200) + ".jpeg"
	for _, tc := range []struct{ in, want string }{
		{"photo.jpg", "photo.jpg"},
		{"../../etc/passwd", "passwd"},
		{`a\b`, "b"},
		{`C:\Users\x\report.pdf`, "report.pdf"},
		{"..", fallbackFileName},
		{"...", fallbackFileName},
		{"", fallbackFileName},
		{"/", fallbackFileName},
		{".bashrc", "bashrc"},
		{"CON", "_CON"},
		{"con.txt", "_con.txt"},
		{"LPT9.tar.gz", "_LPT9.tar.gz"},
		{"CONTACT.txt", "CONTACT.txt"},
		{"bell\a.txt", "bell_.txt"},
		{"line\nbreak\r.txt", "line_break_.txt"},
		{"esc\x1b[31mred", "esc_[31mred"},
		{"del\x7f", "del_"},
		{"gnp.\u202eexe", "gnp._exe"}, // right-to-left override
		{`a<b>c:d"e|f?g*h`, "a_b_c_d_e_f_g_h"},
		{"trailing. . ", "trailing"},
		{"bad\xffutf8", "bad_utf8"},
		{"rapport été.pdf", "rapport été.pdf"},
		{long, strings.Repeat("é", 125) + ".jpeg"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got := SafeFileName(tc.in)
			if got != tc.want {
				t.Errorf("SafeFileName(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if len(got) > MaxAttachmentNameSize || strings.ContainsAny(got, "/\\") || strings.HasPrefix(got, ".") || got == "" {
				t.Errorf("unsafe result %q", got)
			}
		})
	}
	if got := saveNames([]attachmentRecord{{Name: "a.jpg"}, {Name: "x/a.jpg"}, {Name: "A.JPG"}}); got[0] != "a.jpg" || got[1] != "a (2).jpg" || got[2] != "A (3).JPG" {
		t.Errorf("saveNames = %q", got)
	}
}

// fastTransfers makes retries quick and, if rt is set, routes blob
// transfers through it.
func fastTransfers(c *Client, rt http.RoundTripper) {
	c.retryBase = time.Millisecond
	c.blobTransport = rt
}

// sendFilesTo sends paths from alice to bob ("bob" in alice's contacts)
// and returns the message as bob received it.
func sendFilesTo(t *testing.T, alice, bob *Client, text string, paths []string, opts *SendOptions) Message {
	t.Helper()
	ctx := testCtx(t)
	sent, err := alice.SendFiles(ctx, "bob", text, paths, opts)
	if err != nil {
		t.Fatalf("SendFiles: %v", err)
	}
	if len(sent.Attachments) != len(paths) || !sent.Outgoing {
		t.Fatalf("sent message %+v", sent)
	}
	msgs, err := bob.Sync(ctx)
	if err != nil {
		t.Fatalf("bob Sync: %v", err)
	}
	for _, m := range msgs {
		if m.ID == sent.ID {
			if len(m.Attachments) != len(paths) || m.Text != text {
				t.Fatalf("received %+v", m)
			}
			stored, err := bob.Message(m.ID)
			if err != nil || len(stored.Attachments) != len(paths) {
				t.Fatalf("stored message %+v, %v", stored, err)
			}
			return m
		}
	}
	t.Fatalf("bob did not receive message %s (got %d messages)", sent.ID, len(msgs))
	return Message{}
}

// testImage is a small image with structure, so that lossy JPEG keeps
// something to compare.
func testImage() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 24, 16))
	for y := range 16 {
		for x := range 24 {
			img.Set(x, y, color.RGBA{uint8(x * 10), uint8(y * 15), uint8((x + y) * 5), 255})
		}
	}
	return img
}

// jpegWithGPS encodes testImage as JPEG and puts an Exif APP1 segment
// naming a GPS position right after SOI.
func jpegWithGPS(t *testing.T) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, testImage(), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	payload := append([]byte("Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08"), []byte("GPSLatitude 51.5007N GPSLongitude 0.1246W")...)
	seg := []byte{0xff, 0xe1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	seg = append(seg, payload...)
	return append(append(bytes.Clone(b[:2]), seg...), b[2:]...)
}

// pngWithText encodes testImage as PNG with a tEXt chunk after IHDR.
func pngWithText(t *testing.T) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, testImage()); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	data := []byte("Comment\x00taken at home, GPS 51.5N")
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	chunk = append(chunk, "tEXt"...)
	chunk = append(chunk, data...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	ihdrEnd := 8 + 4 + 4 + 13 + 4
	return append(append(bytes.Clone(b[:ihdrEnd]), chunk...), b[ihdrEnd:]...)
}

func writeTestFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func samePixels(t *testing.T, a, b []byte) {
	t.Helper()
	ia, _, err := image.Decode(bytes.NewReader(a))
	if err != nil {
		t.Fatalf("decode original: %v", err)
	}
	ib, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode saved: %v", err)
	}
	if ia.Bounds() != ib.Bounds() {
		t.Fatalf("bounds %v vs %v", ia.Bounds(), ib.Bounds())
	}
	for y := ia.Bounds().Min.Y; y < ia.Bounds().Max.Y; y++ {
		for x := ia.Bounds().Min.X; x < ia.Bounds().Max.X; x++ {
			r1, g1, b1, a1 := ia.At(x, y).RGBA()
			r2, g2, b2, a2 := ib.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				t.Fatalf("pixel %d,%d differs", x, y)
			}
		}
	}
}

func TestSendFilesStripsMetadata(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	fastTransfers(alice, nil)
	fastTransfers(bob, nil)
	src := t.TempDir()
	jpg, pngb := jpegWithGPS(t), pngWithText(t)
	paths := []string{writeTestFile(t, src, "holiday.jpg", jpg), writeTestFile(t, src, "map.png", pngb)}
	ctx := testCtx(t)

	m := sendFilesTo(t, alice, bob, "from the trip", paths, nil)
	if m.Attachments[0].Name != "holiday.jpg" || m.Attachments[0].MediaType != "image/jpeg" ||
		m.Attachments[1].Name != "map.png" || m.Attachments[1].MediaType != "image/png" {
		t.Fatalf("attachments %+v", m.Attachments)
	}
	out := t.TempDir()
	saved, err := bob.SaveAttachments(ctx, m.ID, out, nil)
	if err != nil {
		t.Fatalf("SaveAttachments: %v", err)
	}
	if len(saved) != 2 || saved[0] != filepath.Join(out, "holiday.jpg") || saved[1] != filepath.Join(out, "map.png") {
		t.Fatalf("saved %q", saved)
	}
	gotJPG, _ := os.ReadFile(saved[0])
	gotPNG, _ := os.ReadFile(saved[1])
	if bytes.Contains(gotJPG, []byte("GPS")) || bytes.Contains(gotJPG, []byte("Exif")) {
		t.Error("saved JPEG still holds the Exif GPS segment")
	}
	if bytes.Contains(gotPNG, []byte("tEXt")) || bytes.Contains(gotPNG, []byte("GPS")) {
		t.Error("saved PNG still holds the tEXt chunk")
	}
	if m.Attachments[0].Size != int64(len(gotJPG)) || m.Attachments[1].Size != int64(len(gotPNG)) {
		t.Errorf("announced sizes %d, %d; saved %d, %d", m.Attachments[0].Size, m.Attachments[1].Size, len(gotJPG), len(gotPNG))
	}
	samePixels(t, jpg, gotJPG)
	samePixels(t, pngb, gotPNG)
	for _, p := range saved {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", p, fi.Mode(), err)
		}
	}
	// The stripped copies are gone from the home's tmp directory.
	if left, _ := os.ReadDir(filepath.Join(alice.home, "tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	// KeepMetadata: byte-identical.
	m = sendFilesTo(t, alice, bob, "", paths, &SendOptions{KeepMetadata: true})
	out = t.TempDir()
	saved, err = bob.SaveAttachments(ctx, m.ID, out, nil)
	if err != nil {
		t.Fatalf("SaveAttachments: %v", err)
	}
	for i, want := range [][]byte{jpg, pngb} {
		got, _ := os.ReadFile(saved[i])
		if !bytes.Equal(got, want) {
			t.Errorf("%s: with KeepMetadata the saved bytes differ", saved[i])
		}
	}
}

func fileDigest(t *testing.T, p string) [32]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

func randomFile(t testing.TB, dir, name string, size int64) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// dirEntries lists every name in dir, hidden ones included.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestSendFilesRandomAndOverwrite(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	fastTransfers(alice, nil)
	fastTransfers(bob, nil)
	ctx := testCtx(t)
	src := t.TempDir()
	p := randomFile(t, src, "data.bin", 5<<20+12345)
	empty := writeTestFile(t, src, "empty.txt", nil)
	var ups []Progress
	m := sendFilesTo(t, alice, bob, "", []string{p, empty}, &SendOptions{Progress: func(pr Progress) { ups = append(ups, pr) }})
	checkProgress(t, ups, map[string]int64{"data.bin": 5<<20 + 12345, "empty.txt": 0}, PhaseUpload)

	out := t.TempDir()
	var downs []Progress
	saved, err := bob.SaveAttachments(ctx, m.ID, out, &SaveOptions{Progress: func(pr Progress) { downs = append(downs, pr) }})
	if err != nil {
		t.Fatal(err)
	}
	checkProgress(t, downs, map[string]int64{"data.bin": 5<<20 + 12345, "empty.txt": 0}, PhaseDownload)
	if fileDigest(t, saved[0]) != fileDigest(t, p) {
		t.Fatal("saved file differs from the original")
	}
	if fi, err := os.Stat(saved[1]); err != nil || fi.Size() != 0 {
		t.Fatalf("empty file: %v %v", fi, err)
	}

	// A second save is refused and changes nothing.
	os.WriteFile(saved[1], []byte("mine"), 0o600)
	_, err = bob.SaveAttachments(ctx, m.ID, out, nil)
	var fe interface{ Path() string }
	if !errors.Is(err, ErrFileExists) || !errors.As(err, &fe) || fe.Path() != saved[0] {
		t.Fatalf("second save: %v, want ErrFileExists naming %s", err, saved[0])
	}
	if b, _ := os.ReadFile(saved[1]); string(b) != "mine" {
		t.Fatal("a refused save changed a file")
	}
	if got := dirEntries(t, out); len(got) != 2 {
		t.Fatalf("directory holds %q", got)
	}
	// Force overwrites.
	if _, err := bob.SaveAttachments(ctx, m.ID, out, &SaveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(saved[1]); len(b) != 0 {
		t.Fatal("Force did not overwrite")
	}
	// The sender can save its own outgoing message too.
	if _, err := alice.SaveAttachments(ctx, m.ID, t.TempDir(), nil); err != nil {
		t.Fatalf("sender save: %v", err)
	}
	if _, err := bob.SaveAttachments(ctx, "0123456789abcdef", out, nil); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("unknown message: %v", err)
	}
	txt, err := alice.Send(ctx, "bob", "no files")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SaveAttachments(ctx, txt.ID, out, nil); !errors.Is(err, ErrNoAttachments) {
		t.Fatalf("text message: %v", err)
	}
	if _, err := alice.SendFiles(ctx, "bob", "", nil, nil); !errors.Is(err, ErrTooManyFiles) {
		t.Fatalf("no files: %v", err)
	}
}

// checkProgress checks that each file's progress only increases and ends
// at its size.
func checkProgress(t *testing.T, ps []Progress, sizes map[string]int64, phase string) {
	t.Helper()
	last := map[string]int64{}
	seen := map[string]bool{}
	for _, p := range ps {
		if p.Phase != phase {
			t.Fatalf("phase %q, want %q", p.Phase, phase)
		}
		if seen[p.File] && p.Done < last[p.File] {
			t.Fatalf("%s: progress went back from %d to %d", p.File, last[p.File], p.Done)
		}
		if p.Total != sizes[p.File] || p.Done > p.Total {
			t.Fatalf("%s: progress %d of %d, size %d", p.File, p.Done, p.Total, sizes[p.File])
		}
		seen[p.File], last[p.File] = true, p.Done
	}
	for f, size := range sizes {
		if !seen[f] || last[f] != size {
			t.Fatalf("%s: progress ended at %d of %d (reported: %v)", f, last[f], size, seen[f])
		}
	}
}

// blobFiles lists the blob files under the relay's data directory.
func blobFiles(t *testing.T, srv *relaytest.Server) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(srv.DataDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.Contains(filepath.ToSlash(p), "/blobs/") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestSaveTamperedBlob(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	fastTransfers(alice, nil)
	fastTransfers(bob, nil)
	ctx := testCtx(t)
	p := randomFile(t, t.TempDir(), "report.pdf", 300<<10)
	m := sendFilesTo(t, alice, bob, "", []string{p}, nil)
	files := blobFiles(t, srv)
	if len(files) != 1 {
		t.Fatalf("blob files on the relay: %q", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	b[3*protocol.BlobCipherChunkSize+100] ^= 1 // the fourth chunk: three are written first
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	_, err = bob.SaveAttachments(ctx, m.ID, out, nil)
	if !errors.Is(err, ErrAttachmentCorrupt) {
		t.Fatalf("save of a tampered blob: %v, want ErrAttachmentCorrupt", err)
	}
	if !strings.Contains(err.Error(), "report.pdf") {
		t.Errorf("error does not name the file: %v", err)
	}
	if got := dirEntries(t, out); len(got) != 0 {
		t.Fatalf("a failed save left %q", got)
	}
}

// faultyTransport cuts blob transfers short: the i-th PUT body after
// putCuts[i] bytes, the i-th GET response body after getCuts[i] bytes (0:
// no cut). It records the offsets of PUTs and what HEADs answered.
type faultyTransport struct {
	base http.RoundTripper

	mu       sync.Mutex
	putCuts  []int64
	getCuts  []int64
	events   []string // "PUT <offset>", "HEAD <committed>", "PUT-ANSWER <status> <committed>", "GET <range>"
	cutsDone int
}

var errInjected = errors.New("injected connection failure")

func (f *faultyTransport) next(cuts *[]int64) int64 {
	if len(*cuts) == 0 {
		return 0
	}
	c := (*cuts)[0]
	*cuts = (*cuts)[1:]
	return c
}

func (f *faultyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	var cut int64
	switch req.Method {
	case http.MethodPut:
		cut = f.next(&f.putCuts)
		f.events = append(f.events, "PUT "+req.Header.Get(protocol.HTTPHeaderOffset))
		if cut > 0 {
			req = req.Clone(req.Context())
			var fired atomic.Bool
			cr := &cutReader{r: req.Body, left: cut, done: func() { fired.Store(true) }}
			req.Body = cr
			defer func() {
				f.mu.Lock()
				defer f.mu.Unlock()
				if fired.Load() {
					f.cutsDone++
				} else {
					f.putCuts = append([]int64{cut}, f.putCuts...) // refused before the cut: use it next time
				}
			}()
		}
	case http.MethodGet:
		cut = f.next(&f.getCuts)
		f.events = append(f.events, "GET "+req.Header.Get("Range"))
	}
	f.mu.Unlock()
	resp, err := f.base.RoundTrip(req)
	if err != nil && cut > 0 && req.Method == http.MethodPut {
		// Give the relay time to see the connection end and commit what
		// arrived, as a real network's delay would; the client's own
		// backoff is shortened to a millisecond in these tests.
		time.Sleep(50 * time.Millisecond)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	switch req.Method {
	case http.MethodHead:
		f.events = append(f.events, "HEAD "+resp.Header.Get(protocol.HTTPHeaderOffset))
	case http.MethodPut:
		f.events = append(f.events, "PUT-ANSWER "+strconv.Itoa(resp.StatusCode)+" "+resp.Header.Get(protocol.HTTPHeaderOffset))
	case http.MethodGet:
		if cut > 0 {
			resp.Body = &cutReader{r: resp.Body, left: cut, done: func() { f.mu.Lock(); f.cutsDone++; f.mu.Unlock() }}
		}
	}
	return resp, nil
}

type cutReader struct {
	r    io.ReadCloser
	left int64
	done func()
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.done()
		c.done = func() {}
		return 0, errInjected
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *cutReader) Close() error { return c.r.Close() }

func TestTransferResumes(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	const size = 16<<20 + 777
	up := &faultyTransport{base: http.DefaultTransport, putCuts: []int64{3<<20 + 5, 100 << 10, 70000, 5 << 20}}
	down := &faultyTransport{base: http.DefaultTransport, getCuts: []int64{2<<20 + 17, 1 << 20, 65552, 4 << 20}}
	fastTransfers(alice, up)
	fastTransfers(bob, down)
	ctx := testCtx(t)
	p := randomFile(t, t.TempDir(), "video.mp4", size)
	var ups []Progress
	m := sendFilesTo(t, alice, bob, "", []string{p}, &SendOptions{Progress: func(pr Progress) { ups = append(ups, pr) }})
	checkProgress(t, ups, map[string]int64{"video.mp4": size}, PhaseUpload)

	// Every PUT after the first starts exactly where the HEAD before it
	// said the relay had committed, and that is further than the PUT
	// before it started: no finished chunk was sent twice.
	up.mu.Lock()
	events := up.events
	up.mu.Unlock()
	t.Logf("upload: %q", events)
	// No PUT starts before a length the relay reported committed (by a
	// HEAD or a PUT's answer): no finished chunk is sent twice (and the
	// relay refuses any offset but the committed one).
	var puts []int64
	known := int64(0)
	done := false
	for _, e := range events {
		f := strings.Fields(e)
		switch f[0] {
		case "HEAD":
			n, _ := strconv.ParseInt(f[1], 10, 64)
			known = max(known, n)
		case "PUT":
			off, _ := strconv.ParseInt(f[1], 10, 64)
			if off < known {
				t.Fatalf("PUT at %d after the relay reported %d committed", off, known)
			}
			puts = append(puts, off)
		case "PUT-ANSWER":
			if len(f) == 3 {
				n, _ := strconv.ParseInt(f[2], 10, 64)
				known = max(known, n)
				done = f[1] == "204" && n == attach.CipherSize(size)
			}
		}
	}
	up.mu.Lock()
	cutsDone := up.cutsDone
	up.mu.Unlock()
	if !done || cutsDone != 4 || len(puts) < 5 {
		t.Fatalf("%d PUTs at %v, %d cuts, finished %v", len(puts), puts, cutsDone, done)
	}

	var downs []Progress
	out := t.TempDir()
	saved, err := bob.SaveAttachments(ctx, m.ID, out, &SaveOptions{Progress: func(pr Progress) { downs = append(downs, pr) }})
	if err != nil {
		t.Fatal(err)
	}
	checkProgress(t, downs, map[string]int64{"video.mp4": size}, PhaseDownload)
	if fileDigest(t, saved[0]) != fileDigest(t, p) {
		t.Fatal("saved file differs")
	}
	down.mu.Lock()
	events, cuts := down.events, down.cutsDone
	down.mu.Unlock()
	t.Logf("download: %q", events)
	if cuts != 4 || len(events) != 5 || events[0] != "GET " || !strings.HasPrefix(events[1], "GET bytes=") {
		t.Fatalf("download requests %q (%d cuts)", events, cuts)
	}
	want := int64(0)
	for i, cut := range []int64{2<<20 + 17, 1 << 20, 65552, 4 << 20} {
		want += cut
		if events[i+1] != "GET bytes="+strconv.FormatInt(want, 10)+"-" {
			t.Fatalf("request %d: %q, want a range from %d", i+1, events[i+1], want)
		}
	}
	if got := dirEntries(t, out); len(got) != 1 {
		t.Fatalf("directory holds %q", got)
	}
}

// A download that keeps failing gives up and leaves nothing behind.
func TestSaveGivesUp(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	fastTransfers(alice, nil)
	cuts := make([]int64, 50)
	for i := range cuts {
		cuts[i] = 1000 // less than a chunk: no attempt gets a chunk further
	}
	fastTransfers(bob, &faultyTransport{base: http.DefaultTransport, getCuts: cuts})
	m := sendFilesTo(t, alice, bob, "", []string{randomFile(t, t.TempDir(), "a.bin", 1<<20)}, nil)
	out := t.TempDir()
	_, err := bob.SaveAttachments(testCtx(t), m.ID, out, nil)
	if err == nil || !strings.Contains(err.Error(), "in a row") {
		t.Fatalf("err = %v", err)
	}
	if got := dirEntries(t, out); len(got) != 0 {
		t.Fatalf("a failed save left %q", got)
	}
}

func TestBlobURL(t *testing.T) {
	t.Parallel()
	var id protocol.BlobID
	id[0] = 0xab
	for relay, want := range map[string]string{
		"ws://127.0.0.1:8080":             "http://127.0.0.1:8080/v1/blobs/ab" + strings.Repeat("00", 31),
		"wss://relay.example.org/postern": "https://relay.example.org/postern/v1/blobs/ab" + strings.Repeat("00", 31),
	} {
		got, err := blobURL(relay, id)
		if err != nil || got != want {
			t.Errorf("blobURL(%q) = %q, %v", relay, got, err)
		}
	}
	if _, err := blobURL("http://x", id); err == nil {
		t.Error("http relay URL accepted")
	}
}

func TestResponseError(t *testing.T) {
	t.Parallel()
	resp := &http.Response{StatusCode: 404, Header: http.Header{protocol.HTTPHeaderError: {"72"}}, Body: io.NopCloser(strings.NewReader("no such blob\x1b[2J\nsecond line"))}
	err := responseError(resp)
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeUnknownBlob || pe.Msg != "no such blob[2J" {
		t.Fatalf("responseError = %#v", err)
	}
	if retryable(context.Background(), err) {
		t.Error("unknown blob is retryable")
	}
	if !retryable(context.Background(), &protocol.Error{Code: protocol.CodeBlobOffset}) || !retryable(context.Background(), io.ErrUnexpectedEOF) {
		t.Error("offset mismatch or a cut connection is not retryable")
	}
}
