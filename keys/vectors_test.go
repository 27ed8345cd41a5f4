package keys

// Known-answer tests for every primitive this module builds on. They test
// the libraries, not our code: if an upgrade of Go, x/crypto or circl
// changed behaviour on any of these cases, we want to know before shipping.

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/mlkem"
	"crypto/sha256"
	"path/filepath"
	"testing"

	"github.com/cloudflare/circl/kem/xwing"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/postern/postern/keys/internal/vectors"
)

const vectorDir = "../testdata/vectors"

func wycheproofPath(name string) string { return filepath.Join(vectorDir, "wycheproof", name) }

type xwingVector struct {
	Seed, Sk, Pk, Eseed, Ct, Ss string
}

func TestXWingDraftVectors(t *testing.T) {
	var vs []xwingVector
	vectors.LoadJSON(t, filepath.Join(vectorDir, "xwing", "test-vectors.json"), &vs)
	if len(vs) == 0 {
		t.Fatal("xwing/test-vectors.json holds no test cases")
	}
	kem, kdf, aead := Suite()
	if kem.ID() != 0x647A {
		t.Fatalf("KEM id 0x%04x, want 0x647A", kem.ID())
	}
	for i, v := range vs {
		seed, sk, pk := vectors.Hex(t, v.Seed), vectors.Hex(t, v.Sk), vectors.Hex(t, v.Pk)
		eseed, ct, ss := vectors.Hex(t, v.Eseed), vectors.Hex(t, v.Ct), vectors.Hex(t, v.Ss)
		if len(seed) != XWingSeedSize || len(pk) != XWingPublicKeySize || len(ct) != XWingCiphertextSize || len(eseed) != xwing.EncapsulationSeedSize {
			t.Fatalf("vector %d: unexpected field sizes", i)
		}
		// circl, the reference implementation's behaviour.
		gotSk, gotPk := xwing.DeriveKeyPairPacked(seed)
		if !bytes.Equal(gotSk, sk) || !bytes.Equal(gotPk, pk) {
			t.Errorf("vector %d: circl seed -> keypair mismatch", i)
		}
		gotSs, gotCt, err := xwing.Encapsulate(pk, eseed)
		if err != nil || !bytes.Equal(gotCt, ct) || !bytes.Equal(gotSs, ss) {
			t.Errorf("vector %d: circl Encapsulate mismatch (err %v)", i, err)
		}
		if got := xwing.Decapsulate(ct, sk); !bytes.Equal(got, ss) {
			t.Errorf("vector %d: circl Decapsulate mismatch", i)
		}
		// Go's crypto/hpke, what production code uses: same seed, same key.
		priv, err := kem.NewPrivateKey(seed)
		if err != nil {
			t.Fatalf("vector %d: stdlib NewPrivateKey: %v", i, err)
		}
		if !bytes.Equal(priv.PublicKey().Bytes(), pk) {
			t.Errorf("vector %d: stdlib seed -> public key differs from the vector", i)
		}
		// Seal with stdlib to the key circl derived (through its bytes),
		// open with the stdlib key from the seed.
		r, err := ParseRecipient(gotPk)
		if err != nil {
			t.Fatalf("vector %d: ParseRecipient(circl pk): %v", i, err)
		}
		sealed, err := r.Seal([]byte("info"), []byte("aad"), []byte("hello"))
		if err != nil {
			t.Fatal(err)
		}
		rcpt, err := hpke.NewRecipient(sealed[:XWingCiphertextSize], priv, kdf, aead, []byte("info"))
		if err != nil {
			t.Fatalf("vector %d: NewRecipient: %v", i, err)
		}
		if pt, err := rcpt.Open([]byte("aad"), sealed[XWingCiphertextSize:]); err != nil || string(pt) != "hello" {
			t.Errorf("vector %d: open of a stdlib seal failed: %v", i, err)
		}
		if len(sealed) != SealOverhead+len("hello") {
			t.Errorf("vector %d: sealed length %d", i, len(sealed))
		}
	}
	t.Logf("xwing: %d vectors", len(vs))
}

type xdhGroup struct {
	Curve string `json:"curve"`
	Tests []struct {
		vectors.Case
		Public, Private, Shared string
	} `json:"tests"`
}

func TestWycheproofX25519(t *testing.T) {
	const file = "x25519_test.json"
	w := vectors.LoadWycheproof[xdhGroup](t, wycheproofPath(file))
	var y vectors.Tally
	for _, g := range w.TestGroups {
		if g.Curve != "curve25519" {
			t.Fatalf("unexpected curve %q", g.Curve)
		}
		for _, tc := range g.Tests {
			priv, err := ecdh.X25519().NewPrivateKey(vectors.Hex(t, tc.Private))
			ok := err == nil
			var shared []byte
			if ok {
				pub, err := ecdh.X25519().NewPublicKey(vectors.Hex(t, tc.Public))
				ok = err == nil
				if ok {
					shared, err = priv.ECDH(pub)
					ok = err == nil
				}
			}
			if ok && !bytes.Equal(shared, vectors.Hex(t, tc.Shared)) {
				t.Errorf("tcId %d: shared secret mismatch", tc.TcID)
			}
			y.Check(t, file, tc.Case, ok)
		}
	}
	y.Done(t, file)
}

type aeadGroup struct {
	IvSize, KeySize, TagSize int
	Tests                    []struct {
		vectors.Case
		Key, Iv, Aad, Msg, Ct, Tag string
	} `json:"tests"`
}

func testAEAD(t *testing.T, file string, x bool) {
	w := vectors.LoadWycheproof[aeadGroup](t, wycheproofPath(file))
	var y vectors.Tally
	for _, g := range w.TestGroups {
		for _, tc := range g.Tests {
			key, iv, aad := vectors.Hex(t, tc.Key), vectors.Hex(t, tc.Iv), vectors.Hex(t, tc.Aad)
			msg, ct := vectors.Hex(t, tc.Msg), append(vectors.Hex(t, tc.Ct), vectors.Hex(t, tc.Tag)...)
			var (
				a interface {
					NonceSize() int
					Seal(dst, nonce, plaintext, additionalData []byte) []byte
					Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
				}
				err error
			)
			if x {
				a, err = chacha20poly1305.NewX(key)
			} else {
				a, err = chacha20poly1305.New(key)
			}
			// The libraries panic on a wrong nonce size: that is a
			// rejection done by the caller, so check it first.
			ok := err == nil && len(iv) == a.NonceSize()
			if ok {
				pt, err := a.Open(nil, iv, ct, aad)
				ok = err == nil && bytes.Equal(pt, msg)
				if tc.Result == "valid" && !bytes.Equal(a.Seal(nil, iv, msg, aad), ct) {
					t.Errorf("%s tcId %d: Seal mismatch", file, tc.TcID)
				}
			}
			y.Check(t, file, tc.Case, ok)
		}
	}
	y.Done(t, file)
}

func TestWycheproofChaCha20Poly1305(t *testing.T)  { testAEAD(t, "chacha20_poly1305_test.json", false) }
func TestWycheproofXChaCha20Poly1305(t *testing.T) { testAEAD(t, "xchacha20_poly1305_test.json", true) }

type eddsaGroup struct {
	PublicKey struct {
		Curve string `json:"curve"`
		Pk    string `json:"pk"`
	} `json:"publicKey"`
	Tests []struct {
		vectors.Case
		Msg, Sig string
	} `json:"tests"`
}

func TestWycheproofEd25519(t *testing.T) {
	const file = "ed25519_test.json"
	w := vectors.LoadWycheproof[eddsaGroup](t, wycheproofPath(file))
	var y vectors.Tally
	for _, g := range w.TestGroups {
		pk := vectors.Hex(t, g.PublicKey.Pk)
		for _, tc := range g.Tests {
			// ed25519.Verify panics on a wrong key size; reject first.
			ok := len(pk) == ed25519.PublicKeySize &&
				ed25519.Verify(pk, vectors.Hex(t, tc.Msg), vectors.Hex(t, tc.Sig))
			y.Check(t, file, tc.Case, ok)
		}
	}
	y.Done(t, file)
}

type hkdfGroup struct {
	Tests []struct {
		vectors.Case
		Ikm, Salt, Info, Okm string
		Size                 int
	} `json:"tests"`
}

func TestWycheproofHKDFSHA256(t *testing.T) {
	const file = "hkdf_sha256_test.json"
	w := vectors.LoadWycheproof[hkdfGroup](t, wycheproofPath(file))
	var y vectors.Tally
	for _, g := range w.TestGroups {
		for _, tc := range g.Tests {
			okm, err := hkdf.Key(sha256.New, vectors.Hex(t, tc.Ikm), vectors.Hex(t, tc.Salt), string(vectors.Hex(t, tc.Info)), tc.Size)
			ok := err == nil && bytes.Equal(okm, vectors.Hex(t, tc.Okm))
			y.Check(t, file, tc.Case, ok)
		}
	}
	y.Done(t, file)
}

type mlkemGroup struct {
	ParameterSet string `json:"parameterSet"`
	Tests        []struct {
		vectors.Case
		Seed, Ek, C, K string
	} `json:"tests"`
}

// ML-KEM-768 through crypto/mlkem, the implementation under crypto/hpke's
// X-Wing. The schema's cases: seed (d || z) -> ek, and decapsulation of c
// (including implicit-rejection cases, which are "valid" with the
// rejection key as K); invalid cases have a wrong-length seed or c.
func TestWycheproofMLKEM768(t *testing.T) {
	const file = "mlkem_768_test.json"
	w := vectors.LoadWycheproof[mlkemGroup](t, wycheproofPath(file))
	var y vectors.Tally
	for _, g := range w.TestGroups {
		if g.ParameterSet != "ML-KEM-768" {
			t.Fatalf("unexpected parameter set %q", g.ParameterSet)
		}
		for _, tc := range g.Tests {
			dk, err := mlkem.NewDecapsulationKey768(vectors.Hex(t, tc.Seed))
			ok := err == nil
			if ok && tc.Ek != "" && !bytes.Equal(dk.EncapsulationKey().Bytes(), vectors.Hex(t, tc.Ek)) {
				t.Errorf("tcId %d: ek mismatch", tc.TcID)
				ok = false
			}
			if ok {
				k, err := dk.Decapsulate(vectors.Hex(t, tc.C))
				ok = err == nil && bytes.Equal(k, vectors.Hex(t, tc.K))
			}
			y.Check(t, file, tc.Case, ok)
		}
	}
	y.Done(t, file)
}

type mldsaVerifyGroup struct {
	PublicKey string `json:"publicKey"`
	Tests     []struct {
		vectors.Case
		Msg, Ctx, Sig string
	} `json:"tests"`
}

func TestWycheproofMLDSA65Verify(t *testing.T) {
	const file = "mldsa_65_verify_test.json"
	w := vectors.LoadWycheproof[mldsaVerifyGroup](t, wycheproofPath(file))
	var y vectors.Tally
	for _, g := range w.TestGroups {
		var pk mldsa65.PublicKey
		pkOK := pk.UnmarshalBinary(vectors.Hex(t, g.PublicKey)) == nil
		for _, tc := range g.Tests {
			ok := pkOK && mldsa65.Verify(&pk, vectors.Hex(t, tc.Msg), vectors.Hex(t, tc.Ctx), vectors.Hex(t, tc.Sig))
			y.Check(t, file, tc.Case, ok)
		}
	}
	y.Done(t, file)
}

type mldsaSignGroup struct {
	PrivateSeed string `json:"privateSeed"`
	PublicKey   string `json:"publicKey"`
	Tests       []struct {
		vectors.Case
		Ctx, Sig, Rnd string
		Msg           *string // nil when only mu is given

	} `json:"tests"`
}

// ML-DSA-65 key generation from a seed and deterministic signing, through
// circl's public API. Cases that API cannot express are counted as not
// applicable (logged, never silently dropped): external-mu signing (flag
// Internal: only mu is given), a caller-chosen rnd, and seeds of the wrong
// length (circl takes a *[32]byte, so a wrong length cannot reach it).
func TestWycheproofMLDSA65SignSeed(t *testing.T) {
	const file = "mldsa_65_sign_seed_test.json"
	w := vectors.LoadWycheproof[mldsaSignGroup](t, wycheproofPath(file))
	var y vectors.Tally
	var internal, rnd, badSeed int
	for _, g := range w.TestGroups {
		seed := vectors.Hex(t, g.PrivateSeed)
		for _, tc := range g.Tests {
			switch {
			case len(seed) != mldsa65.SeedSize:
				badSeed++
				continue
			case tc.HasFlag("Internal") || tc.Msg == nil:
				internal++
				continue
			case tc.Rnd != "":
				rnd++
				continue
			}
			var s [mldsa65.SeedSize]byte
			copy(s[:], seed)
			pk, sk := mldsa65.NewKeyFromSeed(&s)
			if !bytes.Equal(pk.Bytes(), vectors.Hex(t, g.PublicKey)) {
				t.Errorf("tcId %d: public key from seed mismatch", tc.TcID)
			}
			sig := make([]byte, mldsa65.SignatureSize)
			err := mldsa65.SignTo(sk, vectors.Hex(t, *tc.Msg), vectors.Hex(t, tc.Ctx), false, sig)
			ok := err == nil && bytes.Equal(sig, vectors.Hex(t, tc.Sig))
			y.Check(t, file, tc.Case, ok)
		}
	}
	y.NotApplicable = internal + rnd + badSeed
	t.Logf("%s: not applicable through circl's API: %d external-mu (Internal), %d caller rnd, %d malformed seed",
		file, internal, rnd, badSeed)
	y.Done(t, file)
}
