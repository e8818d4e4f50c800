//! The published test vectors (tests/vectors/, copied from ../shared/vectors
//! with their provenance in its README): RFC 8785 JCS, RFC 9180 HPKE,
//! RFC 6962/9162 Merkle trees, RFC 8032 Ed25519, and GF(256) Shamir as
//! blahaj does it.

use std::path::PathBuf;

use kaibiao::crypto::merkle::{self, Hash, InMemory};
use kaibiao::crypto::{hpke, jcs, shamir, x25519};
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn json(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(dir().join(name)).unwrap()).unwrap()
}

fn h(s: &Value) -> Vec<u8> {
    hex::decode(s.as_str().unwrap()).unwrap()
}

fn h32(s: &Value) -> [u8; 32] {
    h(s).try_into().unwrap()
}

#[test]
fn jcs_rfc8785_reference_files() {
    let mut n = 0;
    for entry in std::fs::read_dir(dir().join("jcs-rfc8785/input")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let input: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let expected = std::fs::read(dir().join("jcs-rfc8785/output").join(&name)).unwrap();
        let got = jcs::canonicalize(&input).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "{name}"
        );
        let outhex = std::fs::read_to_string(
            dir()
                .join("jcs-rfc8785/outhex")
                .join(name.replace(".json", ".txt")),
        )
        .unwrap();
        let bytes = hex::decode(outhex.split_whitespace().collect::<String>()).unwrap();
        assert_eq!(got, bytes, "{name} (hex)");
        n += 1;
    }
    assert_eq!(n, 7);
}

#[test]
fn jcs_es6_number_serialisation_first_10000() {
    let text =
        std::fs::read_to_string(dir().join("jcs-rfc8785/es6-numbers-first10000.txt")).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let (bits, expected) = line.split_once(',').unwrap();
        let x = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
        if !x.is_finite() {
            continue;
        }
        assert_eq!(jcs::es6_number(x).unwrap(), expected, "bits {bits}");
        n += 1;
    }
    assert!(n >= 9_990, "{n}");
}

#[test]
fn hpke_rfc9180_x25519_sha256_aes256gcm_base_and_auth() {
    let vectors = json("hpke-rfc9180-x25519-hkdfsha256-aes256gcm.json");
    let vs = vectors.as_array().unwrap();
    assert_eq!(vs.len(), 2);
    for v in vs {
        assert_eq!(
            (
                v["kem_id"].as_u64(),
                v["kdf_id"].as_u64(),
                v["aead_id"].as_u64()
            ),
            (Some(32), Some(1), Some(2))
        );
        let mode = v["mode"].as_u64().unwrap() as u8;
        let sk_r = hpke::derive_key_pair(&h(&v["ikmR"]));
        assert_eq!(*sk_r.to_bytes(), h32(&v["skRm"]), "DeriveKeyPair(ikmR)");
        assert_eq!(sk_r.public_key(), h32(&v["pkRm"]));
        let sk_e = hpke::derive_key_pair(&h(&v["ikmE"]));
        assert_eq!(*sk_e.to_bytes(), h32(&v["skEm"]));
        let sender = (mode == hpke::MODE_AUTH).then(|| {
            let sk_s = hpke::derive_key_pair(&h(&v["ikmS"]));
            assert_eq!(sk_s.public_key(), h32(&v["pkSm"]));
            sk_s
        });
        let info = h(&v["info"]);
        let hpke::Sender {
            enc,
            context: mut sctx,
            schedule: sched,
            shared_secret: shared,
        } = hpke::setup_sender(&h32(&v["pkRm"]), &info, Some(sk_e), sender.as_ref()).unwrap();
        assert_eq!(enc.to_vec(), h(&v["enc"]));
        assert_eq!(shared.as_slice(), h(&v["shared_secret"]).as_slice());
        assert_eq!(sched.key_schedule_context, h(&v["key_schedule_context"]));
        assert_eq!(sched.secret.to_vec(), h(&v["secret"]));
        assert_eq!(sctx.key(), h(&v["key"]).as_slice());
        assert_eq!(sctx.base_nonce(), h(&v["base_nonce"]).as_slice());
        let sender_pk = sender.as_ref().map(|s| s.public_key());
        let mut rctx = hpke::setup_receiver(&enc, &sk_r, &info, sender_pk.as_ref()).unwrap();
        let encs = v["encryptions"].as_array().unwrap();
        assert_eq!(encs.len(), 257);
        for (i, e) in encs.iter().enumerate() {
            let ct = sctx.seal(&h(&e["aad"]), &h(&e["pt"])).unwrap();
            assert_eq!(ct, h(&e["ct"]), "mode {mode} encryption {i}");
            let pt = rctx.open(&h(&e["aad"]), &ct).unwrap();
            assert_eq!(pt.as_slice(), h(&e["pt"]).as_slice());
        }
        for x in v["exports"].as_array().unwrap() {
            let got = sctx.export(
                &h(&x["exporter_context"]),
                x["L"].as_u64().unwrap() as usize,
            );
            assert_eq!(got.as_slice(), h(&x["exported_value"]).as_slice());
        }
    }
    // A tampered ciphertext does not open.
    let sk = x25519::SecretKey::generate();
    let (enc, mut ct) = hpke::seal_base(&sk.public_key(), b"info", b"aad", b"share").unwrap();
    assert_eq!(
        hpke::open_base(&enc, &sk, b"info", b"aad", &ct)
            .unwrap()
            .as_slice(),
        b"share"
    );
    assert!(hpke::open_base(&enc, &sk, b"other info", b"aad", &ct).is_err());
    ct[0] ^= 1;
    assert!(hpke::open_base(&enc, &sk, b"info", b"aad", &ct).is_err());
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array().unwrap().iter().map(h32).collect()
}

#[test]
fn merkle_rfc6962_roots_proofs_and_probes() {
    let m = json("merkle-rfc6962.json");
    let leaves: Vec<Hash> = m["leaves_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| merkle::leaf_hash(&h(l)))
        .collect();
    assert_eq!(leaves, hashes(&m["leaf_hashes"]));
    for r in m["roots"].as_array().unwrap() {
        let n = r["tree_size"].as_u64().unwrap() as usize;
        assert_eq!(merkle::root(&leaves[..n]), h32(&r["root"]), "root of {n}");
    }
    for key in ["inclusion_proofs_source", "inclusion_proofs_computed"] {
        for p in m[key].as_array().unwrap() {
            let (i, n) = (
                p["leaf_index"].as_u64().unwrap(),
                p["tree_size"].as_u64().unwrap(),
            );
            let proof = hashes(&p["proof"]);
            assert_eq!(
                merkle::inclusion_proof(&mut InMemory(&leaves[..n as usize]), i, n).unwrap(),
                proof,
                "{key} {i}/{n}"
            );
            merkle::verify_inclusion(i, n, &h32(&p["leaf_hash"]), &proof, &h32(&p["root"]))
                .unwrap();
        }
    }
    for key in ["consistency_proofs_source", "consistency_proofs_computed"] {
        for p in m[key].as_array().unwrap() {
            let (a, b) = (p["size1"].as_u64().unwrap(), p["size2"].as_u64().unwrap());
            let proof = hashes(&p["proof"]);
            assert_eq!(
                merkle::consistency_proof(&mut InMemory(&leaves[..b as usize]), a, b).unwrap(),
                proof,
                "{key} {a}->{b}"
            );
            merkle::verify_consistency(a, b, &h32(&p["root1"]), &h32(&p["root2"]), &proof).unwrap();
        }
    }
    let mut probes = 0;
    // Probes may carry malformed hashes (wrong lengths): those must fail too.
    let maybe = |v: &Value| -> Option<Hash> { h(v).try_into().ok() };
    let maybe_all =
        |v: &Value| -> Option<Vec<Hash>> { v.as_array().unwrap().iter().map(maybe).collect() };
    for p in m["probes_inclusion_from_source"].as_array().unwrap() {
        let ok = match (maybe(&p["leafHash"]), maybe_all(&p["proof"])) {
            (Some(leaf), Some(proof)) => merkle::verify_inclusion(
                p["leafIdx"].as_u64().unwrap(),
                p["treeSize"].as_u64().unwrap(),
                &leaf,
                &proof,
                &h(&p["root"]),
            )
            .is_ok(),
            _ => false,
        };
        assert_eq!(ok, !p["wantErr"].as_bool().unwrap(), "{}", p["file"]);
        probes += 1;
    }
    for p in m["probes_consistency_from_source"].as_array().unwrap() {
        let ok = match maybe_all(&p["proof"]) {
            Some(proof) => merkle::verify_consistency(
                p["size1"].as_u64().unwrap(),
                p["size2"].as_u64().unwrap(),
                &h(&p["root1"]),
                &h(&p["root2"]),
                &proof,
            )
            .is_ok(),
            _ => false,
        };
        assert_eq!(ok, !p["wantErr"].as_bool().unwrap(), "{}", p["file"]);
        probes += 1;
    }
    assert_eq!(probes, 196);
}

#[test]
fn ed25519_rfc8032_section_7_1() {
    let v = json("ed25519-rfc8032.json");
    let vs = v["vectors"].as_array().unwrap();
    assert_eq!(vs.len(), 5);
    for t in vs {
        let key = ed25519_dalek::SigningKey::from_bytes(&h32(&t["secret_key"]));
        assert_eq!(
            key.verifying_key().to_bytes().to_vec(),
            h(&t["public_key"]),
            "{}",
            t["name"]
        );
        let msg = h(&t["message"]);
        let sig = ed25519_dalek::Signer::sign(&key, &msg);
        assert_eq!(sig.to_bytes().to_vec(), h(&t["signature"]), "{}", t["name"]);
        key.verifying_key().verify_strict(&msg, &sig).unwrap();
        let mut bad = msg.clone();
        bad.push(0);
        assert!(key.verifying_key().verify_strict(&bad, &sig).is_err());
    }
}

fn shares_of(v: &Value) -> Vec<Vec<u8>> {
    v.as_array().unwrap().iter().map(h).collect()
}

#[test]
fn shamir_gf256_blahaj_examples() {
    let v = json("shamir-gf256-blahaj-examples.json");
    for ex in v["worked_examples"].as_array().unwrap() {
        let name = ex["name"].as_str().unwrap();
        let secret = h(&ex["secret_hex"]);
        let k = ex["threshold_k"].as_u64().unwrap() as usize;
        let xs: Vec<u8> = ex["x_coords"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u8)
            .collect();
        let expected = shares_of(&ex["shares_hex_blahaj_encoding"]);
        let coeffs: Vec<Vec<u8>> = ex["coefficients_per_secret_byte_high_degree_first"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                c.as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|b| hex::decode(b.as_str().unwrap()).unwrap())
                    .collect()
            })
            .collect();
        // Our dealer hands out x = 1..n; where the example does too, the
        // shares must be byte-identical.
        if xs.iter().enumerate().all(|(i, x)| *x as usize == i + 1) {
            let made = shamir::split_with(&secret, k, xs.len(), |i| coeffs[i].clone()).unwrap();
            assert_eq!(made, expected, "{name}");
        }
        for subset in ex["recovery_subsets_x"].as_array().unwrap() {
            let picked: Vec<&[u8]> = subset
                .as_array()
                .unwrap()
                .iter()
                .map(|x| {
                    expected
                        .iter()
                        .find(|s| s[0] as u64 == x.as_u64().unwrap())
                        .unwrap()
                        .as_slice()
                })
                .collect();
            assert_eq!(
                shamir::recover_checked(k, &picked).unwrap().as_slice(),
                secret.as_slice(),
                "{name} {subset}"
            );
        }
        let few: Vec<&[u8]> = expected[..k - 1].iter().map(|s| s.as_slice()).collect();
        assert!(matches!(
            shamir::recover_checked(k, &few),
            Err(shamir::ShamirError::NotEnough { .. })
        ));
    }
    let g = &v["blahaj_generated"];
    let shares = shares_of(&g["shares_hex_blahaj_encoding"]);
    let secret = h(&g["secret_hex"]);
    let mut subsets = 0;
    for a in 0..6 {
        for b in a + 1..6 {
            for c in b + 1..6 {
                let s: Vec<&[u8]> = vec![&shares[a], &shares[b], &shares[c]];
                assert_eq!(
                    shamir::recover_checked(3, &s).unwrap().as_slice(),
                    secret.as_slice()
                );
                subsets += 1;
            }
        }
    }
    assert_eq!(subsets, 20);
    let all: Vec<&[u8]> = shares.iter().map(|s| s.as_slice()).collect();
    assert_eq!(
        shamir::recover_checked(3, &all).unwrap().as_slice(),
        secret.as_slice()
    );
    // Where blahaj is lenient, we refuse: duplicates and x = 0.
    for e in v["edge_cases_observed_with_blahaj_0_7_0"]
        .as_array()
        .unwrap()
    {
        let s = shares_of(&e["shares_hex"]);
        let refs: Vec<&[u8]> = s.iter().map(|x| x.as_slice()).collect();
        assert!(
            shamir::recover_checked(e["k"].as_u64().unwrap() as usize, &refs).is_err(),
            "{e}"
        );
    }
}
