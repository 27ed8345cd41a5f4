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

// Restore makes home a new device, named deviceName, of the person whose
// backup is file, opened with recoveryKey (as Backup returned it; spaces,
// line breaks and '-' between groups do not matter). The device enrols
// on the backup's relay and adds itself to the person's signed device
// list (ErrTooManyDevices if it holds 8 devices already); the contacts
// and the history are imported in the transaction that creates the
// store. The returned Client is connected, as after Init; Restored tells
// what it holds.
//
// Errors: ErrRecoveryKey (the text does not parse), ErrWrongRecoveryKey,
// ErrBackupDamaged, ErrNotBackup, ErrExists (home is initialised). A
// restore that fails anywhere leaves nothing in home: its files are
// removed, and home itself if Restore made it. The backup is read once,
// in order; it is complete only when its last chunk authenticated, and
// nothing is kept before that.
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
			os.Remove(home) // only if empty: createHome removed its files
		}
	}()
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("client: open backup: %w", err)
	}
	defer f.Close()
	br, err := backup.NewReader(f, rk)
	if err != nil {
		return nil, backupReadErr(err)
	}
	r := &countingReader{r: br}
	id, prof, err := readBackupHead(r)
	if err != nil {
		return nil, backupReadErr(err)
	}
	dev, err := identity.NewDevice(id)
	if err != nil {
		return nil, err
	}
	var stats restoreStats
	imports := func(t *tx, c *Client) error {
		s, err := importBackupBody(ctx, t, c, r)
		stats = s
		return err
	}
	c, err := joinHome(ctx, home, passphrase, prof.Relay, prof.Name, deviceName, id, dev, imports, opts)
	if err != nil {
		return nil, backupReadErr(err)
	}
	c.restored = stats
	c.log.Info("restored from a backup", "device", c.devID.Short(), "contacts", stats.Contacts, "messages", stats.Messages)
	// The new device introduces itself to its contacts' devices and its
	// siblings on the routes the backup held, as a linked device does.
	c.sendHellos(ctx)
	return c, nil
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

// importBackupBody imports the rest of the backup in the transaction that
// creates the new device's store: the contacts (record 3, exactly once,
// before the history), then the history. Record types this version does
// not know, and 0x06, are skipped. It returns once the backup has ended
// intact (io.EOF): a backup that fails in its last chunk imports nothing.
func importBackupBody(ctx context.Context, t *tx, c *Client, r *countingReader) (restoreStats, error) {
	var st restoreStats
	h := &historyImporter{}
	contacts := false
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return st, err
		}
		switch rec.Type {
		case backup.RecordIdentity, backup.RecordProfile:
			return st, &historyErr{fmt.Sprintf("record %d: a second identity or profile record", r.n)}
		case backup.RecordContacts:
			if contacts {
				return st, &historyErr{fmt.Sprintf("record %d: a second contacts record", r.n)}
			}
			snap, err := parseSnapshot(rec.Data, c.idFP)
			if err != nil {
				return st, &historyErr{fmt.Sprintf("record %d, contacts: %s", r.n, strings.TrimPrefix(err.Error(), "client: "))}
			}
			if err := t.importContacts(snap, c.devID, c.now().UTC()); err != nil {
				return st, err
			}
			for _, p := range snap.Persons {
				if !p.Self {
					st.Contacts++
				}
			}
			contacts = true
		case backup.RecordConversations, backup.RecordMessages:
			if !contacts {
				return st, &historyErr{fmt.Sprintf("record %d: history before the contacts record", r.n)}
			}
			if _, err := h.record(t, r.n, rec); err != nil {
				return st, err
			}
		}
	}
	if !contacts {
		return st, &historyErr{"the backup has no contacts record"}
	}
	st.Messages = h.stats.Messages
	return st, nil
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
