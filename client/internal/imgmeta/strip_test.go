package imgmeta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus")

// Marker strings planted in metadata; none may survive stripping.
const (
	gpsMarker     = "GPS-SECRET-48.8584N-2.2945E"
	cameraMarker  = "CAMERA-SECRET-Model-X"
	commentMarker = "COMMENT-SECRET"
	xmpMarker     = "http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>XMP-SECRET</x:xmpmeta>"
	iptcMarker    = "Photoshop 3.0\x008BIM IPTC-SECRET"
	textMarker    = "TEXT-SECRET"
	thumbMarker   = "THUMB-SECRET"
)

func testImage() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 32, 24))
	for y := range 24 {
		for x := range 32 {
			img.Set(x, y, color.RGBA{uint8(x * 8), uint8(y * 10), uint8(x * y), 255})
		}
	}
	return img
}

func segment(m byte, payload []byte) []byte {
	b := []byte{0xff, m}
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload)+2))
	return append(b, payload...)
}

// exifPayload builds an Exif APP1 payload (little-endian TIFF, as most
// cameras write) with IFD0 = Make, Orientation and a GPS IFD pointer, and a
// GPS IFD holding an ASCII latitude marker.
func exifPayload(orientation uint16) []byte {
	le := binary.LittleEndian
	t := []byte("II\x2a\x00\x08\x00\x00\x00")
	const ifd0Entries = 3
	makeOff := 8 + 2 + 12*ifd0Entries + 4
	gpsOff := makeOff + len(cameraMarker) + 1
	gpsStrOff := gpsOff + 2 + 12 + 4
	entry := func(tag, typ uint16, count, value uint32) {
		t = le.AppendUint16(t, tag)
		t = le.AppendUint16(t, typ)
		t = le.AppendUint32(t, count)
		t = le.AppendUint32(t, value)
	}
	t = le.AppendUint16(t, ifd0Entries)
	entry(0x010f, 2, uint32(len(cameraMarker)+1), uint32(makeOff)) // Make
	entry(0x0112, 3, 1, uint32(orientation))                       // Orientation (SHORT, left-justified)
	entry(0x8825, 4, 1, uint32(gpsOff))                            // GPS IFD pointer
	t = le.AppendUint32(t, 0)
	t = append(t, cameraMarker+"\x00"...)
	t = le.AppendUint16(t, 1)
	entry(0x0002, 2, uint32(len(gpsMarker)+1), uint32(gpsStrOff)) // GPSLatitude (as text: a marker)
	t = le.AppendUint32(t, 0)
	t = append(t, gpsMarker+"\x00"...)
	return append([]byte("Exif\x00\x00"), t...)
}

var iccPayload = append([]byte("ICC_PROFILE\x00\x01\x01"), bytes.Repeat([]byte("icc-colour-data"), 20)...)

// dirtyJPEG is a JPEG from image/jpeg with metadata injected after SOI:
// JFIF with a thumbnail, Exif (GPS, camera, orientation 6), XMP, ICC,
// IPTC, a COM segment, an APP14 that is not Adobe's, fill bytes, and a
// trailer after EOI.
func dirtyJPEG(t testing.TB) (dirty, clean []byte) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, testImage(), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	clean = buf.Bytes()
	jfif := append([]byte("JFIF\x00\x01\x02\x00\x00\x48\x00\x48\x01\x01"), thumbMarker[:3]...)
	var d []byte
	d = append(d, clean[:2]...)
	d = append(d, segment(0xe0, jfif)...)
	d = append(d, segment(0xe1, exifPayload(6))...)
	d = append(d, segment(0xe1, []byte(xmpMarker))...)
	d = append(d, 0xff, 0xff) // fill bytes before the next marker
	d = append(d, segment(0xe2, iccPayload)...)
	d = append(d, segment(0xed, []byte(iptcMarker))...)
	d = append(d, segment(0xfe, []byte(commentMarker))...)
	d = append(d, segment(0xee, []byte("NotAdobe"+thumbMarker))...)
	d = append(d, clean[2:]...)
	d = append(d, "TRAILER "+gpsMarker...)
	return d, clean
}

func stripOK(t testing.TB, mt string, in []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	ok, err := Strip(mt, bytes.NewReader(in), &out)
	if err != nil || !ok {
		t.Fatalf("Strip(%s): %v, %v", mt, ok, err)
	}
	return out.Bytes()
}

func samePixels(t *testing.T, a, b []byte) {
	t.Helper()
	ia, _, err := image.Decode(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	ib, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("stripped image does not decode: %v", err)
	}
	if ia.Bounds() != ib.Bounds() {
		t.Fatal("bounds differ")
	}
	for y := ia.Bounds().Min.Y; y < ia.Bounds().Max.Y; y++ {
		for x := ia.Bounds().Min.X; x < ia.Bounds().Max.X; x++ {
			if ia.At(x, y) != ib.At(x, y) {
				t.Fatalf("pixel %d,%d differs", x, y)
			}
		}
	}
}

func TestStripJPEG(t *testing.T) {
	dirty, clean := dirtyJPEG(t)
	out := stripOK(t, "image/JPEG; q=1", dirty)
	for _, m := range []string{gpsMarker, cameraMarker, commentMarker, "XMP-SECRET", "IPTC-SECRET", thumbMarker[:3], "TRAILER", "NotAdobe"} {
		if bytes.Contains(out, []byte(m)) {
			t.Errorf("%q survived", m)
		}
	}
	if !bytes.Contains(out, segment(0xe2, iccPayload)) {
		t.Error("ICC profile segment not kept byte for byte")
	}
	if !bytes.Contains(out, segment(0xe0, []byte("JFIF\x00\x01\x02\x00\x00\x48\x00\x48\x00\x00"))) {
		t.Error("JFIF segment not kept without its thumbnail")
	}
	if !bytes.Contains(out, segment(0xe1, minimalExif(nil, 6))) {
		t.Error("orientation not kept")
	}
	// Everything from the encoder (tables, frame, scan) is kept as is.
	if !bytes.HasSuffix(out, clean[2:]) {
		t.Error("image segments and entropy-coded data not kept byte for byte")
	}
	samePixels(t, dirty, out)
	if again := stripOK(t, JPEG, out); !bytes.Equal(again, out) {
		t.Error("stripping is not idempotent")
	}
	// A plain encoder output has nothing to strip.
	if got := stripOK(t, JPEG, clean); !bytes.Equal(got, clean) {
		t.Error("clean JPEG changed")
	}
}

func TestStripJPEGKeepsAdobeAndProgressive(t *testing.T) {
	_, clean := dirtyJPEG(t)
	adobe := segment(0xee, []byte("Adobe\x00\x64\x00\x00\x00\x00\x01"))
	in := append(append(append([]byte{}, clean[:2]...), adobe...), clean[2:]...)
	if out := stripOK(t, JPEG, in); !bytes.Equal(out, in) {
		t.Error("Adobe APP14 (colour transform) was not kept")
	}
	// Restart markers and stuffed bytes inside a scan, several scans.
	scan := []byte{0xff, 0xd8}
	scan = append(scan, segment(0xda, []byte{1, 1, 0, 0, 63, 0})...)
	scan = append(scan, 0x12, 0xff, 0x00, 0x34, 0xff, 0xd0, 0x56, 0xff, 0xff, 0xd1, 0x78)
	scan = append(scan, segment(0xfe, []byte(commentMarker))...)
	scan = append(scan, segment(0xda, []byte{1, 1, 0, 0, 63, 0})...)
	scan = append(scan, 0x9a, 0xff, 0xd9)
	want := []byte{0xff, 0xd8}
	want = append(want, segment(0xda, []byte{1, 1, 0, 0, 63, 0})...)
	want = append(want, 0x12, 0xff, 0x00, 0x34, 0xff, 0xd0, 0x56, 0xff, 0xd1, 0x78)
	want = append(want, segment(0xda, []byte{1, 1, 0, 0, 63, 0})...)
	want = append(want, 0x9a, 0xff, 0xd9)
	if out := stripOK(t, JPEG, scan); !bytes.Equal(out, want) {
		t.Errorf("scan handling:\n got %x\nwant %x", out, want)
	}
}

func chunk(typ string, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	b = append(b, typ...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[4:]))
}

// dirtyPNG is a PNG from image/png with tEXt, zTXt, iTXt, eXIf and tIME
// chunks, an sRGB chunk that must stay, and a trailer after IEND.
func dirtyPNG(t testing.TB) (dirty, srgb []byte) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, testImage()); err != nil {
		t.Fatal(err)
	}
	clean := buf.Bytes()
	ihdrEnd := 8 + 8 + 13 + 4
	srgb = chunk("sRGB", []byte{0})
	var d []byte
	d = append(d, clean[:ihdrEnd]...)
	d = append(d, chunk("tEXt", []byte("Comment\x00"+textMarker))...)
	d = append(d, srgb...)
	d = append(d, chunk("eXIf", exifPayload(1)[6:])...)
	d = append(d, chunk("tIME", []byte{0x07, 0xea, 3, 1, 12, 0, 0})...)
	d = append(d, clean[ihdrEnd:len(clean)-12]...) // IDAT chunks
	d = append(d, chunk("iTXt", []byte("XML:com.adobe.xmp\x00\x00\x00\x00\x00<x>XMP-SECRET</x>"))...)
	d = append(d, chunk("zTXt", []byte("Author\x00\x00x-compressed-"+textMarker))...)
	d = append(d, clean[len(clean)-12:]...) // IEND
	d = append(d, "TRAILER"...)
	return d, srgb
}

func TestStripPNG(t *testing.T) {
	dirty, srgb := dirtyPNG(t)
	out := stripOK(t, PNG, dirty)
	for _, m := range []string{textMarker, gpsMarker, cameraMarker, "XMP-SECRET", "tIME", "tEXt", "iTXt", "zTXt", "eXIf", "TRAILER"} {
		if bytes.Contains(out, []byte(m)) {
			t.Errorf("%q survived", m)
		}
	}
	if !bytes.Contains(out, srgb) {
		t.Error("sRGB chunk not kept")
	}
	samePixels(t, dirty, out)
	if again := stripOK(t, PNG, out); !bytes.Equal(again, out) {
		t.Error("stripping is not idempotent")
	}
}

func TestStripMalformed(t *testing.T) {
	dj, _ := dirtyJPEG(t)
	dp, _ := dirtyPNG(t)
	badCRC := bytes.Clone(dp)
	badCRC[8+8+13] ^= 1 // IHDR's CRC
	for _, tc := range []struct {
		name, mt string
		in       []byte
	}{
		{"jpeg-empty", JPEG, nil},
		{"jpeg-not-jpeg", JPEG, dp},
		{"jpeg-truncated-segment", JPEG, dj[:10]},
		{"jpeg-no-eoi", JPEG, dj[:len(dj)-len("TRAILER "+gpsMarker)-2]},
		{"jpeg-short-length", JPEG, []byte{0xff, 0xd8, 0xff, 0xe0, 0x00, 0x01}},
		{"jpeg-garbage-between", JPEG, []byte{0xff, 0xd8, 0x00, 0xff, 0xd9}},
		{"png-empty", PNG, nil},
		{"png-not-png", PNG, dj},
		{"png-bad-crc", PNG, badCRC},
		{"png-truncated", PNG, dp[:len(dp)/2]},
		{"png-no-ihdr", PNG, append([]byte(string(pngMagic)), chunk("IEND", nil)...)},
		{"png-huge-length", PNG, append([]byte(string(pngMagic)), 0xff, 0xff, 0xff, 0xff, 'I', 'H', 'D', 'R')},
		{"png-bad-type", PNG, append([]byte(string(pngMagic)), chunk("IH\x00R", nil)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := Strip(tc.mt, bytes.NewReader(tc.in), io.Discard)
			if !errors.Is(err, ErrMalformed) || ok {
				t.Fatalf("got %v, %v; want ErrMalformed", ok, err)
			}
		})
	}
}

func TestStripOtherTypes(t *testing.T) {
	dj, _ := dirtyJPEG(t)
	for _, mt := range []string{"image/gif", "application/pdf", "", "not a type;;"} {
		var out bytes.Buffer
		ok, err := Strip(mt, bytes.NewReader(dj), &out)
		if err != nil || ok || !bytes.Equal(out.Bytes(), dj) {
			t.Errorf("%q: not copied unchanged (%v, %v)", mt, ok, err)
		}
	}
}

func TestSniff(t *testing.T) {
	dj, _ := dirtyJPEG(t)
	dp, _ := dirtyPNG(t)
	for _, tc := range []struct {
		in   []byte
		want string
	}{{dj, JPEG}, {dp, PNG}, {[]byte("GIF89a"), ""}, {nil, ""}, {[]byte{0xff, 0xd8}, ""}} {
		if got := Sniff(tc.in); got != tc.want {
			t.Errorf("Sniff(%x...) = %q, want %q", tc.in[:min(len(tc.in), 4)], got, tc.want)
		}
	}
}

// TestStripConstantMemory strips a 64 MiB PNG (generated on the fly, never
// held in memory) and bounds the bytes allocated.
func TestStripConstantMemory(t *testing.T) {
	const idats = 1024
	const budget = 1 << 20
	src := io.MultiReader(bytes.NewReader([]byte(string(pngMagic))), bytes.NewReader(chunk("IHDR", make([]byte, 13))),
		&repeatReader{b: chunk("IDAT", bytes.Repeat([]byte{7}, 64<<10)), n: idats}, bytes.NewReader(chunk("IEND", nil)))
	before := totalAlloc()
	cw := &countWriter{}
	if _, err := Strip(PNG, src, cw); err != nil {
		t.Fatal(err)
	}
	alloc := totalAlloc() - before
	t.Logf("stripped %d MiB with %d bytes allocated (budget %d)", cw.n>>20, alloc, budget)
	if alloc > budget {
		t.Fatalf("allocated %d bytes", alloc)
	}
}

type repeatReader struct {
	b   []byte
	n   int
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	c := copy(p, r.b[r.off:])
	if r.off += c; r.off == len(r.b) {
		r.off, r.n = 0, r.n-1
	}
	return c, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
