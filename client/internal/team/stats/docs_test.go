package stats

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// jsonMembers returns the JSON member names of a struct type, nested ones
// too.
func jsonMembers(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		out = append(out, name)
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			out = append(out, jsonMembers(ft)...)
		}
	}
	return out
}

// section returns the text of a document from heading to the next
// heading of the same level.
func section(t *testing.T, path, heading string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	level := heading[:strings.IndexByte(heading, ' ')+1]
	_, rest, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("%s: no %q", path, heading)
	}
	body, _, _ := strings.Cut(rest, "\n"+level)
	return body
}

// The operators' document and the SPEC name every metric and every JSON
// member, so that they cannot drift from the code.
func TestDocsNameEveryFigure(t *testing.T) {
	docs := map[string]string{
		"docs/TEAMS.md": section(t, filepath.Join("..", "..", "..", "..", "docs", "TEAMS.md"), "## Workflow figures"),
		"SPEC.md 15.8": section(t, filepath.Join("..", "..", "..", "..", "protocol", "SPEC.md"),
			"### 15.8 Workflow figures and the team log (`client/internal/team/stats`)"),
	}
	members := jsonMembers(reflect.TypeOf(Snapshot{}))
	if len(members) < 20 {
		t.Fatalf("found %d JSON members", len(members))
	}
	for doc, text := range docs {
		for _, f := range families {
			if !strings.Contains(text, "`"+f.name+"`") {
				t.Errorf("%s does not name metric %s", doc, f.name)
			}
		}
		for _, m := range members {
			if !regexp.MustCompile("[`.]" + m + "[`.\\[]").MatchString(text) {
				t.Errorf("%s does not name JSON member %s", doc, m)
			}
		}
		for _, e := range escalationNames[1:] {
			if !strings.Contains(text, "`"+e+"`") {
				t.Errorf("%s does not name escalation type %s", doc, e)
			}
		}
	}
}
