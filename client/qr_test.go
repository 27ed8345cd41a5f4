package client

import (
	"bytes"
	"image/png"
	"strings"
	"testing"

	qr "github.com/piglig/go-qr"
)

// QRCodePNG draws a PNG that reads back as the text, with a whole number
// of modules of qrScale pixels: a QR version's size and the quiet zone.
func TestQRCodePNG(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		SafetyNumberQR("45371 38314 46842 38863 50993 27760 84626 94925 36715 65264 58813 82481"),
		"postern-link:" + strings.Repeat("A", 150),
	} {
		b, err := QRCodePNG(text)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("not a PNG: %v", err)
		}
		w, h := img.Bounds().Dx(), img.Bounds().Dy()
		modules := w/qrScale - 2*qrBorder
		if w != h || w%qrScale != 0 || (modules-17)%4 != 0 || modules < 21 {
			t.Fatalf("%d×%d pixels: not a QR code of %d-pixel modules with its quiet zone", w, h, qrScale)
		}
		got, err := qr.Decode(img)
		if err != nil || got != text {
			t.Fatalf("reads back as %q, %v; want %q", got, err, text)
		}
	}
	if _, err := QRCodePNG(strings.Repeat("x", 4000)); err == nil {
		t.Fatal("a text too long for any QR version was drawn")
	}
}
