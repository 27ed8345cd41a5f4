package link

import (
	"fmt"
	"io"
	"strings"

	qr "github.com/piglig/go-qr"
)

// QuietZone is the light margin, in modules, drawn around a QR code: the
// four modules ISO/IEC 18004 requires for a scanner to find the symbol.
const QuietZone = 4

// QROptions choose how WriteQR draws. The zero value draws Unicode half
// blocks for a terminal with light text on a dark background.
type QROptions struct {
	// ASCII draws each module as two characters ("##" or two spaces), one
	// text line per module row, for terminals and fonts without the
	// Unicode block characters. Default: Unicode half blocks, two module
	// rows per text line.
	ASCII bool
	// DarkOnLight is for terminals with dark text on a light background:
	// dark modules are drawn in the text colour. Default (false): the text
	// colour is taken to be light, so light modules and the quiet zone are
	// drawn as ink and dark modules are left to the dark background. Either
	// way the scanner sees dark modules darker than light ones.
	DarkOnLight bool
}

// WriteQR writes text as a QR code (byte mode, error correction level L
// or higher when it fits in the same version, the version the text
// needs) to w, with a QuietZone margin on every side, and a newline after
// every line.
func WriteQR(w io.Writer, text string, opts QROptions) error {
	code, err := qr.EncodeText(text, qr.Low)
	if err != nil {
		return fmt.Errorf("link: QR code: %w", err)
	}
	_, err = io.WriteString(w, renderQR(code.Size(), code.Module, opts))
	return err
}

// renderQR draws a size×size module matrix (dark(x, y) reports a dark
// module) with the quiet zone. Positions outside the symbol are light.
func renderQR(size int, dark func(x, y int) bool, opts QROptions) string {
	full := size + 2*QuietZone
	// ink reports whether the module at (x, y) of the framed matrix is
	// drawn with the text colour.
	ink := func(x, y int) bool {
		x, y = x-QuietZone, y-QuietZone
		d := x >= 0 && y >= 0 && x < size && y < size && dark(x, y)
		return d == opts.DarkOnLight
	}
	var b strings.Builder
	if opts.ASCII {
		for y := range full {
			for x := range full {
				if ink(x, y) {
					b.WriteString("##")
				} else {
					b.WriteString("  ")
				}
			}
			b.WriteByte('\n')
		}
		return b.String()
	}
	// Two module rows per line: the upper half block is row y, the lower
	// row y+1; an odd last row has nothing (no ink) below it.
	for y := 0; y < full; y += 2 {
		for x := range full {
			top := ink(x, y)
			bottom := y+1 < full && ink(x, y+1)
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}
