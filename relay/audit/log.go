package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// File names inside the data directory.
const (
	// LogFile is the audit log: one JSON entry per line, append-only.
	LogFile = "audit.log"
	// HeadFile holds a copy of the newest signed head entry (one line).
	HeadFile = "audit.head"
)

// HeadContext is the signature context of head entries.
const HeadContext = "audit-head"

// DefaultHeadEvery is Options.HeadEvery's default.
const DefaultHeadEvery = 64

// MaxLineSize bounds one entry's line.
const MaxLineSize = 16 << 10

// hashLabel prefixes the hashed bytes of every entry.
const hashLabel = protocol.LabelPrefix + "audit"

// Events the relay records. Fields are listed with each; none holds a
// mailbox ID, a capability, an invite code or anything about traffic.
const (
	EventCreated         = "audit.created"   // key: relay key fingerprint (hex)
	EventRecovered       = "audit.recovered" // truncated_bytes: a torn last line removed at open
	EventHead            = "audit.head"      // key, sig: see protocol/SPEC.md section 10 "Audit log"
	EventRelayStart      = "relay.start"     // the relay's settings (configuration changes show between starts)
	EventRelayStop       = "relay.stop"
	EventDeviceEnrolled  = "device.enrolled"  // device: full device ID (public-key fingerprint)
	EventDeviceRevoked   = "device.revoked"   // device
	EventDeviceSuspended = "device.suspended" // device
	EventDeviceRestored  = "device.restored"  // device
	EventInviteRevoked   = "invite.revoked"   // used: whether it had enrolled a device (never the code)
	EventInvitesCreated  = "invite.created"   // count, ttl_seconds, via: "relay" or "offline", account (when bound to one)
	EventRetentionPurge  = "retention.purge"  // envelopes: count deleted in one run (only when > 0)
	EventBlobPurge       = "blob.purge"       // blobs: count deleted in one run (only when > 0)
	EventStoreMigrated   = "store.migrated"   // from, to: schema versions; backup: the copy taken before (file name)

	// EventDeviceAssigned: device, account (the label now, "" when
	// removed), previous (the label before, omitted when none).
	EventDeviceAssigned = "device.assigned"
	// EventAccountRevoked, EventAccountSuspended, EventAccountRestored: an
	// admin action on a whole account, after the per-device entries:
	// account (the label), devices (how many it changed), and for
	// account.revoked invites_revoked (unused invite codes deleted).
	EventAccountRevoked   = "account.revoked"
	EventAccountSuspended = "account.suspended"
	EventAccountRestored  = "account.restored"
	// EventConfigReloaded: changed, restart_needed (option names,
	// comma-separated, each omitted when empty) and relay.start's settings.
	EventConfigReloaded = "config.reloaded"
	// EventConfigReloadRefused: reason, the configuration error.
	EventConfigReloadRefused = "config.reload_refused"
)

// Fields are an entry's content-free details. Values must be strings,
// booleans or integers.
type Fields map[string]any

// Options configures a Log. Nil means all defaults.
type Options struct {
	// Key signs heads. Nil means LoadOrCreateKey(dir/KeyFile).
	Key *Key
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// HeadEvery is how many entries may follow a signed head before the
	// next one is written. Zero means DefaultHeadEvery.
	HeadEvery int
}

// Log is an open audit log. Methods on a nil *Log do nothing.
type Log struct {
	mu        sync.Mutex
	dir       string
	f         *os.File
	key       *Key
	now       func() time.Time
	headEvery int
	seq       uint64
	prev      [32]byte
	sinceHead int
	closed    bool
}

// body is an entry without its hash, in canonical member order.
type body struct {
	Seq    uint64 `json:"seq"`
	Time   int64  `json:"time"`
	Event  string `json:"event"`
	Fields Fields `json:"fields,omitempty"`
	Prev   string `json:"prev"`
}

// entry is one line of the log.
type entry struct {
	body
	Hash string `json:"hash"`
}

func entryHash(b []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(hashLabel))
	h.Write(b)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// headMessage is what a head signs: u64 seq || prev hash (32) || u64 time.
func headMessage(seq uint64, prev [32]byte, t int64) []byte {
	m := make([]byte, 0, 48)
	m = binary.BigEndian.AppendUint64(m, seq)
	m = append(m, prev[:]...)
	return binary.BigEndian.AppendUint64(m, uint64(t))
}

// Open opens (creating if needed) dir/LogFile and continues its chain. A
// torn last line (a crash during a write) is cut off and recorded in an
// EventRecovered entry; any other unreadable last entry is ErrCorrupt.
func Open(dir string, opts *Options) (*Log, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HeadEvery <= 0 {
		o.HeadEvery = DefaultHeadEvery
	}
	if o.Key == nil {
		k, err := LoadOrCreateKey(filepath.Join(dir, KeyFile))
		if err != nil {
			return nil, err
		}
		o.Key = k
	}
	f, err := os.OpenFile(filepath.Join(dir, LogFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := lockLog(f); err != nil {
		f.Close()
		return nil, err
	}
	l := &Log{dir: dir, f: f, key: o.Key, now: o.Now, headEvery: o.HeadEvery}
	torn, err := l.resume()
	if err == nil && l.seq == 0 {
		err = l.append(EventCreated, Fields{"key": hex.EncodeToString(fp(o.Key.Public()))})
	}
	if err == nil && torn > 0 {
		err = l.append(EventRecovered, Fields{"truncated_bytes": torn})
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

func lockLog(f *os.File) error {
	var err error
	for range 20 {
		if err = lockFile(f); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("audit: %s is in use by another process: %v", f.Name(), err)
}

func fp(k *keys.SigningPublicKey) []byte { f := k.Fingerprint(); return f[:] }

// resume reads the last entry and positions the file at its end.
func (l *Log) resume() (torn int, err error) {
	b, err := os.ReadFile(l.f.Name())
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	if i := bytes.LastIndexByte(b, '\n'); i+1 < len(b) {
		torn = len(b) - (i + 1)
		b = b[:i+1]
		if err := l.f.Truncate(int64(len(b))); err != nil {
			return 0, fmt.Errorf("audit: cut torn line: %w", err)
		}
	}
	if _, err := l.f.Seek(0, 2); err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	if len(b) == 0 {
		return torn, nil
	}
	last := b[bytes.LastIndexByte(b[:len(b)-1], '\n')+1 : len(b)-1]
	e, h, err := parseEntry(last)
	if err != nil || hex.EncodeToString(h[:]) != e.Hash {
		return 0, fmt.Errorf("%w: its last line does not parse or hash (run postern-relay audit verify)", ErrCorrupt)
	}
	l.seq, l.prev = e.Seq, h
	// Count entries since the last head so heads stay HeadEvery apart.
	for _, line := range bytes.Split(b[:len(b)-1], []byte{'\n'}) {
		l.sinceHead++
		if bytes.Contains(line, []byte(`"event":"`+EventHead+`"`)) {
			l.sinceHead = 0
		}
	}
	return torn, nil
}

// parseEntry parses one line, checks it is in canonical form (so that any
// change of its bytes is an edit) and returns its recomputed hash.
func parseEntry(line []byte) (entry, [32]byte, error) {
	var e entry
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	d.DisallowUnknownFields()
	if len(line) > MaxLineSize {
		return e, [32]byte{}, errors.New("line too long")
	}
	if err := d.Decode(&e); err != nil {
		return e, [32]byte{}, err
	}
	if d.More() {
		return e, [32]byte{}, errors.New("trailing data")
	}
	bb, err := json.Marshal(e.body)
	if err != nil {
		return e, [32]byte{}, err
	}
	h := entryHash(bb)
	canon, _ := json.Marshal(entry{e.body, e.Hash})
	if !bytes.Equal(canon, line) {
		return e, h, errors.New("not in canonical form")
	}
	return e, h, nil
}

func checkFields(f Fields) error {
	for k, v := range f {
		switch v.(type) {
		case string, bool, int, int64, uint64, json.Number:
		default:
			return fmt.Errorf("audit: field %q has type %T, want string, bool or integer", k, v)
		}
	}
	return nil
}

// Append adds one entry and fsyncs it before returning; every
// Options.HeadEvery entries it also writes a signed head.
func (l *Log) Append(event string, f Fields) error {
	if l == nil {
		return nil
	}
	if err := checkFields(f); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.append(event, f)
}

func (l *Log) append(event string, f Fields) error {
	if err := l.write(event, f); err != nil {
		return err
	}
	if l.sinceHead >= l.headEvery {
		return l.head()
	}
	return nil
}

// write appends one line. Fields are normalised through JSON so that the
// bytes written are exactly what a reader re-encodes.
func (l *Log) write(event string, f Fields) error {
	if len(f) > 0 {
		raw, err := json.Marshal(f)
		if err != nil {
			return fmt.Errorf("audit: fields: %w", err)
		}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		f = nil
		if err := d.Decode(&f); err != nil {
			return fmt.Errorf("audit: fields: %w", err)
		}
	}
	e := entry{body: body{Seq: l.seq + 1, Time: l.now().UTC().Unix(), Event: event, Fields: f, Prev: hex.EncodeToString(l.prev[:])}}
	bb, err := json.Marshal(e.body)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	h := entryHash(bb)
	e.Hash = hex.EncodeToString(h[:])
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if len(line) > MaxLineSize {
		return fmt.Errorf("audit: entry of %d bytes is over %d", len(line), MaxLineSize)
	}
	line = append(line, '\n')
	if _, err := l.f.Write(line); err != nil {
		return fmt.Errorf("audit: write: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("audit: sync: %w", err)
	}
	l.seq, l.prev = e.Seq, h
	l.sinceHead++
	if event == EventHead {
		l.sinceHead = 0
		if err := writeFileAtomic(filepath.Join(l.dir, HeadFile), line); err != nil {
			return err
		}
	}
	return nil
}

// head writes a signed head over the chain so far.
func (l *Log) head() error {
	t := l.now().UTC().Unix()
	sig, err := l.key.Sign(HeadContext, headMessage(l.seq+1, l.prev, t))
	if err != nil {
		return err
	}
	// The head's time must be the one signed: pin the clock for this write.
	now := l.now
	l.now = func() time.Time { return time.Unix(t, 0) }
	defer func() { l.now = now }()
	return l.write(EventHead, Fields{"key": hex.EncodeToString(fp(l.key.Public())), "sig": base64.StdEncoding.EncodeToString(sig)})
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("audit: %s: %w", filepath.Base(path), err)
	}
	return nil
}

// Close writes a signed head if any entry follows the last one, and closes
// the file. Later Appends return ErrClosed.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var err error
	if l.sinceHead > 0 {
		err = l.head()
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// PublicKey returns the public half of the key that signs the heads.
func (l *Log) PublicKey() *keys.SigningPublicKey { return l.key.Public() }

// Key returns the key that signs the log's heads. The relay signs the
// heads of its key-transparency log with it too (context "kt-head"), so
// that one pinned key vouches for both.
func (l *Log) Key() *Key { return l.key }
