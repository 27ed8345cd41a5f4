#!/usr/bin/env python3
"""Re-derives invitation-v2.json (protocol/SPEC.md section 9),
link-v1.json (section 13) and backup-v1.json (section 14) with the Python standard library only (hmac,
hashlib, base64): an implementation that shares no code with the Go client.
The standard library has no (X)ChaCha20-Poly1305, so for the link exchange
it checks every key, AAD, plaintext body and the transcript hash, and the
framing of the sealed messages, not the ciphertexts themselves (nor the
HPKE layer: no ML-KEM either); for backups
the recovery key text (Damm check digits), the keys, the key check, the
header and the first chunk's plaintext, not the chunk ciphertexts.
Run: python3 crosscheck.py"""
import base64, hashlib, hmac, json, os

def hkdf(ikm, info, n=32):
    prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()  # salt empty = HashLen zeros
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()[:n]

here = os.path.dirname(os.path.abspath(__file__))
vs = json.load(open(os.path.join(here, "invitation-v2.json")))
for v in vs:
    sec, mb = bytes.fromhex(v["secret"]), bytes.fromhex(v["mailbox"])
    cap = hkdf(sec, b"postern.v1 invitation capability" + mb)
    ik = hkdf(sec, b"postern.v1 invitation introduction-key" + mb)
    assert cap.hex() == v["capability"], v["comment"]
    assert hashlib.sha256(b"postern.v1 capability" + cap).hexdigest() == v["capability_hash"], v["comment"]
    assert ik.hex() == v["introduction_key"], v["comment"]
    r = v["relay"].encode()
    tr = (b"postern.v1 invitation introduction\0" + len(r).to_bytes(2, "big") + r + mb
          + bytes.fromhex(v["inviter_identity"]) + bytes.fromhex(v["introducer_identity"])
          + bytes.fromhex(v["introducer_device"]) + bytes.fromhex(v["reply_mailbox"])
          + bytes.fromhex(v["reply_capability"]))
    assert tr.hex() == v["mac_transcript"], v["comment"]
    assert hmac.new(ik, tr, hashlib.sha256).hexdigest() == v["mac"], v["comment"]
    p = len(r).to_bytes(2, "big") + r + mb + sec + bytes.fromhex(v["inviter_identity"])
    p += hashlib.sha256(p).digest()[:4]
    assert "postern-invite:2:" + base64.urlsafe_b64encode(p).decode().rstrip("=") == v["code"], v["comment"]
print("invitation-v2.json: %d vectors agree" % len(vs))

u16 = lambda n: n.to_bytes(2, "big")
u32 = lambda n: n.to_bytes(4, "big")
u64 = lambda n: n.to_bytes(8, "big")
H = bytes.fromhex
lv = json.load(open(os.path.join(here, "link-v1.json")))
for v in lv["codes"]:
    r, mb, sec = v["relay"].encode(), H(v["mailbox"]), H(v["secret"])
    ctx = u16(len(r)) + r + mb
    cap = hkdf(sec, b"postern.v1 link capability" + ctx)
    assert cap.hex() == v["capability"], v["comment"]
    assert hashlib.sha256(b"postern.v1 capability" + cap).hexdigest() == v["capability_hash"], v["comment"]
    assert hkdf(sec, b"postern.v1 link request-key" + ctx).hex() == v["request_key"], v["comment"]
    assert hkdf(sec, b"postern.v1 link response-key" + ctx).hex() == v["response_key"], v["comment"]
    p = ctx + sec + u64(v["expires_unix"])
    p += hashlib.sha256(p).digest()[:4]
    assert "postern-link:1:" + base64.urlsafe_b64encode(p).decode().rstrip("=") == v["code"], v["comment"]
c, x = lv["codes"][0], lv["exchange"]
r = c["relay"].encode()
ctx = u16(len(r)) + r + H(c["mailbox"])
assert H(x["request_aad"]) == b"postern.v1 link request\0\x40\x01" + ctx + u64(c["expires_unix"])
name = x["device_name"].encode()
body = (H(x["device_signing_public_key"]) + H(x["device_xwing_public_key"]) + H(x["reply_public_key"])
        + bytes([len(name)]) + name
        + H(x["reply_mailbox"]) + H(x["reply_capability"]))
assert H(x["request_body"]) == body
req = H(x["request"])
assert req[:2] == b"\x40\x01" and req[2:26] == H(x["request_nonce"]) and len(req) == 26 + len(body) + 16
tr = hashlib.sha256(b"postern.v1 link transcript\0" + ctx + u64(c["expires_unix"]) + req).digest()
assert tr.hex() == x["transcript"]
assert H(x["response_aad"]) == b"postern.v1 link response\0\x41\x01" + tr
pn, dl, ct = x["person_name"].encode(), H(x["device_list"]), H(x["contacts"])
plain = x["history_plain_size"]
n = max(1, -(-plain // 65536))  # data chunks; Padme (section 12.2) rounds n up
if n > 2:
    e = n.bit_length() - 1
    m = (1 << (e - e.bit_length())) - 1
    n = (n + m) & ~m
body = (H(x["identity_secret"]) + H(x["device_certificate"]) + bytes([len(pn)]) + pn + u16(len(dl)) + dl
        + u32(len(ct)) + ct + b"\x01" + H(x["history_blob_id"]) + H(x["history_key"]) + H(x["history_sha256"])
        + u64(plain) + u64(n * 65552))
assert H(x["response_body"]) == body
resp = H(x["response"])
inner = H(x["response_inner"])  # HPKE (X-Wing) to the reply key: 1120-byte enc, body, 16-byte tag
assert len(inner) == 1120 + len(body) + 16
assert resp[:2] == b"\x41\x01" and resp[2:26] == H(x["response_nonce"]) and len(resp) == 26 + len(inner) + 16
print("link-v1.json: %d codes and the exchange agree" % len(lv["codes"]))

DAMM = ["0317598642", "7092154863", "4206871359", "1750983426", "6123045978",
        "3674209581", "5869720134", "8945362017", "9438617205", "2581436790"]
def damm(digits):
    c = 0
    for d in digits:
        c = int(DAMM[c][int(d)])
    return c

def hkdf_salted(ikm, salt, info, n=32):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()[:n]

bv = json.load(open(os.path.join(here, "backup-v1.json")))
for k in bv["recovery_keys"]:
    key = H(k["key"])
    groups = []
    for g in range(16):
        d = "%05d" % int.from_bytes(key[2 * g:2 * g + 2], "big")
        groups.append(d + str(damm("%02d" % (g + 1) + d)))
    assert "\n".join(" ".join(groups[i:i + 4]) for i in range(0, 16, 4)) == k["text"], k["key"]
def pattern(seed, n):
    return bytes((seed ^ (i & 0xff) ^ ((i >> 8) & 0xff)) for i in range(n))
for f in bv["files"]:
    key, salt = H(f["key"]), H(f["salt"])
    signed = b"postern-backup\x01\x00" + u32(65536) + salt
    ck = hkdf_salted(key, salt, b"postern.v1 backup key-check")
    assert ck.hex() == f["check_key"], f["comment"]
    kc = hmac.new(ck, signed, hashlib.sha256).digest()
    assert kc.hex() == f["key_check"], f["comment"]
    assert hkdf_salted(key, salt, b"postern.v1 backup\0" + signed).hex() == f["payload_key"], f["comment"]
    header = signed + kc + hashlib.sha256(signed + kc).digest()[:8]
    assert header.hex() == f["header"], f["comment"]
    recs = [(r["type"], H(r["data"])) for r in f.get("records", [])]
    recs += [(r["type"], pattern(r["seed"], r["size"])) for r in f.get("large_records", [])]
    plain = b"".join(bytes([t]) + u32(len(d)) + d for t, d in recs)
    assert hashlib.sha256(plain[:65536]).hexdigest() == f["first_chunk_plaintext_sha256"], f["comment"]
    chunks = max(1, -(-len(plain) // 65536))
    assert f["chunks"] == chunks and f["file_size"] == 92 + len(plain) + 16 * chunks, f["comment"]
    if "file" in f:
        assert H(f["file"])[:92] == header and hashlib.sha256(H(f["file"])).hexdigest() == f["file_sha256"], f["comment"]
print("backup-v1.json: %d recovery keys and %d files agree" % (len(bv["recovery_keys"]), len(bv["files"])))
