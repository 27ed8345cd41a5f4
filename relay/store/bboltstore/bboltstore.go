// Package bboltstore is the relay's default store: one bbolt file.
//
// All writes go to one committer goroutine, which takes everything queued,
// applies it in one read-write transaction (one fsync) and then answers each
// caller. Under load one commit carries many writes, so durability does not
// cost one fsync per message; with one writer the latency is one commit.
//
// Envelopes are keyed by a big-endian insertion sequence, with a
// per-mailbox index, an envelope-ID index (for acks) and an expiry index
// (for retention purges). Account labels are in the device and invite
// records, with an index from label to devices. protocol/SPEC.md section
// 10 lists every bucket.
package bboltstore

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// SchemaVersion is the layout version this package writes (meta "schema").
// Schema 2 added account labels (device and invite records, the accounts
// bucket); schema 3 took the owner device out of blob records (a quota
// ledger instead, blobs.go); schema 4 added signed device lists and the
// key-transparency log (kt.go); migrate.go converts older files.
const SchemaVersion = 4

// errCorrupt marks a record or key that this package could not have
// written: the file was damaged or edited. The operation fails; the relay
// keeps serving everything else.
var errCorrupt = errors.New("bboltstore: corrupt record")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errCorrupt}, args...)...)
}

// maxStoredTime is the last second this package writes (year 9999); a
// larger stored time is corruption, not a date.
const maxStoredTime = 253402300799

// Bucket names.
var (
	bMeta      = []byte("meta")
	bDevices   = []byte("devices")
	bMailboxes = []byte("mailboxes")
	bOwned     = []byte("owned")
	bCaps      = []byte("caps")
	bInvites   = []byte("invites")
	bBundles   = []byte("bundles")
	bPrekeys   = []byte("prekeys")
	bEnv       = []byte("env")
	bEnvMbox   = []byte("env_mbox")
	bEnvID     = []byte("env_id") // schema-1 envelopes only (envid.go)
	bEnvExp    = []byte("env_exp")
	// Blob buckets were added within schema 1: Open creates missing
	// buckets, so an older schema-1 file gains them without a migration.
	bBlobs   = []byte("blobs")
	bBlobUse = []byte("blob_use")
	bBlobExp = []byte("blob_exp")
	// Added within schema 1 like the blob buckets: device ID -> last-seen
	// day (u32, days since the Unix epoch).
	bSeen = []byte("seen")
	// Schema 2: account label || 0x00 || device ID -> empty, one entry per
	// device that has a label (revoked ones included), so that an
	// account's devices are one prefix scan. Labels never contain 0x00.
	bAccounts = []byte("accounts")
	// Schema 3: the blob quota ledger (blobs.go); blob records lost their
	// owner.
	bBlobQuota    = []byte("blob_quota")
	bBlobQuotaExp = []byte("blob_quota_exp")

	allBuckets = [][]byte{bMeta, bDevices, bMailboxes, bOwned, bCaps, bInvites, bBundles, bPrekeys, bEnv, bEnvMbox, bEnvID, bEnvExp, bBlobs, bBlobUse, bBlobExp, bSeen, bAccounts, bBlobQuota, bBlobQuotaExp, bKTLists, bKTLeaves, bKTNodes, bKTHeads}

	keySchema = []byte("schema")
)

// Options configure Open. A nil *Options means all defaults.
type Options struct {
	// LockTimeout is how long Open waits for another process (a running
	// relay) to release the file lock. Zero means 5 seconds; negative
	// means 1 millisecond (fail almost at once).
	LockTimeout time.Duration
	// MaxBatch is the most writes in one commit. Zero means 4096.
	MaxBatch int
	// QueueSize is the capacity of the committer's queue. Zero means 4096.
	QueueSize int
	// ReserveBytes is the size of the reserve file kept beside the
	// database (path + ReserveSuffix, full.go). When the file system
	// fills, the store deletes it so that acknowledgements and purges,
	// which free space, can still commit. Zero means DefaultReserve;
	// negative means no reserve.
	ReserveBytes int64
	// RecoverInterval is how often a store that ran out of space tries to
	// recover (re-create its reserve and commit a test write). Zero means
	// 5 seconds.
	RecoverInterval time.Duration
}

// Store is a store.Store on a bbolt file.
type Store struct {
	db       *bolt.DB
	onCommit atomic.Pointer[func(time.Duration)] // observe.go
	queue    chan *request
	maxBatch int
	fin      chan struct{}

	closeMu sync.RWMutex
	closed  bool

	commits, writes atomic.Int64

	envIDs cipher.Block // envid.go

	space space // full.go
}

type request struct {
	fn   func(tx *bolt.Tx) error
	done chan error
	// kind says whether the write may run while the file system is full
	// (full.go).
	kind writeKind
}

var (
	_ store.Store     = (*Store)(nil)
	_ store.BlobStore = (*Store)(nil)
)

// Open opens or creates the store at path (mode 0600). It refuses a file
// written with a newer schema with an error wrapping store.ErrSchemaTooNew,
// and migrates an older one (after backing it up) in one transaction.
func Open(path string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = 5 * time.Second
	} else if o.LockTimeout < 0 {
		o.LockTimeout = time.Millisecond
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 4096
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 4096
	}
	// A damaged file is refused before bbolt maps it (verify.go).
	if err := Verify(path, false, o.LockTimeout); err != nil {
		return nil, err
	}
	db, ids, err := openBolt(path, o.LockTimeout)
	if err != nil {
		return nil, err
	}
	s := &Store{
		db:       db,
		queue:    make(chan *request, o.QueueSize),
		maxBatch: o.MaxBatch,
		fin:      make(chan struct{}),
		envIDs:   ids,
	}
	s.space.init(path, o.ReserveBytes, o.RecoverInterval)
	go s.commitLoop()
	go s.recoverLoop()
	return s, nil
}

// openBolt opens the verified file, checks and migrates its schema and
// loads the envelope-ID key. Verify has checked every page the database
// can reach; a fault or panic in bbolt here all the same (the file changed
// between the two, or damage Verify does not see) is turned into an error
// wrapping store.ErrDamaged rather than a crash.
func openBolt(path string, lockTimeout time.Duration) (db *bolt.DB, ids cipher.Block, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				db.Close()
			}
			db, ids, err = nil, nil, damaged(path, "bbolt failed reading it: %v", r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout: lockTimeout,
		// The freelist is not written on each commit: one write less per
		// fsync on the hot path (append, ack). The price is paid once at
		// open, when bbolt rebuilds the freelist by scanning the pages.
		// The map freelist makes allocation O(1) in the many small
		// frees that acks and purges produce.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
		// 8 KiB pages hold seven 1 KiB envelopes where 4 KiB pages hold
		// three, so less of each page is lost to rounding (1.37 KB per
		// queued 1 KiB envelope, as with 16 KiB: TestBytesPerMessage),
		// and a commit writes half the bytes of 16 KiB pages for the same
		// dirty pages (+12-16 % durable appends, BenchmarkAppend). Only
		// used when the file is created: bbolt keeps a file's page size.
		PageSize: 8 << 10,
	})
	if err != nil {
		switch {
		case errors.Is(err, bolt.ErrTimeout):
			return nil, nil, fmt.Errorf("bboltstore: %s is locked by another process (is the relay running?)", path)
		case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrChecksum), errors.Is(err, bolt.ErrVersionMismatch):
			return nil, nil, damaged(path, "%v", err)
		}
		return nil, nil, fmt.Errorf("bboltstore: open %s: %w", path, err)
	}
	// Schema check, automatic backup and migrations: migrate.go.
	if err = openSchema(db, path); err == nil {
		ids, err = loadEnvIDCipher(db)
	}
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, ids, nil
}

// DB returns the underlying database, for backups (tx.WriteTo) and checks.
func (s *Store) DB() *bolt.DB { return s.db }

// Commits returns how many transactions and writes the committer has
// applied, to measure batching.
func (s *Store) Commits() (txs, writes int64) { return s.commits.Load(), s.writes.Load() }

// Close waits for every queued write to commit, then closes the file.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.queue)
	s.closeMu.Unlock()
	<-s.fin
	s.space.stop()
	return s.db.Close()
}

// update runs fn in the committer's next transaction and waits until it is
// durable. fn must check everything before it writes: a refusal (a
// store sentinel) returned after a write would commit the write. While
// the file system is full it is refused with store.ErrStorageFull
// (full.go); updateFreeing is for writes that free space.
func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	return s.queueWrite(fn, growing)
}

// updateFreeing is update for writes that delete more than they add
// (acks, purges, revocations): they run while the file system is full.
func (s *Store) updateFreeing(fn func(tx *bolt.Tx) error) error {
	return s.queueWrite(fn, freeing)
}

func (s *Store) queueWrite(fn func(tx *bolt.Tx) error, kind writeKind) error {
	if kind == growing && s.space.isFull() {
		return store.ErrStorageFull
	}
	r := &request{fn: fn, done: make(chan error, 1), kind: kind}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return store.ErrClosed
	}
	s.queue <- r
	s.closeMu.RUnlock()
	// Not abandoned on a cancelled context: the write may commit anyway,
	// and the committer answers within one commit.
	return <-r.done
}

// view runs fn in a read-only transaction, or returns store.ErrClosed.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	return s.db.View(fn)
}

func (s *Store) commitLoop() {
	defer close(s.fin)
	batch := make([]*request, 0, s.maxBatch)
	errs := make([]error, 0, s.maxBatch)
	for first := range s.queue {
		batch = append(batch[:0], first)
	drain:
		for len(batch) < s.maxBatch {
			select {
			case r, ok := <-s.queue:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		errs = errs[:len(batch)]
		err := s.safeUpdate(func(tx *bolt.Tx) error {
			for i, r := range batch {
				errs[i] = r.fn(tx)
				if errs[i] != nil && !store.IsRefusal(errs[i]) {
					return errs[i] // a failure, not a refusal: roll back
				}
			}
			return nil
		})
		s.commits.Add(1)
		s.writes.Add(int64(len(batch)))
		if err == nil {
			for i, r := range batch {
				r.done <- errs[i]
			}
			continue
		}
		// The file system is full: give up the reserve so that writes
		// that free space can commit, and refuse the others (full.go).
		if isNoSpace(err) {
			s.space.setFull()
		}
		// One write failed (or the commit did): run each alone so that one
		// bad write does not fail the others.
		for _, r := range batch {
			if r.kind == growing && s.space.isFull() {
				r.done <- store.ErrStorageFull
				continue
			}
			var e error
			cerr := s.safeUpdate(func(tx *bolt.Tx) error {
				e = r.fn(tx)
				if e != nil && !store.IsRefusal(e) {
					return e
				}
				return nil
			})
			s.commits.Add(1)
			if cerr != nil {
				e = cerr
				if isNoSpace(cerr) {
					s.space.setFull()
					e = fmt.Errorf("%w: %v", store.ErrStorageFull, cerr)
				}
			}
			r.done <- e
		}
	}
}

// safeUpdate is db.Update that turns a panic into an error. The committer
// is the one goroutine every write goes through: a record that panics a
// decoder (a damaged file) must fail its own write, not stop the relay.
// bbolt rolls the transaction back before the panic reaches here.
func (s *Store) safeUpdate(fn func(tx *bolt.Tx) error) (err error) {
	defer s.observeCommit(time.Now())
	defer func() {
		if r := recover(); r != nil {
			err = corrupt("write aborted: %v", r)
		}
	}()
	return s.db.Update(fn)
}

// ---- encoding helpers ----

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func cat(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func unixTime(v uint64) time.Time { return time.Unix(int64(v), 0).UTC() }

func timeU64(t time.Time) uint64 {
	if t.Unix() < 0 {
		return 0
	}
	return uint64(t.Unix())
}

// env value: mailbox(16) || id(16) || received(u64) || expires(u64) || data
const envHeader = 16 + 16 + 8 + 8

func encodeEnv(e store.Envelope) []byte {
	v := make([]byte, 0, envHeader+len(e.Data))
	v = append(v, e.Mailbox[:]...)
	v = append(v, e.ID[:]...)
	v = binary.BigEndian.AppendUint64(v, timeU64(e.Received))
	v = binary.BigEndian.AppendUint64(v, timeU64(e.Expires))
	return append(v, e.Data...)
}

func decodeEnv(seq uint64, v []byte) (store.Envelope, error) {
	if len(v) < envHeader {
		return store.Envelope{}, corrupt("envelope record %d of %d bytes", seq, len(v))
	}
	received, expires := binary.BigEndian.Uint64(v[32:40]), binary.BigEndian.Uint64(v[40:48])
	if received > maxStoredTime || expires > maxStoredTime {
		return store.Envelope{}, corrupt("envelope record %d: time out of range", seq)
	}
	var e store.Envelope
	e.Seq = seq
	copy(e.Mailbox[:], v[0:16])
	copy(e.ID[:], v[16:32])
	e.Received = unixTime(received)
	e.Expires = unixTime(expires)
	e.Data = append([]byte(nil), v[envHeader:]...)
	return e, nil
}

// mailbox value: owner(32) || queue depth(u32)
func mailboxRecord(tx *bolt.Tx, id protocol.MailboxID) (owner protocol.DeviceID, depth uint32, ok bool) {
	v := tx.Bucket(bMailboxes).Get(id[:])
	if len(v) != 36 {
		return owner, 0, false
	}
	copy(owner[:], v[:32])
	return owner, binary.BigEndian.Uint32(v[32:]), true
}

func putMailbox(tx *bolt.Tx, id protocol.MailboxID, owner protocol.DeviceID, depth uint32) error {
	return tx.Bucket(bMailboxes).Put(id[:], binary.BigEndian.AppendUint32(append([]byte(nil), owner[:]...), depth))
}

func ownedMailbox(tx *bolt.Tx, owner protocol.DeviceID, id protocol.MailboxID) error {
	o, _, ok := mailboxRecord(tx, id)
	if !ok {
		return store.ErrUnknownMailbox
	}
	if o != owner {
		return store.ErrNotOwner
	}
	return nil
}

func checkCapability(tx *bolt.Tx, mb protocol.MailboxID, h protocol.CapabilityHash) error {
	if _, _, ok := mailboxRecord(tx, mb); !ok {
		return store.ErrUnknownCapability // existence is not revealed
	}
	v := tx.Bucket(bCaps).Get(cat(mb[:], h[:]))
	switch {
	case len(v) == 2 && store.CapabilityState(v[0]) == store.CapabilityRevoked &&
		v[1] > byte(protocol.RevokeBlocked) && v[1] <= byte(protocol.MaxRevokeReason):
		return &store.RevokedError{Reason: protocol.RevokeReason(v[1])} // ops.go RevokeCapability
	case len(v) != 1:
		return store.ErrUnknownCapability
	case store.CapabilityState(v[0]) == store.CapabilityRevoked:
		return store.ErrCapabilityRevoked
	case store.CapabilityState(v[0]) == store.CapabilityLive:
		return nil
	}
	return store.ErrUnknownCapability
}

// deleteEnvelope removes an envelope and its index entries. It does not
// change the mailbox's depth; callers do.
func deleteEnvelope(tx *bolt.Tx, seq uint64, e store.Envelope) error {
	sk := u64(seq)
	if err := tx.Bucket(bEnv).Delete(sk); err != nil {
		return err
	}
	if err := tx.Bucket(bEnvMbox).Delete(cat(e.Mailbox[:], sk)); err != nil {
		return err
	}
	if err := tx.Bucket(bEnvID).Delete(e.ID[:]); err != nil {
		return err
	}
	return tx.Bucket(bEnvExp).Delete(cat(u64(timeU64(e.Expires)), sk))
}

func decrementDepth(tx *bolt.Tx, mb protocol.MailboxID, n uint32) error {
	owner, depth, ok := mailboxRecord(tx, mb)
	if !ok || n == 0 {
		return nil
	}
	if n > depth {
		n = depth
	}
	return putMailbox(tx, mb, owner, depth-n)
}

func hasPrefix(k, p []byte) bool { return len(k) >= len(p) && string(k[:len(p)]) == string(p) }

// Check opens the (closed) store file at path read-only and runs bbolt's
// consistency check, returning the first problems found.
func Check(path string) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	if err := Verify(path, true, 5*time.Second); err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("bboltstore: check %s: %w", path, err)
	}
	defer db.Close()
	var errs []error
	err = db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			if len(errs) < 10 {
				errs = append(errs, e)
			}
		}
		return nil
	})
	if err := errors.Join(append(errs, err)...); err != nil {
		return damaged(path, "%v", err)
	}
	return nil
}
