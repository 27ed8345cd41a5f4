package keys_test

// Known-answer vectors for Postern's own constructions of section 8:
// hybrid signatures (hybrid-sig-v1.json) and device certificates with
// signed prekeys (device-cert-v1.json). Every input is in the files (seeds,
// contexts, messages, times) with every output byte and the intermediate
// values an independent implementation needs (public keys, fingerprints,
// M'). ML-DSA-65 signs hedged in production, which no file can reproduce,
// so each file holds signatures in FIPS 204's deterministic mode (the same
// verification; they check M' byte for byte) and one production (hedged)
// signature, which is only verified.
//
// `go test ./keys -run TestKAT -update` rewrites the files from the
// generators below (the hedged signatures change; review the diff).

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/kem/xwing"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/hybrid"
)

var update = flag.Bool("update", false, "rewrite the known-answer vector files in testdata/vectors/keys")

const (
	hybridVectorFile = "../testdata/vectors/keys/hybrid-sig-v1.json"
	certVectorFile   = "../testdata/vectors/keys/device-cert-v1.json"

	// vectorCreated is 2026-03-01T12:00:00Z, the creation time of every
	// object in the files.
	vectorCreated = 1772366400
)

// Expected outcomes, as written in the files.
const (
	expectValid        = "valid"
	expectBadSignature = "bad signature"   // keys.ErrBadSignature
	expectBadContext   = "invalid context" // keys.ErrInvalidContext
	expectMalformed    = "malformed"       // keys.ErrMalformed
)

// vectorSeed is how the generator picks a seed: SHA-256 of a name. The
// files hold the seeds themselves; the names only make them reproducible.
func vectorSeed(name string) []byte {
	h := sha256.Sum256([]byte("postern.v1 test vector " + name))
	return h[:]
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in vector file: %v", err)
	}
	return b
}

// loadVectors reads a vector file into v. A missing or empty file fails
// the test: vectors are never optional.
func loadVectors(t *testing.T, path string, v any) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		t.Fatalf("vector file %s missing or empty (regenerate with -update): %v", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// compareOrWrite writes got to path under -update; otherwise it requires
// the file to hold exactly got (the generator rerun on the file's inputs).
func compareOrWrite(t *testing.T, path string, got any, file []byte) {
	t.Helper()
	out, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, '\n')
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(out, file) {
		t.Fatalf("%s differs from what its inputs give (%d vs %d bytes); if the change is intended, run with -update and review the diff", path, len(out), len(file))
	}
}

// checkExpect maps an error to the files' vocabulary and compares.
func checkExpect(t *testing.T, name string, err error, want string) {
	t.Helper()
	got := expectValid
	switch {
	case err == nil:
	case errors.Is(err, keys.ErrBadSignature):
		got = expectBadSignature
	case errors.Is(err, keys.ErrInvalidContext):
		got = expectBadContext
	case errors.Is(err, keys.ErrMalformed):
		got = expectMalformed
	default:
		got = "error: " + err.Error()
	}
	if got != want {
		t.Errorf("%s: got %q, want %q", name, got, want)
	}
}

// hybridKey is a hybrid signing key built from its seeds with the
// primitives directly (not through package hybrid), so that the vectors
// check the production signer against an independent assembly.
type hybridKey struct {
	ed  ed25519.PrivateKey
	ml  *mldsa65.PrivateKey
	pub *keys.SigningPublicKey
}

func newHybridKey(t *testing.T, edSeed, mlSeed []byte) *hybridKey {
	t.Helper()
	if len(edSeed) != 32 || len(mlSeed) != 32 {
		t.Fatal("seeds must be 32 bytes")
	}
	var s [32]byte
	copy(s[:], mlSeed)
	mlPub, mlPriv := mldsa65.NewKeyFromSeed(&s)
	ed := ed25519.NewKeyFromSeed(edSeed)
	pub, err := keys.ParseSigningPublicKey(append(append([]byte(nil), ed.Public().(ed25519.PublicKey)...), mlPub.Bytes()...))
	if err != nil {
		t.Fatal(err)
	}
	// The production signer must derive the same key from the same seeds.
	prod, err := hybrid.FromSeeds(edSeed, mlSeed)
	if err != nil || !prod.Public().Equal(pub) {
		t.Fatalf("hybrid.FromSeeds derives another key: %v", err)
	}
	return &hybridKey{ed: ed, ml: mlPriv, pub: pub}
}

// signRaw signs m (already M') with Ed25519 and deterministic ML-DSA-65
// under FIPS 204 context mlCtx.
func (k *hybridKey) signRaw(t *testing.T, m []byte, mlCtx string) []byte {
	t.Helper()
	sig := make([]byte, keys.SignatureSize)
	copy(sig, ed25519.Sign(k.ed, m))
	if err := mldsa65.SignTo(k.ml, m, []byte(mlCtx), false, sig[ed25519.SignatureSize:]); err != nil {
		t.Fatal(err)
	}
	return sig
}

// sign is the deterministic form of a Postern hybrid signature.
func (k *hybridKey) sign(t *testing.T, context string, msg []byte) []byte {
	t.Helper()
	m, err := keys.SignedMessage(k.pub, context, msg)
	if err != nil {
		t.Fatal(err)
	}
	return k.signRaw(t, m, keys.MLDSAContext)
}

// ---- hybrid signatures ----

type hybridVectors struct {
	Comment          string       `json:"comment"`
	Ed25519Seed      string       `json:"ed25519_seed"`
	MLDSA65Seed      string       `json:"mldsa65_seed"`
	PublicKey        string       `json:"public_key"`
	Fingerprint      string       `json:"fingerprint"`
	OtherEd25519Seed string       `json:"other_ed25519_seed"`
	OtherMLDSA65Seed string       `json:"other_mldsa65_seed"`
	OtherFingerprint string       `json:"other_fingerprint"`
	Cases            []hybridCase `json:"cases"`
}

type hybridCase struct {
	Name          string `json:"name"`
	Context       string `json:"context"`
	Message       string `json:"message"`
	SignedMessage string `json:"signed_message,omitempty"`
	Signature     string `json:"signature"`
	Deterministic bool   `json:"deterministic"`
	Expect        string `json:"expect"`
}

const hybridComment = "Postern hybrid signatures (protocol/SPEC.md section 8 \"Hybrid signatures\"). " +
	"Key: Ed25519 from ed25519_seed (RFC 8032) || ML-DSA-65 from mldsa65_seed (FIPS 204 KeyGen_internal); fingerprint = SHA-256(\"postern.v1 sig-fingerprint\" || public_key). " +
	"Each case: context is ASCII, message hex; signed_message is M' = \"postern.v1 hybrid-sig\" || 0x00 || fingerprint || u8(len(context)) || context || message, as a verifier builds it from the case (absent when the context is invalid). " +
	"signature = Ed25519(M') || ML-DSA-65(M', ctx \"postern.v1\"). deterministic: true means the ML-DSA half was signed in FIPS 204 deterministic mode (rnd = 0^32) and is reproducible; false means production hedged mode (verify only). " +
	"expect: valid, bad signature, or invalid context (empty or over 255 bytes). The other_* key only supplies the wrong fingerprint of one case. " +
	"Generated by go test ./keys -run TestKATHybridSignatures -update."

func TestKATHybridSignatures(t *testing.T) {
	var in hybridVectors
	var file []byte
	if *update {
		in.Ed25519Seed = hex.EncodeToString(vectorSeed("hybrid ed25519"))
		in.MLDSA65Seed = hex.EncodeToString(vectorSeed("hybrid ml-dsa-65"))
		in.OtherEd25519Seed = hex.EncodeToString(vectorSeed("hybrid other ed25519"))
		in.OtherMLDSA65Seed = hex.EncodeToString(vectorSeed("hybrid other ml-dsa-65"))
	} else {
		file = loadVectors(t, hybridVectorFile, &in)
		if len(in.Cases) == 0 {
			t.Fatalf("%s holds no cases", hybridVectorFile)
		}
	}
	edSeed, mlSeed := unhex(t, in.Ed25519Seed), unhex(t, in.MLDSA65Seed)
	k := newHybridKey(t, edSeed, mlSeed)
	other := newHybridKey(t, unhex(t, in.OtherEd25519Seed), unhex(t, in.OtherMLDSA65Seed))

	// The hedged case's signature is an input once made: production
	// signing cannot be replayed.
	hedged := func(context string, msg []byte) []byte {
		if !*update {
			for _, c := range in.Cases {
				if !c.Deterministic && c.Expect == expectValid {
					return unhex(t, c.Signature)
				}
			}
			t.Fatal("no hedged case in the file")
		}
		s, err := hybrid.FromSeeds(edSeed, mlSeed)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := s.Sign(context, msg)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}

	out := hybridVectors{
		Comment:          hybridComment,
		Ed25519Seed:      in.Ed25519Seed,
		MLDSA65Seed:      in.MLDSA65Seed,
		PublicKey:        hex.EncodeToString(k.pub.Bytes()),
		Fingerprint:      k.pub.Fingerprint().String(),
		OtherEd25519Seed: in.OtherEd25519Seed,
		OtherMLDSA65Seed: in.OtherMLDSA65Seed,
		OtherFingerprint: other.pub.Fingerprint().String(),
	}
	msg := []byte("a message signed by a Postern hybrid key")
	msg2 := []byte("another message")
	add := func(name, context string, message, sig []byte, det bool, expect string) {
		c := hybridCase{Name: name, Context: context, Message: hex.EncodeToString(message),
			Signature: hex.EncodeToString(sig), Deterministic: det, Expect: expect}
		if m, err := keys.SignedMessage(k.pub, context, message); err == nil {
			c.SignedMessage = hex.EncodeToString(m)
		}
		out.Cases = append(out.Cases, c)
	}
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 0x01; return b }

	good := k.sign(t, keys.ContextDeviceCertificate, msg)
	add("deterministic", keys.ContextDeviceCertificate, msg, good, true, expectValid)
	add("deterministic, empty message", keys.ContextPrekey, nil, k.sign(t, keys.ContextPrekey, nil), true, expectValid)
	long := strings.Repeat("c", keys.MaxContextSize)
	add("deterministic, 255-byte context", long, msg, k.sign(t, long, msg), true, expectValid)
	add("hedged (production)", "sealed", msg, hedged("sealed", msg), false, expectValid)

	add("Ed25519 half flipped", keys.ContextDeviceCertificate, msg, flip(good, 0), true, expectBadSignature)
	add("ML-DSA-65 half flipped", keys.ContextDeviceCertificate, msg, flip(good, ed25519.SignatureSize+100), true, expectBadSignature)
	add("wrong context", keys.ContextPrekey, msg, good, true, expectBadSignature)
	add("wrong message", keys.ContextDeviceCertificate, msg2, good, true, expectBadSignature)
	wrongFP, err := keys.SignedMessage(other.pub, keys.ContextDeviceCertificate, msg)
	if err != nil {
		t.Fatal(err)
	}
	add("signed over M' with another key's fingerprint", keys.ContextDeviceCertificate, msg, k.signRaw(t, wrongFP, keys.MLDSAContext), true, expectBadSignature)
	m, _ := keys.SignedMessage(k.pub, keys.ContextDeviceCertificate, msg)
	add("ML-DSA-65 context empty instead of postern.v1", keys.ContextDeviceCertificate, msg, k.signRaw(t, m, ""), true, expectBadSignature)
	add("both halves over the bare message, not M'", keys.ContextDeviceCertificate, msg, k.signRaw(t, msg, keys.MLDSAContext), true, expectBadSignature)
	other2 := k.sign(t, keys.ContextDeviceCertificate, msg2)
	mixed := append(bytes.Clone(good[:ed25519.SignatureSize]), other2[ed25519.SignatureSize:]...)
	add("halves valid for two different messages", keys.ContextDeviceCertificate, msg, mixed, true, expectBadSignature)
	add("Ed25519 half by another key", keys.ContextDeviceCertificate, msg,
		append(bytes.Clone(other.sign(t, keys.ContextDeviceCertificate, msg)[:ed25519.SignatureSize]), good[ed25519.SignatureSize:]...), true, expectBadSignature)
	add("truncated by one byte", keys.ContextDeviceCertificate, msg, good[:len(good)-1], true, expectBadSignature)
	add("empty context", "", msg, good, true, expectBadContext)
	add("256-byte context", strings.Repeat("c", keys.MaxContextSize+1), msg, good, true, expectBadContext)

	compareOrWrite(t, hybridVectorFile, out, file)

	// What the files say, through the production verifier.
	pub, err := keys.ParseSigningPublicKey(unhex(t, out.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if pub.Fingerprint().String() != out.Fingerprint {
		t.Fatal("fingerprint")
	}
	var valid, invalid int
	for _, c := range out.Cases {
		err := pub.Verify(c.Context, unhex(t, c.Message), unhex(t, c.Signature))
		checkExpect(t, c.Name, err, c.Expect)
		if c.Expect == expectValid {
			valid++
		} else {
			invalid++
		}
	}
	if valid < 4 || invalid < 10 {
		t.Fatalf("%d valid and %d invalid cases", valid, invalid)
	}
	// Production signing is hedged: two signatures of one message differ,
	// and neither is the deterministic one.
	prod, err := hybrid.FromSeeds(edSeed, mlSeed)
	if err != nil {
		t.Fatal(err)
	}
	a, errA := prod.Sign("sealed", msg)
	b, errB := prod.Sign("sealed", msg)
	if errA != nil || errB != nil || bytes.Equal(a, b) || bytes.Equal(a, k.sign(t, "sealed", msg)) {
		t.Fatal("production ML-DSA-65 signing is not hedged")
	}
	if bytes.Equal(hedged("sealed", msg), k.sign(t, "sealed", msg)) {
		t.Fatal("the hedged case holds a deterministic signature")
	}
	t.Logf("%s: %d valid, %d invalid cases", hybridVectorFile, valid, invalid)
}

// ---- device certificates and signed prekeys ----

type keyVector struct {
	Ed25519Seed string `json:"ed25519_seed"`
	MLDSA65Seed string `json:"mldsa65_seed"`
	PublicKey   string `json:"signing_public_key"`
	Fingerprint string `json:"fingerprint"`
	XWingSeed   string `json:"xwing_seed,omitempty"`
	XWingPublic string `json:"xwing_public_key,omitempty"`
	KEMFinger   string `json:"kem_fingerprint,omitempty"`
}

type signedObject struct {
	Created       int64  `json:"created_unix"`
	SignedPart    string `json:"signed_part"`
	SignedMessage string `json:"signed_message"`
	Signature     string `json:"signature"`
	Encoding      string `json:"encoding"`
}

type prekeyVector struct {
	ID          uint32 `json:"id"`
	OneTime     bool   `json:"one_time"`
	XWingSeed   string `json:"xwing_seed"`
	XWingPublic string `json:"xwing_public_key"`
	KEMFinger   string `json:"kem_fingerprint"`
	signedObject
}

// mutation describes an invalid object as a change to a valid one: the
// bytes at Offset are replaced by Replace, then the result is cut to
// Length bytes if Length is set.
type mutation struct {
	Name     string `json:"name"`
	Object   string `json:"object"`    // "device certificate" or "signed prekey" (the one-time prekey)
	Verifier string `json:"verify_as"` // signed prekey: "device" (default) or "identity"
	Offset   int    `json:"offset"`
	Replace  string `json:"replace"`
	Length   int    `json:"length,omitempty"`
	Expect   string `json:"expect"`
}

type certVectors struct {
	Comment           string         `json:"comment"`
	Identity          keyVector      `json:"identity"`
	Device            keyVector      `json:"device"`
	DeviceID          string         `json:"device_id"`
	Certificate       signedObject   `json:"certificate"`
	HedgedCertificate string         `json:"hedged_certificate"`
	Prekeys           []prekeyVector `json:"prekeys"`
	Invalid           []mutation     `json:"invalid"`
}

const certComment = "Postern device certificates and signed prekeys (protocol/SPEC.md section 8 \"Device certificate\", \"Signed prekey\"). " +
	"Signing keys as in hybrid-sig-v1.json; an X-Wing public key is derived from its 32-byte seed (draft-connolly-cfrg-xwing-kem), kem_fingerprint = SHA-256(\"postern.v1 kem-fingerprint\" || key); device_id = the device signing key's fingerprint. " +
	"signed_part is the encoding up to the signature; signed_message is M' for context \"device-cert\" (identity key) or \"prekey\" (device key); signature is deterministic (see hybrid-sig-v1.json), encoding = signed_part || signature. " +
	"hedged_certificate is the same certificate signed by the production (hedged) signer: it must parse, with the same signed_part. " +
	"invalid: start from the valid encoding of object, replace the bytes at offset with replace (hex), cut to length if given; parse (a signed prekey under the device key, or the identity key if verify_as says so) and expect malformed or bad signature. " +
	"Generated by go test ./keys -run TestKATDeviceCertificates -update."

func xwingPublic(t *testing.T, seed []byte) *keys.Recipient {
	t.Helper()
	kem, _, _ := keys.Suite()
	priv, err := kem.NewPrivateKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	// The stdlib (production) and circl (the draft's reference behaviour)
	// must agree on the key a seed gives.
	_, circlPub := xwing.DeriveKeyPairPacked(seed)
	if !bytes.Equal(priv.PublicKey().Bytes(), circlPub) {
		t.Fatal("crypto/hpke and circl derive different X-Wing keys")
	}
	r, err := keys.ParseRecipient(priv.PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestKATDeviceCertificates(t *testing.T) {
	var in certVectors
	var file []byte
	if *update {
		in.Identity = keyVector{Ed25519Seed: hex.EncodeToString(vectorSeed("identity ed25519")), MLDSA65Seed: hex.EncodeToString(vectorSeed("identity ml-dsa-65"))}
		in.Device = keyVector{Ed25519Seed: hex.EncodeToString(vectorSeed("device ed25519")), MLDSA65Seed: hex.EncodeToString(vectorSeed("device ml-dsa-65")),
			XWingSeed: hex.EncodeToString(vectorSeed("device x-wing"))}
		in.Certificate.Created = vectorCreated
		in.Prekeys = []prekeyVector{
			{ID: 1, OneTime: true, XWingSeed: hex.EncodeToString(vectorSeed("one-time prekey x-wing")), signedObject: signedObject{Created: vectorCreated}},
			{ID: 0x01020304, OneTime: false, XWingSeed: hex.EncodeToString(vectorSeed("last-resort prekey x-wing")), signedObject: signedObject{Created: vectorCreated + 1}},
		}
	} else {
		file = loadVectors(t, certVectorFile, &in)
		if len(in.Prekeys) == 0 || len(in.Invalid) == 0 || in.Certificate.Encoding == "" {
			t.Fatalf("%s holds no cases", certVectorFile)
		}
	}
	idSeedEd, idSeedML := unhex(t, in.Identity.Ed25519Seed), unhex(t, in.Identity.MLDSA65Seed)
	id := newHybridKey(t, idSeedEd, idSeedML)
	dev := newHybridKey(t, unhex(t, in.Device.Ed25519Seed), unhex(t, in.Device.MLDSA65Seed))
	devKEM := xwingPublic(t, unhex(t, in.Device.XWingSeed))

	out := certVectors{Comment: certComment}
	out.Identity = keyVector{Ed25519Seed: in.Identity.Ed25519Seed, MLDSA65Seed: in.Identity.MLDSA65Seed,
		PublicKey: hex.EncodeToString(id.pub.Bytes()), Fingerprint: id.pub.Fingerprint().String()}
	out.Device = keyVector{Ed25519Seed: in.Device.Ed25519Seed, MLDSA65Seed: in.Device.MLDSA65Seed,
		PublicKey: hex.EncodeToString(dev.pub.Bytes()), Fingerprint: dev.pub.Fingerprint().String(),
		XWingSeed: in.Device.XWingSeed, XWingPublic: hex.EncodeToString(devKEM.Bytes()), KEMFinger: devKEM.Fingerprint().String()}

	cert := &keys.DeviceCertificate{Identity: id.pub, Signing: dev.pub, KEM: devKEM, Created: time.Unix(in.Certificate.Created, 0).UTC()}
	part := cert.SignedPart()
	m, err := keys.SignedMessage(id.pub, keys.ContextDeviceCertificate, part)
	if err != nil {
		t.Fatal(err)
	}
	cert.Signature = id.sign(t, keys.ContextDeviceCertificate, part)
	out.Certificate = signedObject{Created: in.Certificate.Created, SignedPart: hex.EncodeToString(part),
		SignedMessage: hex.EncodeToString(m), Signature: hex.EncodeToString(cert.Signature), Encoding: hex.EncodeToString(cert.Bytes())}
	out.DeviceID = cert.DeviceID().String()
	if *update {
		s, err := hybrid.FromSeeds(idSeedEd, idSeedML)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := s.Sign(keys.ContextDeviceCertificate, part)
		if err != nil {
			t.Fatal(err)
		}
		out.HedgedCertificate = hex.EncodeToString(append(bytes.Clone(part), sig...))
	} else {
		out.HedgedCertificate = in.HedgedCertificate
	}

	var oneTime []byte
	for _, p := range in.Prekeys {
		key := xwingPublic(t, unhex(t, p.XWingSeed))
		sp := &keys.SignedPrekey{ID: p.ID, OneTime: p.OneTime, Key: key, Created: time.Unix(p.Created, 0).UTC()}
		part := sp.SignedPart()
		m, err := keys.SignedMessage(dev.pub, keys.ContextPrekey, part)
		if err != nil {
			t.Fatal(err)
		}
		sp.Signature = dev.sign(t, keys.ContextPrekey, part)
		pv := prekeyVector{ID: p.ID, OneTime: p.OneTime, XWingSeed: p.XWingSeed, XWingPublic: hex.EncodeToString(key.Bytes()),
			KEMFinger: key.Fingerprint().String(), signedObject: signedObject{Created: p.Created, SignedPart: hex.EncodeToString(part),
				SignedMessage: hex.EncodeToString(m), Signature: hex.EncodeToString(sp.Signature), Encoding: hex.EncodeToString(sp.Bytes())}}
		out.Prekeys = append(out.Prekeys, pv)
		if p.OneTime && oneTime == nil {
			oneTime = sp.Bytes()
		}
	}

	// Offsets of SPEC.md's tables.
	const (
		offCertIdentity = 2
		offCertDevice   = offCertIdentity + keys.SigningPublicKeySize
		offCertKEM      = offCertDevice + keys.SigningPublicKeySize
		offCertCreated  = offCertKEM + keys.XWingPublicKeySize
		offCertSig      = offCertCreated + 8
		offPrekeyFlags  = 6
		offPrekeyID     = 2
	)
	h := hex.EncodeToString
	out.Invalid = []mutation{
		{Name: "type tag of a signed prekey", Object: "device certificate", Offset: 0, Replace: "11", Expect: expectMalformed},
		{Name: "version 2", Object: "device certificate", Offset: 1, Replace: "02", Expect: expectMalformed},
		{Name: "created after 9999-12-31T23:59:59Z", Object: "device certificate", Offset: offCertCreated, Replace: "0000003afff44180", Expect: expectMalformed},
		{Name: "created 2^64-1", Object: "device certificate", Offset: offCertCreated, Replace: "ffffffffffffffff", Expect: expectMalformed},
		{Name: "truncated by one byte", Object: "device certificate", Length: keys.DeviceCertificateSize - 1, Expect: expectMalformed},
		{Name: "one trailing byte", Object: "device certificate", Offset: keys.DeviceCertificateSize, Replace: "00", Expect: expectMalformed},
		{Name: "X25519 half of the X-Wing key is a low-order point (zero)", Object: "device certificate", Offset: offCertKEM + keys.XWingPublicKeySize - 32, Replace: h(make([]byte, 32)), Expect: expectMalformed},
		{Name: "ML-KEM coefficient out of range", Object: "device certificate", Offset: offCertKEM, Replace: "ffff", Expect: expectMalformed},
		{Name: "created one second later", Object: "device certificate", Offset: offCertCreated + 7, Replace: h([]byte{byte(in.Certificate.Created+1) & 0xff}), Expect: expectBadSignature},
		{Name: "Ed25519 half of the signature flipped", Object: "device certificate", Offset: offCertSig, Replace: h([]byte{cert.Signature[0] ^ 1}), Expect: expectBadSignature},
		{Name: "ML-DSA-65 half of the signature flipped", Object: "device certificate", Offset: offCertSig + 64, Replace: h([]byte{cert.Signature[64] ^ 1}), Expect: expectBadSignature},
		{Name: "identity key replaced by the device key", Object: "device certificate", Offset: offCertIdentity, Replace: h(dev.pub.Bytes()), Expect: expectBadSignature},
		{Name: "flags 0x02", Object: "signed prekey", Offset: offPrekeyFlags, Replace: "02", Expect: expectMalformed},
		{Name: "one-time flag cleared", Object: "signed prekey", Offset: offPrekeyFlags, Replace: "00", Expect: expectBadSignature},
		{Name: "prekey ID changed", Object: "signed prekey", Offset: offPrekeyID, Replace: "ffffffff", Expect: expectBadSignature},
		{Name: "verified under the identity key, not the device key", Object: "signed prekey", Verifier: "identity", Expect: expectBadSignature},
		{Name: "type tag of a device certificate", Object: "signed prekey", Offset: 0, Replace: "10", Expect: expectMalformed},
	}

	compareOrWrite(t, certVectorFile, out, file)

	// The production parsers on what the file says.
	c, err := keys.ParseDeviceCertificate(unhex(t, out.Certificate.Encoding))
	if err != nil {
		t.Fatalf("certificate: %v", err)
	}
	if !bytes.Equal(c.Bytes(), unhex(t, out.Certificate.Encoding)) || h(c.SignedPart()) != out.Certificate.SignedPart ||
		c.DeviceID().String() != out.DeviceID || c.Identity.Fingerprint().String() != out.Identity.Fingerprint ||
		c.KEM.Fingerprint().String() != out.Device.KEMFinger || c.Created.Unix() != out.Certificate.Created {
		t.Fatal("certificate fields differ from the file")
	}
	hc, err := keys.ParseDeviceCertificate(unhex(t, out.HedgedCertificate))
	if err != nil || !bytes.Equal(hc.SignedPart(), c.SignedPart()) || bytes.Equal(hc.Signature, c.Signature) {
		t.Fatalf("hedged certificate: %v", err)
	}
	for _, p := range out.Prekeys {
		sp, err := keys.ParseSignedPrekey(c.Signing, unhex(t, p.Encoding))
		if err != nil {
			t.Fatalf("prekey %d: %v", p.ID, err)
		}
		if sp.ID != p.ID || sp.OneTime != p.OneTime || sp.Key.Fingerprint().String() != p.KEMFinger ||
			!bytes.Equal(sp.Bytes(), unhex(t, p.Encoding)) || sp.Created.Unix() != p.Created {
			t.Fatalf("prekey %d fields differ from the file", p.ID)
		}
	}
	for _, mu := range out.Invalid {
		var base []byte
		switch mu.Object {
		case "device certificate":
			base = unhex(t, out.Certificate.Encoding)
		case "signed prekey":
			base = bytes.Clone(oneTime)
		default:
			t.Fatalf("%s: unknown object %q", mu.Name, mu.Object)
		}
		r := unhex(t, mu.Replace)
		if n := mu.Offset + len(r); n > len(base) {
			base = append(base, make([]byte, n-len(base))...)
		}
		copy(base[mu.Offset:], r)
		if mu.Length > 0 {
			base = base[:mu.Length]
		}
		if mu.Object == "device certificate" {
			_, err = keys.ParseDeviceCertificate(base)
		} else {
			signer := c.Signing
			if mu.Verifier == "identity" {
				signer = c.Identity
			}
			_, err = keys.ParseSignedPrekey(signer, base)
		}
		checkExpect(t, mu.Object+": "+mu.Name, err, mu.Expect)
	}
	t.Logf("%s: 1 certificate, %d prekeys, %d invalid cases", certVectorFile, len(out.Prekeys), len(out.Invalid))
}
