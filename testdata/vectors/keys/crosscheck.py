#!/usr/bin/env python3
"""Check Postern's own known-answer vectors with a second implementation.

Reads testdata/vectors/keys/{hybrid-sig,device-cert,device-list,keyfile}-v1.json and
testdata/vectors/sealed/sealed-v1.json and checks them against the layouts of
protocol/SPEC.md sections 8 and 9, using pyca/cryptography (OpenSSL) for the
primitives: Ed25519, ML-DSA-65, ML-KEM-768, X25519, Argon2id, ChaCha20-Poly1305,
and hashlib for SHA-256, SHA3-256 and SHAKE256. Nothing here shares code with
the Go implementation. XChaCha20 (HChaCha20) and the RFC 9180 key schedule are
written out below from their specifications.

Needs Python 3.9+ and cryptography >= 47 built against OpenSSL >= 3.5 (ML-DSA,
ML-KEM, Argon2id). Run from the repository root:

    python3 testdata/vectors/keys/crosscheck.py

It prints one line per file and exits non-zero on the first disagreement.
"""

import hashlib
import hmac
import json
import os
import struct
import sys

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

HERE = os.path.dirname(os.path.abspath(__file__))
SIG_SIZE = 64 + 3309
SIGN_PK_SIZE = 32 + 1952
XWING_PK_SIZE = 1216
XWING_CT_SIZE = 1120
MAX_TIME = 253402300799


class Reject(Exception):
    """An object the checker refuses; the message is the files' outcome."""


def h(s):
    return bytes.fromhex(s)


def load(*path):
    with open(os.path.join(HERE, *path)) as f:
        return json.load(f)


def fail(msg):
    print("MISMATCH:", msg)
    sys.exit(1)


def expect(name, cond):
    if not cond:
        fail(name)


# ---- section 8: keys, fingerprints, hybrid signatures ----

def sig_fingerprint(pk):
    return hashlib.sha256(b"postern.v1 sig-fingerprint" + pk).digest()


def kem_fingerprint(pk):
    return hashlib.sha256(b"postern.v1 kem-fingerprint" + pk).digest()


def signing_public(ed_seed, ml_seed):
    ed = ed25519.Ed25519PrivateKey.from_private_bytes(ed_seed).public_key().public_bytes_raw()
    ml = mldsa.MLDSA65PrivateKey.from_seed_bytes(ml_seed).public_key().public_bytes_raw()
    return ed + ml


def signed_message(pk, context, msg):
    if not 1 <= len(context) <= 255:
        raise Reject("invalid context")
    return b"postern.v1 hybrid-sig\x00" + sig_fingerprint(pk) + bytes([len(context)]) + context + msg


def verify(pk, context, msg, sig):
    """Raises Reject with the files' outcome unless sig is valid."""
    m = signed_message(pk, context, msg)
    if len(sig) != SIG_SIZE:
        raise Reject("bad signature")
    ok = True
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(pk[:32]).verify(sig[:64], m)
    except InvalidSignature:
        ok = False
    try:
        mldsa.MLDSA65PublicKey.from_public_bytes(pk[32:]).verify(sig[64:], m, b"postern.v1")
    except InvalidSignature:
        ok = False
    if not ok:
        raise Reject("bad signature")


def outcome(f, *args):
    try:
        f(*args)
        return "valid"
    except Reject as e:
        return str(e)


def check_hybrid():
    v = load("hybrid-sig-v1.json")
    pk = signing_public(h(v["ed25519_seed"]), h(v["mldsa65_seed"]))
    expect("hybrid public key", pk.hex() == v["public_key"])
    expect("hybrid fingerprint", sig_fingerprint(pk).hex() == v["fingerprint"])
    other = signing_public(h(v["other_ed25519_seed"]), h(v["other_mldsa65_seed"]))
    expect("other fingerprint", sig_fingerprint(other).hex() == v["other_fingerprint"])
    ed = ed25519.Ed25519PrivateKey.from_private_bytes(h(v["ed25519_seed"]))
    n = 0
    for c in v["cases"]:
        ctx, msg, sig = c["context"].encode(), h(c["message"]), h(c["signature"])
        if c.get("signed_message"):
            m = signed_message(pk, ctx, msg)
            expect(c["name"] + ": M'", m.hex() == c["signed_message"])
            if c["expect"] == "valid":
                # Ed25519 is deterministic: the same bytes from OpenSSL.
                expect(c["name"] + ": Ed25519 half", ed.sign(m) == sig[:64])
        got = outcome(verify, pk, ctx, msg, sig)
        expect("%s: %s, want %s" % (c["name"], got, c["expect"]), got == c["expect"])
        n += 1
    return "%d cases" % n


# ---- X-Wing (draft-connolly-cfrg-xwing-kem) ----

XWING_LABEL = b"\\.//^\\"


def xwing_keys(seed):
    x = hashlib.shake_256(seed).digest(96)
    sk_m = mlkem.MLKEM768PrivateKey.from_seed_bytes(x[:64])
    sk_x = x25519.X25519PrivateKey.from_private_bytes(x[64:96])
    pk = sk_m.public_key().public_bytes_raw() + sk_x.public_key().public_bytes_raw()
    return sk_m, sk_x, pk


def xwing_decaps(sk_m, sk_x, pk, ct):
    ss_m = sk_m.decapsulate(ct[:1088])
    ct_x = ct[1088:1120]
    ss_x = sk_x.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x))
    return hashlib.sha3_256(ss_m + ss_x + ct_x + pk[1184:] + XWING_LABEL).digest()


def check_xwing_public(pk):
    """SPEC 8: refuse an out-of-range ML-KEM key or a low-order X25519 half."""
    if len(pk) != XWING_PK_SIZE:
        raise Reject("malformed")
    try:
        mlkem.MLKEM768PublicKey.from_public_bytes(pk[:1184])
    except ValueError:
        raise Reject("malformed")
    probe = x25519.X25519PrivateKey.from_private_bytes(hashlib.sha256(b"postern.v1 x25519 low-order probe").digest())
    try:
        probe.exchange(x25519.X25519PublicKey.from_public_bytes(pk[1184:]))
    except ValueError:  # OpenSSL refuses the all-zero output of a low-order point
        raise Reject("malformed")


# ---- device certificates and signed prekeys ----

def parse_time(b):
    t = struct.unpack(">Q", b)[0]
    if t > MAX_TIME:
        raise Reject("malformed")
    return t


def parse_cert(b):
    if len(b) != 8567 or b[0] != 0x10 or b[1] != 0x01:
        raise Reject("malformed")
    ident, dev, kem = b[2:1986], b[1986:3970], b[3970:5186]
    for k in (ident, dev):
        try:
            mldsa.MLDSA65PublicKey.from_public_bytes(k[32:])
        except ValueError:
            raise Reject("malformed")
    check_xwing_public(kem)
    parse_time(b[5186:5194])
    verify(ident, b"device-cert", b[:5194], b[5194:])
    return ident, dev, kem


def parse_prekey(device, b):
    if len(b) != 4604 or b[0] != 0x11 or b[1] != 0x01 or b[6] not in (0, 1):
        raise Reject("malformed")
    check_xwing_public(b[7:1223])
    parse_time(b[1223:1231])
    verify(device, b"prekey", b[:1231], b[1231:])


def check_certs():
    v = load("device-cert-v1.json")
    idk, dv = v["identity"], v["device"]
    ident = signing_public(h(idk["ed25519_seed"]), h(idk["mldsa65_seed"]))
    dev = signing_public(h(dv["ed25519_seed"]), h(dv["mldsa65_seed"]))
    _, _, kem = xwing_keys(h(dv["xwing_seed"]))
    expect("identity key", ident.hex() == idk["signing_public_key"] and sig_fingerprint(ident).hex() == idk["fingerprint"])
    expect("device key", dev.hex() == dv["signing_public_key"] and sig_fingerprint(dev).hex() == v["device_id"])
    expect("device X-Wing key", kem.hex() == dv["xwing_public_key"] and kem_fingerprint(kem).hex() == dv["kem_fingerprint"])
    c = v["certificate"]
    part = b"\x10\x01" + ident + dev + kem + struct.pack(">Q", c["created_unix"])
    expect("certificate signed part", part.hex() == c["signed_part"])
    expect("certificate M'", signed_message(ident, b"device-cert", part).hex() == c["signed_message"])
    expect("certificate encoding", (part + h(c["signature"])).hex() == c["encoding"])
    expect("certificate parses", outcome(parse_cert, h(c["encoding"])) == "valid")
    hedged = h(v["hedged_certificate"])
    expect("hedged certificate", hedged[:5194] == part and outcome(parse_cert, hedged) == "valid")
    one_time = None
    for p in v["prekeys"]:
        _, _, pk = xwing_keys(h(p["xwing_seed"]))
        expect("prekey key", pk.hex() == p["xwing_public_key"] and kem_fingerprint(pk).hex() == p["kem_fingerprint"])
        part = b"\x11\x01" + struct.pack(">IB", p["id"], 1 if p["one_time"] else 0) + pk + struct.pack(">Q", p["created_unix"])
        expect("prekey signed part", part.hex() == p["signed_part"])
        expect("prekey M'", signed_message(dev, b"prekey", part).hex() == p["signed_message"])
        expect("prekey encoding", (part + h(p["signature"])).hex() == p["encoding"])
        expect("prekey parses", outcome(parse_prekey, dev, h(p["encoding"])) == "valid")
        if p["one_time"] and one_time is None:
            one_time = h(p["encoding"])
    for m in v["invalid"]:
        base = bytearray(h(c["encoding"]) if m["object"] == "device certificate" else one_time)
        r = h(m["replace"])
        if m["offset"] + len(r) > len(base):
            base += bytes(m["offset"] + len(r) - len(base))
        base[m["offset"]:m["offset"] + len(r)] = r
        if m.get("length"):
            base = base[:m["length"]]
        if m["object"] == "device certificate":
            got = outcome(parse_cert, bytes(base))
        else:
            got = outcome(parse_prekey, ident if m["verify_as"] == "identity" else dev, bytes(base))
        expect("%s: %s: %s, want %s" % (m["object"], m["name"], got, m["expect"]), got == m["expect"])
    return "1 certificate, %d prekeys, %d invalid" % (len(v["prekeys"]), len(v["invalid"]))


# ---- key files: Argon2id and XChaCha20-Poly1305 ----

def _rotl(x, n):
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


def hchacha20(key, nonce16):
    """draft-irtf-cfrg-xchacha section 2.2."""
    s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    s += list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))

    def qr(a, b, c, d):
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = _rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = _rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = _rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = _rotl(s[b] ^ s[c], 7)

    for _ in range(10):
        qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15)
        qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xchacha_open(key, nonce24, ct, aad):
    return ChaCha20Poly1305(hchacha20(key, nonce24[:16])).decrypt(b"\x00" * 4 + nonce24[16:], ct, aad)


def xchacha_seal(key, nonce24, pt, aad):
    return ChaCha20Poly1305(hchacha20(key, nonce24[:16])).encrypt(b"\x00" * 4 + nonce24[16:], pt, aad)


def open_key_file(passphrase, f):
    if len(f) < 52 + 16 or f[0] != 0x30 or f[1] != 0x01 or f[2] != 0x01:
        raise Reject("unsupported or malformed")
    t, m, p = struct.unpack(">IIB", f[3:12])
    if not (1 <= t <= 16) or p < 1 or not (8 * p <= m <= 1 << 20):
        raise Reject("unsupported or malformed")
    key = Argon2id(salt=f[12:28], length=32, iterations=t, lanes=p, memory_cost=m).derive(passphrase)
    try:
        return xchacha_open(key, f[28:52], f[52:], f[:52])
    except InvalidTag:
        raise Reject("wrong passphrase")


def check_key_files():
    # HChaCha20 test vector, draft-irtf-cfrg-xchacha section 2.2.1.
    expect("HChaCha20 test vector", hchacha20(bytes(range(32)), h("000000090000004a0000000031415927")).hex()
           == "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc")
    v = load("keyfile-v1.json")
    s = v["secrets"]
    ids = h(s["identity_secret"])
    expect("identity secret layout", len(ids) == 66 and ids[:2] == b"\x20\x01")
    expect("identity fingerprint", sig_fingerprint(signing_public(ids[2:34], ids[34:66])).hex() == s["identity_fingerprint"])
    ds = h(s["device_secret"])
    expect("device secret layout", len(ds) == 8665 and ds[:2] == b"\x21\x01")
    ident, dev, kem = parse_cert(ds[98:])
    expect("device secret seeds", signing_public(ds[2:34], ds[34:66]) == dev and xwing_keys(ds[66:98])[2] == kem)
    expect("device id", sig_fingerprint(dev).hex() == s["device_id"])
    ps = h(s["prekey_secret"])
    expect("prekey secret layout", len(ps) == 6622 and ps[:2] == b"\x22\x01" and ps[34:2018] == dev)
    parse_prekey(dev, ps[2018:])
    expect("prekey seed", ps[2018 + 7:2018 + 1223] == xwing_keys(ps[2:34])[2])
    expect("prekey id and key", struct.unpack(">I", ps[2020:2024])[0] == s["prekey_id"]
           and kem_fingerprint(ps[2025:3241]).hex() == s["prekey_kem_fingerprint"])
    files = {}
    for c in v["key_files"]:
        pw = h(c["passphrase_hex"])
        expect(c["name"] + ": passphrase", pw == c["passphrase"].encode("utf-8"))
        key = Argon2id(salt=h(c["salt"]), length=32, iterations=c["time"], lanes=c["threads"],
                       memory_cost=c["memory_kib"]).derive(pw)
        expect(c["name"] + ": Argon2id key", key.hex() == c["argon2id_key"])
        header = b"\x30\x01\x01" + struct.pack(">IIB", c["time"], c["memory_kib"], c["threads"]) + h(c["salt"]) + h(c["nonce"])
        expect(c["name"] + ": header", header.hex() == c["header"])
        f = header + xchacha_seal(key, h(c["nonce"]), h(c["payload"]), header)
        expect(c["name"] + ": file", f.hex() == c["file"])
        expect(c["name"] + ": open", open_key_file(pw, f) == h(c["payload"]))
        files[c["name"]] = f
    for m in v["invalid"]:
        f = bytearray(files[m["base"]])
        r = h(m["replace"])
        f[m["offset"]:m["offset"] + len(r)] = r
        if m.get("length"):
            f = f[:m["length"]]
        got = outcome(open_key_file, m["passphrase"].encode(), bytes(f))
        expect("%s: %s, want %s" % (m["name"], got, m["expect"]), got == m["expect"])
    return "%d key files, %d invalid" % (len(v["key_files"]), len(v["invalid"]))


# ---- sealed envelopes: X-Wing, RFC 9180, ChaCha20-Poly1305 ----

SUITE_ID = b"HPKE" + struct.pack(">HHH", 0x647A, 0x0001, 0x0003)


def hkdf_extract(salt, ikm):
    return hmac.new(salt or b"\x00" * 32, ikm, hashlib.sha256).digest()


def hkdf_expand(prk, info, n):
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:n]


def labeled_extract(salt, label, ikm):
    return hkdf_extract(salt, b"HPKE-v1" + SUITE_ID + label + ikm)


def labeled_expand(prk, label, info, n):
    return hkdf_expand(prk, struct.pack(">H", n) + b"HPKE-v1" + SUITE_ID + label + info, n)


def key_schedule(shared, info):
    ctx = b"\x00" + labeled_extract(b"", b"psk_id_hash", b"") + labeled_extract(b"", b"info_hash", info)
    secret = labeled_extract(shared, b"secret", b"")
    return labeled_expand(secret, b"key", ctx, 32), labeled_expand(secret, b"base_nonce", ctx, 12)


BUCKETS = [1 << 10, 2 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10]


def open_envelope(sk_m, sk_x, pk, info, mailbox, env):
    if len(env) not in BUCKETS or env[0] != 1 or env[1] != 1 or len(env) < 2 + 1136 + 4:
        raise Reject("decrypt")
    enc = env[2:2 + XWING_CT_SIZE]
    key, nonce = key_schedule(xwing_decaps(sk_m, sk_x, pk, enc), info)
    try:
        p = ChaCha20Poly1305(key).decrypt(nonce, env[2 + XWING_CT_SIZE:], env[:2] + mailbox)
    except InvalidTag:
        raise Reject("decrypt")
    n = struct.unpack(">I", p[:4])[0]
    if n > len(p) - 4 or any(p[4 + n:]):
        raise Reject("decrypt")
    return p[4:4 + n]


def check_sealed():
    v = load("..", "sealed", "sealed-v1.json")
    ds = h(v["device_secret"])
    expect("sealed: X-Wing seed", ds[66:98].hex() == v["xwing_seed"])
    sk_m, sk_x, pk = xwing_keys(ds[66:98])
    expect("sealed: X-Wing public key", pk.hex() == v["xwing_public_key"])
    expect("sealed: X-Wing key is the certificate's", ds[98 + 3970:98 + 5186] == pk)
    info = v["info"].encode()
    expect("sealed: info", info == b"postern.v1 sealed")
    for c in v["cases"]:
        env, mb = h(c["envelope"]), h(c["mailbox"])
        expect(c["name"] + ": enc", env[2:2 + XWING_CT_SIZE].hex() == c["enc"])
        ss = xwing_decaps(sk_m, sk_x, pk, h(c["enc"]))
        expect(c["name"] + ": shared secret", ss.hex() == c["shared_secret"])
        key, nonce = key_schedule(ss, info)
        expect(c["name"] + ": key schedule", key.hex() == c["hpke_key"] and nonce.hex() == c["hpke_base_nonce"])
        expect(c["name"] + ": aad", (b"\x01\x01" + mb).hex() == c["aad"])
        content = h(c["content"])
        p = struct.pack(">I", len(content)) + content
        size = min(b for b in BUCKETS if b >= 2 + 1136 + len(p))
        p += bytes(size - 2 - 1136 - len(p))
        expect(c["name"] + ": plaintext", p.hex() == c["plaintext"] and size == c["envelope_size"] == len(env))
        expect(c["name"] + ": ciphertext", ChaCha20Poly1305(key).encrypt(nonce, p, b"\x01\x01" + mb) == env[2 + XWING_CT_SIZE:])
        expect(c["name"] + ": open", open_envelope(sk_m, sk_x, pk, info, mb, env) == content)
    for c in v["invalid"]:
        got = outcome(open_envelope, sk_m, sk_x, pk, info, h(c["mailbox"]), h(c["envelope"]))
        expect(c["name"] + ": opened", got == "decrypt")
    return "%d envelopes, %d invalid" % (len(v["cases"]), len(v["invalid"]))


# ---- device lists (section 8 "Device lists") ----

def check_relay_url(u):
    if not 1 <= len(u) <= 256 or any(not 0x21 <= c <= 0x7e for c in u):
        raise Reject("malformed")
    s = u.decode()
    for scheme in ("ws://", "wss://"):
        if s.startswith(scheme):
            rest = s[len(scheme):]
            break
    else:
        raise Reject("malformed")
    host = rest.split("/", 1)[0]
    if not host or "@" in host or "?" in s or "#" in s:
        raise Reject("malformed")


def parse_device_list(b):
    if len(b) < 2003 or b[0] != 0x12 or b[1] != 0x01:
        raise Reject("malformed")
    ident = b[2:1986]
    try:
        mldsa.MLDSA65PublicKey.from_public_bytes(ident[32:])
    except ValueError:
        raise Reject("malformed")
    version, = struct.unpack(">Q", b[1986:1994])
    created = parse_time(b[1994:2002])
    n = b[2002]
    if version == 0 or not 1 <= n <= 8:
        raise Reject("malformed")
    off, prev, devices = 2003, None, []
    for _ in range(n):
        if off + 42 > len(b):
            raise Reject("malformed")
        dev = b[off:off + 32]
        linked = parse_time(b[off + 32:off + 40])
        ln, = struct.unpack(">H", b[off + 40:off + 42])
        relay = b[off + 42:off + 42 + ln]
        if len(relay) != ln:
            raise Reject("malformed")
        check_relay_url(relay)
        if (prev is not None and dev <= prev) or linked > created:
            raise Reject("malformed")
        prev = dev
        devices.append((dev.hex(), linked, relay.decode()))
        off += 42 + ln
    if off + 2 > len(b) or struct.unpack(">H", b[off:off + 2])[0] != SIG_SIZE or len(b) != off + 2 + SIG_SIZE:
        raise Reject("malformed")
    verify(ident, b"device-list", b[:off], b[off + 2:])
    return ident, version, created, devices


def check_device_list():
    v = load("device-list-v1.json")
    idk = v["identity"]
    ident = signing_public(h(idk["ed25519_seed"]), h(idk["mldsa65_seed"]))
    part = b"\x12\x01" + ident + struct.pack(">QQB", v["version"], v["created_unix"], len(v["devices"]))
    for d in v["devices"]:
        r = d["relay"].encode()
        part += h(d["device_id"]) + struct.pack(">QH", d["linked_unix"], len(r)) + r
    expect("device list signed part", part.hex() == v["signed_part"])
    expect("device list M'", signed_message(ident, b"device-list", part).hex() == v["signed_message"])
    enc = part + struct.pack(">H", SIG_SIZE) + h(v["signature"])
    expect("device list encoding", enc.hex() == v["encoding"])
    expect("device list hash", hashlib.sha256(b"postern.v1 device-list" + enc).hexdigest() == v["hash"])
    got = parse_device_list(enc)
    want = [(d["device_id"], d["linked_unix"], d["relay"]) for d in v["devices"]]
    expect("device list parses", got[0] == ident and got[1] == v["version"] and got[3] == want)
    for m in v["invalid"]:
        base = bytearray(enc)
        r = h(m["replace"])
        if m["offset"] + len(r) > len(base):
            base += bytes(m["offset"] + len(r) - len(base))
        base[m["offset"]:m["offset"] + len(r)] = r
        if m.get("length"):
            base = base[:m["length"]]
        got = outcome(parse_device_list, bytes(base))
        expect("device list: %s: %s, want %s" % (m["name"], got, m["expect"]), got == m["expect"])
    return "%d devices, %d invalid" % (len(v["devices"]), len(v["invalid"]))


if __name__ == "__main__":
    for name, f in [("hybrid-sig-v1.json", check_hybrid), ("device-cert-v1.json", check_certs),
                    ("device-list-v1.json", check_device_list),
                    ("keyfile-v1.json", check_key_files), ("sealed-v1.json", check_sealed)]:
        print("%s: ok (%s)" % (name, f()))
