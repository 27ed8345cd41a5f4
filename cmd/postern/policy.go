package main

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The passphrase policy applies to new passphrases only ('postern init'):
// a home made under an older or laxer policy still opens.
const (
	// defaultMinPassphrase is the shortest new passphrase, in characters,
	// unless a policy file says otherwise.
	defaultMinPassphrase = 12
	// floorMinPassphrase is the least a policy file may set.
	floorMinPassphrase = 8
	// maxMinPassphrase caps what a policy may ask, to catch typos.
	maxMinPassphrase = 256
	// policyKeyMin is the policy file's setting for the minimum length.
	policyKeyMin = "min-passphrase-length"
	// envMinPassphrase raises (never lowers) the minimum for one user or
	// one script.
	envMinPassphrase = "POSTERN_MIN_PASSPHRASE_LENGTH"
)

//go:embed common-passphrases.txt
var commonPassphrasesText string

// commonPassphrases holds the embedded list, normalised.
var commonPassphrases = func() map[string]bool {
	m := make(map[string]bool)
	for _, line := range strings.Split(commonPassphrasesText, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			m[normalisePassphrase(line)] = true
		}
	}
	return m
}()

// normalisePassphrase lowers case and keeps only letters and digits, so
// that "Correct-Horse Battery staple" is as common as the original.
func normalisePassphrase(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// systemPolicyPath is where an organisation puts the passphrase policy:
// /etc/postern/policy.conf, or %ProgramData%\Postern\policy.conf on
// Windows.
func systemPolicyPath() string {
	if runtime.GOOS == "windows" {
		dir := os.Getenv("ProgramData")
		if dir == "" {
			dir = `C:\ProgramData`
		}
		return filepath.Join(dir, "Postern", "policy.conf")
	}
	return "/etc/postern/policy.conf"
}

// minPassphrase is the minimum length of a new passphrase: the policy
// file's, else defaultMinPassphrase, raised by POSTERN_MIN_PASSPHRASE_LENGTH.
// A policy file that does not parse is an error: a policy is not ignored
// by accident.
func (c *cli) minPassphrase() (int, error) {
	path := c.policyPath
	if path == "" {
		path = systemPolicyPath()
	}
	min := defaultMinPassphrase
	n, err := readPolicy(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return 0, &cliError{msg: err.Error(), hint: "ask whoever manages this computer to fix " + path}
	case n > 0:
		min = n
	}
	if v, ok := c.lookupEnv(envMinPassphrase); ok && v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > maxMinPassphrase {
			return 0, &cliError{msg: fmt.Sprintf("%s=%q is not a length from 1 to %d", envMinPassphrase, v, maxMinPassphrase), hint: "set it to a number of characters, or unset it"}
		}
		min = max(min, n)
	}
	return min, nil
}

// readPolicy reads a policy file: "key = value" lines, # comments. It
// returns the minimum passphrase length it sets (0 if none).
func readPolicy(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
		return 0, fmt.Errorf("cannot read the passphrase policy %s: %v", path, errText(err))
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	min := 0
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k != policyKeyMin {
			return 0, fmt.Errorf("the passphrase policy %s, line %d: want %q = NUMBER", path, line, policyKeyMin)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < floorMinPassphrase || n > maxMinPassphrase {
			return 0, fmt.Errorf("the passphrase policy %s, line %d: %s must be a number from %d to %d", path, line, policyKeyMin, floorMinPassphrase, maxMinPassphrase)
		}
		min = n
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("cannot read the passphrase policy %s: %v", path, err)
	}
	return min, nil
}

// checkNewPassphrase refuses a new passphrase that is shorter than min
// characters, on the embedded list of common ones, or one character (or
// a run like 123456... or abcdef...) repeated. The message never repeats
// the passphrase.
func checkNewPassphrase(p []byte, min int) error {
	s := string(p)
	n := utf8.RuneCountInString(s)
	hint := "choose a longer passphrase of several unrelated words"
	switch {
	case n < min:
		return &cliError{msg: fmt.Sprintf("the passphrase is too short: %d characters, at least %d are needed", n, min), hint: hint}
	case commonPassphrases[normalisePassphrase(s)]:
		return &cliError{msg: "the passphrase is too common: it is on the list of passphrases that are tried first", hint: hint}
	case trivial(normalisePassphrase(s)):
		return &cliError{msg: "the passphrase is too simple: one character or one run of characters repeated", hint: hint}
	}
	return nil
}

// trivial reports whether s (normalised) is a repetition of one short
// pattern, or one ascending or descending run (abcd..., 4321...).
func trivial(s string) bool {
	r := []rune(s)
	if len(r) == 0 {
		return true
	}
	for period := 1; period <= 4 && period < len(r); period++ {
		rep := true
		for i := period; i < len(r); i++ {
			if r[i] != r[i-period] {
				rep = false
				break
			}
		}
		if rep {
			return true
		}
	}
	up, down := true, true
	for i := 1; i < len(r); i++ {
		up = up && r[i] == r[i-1]+1
		down = down && r[i] == r[i-1]-1
	}
	return len(r) > 1 && (up || down)
}

// newPassphrase asks for the passphrase of a new home (twice on a
// terminal) and checks it against the policy's minimum length min.
func (c *cli) newPassphrase(min int) ([]byte, error) {
	passphrase, err := c.passphrase(true)
	if err != nil {
		return nil, err
	}
	if err := checkNewPassphrase(passphrase, min); err != nil {
		return nil, err
	}
	return passphrase, nil
}
