package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
)

// File names under the home directory.
const (
	KeyFileName   = "keys.pstn"
	StoreFileName = "store.db"
)

// OneTimePrekeys is how many one-time prekeys Init publishes with the
// bundle: eight fit in one frame beside it (protocol.MaxFrameSize). Sealed
// envelopes do not consume them; sessions will, and top them up.
const OneTimePrekeys = 8

// Options configure Init, Open and Dial. A nil *Options means all defaults.
type Options struct {
	// Logger receives operational events, never content, keys or whole
	// IDs. Default: discard.
	Logger *slog.Logger
	// KDF is the Argon2id cost of a new key file (Init only). Default:
	// identity.DefaultKDFParams.
	KDF *identity.KDFParams
	// Invite is the relay's enrolment invite code, for relays whose
	// enrolment is by invitation (Init only). Default: none.
	Invite string
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// TLSConfig configures wss:// and https:// (blob) connections to the
	// relay, e.g. RootCAs for a relay whose certificate is issued by a
	// private CA. Nil means the system roots. It is cloned, not modified.
	TLSConfig *tls.Config
	// Organisation is the name of the organisation whose Secure Messaging
	// this person uses, as its patients know it: the sentences of a
	// restriction (RestrictedError) name its coordinator. Default: "your
	// provider".
	Organisation string
	// Directory is the organisation's enrolment of this device for its
	// directory: the organisation's ID and first administrators, which
	// the first directory must be signed by (directory.go). Default:
	// none; received directories are then ignored.
	Directory *DirectoryEnrolment

	// prekeys is the range of one-time prekeys kept on the relay; zero:
	// defaultPrekeySupply.
	prekeys prekeySupply
}

// Whoami describes this client.
type Whoami struct {
	Name     string
	Relay    string
	Identity keys.Fingerprint // the person's identity key fingerprint
	Device   keys.Fingerprint // this device's ID
}

// Contact is a person this client can write to.
type Contact struct {
	Name         string
	Identity     keys.Fingerprint
	SafetyNumber string // compare it out of band to rule out a lying relay
	Added        time.Time
	Blocked      bool
	// Verification: whether the user compared the safety number
	// (VerifyContact), or the identity key changed since.
	Verification Verification
	// Disappearing is the conversation's disappearing-message timer, 0
	// when it is off (SetDisappearing).
	Disappearing time.Duration
	// Restricted: the contact (an organisation's team) restricted this
	// person's access, at RestrictedAt; sends to it are refused until
	// OptIn. OptedIn: when the person last opted in again, to the terms
	// of version OptInTerms. RestrictedByMe: this person restricted the
	// contact (Restrict).
	Restricted     Restriction
	RestrictedAt   time.Time
	OptedIn        time.Time
	OptInTerms     string
	RestrictedByMe Restriction
	// SendsRefused: the opt-out refuses a send to the contact now. A
	// team's level 2 or 3 may stop only one of its two routes (SPEC 15.9
	// "Two routes to the intake"), so a restricted contact is not always
	// refused.
	SendsRefused bool
	// Team: the contact said it is a team (a team notice), nil if not.
	// Every compose to it shows TeamNoticeText, and Team.Sentence its
	// response windows when it stated them.
	Team *TeamNotice
}

// Message is a stored message, incoming or outgoing.
type Message struct {
	ID       string    // 16 hex digits, the same on both sides
	From     string    // contact name, or "me"
	To       string    // contact name, or "me"
	Text     string    //
	Time     time.Time // the sender's clock
	Received time.Time // local clock when stored
	Outgoing bool
	// Notice marks a notice this client wrote into the conversation with
	// From (the contact), not a message they sent: "Your secure session
	// with NAME was reset..." (see SessionResetNotice). Show it distinctly.
	Notice bool
	// Attachments are the files attached to the message, nil if none;
	// SaveAttachments fetches them. Names come from the sender: make them
	// safe before display (SafeFileName for a file name).
	Attachments []Attachment
	// Conversation is the ID (32 hex digits) of the conversation the
	// message belongs to: the direct conversation with From or To. Empty
	// for a message stored before conversations whose contact is gone.
	Conversation string
	// Subject is the message's subject, empty if none.
	Subject string
	// ReplyTo is the ID of the message of the same conversation this one
	// answers, empty if none.
	ReplyTo string
	// Urgent: the sender marked the message urgent (SendOptions.Urgent).
	Urgent bool
	// Queued marks an outgoing message whose relay could not be reached:
	// it waits in the outbox and is sent by the next Sync, Listen or Send
	// (protocol/SPEC.md section 9 "Outbox").
	Queued bool
	// SendError says why an outgoing message left the outbox unsent (a
	// refusal, or its expiry); empty otherwise.
	SendError string
	// Folder is the ID of the folder the message is in (FolderInbox,
	// FolderSent, FolderArchive or a folder of the user's own; see
	// Folders). Read reports whether this person read it, on any of
	// their devices, first at ReadAt: always true for sent messages and
	// notices (ReadAt zero); MarkRead marks received ones.
	Folder string
	Read   bool
	ReadAt time.Time
	// Delivered and ReadReceipt are, for an outgoing message, when a
	// device of the recipient first reported it delivered and read
	// (receipts, protocol/SPEC.md section 9 "Receipts"), by that device's
	// clock, bounded by the sending and the arrival of the receipt; zero
	// until then. A recipient may turn read receipts off.
	Delivered   time.Time
	ReadReceipt time.Time
	// Expires is when a disappearing message is deleted on every device
	// (SetDisappearing): its conversation's timer after it was sent.
	// Zero for a message that does not disappear.
	Expires time.Time
	// Recalled is when the message's sender deleted it for everyone
	// (Recall), zero if they did not; RecalledBy names who ("me" or the
	// contact). Its text, subject and files are gone: show it as "NAME
	// deleted this message" with the time.
	Recalled   time.Time
	RecalledBy string
	// ReadBy is, for an outsider's message in a team's queue conversation
	// (QueueThread), the staff members who read it, first first, as queue
	// receipts reported them (ReadQueue): Me for this person. Nil
	// elsewhere.
	ReadBy []QueueRead
	// ForwardedTo: for an outgoing message to a colleague whose
	// availability status forwards their messages now (SetStatus), the
	// contact who also received it as a forwarded copy; ForwardReason
	// says why ("NAME is off duty", "NAME has do not disturb until
	// TIME"). NotForwarded: the status forwards to a colleague this
	// client cannot write to (not a contact, blocked, or no device), so
	// the message went to its recipient only; it names the colleague.
	ForwardedTo, ForwardReason, NotForwarded string
	// ForwardedFor: the message is a copy forwarded for this person (a
	// contact's name, else their name in the directory): received, their
	// status forwarded it to this person; sent, this client forwarded it
	// to From/To for them.
	ForwardedFor string

	mailbox  protocol.MailboxID
	envelope protocol.EnvelopeID
	relayed  bool // mailbox and envelope are set
	// contentID is a received message's content message ID (stored for
	// its read receipt); nil otherwise.
	contentID []byte
	// staff is, on a team's intake, the identity of the staff member who
	// wrote a reply it forwards (for the queue history, teamhistory.go).
	staff []byte
}

// Stats counts envelopes this Client processed since Open or Dial.
type Stats struct {
	Received   uint64 // new messages (and notices) stored
	Duplicates uint64 // envelopes already stored (same envelope or message ID)
	Dropped    uint64 // envelopes that did not decrypt, parse or verify, or came from unknown senders
}

// Me is the From or To of a message written by this client.
const Me = "me"

// Client is a Postern client on one home directory. Its methods are safe
// for concurrent use. Several Clients (in one process or several) may use
// one home at the same time: the store is opened per transaction.
type Client struct {
	home    string
	prekeys prekeySupply // kept on the relay (prekeys.go)
	log     *slog.Logger
	now     func() time.Time
	id      *identity.Identity // signs this person's device lists (devices.go)
	dev     *identity.Device
	devID   keys.Fingerprint
	idFP    keys.Fingerprint
	name    string
	relay   string
	// organisation names the organisation in restriction sentences
	// (Options.Organisation).
	organisation string
	st           *localStore
	// dirEnrol is Options.Directory; dir caches the held directory
	// (directory.go).
	dirEnrol *DirectoryEnrolment
	dir      dirCache
	statuses statusCache // parsed held statuses (status.go)

	ctx    context.Context // the Client's lifetime
	cancel context.CancelFunc
	wg     sync.WaitGroup

	connecting chan struct{} // a one-slot semaphore held by connect

	mu        sync.Mutex
	online    bool                                         // the receive loop runs (connect succeeded once)
	cur       *conn                                        // authenticated connection; nil while reconnecting
	gen       uint64                                       // connection generation
	subs      map[protocol.MailboxID]bool                  // subscriptions of cur: drained?
	syncedGen uint64                                       // last generation a Sync consumed
	changed   chan struct{}                                // closed and replaced on every state change
	fatal     error                                        // stops the client (device revoked...)
	inbox     []Message                                    // new messages not yet returned
	storeErr  error                                        // an envelope could not be stored; reported by Sync or Receive
	closed    bool                                         //
	certs     map[keys.Fingerprint]*keys.DeviceCertificate // parsed contact certificates

	ev events // subscribers (events.go)

	lists contactLists // contacts' device lists and head gossip (contactlist.go)

	delivered deliveredQueue // delivered receipts not sent yet (receipts.go)

	anonMu sync.Mutex
	anon   map[string]*anonConn // unauthenticated connections, one per contact (anonRequest)

	// groupMu serialises this device's changes to its groups' states
	// (group.go): an admin publishes one version at a time.
	groupMu sync.Mutex
	// teamMu serialises this device's changes to its teams' records that
	// talk to the relay first (team.go).
	teamMu sync.Mutex

	prekeyBusy  chan struct{} // a one-slot semaphore held by a prekey check (prekeys.go)
	maintaining chan struct{} // a one-slot semaphore held by route maintenance (introduction.go)

	outboxMu   sync.Mutex    // held by an outbox flush (outbox.go)
	outboxKick chan struct{} // one slot: wakes the outbox loop after a send was queued
	outboxLoop sync.Once     // the outbox loop starts with the first connection

	expiryKick chan struct{} // one slot: wakes the expiry loop (disappear.go)
	expiryLoop sync.Once     // the expiry loop starts with the first connection

	received, duplicates, dropped atomic.Uint64

	// owedStates: group states this device could not send to a listed
	// device, sent again at maintenance (groupdevices.go).
	owedStates owedGroupStates

	// resubscribe: Sync closed the connection to subscribe afresh; the
	// receive loop reconnects without a backoff.
	resubscribe atomic.Bool
	// noInboxSnapshots: no linked device waits for its inbox snapshot
	// (inboxsnapshot.go); false until the store has been read.
	noInboxSnapshots atomic.Bool
	// inboxSnapshotRetry: no inbox snapshot is tried before this time
	// (Unix ms), after one could not be sent.
	inboxSnapshotRetry atomic.Int64

	// envelopeHook, if set (tests), sees every envelope sent (outgoing)
	// or delivered, before anything else is done with it.
	envelopeHook atomic.Pointer[func(outgoing bool, env []byte)]
	// markReadHook, if set (tests), runs in MarkRead's transaction after
	// the reads and before the queue receipts; an error aborts it (as a
	// crash would).
	markReadHook atomic.Pointer[func() error]
	// rotateHook, if set (tests), runs before the intake asks the relay
	// to replace a team's claim space write capability (teamrotate.go).
	rotateHook atomic.Pointer[func()]

	// Blob transfers (transfer.go). blobTransport and retryBase are test
	// hooks, set before the first transfer: a RoundTripper that breaks
	// connections, and a shorter first backoff.
	httpOnce      sync.Once
	httpc         *http.Client
	blobTransport http.RoundTripper
	retryBase     time.Duration
	tlsConf       *tls.Config // Options.TLSConfig; nil: system roots

	restored restoreStats // what Restore imported (backup.go)

	// The relay revoked this device (devices.go): wiped once.
	wipeOnce sync.Once
	wipeErr  error
}

func (o *Options) defaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.KDF == nil {
		p := identity.DefaultKDFParams
		r.KDF = &p
	}
	return r
}

func checkName(s string) error {
	if s == "" || len(s) > MaxNameSize || !utf8.ValidString(s) || s == Me {
		return ErrInvalidName
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return ErrInvalidName
		}
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// key file payload: u8 version | u16 len | identity secret | u16 len |
// device secret | store key (32).
const keyPayloadVersion = 1

func marshalKeyPayload(id *identity.Identity, dev *identity.Device, storeKey []byte) []byte {
	is, ds := id.MarshalSecret(), dev.MarshalSecret()
	b := []byte{keyPayloadVersion}
	b = binary.BigEndian.AppendUint16(b, uint16(len(is)))
	b = append(b, is...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(ds)))
	b = append(b, ds...)
	return append(b, storeKey...)
}

func parseKeyPayload(b []byte) (*identity.Identity, *identity.Device, []byte, error) {
	r := protocol.NewReader(b)
	if r.U8("version") != keyPayloadVersion {
		return nil, nil, nil, fmt.Errorf("client: key file payload: unknown version")
	}
	is := r.Take(int(r.U16("identity length")), "identity")
	ds := r.Take(int(r.U16("device length")), "device")
	sk := r.Take(storeKeySize, "store key")
	if r.Finish("key file payload") != nil {
		return nil, nil, nil, fmt.Errorf("client: key file payload: malformed")
	}
	id, err := identity.ParseIdentitySecret(is)
	if err != nil {
		return nil, nil, nil, err
	}
	dev, err := identity.ParseDeviceSecret(ds)
	if err != nil {
		return nil, nil, nil, err
	}
	if dev.Certificate().Identity.Fingerprint() != id.Public().Fingerprint() {
		return nil, nil, nil, fmt.Errorf("client: key file payload: device not certified by the identity")
	}
	return id, dev, append([]byte(nil), sk...), nil
}

// Init creates a new identity and device in home (created 0700 if
// needed), writes the passphrase-protected key file and the encrypted
// store, enrols the device with the relay, creates its first mailbox and
// publishes its prekey bundle and one-time prekeys. It refuses a home that
// is already initialised (ErrExists). relayURL must be wss://, or ws:// to
// a loopback host (ErrInsecureRelay). If enrolment fails, the files are
// removed so Init can be retried. The returned Client is connected, as
// after Dial.
func Init(ctx context.Context, home string, passphrase []byte, relayURL, name string, opts *Options) (_ *Client, err error) {
	relay, err := CheckRelayURL(relayURL)
	if err != nil {
		return nil, err
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	id, err := identity.GenerateIdentity()
	if err != nil {
		return nil, err
	}
	dev, err := identity.NewDevice(id)
	if err != nil {
		return nil, err
	}
	return createHome(ctx, home, passphrase, &homeSpec{relay: relay, personName: name, id: id, dev: dev}, opts)
}

// makePrekeys creates a last-resort prekey (ID first) and n one-time
// prekeys, stores their secrets and returns the PublishPrekeys frame.
func (c *Client) makePrekeys(first uint32, n int) (*protocol.PublishPrekeys, error) {
	last, err := identity.NewPrekey(c.dev, first, false)
	if err != nil {
		return nil, err
	}
	all := []*identity.Prekey{last}
	f := &protocol.PublishPrekeys{Bundle: marshalBundle(c.dev.Certificate(), last.Public())}
	for i := 1; i <= n; i++ {
		p, err := identity.NewPrekey(c.dev, first+uint32(i), true)
		if err != nil {
			return nil, err
		}
		all = append(all, p)
		f.Prekeys = append(f.Prekeys, p.Public().Bytes())
	}
	err = c.st.update(func(t *tx) error {
		for _, p := range all {
			if err := t.putPrekey(p); err != nil {
				return err
			}
		}
		return t.putPrekeyState(&prekeyStateRecord{NextID: first + uint32(n) + 1, Signed: first, SignedAt: c.now().UTC()})
	})
	return f, err
}

func newClient(home string, o Options, dev *identity.Device, name, relay string, st *localStore) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	cert := dev.Certificate()
	if st != nil && st.idx != nil {
		st.idx.log = o.Logger
	}
	if o.prekeys == (prekeySupply{}) {
		o.prekeys = defaultPrekeySupply
	}
	return &Client{
		home: home, prekeys: o.prekeys, log: o.Logger, now: o.Now, tlsConf: o.TLSConfig, organisation: o.Organisation, dirEnrol: o.Directory,
		dev: dev, devID: cert.DeviceID(), idFP: cert.Identity.Fingerprint(),
		name: name, relay: relay, st: st,
		ctx: ctx, cancel: cancel,
		changed:     make(chan struct{}),
		connecting:  make(chan struct{}, 1),
		prekeyBusy:  make(chan struct{}, 1),
		maintaining: make(chan struct{}, 1),
		outboxKick:  make(chan struct{}, 1),
		expiryKick:  make(chan struct{}, 1),
		certs:       make(map[keys.Fingerprint]*keys.DeviceCertificate),
	}
}

// Open opens the local state in home with passphrase (ErrNotInitialised,
// ErrWrongPassphrase) without touching the network: Whoami, Contacts,
// Inbox, Message and Stats read what is stored on this device, so they
// work while the relay is unreachable, and nothing is received or
// acknowledged behind the caller's back.
//
// The first method that needs the relay's authenticated connection
// (Sync, Receive, Ack, Invite, Accept, Block) connects as Dial does, and
// from then on the Client receives, acknowledges and reconnects like a
// dialled one; if that connection cannot be made, the method returns the
// error and the next one tries again. Send uses only its own
// unauthenticated connection: it does not start receiving.
func Open(home string, passphrase []byte, opts *Options) (*Client, error) {
	o := opts.defaults()
	file, err := os.ReadFile(filepath.Join(home, KeyFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotInitialised
	}
	if err != nil {
		return nil, fmt.Errorf("client: read key file: %w", err)
	}
	payload, err := identity.OpenKeyFile(passphrase, file)
	if err != nil {
		return nil, err
	}
	id, dev, storeKey, err := parseKeyPayload(payload)
	if err != nil {
		return nil, err
	}
	dbPath := filepath.Join(home, StoreFileName)
	if !exists(dbPath) {
		return nil, ErrNotInitialised
	}
	st, err := openStore(dbPath, storeKey, true)
	if err != nil {
		return nil, err
	}
	var prof *profileRecord
	if err := st.view(func(t *tx) error { prof, err = t.profile(); return err }); err != nil {
		return nil, err
	}
	if !prof.Enrolled {
		return nil, fmt.Errorf("%w: enrolment did not complete; remove %s and run init again", ErrNotInitialised, home)
	}
	c := newClient(home, o, dev, prof.Name, prof.Relay, st)
	c.id = id
	// Nothing expired is shown, even from a store copied back from
	// before its expiry (disappear.go).
	if _, err := c.expire(); err != nil {
		return nil, err
	}
	return c, nil
}

// Dial is Open followed by connecting: it connects to the relay,
// authenticates and subscribes to all of this device's mailboxes, so that
// envelopes queued for it are received, stored and acknowledged. The
// Client reconnects by itself when the connection drops. Use Open for
// work on local state alone.
func Dial(ctx context.Context, home string, passphrase []byte, opts *Options) (*Client, error) {
	c, err := Open(home, passphrase, opts)
	if err != nil {
		return nil, err
	}
	if _, err := c.connect(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// connect makes the authenticated connection and starts the receive loop,
// unless they run already (then it returns 0 and no error, whatever
// became of them since: the loop reports its own state). It returns the
// generation of the connection it made. Calls are serialised; a Close
// aborts one in progress.
func (c *Client) connect(ctx context.Context) (uint64, error) {
	c.mu.Lock()
	online := c.online
	c.mu.Unlock()
	if online {
		return 0, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()
	select {
	case c.connecting <- struct{}{}:
	case <-ctx.Done():
		return 0, c.connectErr(ctx)
	}
	defer func() { <-c.connecting }()
	c.mu.Lock()
	online, err := c.online, c.stateErrLocked()
	c.mu.Unlock()
	if online {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	cn, err := dialRelay(ctx, c.relay, newPushQueue(), c.tlsConf)
	if err != nil {
		if c.ctx.Err() != nil {
			return 0, ErrClosed
		}
		return 0, err
	}
	if err := cn.authenticate(ctx, certSigner{c.dev}, false, ""); err != nil {
		cn.close()
		if c.ctx.Err() != nil {
			return 0, ErrClosed
		}
		if protocol.IsCode(err, protocol.CodeDeviceRevoked) {
			return 0, c.revoked(err)
		}
		return 0, fmt.Errorf("client: authenticate: %w", err)
	}
	c.firstDeviceList(ctx, cn)
	gen, err := c.start(ctx, cn)
	if err != nil {
		cn.close()
		c.mu.Lock()
		if c.cur == cn {
			c.cur = nil // so that the next attempt starts afresh
			c.broadcastLocked()
		}
		c.mu.Unlock()
		if c.ctx.Err() != nil {
			return 0, ErrClosed
		}
		return 0, err
	}
	return gen, nil
}

// connectErr is why a wait for connect ended: ErrClosed if the Client was
// closed, else the caller's context error.
func (c *Client) connectErr(ctx context.Context) error {
	if c.ctx.Err() != nil {
		return ErrClosed
	}
	return ctx.Err()
}

// start installs an authenticated connection, subscribes and runs the
// receive loop. It returns the connection's generation.
func (c *Client) start(ctx context.Context, cn *conn) (uint64, error) {
	if err := c.install(ctx, cn); err != nil {
		return 0, err
	}
	// Under mu, so that a Close either sees the loop counted in wg or
	// makes start fail (the caller closes cn).
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, ErrClosed
	}
	gen := c.gen // no other install runs: connect is serialised and the loop is not running yet
	c.online = true
	c.wg.Add(2)
	c.mu.Unlock()
	c.emitConn(ConnOnline, nil)
	go c.run(cn)
	go c.watchMailboxes()
	c.goCheckPrekeys(cn)
	c.goMaintain(cn)
	c.goOutboxLoop()
	c.goExpiryLoop()
	return gen, nil
}

// install makes cn the current connection and subscribes to every mailbox.
func (c *Client) install(ctx context.Context, cn *conn) error {
	var mbs []mailboxRecord
	if err := c.st.view(func(t *tx) (err error) { mbs, err = t.mailboxes(); return err }); err != nil {
		return err
	}
	// Every mailbox is registered as not yet drained before the new
	// generation is visible, so Sync never sees a partial set.
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed // the caller closes cn
	}
	c.cur = cn
	c.gen++
	c.subs = make(map[protocol.MailboxID]bool, len(mbs))
	ids := make([]protocol.MailboxID, len(mbs))
	for i, m := range mbs {
		copy(ids[i][:], m.ID)
		c.subs[ids[i]] = false
	}
	c.broadcastLocked()
	c.mu.Unlock()
	for _, id := range ids {
		if err := c.sendSubscribe(ctx, cn, id); err != nil && !isRefusal(err) {
			return err
		}
	}
	return nil
}

func isRefusal(err error) bool {
	var pe *protocol.Error
	return errors.As(err, &pe)
}

// subscribe subscribes cn to mb unless it already is.
func (c *Client) subscribe(ctx context.Context, cn *conn, mb protocol.MailboxID) error {
	c.mu.Lock()
	if c.cur != cn {
		c.mu.Unlock()
		return nil // a newer connection subscribes from the store
	}
	if _, ok := c.subs[mb]; ok {
		c.mu.Unlock()
		return nil
	}
	c.subs[mb] = false
	c.mu.Unlock()
	return c.sendSubscribe(ctx, cn, mb)
}

// sendSubscribe subscribes cn to mb, which is registered in c.subs; on a
// refusal it unregisters it so that Sync does not wait for it.
func (c *Client) sendSubscribe(ctx context.Context, cn *conn, mb protocol.MailboxID) error {
	err := cn.ok(ctx, &protocol.Subscribe{Mailbox: mb})
	if err != nil {
		c.mu.Lock()
		if c.cur == cn {
			delete(c.subs, mb)
			c.broadcastLocked()
		}
		c.mu.Unlock()
		c.log.Warn("subscribe failed", "mailbox", mb.Short(), "err", err)
	}
	return err
}

func (c *Client) broadcastLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// run processes what the relay pushes on the current connection and
// reconnects, with backoff, when it drops.
func (c *Client) run(cn *conn) {
	defer c.wg.Done()
	for {
		c.consume(cn)
		c.mu.Lock()
		if c.cur == cn {
			c.cur = nil
			c.broadcastLocked()
		}
		c.mu.Unlock()
		if c.ctx.Err() != nil {
			return
		}
		if err := cn.rc.Err(); protocol.IsCode(err, protocol.CodeDeviceRevoked) {
			c.revoked(err) // the relay closed the connection: revoked
			return
		}
		resubscribe := c.resubscribe.Swap(false)
		if !resubscribe {
			c.log.Info("relay connection lost; reconnecting")
			c.emitConn(ConnReconnecting, nil)
		}
		var err error
		for attempt := 0; ; attempt++ {
			// Full jitter from the first attempt, and Retry-After honoured
			// (conn.go): a relay restart drops every device at once. A
			// connection Sync closed on purpose (to subscribe afresh) is
			// made again at once.
			if attempt > 0 || !resubscribe {
				select {
				case <-time.After(reconnectDelay(attempt, err)):
				case <-c.ctx.Done():
					return
				}
			}
			cn, err = c.reconnect()
			if err == nil {
				break
			}
			if c.ctx.Err() != nil {
				return
			}
			if protocol.IsCode(err, protocol.CodeDeviceRevoked) {
				c.revoked(err)
				return
			}
			if protocol.IsCode(err, protocol.CodeUnknownDevice) || protocol.IsCode(err, protocol.CodeAuthFailed) {
				c.mu.Lock()
				c.fatal = fmt.Errorf("client: the relay no longer accepts this device: %w", err)
				fatal := c.fatal
				c.broadcastLocked()
				c.mu.Unlock()
				c.emitConn(ConnOffline, fatal)
				c.log.Error("relay refused this device", "err", err)
				return
			}
			c.log.Debug("reconnect failed", "attempt", attempt, "err", err)
			c.emitConn(ConnReconnecting, nil) // after a Sync's fresh subscription failed
		}
		c.emitConn(ConnOnline, nil)
		c.goCheckPrekeys(cn)
		c.goMaintain(cn)
	}
}

func (c *Client) reconnect() (*conn, error) {
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	cn, err := dialRelay(ctx, c.relay, newPushQueue(), c.tlsConf)
	if err != nil {
		return nil, err
	}
	if err := cn.authenticate(ctx, certSigner{c.dev}, false, ""); err != nil {
		cn.close()
		return nil, err
	}
	if err := c.install(ctx, cn); err != nil {
		cn.close()
		return nil, err
	}
	if c.ctx.Err() != nil {
		cn.close()
		return nil, c.ctx.Err()
	}
	return cn, nil
}

// consume handles pushed frames in order until the connection ends.
func (c *Client) consume(cn *conn) {
	for {
		f, ok := cn.push.get(c.ctx.Done())
		if !ok || f == nil {
			return
		}
		switch f := f.(type) {
		case *protocol.Deliver:
			c.deliver(cn, f)
		case *protocol.Drained:
			// What the mailbox held is stored: its receipts go before
			// a Sync that waits for this returns.
			c.flushDelivered()
			c.mu.Lock()
			if c.cur == cn {
				if _, ok := c.subs[f.Mailbox]; ok {
					c.subs[f.Mailbox] = true
					c.broadcastLocked()
				}
			}
			c.mu.Unlock()
		default:
			c.log.Warn("unexpected pushed frame", "type", fmt.Sprintf("0x%02x", uint8(f.Type())))
		}
	}
}

// deliver stores one delivered envelope (or drops it) and then, only after
// the commit, acknowledges it.
func (c *Client) deliver(cn *conn, d *protocol.Deliver) {
	res, err := c.receiveAndQueue(d.Mailbox, d.ID, d.Envelope)
	switch {
	case err == nil:
	case errors.Is(err, errDuplicate):
		c.duplicates.Add(1)
	case errors.Is(err, errStoreFailed):
		// Not committed: do not ack, the relay delivers it again. Sync
		// and Receive report it: a full disk must not read as "no new
		// messages".
		c.log.Error("could not store envelope", "mailbox", d.Mailbox.Short(), "err", err)
		return
	default:
		c.dropped.Add(1)
		c.log.Warn("dropped envelope", "mailbox", d.Mailbox.Short(), "reason", err)
	}
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	if err := cn.ok(ctx, &protocol.Ack{Mailbox: d.Mailbox, IDs: []protocol.EnvelopeID{d.ID}}); err != nil {
		c.log.Debug("ack failed; the envelope will come again and be de-duplicated", "err", err)
	}
	c.afterReceive(ctx, cn, &res)
	c.queueDelivered(cn, &res)
}

// Close disconnects. Stored state stays in home.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	cur := c.cur
	c.broadcastLocked()
	c.mu.Unlock()
	c.cancel()
	if cur != nil {
		cur.close()
	}
	c.anonMu.Lock()
	for k, a := range c.anon {
		a.idle.Stop()
		a.cn.close()
		delete(c.anon, k)
	}
	c.anonMu.Unlock()
	c.wg.Wait()
	c.ev.close()
	c.st.idx.close()
	return nil
}

// current returns the current authenticated connection, nil while there
// is none.
func (c *Client) current() *conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// Whoami describes this client.
func (c *Client) Whoami() Whoami {
	return Whoami{Name: c.name, Relay: c.relay, Identity: c.idFP, Device: c.devID}
}

// Stats returns counters since Open or Dial.
func (c *Client) Stats() Stats {
	return Stats{Received: c.received.Load(), Duplicates: c.duplicates.Load(), Dropped: c.dropped.Load()}
}

// authConn returns the current authenticated connection, connecting first
// on a Client from Open, and waiting while the Client reconnects.
func (c *Client) authConn(ctx context.Context) (*conn, error) {
	if _, err := c.connect(ctx); err != nil {
		return nil, err
	}
	for {
		c.mu.Lock()
		cur, ch, err := c.cur, c.changed, c.stateErrLocked()
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if cur != nil && !cur.isClosed() {
			return cur, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (c *Client) stateErrLocked() error {
	if c.closed {
		return ErrClosed
	}
	return c.fatal
}

// Unauthenticated connections (SPEC section 9 "Sending and blocking").
// Sends and bundle fetches never travel on the device's authenticated
// connection; and each contact (each invitation being accepted) gets its
// own short-lived one, so that the relay cannot link the capabilities of
// different contacts by the connection they arrive on. A connection idle
// for anonIdle is closed; at most maxAnonConns are open at once (the least
// recently used is closed first).
const (
	anonIdle     = 20 * time.Second
	maxAnonConns = 8
)

type anonConn struct {
	cn       *conn
	idle     *time.Timer
	lastUsed time.Time
}

// anonRequest sends f to relay (a canonical relay URL: this client's own,
// or a contact's) over the unauthenticated connection kept for (relay,
// key), opened lazily and reopened once if it was lost. Connections are
// per relay and per contact: a contact on another relay gets one of its
// own there.
func (c *Client) anonRequest(ctx context.Context, relay, key string, f protocol.Frame) (protocol.Frame, error) {
	if relay == "" {
		relay = c.relay // a record written before relays were per device
	}
	for attempt := 0; ; attempt++ {
		cn, err := c.anonConn(ctx, relay, key)
		if err != nil {
			return nil, err
		}
		r, err := cn.request(ctx, f)
		if errors.Is(err, errConnClosed) && attempt == 0 {
			continue
		}
		return r, err
	}
}

func (c *Client) anonConn(ctx context.Context, relay, key string) (*conn, error) {
	key = relay + " " + key
	c.anonMu.Lock()
	defer c.anonMu.Unlock()
	if c.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if c.anon == nil {
		c.anon = make(map[string]*anonConn)
	}
	if a := c.anon[key]; a != nil && !a.cn.isClosed() {
		a.lastUsed = time.Now()
		a.idle.Reset(anonIdle)
		return a.cn, nil
	} else if a != nil {
		a.idle.Stop()
		delete(c.anon, key)
	}
	if len(c.anon) >= maxAnonConns {
		var oldest string
		for k, a := range c.anon {
			if oldest == "" || a.lastUsed.Before(c.anon[oldest].lastUsed) {
				oldest = k
			}
		}
		c.anon[oldest].idle.Stop()
		c.anon[oldest].cn.close()
		delete(c.anon, oldest)
	}
	// Dialled under anonMu: connections are few and short requests follow;
	// a slow dial only delays other unauthenticated requests.
	cn, err := dialRelay(ctx, relay, nil, c.tlsConf)
	if err != nil {
		return nil, err
	}
	a := &anonConn{cn: cn, lastUsed: time.Now()}
	a.idle = time.AfterFunc(anonIdle, func() {
		c.anonMu.Lock()
		if c.anon[key] == a {
			delete(c.anon, key)
		}
		c.anonMu.Unlock()
		cn.close()
	})
	c.anon[key] = a
	return cn, nil
}

// anonKey names the unauthenticated connection used for a contact.
func anonKey(contactID []byte) string { return "contact:" + hex.EncodeToString(contactID) }

func randomID(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
