#!/usr/bin/env python3
"""Re-derives queue-v1.json (protocol/SPEC.md section 15.6) with an
implementation that shares no code with the Go client: the Python standard
library (hmac, hashlib) for the claim token and HKDF, and the
`cryptography` package for ChaCha20-Poly1305, with XChaCha20-Poly1305 built
from it and HChaCha20 (draft-irtf-cfrg-xchacha), written out here and
checked against that draft's HChaCha20 test vector. It checks every token,
the value key, every value's 128-byte plaintext from its fields, the
associated data and sealed bytes, the state-change body and the receipts.
Run: python3 queue-crosscheck.py"""
import hashlib, hmac, json, os, struct

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

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


STATES = {"new": 1, "claimed": 2, "assigned": 3, "resolved": 4, "archived": 5}
here = os.path.dirname(os.path.abspath(__file__))
v = json.load(open(os.path.join(here, "queue-v1.json")))
ck, tk, space = bytes.fromhex(v["claim_key"]), bytes.fromhex(v["team_key"]), bytes.fromhex(v["space_id"])
epoch = v["team_key_epoch"]
vk = hkdf(tk, P + b"queue-value-key", 32)
assert vk.hex() == v["value_key"], "value key"

entries = []
for i, x in enumerate(v["values"]):
    conv = bytes.fromhex(x["conversation_id"])
    token = hmac.new(ck, P + b"queue-claim-token" + conv, hashlib.sha256).digest()
    assert token.hex() == x["token"], "token"
    f = x["value"]
    pt = bytes([STATES[f["state"]], 1 if f["urgent"] else 0]) + bytes.fromhex(f["owner"]) + \
        bytes.fromhex(f["assigned_by"]) + struct.pack(">QQQI", f["opened"], f["first_response"], f["resolved"], f["reopens"])
    pt += b"\0" * (128 - len(pt))
    assert pt.hex() == x["plaintext"], "plaintext"
    ad = b"\x01" + struct.pack(">I", epoch) + space + token
    assert ad.hex() == x["ad"], "ad"
    nonce = bytes.fromhex(x["nonce"])
    sealed = b"\x01" + struct.pack(">I", epoch) + nonce + xseal(vk, nonce, pt, ad)
    assert len(sealed) == 173 and sealed.hex() == x["sealed"], "sealed"
    entries.append((conv, i + 1, sealed))

entries.sort()
change = b"\x60\x01" + struct.pack(">H", len(entries)) + b"".join(c + struct.pack(">Q", n) + s for c, n, s in entries)
assert change.hex() == v["change"], "change"

for r in v["receipts"]:
    ids = b"".join(bytes.fromhex(m) for m in r["message_ids"])
    if r["for_staff"]:
        body = b"\x61\x01\x02" + bytes.fromhex(r["conversation_id"]) + bytes.fromhex(r["reader"])
    else:
        body = b"\x61\x01\x01"
    body += bytes([len(r["message_ids"])]) + ids
    assert body.hex() == r["encoding"], "receipt"

print("queue-v1.json: %d values, the change and %d receipts re-derived" % (len(v["values"]), len(v["receipts"])))
