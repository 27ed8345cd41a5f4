package ui

import (
	"net/http"
	"strconv"

	"github.com/postern/postern/client"
)

// writeQR answers with text drawn as a QR code, a PNG image the page
// loads from the API like any content (behind the session, and
// Cache-Control: no-store as ServeHTTP sets on every answer), so that the
// page needs no script of another origin to draw it.
func writeQR(w http.ResponseWriter, text string) {
	png, err := client.QRCodePNG(text)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "the QR code could not be drawn", "")
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Content-Length", strconv.Itoa(len(png)))
	w.WriteHeader(http.StatusOK)
	w.Write(png)
}
