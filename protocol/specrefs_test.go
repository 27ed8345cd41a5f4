package protocol

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// specFileRef is a reference to a specification file other than SPEC.md,
// such as "SPEC-attach.md": the specification is one file, and every such
// name must exist or the reference leads nowhere.
var specFileRef = regexp.MustCompile(`SPEC-[A-Za-z0-9_.-]*\.md`)

// specSectionRef is a reference to a numbered section of SPEC.md, with
// the section's name when one follows in quotes: `SPEC.md section 12.2`,
// `SPEC.md section 9 "Erasure"`.
var specSectionRef = regexp.MustCompile(`SPEC\.md,? sections? (\d+(?:\.\d+)?)(?: "([^"]+)")?`)

// commentWrap is a line break inside a comment (Go, shell, Markdown).
var commentWrap = regexp.MustCompile(`\s*\n\s*(?://|#)?\s*`)

// treeFiles calls fn with every text file of the module (the parent of
// this package), its path relative to the module, and its content.
func treeFiles(t *testing.T, fn func(rel string, b []byte)) {
	t.Helper()
	root := ".."
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == ".git" || (strings.HasPrefix(name, ".") && path != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Size() > 4<<20 {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.IndexByte(b[:min(len(b), 8192)], 0) >= 0 {
			return nil // binary
		}
		rel, _ := filepath.Rel(root, path)
		n++
		fn(filepath.ToSlash(rel), b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Fatalf("read only %d files: not the whole tree", n)
	}
}

func lineOf(b []byte, off int) int { return bytes.Count(b[:off], []byte("\n")) + 1 }

// TestNoReferenceToMissingSpecFile: no file names a SPEC-*.md that does
// not exist; sections of protocol/SPEC.md are referred to by number.
func TestNoReferenceToMissingSpecFile(t *testing.T) {
	treeFiles(t, func(rel string, b []byte) {
		if rel == "protocol/specrefs_test.go" {
			return
		}
		for _, m := range specFileRef.FindAllIndex(b, -1) {
			name := string(b[m[0]:m[1]])
			found := false
			for _, dir := range []string{filepath.Dir(filepath.Join("..", rel)), ".", ".."} {
				if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
					found = true
				}
			}
			if !found {
				t.Errorf("%s:%d refers to %s, which does not exist (refer to a section of protocol/SPEC.md)", rel, lineOf(b, m[0]), name)
			}
		}
	})
}

// specSections reads SPEC.md's numbered headings: "12.2" → its title,
// and for each number the titles of the headings inside it (numbered or
// not), so that `section 9 "Erasure"` can be checked.
func specSections(t *testing.T) (titles map[string]string, inside map[string][]string) {
	t.Helper()
	b, err := os.ReadFile("SPEC.md")
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile(`^#{2,4} (?:(\d+(?:\.\d+)?)\.? )?(.+)$`)
	titles, inside = map[string]string{}, map[string][]string{}
	var major, minor string
	for _, line := range strings.Split(string(b), "\n") {
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		num, title := m[1], strings.TrimSpace(m[2])
		if num != "" {
			titles[num] = title
			if i := strings.IndexByte(num, '.'); i >= 0 {
				major, minor = num[:i], num
			} else {
				major, minor = num, ""
			}
		}
		for _, s := range []string{major, minor} {
			if s != "" {
				inside[s] = append(inside[s], title)
			}
		}
	}
	return titles, inside
}

// TestSpecSectionReferencesExist: every "SPEC.md section N" in the tree
// names a section SPEC.md has, and a quoted name after it is a heading in
// that section.
func TestSpecSectionReferencesExist(t *testing.T) {
	titles, inside := specSections(t)
	if len(titles) < 20 {
		t.Fatalf("found %d numbered sections in SPEC.md: the heading pattern is wrong", len(titles))
	}
	refs := 0
	treeFiles(t, func(rel string, b []byte) {
		for _, m := range specSectionRef.FindAllSubmatchIndex(b, -1) {
			refs++
			num := string(b[m[2]:m[3]])
			if _, ok := titles[num]; !ok {
				t.Errorf("%s:%d refers to SPEC.md section %s, which does not exist", rel, lineOf(b, m[0]), num)
				continue
			}
			if m[4] < 0 {
				continue
			}
			// A name may wrap onto the next comment line.
			name := commentWrap.ReplaceAllString(string(b[m[4]:m[5]]), " ")
			ok := false
			for _, title := range inside[num] {
				if strings.Contains(strings.ToLower(title), strings.ToLower(name)) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s:%d refers to SPEC.md section %s %q, which has no heading of that name", rel, lineOf(b, m[0]), num, name)
			}
		}
	})
	if refs == 0 {
		t.Fatal("no section reference found: the pattern is wrong")
	}
}
