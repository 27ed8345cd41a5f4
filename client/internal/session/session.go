package session

import (
	"bytes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/postern/postern/keys"
)

// Session is one end of a pairwise session: a Double Ratchet with header
// encryption and a periodic ML-KEM-768 step. It is not safe for concurrent
// use (the caller serialises access, typically per contact). It is not
// comparable with ==, and fmt prints it redacted.
type Session struct {
	_   [0]func() // not comparable
	st  state
	now func() time.Time

	// newDH generates ratchet keys; nil means crypto/rand. Tests replace it
	// to model an adversary who can compute X25519 secrets.
	newDH func() (*ecdh.PrivateKey, error)

	// tmp is reused by every Seal and Open of the session for the AEADs'
	// associated data (AD || the message's bytes before the part being
	// sealed) and a decrypted header; cleared after each use. It is not
	// part of the state.
	tmp []byte
}

// state is everything a session keeps. Copying a state is cheap and safe:
// slices in it are never modified in place, only replaced.
type state struct {
	initiator bool
	needInit  bool     // initiator that has not yet read any message
	ad        [32]byte // TH, the transcript hash: associated data of every message
	initID    [32]byte
	peerCert  []byte
	peer      *keys.DeviceCertificate

	rk          [keySize]byte
	dhs         *ecdh.PrivateKey // nil until the responder's first sending chain
	dhr         [32]byte
	hasDHr      bool
	cks, ckr    [keySize]byte
	hasCKs      bool
	hasCKr      bool
	hks, hkr    [keySize]byte
	hasHKs      bool
	hasHKr      bool
	nhks, nhkr  [keySize]byte
	ns, nr, pn  uint32
	pendingStep bool // the next Seal starts a new sending chain (a DH ratchet step)

	ownDK     *mlkem.DecapsulationKey768 // advertised, not yet used by the peer
	ownDKID   uint32
	nextKeyID uint32
	peerEK    []byte // the peer's latest encapsulation key, not yet used; nil if none
	peerEKID  uint32
	pqBlock   []byte // PQ fields attached to every message of the current sending chain
	pqNew     bool   // this party has not sent a PQ step yet
	sincePQ   uint32 // messages sent or read since the last PQ step this party sent
	lastPQ    int64  // unix seconds of that step (or of the session's creation)

	init    []byte // the encoded Init while needInit
	skipped []skippedKey
}

type skippedKey struct {
	hk [keySize]byte
	n  uint32
	mk [keySize]byte
	t  int64 // unix seconds when the key was derived (or, from a version-1 state, loaded)
}

// expired reports whether k is older than MaxSkippedKeyAge at now (unix
// seconds). A key stamped in the future (the clock was set back) is kept.
func (k *skippedKey) expired(now int64) bool {
	return now-k.t > int64(MaxSkippedKeyAge/time.Second)
}

// expireSkipped deletes the skipped keys older than MaxSkippedKeyAge.
func (st *state) expireSkipped(now int64) {
	i := slices.IndexFunc(st.skipped, func(k skippedKey) bool { return k.expired(now) })
	if i < 0 {
		return
	}
	// A new slice: states share theirs (copies are cheap, never in place).
	st.skipped = slices.DeleteFunc(slices.Clone(st.skipped), func(k skippedKey) bool { return k.expired(now) })
}

// String returns a redacted description naming the peer device only.
func (s Session) String() string {
	if s.st.peer == nil {
		return "session.Session{REDACTED}"
	}
	return "session.Session{peer " + s.st.peer.DeviceID().Short() + ", REDACTED}"
}

// GoString is String: %#v must not dump the fields.
func (s Session) GoString() string { return s.String() }

// Format prints String for every verb.
func (s Session) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// PeerCertificate returns the peer device's certificate. After Respond the
// caller must check its Identity against the contact it expects.
func (s *Session) PeerCertificate() *keys.DeviceCertificate { return s.st.peer }

// NeedsInit reports whether Seal still attaches the Init: the session was
// initiated here and no message from the peer has been read yet.
func (s *Session) NeedsInit() bool { return s.st.needInit }

// Initiator reports whether this end sent the Init.
func (s *Session) Initiator() bool { return s.st.initiator }

// InitID is the ID of the Init that started the session (Init.ID).
func (s *Session) InitID() [32]byte { return s.st.initID }

// YieldsTo decides a simultaneous initiation. It reports whether this
// session, initiated here and still attaching its Init, must be replaced by
// the session that Respond builds from theirs: the Init with the smaller ID
// (bytewise) wins. Both sides compute the same answer from the two Inits.
func (s *Session) YieldsTo(theirs *Init) bool {
	if !s.st.needInit || theirs == nil {
		return false
	}
	id := theirs.ID()
	// Init IDs are hashes of Inits that travel in clear: public values,
	// so a variable-time ordering reveals nothing.
	return bytes.Compare(id[:], s.st.initID[:]) < 0
}

// Overhead returns how many bytes Seal adds to a plaintext for the next
// message at the current time: MessageOverhead, plus PQOverhead when that
// message carries a PQ step, plus the Init while NeedsInit. A caller that pads
// to an envelope bucket uses it as
//
//	n, _ := protocol.BucketFor(protocol.EnvelopeHeaderSize + s.Overhead() + len(p))
//	msg, err := s.Seal(p, n-protocol.EnvelopeHeaderSize)
func (s *Session) Overhead() int { return s.overhead(s.now()) }

func (s *Session) overhead(now time.Time) int {
	n := MessageOverhead
	if s.st.needInit {
		n += len(s.st.init)
	}
	if s.st.pendingStep || !s.st.hasCKs {
		if s.st.pqDue(now) {
			n += PQOverhead
		}
	} else if s.st.pqBlock != nil {
		n += PQOverhead
	}
	return n
}

func (st *state) pqDue(now time.Time) bool {
	if st.peerEK == nil {
		return false
	}
	if st.pqNew || st.sincePQ >= PQMessageInterval {
		return true
	}
	return now.Unix()-st.lastPQ >= int64(PQInterval/time.Second)
}

// Seal encrypts plaintext as the next message of the session. When padTo is
// positive, zero bytes are appended to the plaintext so that the message is
// exactly padTo bytes (ErrTooLarge if it does not fit); the plaintext format
// must tolerate trailing zeros. The session is changed only on success.
func (s *Session) Seal(plaintext []byte, padTo int) ([]byte, error) {
	return s.SealAppend(nil, plaintext, padTo)
}

// SealAppend is Seal appending the message to dst, which must not overlap
// plaintext: a caller that prefixes a header, or reuses a buffer, makes no
// allocation for the message. On failure it returns dst unchanged.
func (s *Session) SealAppend(dst, plaintext []byte, padTo int) ([]byte, error) {
	return s.sealAppend(dst, plaintext, padTo, bodyNonce)
}

// sealAppend is SealAppend with the body format; everything but tests
// passes bodyNonce.
func (s *Session) sealAppend(dst, plaintext []byte, padTo int, body bodyFormat) ([]byte, error) {
	now := s.now()
	size := s.overhead(now) + len(plaintext)
	if padTo > 0 {
		if size > padTo {
			return dst, ErrTooLarge
		}
		size = padTo
	}
	if size > MaxMessageSize {
		return dst, ErrTooLarge
	}
	if !s.st.pendingStep && s.st.hasCKs {
		// Same chain: nothing below can fail once the counter is checked,
		// so the state is updated in place.
		return s.sealOn(&s.st, dst, plaintext, size, body)
	}
	st := s.st // a new chain may fail (randomness): work on a copy
	if err := s.sendStep(&st, now); err != nil {
		return dst, err
	}
	out, err := s.sealOn(&st, dst, plaintext, size, body)
	if err != nil {
		return dst, err
	}
	s.st = st
	return out, nil
}

// scratchFor returns s.tmp with room for n bytes.
func (s *Session) scratchFor(n int) []byte {
	if cap(s.tmp) < n {
		s.tmp = make([]byte, 0, n)
	}
	return s.tmp[:0]
}

// zeroNonce is the body nonce of the previous message format, read only.
// It made a message key's single use the only guarantee against a repeated
// (key, nonce): a state restored from an old copy re-derives the same
// message key, so that format is no longer written (SPEC.md 11.10).
var zeroNonce [chacha20poly1305.NonceSize]byte

// sealOn seals the next message of the current sending chain of st into a
// message of exactly size bytes appended to dst, and advances the chain. It
// changes st only when it succeeds. Seal always passes bodyNonce; only
// tests pass bodyLegacy, to make messages of the previous format.
func (s *Session) sealOn(st *state, dst, plaintext []byte, size int, body bodyFormat) ([]byte, error) {
	if st.ns == ^uint32(0) {
		return dst, ErrExhausted
	}
	flags := byte(flagNonceBody)
	if body == bodyLegacy {
		flags = 0
	}
	if st.needInit {
		flags |= flagInit
	}
	if st.pqBlock != nil {
		flags |= flagPQ
	}
	hdrLen := HeaderSize + len(st.pqBlock)
	prefixLen := 1 + len(st.init) // len(st.init) is 0 unless needInit
	hdrOff := prefixLen + HeaderNonceSize
	bodyOff := hdrOff + hdrLen + TagSize
	ptLen := size - bodyOff - TagSize
	if ptLen < len(plaintext) {
		return dst, ErrRandom // unreachable: size includes the overhead
	}

	next, mk := kdfCK(&st.cks)

	out := slices.Grow(dst, size)[:len(dst)+size]
	m := out[len(dst):]
	m[0] = flags
	copy(m[1:], st.init)
	if _, err := rand.Read(m[prefixLen:hdrOff]); err != nil {
		return dst, ErrRandom
	}
	h := m[hdrOff : hdrOff+hdrLen]
	copy(h[0:DHPublicKeySize], st.dhs.PublicKey().Bytes())
	binary.BigEndian.PutUint32(h[32:36], st.pn)
	binary.BigEndian.PutUint32(h[36:40], st.ns)
	copy(h[HeaderSize:], st.pqBlock)
	// The associated data of both AEADs is AD || every preceding byte of
	// the message, gathered in the session's scratch buffer.
	ad := append(s.scratchFor(len(st.ad)+bodyOff), st.ad[:]...)
	ad = append(ad, m[:prefixLen]...)
	defer func() { clear(ad) }() // what it holds when sealOn returns
	haead, err := chacha20poly1305.NewX(st.hks[:])
	if err != nil {
		return dst, ErrRandom
	}
	haead.Seal(h[:0], m[prefixLen:hdrOff], h, ad)
	ad = append(ad, m[prefixLen:bodyOff]...)

	n := copy(m[bodyOff:], plaintext)
	clear(m[bodyOff+n : bodyOff+ptLen]) // the padding: zeros (dst may hold old bytes)
	// The body shares the header's random nonce under another key (mk and
	// HKs are independent KDF outputs): a state sealed twice (restored from
	// a copy) derives the same mk but never the same (mk, nonce).
	var baead cipher.AEAD
	bnonce := m[prefixLen:hdrOff]
	if body == bodyLegacy {
		baead, err = chacha20poly1305.New(mk[:])
		bnonce = zeroNonce[:]
	} else {
		baead, err = chacha20poly1305.NewX(mk[:])
	}
	if err != nil {
		return dst, ErrRandom
	}
	baead.Seal(m[bodyOff:bodyOff], bnonce, m[bodyOff:bodyOff+ptLen], ad)

	st.cks = next
	st.ns++
	st.countMessage()
	return out, nil
}

func (st *state) countMessage() {
	if st.sincePQ < ^uint32(0) {
		st.sincePQ++
	}
}

// sendStep starts a new sending chain: a fresh X25519 key, and an ML-KEM
// encapsulation to the peer's latest key when a PQ step is due.
func (s *Session) sendStep(st *state, now time.Time) error {
	if !st.hasDHr {
		return ErrRandom // unreachable: only the responder lacks a sending chain, and it has DHr
	}
	gen := s.newDH
	if gen == nil {
		gen = newDHKey
	}
	dhs, err := gen()
	if err != nil {
		return ErrRandom
	}
	out, ok := dh(dhs, st.dhr[:])
	if !ok {
		return ErrRandom // DHr was checked when accepted
	}
	var pq []byte
	st.pqBlock = nil
	if st.pqDue(now) {
		ek, err := mlkem.NewEncapsulationKey768(st.peerEK)
		if err != nil {
			return ErrRandom // checked when accepted
		}
		ss, ct := ek.Encapsulate()
		dk, err := mlkem.GenerateKey768()
		if err != nil {
			return ErrRandom
		}
		blk := make([]byte, 0, PQBlockSize)
		blk = binary.BigEndian.AppendUint32(blk, st.peerEKID)
		blk = append(blk, ct...)
		blk = binary.BigEndian.AppendUint32(blk, st.nextKeyID)
		blk = append(blk, dk.EncapsulationKey().Bytes()...)
		st.pqBlock = blk
		st.ownDK, st.ownDKID = dk, st.nextKeyID
		st.nextKeyID++
		st.peerEK = nil
		st.pqNew = false
		st.sincePQ = 0
		st.lastPQ = now.Unix()
		pq = ss
	}
	if st.hasCKs {
		st.pn = st.ns
	}
	st.ns = 0
	st.dhs = dhs
	var nhk [keySize]byte
	st.rk, st.cks, nhk = kdfRK(&st.rk, out, pq)
	st.hks, st.hasHKs = st.nhks, true
	st.nhks = nhk
	st.hasCKs = true
	st.pendingStep = false
	return nil
}

// header is a decrypted ratchet header.
type header struct {
	dh    []byte
	pn, n uint32
	pq    bool
	ctID  uint32
	ct    []byte
	ekID  uint32
	ek    []byte
}

// parseHeader parses a decrypted header: exactly HeaderSize bytes, or
// HeaderSize+PQBlockSize when pq is set. It does not validate keys.
func parseHeader(b []byte, pq bool) (header, bool) {
	want := HeaderSize
	if pq {
		want += PQBlockSize
	}
	if len(b) != want {
		return header{}, false
	}
	h := header{dh: b[:32], pn: binary.BigEndian.Uint32(b[32:36]), n: binary.BigEndian.Uint32(b[36:40]), pq: pq}
	if pq {
		p := b[HeaderSize:]
		h.ctID = binary.BigEndian.Uint32(p[0:4])
		h.ct = p[4 : 4+KEMCiphertextSize]
		p = p[4+KEMCiphertextSize:]
		h.ekID = binary.BigEndian.Uint32(p[0:4])
		h.ek = p[4:]
	}
	return h, true
}

func (h *header) marshal() []byte {
	b := make([]byte, 0, HeaderSize+PQBlockSize)
	b = append(b, h.dh...)
	b = binary.BigEndian.AppendUint32(b, h.pn)
	b = binary.BigEndian.AppendUint32(b, h.n)
	if h.pq {
		b = binary.BigEndian.AppendUint32(b, h.ctID)
		b = append(b, h.ct...)
		b = binary.BigEndian.AppendUint32(b, h.ekID)
		b = append(b, h.ek...)
	}
	return b
}

// framed is a session message split into its parts (public framing only).
type framed struct {
	flags    byte
	init     []byte
	prefix   []byte // flags || init
	nonce    []byte
	hct      []byte // header ciphertext with tag
	upToBody []byte
	body     []byte // body ciphertext with tag
}

func splitMessage(msg []byte) (framed, bool) {
	var f framed
	if len(msg) < MessageOverhead || len(msg) > MaxMessageSize {
		return f, false
	}
	f.flags = msg[0]
	if f.flags&^(flagInit|flagPQ|flagNonceBody) != 0 {
		return f, false
	}
	off := 1
	if f.flags&flagInit != 0 {
		if len(msg) < off+3 {
			return f, false
		}
		n := InitSizeNoOneTime
		if msg[off+2] == 0x01 {
			n = InitSize
		}
		if len(msg) < off+n {
			return f, false
		}
		f.init = msg[off : off+n]
		off += n
	}
	f.prefix = msg[:off]
	hlen := HeaderSize + TagSize
	if f.flags&flagPQ != 0 {
		hlen += PQBlockSize
	}
	if len(msg) < off+HeaderNonceSize+hlen+TagSize {
		return f, false
	}
	f.nonce = msg[off : off+HeaderNonceSize]
	off += HeaderNonceSize
	f.hct = msg[off : off+hlen]
	off += hlen
	f.upToBody = msg[:off]
	f.body = msg[off:]
	return f, true
}

// MessageInit returns the Init attached to a session message, or nil when
// none is. A receiver without a session for the message calls Respond with it
// (after finding the prekeys it names), then Open.
func MessageInit(msg []byte) (*Init, error) {
	f, ok := splitMessage(msg)
	if !ok {
		return nil, fmt.Errorf("%w: session message framing", ErrMalformed)
	}
	if f.init == nil {
		return nil, nil
	}
	return ParseInit(f.init)
}

// scratch holds an Open's buffers: the plaintext it returns (appended to
// the caller's dst), and, in the session's reused buffer, room for a
// decrypted header and AD || every byte of the message before the body
// (whose prefixes are the AEADs' associated data).
type scratch struct {
	out, pt, hdr, ad []byte
}

func (s *Session) newScratch(dst []byte, f *framed) scratch {
	ptLen := len(f.body) - TagSize
	hLen := len(f.hct) - TagSize
	out := slices.Grow(dst, ptLen)[:len(dst)+ptLen]
	ad := &s.st.ad
	b := s.scratchFor(hLen + len(ad) + len(f.upToBody))
	b = b[:cap(b)]
	sc := scratch{out: out, pt: out[len(dst):len(out):len(out)], hdr: b[:hLen:hLen], ad: b[hLen : hLen+len(ad)+len(f.upToBody)]}
	copy(sc.ad, ad[:])
	copy(sc.ad[len(ad):], f.upToBody)
	return sc
}

// wipe clears the decrypted header and the associated data; the plaintext
// is what Open returns (or zeros after a failure).
func (sc *scratch) wipe() {
	clear(sc.hdr)
	clear(sc.ad)
}

func openHeader(hk *[keySize]byte, f *framed, sc *scratch) (header, bool) {
	a, err := chacha20poly1305.NewX(hk[:])
	if err != nil {
		return header{}, false
	}
	pt, err := a.Open(sc.hdr[:0], f.nonce, f.hct, sc.ad[:32+len(f.prefix)])
	if err != nil {
		return header{}, false
	}
	return parseHeader(pt, f.flags&flagPQ != 0)
}

// openBody opens the body under mk: with the message's nonce when the
// message says so (flagNonceBody, everything this version seals), else in
// the previous format (nonce 0^12). The flags byte is in the associated
// data, so changing it makes the body fail.
func openBody(mk *[keySize]byte, f *framed, sc *scratch) bool {
	var a cipher.AEAD
	var err error
	nonce := f.nonce
	if f.flags&flagNonceBody != 0 {
		a, err = chacha20poly1305.NewX(mk[:])
	} else {
		a, err = chacha20poly1305.New(mk[:])
		nonce = zeroNonce[:]
	}
	if err != nil {
		return false
	}
	_, err = a.Open(sc.pt[:0], nonce, f.body, sc.ad)
	return err == nil
}

// Open decrypts a session message. Every failure is ErrDecrypt and leaves
// the session unchanged; a message is read at most once (a replay fails).
func (s *Session) Open(msg []byte) ([]byte, error) {
	pt, err := s.OpenAppend(nil, msg)
	if err != nil {
		return nil, err
	}
	return pt, nil
}

// OpenAppend is Open appending the plaintext to dst, which must not overlap
// msg. On failure it returns dst unchanged (the bytes past its length that
// it used are zeros).
func (s *Session) OpenAppend(dst, msg []byte) ([]byte, error) {
	f, ok := splitMessage(msg)
	if !ok {
		return dst, ErrDecrypt
	}
	if f.init != nil {
		// Only the initiator attaches an Init, and only its own: it must be
		// the one that started this session.
		id := initID(f.init)
		if s.st.initiator || subtle.ConstantTimeCompare(id[:], s.st.initID[:]) != 1 {
			return dst, ErrDecrypt
		}
	}
	sc := s.newScratch(dst, &f)
	defer sc.wipe()

	// The common case, the next message of the current receiving chain,
	// changes two fields and nothing can fail after the body authenticates:
	// no copy of the state.
	var pre *header
	if st := &s.st; st.hasHKr && st.hasCKr {
		h, ok := openHeader(&st.hkr, &f, &sc)
		if ok && h.n == st.nr {
			next, mk := kdfCK(&st.ckr)
			if !openBody(&mk, &f, &sc) {
				return dst, ErrDecrypt
			}
			st.ckr = next
			st.nr = h.n + 1
			st.commitRead()
			return sc.out, nil
		}
		if !ok {
			pre = &header{} // known not to open under HKr
		} else {
			pre = &h
		}
	}

	st := s.st // work on a copy; commit on success
	now := s.now().Unix()
	st.expireSkipped(now)
	if !s.open(&st, &f, &sc, pre, now) {
		clear(sc.pt) // a body that opened under a skipped key, then failed later
		return dst, ErrDecrypt
	}
	st.commitRead()
	s.st = st
	return sc.out, nil
}

// commitRead is what every successful Open does besides the chain update.
func (st *state) commitRead() {
	st.countMessage()
	if st.needInit {
		st.needInit = false
		st.init = nil
	}
}

// open reads f on st (a copy) at now (unix seconds, the stamp of any key it
// stores). pre, when not nil, is the result of trying the header under HKr
// already: a header, or the zero header when it did not open (dh is nil).
func (s *Session) open(st *state, f *framed, sc *scratch, pre *header, now int64) bool {
	// 1. The current receiving chain.
	var h header
	ok := false
	switch {
	case pre != nil:
		h, ok = *pre, pre.dh != nil
	case st.hasHKr:
		h, ok = openHeader(&st.hkr, f, sc)
	}
	if ok {
		if h.n < st.nr {
			// Already read, or a stored key of a skipped message.
			return st.openSkipped(&st.hkr, h.n, f, sc)
		}
		if !st.hasCKr {
			return false
		}
	} else {
		// 2. Keys of skipped messages of earlier chains, by header key.
		for i := range st.skipped {
			sk := &st.skipped[i]
			if i > 0 && keyEqual(&st.skipped[i-1].hk, &sk.hk) {
				continue // already tried this header key
			}
			if st.hasHKr && keyEqual(&sk.hk, &st.hkr) {
				continue // tried above
			}
			hs, ok := openHeader(&sk.hk, f, sc)
			if !ok {
				continue
			}
			hk := sk.hk
			return st.openSkipped(&hk, hs.n, f, sc)
		}
		// 3. The next receiving chain (a DH ratchet step).
		h, ok = openHeader(&st.nhkr, f, sc)
		if !ok {
			return false
		}
		if !s.receiveStep(st, &h, now) {
			return false
		}
	}
	if !st.skip(h.n, now) {
		return false
	}
	var mk [keySize]byte
	st.ckr, mk = kdfCK(&st.ckr)
	if !openBody(&mk, f, sc) {
		return false
	}
	st.nr = h.n + 1
	return true
}

// openSkipped opens the body with the stored key of message n under header
// key hk, and deletes that key.
func (st *state) openSkipped(hk *[keySize]byte, n uint32, f *framed, sc *scratch) bool {
	// Every entry is compared, each header key in constant time.
	j := -1
	for i := range st.skipped {
		e := &st.skipped[i]
		if subtle.ConstantTimeCompare(e.hk[:], hk[:])&subtle.ConstantTimeEq(int32(e.n), int32(n)) == 1 {
			j = i
		}
	}
	if j < 0 {
		return false
	}
	mk := st.skipped[j].mk
	if !openBody(&mk, f, sc) {
		return false
	}
	st.skipped = slices.Delete(slices.Clone(st.skipped), j, j+1)
	return true
}

// receiveStep performs the receiving half of a DH ratchet step for a header
// that opened under NHKr: store the keys left in the current chain, mix the
// new DH output (and the ML-KEM secret if the header carries one), and make
// the next Seal start a new sending chain.
func (s *Session) receiveStep(st *state, h *header, now int64) bool {
	if st.dhs == nil {
		return false
	}
	if st.hasCKr && !st.skip(h.pn, now) {
		return false
	}
	out, ok := dh(st.dhs, h.dh)
	if !ok {
		return false
	}
	var pq []byte
	if h.pq {
		if st.ownDK == nil || h.ctID != st.ownDKID {
			return false
		}
		if _, err := mlkem.NewEncapsulationKey768(h.ek); err != nil {
			return false
		}
		ss, err := st.ownDK.Decapsulate(h.ct)
		if err != nil {
			return false
		}
		pq = ss
		st.ownDK = nil
		st.peerEK = bytes.Clone(h.ek)
		st.peerEKID = h.ekID
	}
	st.hkr, st.hasHKr = st.nhkr, true
	st.dhr, st.hasDHr = [32]byte(h.dh), true
	st.rk, st.ckr, st.nhkr = kdfRK(&st.rk, out, pq)
	st.hasCKr = true
	st.nr = 0
	// The old sending chain is finished; its length goes into the next
	// header's pn.
	st.cks = [keySize]byte{}
	st.pendingStep = true
	return true
}

// skip derives and stores the keys of messages nr .. until-1 of the current
// receiving chain, stamped with now (unix seconds).
func (st *state) skip(until uint32, now int64) bool {
	if until <= st.nr {
		return true
	}
	if !st.hasCKr || until-st.nr > MaxSkip {
		return false
	}
	sk := slices.Grow(slices.Clone(st.skipped), int(until-st.nr))
	for st.nr < until {
		var mk [keySize]byte
		st.ckr, mk = kdfCK(&st.ckr)
		sk = append(sk, skippedKey{hk: st.hkr, n: st.nr, mk: mk, t: now})
		st.nr++
	}
	if over := len(sk) - MaxSkippedKeys; over > 0 {
		sk = slices.Delete(sk, 0, over) // evict the oldest
	}
	st.skipped = sk
	return true
}

// keyEqual compares two secret keys in constant time.
func keyEqual(a, b *[keySize]byte) bool {
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
