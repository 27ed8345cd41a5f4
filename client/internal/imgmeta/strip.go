package imgmeta

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
)

// Media types Strip understands.
const (
	JPEG = "image/jpeg"
	PNG  = "image/png"
)

var (
	jpegMagic = []byte{0xff, 0xd8, 0xff}
	pngMagic  = []byte("\x89PNG\r\n\x1a\n")
)

// Sniff returns JPEG or PNG if header (the first bytes of a file, at
// least 8) starts like one, and "" otherwise; for other types use
// net/http.DetectContentType. It looks only at the signature: Strip still
// refuses a file whose structure does not parse.
func Sniff(header []byte) string {
	switch {
	case bytes.HasPrefix(header, jpegMagic):
		return JPEG
	case bytes.HasPrefix(header, pngMagic):
		return PNG
	}
	return ""
}

// Strip copies the image read from r to w without its metadata (see the
// package documentation for what is removed and kept). mediaType is
// matched without parameters and case-insensitively. For image/jpeg and
// image/png it returns stripped = true on success, whether or not anything
// was found to remove; any other type is copied unchanged with stripped =
// false. A JPEG or PNG that does not parse is ErrMalformed; errors of r and
// w are returned wrapped. On any error w holds an unspecified prefix that
// must be discarded. Strip stops reading at the image's end marker.
func Strip(mediaType string, r io.Reader, w io.Writer) (stripped bool, err error) {
	mt, _, perr := mime.ParseMediaType(mediaType)
	if perr != nil || (mt != JPEG && mt != PNG) {
		_, err = io.Copy(w, r)
		return false, err
	}
	br := bufio.NewReaderSize(r, 32<<10)
	bw := bufio.NewWriterSize(w, 32<<10)
	if mt == JPEG {
		err = stripJPEG(br, bw)
	} else {
		err = stripPNG(br, bw)
	}
	if err != nil {
		return false, err
	}
	if err := bw.Flush(); err != nil {
		return false, fmt.Errorf("imgmeta: writing: %w", err)
	}
	return true, nil
}

// malformed wraps ErrMalformed; an io.EOF or io.ErrUnexpectedEOF from the
// reader means the image ended early, anything else is an I/O error.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

func readErr(err error, what string) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return malformed("image ends inside %s", what)
	}
	return fmt.Errorf("imgmeta: reading: %w", err)
}

// copyN copies exactly n bytes from r to w through buf.
func copyN(w io.Writer, r io.Reader, n int64, buf []byte, what string) error {
	for n > 0 {
		c := int(min(n, int64(len(buf))))
		if _, err := io.ReadFull(r, buf[:c]); err != nil {
			return readErr(err, what)
		}
		if _, err := w.Write(buf[:c]); err != nil {
			return err
		}
		n -= int64(c)
	}
	return nil
}
