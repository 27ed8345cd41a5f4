package ui

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports: the web app uses the library's public API only: of this
// module's packages it imports client alone (what client itself needs is
// its business), and nothing outside the standard library besides. The
// browser-test driver is a test dependency and must not reach the binary.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, "github.com/postern/postern/ui").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	imports := strings.Fields(string(out))
	if len(imports) < 5 {
		t.Fatalf("go list listed only %d imports", len(imports))
	}
	for _, p := range imports {
		first, _, _ := strings.Cut(p, "/")
		switch {
		case p == "github.com/postern/postern/client":
		case !strings.Contains(first, "."): // the standard library
		default:
			t.Errorf("ui imports %s", p)
		}
	}
	out, err = exec.Command("go", "list", "-deps", "github.com/postern/postern/cmd/postern").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, d := range strings.Fields(string(out)) {
		if strings.HasPrefix(d, "github.com/chromedp/") {
			t.Errorf("postern links %s", d)
		}
	}
}
