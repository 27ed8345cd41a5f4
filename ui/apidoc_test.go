package ui

import (
	"os"
	"strings"
	"testing"
)

// TestAPIDocumented: every endpoint of the route table has a heading in
// docs/API.md, so that none is added without its documentation.
func TestAPIDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	var headings []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "### ") {
			headings = append(headings, line)
		}
	}
	for pattern := range apiRoutes {
		found := false
		for _, h := range headings {
			found = found || strings.Contains(h, "`"+pattern+"`")
		}
		if !found {
			t.Errorf("docs/API.md has no heading for %s", pattern)
		}
	}
}
