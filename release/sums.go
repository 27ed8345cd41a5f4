package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// sumsFile lists the SHA-256 of every file of a release, in the format of
// sha256sum, so that `sha256sum -c SHA256SUMS` checks a download.
const sumsFile = "SHA256SUMS"

// writeSums writes SHA256SUMS in dir for the named files, sorted by name.
func writeSums(dir string, names []string) error {
	names = slices.Sorted(slices.Values(names))
	var b strings.Builder
	for _, name := range names {
		sum, err := fileSHA256(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, name)
	}
	return os.WriteFile(filepath.Join(dir, sumsFile), []byte(b.String()), 0o644)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// compareSums fails unless the two SHA256SUMS files are identical, and
// names the files whose sums differ.
func compareSums(a, b string) error {
	da, err := os.ReadFile(a)
	if err != nil {
		return err
	}
	db, err := os.ReadFile(b)
	if err != nil {
		return err
	}
	if bytes.Equal(da, db) {
		return nil
	}
	sa, sb := parseSums(string(da)), parseSums(string(db))
	var diff []string
	for name, sum := range sa {
		if sb[name] != sum {
			diff = append(diff, name)
		}
	}
	for name := range sb {
		if _, ok := sa[name]; !ok {
			diff = append(diff, name)
		}
	}
	slices.Sort(diff)
	return fmt.Errorf("not reproducible: %s and %s differ in %s", a, b, strings.Join(diff, ", "))
}

// parseSums reads a SHA256SUMS file into name → sum.
func parseSums(text string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if ok {
			m[name] = sum
		}
	}
	return m
}
