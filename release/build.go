package main

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// build is one release build: its version and the commit it is made from.
type build struct {
	version    string
	commit     string
	commitTime time.Time
	log        io.Writer
}

// clone checks the commit out into dst, a new directory. The clone shares
// the repository's objects (git clone --shared), so it costs a checkout,
// not a copy of the history.
func (b *build) clone(root, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if _, err := git("", "clone", "--quiet", "--shared", "--no-checkout", root, dst); err != nil {
		return err
	}
	if _, err := git(dst, "checkout", "--quiet", "--detach", b.commit); err != nil {
		return err
	}
	return nil
}

// all builds every binary and package from the checkout src into out and
// writes SHA256SUMS. env is added to the go command's environment.
func (b *build) all(src, out string, env []string) error {
	var names []string
	for _, p := range platforms {
		for _, c := range commands {
			name := b.binaryName(c, p)
			start := time.Now()
			if err := b.goBuild(src, c, p, filepath.Join(out, name), env); err != nil {
				return err
			}
			if err := b.verify(src, filepath.Join(out, name), p); err != nil {
				return err
			}
			fmt.Fprintf(b.log, "  %-44s %s\n", name, time.Since(start).Round(100*time.Millisecond))
			names = append(names, name)
		}
	}
	for _, p := range platforms {
		if p.goos != "linux" {
			continue
		}
		name, err := b.deb(src, out, p, filepath.Join(out, b.binaryName("postern-relay", p)))
		if err != nil {
			return fmt.Errorf("Debian package for %s: %v", p, err)
		}
		fmt.Fprintf(b.log, "  %s\n", name)
		names = append(names, name)
	}
	return writeSums(out, names)
}

// binaryName is a release file name: postern-relay_1.2.3_linux_amd64.
func (b *build) binaryName(cmd string, p platform) string {
	name := fmt.Sprintf("%s_%s_%s_%s", cmd, strings.TrimPrefix(b.version, "v"), p.goos, p.goarch)
	if p.goos == "windows" {
		name += ".exe"
	}
	return name
}

// ldflags strip the symbol table and DWARF (-s -w), empty the build ID,
// which would otherwise hash the inputs' paths and the toolchain's own ID,
// and stamp the version.
func (b *build) ldflags() string {
	return fmt.Sprintf("-s -w -buildid= -X %s=%s", versionVar, b.version)
}

// goBuild builds ./cmd/<cmd> for p into dst: static (no cgo), without file
// system paths (-trimpath), with the commit in the build information
// (-buildvcs=true), and with every setting that changes the output fixed
// here rather than taken from the caller's environment.
func (b *build) goBuild(src, cmd string, p platform, dst string, env []string) error {
	c := exec.Command("go", "build",
		"-trimpath", "-buildvcs=true",
		"-ldflags", b.ldflags(),
		"-o", dst, "./cmd/"+cmd)
	c.Dir = src
	c.Env = append(buildEnv(p), env...)
	c.Stdout, c.Stderr = b.log, b.log
	if err := c.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/%s for %s: %v", cmd, p, err)
	}
	return nil
}

// buildEnv is the environment for a build for p: the caller's, less every
// variable that would change the output, with those set explicitly.
// GOFLAGS is set so that a GOFLAGS from the go env file (such as
// -buildvcs=false) does not apply.
func buildEnv(p platform) []string {
	drop := map[string]bool{
		"GOOS": true, "GOARCH": true, "GOFLAGS": true, "GOEXPERIMENT": true,
		"GOAMD64": true, "GOARM64": true, "GOARM": true, "GO386": true,
		"GOPPC64": true, "GORISCV64": true, "GOWASM": true, "GOMIPS": true, "GOMIPS64": true,
		"CGO_ENABLED": true, "CGO_CFLAGS": true, "CGO_LDFLAGS": true, "CC": true, "CXX": true,
		"GODEBUG": true,
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	return append(env,
		"GOOS="+p.goos, "GOARCH="+p.goarch,
		"GOAMD64=v1", "GOARM64=v8.0",
		"CGO_ENABLED=0",
		"GOFLAGS=-mod=readonly",
	)
}

// verify checks what the release promises of a binary: its build
// information names the commit, unmodified, built without cgo and with
// -trimpath; the version is stamped when the source has the variable for
// it; a Linux binary has no dynamic loader or libraries.
func (b *build) verify(src, path string, p platform) error {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: build information: %v", path, err)
	}
	want := map[string]string{
		"vcs.revision": b.commit,
		"vcs.modified": "false",
		"CGO_ENABLED":  "0",
		"-trimpath":    "true",
		"GOOS":         p.goos,
		"GOARCH":       p.goarch,
	}
	got := map[string]string{}
	for _, s := range bi.Settings {
		got[s.Key] = s.Value
	}
	for k, v := range want {
		if got[k] != v {
			return fmt.Errorf("%s: build setting %s is %q, want %q", filepath.Base(path), k, got[k], v)
		}
	}
	// Until the source has internal/buildinfo the linker ignores -X for
	// it; once it does, the version string must be in the binary.
	if _, err := os.Stat(filepath.Join(src, "internal", "buildinfo")); err == nil {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !bytes.Contains(data, []byte(b.version)) {
			return fmt.Errorf("%s: version %s is not stamped in the binary", filepath.Base(path), b.version)
		}
	}
	if p.goos == "linux" {
		return checkStatic(path)
	}
	return nil
}

// checkStatic fails if the ELF file at path asks for a dynamic loader or
// shared libraries.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("%s: not static: it names a dynamic loader", filepath.Base(path))
		}
	}
	libs, err := f.ImportedLibraries()
	if err == nil && len(libs) > 0 {
		return fmt.Errorf("%s: not static: it needs %s", filepath.Base(path), strings.Join(libs, ", "))
	}
	return nil
}
