package main

import (
	"strings"
	"testing"
)

// The policy file's directory enrolment: both keys or neither, an ID of 32
// hex digits, 1 to 16 fingerprints.
func TestPolicyDirectory(t *testing.T) {
	org := "0123456789abcdef0123456789abcdef"
	fp1, fp2 := strings.Repeat("a1", 32), strings.Repeat("b2", 32)
	p, err := readPolicy(writePolicy(t, "directory-organisation = "+org+"\ndirectory-administrators = "+fp1+", "+fp2+"\n"))
	if err != nil || p.directory == nil || p.directory.Organisation[0] != 0x01 || len(p.directory.Administrators) != 2 || p.directory.Administrators[1].String() != fp2 {
		t.Fatalf("%+v, %v", p.directory, err)
	}
	for _, tc := range []struct{ text, err string }{
		{"directory-organisation = " + org + "\n", "directory-organisation and directory-administrators go together"},
		{"directory-administrators = " + fp1 + "\n", "go together"},
		{"directory-organisation = 0123\ndirectory-administrators = " + fp1 + "\n", "line 1: directory-organisation must be the organisation's ID, 32 hex digits"},
		{"directory-organisation = " + org + "\ndirectory-administrators = " + fp1 + " nope\n", `line 2: directory-administrators: "nope" is not an identity fingerprint`},
		{"directory-organisation = " + org + "\ndirectory-administrators = " + strings.Repeat(fp1+" ", 17) + "\n", "line 2: directory-administrators must name 1 to 16"},
	} {
		if _, err := readPolicy(writePolicy(t, tc.text)); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: %v, want %q", tc.text, err, tc.err)
		}
	}
}
