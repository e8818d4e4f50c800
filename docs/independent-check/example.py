#!/usr/bin/env python3
"""An independent implementation of sealed-bid/1, of the log's section
chains and of the draw's seed, written from docs/PROTOCOL.md alone (Python and the `cryptography`
package; no kaibiao code). It re-derives every value of the document's worked
examples (§11, §7.4, §14.2) and exits non-zero on any difference. .ci/run runs it.
"""
import hashlib, hmac, json, re, struct, sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

doc = (Path(__file__).parent.parent / "PROTOCOL.md").read_text()
example = doc[doc.index("## 11. Worked example"):]
v = dict(re.findall(r"^([A-Za-z0-9_ ]+?) += (.+)$", example, re.M))
chains = doc[doc.index("### 7.4 Section chains"):doc.index("## 8. Receipts")]
v.update(re.findall(r"^(chain [0-9]|chain leaf [0-9][a-z ]*|leaf [0-9] hash) += (.+)$", chains, re.M))
draw_doc = doc[doc.index("#### The seed nobody steers"):doc.index("### 14.3 Signed statements")]
v.update(re.findall(r"^((?:supervisor|centre|platform seed|draw seed)[a-z ]*?) += ([0-9a-f]+)$", draw_doc, re.M))


def seed(t):
    return hashlib.sha256(t.encode()).digest()


def lp(b):
    return struct.pack(">I", len(b)) + b


def context(label, sid, bid, rev):
    return lp(label.encode()) + lp(sid.encode()) + lp(bid.encode()) + struct.pack(">I", rev)


def extract(salt, ikm):
    return hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()


def expand(prk, info, n):
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out, i = out + t, i + 1
    return out[:n]


def raw(pub):
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def gmul(a, b):
    r = 0
    while b:
        if b & 1:
            r ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11D
        b >>= 1
    return r


KEM = b"KEM" + struct.pack(">H", 0x20)
SUITE = b"HPKE" + struct.pack(">HHH", 0x20, 1, 2)


def lext(suite, salt, label, ikm):
    return extract(salt, b"HPKE-v1" + suite + label + ikm)


def lexp(suite, prk, label, info, n):
    return expand(prk, struct.pack(">H", n) + b"HPKE-v1" + suite + label + info, n)


def hpke_seal(pk_r, info, pt, ikm_e):
    sk_e = X25519PrivateKey.from_private_bytes(lexp(KEM, lext(KEM, b"", b"dkp_prk", ikm_e), b"sk", b"", 32))
    enc = raw(sk_e.public_key())
    dh = sk_e.exchange(X25519PublicKey.from_public_bytes(pk_r))
    shared = lexp(KEM, lext(KEM, b"", b"eae_prk", dh), b"shared_secret", enc + pk_r, 32)
    ksc = b"\x00" + lext(SUITE, b"", b"psk_id_hash", b"") + lext(SUITE, b"", b"info_hash", info)
    secret = lext(SUITE, shared, b"secret", b"")
    key, nonce = lexp(SUITE, secret, b"key", ksc, 32), lexp(SUITE, secret, b"base_nonce", ksc, 12)
    return enc, AESGCM(key).encrypt(nonce, pt, b"")


def check(name, got):
    if got != v[name]:
        sys.exit(f"MISMATCH {name}:\n  document {v[name]}\n  computed {got}")
    print(f"ok  {name}")


sid, bid, rev = v["section_id"], v["bid_id"], int(v["revision"])
signing = Ed25519PrivateKey.from_private_bytes(seed("example bidder signing key"))
check("bidder signing public key", raw(signing.public_key()).hex())
bidder_x = X25519PrivateKey.from_private_bytes(seed("example bidder encryption key"))
check("bidder encryption public key", raw(bidder_x.public_key()).hex())
bmk = seed("example bid master key")
check("BMK", bmk.hex())

prk = extract(b"kaibiao/sealed-bid/1/bmk", bmk)
keys = {}
for part in ("summary", "documents"):
    keys[part] = expand(prk, context("kaibiao/sealed-bid/1/part-key", sid, bid, rev) + lp(part.encode()), 32)
    check(f"part key {part}", keys[part].hex())
    commitment = hashlib.sha256(
        context("kaibiao/sealed-bid/1/key-commitment", sid, bid, rev) + lp(part.encode()) + keys[part]
    ).hexdigest()
    check(f"key commitment {part}", commitment)

nonce = bytes(7) + struct.pack(">I", 0) + b"\x01"
check("nonce chunk 0 last", nonce.hex())
summary = json.loads(v["summary plaintext"])
body = json.dumps(summary["summary"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
sig = signing.sign(b"kaibiao/sealed-bid/1/summary\x00" + body).hex()
if sig != summary["signature"]:
    sys.exit("MISMATCH summary signature")
print("ok  summary signature")
check("summary ciphertext", AESGCM(keys["summary"]).encrypt(nonce, v["summary plaintext"].encode(), None).hex())
check("documents ciphertext", AESGCM(keys["documents"]).encrypt(nonce, b"bid documents", None).hex())

for x in (1, 2, 3):
    share = bytes([x]) + bytes(gmul(i + 1, x) ^ bmk[i] for i in range(32))
    check(f"share {x}", share.hex())
    if x == 1:
        c1 = X25519PrivateKey.from_private_bytes(seed("example custodian 1"))
        info = context("kaibiao/sealed-bid/1/share", sid, bid, rev) + struct.pack(">I", 1)
        enc, ct = hpke_seal(raw(c1.public_key()), info, share, b"example ephemeral 1")
        check("custodian 1 enc", enc.hex())
        check("custodian 1 ct", ct.hex())
enc, ct = hpke_seal(raw(bidder_x.public_key()), context("kaibiao/sealed-bid/1/bidder-copy", sid, bid, rev), bmk,
                    b"example ephemeral bidder")
check("bidder copy enc", enc.hex())
check("bidder copy ct", ct.hex())

canonical = v["canonical envelope"].encode()
if json.dumps(json.loads(canonical), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() != canonical:
    sys.exit("the canonical envelope is not canonical")
check("envelope hash", hashlib.sha256(canonical).hexdigest())
check("envelope signature", signing.sign(b"kaibiao/sealed-bid/1/envelope\x00" + canonical).hex())
# §7.4: the section chain of two leaves.
chain_key = seed("example chain key")


def chain_tag(n, prev):
    m = lp(b"kaibiao/log-chain/v1") + struct.pack(">Q", n) + prev
    return hmac.new(chain_key, m, hashlib.sha256).hexdigest()


def jcs(o):
    # The leaves here hold ASCII strings and integers only: sorted keys and
    # no whitespace are then exactly RFC 8785.
    return json.dumps(o, sort_keys=True, separators=(",", ":")).encode()


first = json.loads(v["chain leaf 1"])
tag1 = first.pop("chain")
check("chain 1", chain_tag(1, bytes(32)))
if tag1 != v["chain 1"]:
    sys.exit("the example leaf does not carry its chain tag")
first["chain"] = tag1
h1 = hashlib.sha256(b"\x00" + jcs(first)).digest()
check("leaf 1 hash", h1.hex())
check("chain 2", chain_tag(2, h1))
# §14.2: the draw's seed from the platform's and two contributors' values.
section = "sec_00000000000000000000000000000001"
values = []
for who, party, name in [("supervisor", "supervisor", "example supervisor"),
                         ("centre", "centre:GZ-GGZY", "example centre GZ-GGZY")]:
    k = Ed25519PrivateKey.from_private_bytes(seed(name))
    check(f"{who} key", raw(k.public_key()).hex())
    secret = b"kaibiao/draw-contribution-secret/v1\x00"
    value = hashlib.sha256(secret + k.sign(secret + section.encode())).digest()
    check(f"{who} value", value.hex())
    commitment = hashlib.sha256(b"kaibiao/draw-contribution-value/v1\x00" + value).hexdigest()
    check(f"{who} commitment", commitment)
    statement = jcs({"section_id": section, "party": party, "commitment": commitment})
    check(f"{who} signature", k.sign(b"kaibiao/draw-contribution/v1\x00" + statement).hex())
    values.append(value)
platform = seed("example platform seed")
check("platform seed commitment", hashlib.sha256(b"kaibiao/draw-seed/v1\x00" + platform).hexdigest())
mix = b"kaibiao/draw-seed-mix/v1\x00" + platform
check("draw seed", hashlib.sha256(mix + values[0] + values[1]).hexdigest())
check("draw seed centre withheld", hashlib.sha256(mix + values[0] + bytes(32)).hexdigest())
print("all values of the worked examples recomputed independently")
