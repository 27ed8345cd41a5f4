package imgmeta

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
)

// JPEG markers (ITU T.81 table B.1) that matter here.
const (
	mSOI   = 0xd8
	mEOI   = 0xd9
	mSOS   = 0xda
	mRST0  = 0xd0
	mRST7  = 0xd7
	mTEM   = 0x01
	mAPP0  = 0xe0
	mAPP1  = 0xe1
	mAPP2  = 0xe2
	mAPP14 = 0xee
	mAPP15 = 0xef
	mCOM   = 0xfe
)

var (
	jfifID  = []byte("JFIF\x00")
	exifID  = []byte("Exif\x00\x00")
	iccID   = []byte("ICC_PROFILE\x00")
	adobeID = []byte("Adobe")
)

// stripJPEG walks the marker segments from SOI to EOI. Segments are read
// whole into one 64 KiB buffer (a segment length is 16 bits); entropy-coded
// data after each SOS is streamed.
func stripJPEG(r *bufio.Reader, w *bufio.Writer) error {
	var soi [2]byte
	if _, err := io.ReadFull(r, soi[:]); err != nil || soi[0] != 0xff || soi[1] != mSOI {
		return malformed("no JPEG SOI marker")
	}
	w.Write(soi[:])
	seg := make([]byte, 0xffff)
	exifDone := false
	var m byte
	var err error
	pending := false // m holds a marker already read at the end of a scan
	for {
		if !pending {
			if m, err = nextMarker(r); err != nil {
				return err
			}
		}
		pending = false
		switch {
		case m == mEOI:
			w.Write([]byte{0xff, mEOI})
			return nil
		case m == mSOI || m == 0x00:
			return malformed("unexpected marker 0x%02x", m)
		case m == mTEM || (m >= mRST0 && m <= mRST7):
			w.Write([]byte{0xff, m}) // no length; harmless outside a scan
			continue
		}
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return readErr(err, "a segment length")
		}
		n := int(binary.BigEndian.Uint16(l[:]))
		if n < 2 {
			return malformed("segment 0x%02x of length %d", m, n)
		}
		p := seg[:n-2]
		if _, err := io.ReadFull(r, p); err != nil {
			return readErr(err, "a segment")
		}
		if out, keep := jpegKeep(m, p, &exifDone); keep {
			w.Write([]byte{0xff, m})
			w.Write(binary.BigEndian.AppendUint16(l[:0], uint16(len(out)+2)))
			w.Write(out)
		}
		if m == mSOS {
			if m, err = copyScan(r, w); err != nil {
				return err
			}
			pending = true
		}
	}
}

// nextMarker reads a marker between segments: 0xFF, any fill bytes 0xFF
// (dropped), and the marker code.
func nextMarker(r *bufio.Reader) (byte, error) {
	b, err := r.ReadByte()
	if err != nil {
		return 0, readErr(err, "the marker stream (no EOI)")
	}
	if b != 0xff {
		return 0, malformed("byte 0x%02x where a marker must be", b)
	}
	for {
		if b, err = r.ReadByte(); err != nil {
			return 0, readErr(err, "a marker")
		}
		if b != 0xff {
			return b, nil
		}
	}
}

// copyScan copies entropy-coded data, with its stuffed 0xFF00 bytes and
// RSTn markers, up to the next other marker, which it returns (the caller
// writes that marker if it keeps it). Fill bytes before a marker are dropped.
func copyScan(r *bufio.Reader, w *bufio.Writer) (byte, error) {
	for {
		data, err := r.ReadSlice(0xff)
		if err == bufio.ErrBufferFull {
			w.Write(data)
			continue
		}
		if err != nil {
			return 0, readErr(err, "entropy-coded data (no EOI)")
		}
		w.Write(data[:len(data)-1])
		m, err := r.ReadByte()
		for err == nil && m == 0xff {
			m, err = r.ReadByte()
		}
		if err != nil {
			return 0, readErr(err, "entropy-coded data")
		}
		if m != 0x00 && (m < mRST0 || m > mRST7) {
			return m, nil
		}
		w.Write([]byte{0xff, m})
	}
}

// jpegKeep decides what to do with a segment: drop it, keep it as is, or
// (JFIF, Exif) keep a rewritten form that holds no metadata.
func jpegKeep(m byte, p []byte, exifDone *bool) (out []byte, keep bool) {
	switch {
	case m == mAPP0:
		// JFIF: keep version, units and density; drop the thumbnail.
		if bytes.HasPrefix(p, jfifID) && len(p) >= 14 {
			p[12], p[13] = 0, 0
			return p[:14], true
		}
		return nil, false // JFXX thumbnails and anything else
	case m == mAPP1:
		if *exifDone || !bytes.HasPrefix(p, exifID) {
			return nil, false
		}
		o := exifOrientation(p[len(exifID):])
		if o == 0 {
			return nil, false
		}
		*exifDone = true
		return minimalExif(p[:0], o), true
	case m == mAPP2:
		return p, bytes.HasPrefix(p, iccID)
	case m == mAPP14:
		return p, len(p) == 12 && bytes.HasPrefix(p, adobeID)
	case m > mAPP2 && m <= mAPP15, m == mCOM:
		return nil, false
	}
	return p, true
}

// exifOrientation returns the Orientation tag (0x0112) of IFD0 of a TIFF
// structure if it is a valid value 1..8, else 0. Every offset is checked.
func exifOrientation(t []byte) uint16 {
	if len(t) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0
	}
	if bo.Uint16(t[2:]) != 42 {
		return 0
	}
	off := int64(bo.Uint32(t[4:]))
	if off < 8 || off+2 > int64(len(t)) {
		return 0
	}
	n := int64(bo.Uint16(t[off:]))
	for i := range n {
		e := off + 2 + 12*i
		if e+12 > int64(len(t)) {
			return 0
		}
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		if bo.Uint16(t[e+2:]) != 3 || bo.Uint32(t[e+4:]) != 1 { // SHORT, count 1
			return 0
		}
		if v := bo.Uint16(t[e+8:]); v >= 1 && v <= 8 {
			return v
		}
		return 0
	}
	return 0
}

// minimalExif appends an Exif payload holding only the orientation:
// "Exif\0\0", a big-endian TIFF header, IFD0 with one entry, no next IFD.
func minimalExif(b []byte, orientation uint16) []byte {
	b = append(b, exifID...)
	b = append(b, 'M', 'M', 0, 42, 0, 0, 0, 8) // header; IFD0 at offset 8
	b = append(b, 0, 1)                        // one entry
	b = append(b, 0x01, 0x12, 0, 3, 0, 0, 0, 1)
	b = binary.BigEndian.AppendUint16(b, orientation)
	b = append(b, 0, 0)          // value padding
	return append(b, 0, 0, 0, 0) // no next IFD
}
