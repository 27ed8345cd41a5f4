package client

import (
	"bytes"
	"time"

	"github.com/postern/postern/client/internal/store"
)

// The local store is client/internal/store (protocol/SPEC.md section 9
// "Local state"); this file holds the client's records and the accessors
// it uses. Bucket names are the store's.
var (
	bucketMeta        = store.BucketMeta
	bucketMessages    = store.BucketMessages
	bucketMessageIDs  = store.BucketMessageIDs
	bucketSeen        = store.BucketSeen
	bucketInvitations = store.BucketInvitations
	bucketPrekeys     = store.BucketPrekeys
	bucketSessions    = store.BucketSessions // keyed by device record ID
)

const storeKeySize = store.KeySize

// EraseKeysFileName is the file of epoch-key slots under the home
// (protocol/SPEC.md section 9 "Erasure").
const EraseKeysFileName = store.EraseKeysFileName

var (
	// ErrStoreTooNew: the home's store was written by a newer version
	// with a layout this one does not know. Nothing is changed.
	ErrStoreTooNew = store.ErrTooNew
	// errStoreCorrupt: a value that does not decrypt or decode.
	errStoreCorrupt = store.ErrCorrupt
	errStop         = store.ErrStop
)

// localStore is the home's store with the client's transactions.
type localStore struct {
	*store.Store
	idx *searchIndex // the home's search index (search.go)
}

// tx is a store transaction with the client's record accessors. ch
// collects, in a read-write transaction, the changes to messages that the
// search index follows (search.go).
type tx struct {
	*store.Tx
	ch *messageChanges
}

// newStore returns the store of the file at path under key. When the
// store finds its ephemeral values lost (erase.keys gone, or an old
// store.db restored), the signed prekey is rotated and republished at the
// next check (prekeys.go); prekey IDs keep increasing.
func newStore(path string, key []byte) (*localStore, error) {
	return openStore(path, key, false)
}

// openStore is newStore; mustExist for the store of a home that exists
// (Open): a missing file is then an error, never a new empty store.
func openStore(path string, key []byte, mustExist bool) (*localStore, error) {
	st, err := store.New(path, key, &store.Options{MustExist: mustExist, Lost: func(st *store.Tx) error {
		t := &tx{Tx: st}
		ps, err := t.prekeyState()
		if err != nil || ps == nil {
			return err
		}
		ps.Signed, ps.SignedAt, ps.BundleStale, ps.Retired = 0, time.Time{}, true, nil
		return t.putPrekeyState(ps)
	}})
	if err != nil {
		return nil, err
	}
	return &localStore{Store: st, idx: newSearchIndex(path, key)}, nil
}

// update runs fn in a read-write transaction, committed before it returns
// nil.
// The search index follows the messages it added, moved or deleted, once
// committed (search.go).
func (s *localStore) update(fn func(*tx) error) error {
	var ch messageChanges
	err := s.Update(func(st *store.Tx) error {
		ch = messageChanges{}
		return fn(&tx{Tx: st, ch: &ch})
	})
	if err == nil && ch.any() {
		s.idx.committed(s, &ch)
	}
	return err
}

// view runs fn in a read-only transaction.
func (s *localStore) view(fn func(*tx) error) error {
	return s.View(func(st *store.Tx) error { return fn(&tx{Tx: st}) })
}

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

// newContactRecord returns a new contact: a new person with a new device
// record for the device deviceID (certificate cert) on relay. The caller
// sets the routes.
func newContactRecord(name string, identity, cert, deviceID []byte, relay string, now time.Time) *contactRecord {
	p := &store.Person{ID: store.NewID(), Identity: bytes.Clone(identity), Name: name, Added: now}
	return &contactRecord{
		Device: store.Device{ID: store.NewID(), Person: p.ID, DeviceID: bytes.Clone(deviceID), Cert: bytes.Clone(cert), Relay: relay, Added: now},
		Person: p,
	}
}

// contactRecord is a contact as this version handles it: a person
// (store.Person) with the one device it writes to and reads from
// (store.Device, embedded: the routes and the session flag are the
// device's). ID is the device record's ID, the key of its session.
type contactRecord struct {
	store.Device
	Person *store.Person
}

// messageRecord is a stored message (store.Message).
type messageRecord = store.Message

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
	Role     []byte    `json:"role,omitempty"`     // v2, a team's intake: the role account (ID) the invitation is for (roles.go)
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
	ok, err := t.Get(bucketMeta, t.Index(bucketMeta, keyProfile), &p)
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
	return t.Put(bucketMeta, t.Index(bucketMeta, keyProfile), p)
}

func (t *tx) mailboxes() ([]mailboxRecord, error) {
	var m mailboxesRecord
	_, err := t.Get(bucketMeta, t.Index(bucketMeta, keyMailboxes), &m)
	return m.List, err
}

func (t *tx) addMailbox(m mailboxRecord) error {
	list, err := t.mailboxes()
	if err != nil {
		return err
	}
	return t.Put(bucketMeta, t.Index(bucketMeta, keyMailboxes), &mailboxesRecord{V: 1, List: append(list, m)})
}

func (t *tx) putMailboxes(list []mailboxRecord) error {
	return t.Put(bucketMeta, t.Index(bucketMeta, keyMailboxes), &mailboxesRecord{V: 1, List: list})
}

// jsonUnmarshal decodes a record; a record that does not decode is
// errStoreCorrupt.
func jsonUnmarshal(p []byte, v any) error { return store.Unmarshal(p, v) }

// putSelf stores this device's own person (Self, verified: it is this
// identity) and this device's record, with its own name (may be empty).
func (t *tx) putSelf(prof *profileRecord, deviceName string) error {
	p := &store.Person{ID: store.NewID(), Identity: prof.Identity, Name: prof.Name, Self: true, Verification: store.Verified, Added: prof.Created}
	if err := t.PutPerson(p); err != nil {
		return err
	}
	return t.PutDevice(&store.Device{ID: store.NewID(), Person: p.ID, DeviceID: prof.Device, Relay: prof.Relay, OwnName: deviceName, Added: prof.Created})
}

// contacts returns every contact: each person but this device's own,
// with its device (the first not revoked; persons without one are left
// out), in person key order.
func (t *tx) contacts() ([]*contactRecord, error) {
	ps, err := t.Persons()
	if err != nil {
		return nil, err
	}
	ds, err := t.Devices()
	if err != nil {
		return nil, err
	}
	byPerson := map[string]*store.Device{}
	for _, d := range ds {
		if !d.Revoked && byPerson[string(d.Person)] == nil {
			byPerson[string(d.Person)] = d
		}
	}
	var out []*contactRecord
	for _, p := range ps {
		if d := byPerson[string(p.ID)]; d != nil && !p.Self {
			out = append(out, &contactRecord{Device: *d, Person: p})
		}
	}
	return out, nil
}

// contact returns the contact whose device record is id, or nil.
func (t *tx) contact(id []byte) (*contactRecord, error) {
	d, err := t.Device(id)
	if err != nil || d == nil {
		return nil, err
	}
	return t.contactOf(d)
}

// contactOf joins device d with its person (a contact, or this person:
// a sibling device).
func (t *tx) contactOf(d *store.Device) (*contactRecord, error) {
	p, err := t.Person(d.Person)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errStoreCorrupt
	}
	return &contactRecord{Device: *d, Person: p}, nil
}

// contactByMailbox returns the contact that writes to our mailbox mb,
// or nil: one lookup in the mailbox index.
func (t *tx) contactByMailbox(mb []byte) (*contactRecord, error) {
	d, err := t.DeviceByMailbox(mb)
	if err != nil || d == nil {
		return nil, err
	}
	return t.contactOf(d)
}

// putContact stores the contact's person and device.
func (t *tx) putContact(c *contactRecord) error {
	if err := t.PutPerson(c.Person); err != nil {
		return err
	}
	return t.PutDevice(&c.Device)
}

// newContact stores a new contact: a person, its device and their
// direct conversation.
func (t *tx) newContact(c *contactRecord, now time.Time) error {
	if err := t.putContact(c); err != nil {
		return err
	}
	_, err := t.DirectConversation(c.Person.ID, now)
	return err
}

// deleteContact deletes the contact's person, device (with its session)
// and direct conversation.
func (t *tx) deleteContact(c *contactRecord) error {
	return t.DeletePerson(c.Person.ID)
}
