package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAlertsAndDashboard checks docs/prometheus-alerts.yml and
// docs/grafana-dashboard.json: both parse, the rules have the fields
// Prometheus needs, and every series any expression uses exists on the
// /metrics of a running relay (with TLS certificate files, so that every
// series this relay can serve is there).
func TestAlertsAndDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a relay process")
	}
	rules := readAlertRules(t, "../../docs/prometheus-alerts.yml")
	dashboard := readDashboardExprs(t, "../../docs/grafana-dashboard.json")

	bin := buildRelay(t)
	cert, key, _ := writeTestCert(t)
	_, logs := startServe(t, bin, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--metrics-listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key)
	exposed := scrape(t, loggedAddr(t, logs, `msg="serving metrics"`))

	check := func(where, expr string) {
		names := seriesNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: no series found in %q", where, expr)
		}
		for _, n := range names {
			if n != "up" && !exposed[n] { // up is Prometheus's own
				t.Errorf("%s: series %s is not on the relay's /metrics (expression %q)", where, n, expr)
			}
		}
	}
	for _, r := range rules {
		check("alert "+r["alert"], r["expr"])
	}
	for _, d := range dashboard {
		check("dashboard "+d[0], d[1])
	}
}

// scrape returns the series names on a relay's /metrics (histograms as
// their _bucket, _sum and _count series).
func scrape(t *testing.T, addr string) map[string]bool {
	t.Helper()
	body := metricsText(t, addr)
	names := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end < 0 {
			t.Fatalf("malformed /metrics line %q", line)
		}
		names[line[:end]] = true
	}
	return names
}

func metricsText(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d, %v", resp.StatusCode, err)
	}
	return string(b)
}

// metricValue is the value of the one series of /metrics that starts
// with series (a name, or a name and labels).
func metricValue(t *testing.T, addr, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(metricsText(t, addr), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("no series %s", series)
	return 0
}

var (
	promString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promGroup  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promRange  = regexp.MustCompile(`\[[^\]]*\]`)
	promIdent  = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promWords  = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
)

// seriesNames returns the series names a PromQL expression selects:
// every identifier outside strings, label matchers, ranges and grouping
// clauses that is neither a keyword nor a function call.
func seriesNames(expr string) []string {
	e := promString.ReplaceAllString(expr, `""`)
	e = promRange.ReplaceAllString(e, "")
	e = promGroup.ReplaceAllString(e, "")
	var b strings.Builder // label matchers removed
	depth := 0
	for _, r := range e {
		switch {
		case r == '{':
			depth++
		case r == '}':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	e = b.String()
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(e, -1) {
		name := e[loc[0]:loc[1]]
		if loc[0] > 0 && (e[loc[0]-1] >= '0' && e[loc[0]-1] <= '9' || e[loc[0]-1] == '.') {
			continue // the exponent or suffix of a number
		}
		if promWords[strings.ToLower(name)] || strings.HasPrefix(strings.TrimLeft(e[loc[1]:], " "), "(") {
			continue
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

func TestSeriesNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`up{job="postern-relay"} == 0`: {"up"},
		`histogram_quantile(0.99, sum by (instance, le) (rate(postern_relay_store_commit_seconds_bucket{instance=~"$instance"}[$__rate_interval]))) > 0.5`: {"postern_relay_store_commit_seconds_bucket"},
		`up{job="x"} == 1 unless on (instance, job) postern_relay_queued_envelopes`:                                                                        {"up", "postern_relay_queued_envelopes"},
		`postern_relay_tls_certificate_expiry_timestamp_seconds - time() < 14 * 86400`:                                                                     {"postern_relay_tls_certificate_expiry_timestamp_seconds"},
		`a / b < 1e3`: {"a", "b"},
	} {
		if got := seriesNames(expr); !slices.Equal(got, want) {
			t.Errorf("seriesNames(%q) = %q, want %q", expr, got, want)
		}
	}
}

// readDashboardExprs parses the dashboard and returns [panel title,
// expression] for every query: panel targets and query variables.
func readDashboardExprs(t *testing.T, path string) [][2]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr string `json:"expr"`
	}
	type panel struct {
		Type    string   `json:"type"`
		Title   string   `json:"title"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var d struct {
		Title      string  `json:"title"`
		UID        string  `json:"uid"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: no title, uid or panels", path)
	}
	var out [][2]string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", path, p.Title)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("%s: panel %q has an empty query", path, p.Title)
				}
				out = append(out, [2]string{p.Title, tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`^label_values\(([A-Za-z_:][A-Za-z0-9_:]*)\s*,`)
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(string); ok && v.Type == "query" {
			m := labelValues.FindStringSubmatch(q)
			if m == nil {
				t.Errorf("%s: variable %s: query %q is not label_values(SERIES, LABEL)", path, v.Name, q)
				continue
			}
			out = append(out, [2]string{"variable " + v.Name, m[1]})
		}
	}
	return out
}

// readAlertRules reads the rules file with a strict reader for the subset
// of YAML it is written in (block mappings and sequences, plain and
// double-quoted scalars, comment lines) and checks the rule fields.
func readAlertRules(t *testing.T, path string) []map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := parseYAMLSubset(string(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	top, ok := doc.(map[string]any)
	if !ok || len(top) != 1 {
		t.Fatalf("%s: want one key, groups", path)
	}
	groups, ok := top["groups"].([]any)
	if !ok || len(groups) == 0 {
		t.Fatalf("%s: groups is not a list", path)
	}
	var rules []map[string]string
	seen := map[string]bool{}
	dur := regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)
	for _, g := range groups {
		gm, ok := g.(map[string]any)
		if !ok || gm["name"] == nil || !onlyKeys(gm, "name", "rules", "interval") {
			t.Fatalf("%s: a group needs a name and rules, and nothing unknown: %v", path, g)
		}
		rl, ok := gm["rules"].([]any)
		if !ok || len(rl) == 0 {
			t.Fatalf("%s: group %v has no rules", path, gm["name"])
		}
		for _, r := range rl {
			rm, ok := r.(map[string]any)
			if !ok || !onlyKeys(rm, "alert", "expr", "for", "labels", "annotations") {
				t.Fatalf("%s: rule %v has unknown keys", path, r)
			}
			alert, _ := rm["alert"].(string)
			expr, _ := rm["expr"].(string)
			if alert == "" || expr == "" || seen[alert] {
				t.Fatalf("%s: rule %v: an alert name (unique) and an expr are needed", path, rm)
			}
			seen[alert] = true
			if f, ok := rm["for"].(string); ok && !dur.MatchString(f) {
				t.Errorf("%s: %s: for %q is not a Prometheus duration", path, alert, f)
			}
			labels, _ := rm["labels"].(map[string]any)
			if s := labels["severity"]; s != "critical" && s != "warning" && s != "info" {
				t.Errorf("%s: %s: severity %v, want critical, warning or info", path, alert, s)
			}
			ann, _ := rm["annotations"].(map[string]any)
			if ann["summary"] == nil || ann["description"] == nil || !onlyKeys(ann, "summary", "description", "runbook_url") {
				t.Errorf("%s: %s: annotations need a summary and a description", path, alert)
			}
			if err := balanced(expr); err != nil {
				t.Errorf("%s: %s: %v in %q", path, alert, err, expr)
			}
			rules = append(rules, map[string]string{"alert": alert, "expr": expr})
		}
	}
	return rules
}

func onlyKeys(m map[string]any, keys ...string) bool {
	for k := range m {
		if !slices.Contains(keys, k) {
			return false
		}
	}
	return true
}

// balanced checks the brackets of a PromQL expression outside strings.
func balanced(expr string) error {
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	for _, r := range promString.ReplaceAllString(expr, `""`) {
		switch r {
		case '(', '[', '{':
			stack = append(stack, r)
		case ')', ']', '}':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return fmt.Errorf("unbalanced %q", r)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		return fmt.Errorf("unclosed %q", stack[len(stack)-1])
	}
	return nil
}

type yamlLine struct {
	n, indent int
	text      string
}

// parseYAMLSubset parses block mappings ("key: value", "key:" followed by
// a deeper block) and block sequences ("- " items), with plain or
// double-quoted scalars, indented by spaces. Anything else (tabs, flow
// collections, anchors, block scalars, single quotes, a plain scalar with
// ": " or " #") is an error rather than a guess.
func parseYAMLSubset(src string) (any, error) {
	var lines []yamlLine
	for i, l := range strings.Split(src, "\n") {
		if strings.Contains(l, "\t") {
			return nil, fmt.Errorf("line %d: a tab", i+1)
		}
		trimmed := strings.TrimLeft(l, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		lines = append(lines, yamlLine{n: i + 1, indent: len(l) - len(trimmed), text: strings.TrimRight(trimmed, " ")})
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("empty document")
	}
	v, next, err := parseYAMLBlock(lines, 0, lines[0].indent)
	if err == nil && next != len(lines) {
		err = fmt.Errorf("line %d: unexpected indentation", lines[next].n)
	}
	return v, err
}

func parseYAMLBlock(ls []yamlLine, i, indent int) (any, int, error) {
	if strings.HasPrefix(ls[i].text, "- ") {
		var seq []any
		for i < len(ls) && ls[i].indent == indent && strings.HasPrefix(ls[i].text, "- ") {
			// The item is a mapping whose first line follows the dash.
			item := append([]yamlLine{{n: ls[i].n, indent: indent + 2, text: ls[i].text[2:]}}, ls[i+1:]...)
			v, next, err := parseYAMLBlock(item, 0, indent+2)
			if err != nil {
				return nil, 0, err
			}
			seq = append(seq, v)
			i += next
		}
		return seq, i, nil
	}
	m := map[string]any{}
	for i < len(ls) && ls[i].indent == indent {
		l := ls[i]
		if strings.HasPrefix(l.text, "- ") {
			return nil, 0, fmt.Errorf("line %d: a list item among mapping keys", l.n)
		}
		key, rest, ok := strings.Cut(l.text, ":")
		if !ok || key == "" || strings.ContainsAny(key, ` "'{}[]`) {
			return nil, 0, fmt.Errorf("line %d: expected key: value", l.n)
		}
		if _, dup := m[key]; dup {
			return nil, 0, fmt.Errorf("line %d: duplicate key %s", l.n, key)
		}
		rest = strings.TrimSpace(rest)
		i++
		if rest == "" {
			if i >= len(ls) || ls[i].indent <= indent {
				return nil, 0, fmt.Errorf("line %d: %s has no value", l.n, key)
			}
			v, next, err := parseYAMLBlock(ls, i, ls[i].indent)
			if err != nil {
				return nil, 0, err
			}
			m[key], i = v, next
			continue
		}
		v, err := yamlScalar(rest)
		if err != nil {
			return nil, 0, fmt.Errorf("line %d: %s: %v", l.n, key, err)
		}
		m[key] = v
	}
	if i < len(ls) && ls[i].indent > indent {
		return nil, 0, fmt.Errorf("line %d: unexpected indentation", ls[i].n)
	}
	return m, i, nil
}

func yamlScalar(s string) (string, error) {
	if strings.HasPrefix(s, `"`) {
		u, err := strconv.Unquote(s)
		if err != nil {
			return "", fmt.Errorf("bad double-quoted string %s", s)
		}
		return u, nil
	}
	if strings.ContainsAny(s[:1], `'{}[]&*!|>%@`+"`") || strings.Contains(s, ": ") || strings.Contains(s, " #") {
		return "", fmt.Errorf("%q needs quoting (or is outside the subset this reader takes)", s)
	}
	return s, nil
}

func TestParseYAMLSubset(t *testing.T) {
	good := "a:\n  - b: 1\n    c: \"x: y\"\n  - b: 2\nd: e{f=\"g\"} > 1\n"
	v, err := parseYAMLSubset(good)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(v); got != "map[a:[map[b:1 c:x: y] map[b:2]] d:e{f=\"g\"} > 1]" {
		t.Errorf("parsed %s", got)
	}
	for _, bad := range []string{
		"a:\n\tb: 1\n",          // tab
		"a: 1\na: 2\n",          // duplicate
		"a: b: c\n",             // ambiguous plain scalar
		"a: 'x'\n",              // single quotes: outside the subset
		"a:\n  b: 1\n   c: 2\n", // bad indentation
		"a: {b: 1}\n",           // flow mapping
		"a:\n",                  // no value
		"a: \"x\n",              // unterminated
	} {
		if _, err := parseYAMLSubset(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestOperatorMetrics: on a running relay, the reload series follow
// SIGHUP reloads (applied, refused, applied again) and the certificate
// expiry is the served certificate's NotAfter.
func TestOperatorMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a relay process")
	}
	bin := buildRelay(t)
	certFile, keyFile, _ := writeTestCert(t)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "relay.conf")
	if err := os.WriteFile(conf, []byte("retention = 72h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, logs := startServe(t, bin, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--config", conf,
		"--metrics-listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile)
	maddr := loggedAddr(t, logs, `msg="serving metrics"`)

	if got, want := metricValue(t, maddr, "postern_relay_tls_certificate_expiry_timestamp_seconds"), float64(pair.Leaf.NotAfter.Unix()); got != want {
		t.Errorf("certificate expiry %v, want %v", got, want)
	}
	if got := metricValue(t, maddr, "postern_relay_config_last_reload_successful"); got != 1 {
		t.Errorf("reload successful = %v at start, want 1", got)
	}
	start := metricValue(t, maddr, "postern_relay_config_last_reload_success_timestamp_seconds")
	if start < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("reload timestamp %v at start", start)
	}
	if got := metricValue(t, maddr, "postern_relay_ready"); got != 1 {
		t.Errorf("ready = %v, want 1", got)
	}

	os.WriteFile(conf, []byte("retention = -1h\n"), 0o600)
	hup(t, cmd, logs, "configuration reload refused")
	if got := metricValue(t, maddr, "postern_relay_config_last_reload_successful"); got != 0 {
		t.Errorf("reload successful = %v after a refused reload, want 0", got)
	}
	if got := metricValue(t, maddr, "postern_relay_config_last_reload_success_timestamp_seconds"); got != start {
		t.Errorf("a refused reload moved the success timestamp from %v to %v", start, got)
	}
	os.WriteFile(conf, []byte("retention = 48h\n"), 0o600)
	hup(t, cmd, logs, "configuration reloaded")
	if got := metricValue(t, maddr, "postern_relay_config_last_reload_successful"); got != 1 {
		t.Errorf("reload successful = %v after an applied reload, want 1", got)
	}
}

// TestServeReportsMigration: a schema-1 database made by an earlier
// release is converted at start, and the relay says so in its log and its
// audit log (the store converts silently).
func TestServeReportsMigration(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a relay process")
	}
	bin := buildRelay(t)
	data := t.TempDir()
	copyFile(t, "../../testdata/relay/schema1.db", filepath.Join(data, "relay.db"))
	_, logs := startServe(t, bin, "--listen", "127.0.0.1:0", "--data", data, "--metrics-listen=")
	logs.waitFor(t, 0, `msg="store migrated"`, "from_schema=1", "to_schema=4", "backup=relay.db.schema-1.bak")
	b, err := os.ReadFile(filepath.Join(data, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"event":"store.migrated","fields":{"backup":"relay.db.schema-1.bak","from":1,"to":4}`) {
		t.Errorf("no store.migrated entry:\n%s", b)
	}

	// Started again: nothing to migrate, nothing reported.
	data2 := t.TempDir()
	_, logs = startServe(t, bin, "--listen", "127.0.0.1:0", "--data", data2, "--metrics-listen=")
	if strings.Contains(logs.String(), "store migrated") {
		t.Errorf("a fresh database reported a migration:\n%s", logs)
	}
}
