package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/postern/postern/client/internal/backup"
	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/keys/identity"
)

// Encrypted backups (protocol/SPEC.md section 14): Backup writes this
// person's identity, profile, contacts and history to a file under a new
// recovery key; Restore makes a new device of the same person from it.
// The file format and the recovery key are client/internal/backup's; the
// records' content is defined here and in history.go (section 14.3).

// Backup and restore errors. Test with errors.Is; the errors of a file
// that does not read say what is wrong in parentheses.
var (
	// ErrRecoveryKey: recovery key text that does not parse; the error
	// names the group at fault ("group 5 of 16 is mistyped").
	ErrRecoveryKey = errors.New("client: invalid recovery key")
	// ErrWrongRecoveryKey: the recovery key is well formed but is not the
	// one the backup was made with. Nothing was decrypted.
	ErrWrongRecoveryKey = errors.New("client: the recovery key does not open this backup")
	// ErrBackupDamaged: the backup's bytes changed or it was cut short (a
	// chunk does not authenticate, the header checksum does not match, the
	// file ends early), or a record in it breaks the format. Nothing was
	// restored.
	ErrBackupDamaged = errors.New("client: the backup file is damaged")
	// ErrNotBackup: the file is not a Postern backup, or one in a format
	// version this release does not read.
	ErrNotBackup = errors.New("client: not a Postern backup file that this release can read")
	// ErrBackupExists: Backup to a path that exists. Nothing is
	// overwritten: remove the file or choose another name.
	ErrBackupExists = errors.New("client: the backup file exists already")
)

// backupFileError is one of the errors above with what is wrong, and the
// cause for errors.Is.
type backupFileError struct {
	base   error
	detail string
	cause  error
}

func (e *backupFileError) Error() string {
	switch {
	case e.detail == "":
		return e.base.Error()
	case e.base == ErrRecoveryKey:
		return e.base.Error() + ": " + e.detail // "group 3 of 16 is mistyped (...)"
	}
	return e.base.Error() + " (" + e.detail + ")"
}

func (e *backupFileError) Unwrap() []error { return []error{e.base, e.cause} }

// backupVersion is the "v" of the identity and profile records.
const backupVersion = 1

// backupIdentity is the data of a record of type 0x01: the person's
// identity with its secret key. This device's own keys are not in the
// backup: a restore is a new device.
type backupIdentity struct {
	V           int    `json:"v"`
	Secret      []byte `json:"secret"`      // identity.MarshalSecret
	Fingerprint string `json:"fingerprint"` // of the identity key, 64 hex digits
}

// backupProfile is the data of a record of type 0x02.
type backupProfile struct {
	V     int    `json:"v"`
	Name  string `json:"name"`  // the person's name
	Relay string `json:"relay"` // the relay the restored device enrols on
}

// Backup writes an encrypted backup of this person to path and returns
// its recovery key, in the text the user must keep (16 groups of 6
// digits, four to a line). It is returned this once and kept nowhere.
//
// The backup holds the identity (its secret key: whoever has the file and
// the key can act as this person), the person's name and relay, the
// contacts with their devices and verification state, and every
// conversation and message with its attachment references and keys; the
// attachments' contents stay on the relays. It does not hold this
// device's keys or sessions: a restore is a new device.
//
// The file is written to path+".part" (0600), synced, and only then
// given its name (a hard link, so that a file made at path meanwhile is
// not replaced; a rename where the file system has no links). An
// existing path is refused (ErrBackupExists); on any failure, a full disk
// included (ErrStore), nothing is left at either name. Backup reads the
// store in one read transaction, which holds the store's file lock
// against writers in other processes (a running `postern listen` waits)
// while the file is written; it does not use the network.
func (c *Client) Backup(ctx context.Context, path string) (key string, err error) {
	if c.id == nil {
		return "", fmt.Errorf("client: this device does not hold its person's identity key")
	}
	if _, err := os.Lstat(path); err == nil {
		return "", &backupFileError{base: ErrBackupExists, detail: path, cause: fs.ErrExist}
	}
	part := path + ".part"
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("client: %s exists: another backup is being written, or one was interrupted (remove it and try again)", part)
	}
	if err != nil {
		return "", localWriteErr(err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			os.Remove(part)
		}
	}()
	rk := backup.NewRecoveryKey()
	bw := bufio.NewWriterSize(localWriter{f}, 4*backup.CipherChunkSize)
	w, err := backup.NewWriter(bw, rk)
	if err != nil {
		return "", localWriteErr(err)
	}
	if err := c.st.view(func(t *tx) error { return c.writeBackup(ctx, t, w) }); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	if err := bw.Flush(); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", localWriteErr(err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return "", localWriteErr(err)
	}
	if err := publishBackup(part, path); err != nil {
		return "", err
	}
	if err := store.SyncDir(filepath.Dir(path)); err != nil {
		os.Remove(path)
		return "", localWriteErr(err)
	}
	c.log.Info("backup written")
	return rk.SecretText(), nil
}

// publishBackup gives the finished part file its name. A link, not a
// rename, where the file system has links: it fails if path appeared
// meanwhile, where a rename would replace it. On a file system without
// links (FAT on a USB stick) it renames after checking path again.
func publishBackup(part, path string) error {
	err := os.Link(part, path)
	if err == nil {
		os.Remove(part)
		return nil
	}
	if errors.Is(err, fs.ErrExist) {
		return &backupFileError{base: ErrBackupExists, detail: path, cause: err}
	}
	if _, serr := os.Lstat(path); serr == nil {
		return &backupFileError{base: ErrBackupExists, detail: path, cause: fs.ErrExist}
	}
	if err := os.Rename(part, path); err != nil {
		return localWriteErr(err)
	}
	return nil
}

// localWriter marks the errors of writing the backup file as failures to
// write on this device (ErrStore), so that a full disk reads as one.
type localWriter struct{ f *os.File }

func (w localWriter) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	return n, localWriteErr(err)
}

// writeBackup writes the records of a backup: identity, profile, contacts,
// then the history.
func (c *Client) writeBackup(ctx context.Context, t *tx, w recordWriter) error {
	b, err := json.Marshal(&backupIdentity{V: backupVersion, Secret: c.id.MarshalSecret(), Fingerprint: c.idFP.String()})
	if err != nil {
		return err
	}
	if err := w.WriteRecord(backup.RecordIdentity, b); err != nil {
		return err
	}
	prof, err := t.profile()
	if err != nil {
		return err
	}
	if b, err = json.Marshal(&backupProfile{V: backupVersion, Name: prof.Name, Relay: prof.Relay}); err != nil {
		return err
	}
	if err := w.WriteRecord(backup.RecordProfile, b); err != nil {
		return err
	}
	if b, err = t.exportContacts(c.devID, c.relay, nil); err != nil {
		return err
	}
	if err := w.WriteRecord(backup.RecordContacts, b); err != nil {
		return err
	}
	_, err = t.writeHistory(ctx, w)
	return err
}

// restoreBatch is how many history records a restore stores per store
// transaction (about 4 000 messages): a transaction holds what it writes
// in memory until it commits, so the import is cut into transactions and
// memory stays bounded whatever the history's size.
const restoreBatch = 16

// Restore makes home a new device, named deviceName, of the person whose
// backup is file, opened with recoveryKey (as Backup returned it; spaces,
// line breaks and '-' between groups do not matter). The device enrols
// on the backup's relay and adds itself to the person's signed device
// list (ErrTooManyDevices if it holds 8 devices already), and introduces
// itself to its contacts' devices. The returned Client is connected, as
// after Init; Restored tells what was imported.
//
// The backup is read twice. The first pass decrypts and checks all of
// it (every chunk, every record, every field) and changes nothing; only
// a backup that ends intact goes on. Then the home is made with the
// contacts, in the transaction that creates its store, and the device
// enrols; the second pass stores the history, restoreBatch records per
// transaction, so that memory stays bounded.
//
// Errors: ErrRecoveryKey (the text does not parse), ErrWrongRecoveryKey,
// ErrBackupDamaged, ErrNotBackup, ErrExists (home is initialised). A
// restore that fails anywhere leaves nothing in home: its files are
// removed, and home itself if Restore made it. (Only a file that changes
// between the two passes, or a failure of this device's disk, can fail
// after the device enrolled; its place in the person's device list then
// stays until a sibling revokes it.)
func Restore(ctx context.Context, home string, passphrase []byte, file, recoveryKey, deviceName string, opts *Options) (_ *Client, err error) {
	rk, err := parseRecoveryKey(recoveryKey)
	if err != nil {
		return nil, err
	}
	if len(passphrase) == 0 {
		return nil, ErrEmptyPassphrase
	}
	if err := checkName(deviceName); err != nil {
		return nil, err
	}
	if exists(filepath.Join(home, KeyFileName)) || exists(filepath.Join(home, StoreFileName)) {
		return nil, ErrExists
	}
	madeHome := !exists(home)
	defer func() {
		if err != nil && madeHome {
			os.Remove(home) // only if empty: its files are removed first
		}
	}()

	// Pass 1: check everything, change nothing.
	id, prof, snap, err := verifyBackup(ctx, file, rk)
	if err != nil {
		return nil, err
	}
	dev, err := identity.NewDevice(id)
	if err != nil {
		return nil, err
	}
	var stats restoreStats
	for _, p := range snap.Persons {
		if !p.Self {
			stats.Contacts++
		}
	}
	imports := func(t *tx, c *Client) error { return t.importContacts(snap, c.devID, c.now().UTC()) }
	c, err := joinHome(ctx, home, passphrase, prof.Relay, prof.Name, deviceName, id, dev, imports, opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.Close()
			for _, name := range []string{EraseKeysFileName, StoreFileName, KeyFileName} {
				os.Remove(filepath.Join(home, name))
			}
		}
	}()

	if restoreBetweenPasses != nil {
		restoreBetweenPasses(file)
	}
	// Pass 2: the history, in transactions of restoreBatch records.
	if stats.Messages, err = c.restoreHistory(ctx, file, rk); err != nil {
		return nil, err
	}
	c.restored = stats
	c.log.Info("restored from a backup", "device", c.devID.Short(), "contacts", stats.Contacts, "messages", stats.Messages)
	// The new device introduces itself to its contacts' devices and its
	// siblings on the routes the backup held, as a linked device does.
	c.sendHellos(ctx)
	return c, nil
}

// restoreBetweenPasses, if set (tests), runs between the two passes of a
// restore.
var restoreBetweenPasses func(file string)

// openBackup opens file under rk and reads its identity and profile.
func openBackup(file string, rk backup.RecoveryKey) (*os.File, *countingReader, *identity.Identity, *backupProfile, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("client: open backup: %w", err)
	}
	br, err := backup.NewReader(f, rk)
	if err != nil {
		f.Close()
		return nil, nil, nil, nil, backupReadErr(err)
	}
	r := &countingReader{r: br}
	id, prof, err := readBackupHead(r)
	if err != nil {
		f.Close()
		return nil, nil, nil, nil, backupReadErr(err)
	}
	return f, r, id, prof, nil
}

// verifyBackup reads the whole backup and checks it: the head, exactly
// one contacts record (parsed for the identity) before any history, and
// every history record, until the backup ends intact. It keeps only the
// contacts.
func verifyBackup(ctx context.Context, file string, rk backup.RecoveryKey) (*identity.Identity, *backupProfile, *contactsSnapshot, error) {
	f, r, id, prof, err := openBackup(file, rk)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close()
	var snap *contactsSnapshot
	for {
		if err := ctx.Err(); err != nil {
			return nil, nil, nil, err
		}
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, nil, backupReadErr(err)
		}
		where := fmt.Sprintf("record %d", r.n)
		switch rec.Type {
		case backup.RecordIdentity, backup.RecordProfile:
			err = &historyErr{where + ": a second identity or profile record"}
		case backup.RecordContacts:
			if snap != nil {
				err = &historyErr{where + ": a second contacts record"}
				break
			}
			if snap, err = parseSnapshot(rec.Data, id.Public().Fingerprint()); err != nil {
				err = &historyErr{where + ", contacts: " + strings.TrimPrefix(err.Error(), "client: ")}
			}
		case backup.RecordConversations:
			if snap == nil {
				err = &historyErr{where + ": history before the contacts record"}
			} else if _, err = decodeConversations(rec.Data); err != nil {
				err = invalidHistory(where, err)
			}
		case backup.RecordMessages:
			if snap == nil {
				err = &historyErr{where + ": history before the contacts record"}
			} else if _, err = decodeMessages(rec.Data); err != nil {
				err = invalidHistory(where, err)
			}
		}
		if err != nil {
			return nil, nil, nil, backupReadErr(err)
		}
	}
	if snap == nil {
		return nil, nil, nil, backupReadErr(&historyErr{"the backup has no contacts record"})
	}
	return id, prof, snap, nil
}

// restoreHistory stores the history records of a verified backup in
// transactions of restoreBatch records, and returns how many messages it
// stored. Other records are skipped.
func (c *Client) restoreHistory(ctx context.Context, file string, rk backup.RecoveryKey) (int, error) {
	f, r, _, _, err := openBackup(file, rk)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	h := &historyImporter{}
	for eof := false; !eof; {
		err := c.st.update(func(t *tx) error {
			h.persons = nil // read again in each transaction
			for n := 0; n < restoreBatch; {
				if err := ctx.Err(); err != nil {
					return err
				}
				rec, err := r.Next()
				if err == io.EOF {
					eof = true
					return nil
				}
				if err != nil {
					return err
				}
				ok, err := h.record(t, r.n, rec)
				if err != nil {
					return err
				}
				if ok {
					n++
				}
			}
			return nil
		})
		if err != nil {
			return 0, backupReadErr(err)
		}
	}
	return h.stats.Messages, nil
}

// CheckRecoveryKey reports whether text is a well-formed recovery key
// (ErrRecoveryKey naming the group at fault if not), so that a user can
// be asked again before anything else. It cannot tell whether the key
// opens a given backup: Restore does.
func CheckRecoveryKey(text string) error {
	_, err := parseRecoveryKey(text)
	return err
}

func parseRecoveryKey(text string) (backup.RecoveryKey, error) {
	rk, err := backup.ParseRecoveryKey(text)
	if err != nil {
		return rk, &backupFileError{base: ErrRecoveryKey, detail: strings.TrimPrefix(err.Error(), backup.ErrRecoveryKey.Error()+": "), cause: err}
	}
	return rk, nil
}

// restoreStats is what a restore imported.
type restoreStats struct {
	Contacts int // people other than this person
	Messages int
}

// Restored returns how many contacts and messages Restore imported into
// this Client's home; both are 0 for a Client made otherwise.
func (c *Client) Restored() (contacts, messages int) {
	return c.restored.Contacts, c.restored.Messages
}

// countingReader numbers the records it returns (from 1), to name one in
// errors.
type countingReader struct {
	r recordReader
	n int
}

func (r *countingReader) Next() (backup.Record, error) {
	rec, err := r.r.Next()
	if err == nil {
		r.n++
	}
	return rec, err
}

// readBackupHead reads and checks the first two records: the identity and
// the profile.
func readBackupHead(r *countingReader) (*identity.Identity, *backupProfile, error) {
	rec, err := r.Next()
	if err == io.EOF || err == nil && rec.Type != backup.RecordIdentity {
		return nil, nil, &historyErr{"the backup does not start with an identity record"}
	}
	if err != nil {
		return nil, nil, err
	}
	var bi backupIdentity
	if err := decodeStrict(rec.Data, &bi); err != nil {
		return nil, nil, &historyErr{"record 1, identity: does not decode: " + jsonReason(err)}
	}
	if bi.V != backupVersion {
		return nil, nil, &historyErr{fmt.Sprintf("record 1, identity: version %d (this version reads %d)", bi.V, backupVersion)}
	}
	id, err := identity.ParseIdentitySecret(bi.Secret)
	if err != nil {
		return nil, nil, &historyErr{"record 1, identity: the identity key does not parse"}
	}
	if id.Public().Fingerprint().String() != bi.Fingerprint {
		return nil, nil, &historyErr{"record 1, identity: the fingerprint is not the key's"}
	}
	rec, err = r.Next()
	if err == io.EOF || err == nil && rec.Type != backup.RecordProfile {
		return nil, nil, &historyErr{"record 2 is not the profile"}
	}
	if err != nil {
		return nil, nil, err
	}
	var bp backupProfile
	if err := decodeStrict(rec.Data, &bp); err != nil {
		return nil, nil, &historyErr{"record 2, profile: does not decode: " + jsonReason(err)}
	}
	if bp.V != backupVersion {
		return nil, nil, &historyErr{fmt.Sprintf("record 2, profile: version %d (this version reads %d)", bp.V, backupVersion)}
	}
	if checkName(bp.Name) != nil {
		return nil, nil, &historyErr{"record 2, profile: the person's name is empty, too long or has control characters"}
	}
	if canon, err := CheckRelayURL(bp.Relay); err != nil || canon != bp.Relay {
		return nil, nil, &historyErr{"record 2, profile: the relay URL is not valid"}
	}
	return id, &bp, nil
}

// backupReadErr maps the backup package's errors, and a record that
// breaks the format, to this package's.
func backupReadErr(err error) error {
	var he *historyErr
	switch {
	case err == nil:
		return nil
	case errors.Is(err, backup.ErrWrongKey):
		return &backupFileError{base: ErrWrongRecoveryKey, cause: err}
	case errors.Is(err, backup.ErrNotBackup):
		return &backupFileError{base: ErrNotBackup, cause: err}
	case errors.Is(err, backup.ErrUnsupportedVersion):
		return &backupFileError{base: ErrNotBackup, detail: "its format version is not one this release reads; it was made by another release", cause: err}
	case errors.Is(err, backup.ErrTruncated):
		return &backupFileError{base: ErrBackupDamaged, detail: "it is cut short: " + detailOf(err, backup.ErrTruncated), cause: err}
	case errors.Is(err, backup.ErrDamaged):
		return &backupFileError{base: ErrBackupDamaged, detail: detailOf(err, backup.ErrDamaged), cause: err}
	case errors.Is(err, backup.ErrMalformed):
		return &backupFileError{base: ErrBackupDamaged, detail: "malformed: " + detailOf(err, backup.ErrMalformed), cause: err}
	case errors.As(err, &he):
		return &backupFileError{base: ErrBackupDamaged, detail: he.detail, cause: err}
	}
	return err
}

// detailOf is err's message after base's.
func detailOf(err, base error) string {
	s := err.Error()
	if d, ok := strings.CutPrefix(s, base.Error()+": "); ok {
		return d
	}
	return strings.TrimPrefix(s, "backup: ")
}
