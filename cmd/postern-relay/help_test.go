package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/postern/postern/internal/buildinfo"
)

// help names every command dispatch knows, and a mistyped or missing
// command points to it.
func TestHelpListsEveryCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"help"}, &out, &errb); code != 0 {
		t.Fatalf("help: exit %d, %s", code, errb.String())
	}
	for _, cmd := range []string{"serve", "config check", "invite create", "admin COMMAND", "backup FILE", "restore FILE", "audit verify", "audit export", "version"} {
		if !strings.Contains(out.String(), "\n  "+cmd) {
			t.Errorf("help does not list %q:\n%s", cmd, out.String())
		}
	}
	for _, args := range [][]string{nil, {"serv"}} {
		out.Reset()
		errb.Reset()
		if code := run(args, &out, &errb); code != 1 || !strings.Contains(errb.String(), "hint: postern-relay help lists the commands") {
			t.Errorf("%q: exit %d, %q", args, code, errb.String())
		}
	}
}

// TestEveryCommandHasHelp walks the command table: every command answers
// --help (anywhere among its arguments) and `help COMMAND` with exit 0,
// its usage line, what it does and its flags, on stdout, doing nothing
// else; every group lists its commands; a group without a command says
// where to look.
func TestEveryCommandHasHelp(t *testing.T) {
	clearEnv(t)
	for _, c := range commands {
		t.Run(c.path, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			words := strings.Fields(c.path)
			for _, args := range [][]string{
				append(append([]string{}, words...), "--help"),
				append(append([]string{}, words...), "-h"),
				append(append([]string{}, words...), "x", "--data", data, "--help"),
				append([]string{"help"}, words...),
			} {
				var out, errb bytes.Buffer
				if code := run(args, &out, &errb); code != 0 || errb.Len() != 0 {
					t.Fatalf("%q: exit %d, stderr %q", args, code, errb.String())
				}
				got := out.String()
				if !strings.HasPrefix(got, "usage: postern-relay "+c.path) || !strings.Contains(got, c.about) {
					t.Errorf("%q printed:\n%s", args, got)
				}
				if c.path != "version" && !strings.Contains(got, "\nflags:\n") {
					t.Errorf("%q lists no flags:\n%s", args, got)
				}
				if strings.Contains(got, "Usage of") {
					t.Errorf("%q printed the flag package's header:\n%s", args, got)
				}
			}
			if _, err := os.Stat(data); err == nil {
				t.Errorf("--help created %s: the command ran", data)
			}
		})
	}
	for g := range groups {
		t.Run(g, func(t *testing.T) {
			words := strings.Fields(g)
			for _, args := range [][]string{append(append([]string{}, words...), "--help"), append(append([]string{}, words...), "help"), append([]string{"help"}, words...)} {
				var out, errb bytes.Buffer
				if code := run(args, &out, &errb); code != 0 {
					t.Fatalf("%q: exit %d, %s", args, code, errb.String())
				}
				n := 0
				for _, c := range commands {
					if sub, ok := strings.CutPrefix(c.path, g+" "); ok {
						n++
						if !strings.Contains(out.String(), "\n  "+sub+" ") {
							t.Errorf("%q does not list %q:\n%s", args, sub, out.String())
						}
					}
				}
				if n == 0 {
					t.Errorf("group %q has no commands", g)
				}
			}
			var out, errb bytes.Buffer
			if code := run(words, &out, &errb); code != 1 || !strings.Contains(errb.String(), "hint: postern-relay "+g+" --help lists them") {
				t.Errorf("%q alone: exit %d, %q", g, code, errb.String())
			}
		})
	}
}

// TestAdminRestoreRenamed: lifting a suspension is "admin reinstate"; the
// old word, shared with restoring a backup, says so and runs nothing.
func TestAdminRestoreRenamed(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"admin", "restore", "--data", t.TempDir(), "abcdef0123"}, &out, &errb); code != 1 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{`"admin restore" is now "admin reinstate"`, "hint: postern-relay admin reinstate ID...", "postern-relay restore FILE puts a backup in place"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
	var help bytes.Buffer
	run([]string{"admin", "--help"}, &help, io.Discard)
	if strings.Contains(help.String(), "restore") {
		t.Errorf("admin --help still mentions restore:\n%s", help.String())
	}
}

// TestEnvNamesCoverEveryCommand: every flag of every command is a known
// POSTERN_RELAY_* name, so that warnUnknownEnv never warns about a
// variable some command reads.
func TestEnvNamesCoverEveryCommand(t *testing.T) {
	clearEnv(t)
	known := map[string]bool{}
	for _, f := range options(serveFlagSet(t)) {
		known[f.Name] = true
	}
	known[configFlag] = true
	for _, n := range otherCommandFlags {
		known[n] = true
	}
	flagLine := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)
	for _, c := range commands {
		for _, m := range flagLine.FindAllStringSubmatch(flagsOf(c), -1) {
			if !known[m[1]] {
				t.Errorf("postern-relay %s --%s is missing from otherCommandFlags", c.path, m[1])
			}
		}
	}
}

// TestVersion: version and --version print the build's version, commit
// and date.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var out bytes.Buffer
		if code := run(args, &out, io.Discard); code != 0 {
			t.Fatalf("%q: exit %d", args, code)
		}
		bi := buildinfo.Read()
		want := "postern-relay " + bi.Version + " (commit " + bi.ShortCommit() + ", built " + bi.Date + ", "
		if !strings.HasPrefix(out.String(), want) || !strings.Contains(out.String(), "protocol ") {
			t.Errorf("%q printed %q, want it to start with %q", args, out.String(), want)
		}
	}
}

// TestVersionStamped builds the binary as a release does, with the
// version set through the linker, and checks that version and --version
// print it with the commit the checkout is at.
func TestVersionStamped(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the relay")
	}
	bin := filepath.Join(t.TempDir(), "postern-relay")
	build := exec.Command("go", "build", "-buildvcs=auto", "-ldflags", "-X github.com/postern/postern/internal/buildinfo.version=v9.9.9-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The commit the toolchain stamped, if it could (it cannot outside a
	// checkout, nor in a git worktree, whose .git is a file).
	meta, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	commit := ""
	if _, rest, ok := strings.Cut(string(meta), "vcs.revision="); ok {
		commit = strings.Fields(rest)[0][:12]
	} else {
		t.Log("the toolchain stamped no commit here; checking the version only")
	}
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		got := string(out)
		if !strings.HasPrefix(got, "postern-relay v9.9.9-test (commit ") {
			t.Errorf("%s printed %q", arg, got)
		}
		if commit != "" && (!strings.Contains(got, "commit "+commit) || strings.Contains(got, "built unknown")) {
			t.Errorf("%s printed %q, want commit %s and its date", arg, got, commit)
		}
	}
}
