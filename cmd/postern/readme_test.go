package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// walkStep is one "$ command" of the README's walk-through and the lines
// it shows under it.
type walkStep struct {
	cmd  string
	want []string
}

// readmeWalkthrough returns the steps of the console blocks between the
// two headings of README.md that frame the walk-through.
func readmeWalkthrough(t *testing.T, readme string) []walkStep {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "## Two people exchange a message")
	end := strings.Index(text, "## What is where")
	if start < 0 || end < start {
		t.Fatal("README.md: the walk-through's headings are missing")
	}
	var steps []walkStep
	in := false
	sc := bufio.NewScanner(strings.NewReader(text[start:end]))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "```console":
			in = true
		case in && line == "```":
			in = false
		case in && strings.HasPrefix(line, "$ "):
			steps = append(steps, walkStep{cmd: strings.TrimPrefix(line, "$ ")})
		case in:
			if len(steps) == 0 {
				t.Fatalf("README.md: output before the first command: %q", line)
			}
			steps[len(steps)-1].want = append(steps[len(steps)-1].want, line)
		}
	}
	if len(steps) < 10 {
		t.Fatalf("README.md: only %d walk-through steps found", len(steps))
	}
	return steps
}

// What differs from one run to the next, in the README's example output:
// hex IDs and keys, safety numbers, times, the directory ("…").
var (
	hexRun      = regexp.MustCompile(`\b[0-9a-f]{16,64}\b`)
	safetyNum   = regexp.MustCompile(`\b\d{5}( \d{5}){11}\b`)
	rfc3339Re   = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)
	tableTimeRe = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d UTC)?`)
)

// lineMatcher turns one line of example output into a regexp that
// matches the same line from another run.
func lineMatcher(line string) *regexp.Regexp {
	q := regexp.QuoteMeta(line)
	q = strings.ReplaceAll(q, "…", ".*")
	q = hexRun.ReplaceAllStringFunc(q, func(s string) string { return fmt.Sprintf("[0-9a-f]{%d}", len(s)) })
	q = safetyNum.ReplaceAllString(q, `\d{5}( \d{5}){11}`)
	q = rfc3339Re.ReplaceAllString(q, `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)`)
	q = tableTimeRe.ReplaceAllStringFunc(q, func(s string) string {
		if len(s) > len("2006-01-02 15:04") {
			return `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+`
		}
		return `\d{4}-\d\d-\d\d \d\d:\d\d`
	})
	return regexp.MustCompile("^" + q + "$")
}

// TestReadmeWalkthrough runs README.md's walk-through as written, in an
// empty directory, against a real relay built from this tree, and checks
// that every command succeeds and prints what the README shows under it.
// Two things are adapted: the relay listens on a free port instead of
// 7878, and "go build" runs in this module (go -C) while writing the
// binary into the walk-through's directory.
func TestReadmeWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both binaries")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to build the binaries")
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	steps := readmeWalkthrough(t, filepath.Join(repo, "README.md"))
	tmp := t.TempDir()
	walk := filepath.Join(tmp, "walk")
	if err := os.Mkdir(walk, 0o700); err != nil {
		t.Fatal(err)
	}

	// The relay, as the README's first command runs it, on a free port.
	relayBin := filepath.Join(tmp, "postern-relay")
	if out, err := exec.Command(goBin, "-C", repo, "build", "-o", relayBin, "./cmd/postern-relay").CombinedOutput(); err != nil {
		t.Fatalf("building the relay: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	relay := exec.CommandContext(ctx, relayBin, "serve", "--listen", addr, "--data", filepath.Join(tmp, "relay-data"))
	logPath := filepath.Join(tmp, "relay.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	relay.Stdout, relay.Stderr = logFile, logFile
	relay.Env = withoutPostern(os.Environ())
	if err := relay.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		relay.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("relay log:\n%s", b)
		}
	})
	waitReady(t, "http://"+addr+"/readyz")

	// One bash script for the whole walk-through (the export carries on),
	// with a marker before each command's output.
	const marker = "@@walk-step "
	var script strings.Builder
	script.WriteString("set -e\n")
	for i, s := range steps {
		cmd := strings.ReplaceAll(s.cmd, "127.0.0.1:7878", addr)
		if strings.HasPrefix(cmd, "go build -o postern ") {
			cmd = strings.Replace(cmd, "go build -o postern ", "go -C "+shellQuote(repo)+" build -o \"$PWD/postern\" ", 1)
		}
		fmt.Fprintf(&script, "echo '%s%d'\n%s\n", marker, i, cmd)
	}
	sh := exec.Command("bash", "-c", script.String())
	sh.Dir = walk
	sh.Env = append(withoutPostern(os.Environ()), "PATH="+filepath.Dir(goBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stderr strings.Builder
	sh.Stderr = &stderr
	out, err := sh.Output()
	if err != nil {
		t.Fatalf("the walk-through failed: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}

	got := map[int][]string{}
	cur := -1
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		var n int
		if _, err := fmt.Sscanf(line, marker+"%d", &n); err == nil && strings.HasPrefix(line, marker) {
			cur = n
			got[cur] = nil
			continue
		}
		got[cur] = append(got[cur], line)
	}
	for i, s := range steps {
		g := got[i]
		if len(g) != len(s.want) {
			t.Errorf("$ %s\nprinted %d lines, the README shows %d:\n%s", s.cmd, len(g), len(s.want), strings.Join(g, "\n"))
			continue
		}
		for j, w := range s.want {
			w = strings.ReplaceAll(w, "127.0.0.1:7878", addr)
			if !lineMatcher(w).MatchString(g[j]) {
				t.Errorf("$ %s\nline %d: printed %q, the README shows %q", s.cmd, j+1, g[j], w)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(walk, "downloads", "discharge-letter.pdf")); err != nil {
		t.Errorf("the saved file is not where the README says: %v", err)
	}
}

func withoutPostern(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "POSTERN_") {
			out = append(out, kv)
		}
	}
	return out
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// waitReady polls the relay's readiness endpoint (a hang guard, not a
// timing assertion).
func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relay is not ready at %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
