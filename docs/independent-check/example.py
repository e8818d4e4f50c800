#!/usr/bin/env python3
"""An independent implementation of sealed-bid/1, of the log's section
chains, of the opening, of the draw and its seed and of the evaluation's
arithmetic, written from docs/PROTOCOL.md alone (Python and the `cryptography`
package; no kaibiao code). It re-derives every value of the document's worked
examples (§11, §7.4, §12.8, §14.1, §14.2, §14.7) and exits non-zero on any
difference. .ci/run runs it.
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


def hpke_context(dh, enc, pk_r, info):
    """RFC 9180 base mode: the AEAD key and nonce from the DH output."""
    shared = lexp(KEM, lext(KEM, b"", b"eae_prk", dh), b"shared_secret", enc + pk_r, 32)
    ksc = b"\x00" + lext(SUITE, b"", b"psk_id_hash", b"") + lext(SUITE, b"", b"info_hash", info)
    secret = lext(SUITE, shared, b"secret", b"")
    return AESGCM(lexp(SUITE, secret, b"key", ksc, 32)), lexp(SUITE, secret, b"base_nonce", ksc, 12)


def hpke_seal(pk_r, info, pt, ikm_e):
    sk_e = X25519PrivateKey.from_private_bytes(lexp(KEM, lext(KEM, b"", b"dkp_prk", ikm_e), b"sk", b"", 32))
    enc = raw(sk_e.public_key())
    aead, nonce = hpke_context(sk_e.exchange(X25519PublicKey.from_public_bytes(pk_r)), enc, pk_r, info)
    return enc, aead.encrypt(nonce, pt, b"")


def part_of(start, end):
    return doc[doc.index(start):doc.index(end) if end else len(doc)]


def shown_in(text):
    return dict(re.findall(r"^([A-Za-z0-9_ ]+?) = (.+)$", text, re.M))


def check(name, got, shown=None):
    shown = v if shown is None else shown
    if got != shown[name]:
        sys.exit(f"MISMATCH {name}:\n  document {shown[name]}\n  computed {got}")
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


# §12.8: the opening of §11's bid by custodians 1 and 3.
op = shown_in(part_of("### 12.8 Worked example of an opening", "## 13. The opening room"))


def hpke_open(sk_r, enc, info, ct):
    pk_r = raw(sk_r.public_key())
    aead, nonce = hpke_context(sk_r.exchange(X25519PublicKey.from_public_bytes(enc)), enc, pk_r, info)
    return aead.decrypt(nonce, ct, b"")


def ginv(a):
    r = 1
    for _ in range(254):
        r = gmul(r, a)
    return r


def jcs_text(o):
    # JCS for objects of strings (any Unicode), integers, booleans and null.
    return json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


env = json.loads(v["canonical envelope"])
deadline = 1798794000000
released = {1: deadline + 60_000, 3: deadline + 95_000}
shares, record_releases = {}, []
for pos, at in released.items():
    identity = Ed25519PrivateKey.from_private_bytes(seed(f"example custodian identity {pos}"))
    check(f"custodian {pos} identity key", raw(identity.public_key()).hex(), op)
    section_secret = seed(f"example custodian {pos}")
    sk = X25519PrivateKey.from_private_bytes(section_secret)
    custodian = "usr_" + "0" * 30 + f"{pos:02d}"
    release = {"format": "kaibiao-key-release/1", "section_id": sid, "custodian": custodian, "position": pos,
               "public_key": raw(sk.public_key()).hex(), "secret_key": section_secret.hex(),
               "identity_key": raw(identity.public_key()).hex(), "released_at_ms": at}
    rsig = identity.sign(b"kaibiao/opening/v1/key-release\x00" + jcs_text(release)).hex()
    check(f"key release {pos} signature", rsig, op)
    check(f"key release {pos} hash",
          hashlib.sha256(jcs_text({"release": release, "signature": rsig})).hexdigest(), op)
    r = next(r for r in env["recipients"] if r["kind"] == "custodian" and r["position"] == pos)
    info = context("kaibiao/sealed-bid/1/share", sid, bid, rev) + struct.pack(">I", pos)
    share = hpke_open(sk, bytes.fromhex(r["enc"]), info, bytes.fromhex(r["ct"]))
    shares[share[0]] = share[1:]
    record_releases.append({"position": pos, "custodian": custodian, "released_at_ms": at})
# Lagrange interpolation at 0 over GF(2^8)/0x11d.
rebuilt = bytearray(32)
for xi, yi in shares.items():
    li = 1
    for xj in shares:
        if xj != xi:
            li = gmul(li, gmul(xj, ginv(xj ^ xi)))
    for i in range(32):
        rebuilt[i] ^= gmul(yi[i], li)
if bytes(rebuilt) != bmk:
    sys.exit("MISMATCH the custodians' shares do not rebuild the BMK")
print("ok  BMK rebuilt from shares 1 and 3")
opened = json.loads(AESGCM(keys["summary"]).decrypt(nonce, bytes.fromhex(v["summary ciphertext"]), None))
if raw(signing.public_key()).hex() != env["signer_key"]:
    sys.exit("the envelope's signer is not the bidder's key")
envelope_hash = hashlib.sha256(canonical).hexdigest()
root = hashlib.sha256(b"\x00" + bytes.fromhex(envelope_hash)).hexdigest()
check("manifest root", root, op)
window_started = deadline + 2_000
announced = deadline + 96_500
record = {
    "format": "kaibiao-opening-record/1", "section_id": sid, "section_code": "KB-2027-001-01",
    "section_name": "示例标段", "project_name": "示例项目", "params_hash": env["params_hash"],
    "deadline_ms": deadline, "manifest_root": root, "decryption_mode": "custodians",
    "window_started_at_ms": window_started, "window_ends_at_ms": window_started + 1_800_000,
    "summary_fields": [{"key": "price", "label": "投标报价（元）", "kind": "money", "required": True}],
    "key_releases": record_releases,
    "bids": [{"envelope_hash": envelope_hash, "bidder": env["bidder"], "bidder_name": "示例建设有限公司",
              "bid_id": bid, "revision": rev, "status": "decrypted", "fault": None, "reason": None,
              "via": "custodians", "summary": opened["summary"]["fields"], "settled_at_ms": deadline + 96_000}],
    "outcome": "announced", "announced_at_ms": announced,
}
check("opening record", jcs_text(record).decode(), op)
record_hash = hashlib.sha256(jcs_text(record)).hexdigest()
check("record hash", record_hash, op)
confirmation = {"bidder": env["bidder"], "format": "kaibiao-opening-confirmation/1", "record_hash": record_hash,
                "section_id": sid}
csig = signing.sign(b"kaibiao/opening/v1/confirmation\x00" + jcs_text(confirmation)).hex()
check("confirmation signature", csig, op)
platform_key = Ed25519PrivateKey.from_private_bytes(seed("example platform key"))
check("platform key", raw(platform_key.public_key()).hex(), op)
closing = {
    "format": "kaibiao-opening-closing/1", "section_id": sid, "record_hash": record_hash,
    "confirmations": [{"bidder": env["bidder"], "signer_key": env["signer_key"], "signature": csig,
                       "confirmed_at_ms": announced + 60_000}],
    "objections": [], "no_response": [], "incidents": [],
    "closed_by": "usr_" + "0" * 30 + "21", "closed_at_ms": announced + 600_000,
}
check("closing statement", jcs_text(closing).decode(), op)
check("closing hash", hashlib.sha256(jcs_text(closing)).hexdigest(), op)
check("closing signature", platform_key.sign(b"kaibiao/opening/v1/closing\x00" + jcs_text(closing)).hex(), op)
supervisor = Ed25519PrivateKey.from_private_bytes(seed("example supervisor"))
check("countersignature", supervisor.sign(b"kaibiao/opening/v1/countersignature\x00" + jcs_text(closing)).hex(), op)

# §14.7: the draw over a pool of thirteen experts and the evaluation's arithmetic.
ev = shown_in(part_of("### 14.7 Worked example of an evaluation", None))
TENDERER = "914403001234567890"
BIDDERS = [("A", "91440300MA5ALPHA01", "9000000.00"), ("B", "91440300MA5BRAVO02", "9500000.00"),
           ("C", "91440300MA5CHRLI03", "10000000.00"), ("D", "91440300MA5DELTA04", "11000000.00"),
           ("E", "91440300MA5ECHOO05", "8000000.00")]
person = hashlib.sha256(b"kaibiao/party/v1\x00" + "bidder-e@example.com".strip().upper().encode()).hexdigest()
check("person digest", person, ev)


def expert(eid, specialties, employer, orgs=(), people=()):
    return {"expert_id": eid, "centre": "GZ-GGZY" if eid.startswith("GZ") else "SZ-GGZY",
            "specialties": sorted(set(specialties)), "employer": employer,
            "related_orgs": sorted(set(orgs)), "related_people": sorted(set(people))}


experts = sorted([
    expert("GZ-0001", ["A01"], "91440100EMPLOYER01"), expert("GZ-0002", ["A01"], TENDERER),
    expert("GZ-0003", ["A01", "B02"], "91440100EMPLOYER03"),
    expert("GZ-0004", ["B02"], "91440100EMPLOYER04", people=[person]),
    expert("GZ-0005", ["B02"], "91440100EMPLOYER05"), expert("SZ-0001", ["A01"], "91440300EMPLOYER11"),
    expert("SZ-0002", ["A01"], "91440300EMPLOYER12", orgs=[BIDDERS[1][1]]),
    expert("SZ-0003", ["B02"], "91440300EMPLOYER13"),
    expert("SZ-0004", ["A01"], "91440300EMPLOYER14", orgs=[TENDERER]),
    expert("SZ-0005", ["B02"], BIDDERS[2][1]), expert("SZ-0006", ["C03"], TENDERER),
    expert("SZ-0007", ["B02", "A01"], "91440300EMPLOYER17"), expert("SZ-0008", ["B02"], "91440300EMPLOYER18"),
], key=lambda e: e["expert_id"])
snapshot = {"experts": experts}
check("snapshot", jcs_text(snapshot).decode(), ev)
snapshot_hash = hashlib.sha256(jcs_text(snapshot)).hexdigest()
check("snapshot hash", snapshot_hash, ev)
org = lambda letter: "org_" + "0" * 31 + letter.lower()
parties = {"tenderer": TENDERER, "bidders": [b[1] for b in BIDDERS],
           "bidder_ids": {org(b[0]): b[1] for b in BIDDERS}, "bidder_people": [person]}
check("parties", jcs_text(parties).decode(), ev)
check("parties hash", hashlib.sha256(jcs_text(parties)).hexdigest(), ev)

draw_seed = bytes.fromhex(v["draw seed"])
requirements = [("A01", 3, 1), ("B02", 2, 1)]
centres = {"GZ-GGZY", "SZ-GGZY"}


def conflict(e):
    if e["employer"] == parties["tenderer"]:
        return "employed_by_tenderer", parties["tenderer"]
    for b in parties["bidders"]:
        if b == e["employer"]:
            return "employed_by_bidder", b
    if parties["tenderer"] in e["related_orgs"]:
        return "related_to_tenderer", parties["tenderer"]
    for b in parties["bidders"]:
        if b in e["related_orgs"]:
            return "related_to_bidder", b
    for d in parties["bidder_people"]:
        if d in e["related_people"]:
            return "related_to_bidder_person", d
    return None


ticket = lambda eid: hashlib.sha256(b"kaibiao/draw/v1\x00" + draw_seed + snapshot_hash.encode() + eid.encode()).digest()
order = sorted(((ticket(e["expert_id"]), e) for e in experts if e["centre"] in centres),
               key=lambda te: (te[0], te[1]["expert_id"]))
wanted = {r[0] for r in requirements}
skipped, conflicted = [], set()
for _, e in order:
    if wanted & set(e["specialties"]) and conflict(e):
        kind, party = conflict(e)
        conflicted.add(e["expert_id"])
        skipped.append({"expert_id": e["expert_id"], "kind": kind, "party": party})
taken, members, reserves = set(), [], []
for specialty, count, spare in requirements:
    got = []
    for t, e in order:
        if len(got) == count + spare:
            break
        if e["expert_id"] in taken or specialty not in e["specialties"] or e["expert_id"] in conflicted:
            continue
        taken.add(e["expert_id"])
        got.append({"expert_id": e["expert_id"], "specialty": specialty, "centre": e["centre"], "ticket": t.hex()})
    if len(got) < count + spare:
        sys.exit(f"the example's pool is short of {specialty}")
    members, reserves = members + got[:count], reserves + got[count:]
draw = {"snapshot_hash": snapshot_hash, "members": members, "reserves": reserves, "skipped": skipped}
check("draw", jcs_text(draw).decode(), ev)

k_candidates = [9500, 9700, 10000]  # ten-thousandths
n = int.from_bytes(hashlib.sha256(b"kaibiao/k-coefficient/v1\x00" + draw_seed).digest()[:8], "big")
k = k_candidates[n % len(k_candidates)]
check("k", f"{k // 10000}.{k % 10000:04d}", ev)


def half_up(num, den):
    return (2 * num + den) // (2 * den)


def units(text):
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def show(u):
    return f"{u // 100}.{u % 100:02d}"


panel = [m["expert_id"] for m in members]
SCORES = {"A": [(30, 15), (32, 16), (31, 15), (29, 14), (33, 17)],
          "B": [(35, 18), (34, 17), (36, 18), (35, 18), (20, 10)],
          "C": [(28, 12), (27, 13), (29, 12), (30, 13), (28, 12)],
          "D": [(38, 19), (37, 19), (38, 18), (39, 19), (37, 18)]}
passes = {letter: len(panel) - (3 if letter == "E" else 0) for letter, _, _ in BIDDERS}
qualified = [(i, letter, units(price)) for i, (letter, _, price) in enumerate(BIDDERS)
             if passes[letter] * 2 > len(panel)]
check("qualification", ", ".join(f"{l} {passes[l]}/{len(panel) - passes[l]}" for l, _, _ in BIDDERS), ev)
prices = sorted(p for _, _, p in qualified)
trim = 1
kept = prices[trim:len(prices) - trim] if len(prices) > 2 * trim else prices
benchmark = half_up(half_up(sum(kept), len(kept)) * k, 10000)
check("benchmark", show(benchmark), ev)


def median(xs):
    xs = sorted(xs)
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else half_up(xs[m - 1] + xs[m], 2)


results, outliers = [], []
for order_i, letter, price in qualified:
    per = 100 if price >= benchmark else 50  # hundredths of a point per 1 %
    price_score = max(4000 - half_up(per * abs(price - benchmark) * 100, benchmark), 0)
    totals = [(t + b) * 100 for t, b in SCORES[letter]]
    med = median(totals)
    outliers += [(i + 1, letter, t, med) for i, t in enumerate(totals) if abs(t - med) > 1000]
    ts = sorted(totals)
    ts = ts[1:-1] if len(ts) >= 5 and len(ts) >= 3 else ts
    panel_score = half_up(sum(ts), len(ts))
    results.append((letter, price, order_i, price_score, totals, panel_score, panel_score + price_score))
results.sort(key=lambda r: (-r[6], r[1], r[2]))
for letter, _, _, price_score, totals, panel_score, final in results:
    check(f"price score {letter}", show(price_score), ev)
    check(f"totals {letter}", ", ".join(show(t) for t in totals), ev)
    check(f"panel score {letter}", show(panel_score), ev)
    check(f"final score {letter}", show(final), ev)
check("ranking", ", ".join(r[0] for r in results), ev)
check("outliers", ", ".join(f"member {m} on {l} ({show(t)} against {show(md)})" for m, l, t, md in outliers), ev)

pass_key = Ed25519PrivateKey.from_private_bytes(seed("example expert pass key"))
check("pass key", raw(pass_key.public_key()).hex(), ev)
statement = {"section_id": sid, "expert_id": panel[0], "bid": "a" * 64, "item": "tech", "points": show(3000)}
check("score statement", jcs_text(statement).decode(), ev)
check("score signature", pass_key.sign(b"kaibiao/evaluation-score/v1\x00" + jcs_text(statement)).hex(), ev)
# §14.1: a centre's registration, signed by the centre itself.
reg_doc = doc[doc.index("### 14.1 Centres and passes"):doc.index("### 14.2 The draw")]
reg = dict(re.findall(r"^(centre [a-z ]+?) = (.+)$", reg_doc, re.M))
centre_key = Ed25519PrivateKey.from_private_bytes(seed("example centre GZ-GGZY"))
centre_pub = raw(centre_key.public_key())
registration = {"format": "kaibiao-centre/2", "code": "GZ-GGZY",
                "name": "广州公共资源交易中心", "public_key": centre_pub.hex()}
check("centre registration statement", jcs_text(registration).decode(), reg)
check("centre registration hash", hashlib.sha256(jcs_text(registration)).hexdigest(), reg)
check("centre registration signature",
      centre_key.sign(b"kaibiao/centre-registration/v1\x00" + jcs_text(registration)).hex(), reg)
check("centre fingerprint", hashlib.sha256(centre_pub).hexdigest(), reg)
print("all values of the worked examples recomputed independently")
