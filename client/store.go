package client

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/chacha20poly1305"
)

// Store layout (protocol/SPEC.md section 9 "Local state"). Every value is
// XChaCha20-Poly1305(store key, random nonce, AAD = bucket || key), except
// in the ephemeral buckets, sealed under keys that are erased (erasure.go);
// keys are keyed HMACs or random IDs, never names.
var (
	bucketMeta        = []byte("meta")
	bucketContacts    = []byte("contacts")
	bucketMessages    = []byte("messages")
	bucketMessageIDs  = []byte("message-ids")
	bucketSeen        = []byte("seen")
	bucketInvitations = []byte("invitations")
	bucketPrekeys     = []byte("prekeys")
	bucketSessions    = []byte("sessions") // keyed by contact record ID, like contacts

	allBuckets = [][]byte{bucketMeta, bucketContacts, bucketMessages, bucketMessageIDs, bucketSeen, bucketInvitations, bucketPrekeys, bucketSessions, bucketErasure}
)

const (
	storeKeySize = 32
	// lockTimeout is how long a transaction waits for the store file lock
	// held by another process on the same home (e.g. `postern listen`).
	lockTimeout = 10 * time.Second

	storeEncLabel   = "postern.v1 store-encrypt"
	storeIndexLabel = "postern.v1 store-index"
)

// errStoreCorrupt: a value that does not decrypt or decode.
var errStoreCorrupt = errors.New("client: local store value does not decrypt (corrupted store or wrong key)")

// store is the encrypted bbolt file. It never keeps the file open between
// transactions, so that several processes can share one home: each
// transaction opens the file (waiting up to lockTimeout for the lock),
// runs, and closes it.
type store struct {
	path string
	aead interface {
		Seal(dst, nonce, plaintext, ad []byte) []byte
		Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
	}
	macKey   []byte
	slotAEAD cipher.AEAD // seals the slots of erase.keys
	mu       sync.Mutex  // one transaction at a time in this process
}

func newStore(path string, key []byte) (*store, error) {
	if len(key) != storeKeySize {
		return nil, errStoreCorrupt
	}
	enc, err := hkdf.Key(sha256.New, key, nil, storeEncLabel, chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	mac, err := hkdf.Key(sha256.New, key, nil, storeIndexLabel, 32)
	if err != nil {
		return nil, err
	}
	slot, err := hkdf.Key(sha256.New, key, nil, eraseSlotLabel, chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(enc)
	if err != nil {
		return nil, err
	}
	slotAEAD, err := chacha20poly1305.NewX(slot)
	if err != nil {
		return nil, err
	}
	return &store{path: path, aead: aead, macKey: mac, slotAEAD: slotAEAD}, nil
}

// tx is one store transaction with encrypting accessors.
type tx struct {
	s  *store
	bt *bolt.Tx
	er *eraseState // the keyring, once used (erasure.go)
}

func (s *store) open(readOnly bool) (*bolt.DB, error) {
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: lockTimeout, ReadOnly: readOnly})
	if err != nil {
		return nil, fmt.Errorf("client: open local store: %w", err)
	}
	return db, nil
}

// update runs fn in a read-write transaction, committed (fsync) before it
// returns nil.
func (s *store) update(fn func(*tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateLocked(fn)
}

func (s *store) updateLocked(fn func(*tx) error) error {
	db, err := s.open(false)
	if err != nil {
		return err
	}
	err = s.prepare(db)
	var t *tx
	if err == nil {
		err = db.Update(func(bt *bolt.Tx) error {
			for _, b := range allBuckets {
				if _, err := bt.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			t = &tx{s: s, bt: bt}
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

// view runs fn in a read-only transaction. A store that needs a
// migration or a scrub first gets it (read-write) before.
func (s *store) view(fn func(*tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		db, err := s.open(true)
		if err != nil {
			return err
		}
		err = db.View(func(bt *bolt.Tx) error {
			if err := checkSchema(bt, s); err != nil {
				return err
			}
			return fn(&tx{s: s, bt: bt})
		})
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if !(errors.Is(err, errNeedsPrepare) || errors.Is(err, errEraseKeys)) || attempt > 0 {
			return err
		}
		if err := s.updateLocked(func(*tx) error { return nil }); err != nil {
			return err
		}
	}
}

// index returns the store key for a lookup value: HMAC-SHA-256(index key,
// bucket || 0x00 || part...), truncated to 16 bytes.
func (s *store) index(bucket []byte, parts ...[]byte) []byte {
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

func ad(bucket, key []byte) []byte {
	return append(append(make([]byte, 0, len(bucket)+1+len(key)), bucket...), append([]byte{0}, key...)...)
}

func (t *tx) putRaw(bucket, key, val []byte) error {
	if isEphemeral(bucket) {
		return t.putEphemeral(bucket, key, val)
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(val)+chacha20poly1305.Overhead)
	rand.Read(nonce)
	return t.bt.Bucket(bucket).Put(key, t.s.aead.Seal(nonce, nonce, val, ad(bucket, key)))
}

func (t *tx) decrypt(bucket, key, v []byte) ([]byte, error) {
	if isEphemeral(bucket) {
		return t.openEphemeral(bucket, key, v)
	}
	return t.decryptEnc(bucket, key, v)
}

// decryptEnc opens a value sealed under the store key.
func (t *tx) decryptEnc(bucket, key, v []byte) ([]byte, error) {
	if len(v) < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return nil, errStoreCorrupt
	}
	p, err := t.s.aead.Open(nil, v[:chacha20poly1305.NonceSizeX], v[chacha20poly1305.NonceSizeX:], ad(bucket, key))
	if err != nil {
		return nil, errStoreCorrupt
	}
	return p, nil
}

// getRaw returns the decrypted value, or nil if there is none.
func (t *tx) getRaw(bucket, key []byte) ([]byte, error) {
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

func (t *tx) put(bucket, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return t.putRaw(bucket, key, b)
}

// get decodes the value into v and reports whether there was one.
func (t *tx) get(bucket, key []byte, v any) (bool, error) {
	p, err := t.getRaw(bucket, key)
	if err != nil || p == nil {
		return false, err
	}
	if err := json.Unmarshal(p, v); err != nil {
		return false, errStoreCorrupt
	}
	return true, nil
}

func (t *tx) has(bucket, key []byte) bool {
	b := t.bt.Bucket(bucket)
	return b != nil && b.Get(key) != nil
}

func (t *tx) del(bucket, key []byte) error {
	if isEphemeral(bucket) {
		return t.delEphemeral(bucket, key)
	}
	return t.bt.Bucket(bucket).Delete(key)
}

// each decodes every value of bucket in key order, calling fn with a fresh
// value from newV; fn returning errStop ends the walk without error.
func (t *tx) each(bucket []byte, fn func(key, plain []byte) error) error {
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
			if err == errStop {
				return nil
			}
			return err
		}
	}
	return nil
}

var errStop = errors.New("stop")

// ---- records (JSON inside the encryption; a local format, not wire) ----

type profileRecord struct {
	V        int       `json:"v"`
	Name     string    `json:"name"`
	Relay    string    `json:"relay"`
	Identity []byte    `json:"identity"` // identity fingerprint
	Device   []byte    `json:"device"`   // device ID
	Created  time.Time `json:"created"`
	Enrolled bool      `json:"enrolled"`
}

type mailboxRecord struct {
	ID      []byte    `json:"id"`
	Purpose string    `json:"purpose"` // "default", "invitation", "contact", "spare"
	Created time.Time `json:"created"`
	// Cap is a spare mailbox's send capability (introduction.go): spares
	// are made ahead of need, so that accepting an invitation or giving a
	// contact a new route makes no authenticated request at that moment.
	Cap []byte `json:"cap,omitempty"`
}

type mailboxesRecord struct {
	V    int             `json:"v"`
	List []mailboxRecord `json:"list"`
}

type contactRecord struct {
	V        int       `json:"v"`
	ID       []byte    `json:"id"` // random, the record key
	Name     string    `json:"name"`
	Identity []byte    `json:"identity"`
	Cert     []byte    `json:"cert"` // the contact device's certificate
	Device   []byte    `json:"device"`
	SendMbx  []byte    `json:"send_mailbox"` // the contact's mailbox we write to
	SendCap  []byte    `json:"send_cap"`
	RecvMbx  []byte    `json:"recv_mailbox"` // our mailbox the contact writes to
	RecvCap  []byte    `json:"recv_cap"`
	Added    time.Time `json:"added"`
	Blocked  bool      `json:"blocked,omitempty"`
	// Session: a session with this contact opened a message once, so
	// that having none now means it was lost (session.go).
	Session bool `json:"session,omitempty"`

	// Routes (introduction.go, SPEC section 9 "Routes").
	// ViaInvitation: we still write with the invitation's capability
	// (SendMbx/SendCap came from their invitation), until their route
	// update arrives.
	ViaInvitation bool `json:"via_invitation,omitempty"`
	// Refused: the inviter answered our introduction with a refusal (the
	// invitation was used by someone else). Nothing is sent to them.
	Refused bool `json:"refused,omitempty"`
	// NeedRoute: the contact writes with a capability that was in an
	// invitation; they must be given a fresh one (RouteChosen: it is
	// chosen and in RecvMbx/RecvCap, the old one in PrevRecv*).
	NeedRoute   bool `json:"need_route,omitempty"`
	RouteChosen bool `json:"route_chosen,omitempty"`
	// PrevRecvMbx/PrevRecvCap: the route the contact wrote to before
	// (still read); PrevRevokeDue once the contact wrote to the new one,
	// PrevRevoked once its capability is revoked on the relay.
	PrevRecvMbx   []byte `json:"prev_recv_mailbox,omitempty"`
	PrevRecvCap   []byte `json:"prev_recv_cap,omitempty"`
	PrevRevokeDue bool   `json:"prev_revoke_due,omitempty"`
	PrevRevoked   bool   `json:"prev_revoked,omitempty"`
}

// receivesOn reports whether the contact writes to mailbox mb (its route
// or its previous one).
func (c *contactRecord) receivesOn(mb []byte) bool {
	return bytes.Equal(c.RecvMbx, mb) || (c.PrevRecvMbx != nil && bytes.Equal(c.PrevRecvMbx, mb))
}

type messageRecord struct {
	V        int       `json:"v"`
	ID       string    `json:"id"`
	Contact  []byte    `json:"contact"` // contact record ID
	From     string    `json:"from"`
	To       string    `json:"to"`
	Text     string    `json:"text"`
	Time     time.Time `json:"time"`
	Received time.Time `json:"received"`
	Outgoing bool      `json:"outgoing,omitempty"`
	Notice   bool      `json:"notice,omitempty"`   // a notice from this client, not a message
	Mailbox  []byte    `json:"mailbox,omitempty"`  // incoming: where it arrived
	Envelope []byte    `json:"envelope,omitempty"` // incoming: relay envelope ID
	// Attachments of a message of type 0x04, with their keys.
	Attachments []attachmentRecord `json:"attachments,omitempty"`
}

// invitationRecord is an invitation this device made. Version 1 records
// (invitation format 1) are keyed by index(token) and are retired: their
// mailbox is deleted on the relay (introduction.go). Version 2 records are
// keyed by index("v2", mailbox) and keep the invitation secret, so that a
// later introduction can be checked (and a second holder refused).
type invitationRecord struct {
	V        int       `json:"v"`
	Mailbox  []byte    `json:"mailbox"`
	Created  time.Time `json:"created"`
	Used     bool      `json:"used,omitempty"`
	Secret   []byte    `json:"secret,omitempty"`   // v2: the invitation secret
	UsedBy   []byte    `json:"used_by,omitempty"`  // v2: identity fingerprint of the contact it made
	Refusals int       `json:"refusals,omitempty"` // v2: refusals sent to later holders
	Retired  bool      `json:"retired,omitempty"`  // v1: mailbox deleted on the relay
}

type seenRecord struct {
	At time.Time `json:"at"`
}

var (
	keyProfile   = []byte("profile")
	keyMailboxes = []byte("mailboxes")
)

func (t *tx) profile() (*profileRecord, error) {
	var p profileRecord
	ok, err := t.get(bucketMeta, t.s.index(bucketMeta, keyProfile), &p)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotInitialised
	}
	return &p, nil
}

func (t *tx) putProfile(p *profileRecord) error {
	p.V = 1
	return t.put(bucketMeta, t.s.index(bucketMeta, keyProfile), p)
}

func (t *tx) mailboxes() ([]mailboxRecord, error) {
	var m mailboxesRecord
	_, err := t.get(bucketMeta, t.s.index(bucketMeta, keyMailboxes), &m)
	return m.List, err
}

func (t *tx) addMailbox(m mailboxRecord) error {
	list, err := t.mailboxes()
	if err != nil {
		return err
	}
	return t.put(bucketMeta, t.s.index(bucketMeta, keyMailboxes), &mailboxesRecord{V: 1, List: append(list, m)})
}

func (t *tx) putMailboxes(list []mailboxRecord) error {
	return t.put(bucketMeta, t.s.index(bucketMeta, keyMailboxes), &mailboxesRecord{V: 1, List: list})
}

// jsonUnmarshal decodes a record; a record that does not decode is
// errStoreCorrupt.
func jsonUnmarshal(p []byte, v any) error {
	if err := json.Unmarshal(p, v); err != nil {
		return errStoreCorrupt
	}
	return nil
}

func (t *tx) contacts() ([]*contactRecord, error) {
	var out []*contactRecord
	err := t.each(bucketContacts, func(_, p []byte) error {
		c := new(contactRecord)
		if err := json.Unmarshal(p, c); err != nil {
			return errStoreCorrupt
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

func (t *tx) putContact(c *contactRecord) error {
	c.V = 1
	return t.put(bucketContacts, c.ID, c)
}
