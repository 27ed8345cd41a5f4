package session

import (
	"bytes"
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/subtle"
	"encoding/binary"
	"fmt"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// State flags (u16 at offset 2 of the state encoding).
const (
	sfInitiator = 1 << iota
	sfNeedInit
	sfDHs
	sfDHr
	sfCKs
	sfCKr
	sfHKs
	sfHKr
	sfPendingStep
	sfPQNew
	sfOwnDK
	sfPeerEK
	sfPQBlock
	sfAll = 1<<iota - 1
)

const (
	// skippedEntrySize is a skipped key in state version 2: header key,
	// N, message key, time derived (u64 unix seconds); version 1 had no
	// time.
	skippedEntrySize   = keySize + 4 + keySize + 8
	skippedEntrySizeV1 = keySize + 4 + keySize
	// stateFixedSize is the state encoding without its optional parts.
	stateFixedSize = 2 + 2 + 32 + 32 + keys.DeviceCertificateSize + 9*keySize + 5*4 + 8 + 2
	// MaxStateSize bounds MarshalSecret's output: every optional part present
	// and MaxSkippedKeys stored keys.
	MaxStateSize = stateFixedSize + (4 + mlkem.SeedSize) + (4 + KEMPublicKeySize) + PQBlockSize + InitSize + MaxSkippedKeys*skippedEntrySize

	maxUnixSeconds = 253402300799 // 9999-12-31T23:59:59Z, as SPEC.md section 8
)

// MarshalSecret returns the session's SECRET state: root, chain, header and
// ratchet private keys and stored skipped-message keys. Anyone holding these
// bytes can read the session's future messages until it heals. Store it only
// encrypted. Keys already used (read messages, past chains) are not in it.
//
// It first deletes the skipped keys older than MaxSkippedKeyAge on the
// session's clock, so a stored state never holds one.
func (s *Session) MarshalSecret() []byte {
	st := &s.st
	st.expireSkipped(s.now().Unix())
	var fl uint16
	set := func(b bool, f uint16) {
		if b {
			fl |= f
		}
	}
	set(st.initiator, sfInitiator)
	set(st.needInit, sfNeedInit)
	set(st.dhs != nil, sfDHs)
	set(st.hasDHr, sfDHr)
	set(st.hasCKs, sfCKs)
	set(st.hasCKr, sfCKr)
	set(st.hasHKs, sfHKs)
	set(st.hasHKr, sfHKr)
	set(st.pendingStep, sfPendingStep)
	set(st.pqNew, sfPQNew)
	set(st.ownDK != nil, sfOwnDK)
	set(st.peerEK != nil, sfPeerEK)
	set(st.pqBlock != nil, sfPQBlock)

	b := make([]byte, 0, stateFixedSize+len(st.skipped)*skippedEntrySize+8192)
	b = append(b, tagState, stateVersion)
	b = binary.BigEndian.AppendUint16(b, fl)
	b = append(b, st.ad[:]...)
	b = append(b, st.initID[:]...)
	b = append(b, st.peerCert...)
	b = append(b, st.rk[:]...)
	if st.dhs != nil {
		b = append(b, st.dhs.Bytes()...)
	} else {
		b = append(b, make([]byte, keySize)...)
	}
	for _, k := range []*[keySize]byte{&st.dhr, &st.cks, &st.ckr, &st.hks, &st.hkr, &st.nhks, &st.nhkr} {
		b = append(b, k[:]...)
	}
	for _, v := range []uint32{st.ns, st.nr, st.pn, st.nextKeyID, st.sincePQ} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(st.lastPQ))
	if st.ownDK != nil {
		b = binary.BigEndian.AppendUint32(b, st.ownDKID)
		b = append(b, st.ownDK.Bytes()...)
	}
	if st.peerEK != nil {
		b = binary.BigEndian.AppendUint32(b, st.peerEKID)
		b = append(b, st.peerEK...)
	}
	b = append(b, st.pqBlock...)
	if st.needInit {
		b = append(b, st.init...)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(st.skipped)))
	for _, k := range st.skipped {
		b = append(b, k.hk[:]...)
		b = binary.BigEndian.AppendUint32(b, k.n)
		b = append(b, k.mk[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(k.t))
	}
	return b
}

// UnmarshalSecret parses the output of MarshalSecret. It checks every length,
// cap and key, and the consistency of the flags, so that a damaged state
// cannot make the session misbehave; it is ErrMalformed otherwise.
//
// It also reads the version-1 encoding of the previous release, whose
// skipped keys carry no time: they are stamped with the time of loading
// (opts' clock), and so live MaxSkippedKeyAge from then.
func UnmarshalSecret(b []byte, opts *Options) (*Session, error) {
	bad := func(what string) (*Session, error) {
		return nil, fmt.Errorf("%w: session state: %s", ErrMalformed, what)
	}
	if len(b) < stateFixedSize || len(b) > MaxStateSize {
		return bad("length")
	}
	r := protocol.NewReader(b)
	t := r.Take(2, "tag") // the length check above keeps it whole
	if t[0] != tagState || (t[1] != stateVersion && t[1] != stateVersion1) {
		return bad("tag or version")
	}
	v1 := t[1] == stateVersion1
	now := opts.now()
	fl := r.U16("flags")
	if fl&^sfAll != 0 {
		return bad("flags")
	}
	has := func(f uint16) bool { return fl&f != 0 }
	var st state
	st.initiator = has(sfInitiator)
	st.needInit = has(sfNeedInit)
	st.hasDHr, st.hasCKs, st.hasCKr = has(sfDHr), has(sfCKs), has(sfCKr)
	st.hasHKs, st.hasHKr = has(sfHKs), has(sfHKr)
	st.pendingStep, st.pqNew = has(sfPendingStep), has(sfPQNew)
	r.Array(st.ad[:], "associated data")
	r.Array(st.initID[:], "init id")
	st.peerCert = bytes.Clone(r.Take(keys.DeviceCertificateSize, "peer certificate"))
	r.Array(st.rk[:], "root key")
	dhs := r.Take(keySize, "DH key")
	for _, k := range []*[keySize]byte{&st.dhr, &st.cks, &st.ckr, &st.hks, &st.hkr, &st.nhks, &st.nhkr} {
		r.Array(k[:], "key")
	}
	st.ns, st.nr, st.pn, st.nextKeyID, st.sincePQ = r.U32("ns"), r.U32("nr"), r.U32("pn"), r.U32("next key id"), r.U32("since PQ")
	last := r.U64("last PQ")
	if last > maxUnixSeconds {
		return bad("time")
	}
	st.lastPQ = int64(last)
	var dkSeed []byte
	if has(sfOwnDK) {
		st.ownDKID = r.U32("own DK id")
		dkSeed = r.Take(mlkem.SeedSize, "own DK seed")
	}
	if has(sfPeerEK) {
		st.peerEKID = r.U32("peer EK id")
		st.peerEK = bytes.Clone(r.Take(KEMPublicKeySize, "peer EK"))
	}
	if has(sfPQBlock) {
		st.pqBlock = bytes.Clone(r.Take(PQBlockSize, "PQ block"))
	}
	if st.needInit {
		head := r.Take(3, "init header")
		n := InitSizeNoOneTime
		if r.Err() == nil && head[2] == 0x01 {
			n = InitSize
		}
		body := r.Take(n-3, "init")
		if r.Err() == nil {
			st.init = bytes.Clone(append(head[:3:3], body...))
		}
	}
	count := int(r.U16("skipped key count"))
	if count > MaxSkippedKeys {
		return bad("too many skipped keys")
	}
	if r.Err() == nil {
		st.skipped = make([]skippedKey, count)
	}
	loaded := now().Unix()
	for i := 0; i < count && r.Err() == nil; i++ {
		k := &st.skipped[i]
		r.Array(k.hk[:], "skipped header key")
		k.n = r.U32("skipped number")
		r.Array(k.mk[:], "skipped message key")
		if v1 {
			k.t = loaded
			continue
		}
		ts := r.U64("skipped key time")
		if ts > maxUnixSeconds {
			return bad("skipped key time")
		}
		k.t = int64(ts)
	}
	if r.Finish("session state") != nil {
		return bad("length")
	}

	// Absent fields are zero (one encoding per state).
	var zero [keySize]byte
	zeroIf := func(absent bool, k []byte) bool {
		return !absent || subtle.ConstantTimeCompare(k, zero[:len(k)]) == 1
	}
	if !zeroIf(!has(sfDHs), dhs) || !zeroIf(!st.hasDHr, st.dhr[:]) || !zeroIf(!st.hasCKs, st.cks[:]) ||
		!zeroIf(!st.hasCKr, st.ckr[:]) || !zeroIf(!st.hasHKs, st.hks[:]) || !zeroIf(!st.hasHKr, st.hkr[:]) {
		return bad("absent field not zero")
	}
	// Consistency: what Seal and Open rely on.
	switch {
	case st.needInit && !st.initiator:
		return bad("Init on a responder")
	case !st.hasCKs && !(st.pendingStep && st.hasDHr):
		return bad("no way to send")
	case st.hasCKs && !st.pendingStep && !(has(sfDHs) && st.hasHKs):
		return bad("sending chain without keys")
	case st.hasCKr != st.hasHKr:
		return bad("receiving chain without header key")
	case st.pendingStep && !st.hasDHr:
		return bad("pending step without peer key")
	case has(sfPQBlock) && !st.hasCKs:
		return bad("PQ block without sending chain")
	}
	if has(sfDHs) {
		k, err := ecdh.X25519().NewPrivateKey(dhs)
		if err != nil {
			return bad("DH key")
		}
		st.dhs = k
	}
	if st.hasDHr {
		if _, ok := parseDHPublic(st.dhr[:]); !ok {
			return bad("peer DH key")
		}
	}
	if dkSeed != nil {
		dk, err := mlkem.NewDecapsulationKey768(dkSeed)
		if err != nil {
			return bad("KEM key")
		}
		st.ownDK = dk
	}
	if st.peerEK != nil {
		if _, err := mlkem.NewEncapsulationKey768(st.peerEK); err != nil {
			return bad("peer KEM key")
		}
	}
	if st.pqBlock != nil {
		if _, err := mlkem.NewEncapsulationKey768(st.pqBlock[4+KEMCiphertextSize+4:]); err != nil {
			return bad("PQ block")
		}
	}
	if st.needInit {
		in, err := ParseInit(st.init)
		if err != nil {
			return bad("Init")
		}
		if id := in.ID(); subtle.ConstantTimeCompare(id[:], st.initID[:]) != 1 {
			return bad("Init")
		}
	}
	peer, err := keys.ParseDeviceCertificate(st.peerCert)
	if err != nil {
		return bad("peer certificate")
	}
	st.peer = peer
	return &Session{st: st, now: now}, nil
}
