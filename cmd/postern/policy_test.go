package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/client"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/relay/relaytest"
)

// runWith runs the CLI in process with env as its whole environment and
// policy as its policy file path.
func runWith(t *testing.T, policy string, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	c := &cli{
		stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		lookupEnv:  func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		policyPath: policy,
	}
	code = c.main(context.Background(), args)
	return code, out.String(), errb.String()
}

// An organisation's policy file sets the minimum; the environment can
// raise it but not lower it; a policy file that does not parse stops init.
func TestPassphrasePolicyFile(t *testing.T) {
	srv := relaytest.New(t, nil)
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.conf")
	write := func(s string) {
		if err := os.WriteFile(policy, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pass := "plum harbour lantern tuesday" // 28 characters
	tests := []struct {
		name, policy, envMin string
		code                 int
		stderr               string
	}{
		{"no file: default 12", "", "", 0, ""},
		{"file raises to 30", "# managed by IT\nmin-passphrase-length = 30\n", "", 1, "postern: error: the passphrase is too short: 28 characters, at least 30 are needed\n"},
		{"file lowers to 8", "min-passphrase-length=8\n", "", 0, ""},
		{"environment cannot lower the file", "min-passphrase-length = 30\n", "10", 1, "at least 30 are needed"},
		{"environment raises the file", "min-passphrase-length = 20\n", "29", 1, "at least 29 are needed"},
		{"unknown key", "max-passphrase-length = 30\n", "", 1, `line 1: unknown setting "max-passphrase-length"`},
		{"below the floor", "min-passphrase-length = 4\n", "", 1, "must be a number from 8 to 256"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "none")
			if tt.policy != "" {
				write(tt.policy)
				p = policy
			}
			env := map[string]string{"POSTERN_PASSPHRASE": pass}
			if tt.envMin != "" {
				env[envMinPassphrase] = tt.envMin
			}
			home := filepath.Join(dir, "home", string(rune('a'+i)))
			code, _, stderr := runWith(t, p, env, "--home", home, "init", "--relay", srv.URL, "--name", "A")
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.stderr)
			}
			if _, err := os.Stat(filepath.Join(home, client.KeyFileName)); (err == nil) != (tt.code == 0) {
				t.Fatalf("key file after exit %d: %v", code, err)
			}
		})
	}
}

// A home whose passphrase the policy would refuse today (made by an older
// release, or through the library) still opens and works.
func TestWeakPassphraseHomeOpens(t *testing.T) {
	srv := relaytest.New(t, nil)
	home := filepath.Join(t.TempDir(), "old")
	weak := "open sesame"
	cl, err := client.Init(context.Background(), home, []byte(weak), srv.URL, "Old", &client.Options{KDF: &identity.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
	policy := filepath.Join(t.TempDir(), "policy.conf")
	if err := os.WriteFile(policy, []byte("min-passphrase-length = 64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"POSTERN_PASSPHRASE": weak, envMinPassphrase: "100"}
	if code, out, stderr := runWith(t, policy, env, "--home", home, "whoami"); code != 0 || !strings.Contains(out, "name:     Old") {
		t.Fatalf("whoami: exit %d, %q, %q", code, out, stderr)
	}
	if code, out, stderr := runWith(t, policy, env, "--home", home, "sync"); code != 0 || out != "0 new messages\n" {
		t.Fatalf("sync: exit %d, %q, %q", code, out, stderr)
	}
}

func TestTrivialPassphrases(t *testing.T) {
	for _, p := range []string{"aaaaaaaaaaaaaa", "abababababababab", "0123456789", "9876543210", "zyxwvutsrqpon", "xyzxyzxyzxyzxyz", "- - - - - - - -"} {
		if !trivial(normalisePassphrase(p)) {
			t.Errorf("trivial(%q) = false", p)
		}
	}
	for _, p := range []string{"plum harbour lantern tuesday", "abcdefghijkx", "1357924680ab"} {
		if trivial(normalisePassphrase(p)) || commonPassphrases[normalisePassphrase(p)] {
			t.Errorf("%q refused", p)
		}
	}
}

// The organisation's name reaches the library, which names its
// coordinator in the sentences of a restriction; a bad one stops Postern.
func TestOrganisationPolicy(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.conf")
	for _, tc := range []struct {
		file, want, err string
	}{
		{"organisation = St Mary's Hospital\n", "St Mary's Hospital", ""},
		{"# none\n", "", ""},
		{"organisation =\n", "", "organisation must be a name of 1 to 100 bytes"},
		{"organisation = " + strings.Repeat("x", 101) + "\n", "", "organisation must be a name of 1 to 100 bytes"},
		{"organisation = St Mary's\x07\n", "", "without control characters"},
	} {
		if err := os.WriteFile(policy, []byte(tc.file), 0o644); err != nil {
			t.Fatal(err)
		}
		c := &cli{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{},
			lookupEnv: func(string) (string, bool) { return "", false }, policyPath: policy}
		o, err := c.options()
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Fatalf("%q: %v, want %q", tc.file, err, tc.err)
		case tc.err == "" && (err != nil || o.Organisation != tc.want):
			t.Fatalf("%q: %+v, %v; want %q", tc.file, o, err, tc.want)
		}
	}
	if s := (&client.RestrictedError{Level: client.RestrictedService, Organisation: "St Mary's Hospital"}).Error(); !strings.HasSuffix(s, "contact St Mary's Hospital's Secure Messaging coordinator.") {
		t.Fatalf("sentence %q", s)
	}
}
