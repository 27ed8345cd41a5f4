package main

import (
	"bufio"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/postern/postern/client"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
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

// systemPolicyPath is where an organisation puts its policy file:
// /etc/postern/policy.conf, or %ProgramData%\Postern\policy.conf on
// Windows. Only whoever manages the computer should be able to write it.
// Nothing in the environment moves it: a user must not be able to step
// around the organisation's policy (tests set cli.policyPath).
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

// testPolicyPath stands in for the system policy file in the test binary
// only (main_test.go sets it for the CLI scripts); the postern command
// never sets it.
var testPolicyPath string

// testKDF, when set, is the Argon2id cost of the key files init makes, in
// the test binary and the scripts' postern only (see testPolicyPath), for
// scripts that test commands, not the unlock: at the default cost every
// command spends about a second of CPU opening its key file, and the
// scripts run over a thousand commands. The scripts about the passphrase,
// and one conversation, keep the default (main_test.go).
var testKDF *identity.KDFParams

// testKDFFromEnv is a low cost when POSTERN_TEST_KDF is "low", else nil.
func testKDFFromEnv() *identity.KDFParams {
	if os.Getenv("POSTERN_TEST_KDF") != "low" {
		return nil
	}
	return &identity.KDFParams{Time: 1, MemoryKiB: 8 << 10, Threads: 1}
}

// The policy file's settings besides the passphrase's minimum length.
const (
	// policyKeyIdle is the lock's idle timeout of 'postern ui' (a Go
	// duration, "2m"), used when --idle-timeout is not given; without
	// policyKeyMaxIdle it is also the longest --idle-timeout may set.
	policyKeyIdle = "idle-timeout"
	// policyKeyMaxIdle is the longest idle timeout anyone may choose.
	policyKeyMaxIdle = "max-idle-timeout"
	// policyKeyNotify = off turns the web app's desktop notifications off
	// on this computer (on: the person decides).
	policyKeyNotify = "desktop-notifications"
	// policyKeyOrganisation is the organisation's name as its patients
	// know it: "contact NAME's Secure Messaging coordinator".
	policyKeyOrganisation = "organisation"
	// maxOrganisation bounds it, in bytes.
	maxOrganisation = 100
	// policyKeyDirOrg and policyKeyDirAdmins are the organisation's
	// enrolment for its directory (client.Options.Directory): its ID, 32
	// hex digits, and its first administrators' identity fingerprints,
	// 64 hex digits each, separated by commas or spaces. Both or neither.
	policyKeyDirOrg    = "directory-organisation"
	policyKeyDirAdmins = "directory-administrators"
	// minPolicyIdle and maxPolicyIdle bound the policy's timeouts, to
	// catch typos ("2" for "2m", "8h" for "8m").
	minPolicyIdle = 30 * time.Second
	maxPolicyIdle = 12 * time.Hour
	// maxDirectoryAdmins is the most first administrators (the
	// directory's own limit).
	maxDirectoryAdmins = 16
)

// policy is what an organisation's policy file sets; zero values are
// settings it does not make.
type policy struct {
	minPassphrase   int
	idleTimeout     time.Duration
	maxIdleTimeout  time.Duration
	noNotifications bool
	// organisation names the organisation in the sentences a patient
	// sees when restricted (client.Options.Organisation).
	organisation string
	// directory is the organisation's enrolment for its directory, nil
	// when the file sets none.
	directory *client.DirectoryEnrolment
}

// policy reads the policy file. No file is no policy; a file that cannot
// be read or does not parse is an error: an organisation's policy is never
// ignored by accident.
func (c *cli) policy() (policy, error) {
	path := c.policyPath
	if path == "" {
		path = testPolicyPath
	}
	if path == "" {
		path = systemPolicyPath()
	}
	p, err := readPolicy(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return policy{}, nil
	case err != nil:
		return policy{}, &cliError{msg: err.Error(), hint: "ask whoever manages this computer to fix " + path}
	}
	return p, nil
}

// minPassphrase is the minimum length of a new passphrase: the policy
// file's, else defaultMinPassphrase, raised by POSTERN_MIN_PASSPHRASE_LENGTH.
func (c *cli) minPassphrase() (int, error) {
	min := defaultMinPassphrase
	p, err := c.policy()
	if err != nil {
		return 0, err
	}
	if p.minPassphrase > 0 {
		min = p.minPassphrase
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

// lockTimeout is the idle timeout of 'postern ui': flag if --idle-timeout
// was given, else the policy's idle-timeout, else defaultTimeout; never
// longer than the policy's max-idle-timeout, or, when it sets none, its
// idle-timeout. byPolicy reports that the policy decided it (set or
// capped it); capped that it shortened what --idle-timeout asked for.
func (p policy) lockTimeout(flag time.Duration, given bool, defaultTimeout time.Duration) (d time.Duration, byPolicy, capped bool) {
	d = defaultTimeout
	switch {
	case given:
		d = flag
	case p.idleTimeout > 0:
		d, byPolicy = p.idleTimeout, true
	}
	limit := p.maxIdleTimeout
	if limit == 0 {
		limit = p.idleTimeout
	}
	if limit > 0 && d > limit {
		return limit, true, given
	}
	return d, byPolicy, false
}

// readPolicy reads a policy file: "key = value" lines, # comments.
func readPolicy(path string) (policy, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return policy{}, err
		}
		return policy{}, fmt.Errorf("cannot read the policy file %s: %v", path, errText(err))
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var p policy
	dirOrg := false
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("the policy file %s, line %d: %s", path, line, fmt.Sprintf(format, args...))
		}
		k, v, ok := strings.Cut(s, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case !ok:
			return policy{}, bad("want KEY = VALUE")
		case k == policyKeyMin:
			n, err := strconv.Atoi(v)
			if err != nil || n < floorMinPassphrase || n > maxMinPassphrase {
				return policy{}, bad("%s must be a number from %d to %d", policyKeyMin, floorMinPassphrase, maxMinPassphrase)
			}
			p.minPassphrase = n
		case k == policyKeyIdle || k == policyKeyMaxIdle:
			d, err := time.ParseDuration(v)
			if err != nil || d < minPolicyIdle || d > maxPolicyIdle {
				return policy{}, bad("%s must be a duration from %v to %v, such as 5m", k, minPolicyIdle, maxPolicyIdle)
			}
			if k == policyKeyIdle {
				p.idleTimeout = d
			} else {
				p.maxIdleTimeout = d
			}
		case k == policyKeyNotify:
			if v != "on" && v != "off" {
				return policy{}, bad("%s must be on or off", policyKeyNotify)
			}
			p.noNotifications = v == "off"
		case k == policyKeyOrganisation:
			if v == "" || len(v) > maxOrganisation || !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
				return policy{}, bad("%s must be a name of 1 to %d bytes without control characters", policyKeyOrganisation, maxOrganisation)
			}
			p.organisation = v
		case k == policyKeyDirOrg:
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != 16 {
				return policy{}, bad("%s must be the organisation's ID, 32 hex digits", policyKeyDirOrg)
			}
			if p.directory == nil {
				p.directory = &client.DirectoryEnrolment{}
			}
			copy(p.directory.Organisation[:], b)
			dirOrg = true
		case k == policyKeyDirAdmins:
			fields := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
			if len(fields) == 0 || len(fields) > maxDirectoryAdmins {
				return policy{}, bad("%s must name 1 to %d identity fingerprints", policyKeyDirAdmins, maxDirectoryAdmins)
			}
			if p.directory == nil {
				p.directory = &client.DirectoryEnrolment{}
			}
			p.directory.Administrators = nil
			for _, f := range fields {
				fp, err := keys.ParseFingerprint(f)
				if err != nil {
					return policy{}, bad("%s: %q is not an identity fingerprint (64 hex digits)", policyKeyDirAdmins, f)
				}
				p.directory.Administrators = append(p.directory.Administrators, fp)
			}
		default:
			return policy{}, bad("unknown setting %q (known: %s, %s, %s, %s, %s, %s, %s)", k, policyKeyMin, policyKeyIdle, policyKeyMaxIdle, policyKeyNotify, policyKeyOrganisation, policyKeyDirOrg, policyKeyDirAdmins)
		}
	}
	if err := sc.Err(); err != nil {
		return policy{}, fmt.Errorf("cannot read the policy file %s: %v", path, err)
	}
	if p.directory != nil && (!dirOrg || len(p.directory.Administrators) == 0) {
		return policy{}, fmt.Errorf("the policy file %s: %s and %s go together", path, policyKeyDirOrg, policyKeyDirAdmins)
	}
	if p.maxIdleTimeout > 0 && p.idleTimeout > p.maxIdleTimeout {
		return policy{}, fmt.Errorf("the policy file %s: %s (%v) is longer than %s (%v)", path, policyKeyIdle, p.idleTimeout, policyKeyMaxIdle, p.maxIdleTimeout)
	}
	return p, nil
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
