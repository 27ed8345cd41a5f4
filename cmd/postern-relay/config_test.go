package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite docs/relay.conf.sample and the options table of docs/OPERATIONS.md")

// clearEnv unsets every POSTERN_RELAY_* variable for the test.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "POSTERN_RELAY_") {
			os.Unsetenv(k)
			t.Cleanup(func() { os.Setenv(k, v) })
		}
	}
}

// serveFlagSet returns serve's FlagSet as serve defines it.
func serveFlagSet(t *testing.T) *flag.FlagSet {
	t.Helper()
	clearEnv(t)
	cs := &configState{}
	serve(nil, io.Discard, cs) // check mode: nothing is opened
	if cs.fs == nil {
		t.Fatal("serve did not hand over its FlagSet")
	}
	return cs.fs
}

// freshFlags returns a copy of fs with new values at their defaults.
func freshFlags(t *testing.T, fs *flag.FlagSet) *flag.FlagSet {
	t.Helper()
	out := flag.NewFlagSet("serve", flag.ContinueOnError)
	out.SetOutput(io.Discard)
	fs.VisitAll(func(f *flag.Flag) {
		v := reflect.New(reflect.TypeOf(f.Value).Elem()).Interface().(flag.Value)
		if err := v.Set(f.DefValue); err != nil && f.DefValue != "" {
			t.Fatalf("--%s: default %q: %v", f.Name, f.DefValue, err)
		}
		out.Var(v, f.Name, f.Usage)
	})
	return out
}

// twoValues picks two values f accepts that differ from each other and the
// first from the default.
func twoValues(t *testing.T, fs *flag.FlagSet, f *flag.Flag) (a, b string) {
	t.Helper()
	for _, c := range [][2]string{{"true", "false"}, {"false", "true"}, {"1h0m0s", "2h0m0s"}, {"1MiB", "2MiB"}, {"7", "8"}, {"10.0.0.0/8", "192.168.0.0/16"}, {"x", "y"}} {
		va := freshFlags(t, fs).Lookup(f.Name).Value
		vb := freshFlags(t, fs).Lookup(f.Name).Value
		if va.Set(c[0]) != nil || vb.Set(c[1]) != nil {
			continue
		}
		if va.String() != vb.String() && va.String() != f.DefValue {
			return va.String(), vb.String()
		}
	}
	t.Fatalf("--%s: no test values; add a candidate pair to twoValues", f.Name)
	return
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relay.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigPrecedence checks, for every serve option, default < file <
// environment < flag.
func TestConfigPrecedence(t *testing.T) {
	base := serveFlagSet(t)
	for _, f := range options(base) {
		a, b := twoValues(t, base, f)
		env := envName(f.Name)
		cases := []struct {
			name             string
			file, env, flag  string // "" = not set
			want, wantSource string
		}{
			{"default", "", "", "", f.DefValue, ""},
			{"file", a, "", "", a, "file"},
			{"env over file", a, b, "", b, "env " + env},
			{"flag over env", "", a, b, b, "flag"},
			{"flag over file", a, "", b, b, "flag"},
			{"flag over env and file", a, a, b, b, "flag"},
		}
		for _, c := range cases {
			t.Run(f.Name+"/"+c.name, func(t *testing.T) {
				clearEnv(t)
				fs := freshFlags(t, base)
				var args []string
				if c.file != "" {
					args = append(args, "--config", writeConfig(t, fmt.Sprintf("# test\n%s = %s\n", f.Name, c.file)))
				}
				if c.env != "" {
					t.Setenv(env, c.env)
				}
				if c.flag != "" {
					args = append(args, "--"+f.Name+"="+c.flag)
				}
				cs := &configState{}
				if err := parseServe(fs, args, cs); err != nil {
					t.Fatal(err)
				}
				if got := fs.Lookup(f.Name).Value.String(); got != c.want {
					t.Errorf("value %q, want %q", got, c.want)
				}
				src := cs.sources[f.Name]
				if c.wantSource == "file" {
					if !strings.HasSuffix(src, "relay.conf:2") {
						t.Errorf("source %q, want the file's line 2", src)
					}
				} else if src != c.wantSource {
					t.Errorf("source %q, want %q", src, c.wantSource)
				}
			})
		}
	}
}

// TestConfigFileFromEnv checks that POSTERN_RELAY_CONFIG names the file and
// that --config wins over it.
func TestConfigFileFromEnv(t *testing.T) {
	base := serveFlagSet(t)
	clearEnv(t)
	t.Setenv("POSTERN_RELAY_CONFIG", writeConfig(t, "retention = 1h\n"))
	fs := freshFlags(t, base)
	if err := parseServe(fs, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := fs.Lookup("retention").Value.String(); got != "1h0m0s" {
		t.Errorf("retention %s from POSTERN_RELAY_CONFIG, want 1h0m0s", got)
	}
	fs = freshFlags(t, base)
	if err := parseServe(fs, []string{"--config", writeConfig(t, "retention = 2h\n")}, nil); err != nil {
		t.Fatal(err)
	}
	if got := fs.Lookup("retention").Value.String(); got != "2h0m0s" {
		t.Errorf("retention %s with --config, want 2h0m0s", got)
	}
}

// TestConfigCheck checks the messages of `postern-relay config check`.
func TestConfigCheck(t *testing.T) {
	cases := []struct {
		name    string
		file    string            // config file contents; "" = no --config
		env     map[string]string // environment
		args    []string          // more flags
		wantErr string            // stderr, with the temp dir removed; "" = success
	}{
		{
			name: "unknown key with suggestion",
			file: "listen = 127.0.0.1:7878\n\n# keep two weeks\nretension = 336h\n",
			wantErr: "postern-relay: error: relay.conf:4: unknown option \"retension\"; did you mean \"retention\"?\n" +
				"hint: write retention = 336h\n",
		},
		{
			name: "env-style key",
			file: "TLS_CERT = /etc/postern/cert.pem\n",
			wantErr: "postern-relay: error: relay.conf:1: unknown option \"TLS_CERT\"; did you mean \"tls-cert\"?\n" +
				"hint: write tls-cert = /etc/postern/cert.pem\n",
		},
		{
			name: "unknown key without suggestion",
			file: "colour = blue\n",
			wantErr: "postern-relay: error: relay.conf:1: unknown option \"colour\"\n" +
				"hint: the keys are the flag names of postern-relay serve -h, without the dashes\n",
		},
		{
			name: "bad duration",
			file: "\n\nretention = 14d\n",
			wantErr: "postern-relay: error: relay.conf:3: retention: invalid duration \"14d\"\n" +
				"hint: use a duration above zero, such as 336h (14 days), 90m or 30s\n",
		},
		{
			name: "bad size",
			file: "max-blob-size = 4GB\n",
			wantErr: "postern-relay: error: relay.conf:1: max-blob-size: invalid size \"4GB\"\n" +
				"hint: use a positive number of bytes, optionally with KiB, MiB, GiB or TiB, such as 4GiB\n",
		},
		{
			name: "bad boolean",
			file: "metrics-listen-public = yes please\n",
			wantErr: "postern-relay: error: relay.conf:1: metrics-listen-public: invalid boolean \"yes please\"\n" +
				"hint: use true or false\n",
		},
		{
			name: "bad value overridden by a flag is still reported",
			file: "retention = 14d\n",
			args: []string{"--retention", "336h"},
			wantErr: "postern-relay: error: relay.conf:1: retention: invalid duration \"14d\"\n" +
				"hint: use a duration above zero, such as 336h (14 days), 90m or 30s\n",
		},
		{
			name: "bad env",
			env:  map[string]string{"POSTERN_RELAY_BLOB_RETENTION": "2w"},
			wantErr: "postern-relay: error: POSTERN_RELAY_BLOB_RETENTION=\"2w\": invalid duration \"2w\"\n" +
				"hint: use a duration above zero, such as 336h (14 days), 90m or 30s\n",
		},
		{
			name: "duplicate",
			file: "listen = 127.0.0.1:7878\nretention = 1h\nlisten = 127.0.0.1:7879\n",
			wantErr: "postern-relay: error: relay.conf:3: duplicate option \"listen\" (first set on line 1)\n" +
				"hint: keep one of the two lines\n",
		},
		{
			name: "no equals sign",
			file: "listen 127.0.0.1:7878\n",
			wantErr: "postern-relay: error: relay.conf:1: expected key = value, got \"listen 127.0.0.1:7878\"\n" +
				"hint: write one option per line as key = value (e.g. listen = 127.0.0.1:7878); # starts a comment line\n",
		},
		{
			name: "config key in the file",
			file: "config = /etc/other.conf\n",
			wantErr: "postern-relay: error: relay.conf:1: option \"config\" cannot be set in a config file\n" +
				"hint: name the file with --config FILE or POSTERN_RELAY_CONFIG and remove this line\n",
		},
		{
			name: "non-loopback without TLS",
			file: "listen = 0.0.0.0:7878\n",
			// The hint is serve's (and grows with the TLS options): only its start is checked.
			wantErr: "postern-relay: error: refusing plain ws:// on non-loopback address 0.0.0.0:7878\n" +
				"hint: pass --tls-cert and --tls-key, or …",
		},
		{
			name: "public metrics",
			env:  map[string]string{"POSTERN_RELAY_METRICS_LISTEN": "0.0.0.0:9178"},
			wantErr: "postern-relay: error: refusing to serve metrics on non-loopback address 0.0.0.0:9178\n" +
				"hint: scrape over loopback or a private network; pass --metrics-listen-public to serve it there anyway, or --metrics-listen= to disable metrics\n",
		},
		{
			name: "blob size below one chunk",
			file: "max-blob-size = 1KiB\n",
			wantErr: "postern-relay: error: relay: invalid configuration: MaxBlobSize 1024 is below one chunk (65552 bytes)\n" +
				"hint: fix the option named above; docs/OPERATIONS.md lists every option\n",
		},
		{
			name: "ok",
			file: "# a relay\nlisten = 127.0.0.1:7979\nretention = \"72h\"\nmetrics-listen =\n",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			args := []string{"config", "check", "--data", t.TempDir()}
			var dir string
			if c.file != "" {
				path := writeConfig(t, c.file)
				dir = filepath.Dir(path) + string(filepath.Separator)
				args = append(args, "--config", path)
			}
			args = append(args, c.args...)
			var stdout, stderr bytes.Buffer
			code := run(args, &stdout, &stderr)
			got := stderr.String()
			if dir != "" {
				got = strings.ReplaceAll(got, dir, "")
			}
			if c.wantErr == "" {
				if code != 0 || got != "" {
					t.Fatalf("exit %d, stderr:\n%s", code, got)
				}
				out := stdout.String()
				for _, want := range []string{"config ok\n", "listen = \"127.0.0.1:7979\"  # ", "relay.conf:2\n", "retention = \"72h0m0s\"  # ", "metrics-listen = \"\"  # ", "enrollment = \"open\"  # default\n"} {
					if !strings.Contains(out, want) {
						t.Errorf("stdout lacks %q:\n%s", want, out)
					}
				}
				return
			}
			if code == 0 {
				t.Fatalf("exit 0, want an error; stdout:\n%s", stdout.String())
			}
			if prefix, ok := strings.CutSuffix(c.wantErr, "…"); ok {
				if !strings.HasPrefix(got, prefix) {
					t.Errorf("stderr:\n%s\nwant it to start with:\n%s", got, prefix)
				}
			} else if got != c.wantErr {
				t.Errorf("stderr:\n%s\nwant:\n%s", got, c.wantErr)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	fs := serveFlagSet(t)
	for key, want := range map[string]string{
		"retension":          "retention",
		"--listen":           "listen",
		"max_blob_size":      "max-blob-size",
		"blob-retnetion":     "blob-retention",
		"POSTERN_RELAY_DATA": "data",
		"dat":                "data",
		"zzz":                "",
		"metrics":            "",
	} {
		if got := suggest(key, fs); got != want {
			t.Errorf("suggest(%q) = %q, want %q", key, got, want)
		}
	}
}

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != got {
		t.Errorf("%s is out of date with the serve flags; run go test ./cmd/postern-relay -run %s -update", path, t.Name())
	}
}

// TestSampleConfig checks docs/relay.conf.sample against the serve flags,
// and that the sample, uncommented, parses to the defaults.
func TestSampleConfig(t *testing.T) {
	base := serveFlagSet(t)
	path := filepath.Join("..", "..", "docs", "relay.conf.sample")
	golden(t, path, sampleConfig(base))

	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var uncommented strings.Builder
	n := 0
	for _, line := range strings.Split(string(text), "\n") {
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			if k, _, ok := strings.Cut(rest, " = "); ok && base.Lookup(k) != nil {
				line = rest
				n++
			}
		}
		uncommented.WriteString(line + "\n")
	}
	if want := len(options(base)); n != want {
		t.Fatalf("sample sets %d options, want %d", n, want)
	}
	for name, text := range map[string]string{"as shipped": string(text), "uncommented": uncommented.String()} {
		t.Run(name, func(t *testing.T) {
			clearEnv(t)
			fs := freshFlags(t, base)
			if err := parseServe(fs, []string{"--config", writeConfig(t, text)}, nil); err != nil {
				t.Fatal(err)
			}
			for _, f := range options(fs) {
				if got := f.Value.String(); got != f.DefValue {
					t.Errorf("%s = %q, want the default %q", f.Name, got, f.DefValue)
				}
			}
		})
	}
}

// TestOperationsTable checks the options table in docs/OPERATIONS.md
// against the serve flags.
func TestOperationsTable(t *testing.T) {
	const begin, end = "<!-- options:begin -->\n", "<!-- options:end -->"
	path := filepath.Join("..", "..", "docs", "OPERATIONS.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(doc), begin)
	_, after, ok2 := strings.Cut(rest, end)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the %q … %q markers", path, begin, end)
	}
	golden(t, path, before+begin+optionsTable(serveFlagSet(t))+end+after)
}

// durationOptions returns serve's options that take a duration, and fails
// if one takes a plain time.Duration, which accepts zero and negative
// values that the relay would then replace by a default.
func durationOptions(t *testing.T, fs *flag.FlagSet) []*flag.Flag {
	t.Helper()
	var out []*flag.Flag
	for _, f := range options(fs) {
		switch f.Value.(type) {
		case *positiveDuration, *durationOrOff:
			out = append(out, f)
			continue
		}
		if g, ok := f.Value.(flag.Getter); ok {
			if _, isDur := g.Get().(time.Duration); isDur {
				t.Errorf("--%s is a plain duration: use positiveDuration", f.Name)
			}
		}
	}
	if len(out) < 3 {
		t.Fatalf("only %d duration options found", len(out))
	}
	return out
}

// TestNonPositiveDurationsRefused: a zero or negative duration is refused
// for every duration option, from a flag, the environment and the file,
// by config check and by serve (which then opens nothing). It was taken
// before and replaced by the default (--retention -1h served 336h).
func TestNonPositiveDurationsRefused(t *testing.T) {
	for _, f := range durationOptions(t, serveFlagSet(t)) {
		for _, bad := range []string{"-1h", "0", "0s", "-5m"} {
			for _, via := range []string{"flag", "env", "file"} {
				for _, cmd := range [][]string{{"config", "check"}, {"serve"}} {
					t.Run(fmt.Sprintf("%s/%s/%s/%s", f.Name, bad, via, cmd[0]), func(t *testing.T) {
						clearEnv(t)
						data := filepath.Join(t.TempDir(), "data")
						args := append(append([]string{}, cmd...), "--data", data, "--metrics-listen=", "--listen", "127.0.0.1:0")
						switch via {
						case "flag":
							args = append(args, "--"+f.Name+"="+bad)
						case "env":
							t.Setenv(envName(f.Name), bad)
						case "file":
							args = append(args, "--config", writeConfig(t, f.Name+" = "+bad+"\n"))
						}
						var stdout, stderr bytes.Buffer
						if code := run(args, &stdout, &stderr); code != 1 {
							t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
						}
						if !strings.Contains(stderr.String(), "above zero") {
							t.Errorf("stderr does not say the duration must be above zero:\n%s", stderr.String())
						}
						if _, err := os.Stat(data); err == nil {
							t.Errorf("%s created the data directory despite the refusal", cmd[0])
						}
					})
				}
			}
		}
	}
	// ping-interval keeps a way to switch pings off.
	fs := freshFlags(t, serveFlagSet(t))
	if err := parseServe(fs, []string{"--ping-interval", "off"}, nil); err != nil {
		t.Fatal(err)
	}
	if got := fs.Lookup("ping-interval").Value.(flag.Getter).Get().(time.Duration); got >= 0 {
		t.Errorf("--ping-interval off = %v, want negative (no pings)", got)
	}
	// invite create's --ttl too.
	var stderr bytes.Buffer
	if code := run([]string{"invite", "create", "--data", t.TempDir(), "--ttl", "-1h"}, io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "above zero") {
		t.Errorf("invite create --ttl -1h: exit %d, %q", code, stderr.String())
	}
}

// TestQuotedValues: quotes that would be taken as part of a value (single
// or typographic quotes in the file, any quotes in the environment) are
// refused with a message about quoting; Go double quotes in the file are
// quoting.
func TestQuotedValues(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		env        map[string]string
		want       string // in stderr; "" = accepted
	}{
		{name: "double quotes are quoting", file: "retention = \"72h\"\ndata = \"/tmp/x y\"\n"},
		{name: "empty double quotes", file: "metrics-listen = \"\"\n"},
		{name: "single quotes", file: "retention = '72h'\n", want: "relay.conf:1: retention: the value '72h' is in single quotes, which this file does not take as quoting"},
		{name: "single-quoted path", file: "data = '/var/lib/postern-relay'\n", want: "is in single quotes"},
		{name: "typographic quotes", file: "retention = “72h”\n", want: "is in typographic quotes"},
		{name: "unmatched quote", file: "data = \"/var/lib/postern-relay\n", want: "is in an unmatched quote"},
		{name: "bad escape", file: "data = \"C:\\data\"\n", want: "bad quoting"},
		{name: "env double quotes", env: map[string]string{"POSTERN_RELAY_DATA": `"/var/lib/postern-relay"`}, want: `POSTERN_RELAY_DATA="/var/lib/postern-relay": the value is in double quotes, which would be part of it`},
		{name: "env single quotes", env: map[string]string{"POSTERN_RELAY_RETENTION": `'72h'`}, want: "is in single quotes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := []string{"config", "check", "--data", t.TempDir()}
			dir := ""
			if tc.file != "" {
				path := writeConfig(t, tc.file)
				dir = filepath.Dir(path) + string(filepath.Separator)
				args = append(args, "--config", path)
			}
			var stdout, stderr bytes.Buffer
			code := run(args, &stdout, &stderr)
			got := strings.ReplaceAll(stderr.String(), dir, "")
			if tc.want == "" {
				if code != 0 {
					t.Fatalf("exit %d:\n%s", code, got)
				}
				return
			}
			if code != 1 || !strings.Contains(got, tc.want) || !strings.Contains(got, "hint: ") || !strings.Contains(got, "quote") {
				t.Errorf("exit %d, stderr:\n%s\nwant it to contain %q and a hint about quoting", code, got, tc.want)
			}
		})
	}
}

// TestUnknownEnvWarned: a POSTERN_RELAY_* variable that no command reads
// is warned about, with the nearest valid name; known ones are not.
func TestUnknownEnvWarned(t *testing.T) {
	clearEnv(t)
	t.Setenv("POSTERN_RELAY_RETENTON", "72h")
	t.Setenv("POSTERN_RELAY_FAVOURITE_COLOUR", "blue")
	t.Setenv("POSTERN_RELAY_DATA", t.TempDir())     // serve's
	t.Setenv("POSTERN_RELAY_KEY_FINGERPRINT", "00") // audit verify's
	var stdout, stderr bytes.Buffer
	if code := run([]string{"config", "check"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	want := "postern-relay: warning: unknown environment variable POSTERN_RELAY_FAVOURITE_COLOUR is ignored\n" +
		"postern-relay: warning: unknown environment variable POSTERN_RELAY_RETENTON is ignored; did you mean POSTERN_RELAY_RETENTION?\n"
	if stderr.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
	}
}
