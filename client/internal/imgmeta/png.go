package imgmeta

import (
	"bufio"
	"encoding/binary"
	"hash/crc32"
	"io"
)

// pngDrop are the chunk types removed: text (with XMP), Exif, and the
// last-modification time.
var pngDrop = map[string]bool{"tEXt": true, "zTXt": true, "iTXt": true, "eXIf": true, "tIME": true}

// maxPNGChunk is the largest chunk length PNG allows (2^31 - 1).
const maxPNGChunk = 1<<31 - 1

// stripPNG walks the chunks from the signature to IEND, verifying every
// CRC, and copies all but the dropped ones unchanged.
func stripPNG(r *bufio.Reader, w *bufio.Writer) error {
	var sig [8]byte
	if _, err := io.ReadFull(r, sig[:]); err != nil || string(sig[:]) != string(pngMagic) {
		return malformed("no PNG signature")
	}
	w.Write(sig[:])
	buf := make([]byte, 32<<10)
	crc := crc32.NewIEEE()
	for first := true; ; first = false {
		var h [8]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return readErr(err, "a chunk header (no IEND)")
		}
		n := int64(binary.BigEndian.Uint32(h[:4]))
		typ := string(h[4:])
		if n > maxPNGChunk {
			return malformed("chunk length %d", n)
		}
		for _, c := range h[4:] {
			if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
				return malformed("chunk type is not four letters")
			}
		}
		if first != (typ == "IHDR") {
			return malformed("IHDR is not the first chunk")
		}
		if typ == "IEND" && n != 0 {
			return malformed("IEND with data")
		}
		keep := !pngDrop[typ]
		var out io.Writer = crc
		if keep {
			w.Write(h[:])
			out = io.MultiWriter(crc, w)
		}
		crc.Reset()
		crc.Write(h[4:])
		if err := copyN(out, r, n, buf, "a chunk"); err != nil {
			return err
		}
		var sum [4]byte
		if _, err := io.ReadFull(r, sum[:]); err != nil {
			return readErr(err, "a chunk CRC")
		}
		if binary.BigEndian.Uint32(sum[:]) != crc.Sum32() {
			return malformed("CRC mismatch in a %q chunk", typ)
		}
		if keep {
			w.Write(sum[:])
		}
		if typ == "IEND" {
			return nil
		}
	}
}
