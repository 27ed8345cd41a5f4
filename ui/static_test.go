package ui

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// TestStaticFollowsCSP: the embedded page has nothing the Content Security
// Policy would block, so that nothing silently fails in the browser: no
// inline script, no event-handler attribute, no style attribute or
// element, no javascript: URL, nothing loaded from another origin.
func TestStaticFollowsCSP(t *testing.T) {
	checks := []struct {
		what string
		re   *regexp.Regexp
	}{
		{"an inline script", regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]`)},
		{"a script without src", regexp.MustCompile(`(?i)<script(?:(?:\s(?:type|defer|async)(?:="[^"]*")?)*)\s*>`)},
		{"an event-handler attribute", regexp.MustCompile(`(?i)\son[a-z]+\s*=`)},
		{"a style attribute", regexp.MustCompile(`(?i)<[^>]+\sstyle\s*=`)},
		{"a style element", regexp.MustCompile(`(?i)<style[\s>]`)},
		{"a javascript: URL", regexp.MustCompile(`(?i)javascript:`)},
		{"another origin", regexp.MustCompile(`(?i)(?:src|href)\s*=\s*"(?:https?:)?//`)},
		{"code from a string", regexp.MustCompile(`\b(?:eval|Function)\(|setTimeout\("|innerHTML|outerHTML|insertAdjacentHTML|document\.write`)},
		{"browser storage", regexp.MustCompile(`\b(?:localStorage|sessionStorage|indexedDB)\b`)},
	}
	n := 0
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		for _, c := range checks {
			if strings.HasSuffix(p, ".css") && c.what != "another origin" {
				continue
			}
			if loc := c.re.FindIndex(b); loc != nil {
				t.Errorf("%s has %s: %q", p, c.what, b[loc[0]:loc[1]])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Fatalf("only %d embedded files", n)
	}
}
