package keys_test

// TestSpecLabels keeps the domain-separation labels and signature contexts
// of the code and of protocol/SPEC.md in step, in both directions, for the
// whole module: a label added in code without a SPEC row, a SPEC row whose
// label the code no longer uses, and a label constant nobody uses all fail.
// It reads the source, so labels added later (in any package) are picked up
// without touching this test.

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const (
	moduleRoot  = ".."
	modulePath  = "github.com/postern/postern"
	specPath    = "../protocol/SPEC.md"
	labelPrefix = "postern.v1 " // protocol.LabelPrefix
	bareLabel   = "postern.v1"  // the ML-DSA context and the subprotocol

	labelAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789 .-"
)

// codeLabel is one label or context found in the code.
type codeLabel struct {
	value string
	pos   string // file:line of its first appearance
}

// goPackage is the parsed non-test Go source of one directory.
type goPackage struct {
	path  string // import path
	files []*ast.File
	// consts maps a package-level or local constant name to its
	// expression and the file it is in (for import resolution).
	consts map[string]constDef
}

type constDef struct {
	expr ast.Expr
	file *ast.File
}

type module struct {
	fset *token.FileSet
	pkgs map[string]*goPackage // by import path
}

// loadModule parses every non-test .go file of the module, skipping
// testdata directories (they hold data, not code).
func loadModule(t *testing.T) *module {
	t.Helper()
	m := &module{fset: token.NewFileSet(), pkgs: map[string]*goPackage{}}
	err := filepath.WalkDir(moduleRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != moduleRoot && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(m.fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(moduleRoot, filepath.Dir(path))
		if err != nil {
			return err
		}
		imp := modulePath
		if rel != "." {
			imp += "/" + filepath.ToSlash(rel)
		}
		p := m.pkgs[imp]
		if p == nil {
			p = &goPackage{path: imp, consts: map[string]constDef{}}
			m.pkgs[imp] = p
		}
		p.files = append(p.files, f)
		ast.Inspect(f, func(n ast.Node) bool {
			gd, ok := n.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				return true
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						p.consts[name.Name] = constDef{expr: vs.Values[i], file: f}
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.pkgs[modulePath+"/keys"] == nil || m.pkgs[modulePath+"/protocol"] == nil {
		t.Fatalf("module source not found under %s", moduleRoot)
	}
	return m
}

// importPath returns the import path a file names local (a package name
// or alias), or "".
func importPath(f *ast.File, local string) string {
	for _, is := range f.Imports {
		p, _ := strconv.Unquote(is.Path.Value)
		name := p[strings.LastIndex(p, "/")+1:]
		if is.Name != nil {
			name = is.Name.Name
		}
		if name == local {
			return p
		}
	}
	return ""
}

// eval returns the value of a constant string expression of our own code
// (literals, our constants, +), or false.
func (m *module) eval(p *goPackage, f *ast.File, e ast.Expr, depth int) (string, bool) {
	if depth > 20 {
		return "", false
	}
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.ParenExpr:
		return m.eval(p, f, e.X, depth+1)
	case *ast.Ident:
		if c, ok := p.consts[e.Name]; ok {
			return m.eval(p, c.file, c.expr, depth+1)
		}
	case *ast.SelectorExpr:
		x, ok := e.X.(*ast.Ident)
		if !ok {
			return "", false
		}
		q := m.pkgs[importPath(f, x.Name)]
		if q == nil {
			return "", false
		}
		if c, ok := q.consts[e.Sel.Name]; ok {
			return m.eval(q, c.file, c.expr, depth+1)
		}
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", false
		}
		a, ok := m.eval(p, f, e.X, depth+1)
		if !ok {
			return "", false
		}
		b, ok := m.eval(p, f, e.Y, depth+1)
		return a + b, ok
	}
	return "", false
}

// constPrefix evaluates the operands of a + chain from the left for as long
// as they are constant: "postern.v1 account-log" + label gives the label.
func (m *module) constPrefix(p *goPackage, f *ast.File, e ast.Expr) (string, bool) {
	if s, ok := m.eval(p, f, e, 0); ok {
		return s, true
	}
	b, ok := e.(*ast.BinaryExpr)
	if !ok || b.Op != token.ADD {
		return "", false
	}
	return m.constPrefix(p, f, b.X)
}

func isLabel(s string) bool {
	return s == bareLabel || (strings.HasPrefix(s, labelPrefix) && len(s) > len(labelPrefix))
}

// codeLabels returns every label and signature context of the code:
//   - every constant string expression (a literal, or a + chain evaluated
//     as far as it is constant) whose value is "postern.v1" or starts with
//     "postern.v1 ", wherever it appears;
//   - every string constant whose name contains "Context" (the house
//     naming of signature contexts);
//   - every constant first argument of a call to a method Sign or Verify
//     (how signature contexts are passed).
//
// It also returns the label and context constants no code refers to.
func codeLabels(t *testing.T, m *module) (map[string]codeLabel, []string) {
	t.Helper()
	found := map[string]codeLabel{}
	add := func(v string, pos token.Pos) {
		if strings.HasPrefix(v, labelPrefix) {
			// A label ends where its alphabet does: keyLabel+"\x00" is
			// the label and a separator.
			if i := strings.IndexFunc(v, func(r rune) bool { return !strings.ContainsRune(labelAlphabet, r) }); i >= 0 {
				v = v[:i]
			}
		}
		if _, ok := found[v]; !ok {
			found[v] = codeLabel{value: v, pos: m.fset.Position(pos).String()}
		}
	}
	type def struct {
		pkg, name, pos string
		id             *ast.Ident
	}
	var defs []def
	defIdents := map[*ast.Ident]bool{}
	for _, p := range m.pkgs {
		for _, f := range p.files {
			var visit func(n ast.Node) bool
			visit = func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.GenDecl:
					if n.Tok != token.CONST {
						return true
					}
					for _, s := range n.Specs {
						vs := s.(*ast.ValueSpec)
						for i, name := range vs.Names {
							if i >= len(vs.Values) {
								continue
							}
							v, ok := m.eval(p, f, vs.Values[i], 0)
							if !ok {
								continue
							}
							isContext := strings.Contains(name.Name, "Context")
							if isContext {
								add(v, name.Pos())
							}
							if isLabel(v) || isContext {
								defs = append(defs, def{p.path, name.Name, m.fset.Position(name.Pos()).String(), name})
								defIdents[name] = true
							}
						}
					}
				case *ast.BinaryExpr:
					if v, ok := m.constPrefix(p, f, n); ok && isLabel(v) {
						add(v, n.Pos())
						// Its operands are parts of this label, not labels.
						return false
					}
				case *ast.BasicLit:
					if v, ok := m.eval(p, f, n, 0); ok && isLabel(v) {
						add(v, n.Pos())
					}
				case *ast.CallExpr:
					if sel, ok := n.Fun.(*ast.SelectorExpr); ok && (sel.Sel.Name == "Sign" || sel.Sel.Name == "Verify") && len(n.Args) >= 2 {
						if v, ok := m.eval(p, f, n.Args[0], 0); ok {
							add(v, n.Args[0].Pos())
						}
					}
				}
				return true
			}
			ast.Inspect(f, visit)
		}
	}
	// References to each constant, other than its own definition.
	uses := map[string]int{}
	for _, p := range m.pkgs {
		for _, f := range p.files {
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.SelectorExpr:
					if x, ok := n.X.(*ast.Ident); ok {
						if imp := importPath(f, x.Name); imp != "" {
							uses[imp+"."+n.Sel.Name]++
							return false
						}
					}
				case *ast.Ident:
					if !defIdents[n] {
						uses[p.path+"."+n.Name]++
					}
				}
				return true
			})
		}
	}
	var unused []string
	for _, d := range defs {
		if uses[d.pkg+"."+d.name] == 0 {
			unused = append(unused, d.name+" ("+d.pos+")")
		}
	}
	sort.Strings(unused)
	return found, unused
}

// specLabels returns every label of SPEC.md's label tables (a table whose
// first header cell starts with "label" or "context"), with its line
// number. Each row's first cell must be one label in backquotes.
func specLabels(t *testing.T) (map[string]int, int) {
	t.Helper()
	f, err := os.Open(specPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cell := regexp.MustCompile("^`([^`]+)`$")
	labels := map[string]int{}
	tables := 0
	inTable := false
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(s, "|") {
			inTable = false
			continue
		}
		cells := strings.Split(strings.Trim(s, "|"), "|")
		first := strings.TrimSpace(cells[0])
		switch {
		case !inTable && (strings.HasPrefix(first, "label") || strings.HasPrefix(first, "context")):
			inTable = true
			tables++
		case inTable && strings.HasPrefix(first, "---"):
		case inTable:
			mm := cell.FindStringSubmatch(first)
			if mm == nil {
				t.Errorf("SPEC.md:%d: a label table row whose first cell is not one `label`: %q", line, first)
				continue
			}
			if _, dup := labels[mm[1]]; !dup {
				labels[mm[1]] = line
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return labels, tables
}

// specProseLabels returns every "postern.v1 …" label quoted in SPEC.md
// outside the tables (in backquotes or double quotes), so that a label
// written into the text is also listed in a table.
func specProseLabels(t *testing.T) map[string]int {
	t.Helper()
	b, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("[`\"](postern\\.v1 [a-z0-9 -]+)[`\"]")
	out := map[string]int{}
	for i, l := range strings.Split(string(b), "\n") {
		for _, mm := range re.FindAllStringSubmatch(l, -1) {
			if _, ok := out[mm[1]]; !ok {
				out[mm[1]] = i + 1
			}
		}
	}
	return out
}

func TestSpecLabels(t *testing.T) {
	m := loadModule(t)
	code, unused := codeLabels(t, m)
	spec, tables := specLabels(t)
	// Sections 8, 9, 11 and 12 each have a label table; fewer means the
	// table format changed and this test would check nothing.
	if tables < 4 || len(spec) < 20 || len(code) < 20 {
		t.Fatalf("found %d label tables with %d labels in SPEC.md and %d labels in code; the extraction is broken", tables, len(spec), len(code))
	}
	// One of each way a label reaches the code, so that a change to the
	// extraction that loses a kind shows here rather than as silence.
	for _, v := range []string{
		"postern.v1 hybrid-sig",             // a literal constant
		"postern.v1 sealed",                 // protocol.LabelPrefix + "sealed"
		"postern.v1 account-log",            // a constant prefix of a non-constant +
		"postern.v1 x25519 low-order probe", // a literal in an expression
		"postern.v1 relay-key",              // keyLabel + "\x00"
		"device-cert",                       // a constant named Context…
		"sealed",                            // SealedSignatureContext
	} {
		if _, ok := code[v]; !ok {
			t.Errorf("the extraction no longer finds %q in code", v)
		}
	}
	for _, v := range sortedKeys(code) {
		if _, ok := spec[v]; !ok {
			t.Errorf("label or context %q is used in code (%s) but is in no label table of SPEC.md", v, code[v].pos)
		}
	}
	for _, v := range sortedKeys(spec) {
		if _, ok := code[v]; !ok {
			t.Errorf("SPEC.md:%d lists label or context %q, which no code uses", spec[v], v)
		}
	}
	prose := specProseLabels(t)
	for _, v := range sortedKeys(prose) {
		if _, ok := spec[v]; !ok {
			t.Errorf("SPEC.md:%d names label %q outside every label table", prose[v], v)
		}
	}
	for _, u := range unused {
		t.Errorf("label or context constant %s is defined but never used", u)
	}
	t.Logf("%d labels and contexts in code, %d in %d SPEC tables", len(code), len(spec), tables)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
