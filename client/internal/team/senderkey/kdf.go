package senderkey

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/postern/postern/protocol"
)

// chainStep is the chain KDF: the message key of this iteration and the
// chain key of the next, HMAC-SHA256 keyed by the chain key over two
// distinct labels.
func chainStep(ck *[ChainKeySize]byte) (next, mk [ChainKeySize]byte) {
	h := hmac.New(sha256.New, ck[:])
	h.Write([]byte(labelMessageKey))
	h.Sum(mk[:0])
	h.Reset()
	h.Write([]byte(labelChainKey))
	h.Sum(next[:0])
	return next, mk
}

// bodyKeySize is the HKDF output split into the body's ChaCha20-Poly1305
// key and nonce.
const bodyKeySize = chacha20poly1305.KeySize + chacha20poly1305.NonceSize

// bodyAEAD derives the body's AEAD and nonce from a message key:
// HKDF-SHA256(secret = mk, salt = none, info = labelAEAD), 44 bytes.
func bodyAEAD(mk *[ChainKeySize]byte) (cipher.AEAD, [chacha20poly1305.NonceSize]byte) {
	var nonce [chacha20poly1305.NonceSize]byte
	out, err := hkdf.Key(sha256.New, mk[:], nil, labelAEAD, bodyKeySize)
	if err != nil {
		panic("senderkey: HKDF: " + err.Error()) // unreachable: 44 bytes is within limits
	}
	a, err := chacha20poly1305.New(out[:chacha20poly1305.KeySize])
	if err != nil {
		panic("senderkey: ChaCha20-Poly1305: " + err.Error()) // unreachable: the key is 32 bytes
	}
	copy(nonce[:], out[chacha20poly1305.KeySize:])
	clear(out)
	return a, nonce
}

// adSize is the associated data of a body: group ID, sender, epoch,
// iteration.
const adSize = GroupIDSize + SenderIDSize + 4 + 4

func appendAD(dst []byte, g *GroupID, sender *protocol.DeviceID, epoch, iter uint32) []byte {
	dst = append(dst, g[:]...)
	dst = append(dst, sender[:]...)
	dst = binary.BigEndian.AppendUint32(dst, epoch)
	return binary.BigEndian.AppendUint32(dst, iter)
}

// signedMessage is what a sender key's Ed25519 key signs: the label, the
// body's associated data, the body ciphertext.
func signedMessage(ad, body []byte) []byte {
	m := make([]byte, 0, len(labelSignature)+len(ad)+len(body))
	m = append(m, labelSignature...)
	m = append(m, ad...)
	return append(m, body...)
}
