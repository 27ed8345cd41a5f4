package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/relaytest"
)

// TestMain makes this test binary also the postern command: testscript runs
// scripts against it as a subprocess, so signals and exit codes are real.
func TestMain(m *testing.M) {
	testscript.Main(scriptBinary{m}, map[string]func(){"postern": func() {
		// A script's stand-in for /etc/postern/policy.conf (only this test
		// binary and plainBin, built with the tag postern_testpolicy, read
		// it: directory.txtar, status.txtar, role.txtar).
		testPolicyPath = os.Getenv("POSTERN_TEST_POLICY")
		testKDF = testKDFFromEnv()
		main()
	}})
}

// plainBin is a directory holding a postern built from this package
// without the race detector, when this test binary has it: the scripts
// other than raceScripts run that one. Under the race detector every
// command's Argon2id unlock (the default cost, which the tests do not
// lower) takes seconds, and the scripts run hundreds of commands; what
// the race detector is for, the CLI's own goroutines, is covered in
// process (TestUIServes, TestDiskFull, the policy tests) and by
// raceScripts, which still run this test binary.
var plainBin string

// raceScripts run the race-detecting postern under go test -race: listen
// runs alongside other commands on one home and stops on a signal.
var raceScripts = map[string]bool{"listen": true}

// defaultCostScripts make their key files at the default Argon2id cost,
// as every user's are; the others at a low one (testKDF). These are the
// scripts about the passphrase, and one whole conversation.
var defaultCostScripts = map[string]bool{"passphrase": true, "prompt": true, "conversation": true}

// scriptBinary builds plainBin before the tests run (and only then: not
// when this binary runs as the postern command).
type scriptBinary struct{ m *testing.M }

func (s scriptBinary) Run() int {
	if !raceBuild {
		return s.m.Run()
	}
	dir, err := os.MkdirTemp("", "postern-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "building postern without -race:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The same package from the same module; the go command's cache
	// makes this quick after the first time.
	// The tag makes it read POSTERN_TEST_POLICY (testpolicy.go).
	out, err := exec.Command("go", "build", "-tags", "postern_testpolicy", "-o", filepath.Join(dir, "postern"+exeSuffix()), ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building postern without -race: %v\n%s", err, out)
		return 1
	}
	plainBin = dir
	return s.m.Run()
}

func exeSuffix() string {
	if runtime.GOOS == "windows" {
		return ".exe"
	}
	return ""
}

// TestScripts runs testdata/cli/*.txtar, each with its own in-process relay
// ($RELAY) and a passphrase in POSTERN_PASSPHRASE (except prompt*.txtar).
// Key files use the default Argon2id cost in defaultCostScripts (there is
// no way for a user to lower it) and a low one in the others.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("..", "..", "testdata", "cli"),
		Setup: func(env *testscript.Env) error {
			tb, ok := env.T().(testing.TB)
			if !ok {
				env.T().Fatal("testscript.T is not a testing.TB")
			}
			// Scripts named enrol* get a relay that requires invite codes.
			var opts *relaytest.Options
			if strings.HasPrefix(path.Base(tb.Name()), "enrol") {
				opts = &relaytest.Options{Enrollment: relay.EnrollInvite}
			}
			srv := relaytest.New(tb, opts)
			env.Values[relayKey{}] = srv
			env.Setenv("RELAY", srv.URL)
			name := strings.TrimSuffix(path.Base(tb.Name()), ".txtar")
			if plainBin != "" && !raceScripts[name] {
				env.Setenv("PATH", plainBin+string(os.PathListSeparator)+env.Getenv("PATH"))
			}
			// Key files at a low cost, except in defaultCostScripts.
			if !defaultCostScripts[name] {
				env.Setenv("POSTERN_TEST_KDF", "low")
			}
			// Scripts named prompt* have no POSTERN_PASSPHRASE: they type it.
			if !strings.HasPrefix(path.Base(tb.Name()), "prompt") {
				env.Setenv("POSTERN_PASSPHRASE", "plum harbour lantern tuesday")
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitfor":     cmdWaitfor,
			"waitfile":    cmdWaitfile,
			"envfrom":     cmdEnvfrom,
			"relayinvite": cmdRelayinvite,
			"stoprelay":   cmdStoprelay,
			"relaydown":   cmdRelaydown,
			"relayup":     cmdRelayup,
			"relayrevoke": cmdRelayrevoke,
			"status":      cmdStatus,
			"flipbyte":    cmdFlipbyte,
			"writefile":   cmdWritefile,
		},
	})
}

// cmdWaitfor is "waitfor REGEXP COMMAND [ARGS...]": it runs the command
// every 200 ms until it succeeds with standard output matching REGEXP
// (multi-line mode), for up to 30 s.
func cmdWaitfor(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: waitfor REGEXP COMMAND [ARGS...]")
	}
	re, err := regexp.Compile("(?m)" + args[0])
	ts.Check(err)
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ts.Exec(args[1], args[2:]...)
		if err == nil && re.MatchString(ts.ReadFile("stdout")) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("no output of %s matched %q in 30s", args[1], args[0])
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// cmdWritefile is "writefile PATH LINE...": it writes each LINE (after
// the script's variables are expanded) as a line of the file at PATH,
// for files that hold what earlier commands printed.
func cmdWritefile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: writefile PATH LINE...")
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(strings.Join(args[1:], "\n")+"\n"), 0o644))
}

// cmdWaitfile is "waitfile PATH": it waits up to 30 s for the file at
// PATH to exist and hold a whole line (a background command writes it).
func cmdWaitfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile PATH")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(ts.MkAbs(args[0])); err == nil && strings.HasSuffix(string(b), "\n") {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s did not appear in 30s", args[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type relayKey struct{}

// cmdRelayinvite is "relayinvite NAME": the relay's operator makes an
// enrolment invite code, put in the environment variable NAME.
func cmdRelayinvite(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: relayinvite NAME")
	}
	srv := ts.Value(relayKey{}).(*relaytest.Server)
	codes, err := srv.Relay().CreateInvites(context.Background(), 1, time.Hour)
	ts.Check(err)
	ts.Setenv(args[0], codes[0])
}

// cmdStoprelay is "stoprelay": the script's relay stops for good (its
// port refuses connections), to test what works without it.
func cmdStoprelay(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: stoprelay")
	}
	ts.Value(relayKey{}).(*relaytest.Server).Close()
}

// cmdRelaydown is "relaydown": the script's relay stops (its port
// refuses connections) until relayup starts it again on the same data
// and port.
func cmdRelaydown(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: relaydown")
	}
	ts.Value(relayKey{}).(*relaytest.Server).Stop()
}

// cmdRelayup is "relayup": the relay stopped by relaydown starts again.
func cmdRelayup(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: relayup")
	}
	ts.Value(relayKey{}).(*relaytest.Server).Start()
}

// cmdRelayrevoke is "relayrevoke DEVICE": the relay's operator revokes
// the device with the ID DEVICE (64 hex digits, as whoami --json prints).
func cmdRelayrevoke(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: relayrevoke DEVICE")
	}
	id, err := keys.ParseFingerprint(args[0])
	ts.Check(err)
	ts.Check(ts.Value(relayKey{}).(*relaytest.Server).Relay().RevokeDevice(context.Background(), protocol.DeviceID(id)))
}

// cmdStatus is "status N COMMAND [ARGS...]": it runs the command and
// requires its exit status to be N; its output is kept for stdout and
// stderr as after exec.
func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status N COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		ee, ok := errors.AsType[*exec.ExitError](err)
		if !ok {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// cmdEnvfrom is "envfrom NAME REGEXP": it sets the environment variable
// NAME to the first submatch of REGEXP (multi-line mode) in the standard
// output of the last command, the way a shell's $(…) would.
func cmdEnvfrom(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: envfrom NAME REGEXP")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile("stdout"))
	if len(m) < 2 {
		ts.Fatalf("%q does not match stdout with a submatch", args[1])
	}
	ts.Setenv(args[0], m[1])
}

// TestExitCodes checks the exit codes and the errors that need no relay,
// in process.
func TestExitCodes(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		env    map[string]string // POSTERN_PASSPHRASE is unset unless given
		code   int
		stdout string // a substring, "" to skip
		stderr string // the whole of standard error, "" to skip
	}{
		{name: "no arguments", args: nil, code: 2, stderr: usageText},
		{name: "help", args: []string{"help"}, code: 0, stdout: usageText},
		{name: "--help", args: []string{"--help"}, code: 0, stdout: usageText},
		{name: "-h", args: []string{"-h"}, code: 0, stdout: usageText},
		{name: "help send", args: []string{"help", "send"}, code: 0, stdout: "usage: postern send NAME [--subject S] [--reply-to ID] [--urgent] [--attach FILE]... [--keep-metadata] TEXT...|-\n"},
		{name: "send --help", args: []string{"send", "--help"}, code: 0, stdout: "usage: postern send NAME [--subject S] [--reply-to ID] [--urgent] [--attach FILE]... [--keep-metadata] TEXT...|-\n"},
		{name: "version", args: []string{"version"}, code: 0, stdout: " (commit "},
		{name: "--version", args: []string{"--version"}, code: 0, stdout: " (commit "},
		{
			name: "unknown command", args: []string{"frobnicate"}, code: 2,
			stderr: "postern: error: unknown command \"frobnicate\"\nhint: run 'postern help' for the commands\n",
		},
		{
			name: "help unknown command", args: []string{"help", "frobnicate"}, code: 2,
			stderr: "postern: error: unknown command \"frobnicate\"\nhint: run 'postern help' for the commands\n",
		},
		{
			name: "unknown flag", args: []string{"inbox", "--bogus"}, code: 2,
			stderr: "postern: error: flag provided but not defined: -bogus\nhint: usage: postern inbox [--folder F] [--unread] [--json]\n",
		},
		{
			name: "extra argument", args: []string{"inbox", "secret-looking"}, code: 2,
			stderr: "postern: error: inbox takes no arguments\nhint: usage: postern inbox [--folder F] [--unread] [--json]\n",
		},
		{
			name: "init without relay", args: []string{"init", "--name", "Alice"}, code: 2,
			stderr: "postern: error: missing --relay URL\nhint: usage: postern init --relay URL --name NAME [--invite CODE]\n",
		},
		{
			name: "init without name", args: []string{"init", "--relay", "wss://relay.example"}, code: 2,
			stderr: "postern: error: missing --name NAME\nhint: usage: postern init --relay URL --name NAME [--invite CODE]\n",
		},
		{
			name: "send without text", args: []string{"send", "Bob"}, code: 2,
			stderr: "postern: error: missing TEXT\nhint: usage: postern send NAME [--subject S] [--reply-to ID] [--urgent] [--attach FILE]... [--keep-metadata] TEXT...|-\n",
		},
		{
			name: "accept without --as", args: []string{"accept", "postern-invite:1:x"}, code: 2,
			stderr: "postern: error: missing --as NAME\nhint: usage: postern accept CODE|- --as NAME [--replace]\n",
		},
		{
			name: "team block without a level", args: []string{"team", "block", "Pharmacy", "Pat"}, code: 2,
			stderr: "postern: error: team block takes one of --new, --replies and --all\nhint: usage: postern " + teamCmd.usage + "\n",
		},
		{
			name: "team export without --out", args: []string{"team", "export", "0123abcd"}, code: 2,
			stderr: "postern: error: missing --out FILE\nhint: usage: postern " + teamCmd.usage + "\n",
		},
		{
			name: "team log with --out", args: []string{"team", "log", "Pharmacy", "--out", "x.json"}, code: 2,
			stderr: "postern: error: --out and --message are for team export\nhint: usage: postern " + teamCmd.usage + "\n",
		},
		{
			name: "read without ID", args: []string{"read", "--json"}, code: 2,
			stderr: "postern: error: missing ID\nhint: usage: postern read ID [--json]\n",
		},
		{
			name: "directory without what to do", args: []string{"directory"}, code: 2,
			stderr: "postern: error: missing what to do: publish, show, search or contact\nhint: usage: postern directory publish FILE | directory show [--json] | directory search QUERY... [--json] | directory contact NAME\n",
		},
		{
			name: "directory publish without file", args: []string{"directory", "publish"}, code: 2,
			stderr: "postern: error: missing FILE\nhint: usage: postern directory publish FILE | directory show [--json] | directory search QUERY... [--json] | directory contact NAME\n",
		},
		{
			name: "directory contact without name", args: []string{"directory", "contact"}, code: 2,
			stderr: "postern: error: missing NAME\nhint: usage: postern " + directoryCmd.usage + "\n",
		},
		{
			name: "directory contact with --json", args: []string{"directory", "contact", "Ben", "--json"}, code: 2,
			stderr: "postern: error: --json is for directory show and directory search\nhint: usage: postern " + directoryCmd.usage + "\n",
		},
		{
			name: "status set without availability", args: []string{"status", "set"}, code: 2,
			stderr: "postern: error: missing available, busy or off\nhint: usage: postern status set available|busy|off [--dnd-until TIME | --dnd FOR] [--forward-to NAME] | status [NAME] [--json]\n",
		},
		{
			name: "status set with both ends", args: []string{"status", "set", "busy", "--dnd", "1h", "--dnd-until", "18:00"}, code: 2,
			stderr: "postern: error: --dnd-until and --dnd both say when do-not-disturb ends: give one\nhint: usage: postern " + statusCmd.usage + "\n",
		},
		{
			name: "status set of an unknown availability", args: []string{"status", "set", "away"}, code: 2,
			stderr: "postern: error: \"away\": want available, busy or off\nhint: usage: postern " + statusCmd.usage + "\n",
		},
		{
			name: "role without what to do", args: []string{"role"}, code: 2,
			stderr: "postern: error: missing what to do: list, take, leave or set\nhint: usage: postern role list [--json] | role take ROLE | role leave ROLE | role set ROLE STAFF|--vacant\n",
		},
		{
			name: "role take without role", args: []string{"role", "take"}, code: 2,
			stderr: "postern: error: missing the role (a name with spaces goes in quotes)\nhint: usage: postern " + roleCmd.usage + "\n",
		},
		{
			name: "role set with a holder and --vacant", args: []string{"role", "set", "On call", "ann", "--vacant"}, code: 2,
			stderr: "postern: error: role set takes a staff member or --vacant, not both\nhint: usage: postern " + roleCmd.usage + "\n",
		},
		{
			name: "role set without holder", args: []string{"role", "set", "On call"}, code: 2,
			stderr: "postern: error: missing the staff member, or --vacant\nhint: usage: postern " + roleCmd.usage + "\n",
		},
		{
			name: "role leave --json", args: []string{"role", "leave", "On call", "--json"}, code: 2,
			stderr: "postern: error: --json is for role list\nhint: usage: postern " + roleCmd.usage + "\n",
		},
		{
			name: "team --role off invite", args: []string{"team", "list", "--role", "On call"}, code: 2,
			stderr: "postern: error: --role is for team invite\nhint: usage: postern " + teamCmd.usage + "\n",
		},
		{
			name: "no passphrase and no terminal", args: []string{"inbox", "--home", "HOME"}, code: 1,
			stderr: "postern: error: no passphrase: POSTERN_PASSPHRASE is not set and standard input is not a terminal\n" +
				"hint: set POSTERN_PASSPHRASE, or run postern in a terminal to be asked\n",
		},
		{
			name: "empty passphrase", args: []string{"inbox", "--home", "HOME"}, code: 1,
			env: map[string]string{"POSTERN_PASSPHRASE": ""},
			stderr: "postern: error: POSTERN_PASSPHRASE is set but empty\n" +
				"hint: set it to your passphrase, or unset it to be asked on the terminal\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			args := make([]string, len(tt.args))
			for i, a := range tt.args {
				args[i] = strings.ReplaceAll(a, "HOME", home)
			}
			var stdout, stderr bytes.Buffer
			c := &cli{
				stdin:  strings.NewReader(""),
				stdout: &stdout,
				stderr: &stderr,
				lookupEnv: func(k string) (string, bool) {
					v, ok := tt.env[k]
					return v, ok
				},
			}
			code := c.main(context.Background(), args)
			if code != tt.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.code, stderr.String())
			}
			if tt.stdout != "" && !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout %q does not contain %q", stdout.String(), tt.stdout)
			}
			if tt.stderr != "" && stderr.String() != tt.stderr {
				t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), tt.stderr)
			}
		})
	}
}

// TestParse checks interleaved flags and positional arguments.
func TestParse(t *testing.T) {
	tests := []struct {
		name string
		args []string
		pos  []string
		json bool
	}{
		{"flags first", []string{"--json", "a", "b"}, []string{"a", "b"}, true},
		{"flags last", []string{"a", "b", "--json"}, []string{"a", "b"}, true},
		{"flags between", []string{"a", "-json", "b"}, []string{"a", "b"}, true},
		{"dash is positional", []string{"a", "-"}, []string{"a", "-"}, false},
		{"double dash ends flags", []string{"a", "--", "--json", "-x"}, []string{"a", "--json", "-x"}, false},
		{"none", nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &cli{lookupEnv: os.LookupEnv}
			fs := c.newFlagSet(sendCmd)
			asJSON := fs.Bool("json", false, "")
			pos, err := parse(fs, sendCmd, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(pos, "|") != strings.Join(tt.pos, "|") || len(pos) != len(tt.pos) {
				t.Errorf("positional %q, want %q", pos, tt.pos)
			}
			if *asJSON != tt.json {
				t.Errorf("--json %v, want %v", *asJSON, tt.json)
			}
		})
	}
}

// TestSafe checks that text from contacts cannot drive the terminal.
func TestSafe(t *testing.T) {
	tests := []struct {
		name, in, line, multi string
	}{
		{"plain", "hello, wörld", "hello, wörld", "hello, wörld"},
		{"escape sequence", "\x1b]0;pwned\x07", `\x1b]0;pwned\x07`, `\x1b]0;pwned\x07`},
		{"newline", "a\nb\tc", `a\nb\tc`, "a\nb\tc"},
		{"carriage return", "ok\rfake", `ok\x0dfake`, `ok\x0dfake`},
		{"bidi override", "abc\u202edcb", `abc\u202edcb`, `abc\u202edcb`},
		{"C1 control", "a\u009bb", `a\x9bb`, `a\x9bb`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := safe(tt.in, false); got != tt.line {
				t.Errorf("safe(%q, false) = %q, want %q", tt.in, got, tt.line)
			}
			if got := safe(tt.in, true); got != tt.multi {
				t.Errorf("safe(%q, true) = %q, want %q", tt.in, got, tt.multi)
			}
		})
	}
}

// TestUsageListsEveryCommand keeps the hand-written usage text in step with
// the command table.
func TestUsageListsEveryCommand(t *testing.T) {
	for _, cmd := range commands {
		if !strings.Contains(usageText, "\n  "+cmd.usage) {
			t.Errorf("usage text lacks %q", cmd.usage)
		}
	}
}
