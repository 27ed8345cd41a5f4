package ui

import (
	"fmt"
	"net/http"
	"strconv"

	qr "github.com/piglig/go-qr"
)

// QR codes the page shows: a contact's safety number
// (client.SafetyNumberQR) and a link code. They are drawn here, as PNG
// images the page loads from the API like any content (no-store, behind
// the session), so that the page needs no script of another origin.
const (
	qrScale  = 6 // pixels per module: a phone's camera reads it from a screen
	qrBorder = 4 // the quiet zone ISO/IEC 18004 requires, in modules
)

// qrPNG draws text as a QR code: byte mode, error correction level M or
// higher when it fits in the same version.
func qrPNG(text string) ([]byte, error) {
	code, err := qr.EncodeText(text, qr.Medium)
	if err != nil {
		return nil, fmt.Errorf("ui: QR code: %w", err)
	}
	return code.ToPNGBytes(qr.NewQrCodeImgConfig(qrScale, qrBorder))
}

// writeQR answers with text drawn as a QR code (Cache-Control: no-store
// is set on every answer by ServeHTTP).
func writeQR(w http.ResponseWriter, text string) {
	png, err := qrPNG(text)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "the QR code could not be drawn", "")
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Content-Length", strconv.Itoa(len(png)))
	w.WriteHeader(http.StatusOK)
	w.Write(png)
}
