package hours

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLineLength bounds a line of a holiday calendar or roster file, in
// bytes without the line end.
const MaxLineLength = 512

// line is a non-comment line of a file and its number.
type line struct {
	n    int
	text string
}

// readLines reads a whole text file of at most max bytes and returns its
// lines that are neither blank nor comments ('#' first, after optional
// blanks), with their numbers. It accepts LF and CRLF line ends and a
// leading UTF-8 byte order mark, and refuses invalid UTF-8 and control
// characters other than tabs.
func readLines(r io.Reader, max int, kind error) ([]line, error) {
	data, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", kind, err)
	}
	if len(data) > max {
		return nil, &LineError{Err: kind, Msg: fmt.Sprintf("file larger than %d bytes", max)}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var out []line
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		raw = strings.TrimSuffix(raw, "\r")
		if len(raw) > MaxLineLength {
			return nil, &LineError{Err: kind, Line: n, Msg: fmt.Sprintf("longer than %d bytes", MaxLineLength)}
		}
		if !utf8.ValidString(raw) {
			return nil, &LineError{Err: kind, Line: n, Msg: "not valid UTF-8"}
		}
		for _, c := range raw {
			if c != '\t' && (unicode.IsControl(c) || c == '\u2028' || c == '\u2029') {
				return nil, &LineError{Err: kind, Line: n, Msg: "control character"}
			}
		}
		t := strings.TrimSpace(raw)
		if t == "" || t[0] == '#' {
			continue
		}
		out = append(out, line{n, t})
	}
	return out, nil
}

// cutField splits s at its first run of blanks.
func cutField(s string) (field, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}
