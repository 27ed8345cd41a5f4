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
	bucketContacts    = store.BucketContacts
	bucketMessages    = store.BucketMessages
	bucketMessageIDs  = store.BucketMessageIDs
	bucketSeen        = store.BucketSeen
	bucketInvitations = store.BucketInvitations
	bucketPrekeys     = store.BucketPrekeys
	bucketSessions    = store.BucketSessions // keyed by contact record ID, like contacts
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
type localStore struct{ *store.Store }

// tx is a store transaction with the client's record accessors.
type tx struct{ *store.Tx }

// newStore returns the store of the file at path under key. When the
// store finds its ephemeral values lost (erase.keys gone, or an old
// store.db restored), the signed prekey is rotated and republished at the
// next check (prekeys.go); prekey IDs keep increasing.
func newStore(path string, key []byte) (*localStore, error) {
	st, err := store.New(path, key, &store.Options{Lost: func(st *store.Tx) error {
		t := &tx{st}
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
	return &localStore{st}, nil
}

// update runs fn in a read-write transaction, committed before it returns
// nil.
func (s *localStore) update(fn func(*tx) error) error {
	return s.Update(func(st *store.Tx) error { return fn(&tx{st}) })
}

// view runs fn in a read-only transaction.
func (s *localStore) view(fn func(*tx) error) error {
	return s.View(func(st *store.Tx) error { return fn(&tx{st}) })
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

func (t *tx) contacts() ([]*contactRecord, error) {
	var out []*contactRecord
	err := t.Each(bucketContacts, func(_, p []byte) error {
		c := new(contactRecord)
		if err := jsonUnmarshal(p, c); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

func (t *tx) putContact(c *contactRecord) error {
	c.V = 1
	return t.Put(bucketContacts, c.ID, c)
}
