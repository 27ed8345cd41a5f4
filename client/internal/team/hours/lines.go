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
// blanks), trimmed, with their numbers.
func readLines(r io.Reader, max int, kind error) ([]line, error) {
	raw, err := readRaw(r, max, kind)
	if err != nil {
		return nil, err
	}
	return meaningful(raw), nil
}

func meaningful(raw []string) []line {
	var out []line
	for i, l := range raw {
		t := strings.TrimSpace(l)
		if t == "" || t[0] == '#' {
			continue
		}
		out = append(out, line{i + 1, t})
	}
	return out
}

// readRaw reads a whole text file of at most max bytes and returns its
// lines, untrimmed. It accepts LF and CRLF line ends and a leading UTF-8
// byte order mark, and refuses invalid UTF-8, control characters other
// than tabs, and the Unicode line and paragraph separators.
func readRaw(r io.Reader, max int, kind error) ([]string, error) {
	data, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", kind, err)
	}
	if len(data) > max {
		return nil, &LineError{Err: kind, Msg: fmt.Sprintf("file larger than %d bytes", max)}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	lines := strings.Split(string(data), "\n")
	for i, raw := range lines {
		n := i + 1
		raw = strings.TrimSuffix(raw, "\r")
		lines[i] = raw
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
	}
	return lines, nil
}

// cutField splits s at its first run of blanks.
func cutField(s string) (field, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}
