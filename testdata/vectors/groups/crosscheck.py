#!/usr/bin/env python3
"""Re-derives senderkey-v1.json (protocol/SPEC.md section 15.1) with an
implementation that shares no code with the Go client: the Python standard
library (hmac, hashlib) for the chain and HKDF, and the `cryptography`
package for ChaCha20-Poly1305 and Ed25519. XChaCha20-Poly1305 is built from
ChaCha20-Poly1305 and HChaCha20 (draft-irtf-cfrg-xchacha), written out here
and checked against that draft's HChaCha20 test vector. It checks every
distribution, every chain, message and body key, body nonce, and every
message byte; not the encoded local states.
Run: python3 crosscheck.py"""
import hashlib, hmac, json, os, struct

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

P = b"postern.v1 "
M32 = 0xFFFFFFFF


def hkdf(ikm, info, n):
    prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out, i = out + t, i + 1
    return out[:n]


def rotl(v, c):
    return ((v << c) & M32) | (v >> (32 - c))


def qr(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & M32; s[d] = rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & M32; s[b] = rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & M32; s[d] = rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & M32; s[b] = rotl(s[b] ^ s[c], 7)


def hchacha20(key, n16):
    s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574] + list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", n16))
    for _ in range(10):
        qr(s, 0, 4, 8, 12); qr(s, 1, 5, 9, 13); qr(s, 2, 6, 10, 14); qr(s, 3, 7, 11, 15)
        qr(s, 0, 5, 10, 15); qr(s, 1, 6, 11, 12); qr(s, 2, 7, 8, 13); qr(s, 3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


# draft-irtf-cfrg-xchacha-03, section 2.2.1
assert hchacha20(bytes(range(32)), bytes.fromhex("000000090000004a0000000031415927")).hex() == \
    "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc"


def xseal(key, nonce, pt, ad):
    return ChaCha20Poly1305(hchacha20(key, nonce[:16])).encrypt(b"\0" * 4 + nonce[16:], pt, ad)


u32 = lambda v: struct.pack(">I", v)
here = os.path.dirname(os.path.abspath(__file__))
v = json.load(open(os.path.join(here, "senderkey-v1.json")))
group, hk = bytes.fromhex(v["group_id"]), bytes.fromhex(v["header_key"])
keys = []
for k in v["keys"]:
    sk = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(k["signing_seed"]))
    pub = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert pub.hex() == k["public_key"]
    ck = bytes.fromhex(k["chain_key"])
    dist = b"\x50\x01" + group + u32(k["epoch"]) + u32(0) + ck + pub + u32(k["prev_end"])
    assert dist.hex() == k["distribution"], "distribution"
    keys.append({"sk": sk, "ck": ck, "i": 0, "epoch": k["epoch"], "dev": bytes.fromhex(k["device_id"])})
# Key 2 is key 0 rotated after its messages: it declares key 0's end.
assert v["keys"][2]["prev_end"] == sum(1 for m in v["messages"] if m["key"] == 0)

for n, m in enumerate(v["messages"]):
    k = keys[m["key"]]
    assert m["iteration"] == k["i"] and m["chain_key"] == k["ck"].hex()
    mk = hmac.new(k["ck"], P + b"group-message-key", hashlib.sha256).digest()
    nxt = hmac.new(k["ck"], P + b"group-chain-key", hashlib.sha256).digest()
    okm = hkdf(mk, P + b"group-aead", 44)
    assert (mk.hex(), nxt.hex(), okm[:32].hex(), okm[32:].hex()) == \
        (m["message_key"], m["next_chain_key"], m["body_key"], m["body_nonce"]), f"message {n}: keys"
    ad = group + k["dev"] + u32(k["epoch"]) + u32(k["i"])
    body = ChaCha20Poly1305(okm[:32]).encrypt(okm[32:], m["plaintext"].encode(), ad)
    sig = k["sk"].sign(P + b"group-message-signature" + ad + body)
    inner = ad[16:] + body + sig
    nonce = bytes.fromhex(m["header_nonce"])
    msg = b"\x01" + nonce + xseal(hk, nonce, inner, b"\x01")
    assert msg.hex() == m["message"], f"message {n}: bytes"
    k["ck"], k["i"] = nxt, k["i"] + 1
print(f"senderkey-v1.json: {len(v['keys'])} distributions and {len(v['messages'])} messages match")
