package store

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/chacha20poly1305"
)

// Buckets (protocol/SPEC.md section 9 "Local state"). Every value is
// XChaCha20-Poly1305(store key, random nonce, AAD = bucket || 0x00 ||
// key), except in the ephemeral buckets, sealed under keys that are
// erased (erasure.go); keys are keyed HMACs or random IDs, never names.
var (
	BucketMeta          = []byte("meta")
	BucketPersons       = []byte("persons")       // Person, by record ID
	BucketDevices       = []byte("devices")       // Device, by record ID
	BucketConversations = []byte("conversations") // Conversation, by ID
	BucketMessages      = []byte("messages")      // Message, by u64 insertion sequence
	BucketMessageIDs    = []byte("message-ids")   // Kidx(message ID) -> messages key
	// BucketMailboxIndex maps Kidx(mailbox ID) to the record ID of the
	// device that writes to that mailbox of ours (its route or previous
	// route): a received envelope finds its session in one lookup.
	BucketMailboxIndex = []byte("mailbox-index")
	BucketSeen         = []byte("seen")
	BucketInvitations  = []byte("invitations")
	BucketPrekeys      = []byte("prekeys")  // ephemeral
	BucketSessions     = []byte("sessions") // ephemeral, by device record ID
	// BucketErasure holds the keyring, sealed under the epoch key.
	BucketErasure = []byte("erasure")
	// BucketOutbox holds sealed envelopes waiting to be sent (outbox.go).
	BucketOutbox = []byte("outbox")
	// Schema 4 (inbox.go): folders of the user's own and drafts, by
	// random ID; placements (a message's folder and read state from
	// another device, waiting for the message) by Kidx(message ID).
	BucketFolders    = []byte("folders")
	BucketDrafts     = []byte("drafts")
	BucketPlacements = []byte("placements")
	// Schema 6 (group.go): a group's record, with its header keys and
	// sender keys, by the group conversation's ID; ephemeral, as sessions
	// are, so that a replaced sender key is gone.
	BucketGroups = []byte("groups")
	// BucketGroupPending holds, by Kidx(group ID), what arrived for a
	// group before it could be used: parts of a state, distributions of
	// devices not in the state yet.
	BucketGroupPending = []byte("group-pending")
	// Schema 7 (team.go): a team's record (claim space, write capability,
	// claim key, team keys, what the intake still has to forward), by the
	// staff group's conversation ID; ephemeral, as groups are, so that a
	// replaced write capability or team key is gone. BucketQueues holds a
	// queue conversation's record (its register as this device last saw
	// it, the outsider it is with) by the conversation's ID.
	BucketTeams  = []byte("teams")
	BucketQueues = []byte("queues")
	// BucketTeamAgent (teamagent.go): a team agent's escalation records
	// and the content-free events of its figures.
	BucketTeamAgent = []byte("team-agent")

	allBuckets = [][]byte{BucketMeta, BucketPersons, BucketDevices, BucketConversations, BucketMessages, BucketMessageIDs, BucketMailboxIndex, BucketSeen, BucketInvitations, BucketPrekeys, BucketSessions, BucketErasure, BucketOutbox, BucketFolders, BucketDrafts, BucketPlacements, BucketGroups, BucketGroupPending, BucketTeams, BucketQueues, BucketTeamAgent}
	// ephemeralBuckets are the buckets whose old values must not survive
	// their deletion or replacement.
	ephemeralBuckets = [][]byte{BucketPrekeys, BucketSessions, BucketGroups, BucketGroupPending, BucketTeams}
)

// Buckets returns the name of every bucket of the current schema.
func Buckets() [][]byte { return append([][]byte(nil), allBuckets...) }

const (
	// KeySize is the size of the store key (kept in the key file).
	KeySize = 32
	// lockTimeout is how long a transaction waits for the store file lock
	// held by another process on the same home (e.g. `postern listen`).
	lockTimeout = 10 * time.Second

	// EncLabel and IndexLabel derive, with HKDF-SHA-256 from the store
	// key, the key that seals values and the key of the keyed indexes.
	EncLabel   = "postern.v1 store-encrypt"
	IndexLabel = "postern.v1 store-index"
)

// Options configure Open. A nil *Options means all defaults.
type Options struct {
	// Lost runs in the transaction that starts a new epoch after the
	// ephemeral values were found unreadable (erase.keys lost, or an old
	// store.db restored): the ephemeral buckets are already empty, and
	// Lost fixes what referred to them. Default: nothing.
	Lost func(*Tx) error
	// MustExist: the store file belongs to a home that exists, so a
	// missing file is ErrMissing and is never made anew (an empty store
	// in its place would lose every contact and message without a word).
	MustExist bool
}

// Store is the encrypted bbolt file of a home. It never keeps the file
// open between transactions, so that several processes can share one
// home: each transaction opens the file (waiting up to 10 s for the lock),
// runs, and closes it. Its methods are safe for concurrent use; one
// transaction runs at a time in a process.
type Store struct {
	path      string
	aead      cipher.AEAD // seals values under the store key
	macKey    []byte
	slotAEAD  cipher.AEAD // seals the slots of erase.keys
	lostFn    func(*Tx) error
	mustExist bool
	mu        sync.Mutex // one transaction at a time in this process
	wiped     bool       // Wipe ran: no transaction opens (or makes) the file again
}

// New returns the store of the file at path (store.db; erase.keys is
// beside it) under key. It opens nothing: the file is made, migrated or
// refused by the first transaction.
func New(path string, key []byte, opts *Options) (*Store, error) {
	if len(key) != KeySize {
		return nil, ErrCorrupt
	}
	derive := func(label string) []byte {
		k, err := hkdf.Key(sha256.New, key, nil, label, 32)
		if err != nil {
			panic(err) // sizes are constants
		}
		return k
	}
	aead, err := chacha20poly1305.NewX(derive(EncLabel))
	if err != nil {
		return nil, err
	}
	slotAEAD, err := chacha20poly1305.NewX(derive(EraseSlotLabel))
	if err != nil {
		return nil, err
	}
	s := &Store{path: path, aead: aead, macKey: derive(IndexLabel), slotAEAD: slotAEAD}
	if opts != nil {
		s.lostFn = opts.Lost
		s.mustExist = opts.MustExist
	}
	return s, nil
}

// Path is the store file's path.
func (s *Store) Path() string { return s.path }

// Tx is one store transaction with encrypting accessors. It is valid only
// inside the function given to Update or View.
type Tx struct {
	s  *Store
	bt *bolt.Tx
	er *eraseState // the keyring, once used (erasure.go)
}

func (s *Store) open(readOnly bool) (*bolt.DB, error) {
	o := &bolt.Options{Timeout: lockTimeout, ReadOnly: readOnly}
	if s.mustExist {
		o.OpenFile = func(name string, flag int, mode os.FileMode) (*os.File, error) {
			return os.OpenFile(name, flag&^os.O_CREATE, mode)
		}
	}
	db, err := bolt.Open(s.path, 0o600, o)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrMissing, s.path)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open local store: %w", err)
	}
	return db, nil
}

// Update runs fn in a read-write transaction, committed (fsync) before
// it returns nil. A new store is made and an older schema migrated first.
func (s *Store) Update(fn func(*Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateLocked(fn)
}

func (s *Store) updateLocked(fn func(*Tx) error) error {
	if s.wiped {
		return ErrWiped
	}
	db, err := s.open(false)
	if err != nil {
		return err
	}
	err = s.prepare(db)
	var t *Tx
	if err == nil {
		err = db.Update(func(bt *bolt.Tx) error {
			for _, b := range allBuckets {
				if _, err := bt.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			t = &Tx{s: s, bt: bt}
			if err := fn(t); err != nil {
				return err
			}
			return t.finish()
		})
		if t != nil {
			if werr := t.afterCommit(err == nil); err == nil {
				err = werr
			}
		}
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// View runs fn in a read-only transaction. A store that needs a
// migration or a scrub first gets it (read-write) before.
func (s *Store) View(fn func(*Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wiped {
		return ErrWiped
	}
	for attempt := 0; ; attempt++ {
		db, err := s.open(true)
		if err != nil {
			return err
		}
		err = db.View(func(bt *bolt.Tx) error {
			if err := checkSchema(bt, s); err != nil {
				return err
			}
			return fn(&Tx{s: s, bt: bt})
		})
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if !(errors.Is(err, errNeedsPrepare) || errors.Is(err, ErrEraseKeys)) || attempt > 0 {
			return err
		}
		if err := s.updateLocked(func(*Tx) error { return nil }); err != nil {
			return err
		}
	}
}

// Index returns the store key for a lookup value: HMAC-SHA-256(index
// key, bucket || 0x00 || (u16 len(part) || part)...), truncated to 16
// bytes. Names, mailbox IDs and message IDs never appear in the file.
func (s *Store) Index(bucket []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, s.macKey)
	m.Write(bucket)
	m.Write([]byte{0})
	for _, p := range parts {
		var l [2]byte
		l[0], l[1] = byte(len(p)>>8), byte(len(p))
		m.Write(l[:])
		m.Write(p)
	}
	return m.Sum(nil)[:16]
}

// Index is the store's Index.
func (t *Tx) Index(bucket []byte, parts ...[]byte) []byte { return t.s.Index(bucket, parts...) }

// AD is the associated data of the value of key in bucket: bucket ||
// 0x00 || key.
func AD(bucket, key []byte) []byte {
	return append(append(make([]byte, 0, len(bucket)+1+len(key)), bucket...), append([]byte{0}, key...)...)
}

// PutRaw seals val and stores it under key.
func (t *Tx) PutRaw(bucket, key, val []byte) error {
	if isEphemeral(bucket) {
		return t.putEphemeral(bucket, key, val)
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(val)+chacha20poly1305.Overhead)
	rand.Read(nonce)
	return t.bt.Bucket(bucket).Put(key, t.s.aead.Seal(nonce, nonce, val, AD(bucket, key)))
}

func (t *Tx) decrypt(bucket, key, v []byte) ([]byte, error) {
	if isEphemeral(bucket) {
		return t.openEphemeral(bucket, key, v)
	}
	return t.decryptEnc(bucket, key, v)
}

// decryptEnc opens a value sealed under the store key.
func (t *Tx) decryptEnc(bucket, key, v []byte) ([]byte, error) {
	if len(v) < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return nil, ErrCorrupt
	}
	p, err := t.s.aead.Open(nil, v[:chacha20poly1305.NonceSizeX], v[chacha20poly1305.NonceSizeX:], AD(bucket, key))
	if err != nil {
		return nil, ErrCorrupt
	}
	return p, nil
}

// GetRaw returns the decrypted value, or nil if there is none.
func (t *Tx) GetRaw(bucket, key []byte) ([]byte, error) {
	b := t.bt.Bucket(bucket)
	if b == nil {
		return nil, nil
	}
	v := b.Get(key)
	if v == nil {
		return nil, nil
	}
	return t.decrypt(bucket, key, v)
}

// Put stores v, encoded as JSON (a local format, not wire), under key.
func (t *Tx) Put(bucket, key []byte, v any) error {
	b, err := marshal(v)
	if err != nil {
		return err
	}
	return t.PutRaw(bucket, key, b)
}

func marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Get decodes the value into v and reports whether there was one; a
// value that does not decode is ErrCorrupt.
func (t *Tx) Get(bucket, key []byte, v any) (bool, error) {
	p, err := t.GetRaw(bucket, key)
	if err != nil || p == nil {
		return false, err
	}
	if err := json.Unmarshal(p, v); err != nil {
		return false, ErrCorrupt
	}
	return true, nil
}

// Has reports whether bucket holds key.
func (t *Tx) Has(bucket, key []byte) bool {
	b := t.bt.Bucket(bucket)
	return b != nil && b.Get(key) != nil
}

// Delete deletes key (crypto-erased in an ephemeral bucket).
func (t *Tx) Delete(bucket, key []byte) error {
	if isEphemeral(bucket) {
		return t.delEphemeral(bucket, key)
	}
	return t.bt.Bucket(bucket).Delete(key)
}

// NextSequence returns the bucket's next sequence number (for keys that
// keep insertion order).
func (t *Tx) NextSequence(bucket []byte) (uint64, error) {
	return t.bt.Bucket(bucket).NextSequence()
}

// Each calls fn with every key and decrypted value of bucket in key
// order; fn returning ErrStop ends the walk without error.
func (t *Tx) Each(bucket []byte, fn func(key, plain []byte) error) error {
	b := t.bt.Bucket(bucket)
	if b == nil {
		return nil
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		p, err := t.decrypt(bucket, k, v)
		if err != nil {
			return err
		}
		if err := fn(k, p); err != nil {
			if err == ErrStop {
				return nil
			}
			return err
		}
	}
	return nil
}

// Unmarshal decodes a record; one that does not decode is ErrCorrupt.
func Unmarshal(p []byte, v any) error {
	if err := json.Unmarshal(p, v); err != nil {
		return ErrCorrupt
	}
	return nil
}

// Bolt is the underlying bbolt transaction, for tests that damage a store
// on purpose: nothing written through it is sealed.
func (t *Tx) Bolt() *bolt.Tx { return t.bt }
