package stats

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// exposition is a parsed text exposition (format 0.0.4).
type exposition struct {
	types   map[string]string  // family name -> type
	help    map[string]string  // family name -> HELP text, unescaped
	samples map[string]float64 // `name{l="v",…}` with labels sorted -> value
	order   []string           // family names in order of appearance
}

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// parseExposition is a strict reader of the text format 0.0.4 as
// WritePrometheus promises to write it: every line ends in a line feed, no
// blank lines, each family's HELP then TYPE line comes before its samples
// and once, samples of a family are together, sample names are the
// family's (with _bucket, _sum, _count for a histogram), label values use
// only the escapes \\ \" \n, no label twice, no series twice, no
// timestamps; every histogram series has ascending le buckets with
// non-decreasing counts, ending in +Inf equal to its _count, and a _sum.
func parseExposition(text string) (*exposition, error) {
	x := &exposition{types: map[string]string{}, help: map[string]string{}, samples: map[string]float64{}}
	if text == "" || !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("output does not end in a line feed")
	}
	current := ""
	closed := map[string]bool{}
	type hkey struct{ family, labels string }
	buckets := map[hkey][][2]float64{}
	for n, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		n++
		fail := func(format string, a ...any) (*exposition, error) {
			return nil, fmt.Errorf("line %d %q: %s", n, line, fmt.Sprintf(format, a...))
		}
		switch {
		case line == "":
			return fail("blank line")
		case strings.HasPrefix(line, "# HELP "):
			name, help, ok := strings.Cut(line[len("# HELP "):], " ")
			if !ok || !metricName.MatchString(name) {
				return fail("bad HELP")
			}
			if _, dup := x.help[name]; dup || closed[name] {
				return fail("second HELP of %s", name)
			}
			un, err := unescape(help, false)
			if err != nil {
				return fail("%v", err)
			}
			if current != "" {
				closed[current] = true
			}
			current = name
			x.help[name] = un
			x.order = append(x.order, name)
		case strings.HasPrefix(line, "# TYPE "):
			name, typ, ok := strings.Cut(line[len("# TYPE "):], " ")
			if !ok || name != current {
				return fail("TYPE not after its HELP")
			}
			if _, dup := x.types[name]; dup {
				return fail("second TYPE")
			}
			switch typ {
			case "counter", "gauge", "histogram", "summary", "untyped":
			default:
				return fail("unknown type %q", typ)
			}
			x.types[name] = typ
		case strings.HasPrefix(line, "#"):
			return fail("a comment that is neither HELP nor TYPE")
		default:
			typ, ok := x.types[current]
			if !ok {
				return fail("sample before its family's TYPE")
			}
			name, labels, value, err := splitSample(line)
			if err != nil {
				return fail("%v", err)
			}
			suffix := strings.TrimPrefix(name, current)
			if !strings.HasPrefix(name, current) || (typ == "histogram") != (suffix != "") ||
				(typ == "histogram" && suffix != "_bucket" && suffix != "_sum" && suffix != "_count") {
				return fail("sample %s outside family %s (%s)", name, current, typ)
			}
			keys := make([]string, 0, len(labels))
			for k := range labels {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var parts, rest []string
			for _, k := range keys {
				parts = append(parts, k+"="+strconv.Quote(labels[k]))
				if k != "le" {
					rest = append(rest, k+"="+strconv.Quote(labels[k]))
				}
			}
			series := name + "{" + strings.Join(parts, ",") + "}"
			if _, dup := x.samples[series]; dup {
				return fail("series twice")
			}
			x.samples[series] = value
			if typ == "histogram" {
				k := hkey{current, strings.Join(rest, ",")}
				switch suffix {
				case "_bucket":
					le, ok := labels["le"]
					if !ok {
						return fail("bucket without le")
					}
					b, err := parseValue(le)
					if err != nil {
						return fail("le: %v", err)
					}
					buckets[k] = append(buckets[k], [2]float64{b, value})
				default:
					if _, ok := labels["le"]; ok {
						return fail("le on %s", suffix)
					}
				}
			}
		}
	}
	for k, bs := range buckets {
		for i := range bs {
			if i > 0 && (bs[i][0] <= bs[i-1][0] || bs[i][1] < bs[i-1][1]) {
				return nil, fmt.Errorf("%s{%s}: buckets not ascending or counts decreasing", k.family, k.labels)
			}
		}
		last := bs[len(bs)-1]
		count, okc := x.samples[k.family+"_count{"+k.labels+"}"]
		_, oks := x.samples[k.family+"_sum{"+k.labels+"}"]
		if !math.IsInf(last[0], 1) || !okc || !oks || count != last[1] {
			return nil, fmt.Errorf("%s{%s}: no +Inf bucket equal to _count, or no _sum", k.family, k.labels)
		}
	}
	return x, nil
}

// splitSample reads `name{label="value",…} value` (no timestamp).
func splitSample(line string) (string, map[string]string, float64, error) {
	labels := map[string]string{}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return "", nil, 0, fmt.Errorf("no value")
	}
	name, rest := line[:i], line[i:]
	if !metricName.MatchString(name) {
		return "", nil, 0, fmt.Errorf("bad metric name")
	}
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			eq := strings.IndexByte(rest, '=')
			if eq < 0 || !labelName.MatchString(rest[:eq]) || len(rest) < eq+2 || rest[eq+1] != '"' {
				return "", nil, 0, fmt.Errorf("bad label")
			}
			ln := rest[:eq]
			rest = rest[eq+2:]
			// The value ends at the first unescaped quote.
			end := -1
			for j := 0; j < len(rest); j++ {
				if rest[j] == '\\' {
					j++
					continue
				}
				if rest[j] == '"' {
					end = j
					break
				}
			}
			if end < 0 {
				return "", nil, 0, fmt.Errorf("unterminated label value")
			}
			v, err := unescape(rest[:end], true)
			if err != nil {
				return "", nil, 0, err
			}
			if _, dup := labels[ln]; dup {
				return "", nil, 0, fmt.Errorf("label %s twice", ln)
			}
			labels[ln] = v
			rest = rest[end+1:]
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
				continue
			}
			if !strings.HasPrefix(rest, "}") {
				return "", nil, 0, fmt.Errorf("labels not closed")
			}
			rest = rest[1:]
			break
		}
	}
	if !strings.HasPrefix(rest, " ") || strings.Contains(rest[1:], " ") {
		return "", nil, 0, fmt.Errorf("not one space and a value (timestamps are not written)")
	}
	v, err := parseValue(rest[1:])
	return name, labels, v, err
}

func parseValue(s string) (float64, error) {
	switch s {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	return strconv.ParseFloat(s, 64)
}

// unescape undoes \\ and \n (and \" in a label value); any other escape,
// a raw line feed, or (in a label value) a raw quote is an error.
func unescape(s string, label bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\n' || (label && c == '"'):
			return "", fmt.Errorf("unescaped %q", c)
		case c != '\\':
			b.WriteByte(c)
			continue
		}
		if i++; i == len(s) {
			return "", fmt.Errorf("dangling backslash")
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case '"':
			if !label {
				return "", fmt.Errorf(`\" in HELP`)
			}
			b.WriteByte('"')
		default:
			return "", fmt.Errorf("unknown escape \\%c", s[i])
		}
	}
	return b.String(), nil
}

// expected lists the samples a snapshot must give, in the parser's keys.
func expected(s Snapshot) map[string]float64 {
	out := map[string]float64{}
	p := MetricPrefix
	for _, q := range s.Queues {
		ql := "queue=" + strconv.Quote(q.Queue)
		out[p+"messages_total{"+ql+"}"] = float64(q.NewMessages)
		out[p+"backlog{"+ql+"}"] = float64(q.Backlog)
		out[p+"unclaimed{"+ql+"}"] = float64(q.Unclaimed)
		out[p+"oldest_unclaimed_seconds{"+ql+"}"] = q.OldestUnclaimedSeconds
		for i, b := range s.Buckets {
			out[p+"first_response_seconds_bucket{le="+strconv.Quote(formatValue(b))+","+ql+"}"] = float64(q.FirstResponse.Cumulative[i])
		}
		out[p+`first_response_seconds_bucket{le="+Inf",`+ql+"}"] = float64(q.FirstResponse.Count)
		out[p+"first_response_seconds_sum{"+ql+"}"] = q.FirstResponse.SumSeconds
		out[p+"first_response_seconds_count{"+ql+"}"] = float64(q.FirstResponse.Count)
		out[p+"reopened_total{"+ql+"}"] = float64(q.Reopened)
		out[p+"escalations_total{"+ql+`,type="unclaimed"}`] = float64(q.Escalations.Unclaimed)
		out[p+"escalations_total{"+ql+`,type="unanswered"}`] = float64(q.Escalations.Unanswered)
		out[p+"escalations_total{"+ql+`,type="urgent_reminder"}`] = float64(q.Escalations.UrgentReminder)
		out[p+"delivery_failures_total{"+ql+"}"] = float64(q.DeliveryFailures)
		out[p+"exports_total{"+ql+"}"] = float64(q.Exports)
	}
	return out
}

func TestPrometheusParsesBack(t *testing.T) {
	snaps := map[string]Snapshot{
		"scenario": load(t, scenario()).Snapshot(),
		"empty":    New(nil).SnapshotAt(t0),
	}
	// A name that needs escaping.
	odd := load(t, scenario())
	if err := odd.NameQueue(pharmacy, `Pharmacy "east" \ 2`); err != nil {
		t.Fatal(err)
	}
	snaps["escaped name"] = odd.Snapshot()
	for name, snap := range snaps {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := snap.WritePrometheus(&buf); err != nil {
				t.Fatal(err)
			}
			x, err := parseExposition(buf.String())
			if err != nil {
				t.Fatalf("%v\n%s", err, buf.String())
			}
			if len(x.order) != len(families) {
				t.Errorf("%d families, want %d", len(x.order), len(families))
			}
			for _, f := range x.order {
				if !strings.HasPrefix(f, MetricPrefix) {
					t.Errorf("family %s without the prefix", f)
				}
				if (x.types[f] == "counter") != strings.HasSuffix(f, "_total") {
					t.Errorf("family %s of type %s: counters, and only counters, end in _total", f, x.types[f])
				}
				if x.help[f] == "" {
					t.Errorf("family %s without HELP text", f)
				}
			}
			want := expected(snap)
			for k, v := range want {
				if got, ok := x.samples[k]; !ok || got != v {
					t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
				}
			}
			for k := range x.samples {
				if _, ok := want[k]; !ok {
					t.Errorf("unexpected sample %s", k)
				}
			}
		})
	}
}

// The reader is strict: each way of breaking the format is refused, so
// that TestPrometheusParsesBack can fail.
func TestExpositionReaderIsStrict(t *testing.T) {
	var buf bytes.Buffer
	if err := load(t, scenario()).Snapshot().WritePrometheus(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.String()
	if _, err := parseExposition(good); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"no final newline": strings.TrimSuffix(good, "\n"),
		"blank line":       strings.Replace(good, "\n# HELP", "\n\n# HELP", 1),
		"unescaped quote":  strings.Replace(good, `queue="Pharmacy"`, `queue="Phar"macy"`, 1),
		"bad escape":       strings.Replace(good, `queue="Pharmacy"`, `queue="Phar\macy"`, 1),
		"timestamp":        strings.Replace(good, "postern_team_backlog{queue=\"Pharmacy\"} 3\n", "postern_team_backlog{queue=\"Pharmacy\"} 3 1700000000000\n", 1),
		"no TYPE":          strings.Replace(good, "# TYPE postern_team_backlog gauge\n", "", 1),
		"TYPE first":       strings.Replace(good, "# HELP postern_team_backlog", "# TYPE postern_team_backlog gauge\n# HELP postern_team_backlog", 1),
		"no +Inf":          regexp.MustCompile(`(?m)^postern_team_first_response_seconds_bucket\{queue="Pharmacy",le="\+Inf"\} \d+\n`).ReplaceAllString(good, ""),
		"wrong count":      strings.Replace(good, "postern_team_first_response_seconds_count{queue=\"Pharmacy\"} 3", "postern_team_first_response_seconds_count{queue=\"Pharmacy\"} 4", 1),
		"series twice":     good + "postern_team_exports_total{queue=\"Pharmacy\"} 1\n",
		"foreign sample":   strings.Replace(good, "postern_team_backlog{", "postern_team_backlogs{", 1),
		"label twice":      strings.Replace(good, `{queue="Pharmacy"}`, `{queue="Pharmacy",queue="x"}`, 1),
	} {
		if bad == good {
			t.Errorf("%s: the change did not apply", name)
			continue
		}
		if _, err := parseExposition(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestEscapes(t *testing.T) {
	if got := escapeLabel("a\\b\"c\nd"); got != `a\\b\"c\nd` {
		t.Errorf("escapeLabel = %s", got)
	}
	if got := escapeHelp("a\\b\"c\nd"); got != `a\\b"c\nd` {
		t.Errorf("escapeHelp = %s", got)
	}
}

// golden compares out with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, out []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("%s changed (run with -update if that is meant):\n%s", path, out)
	}
}

// The exposition and the JSON document of the scenario, byte for byte:
// metric names, label and member names are an interface for operators.
func TestGolden(t *testing.T) {
	snap := load(t, scenario()).Snapshot()
	var buf bytes.Buffer
	if err := snap.WritePrometheus(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "figures.prom", buf.Bytes())
	js, err := json.MarshalIndent(snap, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "figures.json", append(js, '\n'))
}

func TestJSONRoundTrip(t *testing.T) {
	for _, snap := range []Snapshot{load(t, scenario()).Snapshot(), New(nil).SnapshotAt(t0), {}} {
		js, err := json.Marshal(snap)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(js, []byte(`"queues":[`)) {
			t.Errorf("queues not a list: %s", js)
		}
		var back Snapshot
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&back); err != nil {
			t.Fatal(err)
		}
		if snap.Queues == nil {
			snap.Queues = []QueueFigures{}
		}
		js2, _ := json.Marshal(back)
		if !bytes.Equal(js, js2) {
			t.Errorf("JSON changed on a round trip:\n%s\n%s", js, js2)
		}
	}
}
