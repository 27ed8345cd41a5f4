package client

import (
	"fmt"

	qr "github.com/piglig/go-qr"
)

// QR codes for front-ends that draw images rather than text (WriteLinkQR
// draws for a terminal): a link code, or a safety number's
// SafetyNumberQR.
const (
	qrScale  = 6 // pixels per module: a phone's camera reads it from a screen
	qrBorder = 4 // the quiet zone ISO/IEC 18004 requires, in modules
)

// QRCodePNG draws text as a QR code in a PNG image: byte mode, error
// correction level M or higher where it fits the same version, 6 pixels
// per module, with a 4-module quiet zone.
func QRCodePNG(text string) ([]byte, error) {
	code, err := qr.EncodeText(text, qr.Medium)
	if err != nil {
		return nil, fmt.Errorf("client: QR code: %w", err)
	}
	return code.ToPNGBytes(qr.NewQrCodeImgConfig(qrScale, qrBorder))
}
