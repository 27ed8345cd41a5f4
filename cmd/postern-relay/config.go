package main

// Configuration of `postern-relay serve`: every serve flag is also an
// environment variable POSTERN_RELAY_<NAME> and a key in a config file
// (`key = value` lines, keys are the flag names). A flag on the command
// line wins over the environment, which wins over the file, which wins over
// the default. The layering iterates the FlagSet, so a flag added to serve
// gets its variable and its key without further code.

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postern/postern/relay"
)

// configFlag names the flag (and POSTERN_RELAY_CONFIG) that locates the
// config file. It is not a key in the file itself.
const configFlag = "config"

// envName is the environment variable for the flag name.
func envName(name string) string {
	return "POSTERN_RELAY_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// configState records, for `config check`, the serve FlagSet and where each
// effective value came from. A nil *configState means serve for real.
type configState struct {
	fs      *flag.FlagSet
	sources map[string]string // flag name → "flag", "env NAME", "file:line"; absent means default
}

// parseServe parses serve's flags, then fills every flag not given on the
// command line from POSTERN_RELAY_<NAME>, then from the config file named
// by --config or POSTERN_RELAY_CONFIG. Values of the lower layers are
// checked even where a higher layer overrides them, so that a bad line in
// the file is reported before it matters. cs, if not nil, records the
// sources.
func parseServe(fs *flag.FlagSet, args []string, cs *configState) error {
	if fs.Lookup(configFlag) == nil {
		fs.String(configFlag, "", "read options from `FILE` of key = value lines, keys as the flag names (see docs/relay.conf.sample)")
	}
	if cs != nil {
		cs.fs, cs.sources = fs, map[string]string{}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{msg: fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	set := map[string]string{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = "flag" })

	// The environment, including POSTERN_RELAY_CONFIG.
	warnUnknownEnv(fs)
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := envName(f.Name)
		v, ok := os.LookupEnv(env)
		if !ok || err != nil {
			return
		}
		if q := quoted(v); q != "" {
			shown := v
			if isSecret(f.Name) {
				shown = "(hidden)"
			}
			err = &usageError{
				msg:  fmt.Sprintf("%s=%s: the value is in %s, which would be part of it", env, shown, q),
				hint: fmt.Sprintf("set the variable without quotes (in a systemd unit: Environment=%s=VALUE, or the whole assignment in double quotes)", env),
			}
			return
		}
		if set[f.Name] != "" {
			err = checkValue(f, v, func(what string) string { return fmt.Sprintf("%s=%q: %s", env, v, what) })
			return
		}
		if e := f.Value.Set(v); e != nil {
			err = valueError(f, v, e, fmt.Sprintf("%s=%q", env, v))
			return
		}
		set[f.Name] = "env " + env
	})
	if err != nil {
		return err
	}

	if path := fs.Lookup(configFlag).Value.String(); path != "" {
		lines, err := readConfig(path, fs)
		if err != nil {
			return err
		}
		for _, l := range lines {
			f := fs.Lookup(l.key)
			where := fmt.Sprintf("%s:%d", l.file, l.line)
			if set[l.key] != "" {
				if err := checkValue(f, l.value, func(what string) string { return fmt.Sprintf("%s: %s: %s %q", where, l.key, what, l.value) }); err != nil {
					return err
				}
				continue
			}
			if e := f.Value.Set(l.value); e != nil {
				return valueError(f, l.value, e, where+": "+l.key)
			}
			set[l.key] = where
		}
	}
	if cs != nil {
		for k, v := range set {
			cs.sources[k] = v
		}
	}
	return nil
}

// configLine is one `key = value` line of a config file.
type configLine struct {
	file       string
	line       int
	key, value string
}

// readConfig reads a config file and checks its keys against fs: unknown
// keys (with a suggestion), duplicates and malformed lines are errors that
// name the file and line.
func readConfig(path string, fs *flag.FlagSet) ([]configLine, error) {
	file := path
	fh, err := os.Open(path)
	if err != nil {
		return nil, &usageError{msg: fmt.Sprintf("config file: %v", err), hint: "pass --config FILE (or POSTERN_RELAY_CONFIG) naming a readable file; docs/relay.conf.sample is a starting point"}
	}
	defer fh.Close()
	var lines []configLine
	first := map[string]int{}
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, value, ok := strings.Cut(text, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		at := fmt.Sprintf("%s:%d", file, n)
		if !ok || key == "" {
			return nil, &usageError{
				msg:  fmt.Sprintf("%s: expected key = value, got %q", at, text),
				hint: "write one option per line as key = value (e.g. listen = 127.0.0.1:7878); # starts a comment line",
			}
		}
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			u, err := strconv.Unquote(value)
			if err != nil {
				return nil, &usageError{msg: fmt.Sprintf("%s: %s: bad quoting in %s", at, key, value), hint: quoteHint}
			}
			value = u
		} else if q := quoted(value); q != "" || quoteAtEdge(value) {
			if q == "" {
				q = "an unmatched quote"
			}
			return nil, &usageError{msg: fmt.Sprintf("%s: %s: the value %s is in %s, which this file does not take as quoting", at, key, value, q), hint: quoteHint}
		}
		if key == configFlag {
			return nil, &usageError{msg: fmt.Sprintf("%s: option %q cannot be set in a config file", at, key), hint: "name the file with --config FILE or POSTERN_RELAY_CONFIG and remove this line"}
		}
		if fs.Lookup(key) == nil {
			ue := &usageError{msg: fmt.Sprintf("%s: unknown option %q", at, key), hint: "the keys are the flag names of postern-relay serve -h, without the dashes"}
			if s := suggest(key, fs); s != "" {
				ue.msg += fmt.Sprintf("; did you mean %q?", s)
				ue.hint = fmt.Sprintf("write %s = %s", s, value)
			}
			return nil, ue
		}
		if prev, dup := first[key]; dup {
			return nil, &usageError{msg: fmt.Sprintf("%s: duplicate option %q (first set on line %d)", at, key, prev), hint: "keep one of the two lines"}
		}
		first[key] = n
		lines = append(lines, configLine{file: file, line: n, key: key, value: value})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("config file %s: %v", path, err)
	}
	return lines, nil
}

// quoteHint explains quoting in the config file.
const quoteHint = `write the value unquoted (retention = 72h), or in "double quotes" with Go's escapes (needed only for an empty value: metrics-listen = "")`

// quoted names the quotes around v when it starts and ends with the same
// kind of quote: "double quotes", 'single quotes' or typographic ones; an
// empty string otherwise.
func quoted(v string) string {
	r := []rune(v)
	if len(r) < 2 {
		return ""
	}
	first, last := r[0], r[len(r)-1]
	switch {
	case first == '"' && last == '"':
		return "double quotes"
	case first == '\'' && last == '\'':
		return "single quotes"
	case (first == '“' || first == '”') && (last == '”' || last == '“'), (first == '‘' || first == '’') && (last == '’' || last == '‘'):
		return "typographic quotes"
	}
	return ""
}

// quoteAtEdge reports whether v starts or ends with a quote character.
func quoteAtEdge(v string) bool {
	first, _ := utf8.DecodeRuneInString(v)
	last, _ := utf8.DecodeLastRuneInString(v)
	return strings.ContainsRune(quoteRunes, first) || strings.ContainsRune(quoteRunes, last)
}

const quoteRunes = `"'“”‘’`

// otherCommandFlags are the flags of the commands other than serve and
// config check, which also read POSTERN_RELAY_<NAME>
// (TestEnvNamesCoverEveryCommand keeps the list complete).
var otherCommandFlags = []string{"data", "count", "ttl", "account", "long", "json", "file", "key-fingerprint", "out", "db-only"}

// warnUnknownEnv warns, on fs's output, about every POSTERN_RELAY_*
// variable that is no command's option, naming the nearest valid one: a
// misspelt variable is otherwise silently ignored.
func warnUnknownEnv(fs *flag.FlagSet) {
	known := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { known[envName(f.Name)] = true })
	for _, name := range otherCommandFlags {
		known[envName(name)] = true
	}
	var unknown []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "POSTERN_RELAY_") && !known[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		msg := fmt.Sprintf("postern-relay: warning: unknown environment variable %s is ignored", k)
		if s := suggest(k, fs); s != "" {
			msg += fmt.Sprintf("; did you mean %s?", envName(s))
		}
		fmt.Fprintln(fs.Output(), msg)
	}
}

// valueError explains a value f refused, with a hint fitting f's type.
func valueError(f *flag.Flag, v string, err error, where string) error {
	what, hint := describe(f)
	if what == "" {
		return &usageError{msg: fmt.Sprintf("%s: invalid value %q: %v", where, v, err), hint: fmt.Sprintf("see --%s in postern-relay serve -h", f.Name)}
	}
	return &usageError{msg: fmt.Sprintf("%s: invalid %s %q", where, what, v), hint: hint}
}

// checkValue checks v against a fresh value of f's type without changing
// f. Types it cannot copy pass.
func checkValue(f *flag.Flag, v string, msg func(what string) string) error {
	t := reflect.TypeOf(f.Value)
	if t.Kind() != reflect.Pointer {
		return nil
	}
	fresh, ok := reflect.New(t.Elem()).Interface().(flag.Value)
	if !ok {
		return nil
	}
	if err := fresh.Set(v); err != nil {
		what, hint := describe(f)
		if what == "" {
			what, hint = "invalid value", fmt.Sprintf("%v; see --%s in postern-relay serve -h", err, f.Name)
		} else {
			what = "invalid " + what
		}
		return &usageError{msg: msg(what), hint: hint}
	}
	return nil
}

// describe names the kind of value f takes and how to write one.
func describe(f *flag.Flag) (what, hint string) {
	switch f.Value.(type) {
	case *positiveDuration:
		return "duration", "use a duration above zero, such as 336h (14 days), 90m or 30s"
	case *durationOrOff:
		return "duration", "use a duration above zero, such as 25s, or off"
	case *byteSize:
		return "size", "use a positive number of bytes, optionally with KiB, MiB, GiB or TiB, such as 4GiB"
	case *positiveInt:
		return "number", "use a whole number of at least 1"
	}
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case time.Duration:
			return "duration", "use Go durations such as 336h (14 days), 90m or 30s"
		case bool:
			return "boolean", "use true or false"
		case int, int64, uint, uint64:
			return "number", "use a whole number"
		}
	}
	return "", ""
}

// suggest returns the option name closest to key, if close enough to be a
// typo: a different case, underscores, leading dashes, or an edit distance
// of at most 2 (1 for short names).
func suggest(key string, fs *flag.FlagSet) string {
	norm := strings.TrimLeft(strings.ToLower(strings.ReplaceAll(key, "_", "-")), "-")
	norm = strings.TrimPrefix(norm, "postern-relay-")
	best, bestD := "", 3
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == configFlag {
			return
		}
		d := editDistance(norm, f.Name)
		if d < bestD {
			best, bestD = f.Name, d
		}
	})
	if bestD > 0 && len(norm) <= 4 && bestD > 1 {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// configCheck runs `postern-relay config check [serve flags]`.
func configCheck(args []string, stdout, stderr io.Writer) error {
	cs := &configState{}
	if err := serve(args, stderr, cs); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "config ok")
	fmt.Fprint(stdout, cs.effective())
	return nil
}

// check runs, in check mode, the checks relay.New makes on cfg without
// opening anything.
func (cs *configState) check(cfg relay.Config) error {
	return checkRelayConfig(cfg)
}

// checkRelayConfig runs the checks relay.New makes on cfg without opening
// anything (config check, and a reload).
func checkRelayConfig(cfg relay.Config) error {
	if err := cfg.Validate(); err != nil {
		return &usageError{msg: err.Error(), hint: "fix the option named above; docs/OPERATIONS.md lists every option"}
	}
	return nil
}

// positiveInt is a flag.Value for a whole number of at least 1.
type positiveInt int

func (p *positiveInt) String() string { return strconv.Itoa(int(*p)) }

func (p *positiveInt) Get() any { return int(*p) }

func (p *positiveInt) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 {
		return fmt.Errorf("want a whole number of at least 1")
	}
	*p = positiveInt(n)
	return nil
}

// positiveDuration is a flag.Value for a duration above zero: a zero or
// negative retention, lifetime or interval is refused rather than
// silently replaced by a default.
type positiveDuration time.Duration

func (d *positiveDuration) String() string { return time.Duration(*d).String() }

func (d *positiveDuration) Get() any { return time.Duration(*d) }

func (d *positiveDuration) Set(s string) error {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("want a duration such as 336h, 90m or 30s")
	}
	if v <= 0 {
		return fmt.Errorf("want a duration above zero")
	}
	*d = positiveDuration(v)
	return nil
}

// durationOrOff is a positiveDuration that may also be "off" (stored as
// -1: the relay's "disabled").
type durationOrOff time.Duration

func (d *durationOrOff) String() string {
	if *d < 0 {
		return "off"
	}
	return time.Duration(*d).String()
}

func (d *durationOrOff) Get() any { return time.Duration(*d) }

func (d *durationOrOff) Set(s string) error {
	if strings.TrimSpace(s) == "off" {
		*d = -1
		return nil
	}
	var p positiveDuration
	if err := p.Set(s); err != nil {
		return fmt.Errorf("%v, or off", err)
	}
	*d = durationOrOff(p)
	return nil
}

// effective renders the effective settings as a config file, each line
// commented with its source. Options whose names suggest a secret are not
// shown.
func (cs *configState) effective() string {
	var b strings.Builder
	cs.fs.VisitAll(func(f *flag.Flag) {
		if f.Name == configFlag {
			if v := f.Value.String(); v != "" {
				fmt.Fprintf(&b, "# config file: %s\n", v)
			}
			return
		}
		v := strconv.Quote(f.Value.String())
		if isSecret(f.Name) {
			v = `"(hidden)"`
		}
		src := cs.sources[f.Name]
		if src == "" {
			src = "default"
		}
		fmt.Fprintf(&b, "%s = %s  # %s\n", f.Name, v, src)
	})
	return b.String()
}

func isSecret(name string) bool {
	return slices.ContainsFunc([]string{"password", "secret", "token", "passphrase"}, func(s string) bool {
		return strings.Contains(name, s)
	})
}

// options lists serve's options (without --config) in FlagSet order.
func options(fs *flag.FlagSet) []*flag.Flag {
	var out []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != configFlag {
			out = append(out, f)
		}
	})
	return out
}

// sampleConfig renders docs/relay.conf.sample from serve's FlagSet: every
// option commented out at its default, with its meaning.
func sampleConfig(fs *flag.FlagSet) string {
	var b strings.Builder
	b.WriteString(`# postern-relay sample configuration (generated from the serve flags;
# regenerate with: go test ./cmd/postern-relay -run TestSampleConfig -update).
#
# Use with: postern-relay serve --config /etc/postern/relay.conf
# (or POSTERN_RELAY_CONFIG=/etc/postern/relay.conf).
#
# One option per line as key = value; keys are the flag names. Lines starting
# with # are comments. A value may be "double quoted" (e.g. an empty string).
# Precedence: a command-line flag wins over POSTERN_RELAY_<KEY> in the
# environment, which wins over this file, which wins over the default.
# Check a configuration without starting: postern-relay config check --config FILE
# A running relay reads this file again on SIGHUP (systemctl reload
# postern-relay); docs/OPERATIONS.md, "Reloading", says what applies at once.
#
# Every option below is shown commented out at its default.
`)
	for _, f := range options(fs) {
		fmt.Fprintf(&b, "\n# %s\n# Environment: %s. Default: %s.\n# %s = %s\n",
			f.Usage, envName(f.Name), defaultText(f), f.Name, sampleValue(f.DefValue))
	}
	return b.String()
}

func sampleValue(v string) string {
	if v == "" {
		return `""`
	}
	return v
}

func defaultText(f *flag.Flag) string {
	if f.DefValue == "" {
		return "empty"
	}
	return f.DefValue
}

// optionsTable renders the options table of docs/OPERATIONS.md.
func optionsTable(fs *flag.FlagSet) string {
	var b strings.Builder
	b.WriteString("| Flag | Environment variable | Config key | Default | On reload (SIGHUP) | Meaning |\n|---|---|---|---|---|---|\n")
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	row := func(f *flag.Flag, key, reload string) {
		def := "`" + f.DefValue + "`"
		if f.DefValue == "" {
			def = "(empty)"
		}
		fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s | %s | %s |\n", f.Name, envName(f.Name), key, def, reload, cell(f.Usage))
	}
	row(fs.Lookup(configFlag), "—", "—")
	for _, f := range options(fs) {
		reload := "restart"
		switch {
		case f.Name == "tls-cert" || f.Name == "tls-key":
			reload = "re-read (adding or removing: restart)"
		case reloadable[f.Name]: // reload.go
			reload = "applied"
		}
		row(f, "`"+f.Name+"`", reload)
	}
	return b.String()
}
