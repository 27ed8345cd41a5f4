package session

import (
	"bytes"
	"crypto/hkdf"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
)

// PeerBundle is what an initiator needs about the responder's device: its
// certificate and signed prekeys, as fetched from the relay. The caller has
// already checked that Cert.Identity is the identity it expects.
type PeerBundle struct {
	Cert         *keys.DeviceCertificate
	SignedPrekey *keys.SignedPrekey // the last-resort prekey (OneTime false)
	OneTime      *keys.SignedPrekey // a one-time prekey, or nil when none is left
}

// Options tune a session. A nil *Options means the defaults.
type Options struct {
	// Now is the clock used to decide when a post-quantum step is due.
	// Default: time.Now.
	Now func() time.Time
}

func (o *Options) now() func() time.Time {
	if o == nil || o.Now == nil {
		return time.Now
	}
	return o.Now
}

// Init is the initiator's handshake message. It travels in clear inside every
// message the initiator seals until it has read a message from the responder
// (so that losing the first message does not lose the session); everything
// that names the initiator is encrypted inside it.
//
// An Init is immutable.
type Init struct {
	raw    []byte
	hasOPK bool
	spkID  uint32
	opkID  uint32
	ctSPK  []byte
	ctOPK  []byte // nil when !hasOPK
	sealed []byte // the encrypted inner part
}

// ParseInit parses an encoded Init: exactly InitSize bytes (with a one-time
// prekey) or InitSizeNoOneTime bytes (without).
func ParseInit(b []byte) (*Init, error) {
	if len(b) < initFixedSize {
		return nil, fmt.Errorf("%w: Init: %d bytes, truncated", ErrMalformed, len(b))
	}
	if b[0] != tagInit || b[1] != version {
		return nil, fmt.Errorf("%w: Init: tag or version", ErrMalformed)
	}
	in := &Init{}
	switch b[2] {
	case 0x00:
	case 0x01:
		in.hasOPK = true
	default:
		return nil, fmt.Errorf("%w: Init: flags", ErrMalformed)
	}
	want := InitSizeNoOneTime
	if in.hasOPK {
		want = InitSize
	}
	if len(b) != want {
		return nil, fmt.Errorf("%w: Init: %d bytes, want %d", ErrMalformed, len(b), want)
	}
	in.spkID = binary.BigEndian.Uint32(b[3:7])
	in.opkID = binary.BigEndian.Uint32(b[7:11])
	if !in.hasOPK && in.opkID != 0 {
		return nil, fmt.Errorf("%w: Init: one-time prekey ID without one-time prekey", ErrMalformed)
	}
	in.raw = append([]byte(nil), b...)
	off := initFixedSize
	in.ctSPK = in.raw[off : off+SealedSecretSize]
	off += SealedSecretSize
	if in.hasOPK {
		in.ctOPK = in.raw[off : off+SealedSecretSize]
		off += SealedSecretSize
	}
	in.sealed = in.raw[off:]
	return in, nil
}

// Marshal returns the encoding of the Init. The caller may modify the result.
func (in *Init) Marshal() []byte { return append([]byte(nil), in.raw...) }

// SignedPrekeyID names the responder's last-resort prekey the Init used.
func (in *Init) SignedPrekeyID() uint32 { return in.spkID }

// OneTimePrekeyID names the responder's one-time prekey the Init used, if any.
func (in *Init) OneTimePrekeyID() (uint32, bool) { return in.opkID, in.hasOPK }

// ID is SHA-256("postern.v1 session init-id" || Init): it names the session
// the Init starts, and orders two Inits in a simultaneous initiation.
func (in *Init) ID() [32]byte { return initID(in.raw) }

func initID(raw []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(labelInitID))
	h.Write(raw)
	var id [32]byte
	h.Sum(id[:0])
	return id
}

// publicPart is the Init up to and excluding the sealed inner part.
func (in *Init) publicPart() []byte { return in.raw[:len(in.raw)-initSealedSize] }

// transcript0 hashes what both sides know before the inner part is opened:
// the Init's public part and the responder's certificate and prekeys.
func transcript0(public []byte, peer *keys.DeviceCertificate, spk, opk *keys.SignedPrekey) [32]byte {
	h := sha256.New()
	h.Write([]byte(labelTranscript))
	h.Write([]byte{0x00})
	h.Write(public)
	h.Write(peer.Bytes())
	h.Write(spk.Bytes())
	if opk != nil {
		h.Write(opk.Bytes())
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// transcript extends TH0 with the initiator's certificate and its first
// ratchet keys.
func transcript(th0 [32]byte, initiator *keys.DeviceCertificate, dhPub, ek []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(labelTranscript))
	h.Write([]byte{0x01})
	h.Write(th0[:])
	h.Write(initiator.Bytes())
	h.Write(dhPub)
	h.Write(ek)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

var zeroSalt [32]byte

func initKey(ikm []byte, th0 [32]byte) []byte {
	k, err := hkdf.Key(sha256.New, ikm, zeroSalt[:], labelInitKey+string(th0[:]), chacha20poly1305.KeySize)
	if err != nil {
		panic("session: HKDF: " + err.Error()) // unreachable
	}
	return k
}

// rootKeys derives the five initial keys: RK0, CK_I0, HK_I0, NHK_I1, HK_R0.
func rootKeys(ikm []byte, th [32]byte) (rk, ckI, hkI, nhkI, hkR [keySize]byte) {
	out, err := hkdf.Key(sha256.New, ikm, zeroSalt[:], labelRoot+string(th[:]), 5*keySize)
	if err != nil {
		panic("session: HKDF: " + err.Error()) // unreachable
	}
	copy(rk[:], out[0:])
	copy(ckI[:], out[32:])
	copy(hkI[:], out[64:])
	copy(nhkI[:], out[96:])
	copy(hkR[:], out[128:])
	return
}

// Initiate starts a session with the device described by peer. It verifies
// the certificate and the prekeys' signatures (the caller has already checked
// the identity fingerprint), seals a fresh 32-byte secret to the signed
// prekey and one to the one-time prekey if any, signs the transcript with
// self's device key, and returns the session and the Init to attach (Seal
// attaches it by itself while NeedsInit is true).
func Initiate(self *identity.Device, peer PeerBundle, opts *Options) (*Session, *Init, error) {
	if self == nil {
		return nil, nil, fmt.Errorf("%w: missing device", ErrBundle)
	}
	return initiate(self, peer, opts, self.Sign)
}

// initiate is Initiate with the transcript signer as a parameter (tests sign
// with the wrong key).
func initiate(self *identity.Device, peer PeerBundle, opts *Options, sign func(string, []byte) ([]byte, error)) (*Session, *Init, error) {
	if self == nil || peer.Cert == nil || peer.SignedPrekey == nil {
		return nil, nil, fmt.Errorf("%w: missing field", ErrBundle)
	}
	if err := peer.Cert.Verify(); err != nil {
		return nil, nil, fmt.Errorf("%w: certificate: %w", ErrBundle, err)
	}
	if peer.SignedPrekey.OneTime || peer.SignedPrekey.Key == nil {
		return nil, nil, fmt.Errorf("%w: signed prekey is not a last-resort prekey", ErrBundle)
	}
	if err := peer.SignedPrekey.Verify(peer.Cert.Signing); err != nil {
		return nil, nil, fmt.Errorf("%w: signed prekey: %w", ErrBundle, err)
	}
	if peer.OneTime != nil {
		if !peer.OneTime.OneTime || peer.OneTime.Key == nil || peer.OneTime.ID == peer.SignedPrekey.ID {
			return nil, nil, fmt.Errorf("%w: one-time prekey is not one-time", ErrBundle)
		}
		if err := peer.OneTime.Verify(peer.Cert.Signing); err != nil {
			return nil, nil, fmt.Errorf("%w: one-time prekey: %w", ErrBundle, err)
		}
	}
	selfCert := self.Certificate()
	if selfCert.DeviceID() == peer.Cert.DeviceID() {
		return nil, nil, fmt.Errorf("%w: a device cannot start a session with itself", ErrBundle)
	}

	ikm := make([]byte, keySize, 2*keySize)
	if _, err := rand.Read(ikm); err != nil {
		return nil, nil, ErrRandom
	}
	ctSPK, err := peer.SignedPrekey.Key.Seal([]byte(labelSPK), nil, ikm[:keySize])
	if err != nil || len(ctSPK) != SealedSecretSize {
		return nil, nil, ErrRandom
	}
	var ctOPK []byte
	if peer.OneTime != nil {
		ss := make([]byte, keySize)
		if _, err := rand.Read(ss); err != nil {
			return nil, nil, ErrRandom
		}
		ctOPK, err = peer.OneTime.Key.Seal([]byte(labelOPK), nil, ss)
		if err != nil || len(ctOPK) != SealedSecretSize {
			return nil, nil, ErrRandom
		}
		ikm = append(ikm, ss...)
	}
	dhs, err := newDHKey()
	if err != nil {
		return nil, nil, err
	}
	dk, err := mlkem.GenerateKey768()
	if err != nil {
		return nil, nil, ErrRandom
	}

	size := InitSizeNoOneTime
	if ctOPK != nil {
		size = InitSize
	}
	raw := make([]byte, 0, size)
	raw = append(raw, tagInit, version, 0)
	raw = binary.BigEndian.AppendUint32(raw, peer.SignedPrekey.ID)
	raw = binary.BigEndian.AppendUint32(raw, 0)
	raw = append(raw, ctSPK...)
	if ctOPK != nil {
		raw[2] = 0x01
		binary.BigEndian.PutUint32(raw[7:11], peer.OneTime.ID)
		raw = append(raw, ctOPK...)
	}
	public := raw[:len(raw):len(raw)]
	th0 := transcript0(public, peer.Cert, peer.SignedPrekey, peer.OneTime)
	ek := dk.EncapsulationKey().Bytes()
	dhPub := dhs.PublicKey().Bytes()
	th := transcript(th0, selfCert, dhPub, ek)
	sig, err := sign(ContextInit, th[:])
	if err != nil || len(sig) != keys.SignatureSize {
		return nil, nil, ErrRandom
	}
	inner := make([]byte, 0, initInnerSize)
	inner = append(inner, selfCert.Bytes()...)
	inner = append(inner, dhPub...)
	inner = append(inner, ek...)
	inner = append(inner, sig...)
	aead, err := chacha20poly1305.New(initKey(ikm, th0))
	if err != nil {
		return nil, nil, ErrRandom
	}
	var nonce [chacha20poly1305.NonceSize]byte // the key is used once
	raw = aead.Seal(raw, nonce[:], inner, public)
	init, err := ParseInit(raw)
	if err != nil {
		return nil, nil, ErrRandom // unreachable
	}

	rk, ckI, hkI, nhkI, hkR := rootKeys(ikm, th)
	now := opts.now()
	s := &Session{now: now, st: state{
		initiator: true,
		needInit:  true,
		ad:        th,
		initID:    init.ID(),
		peerCert:  peer.Cert.Bytes(),
		peer:      peer.Cert,
		rk:        rk,
		dhs:       dhs,
		cks:       ckI, hasCKs: true,
		hks: hkI, hasHKs: true,
		nhks:      nhkI,
		nhkr:      hkR,
		ownDK:     dk,
		ownDKID:   0,
		nextKeyID: 1,
		pqNew:     true,
		lastPQ:    unixSeconds(now()),
		init:      init.raw,
	}}
	return s, init, nil
}

// Respond completes a session from an Init addressed to self. spk is the
// last-resort prekey named by init.SignedPrekeyID, opk the one-time prekey
// named by init.OneTimePrekeyID (nil when the Init names none). Respond
// verifies the initiator's certificate and its signature over the transcript;
// the caller must then check PeerCertificate().Identity against the contact it
// expects, and delete opk's secret once the session is stored: that deletion
// is what makes a replayed Init fail.
//
// Prekeys that do not match the Init give ErrPrekey; anything that depends on
// the secrets (a tampered Init, a bad signature) gives ErrDecrypt.
func Respond(self *identity.Device, spk, opk *identity.Prekey, init *Init, opts *Options) (*Session, error) {
	if self == nil || spk == nil || init == nil {
		return nil, fmt.Errorf("%w: missing argument", ErrPrekey)
	}
	selfCert := self.Certificate()
	spkPub := spk.Public()
	if spkPub.ID != init.spkID || spkPub.OneTime || !spk.Device().Equal(selfCert.Signing) {
		return nil, fmt.Errorf("%w: signed prekey", ErrPrekey)
	}
	var opkPub *keys.SignedPrekey
	switch {
	case init.hasOPK && opk == nil:
		return nil, fmt.Errorf("%w: the one-time prekey is gone", ErrPrekey)
	case !init.hasOPK && opk != nil:
		return nil, fmt.Errorf("%w: unexpected one-time prekey", ErrPrekey)
	case opk != nil:
		opkPub = opk.Public()
		if opkPub.ID != init.opkID || !opkPub.OneTime || !opk.Device().Equal(selfCert.Signing) {
			return nil, fmt.Errorf("%w: one-time prekey", ErrPrekey)
		}
	}

	ikm, err := spk.Open([]byte(labelSPK), nil, init.ctSPK)
	if err != nil || len(ikm) != keySize {
		return nil, ErrDecrypt
	}
	if opk != nil {
		ss, err := opk.Open([]byte(labelOPK), nil, init.ctOPK)
		if err != nil || len(ss) != keySize {
			return nil, ErrDecrypt
		}
		ikm = append(ikm, ss...)
	}
	public := init.publicPart()
	th0 := transcript0(public, selfCert, spkPub, opkPub)
	aead, err := chacha20poly1305.New(initKey(ikm, th0))
	if err != nil {
		return nil, ErrDecrypt
	}
	var nonce [chacha20poly1305.NonceSize]byte
	inner, err := aead.Open(nil, nonce[:], init.sealed, public)
	if err != nil || len(inner) != initInnerSize {
		return nil, ErrDecrypt
	}
	off := 0
	certBytes := inner[off : off+keys.DeviceCertificateSize]
	off += keys.DeviceCertificateSize
	dhPub := inner[off : off+DHPublicKeySize]
	off += DHPublicKeySize
	ek := inner[off : off+KEMPublicKeySize]
	off += KEMPublicKeySize
	sig := inner[off:]
	peer, err := keys.ParseDeviceCertificate(certBytes)
	if err != nil || peer.DeviceID() == selfCert.DeviceID() {
		return nil, ErrDecrypt
	}
	if _, ok := parseDHPublic(dhPub); !ok {
		return nil, ErrDecrypt
	}
	if _, err := mlkem.NewEncapsulationKey768(ek); err != nil {
		return nil, ErrDecrypt
	}
	th := transcript(th0, peer, dhPub, ek)
	if err := peer.Signing.Verify(ContextInit, th[:], sig); err != nil {
		return nil, ErrDecrypt
	}

	rk, ckI, hkI, nhkI, hkR := rootKeys(ikm, th)
	now := opts.now()
	s := &Session{now: now, st: state{
		ad:          th,
		initID:      init.ID(),
		peerCert:    bytes.Clone(certBytes),
		peer:        peer,
		rk:          rk,
		dhr:         [32]byte(dhPub),
		hasDHr:      true,
		ckr:         ckI,
		hasCKr:      true,
		hkr:         hkI,
		hasHKr:      true,
		nhkr:        nhkI,
		nhks:        hkR,
		pendingStep: true,
		peerEK:      bytes.Clone(ek),
		peerEKID:    0,
		pqNew:       true,
		lastPQ:      unixSeconds(now()),
	}}
	return s, nil
}

func unixSeconds(t time.Time) int64 { return t.Unix() }
