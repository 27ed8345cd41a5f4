package hours

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxEventDays bounds the days one iCalendar event of a holiday calendar
// may cover.
const MaxEventDays = 31

// maxNesting bounds the depth of iCalendar components.
const maxNesting = 8

// parseICalendar reads the all-day events of an iCalendar file's lines
// as holidays. Only what a holiday needs is read: DTSTART, DTEND, SUMMARY,
// STATUS; recurrence is refused, not half understood.
func parseICalendar(raw []string) (*Holidays, error) {
	type content struct {
		n    int
		text string
	}
	// Unfold: a line starting with a blank continues the previous one.
	// Pieces are joined once per content line, so that a file of many
	// continuation lines costs linear time.
	var lines []content
	var pieces []string
	flush := func() {
		if len(lines) > 0 && len(pieces) > 1 {
			lines[len(lines)-1].text = strings.Join(pieces, "")
		}
		pieces = pieces[:0]
	}
	for i, r := range raw {
		if r != "" && (r[0] == ' ' || r[0] == '\t') && len(lines) > 0 {
			pieces = append(pieces, r[1:])
			continue
		}
		if strings.TrimSpace(r) == "" {
			continue
		}
		flush()
		lines = append(lines, content{i + 1, r})
		pieces = append(pieces, r)
	}
	flush()
	h := &Holidays{days: make(map[date]string)}
	var stack []string
	type event struct {
		line       int
		start, end date
		hasStart   bool
		hasEnd     bool
		summary    string
		cancelled  bool
	}
	var ev *event
	bad := func(n int, format string, a ...any) error {
		return &LineError{Err: ErrHolidays, Line: n, Msg: fmt.Sprintf(format, a...)}
	}
	for _, l := range lines {
		name, params, value, ok := splitContent(l.text)
		if !ok {
			return nil, bad(l.n, "not an iCalendar content line NAME:VALUE")
		}
		switch {
		case name == "BEGIN":
			v := strings.ToUpper(value)
			if len(stack) == 0 && v != "VCALENDAR" {
				return nil, bad(l.n, "BEGIN:%s outside a VCALENDAR", clip(v))
			}
			if len(stack) == maxNesting {
				return nil, bad(l.n, "components nested deeper than %d", maxNesting)
			}
			stack = append(stack, v)
			if v == "VEVENT" && len(stack) == 2 {
				ev = &event{line: l.n}
			}
			continue
		case name == "END":
			v := strings.ToUpper(value)
			if len(stack) == 0 || stack[len(stack)-1] != v {
				return nil, bad(l.n, "END:%s does not close the open component", clip(v))
			}
			stack = stack[:len(stack)-1]
			if v == "VEVENT" && len(stack) == 1 {
				if err := addEvent(h, ev.line, ev.start, ev.end, ev.hasStart, ev.hasEnd, ev.summary, ev.cancelled); err != nil {
					return nil, err
				}
				ev = nil
			}
			continue
		case len(stack) == 0:
			return nil, bad(l.n, "content outside a VCALENDAR")
		}
		if ev == nil || len(stack) != 2 {
			continue // a property of the calendar or of another component
		}
		switch name {
		case "DTSTART", "DTEND":
			if !hasParam(params, "VALUE=DATE") {
				return nil, bad(l.n, "%s is not a date (VALUE=DATE): only all-day events are holidays", name)
			}
			d, ok := parseBasicDate(value)
			if !ok {
				return nil, bad(l.n, "%s is not a date YYYYMMDD", name)
			}
			if name == "DTSTART" {
				ev.start, ev.hasStart = d, true
			} else {
				ev.end, ev.hasEnd = d, true
			}
		case "SUMMARY":
			ev.summary = unescapeText(value)
		case "STATUS":
			ev.cancelled = strings.EqualFold(value, "CANCELLED")
		case "RRULE", "RDATE":
			return nil, bad(l.n, "recurring events are not supported: list each date")
		}
	}
	if len(stack) != 0 {
		last := 0
		if len(lines) > 0 {
			last = lines[len(lines)-1].n
		}
		return nil, bad(last, "the file ends inside %s", clip(stack[len(stack)-1]))
	}
	return h, nil
}

func addEvent(h *Holidays, line int, start, end date, hasStart, hasEnd bool, summary string, cancelled bool) error {
	bad := func(format string, a ...any) error {
		return &LineError{Err: ErrHolidays, Line: line, Msg: fmt.Sprintf(format, a...)}
	}
	if !hasStart {
		return bad("event without DTSTART")
	}
	if !hasEnd {
		end = start.next()
	}
	if !start.before(end) {
		return bad("event ends before it starts")
	}
	if cancelled {
		return nil
	}
	n := 0
	for d := start; d.before(end); d = d.next() {
		if n++; n > MaxEventDays {
			return bad("event longer than %d days", MaxEventDays)
		}
		if _, dup := h.days[d]; dup {
			continue
		}
		if len(h.days) == MaxHolidays {
			return bad("more than %d holidays", MaxHolidays)
		}
		h.days[d] = summary
	}
	return nil
}

// splitContent splits "NAME;PARAM=V;...:VALUE" at the first colon outside
// a quoted parameter value.
func splitContent(s string) (name string, params []string, value string, ok bool) {
	quoted := false
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case ';':
			if !quoted {
				params = append(params, s[start:i])
				start = i + 1
			}
		case ':':
			if !quoted {
				params = append(params, s[start:i])
				name = strings.ToUpper(params[0])
				if name == "" {
					return "", nil, "", false
				}
				return name, params[1:], s[i+1:], true
			}
		}
	}
	return "", nil, "", false
}

func hasParam(params []string, want string) bool {
	for _, p := range params {
		if strings.EqualFold(p, want) {
			return true
		}
	}
	return false
}

// parseBasicDate parses iCalendar's "YYYYMMDD".
func parseBasicDate(s string) (date, bool) {
	if len(s) != 8 {
		return date{}, false
	}
	return parseDate(s[0:4] + "-" + s[4:6] + "-" + s[6:8])
}

// unescapeText undoes iCalendar TEXT escapes; a line break becomes a
// space, since a holiday's name is one line. The result is trimmed and
// cut to MaxHolidayName bytes at a character boundary.
func unescapeText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			i++
			switch s[i] {
			case 'n', 'N':
				b.WriteByte(' ')
			default:
				b.WriteByte(s[i])
			}
			continue
		}
		b.WriteByte(c)
	}
	out := strings.TrimSpace(b.String())
	if len(out) > MaxHolidayName {
		out = out[:MaxHolidayName]
		for !utf8.ValidString(out) {
			out = out[:len(out)-1]
		}
		out = strings.TrimSpace(out)
	}
	return out
}

// clip keeps an echoed component name short.
func clip(s string) string {
	if len(s) > 20 {
		s = s[:20]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		return s + "…"
	}
	return s
}
