package session

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// kdfRK is the root KDF: HKDF-SHA256 with the root key as salt and the DH
// output (|| the ML-KEM shared secret on a PQ step) as input keying material.
// It returns the new root key, the new chain key and the next header key of
// the direction whose chain this step creates.
func kdfRK(rk *[keySize]byte, dh, pq []byte) (newRK, ck, nhk [keySize]byte) {
	ikm := make([]byte, 0, len(dh)+len(pq))
	ikm = append(append(ikm, dh...), pq...)
	info := labelRatchet
	if pq != nil {
		info = labelRatchetPQ
	}
	out, err := hkdf.Key(sha256.New, ikm, rk[:], info, 3*keySize)
	if err != nil {
		panic("session: HKDF: " + err.Error()) // unreachable: 96 bytes is within limits
	}
	copy(newRK[:], out[0:32])
	copy(ck[:], out[32:64])
	copy(nhk[:], out[64:96])
	return
}

// kdfCK is the chain KDF: HMAC-SHA256 keyed by the chain key over two
// distinct constant labels.
func kdfCK(ck *[keySize]byte) (next, mk [keySize]byte) {
	h := hmac.New(sha256.New, ck[:])
	h.Write([]byte(labelMsgKey))
	h.Sum(mk[:0])
	h.Reset()
	h.Write([]byte(labelChainKey))
	h.Sum(next[:0])
	return
}

// bodyKey expands a message key into a ChaCha20-Poly1305 key and nonce.
// Each message key is used for exactly one message.
func bodyKey(mk *[keySize]byte) (key, nonce []byte) {
	out, err := hkdf.Key(sha256.New, mk[:], nil, labelMessage, chacha20poly1305.KeySize+chacha20poly1305.NonceSize)
	if err != nil {
		panic("session: HKDF: " + err.Error()) // unreachable
	}
	return out[:chacha20poly1305.KeySize], out[chacha20poly1305.KeySize:]
}

func newDHKey() (*ecdh.PrivateKey, error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, ErrRandom
	}
	return k, nil
}

// dhProbe is a fixed, public X25519 scalar used to refuse low-order points
// when a peer's public key is first accepted (see keys.ParseRecipient).
var dhProbe = sync.OnceValue(func() *ecdh.PrivateKey {
	seed := sha256.Sum256([]byte(labelDHProbe))
	k, err := ecdh.X25519().NewPrivateKey(seed[:])
	if err != nil {
		panic(err) // unreachable: any 32 bytes are an X25519 scalar
	}
	return k
})

// parseDHPublic accepts a 32-byte X25519 public key that is not a
// low-order point.
func parseDHPublic(b []byte) (*ecdh.PublicKey, bool) {
	if len(b) != DHPublicKeySize {
		return nil, false
	}
	pk, err := ecdh.X25519().NewPublicKey(b)
	if err != nil {
		return nil, false
	}
	if _, err := dhProbe().ECDH(pk); err != nil {
		return nil, false
	}
	return pk, true
}

// dh computes X25519; crypto/ecdh refuses the all-zero output that a
// low-order peer key gives, so such a key fails here.
func dh(priv *ecdh.PrivateKey, pub []byte) ([]byte, bool) {
	pk, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return nil, false
	}
	out, err := priv.ECDH(pk)
	if err != nil {
		return nil, false
	}
	return out, true
}
