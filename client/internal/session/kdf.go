package session

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding"
	"sync"
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
// distinct constant labels. It returns the next chain key and the message
// key.
//
// Six SHA-256 blocks, the fewest two HMACs under one key take: the inner
// and outer pad blocks are hashed once each, and the state after each is
// saved and restored once for the second label (what crypto/hmac's Reset
// does), without allocating.
func kdfCK(ck *[keySize]byte) (next, mk [keySize]byte) {
	h := sha256.New()
	ba, ok1 := h.(encoding.BinaryAppender)
	bu, ok2 := h.(encoding.BinaryUnmarshaler)
	if !ok1 || !ok2 {
		// A SHA-256 without state export (not the standard library's):
		// plain HMAC, same output.
		return kdfCKSlow(ck)
	}
	pad := ipadBlock
	subtle.XORBytes(pad[:keySize], pad[:keySize], ck[:])
	var buf [128]byte // a saved SHA-256 state (108 bytes)
	var innerMK, innerCK [sha256.Size]byte

	// Inner hashes: H(ipad || label) for both labels.
	h.Write(pad[:])
	st, _ := ba.AppendBinary(buf[:0])
	h.Write(labelMsgKeyBytes)
	h.Sum(innerMK[:0])
	if bu.UnmarshalBinary(st) != nil {
		panic("session: SHA-256 state") // unreachable: the state comes from the same hash
	}
	h.Write(labelChainKeyBytes)
	h.Sum(innerCK[:0])

	// Outer hashes: H(opad || inner).
	subtle.XORBytes(pad[:], pad[:], ipadToOpad[:])
	h.Reset()
	h.Write(pad[:])
	clear(pad[:])
	st, _ = ba.AppendBinary(buf[:0])
	h.Write(innerMK[:])
	h.Sum(mk[:0])
	if bu.UnmarshalBinary(st) != nil {
		panic("session: SHA-256 state") // unreachable
	}
	h.Write(innerCK[:])
	h.Sum(next[:0])
	clear(buf[:])
	clear(innerMK[:])
	clear(innerCK[:])
	return
}

// The labels as bytes, so that writing them to the hash copies nothing,
// and HMAC's pad blocks (RFC 2104): ipad, and what turns ipad into opad.
var (
	ipadBlock  = padBlock(0x36)
	ipadToOpad = padBlock(0x36 ^ 0x5c)

	labelMsgKeyBytes   = []byte(labelMsgKey)
	labelChainKeyBytes = []byte(labelChainKey)
)

func padBlock(b byte) (p [sha256.BlockSize]byte) {
	for i := range p {
		p[i] = b
	}
	return p
}

func kdfCKSlow(ck *[keySize]byte) (next, mk [keySize]byte) {
	h := hmac.New(sha256.New, ck[:])
	h.Write([]byte(labelMsgKey))
	h.Sum(mk[:0])
	h.Reset()
	h.Write([]byte(labelChainKey))
	h.Sum(next[:0])
	return
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
