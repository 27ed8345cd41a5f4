package main

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// maxPassphraseFile bounds what POSTERN_PASSPHRASE_FILE may hold.
const maxPassphraseFile = 4096

// passphrase returns the passphrase of the key files: POSTERN_PASSPHRASE if
// set, else the content of the file POSTERN_PASSPHRASE_FILE names (for a
// service: a systemd credential), otherwise read from the terminal without
// echo (twice when confirm is set, for a new identity). It never prints
// the passphrase.
func (c *cli) passphrase(confirm bool) ([]byte, error) {
	if path, ok := c.lookupEnv("POSTERN_PASSPHRASE_FILE"); ok {
		if v, _ := c.lookupEnv("POSTERN_PASSPHRASE"); v != "" {
			return nil, &cliError{
				msg:  "both POSTERN_PASSPHRASE and POSTERN_PASSPHRASE_FILE are set",
				hint: "set one of them",
			}
		}
		c.passphraseFromFile = true
		return readPassphraseFile(path)
	}
	if v, ok := c.lookupEnv("POSTERN_PASSPHRASE"); ok {
		if v == "" {
			return nil, &cliError{
				msg:  "POSTERN_PASSPHRASE is set but empty",
				hint: "set it to your passphrase, or unset it to be asked on the terminal",
			}
		}
		c.passphraseFromEnv = true
		return []byte(v), nil
	}
	f, ok := c.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, &cliError{
			msg:  "no passphrase: POSTERN_PASSPHRASE is not set and standard input is not a terminal",
			hint: "set POSTERN_PASSPHRASE, or run postern in a terminal to be asked",
		}
	}
	p, err := c.prompt(f, "Passphrase: ")
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(p)) == 0 {
		return nil, &cliError{msg: "empty passphrase"}
	}
	if confirm {
		again, err := c.prompt(f, "Repeat passphrase: ")
		if err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare(p, again) != 1 {
			return nil, &cliError{msg: "the passphrases do not match", hint: "run the command again"}
		}
	}
	return p, nil
}

// readPassphraseFile reads a passphrase from the file at path: its
// content without one final line break. Errors name the file, never what
// it holds.
func readPassphraseFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &cliError{msg: fmt.Sprintf("POSTERN_PASSPHRASE_FILE: cannot read %s", path),
			hint: "check the file and its permissions", err: err}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPassphraseFile+1))
	switch {
	case err != nil:
		return nil, &cliError{msg: fmt.Sprintf("POSTERN_PASSPHRASE_FILE: cannot read %s", path), err: err}
	case len(b) > maxPassphraseFile:
		return nil, &cliError{msg: fmt.Sprintf("POSTERN_PASSPHRASE_FILE: %s is larger than %d bytes: not a passphrase file", path, maxPassphraseFile)}
	}
	b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, &cliError{msg: fmt.Sprintf("POSTERN_PASSPHRASE_FILE: %s is empty", path)}
	}
	return b, nil
}

// prompt asks on standard error and reads one line from the terminal f
// without echo.
func (c *cli) prompt(f *os.File, label string) ([]byte, error) {
	fmt.Fprint(c.stderr, label)
	p, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(c.stderr)
	if err != nil {
		return nil, fmt.Errorf("reading the passphrase: %w", err)
	}
	return p, nil
}
