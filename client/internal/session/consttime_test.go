package session

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// secretNames are the fields and variables of this package that hold
// secret keys (or, for initID, a value compared against one in the state).
// None of them may be compared with ==, != or bytes.Equal, whose time
// depends on where the operands first differ: crypto/subtle instead.
var secretNames = map[string]bool{
	"rk": true, "cks": true, "ckr": true, "ck": true, "next": true, "mk": true,
	"hk": true, "hks": true, "hkr": true, "nhks": true, "nhkr": true, "nhk": true,
	"ikm": true, "ss": true, "initID": true, "dhs": true, "dkSeed": true,
}

// secretOperand reports whether e names a secret: x, s.x, &s.x, *x, x[:],
// x[i] with x in secretNames.
func secretOperand(e ast.Expr) bool {
	for {
		switch v := e.(type) {
		case *ast.ParenExpr:
			e = v.X
		case *ast.StarExpr:
			e = v.X
		case *ast.UnaryExpr:
			e = v.X
		case *ast.SliceExpr:
			e = v.X
		case *ast.IndexExpr:
			e = v.X
		case *ast.SelectorExpr:
			return secretNames[v.Sel.Name]
		case *ast.Ident:
			return secretNames[v.Name]
		default:
			return false
		}
	}
}

func isNil(e ast.Expr) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == "nil"
}

// TestSecretComparisonsConstantTime parses the package's code and fails on
// a variable-time comparison of a secret (the previous release compared
// header keys of skipped entries with ==).
func TestSecretComparisonsConstantTime(t *testing.T) {
	fset := token.NewFileSet()
	files, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, fi := range files {
		name := fi.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			switch v := n.(type) {
			case *ast.BinaryExpr:
				if (v.Op == token.EQL || v.Op == token.NEQ) && !isNil(v.X) && !isNil(v.Y) &&
					(secretOperand(v.X) || secretOperand(v.Y)) {
					t.Errorf("%s: secret compared with %s; use crypto/subtle", fset.Position(v.Pos()), v.Op)
				}
			case *ast.CallExpr:
				sel, ok := v.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "bytes" && sel.Sel.Name == "Equal" {
					for _, a := range v.Args {
						if secretOperand(a) {
							t.Errorf("%s: secret compared with bytes.Equal; use crypto/subtle", fset.Position(v.Pos()))
						}
					}
				}
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no source files checked")
	}
}
