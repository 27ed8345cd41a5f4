#!/usr/bin/env python3
"""Re-derives invitation-v2.json from protocol/SPEC.md section 9 with the
Python standard library only (hmac, hashlib, base64): an implementation
that shares no code with the Go client. Run: python3 crosscheck.py"""
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
