package link

import (
	"image"
	"image/color"
	"strings"
	"testing"

	qr "github.com/piglig/go-qr"
)

// parseRendering turns WriteQR's output back into the framed module
// matrix (true = dark module), undoing the ink convention of opts.
func parseRendering(t *testing.T, out string, opts QROptions) [][]bool {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var rows [][]bool
	dark := func(ink bool) bool { return ink == opts.DarkOnLight }
	if opts.ASCII {
		for _, l := range lines {
			if len(l)%2 != 0 {
				t.Fatalf("ASCII line of odd width %d", len(l))
			}
			var row []bool
			for i := 0; i < len(l); i += 2 {
				switch l[i : i+2] {
				case "##":
					row = append(row, dark(true))
				case "  ":
					row = append(row, dark(false))
				default:
					t.Fatalf("unexpected cell %q", l[i:i+2])
				}
			}
			rows = append(rows, row)
		}
		return rows
	}
	for _, l := range lines {
		var top, bottom []bool
		for _, r := range l {
			var a, b bool
			switch r {
			case '█':
				a, b = true, true
			case '▀':
				a = true
			case '▄':
				b = true
			case ' ':
			default:
				t.Fatalf("unexpected character %q", r)
			}
			top, bottom = append(top, dark(a)), append(bottom, dark(b))
		}
		rows = append(rows, top, bottom)
	}
	// The last text line's lower half lies below the symbol: drop it.
	return rows[:len(rows)-1]
}

func TestQRRendering(t *testing.T) {
	text := testCode(t).Text()
	code, err := qr.EncodeText(text, qr.Low)
	if err != nil {
		t.Fatal(err)
	}
	size := code.Size()
	if (size-17)%4 != 0 || size < 21 || size > 177 {
		t.Fatalf("symbol size %d is not 17 + 4·version", size)
	}
	version := (size - 17) / 4
	// SPEC section 13.1: a code with a 23-byte relay URL is 129
	// characters, version 6 (134 bytes at level L), 41 × 41 modules.
	if len(text) != 129 || version != 6 {
		t.Fatalf("a %d-byte code gives version %d", len(text), version)
	}
	for _, opts := range []QROptions{{}, {DarkOnLight: true}, {ASCII: true}, {ASCII: true, DarkOnLight: true}} {
		var b strings.Builder
		if err := WriteQR(&b, text, opts); err != nil {
			t.Fatal(err)
		}
		m := parseRendering(t, b.String(), opts)
		full := size + 2*QuietZone
		if len(m) != full {
			t.Fatalf("%+v: %d rows, want %d", opts, len(m), full)
		}
		for y, row := range m {
			if len(row) != full {
				t.Fatalf("%+v: row %d has %d modules, want %d", opts, y, len(row), full)
			}
			for x, d := range row {
				sx, sy := x-QuietZone, y-QuietZone
				inside := sx >= 0 && sy >= 0 && sx < size && sy < size
				if !inside && d {
					t.Fatalf("%+v: dark module in the quiet zone at (%d,%d)", opts, x, y)
				}
				if inside && d != code.Module(sx, sy) {
					t.Fatalf("%+v: module (%d,%d) drawn %v, encoder has %v", opts, sx, sy, d, code.Module(sx, sy))
				}
			}
		}
		// Finder patterns at three corners: a dark 7×7 ring, a light
		// ring, a dark 3×3 centre, and a light separator around them.
		for _, c := range [][2]int{{0, 0}, {size - 7, 0}, {0, size - 7}} {
			for dy := -1; dy <= 7; dy++ {
				for dx := -1; dx <= 7; dx++ {
					x, y := c[0]+dx, c[1]+dy
					ring := max(abs(dx-3), abs(dy-3))
					want := ring != 2 && ring != 4
					if got := m[y+QuietZone][x+QuietZone]; got != want {
						t.Fatalf("%+v: finder at %v: module (%d,%d) is %v, want %v", opts, c, x, y, got, want)
					}
				}
			}
		}
		// The fourth corner has no finder pattern.
		if hasFinder(m, size-7+QuietZone, size-7+QuietZone) {
			t.Fatalf("%+v: a finder pattern at the bottom-right corner", opts)
		}
		// And the drawing decodes back to the text (the library's decoder
		// reads an image made from what was drawn, not the encoder's matrix).
		img := image.NewGray(image.Rect(0, 0, full*4, full*4))
		for y := range full * 4 {
			for x := range full * 4 {
				if m[y/4][x/4] {
					img.SetGray(x, y, color.Gray{0})
				} else {
					img.SetGray(x, y, color.Gray{255})
				}
			}
		}
		got, err := qr.Decode(img)
		if err != nil || got != text {
			t.Fatalf("%+v: decoded %q, %v; want the code", opts, got, err)
		}
	}
}

func hasFinder(m [][]bool, x0, y0 int) bool {
	for dy := range 7 {
		for dx := range 7 {
			ring := max(abs(dx-3), abs(dy-3))
			if m[y0+dy][x0+dx] != (ring != 2) {
				return false
			}
		}
	}
	return true
}

func abs(x int) int { return max(x, -x) }

func TestQRTooLong(t *testing.T) {
	var b strings.Builder
	if err := WriteQR(&b, strings.Repeat("x", 4000), QROptions{}); err == nil || b.Len() != 0 {
		t.Fatalf("a 4000-byte text: err %v, %d bytes written", err, b.Len())
	}
}
