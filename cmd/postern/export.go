package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/postern/postern/client"
)

var patientCmd = &command{
	name:  "patient",
	usage: "patient NAME [--patient SYSTEM|VALUE [--encounter SYSTEM|VALUE] | --clear] [--json]",
	help: `Show or set the patient your conversation with NAME is about.

patient NAME: print the conversation's patient context (none when unset).

patient NAME --patient SYSTEM|VALUE [--encounter SYSTEM|VALUE]: file the
conversation under a patient, and optionally an encounter, by the identifiers
your record system knows them by, for example
--patient 'https://hospital.example/fhir/sid/mrn|MRN-0042'. SYSTEM is the
identifier's naming system (a URI), VALUE the identifier in it.

patient NAME --clear: remove it.

The patient context stays on your devices (your other devices get it too);
NAME is never told. It goes with the conversation's record export
('postern export').`,
	run: runPatient,
}

// jsonPatient is the --json output of "postern patient NAME".
type jsonPatient struct {
	Contact   string `json:"contact"`
	Patient   string `json:"patient,omitempty"`
	Encounter string `json:"encounter,omitempty"`
}

func runPatient(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	patient := fs.String("patient", "", "")
	encounter := fs.String("encounter", "", "")
	clear := fs.Bool("clear", false, "")
	asJSON := fs.Bool("json", false, "")
	pos, err := parseN(fs, cmd, args, "NAME")
	if err != nil {
		return err
	}
	set := *patient != "" || *encounter != ""
	switch {
	case set && *clear:
		return usagef(cmd, "--clear takes no --patient or --encounter")
	case *encounter != "" && *patient == "":
		return usagef(cmd, "--encounter needs --patient")
	case (set || *clear) && *asJSON:
		return usagef(cmd, "--json is for showing the patient context")
	}
	name := pos[0]
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	if !set && !*clear {
		pc, err := cl.PatientContext(name)
		if errors.Is(err, client.ErrUnknownContact) {
			return unknownContact(name, err)
		}
		if err != nil {
			return err
		}
		if *asJSON {
			out := jsonPatient{Contact: name}
			if pc != nil {
				out.Patient, out.Encounter = pc.Patient, pc.Encounter
			}
			return writeJSON(c.stdout, out)
		}
		switch {
		case pc == nil:
			fmt.Fprintf(c.stdout, "patient of the conversation with %s: none\n", safe(name, false))
		case pc.Encounter == "":
			fmt.Fprintf(c.stdout, "patient of the conversation with %s: %s\n", safe(name, false), safe(pc.Patient, false))
		default:
			fmt.Fprintf(c.stdout, "patient of the conversation with %s: %s, encounter %s\n", safe(name, false), safe(pc.Patient, false), safe(pc.Encounter, false))
		}
		return nil
	}
	var pc *client.PatientContext
	if set {
		pc = &client.PatientContext{Patient: *patient, Encounter: *encounter}
	}
	err = cl.SetPatientContext(ctx, name, pc)
	switch {
	case errors.Is(err, client.ErrUnknownContact):
		return unknownContact(name, err)
	case errors.Is(err, client.ErrPatientContext):
		return &cliError{msg: err.Error(), hint: "write each identifier as SYSTEM|VALUE, e.g. 'https://hospital.example/fhir/sid/mrn|MRN-0042'", err: err}
	case err != nil:
		return err
	}
	if pc == nil {
		fmt.Fprintf(c.stdout, "The conversation with %s has no patient context now.\n", safe(name, false))
	} else {
		fmt.Fprintf(c.stdout, "The conversation with %s is filed under patient %s.\n", safe(name, false), safe(pc.Patient, false))
	}
	return nil
}

var exportCmd = &command{
	name:  "export",
	usage: "export (ID | --with NAME) --out FILE | export --verify FILE [--json]",
	help: `Export a message, or a whole conversation, for the medical record.

export ID --out FILE: the message ID (as 'postern inbox' shows it).
export --with NAME --out FILE: every message of your conversation with NAME.

FILE is a new file (an existing one is not overwritten), readable only by
you: a FHIR R4 Bundle (JSON) of Communication resources, with the files
embedded and the conversation's patient context ('postern patient'), signed
with your identity key so that a record system can check where it came from
and that nothing in it changed. A message deleted for everyone appears as a
note saying who deleted it and when, without its content. The files are
fetched from the relay: one it no longer holds stops the export, and nothing
is written.

export --verify FILE: check an export's signature. It must be signed by you
or one of your contacts; any changed byte fails.`,
	run: runExport,
}

// jsonVerified is the --json output of "postern export --verify".
type jsonVerified struct {
	Valid    bool   `json:"valid"`
	Signer   string `json:"signer"`
	Identity string `json:"identity"`
}

func runExport(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	with := fs.String("with", "", "")
	out := fs.String("out", "", "")
	verify := fs.String("verify", "", "")
	asJSON := fs.Bool("json", false, "")
	pos, err := parse(fs, cmd, args)
	if err != nil {
		return err
	}
	if *verify != "" {
		switch {
		case len(pos) > 0 || *with != "" || *out != "":
			return usagef(cmd, "--verify takes only the file to check")
		}
		return runExportVerify(c, *verify, *asJSON)
	}
	switch {
	case *asJSON:
		return usagef(cmd, "--json is for --verify")
	case len(pos) > 1:
		return usagef(cmd, "too many arguments")
	case len(pos) == 1 && *with != "":
		return usagef(cmd, "give a message ID or --with NAME, not both")
	case len(pos) == 0 && *with == "":
		return usagef(cmd, "missing ID (or --with NAME)")
	case *out == "":
		return usagef(cmd, "missing --out FILE")
	}
	if err := checkNewFile(*out); err != nil {
		return err
	}
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	opts := client.ExportOptions{Contact: *with}
	if len(pos) == 1 {
		m, err := findMessage(cl, pos[0])
		if err != nil {
			return err
		}
		opts.MessageID = m.ID
	}
	var buf bytes.Buffer
	info, err := cl.ExportRecord(ctx, &buf, opts)
	switch {
	case errors.Is(err, client.ErrUnknownContact):
		return unknownContact(*with, err)
	case err != nil:
		return err
	}
	if err := writeNewFile(*out, buf.Bytes()); err != nil {
		return err
	}
	printExported(c, *out, info)
	return nil
}

// checkNewFile refuses an export's file name that exists (writeNewFile
// checks again as it links): before the export's work is done.
func checkNewFile(path string) error {
	if _, err := os.Lstat(path); err == nil {
		return &cliError{msg: fmt.Sprintf("%s exists", path), hint: "choose a new file name; an export never overwrites a file"}
	}
	return nil
}

// printExported says what an export wrote to path.
func printExported(c *cli, path string, info client.ExportInfo) {
	what := fmt.Sprintf("%d messages", info.Messages)
	if info.Messages == 1 {
		what = "1 message"
	}
	switch {
	case info.Files == 1:
		what += " and 1 file"
	case info.Files > 1:
		what += fmt.Sprintf(" and %d files", info.Files)
	}
	fmt.Fprintf(c.stdout, "Exported %s to %s, signed by you.\n", what, safe(path, false))
	if info.Patient != nil {
		fmt.Fprintf(c.stdout, "Patient: %s\n", safe(info.Patient.Patient, false))
	}
}

func runExportVerify(c *cli, path string, asJSON bool) error {
	data, err := readLimited(path, 64<<20)
	if err != nil {
		return err
	}
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	s, err := cl.VerifyRecord(data)
	if err != nil {
		return err
	}
	name := s.Name
	if name == client.Me {
		name = "you"
	}
	if asJSON {
		return writeJSON(c.stdout, jsonVerified{Valid: true, Signer: s.Name, Identity: s.Identity.String()})
	}
	fmt.Fprintf(c.stdout, "%s is a record export signed by %s (identity %s); nothing in it changed.\n", safe(path, false), safe(name, false), s.Identity.Short())
	return nil
}

// readLimited reads a file of at most max bytes.
func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes, larger than any record export (%d)", path, st.Size(), max)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeNewFile writes data to path, a file that must not exist, readable
// only by its owner: to a hidden part file first, made durable, then
// linked to its name, so that a crash or a full disk leaves no partial
// file under the name, and a file that appeared meanwhile is not replaced.
func writeNewFile(path string, data []byte) (err error) {
	part := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".part")
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		os.Remove(part)
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	err = f.Close()
	f = nil
	if err != nil {
		return err
	}
	if err := os.Link(part, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return &cliError{msg: fmt.Sprintf("%s exists", path), hint: "choose a new file name; an export never overwrites a file"}
		}
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
