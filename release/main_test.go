package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPrepareOut: an output directory is emptied only when everything in
// it is a release's; anything else is left alone and refused.
func TestPrepareOut(t *testing.T) {
	write := func(dir, name string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	fresh := filepath.Join(t.TempDir(), "dist")
	if err := prepareOut(fresh); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(fresh); err != nil || !fi.IsDir() {
		t.Fatalf("%s was not made: %v", fresh, err)
	}

	// An interrupted build: binaries, no SHA256SUMS.
	old := t.TempDir()
	write(old, "postern_1.0.0_linux_amd64")
	write(old, "postern-relay_1.0.0~rc.1_amd64.deb")
	write(old, sumsFile)
	if err := prepareOut(old); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(old); len(entries) != 0 {
		t.Errorf("%d files left in the old release directory", len(entries))
	}

	for name, setup := range map[string]func(dir string){
		"a file of someone else's": func(dir string) { write(dir, sumsFile); write(dir, "notes.txt") },
		"a directory":              func(dir string) { os.Mkdir(filepath.Join(dir, "postern_x"), 0o755) },
	} {
		dir := t.TempDir()
		setup(dir)
		before, _ := os.ReadDir(dir)
		if err := prepareOut(dir); err == nil {
			t.Errorf("%s: the directory was accepted", name)
		}
		if after, _ := os.ReadDir(dir); len(after) != len(before) {
			t.Errorf("%s: files were removed from a refused directory", name)
		}
	}
}

func TestVersionRE(t *testing.T) {
	for v, ok := range map[string]bool{
		"v1.2.3": true, "v0.0.0-dev.20261206161412.310701265010": true, "v1.2.3-rc.1": true,
		"1.2.3": false, "v1.2": false, "v01.2.3": false, "v1.2.3 -X main.x=y": false, "v1.2.3-": false, "v1.2.3-a..b": false,
	} {
		if versionRE.MatchString(v) != ok {
			t.Errorf("versionRE(%q) = %v, want %v", v, !ok, ok)
		}
	}
}
