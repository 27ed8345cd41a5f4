// Command release builds a Postern release from one commit: static,
// reproducible binaries of postern and postern-relay for every platform in
// platforms, a Debian package of the relay for each Linux platform, and a
// SHA256SUMS file, all in one output directory (dist/ by default).
//
// From the repository root, `bash .ci/release [VERSION]` runs it; directly:
//
//	cd release && go run . [-version v1.2.3] [-out ../dist] [-check]
//
// The release is built from a fresh clone of the commit (HEAD unless -ref
// says otherwise), never from the working tree, so that what is released
// is what is committed, and the binaries' build information names that
// commit with vcs.modified=false. -check builds the same commit a second
// time from a clone at another path with an empty build cache and compares
// the two SHA256SUMS files byte for byte.
//
// The tool is a module of its own so that the packaging library (nfpm) and
// its dependencies stay out of the main module's go.mod: nothing of Postern
// imports them, and the relay's dependency list stays what it links.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// modulePath is the main module; versionVar is the variable the linker
// sets to the release version (internal/buildinfo).
const (
	modulePath = "github.com/postern/postern"
	versionVar = modulePath + "/internal/buildinfo.version"
)

// platform is one GOOS/GOARCH target.
type platform struct{ goos, goarch string }

func (p platform) String() string { return p.goos + "/" + p.goarch }

// platforms are the release targets: the relay's servers (Linux on amd64
// and arm64) and the clinicians' workstations (Windows, macOS on Apple
// silicon), for which the client is built too.
var platforms = []platform{
	{"linux", "amd64"},
	{"linux", "arm64"},
	{"windows", "amd64"},
	{"darwin", "arm64"},
}

// commands are the binaries of a release.
var commands = []string{"postern", "postern-relay"}

// versionRE accepts a semantic version with a leading v, optionally with a
// pre-release part: it goes into a linker flag and file names, so nothing
// else is allowed.
var versionRE = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z]+(\.[0-9A-Za-z]+)*)?$`)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "release: error: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	version := fs.String("version", "", "release version, v1.2.3 or v1.2.3-rc.1 (default: the v* tag on the commit, else v0.0.0-dev.DATE.COMMIT)")
	out := fs.String("out", "", "output directory, replaced if it holds an earlier release (default: ROOT/dist)")
	ref := fs.String("ref", "HEAD", "commit to build")
	root := fs.String("root", "", "repository (default: the one around the working directory)")
	check := fs.Bool("check", false, "build a second time from a clone at another path with an empty build cache and compare SHA256SUMS")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: go run . [flags] (from release/), or bash .ci/release [VERSION] [--check]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	start := time.Now()

	if *root == "" {
		r, err := git("", "rev-parse", "--show-toplevel")
		if err != nil {
			return fmt.Errorf("not in a git repository: %v", err)
		}
		*root = r
	}
	commit, err := git(*root, "rev-parse", "--verify", *ref+"^{commit}")
	if err != nil {
		return fmt.Errorf("commit %q: %v", *ref, err)
	}
	ct, err := git(*root, "show", "-s", "--format=%ct", commit)
	if err != nil {
		return err
	}
	secs, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return fmt.Errorf("commit time %q: %v", ct, err)
	}
	commitTime := time.Unix(secs, 0).UTC()
	if *version == "" {
		*version = defaultVersion(*root, commit, commitTime)
	}
	if !versionRE.MatchString(*version) {
		return fmt.Errorf("version %q is not of the form v1.2.3 or v1.2.3-rc.1", *version)
	}
	if *out == "" {
		*out = filepath.Join(*root, "dist")
	}
	if err := prepareOut(*out); err != nil {
		return err
	}

	tmp, err := os.MkdirTemp("", "postern-release-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	b := &build{
		version:    *version,
		commit:     commit,
		commitTime: commitTime,
		log:        stdout,
	}
	fmt.Fprintf(stdout, "release %s from commit %s (%s), %s\n", b.version, commit, commitTime.Format(time.RFC3339), goVersion())
	src := filepath.Join(tmp, "a", "src")
	if err := b.clone(*root, src); err != nil {
		return err
	}
	if err := b.all(src, *out, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "release %s in %s (%s)\n", b.version, *out, time.Since(start).Round(time.Second))

	if !*check {
		return nil
	}
	start = time.Now()
	// A different source path and an empty build cache: a difference in
	// either would show in the binaries if -trimpath or the cache leaked
	// into them.
	srcB := filepath.Join(tmp, "b", "elsewhere", "postern")
	outB := filepath.Join(tmp, "b", "dist")
	if err := b.clone(*root, srcB); err != nil {
		return err
	}
	if err := os.MkdirAll(outB, 0o755); err != nil {
		return err
	}
	cache := filepath.Join(tmp, "b", "gocache")
	if err := b.all(srcB, outB, []string{"GOCACHE=" + cache}); err != nil {
		return err
	}
	if err := compareSums(filepath.Join(*out, sumsFile), filepath.Join(outB, sumsFile)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "reproducible: a second build from %s with an empty build cache has the same %s (%s)\n", srcB, sumsFile, time.Since(start).Round(time.Second))
	return nil
}

// defaultVersion is the commit's v* tag, or a development version that
// sorts before v0.0.0 and names the commit's time and hash.
func defaultVersion(root, commit string, t time.Time) string {
	if tag, err := git(root, "describe", "--tags", "--exact-match", "--match", "v*", commit); err == nil && versionRE.MatchString(tag) {
		return tag
	}
	return fmt.Sprintf("v0.0.0-dev.%s.%s", t.Format("20060102150405"), commit[:12])
}

// prepareOut makes out an empty directory. An existing directory is
// emptied only if everything in it is a release's (SHA256SUMS and files
// named postern_… or postern-relay_…, as an interrupted build leaves
// them): a mistyped -out must not delete anything else.
func prepareOut(out string) error {
	entries, err := os.ReadDir(out)
	switch {
	case os.IsNotExist(err):
		return os.MkdirAll(out, 0o755)
	case err != nil:
		return err
	}
	for _, e := range entries {
		if !isReleaseFile(e) {
			return fmt.Errorf("%s holds %s, which is not part of a release; name an empty or new directory", out, e.Name())
		}
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(out, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// isReleaseFile reports whether e is a file a release build writes.
func isReleaseFile(e os.DirEntry) bool {
	if !e.Type().IsRegular() {
		return false
	}
	n := e.Name()
	return n == sumsFile || strings.HasPrefix(n, "postern_") || strings.HasPrefix(n, "postern-relay_")
}

// git runs git in dir and returns its trimmed standard output.
func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(outb)), nil
}

func goVersion() string {
	v, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return "go (unknown version)"
	}
	return strings.TrimSpace(string(v))
}
