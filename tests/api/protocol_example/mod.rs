//! The worked example of docs/PROTOCOL.md, computed from fixed inputs step
//! by step with the building blocks — and checked against the values the
//! document prints, so the document cannot drift from the code. Run with
//! `--nocapture` to print them.

use kaibiao::crypto::envelope::{self, label, Envelope, Part, Recipient, SignedEnvelope};
use kaibiao::crypto::{hpke, jcs, sha256_hex, shamir, sign, stream, x25519};
use serde_json::json;

mod evaluation;
mod opening;

fn seed(tag: &str) -> [u8; 32] {
    kaibiao::crypto::sha256(tag.as_bytes())
}

/// The text of docs/PROTOCOL.md.
fn protocol() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/PROTOCOL.md")).unwrap()
}

/// The value the document prints on its line `name = value`.
fn shown_value(name: &str) -> String {
    let prefix = format!("{name} = ");
    protocol()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        .unwrap_or_else(|| panic!("docs/PROTOCOL.md has no line {name:?}"))
}

/// Prints each `name = value` and holds the document to showing it.
fn assert_shown(shown: &[(String, String)]) {
    let doc = protocol();
    let mut missing = Vec::new();
    for (k, v) in shown {
        println!("{k} = {v}");
        if !doc.contains(&format!("{k} = {v}")) {
            missing.push(k.as_str());
        }
    }
    assert!(
        missing.is_empty(),
        "docs/PROTOCOL.md does not show these values as computed: {missing:?}"
    );
}

#[test]
fn the_worked_example_of_the_protocol_document() {
    let section_id = "sec_00000000000000000000000000000001";
    let bid_id = "00112233445566778899aabbccddeeff";
    let revision = 1u32;
    let bidder = "org_00000000000000000000000000000002";

    // Keys, all derived from fixed seeds.
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed("example bidder signing key"));
    let bidder_x = x25519::SecretKey::from_bytes(seed("example bidder encryption key"));
    let custodians: Vec<x25519::SecretKey> = (1..=3)
        .map(|i| x25519::SecretKey::from_bytes(seed(&format!("example custodian {i}"))))
        .collect();
    let bmk = seed("example bid master key");

    // 1. Part keys and key commitments.
    let k_sum = envelope::part_key(&bmk, section_id, bid_id, revision, "summary");
    let k_doc = envelope::part_key(&bmk, section_id, bid_id, revision, "documents");
    let c_sum = envelope::key_commitment(&k_sum, section_id, bid_id, revision, "summary");
    let c_doc = envelope::key_commitment(&k_doc, section_id, bid_id, revision, "documents");

    // 2. The summary, signed inside, then encrypted (one chunk, last).
    let body = json!({"format": "kaibiao-bid-summary/1", "section_id": section_id, "bid_id": bid_id,
                      "revision": revision, "bidder": bidder, "fields": {"price": "12345678.90"}});
    let body_bytes = jcs::canonicalize(&body).unwrap();
    let summary_sig = hex::encode(sign::sign(&signing, label::SUMMARY, &body_bytes));
    let summary_pt =
        jcs::canonicalize(&json!({"summary": body, "signature": summary_sig})).unwrap();
    let (summary_ct, s_sum) = stream::seal_to_vec(&k_sum, &summary_pt);
    let documents_pt = b"bid documents".to_vec();
    let (documents_ct, s_doc) = stream::seal_to_vec(&k_doc, &documents_pt);

    // 3. Shamir 2-of-3 with fixed coefficients (byte i's coefficient: i + 1).
    let shares = shamir::split_with(&bmk, 2, 3, |i| vec![i as u8 + 1]).unwrap();

    // 4. HPKE: each share to its custodian, the BMK to the bidder, with
    //    ephemeral keys derived from fixed ikm.
    let mut recipients = Vec::new();
    for (i, (sk, share)) in custodians.iter().zip(&shares).enumerate() {
        let position = i as u32 + 1;
        let mut info = envelope_context(label::SHARE, section_id, bid_id, revision);
        info.extend_from_slice(&position.to_be_bytes());
        let eph = hpke::derive_key_pair(format!("example ephemeral {position}").as_bytes());
        let mut s = hpke::setup_sender(&sk.public_key(), &info, Some(eph), None).unwrap();
        let ct = s.context.seal(&[], share).unwrap();
        recipients.push(Recipient {
            kind: "custodian".into(),
            position,
            public_key: hex::encode(sk.public_key()),
            enc: hex::encode(s.enc),
            ct: hex::encode(ct),
        });
    }
    let info = envelope_context(label::BIDDER_COPY, section_id, bid_id, revision);
    let eph = hpke::derive_key_pair(b"example ephemeral bidder");
    let mut s = hpke::setup_sender(&bidder_x.public_key(), &info, Some(eph), None).unwrap();
    let ct = s.context.seal(&[], &bmk).unwrap();
    recipients.push(Recipient {
        kind: "bidder".into(),
        position: 0,
        public_key: hex::encode(bidder_x.public_key()),
        enc: hex::encode(s.enc),
        ct: hex::encode(ct),
    });

    // 5. The envelope, canonicalised, hashed and signed.
    let env = Envelope {
        version: envelope::VERSION.into(),
        suite: envelope::SUITE.into(),
        section_id: section_id.into(),
        params_hash: "ab".repeat(32),
        bid_id: bid_id.into(),
        revision,
        supersedes: None,
        bidder: bidder.into(),
        signer_key: hex::encode(signing.verifying_key().to_bytes()),
        created_at_ms: 1_798_761_600_000,
        parts: vec![
            Part {
                name: "summary".into(),
                length: s_sum.ciphertext_len,
                sha256: hex::encode(s_sum.sha256),
                key_commitment: c_sum.clone(),
            },
            Part {
                name: "documents".into(),
                length: s_doc.ciphertext_len,
                sha256: hex::encode(s_doc.sha256),
                key_commitment: c_doc.clone(),
            },
        ],
        threshold: 2,
        recipients,
    };
    let canonical = env.canonical();
    let envelope_hash = sha256_hex(&canonical);
    let signature = hex::encode(sign::sign(&signing, label::ENVELOPE, &canonical));

    let values = [
        ("bidder signing public key", env.signer_key.clone()),
        (
            "bidder encryption public key",
            hex::encode(bidder_x.public_key()),
        ),
        ("BMK", hex::encode(bmk)),
        ("part key summary", hex::encode(*k_sum)),
        ("part key documents", hex::encode(*k_doc)),
        ("key commitment summary", c_sum.clone()),
        ("key commitment documents", c_doc.clone()),
        ("nonce chunk 0 last", hex::encode(stream::nonce(0, true))),
        (
            "summary plaintext",
            String::from_utf8(summary_pt.clone()).unwrap(),
        ),
        ("summary ciphertext", hex::encode(&summary_ct)),
        ("documents ciphertext", hex::encode(&documents_ct)),
        ("share 1", hex::encode(&shares[0])),
        ("share 2", hex::encode(&shares[1])),
        ("share 3", hex::encode(&shares[2])),
        ("custodian 1 enc", env.recipients[0].enc.clone()),
        ("custodian 1 ct", env.recipients[0].ct.clone()),
        ("bidder copy enc", env.recipients[3].enc.clone()),
        ("bidder copy ct", env.recipients[3].ct.clone()),
        (
            "canonical envelope",
            String::from_utf8(canonical.clone()).unwrap(),
        ),
        ("envelope hash", envelope_hash.clone()),
        ("envelope signature", signature.clone()),
    ];
    for (k, v) in &values {
        println!("{k}: {v}");
    }
    // The document prints these; the test holds it to them.
    let doc = protocol();
    for (k, v) in &values {
        assert!(
            doc.contains(v.as_str()),
            "docs/PROTOCOL.md does not show the {k}: {v}"
        );
    }

    // And the result is a valid sealed bid that opens.
    let signed = SignedEnvelope {
        envelope: serde_json::to_value(&env).unwrap(),
        signature,
    };
    let (parsed, h) = envelope::parse_signed(&signed).unwrap();
    assert_eq!(h, envelope_hash);
    let share1 = envelope::open_share(&parsed, 1, &custodians[0]).unwrap();
    let share3 = envelope::open_share(&parsed, 3, &custodians[2]).unwrap();
    let recovered = envelope::recover_bmk(&parsed, &[&share1, &share3]).unwrap();
    assert_eq!(*recovered, bmk);
    let keys = envelope::part_keys(&parsed, &recovered).unwrap();
    let summary = envelope::open_summary(&parsed, &keys["summary"], &summary_ct).unwrap();
    assert_eq!(summary.summary.fields["price"], "12345678.90");
    assert_eq!(
        *envelope::open_bidder_copy(&parsed, &bidder_x).unwrap(),
        bmk
    );
}

fn envelope_context(l: &str, section_id: &str, bid_id: &str, revision: u32) -> Vec<u8> {
    let mut c = Vec::new();
    for part in [l, section_id, bid_id] {
        c.extend_from_slice(&(part.len() as u32).to_be_bytes());
        c.extend_from_slice(part.as_bytes());
    }
    c.extend_from_slice(&revision.to_be_bytes());
    c
}

/// §7.4's worked example: two leaves of a section's chain, tagged by the
/// platform's code and checked by the verifier's walk.
#[test]
fn the_worked_example_of_the_section_chain() {
    use kaibiao::crypto::translog::{self as fmt, ChainState};
    let key = seed("example chain key");
    let mut chain = ChainState::default();
    let mut first = json!({
        "type": "section.published", "section_id": "sec_00000000000000000000000000000001",
        "params_version": 1, "params_hash": "ab".repeat(32),
        "deadline_ms": 1798761600000i64, "at_ms": 1798700000000i64,
    });
    chain.extend(&key, &mut first, 0);
    let leaf1_hash = hex::encode(fmt::leaf_hash(&first));
    let mut second = fmt::commitment_leaf(&"cd".repeat(32), 1798750000000);
    chain.extend(&key, &mut second, 1);
    assert_shown(&[
        (
            "chain leaf 1".into(),
            String::from_utf8(jcs::canonicalize(&first).unwrap()).unwrap(),
        ),
        (
            "chain 1".into(),
            first["chain"].as_str().unwrap().to_string(),
        ),
        ("leaf 1 hash".into(), leaf1_hash),
        (
            "chain 2".into(),
            second["chain"].as_str().unwrap().to_string(),
        ),
    ]);
    let end = fmt::check_chain(&key, [(0, &first), (1, &second)]).unwrap();
    assert_eq!((end.seq, end.index), (2, 1));
    // Either leaf alone is not the section's chain.
    assert!(fmt::check_chain(&key, [(1, &second)]).is_err());
    assert!(fmt::check_chain(&key, [(1, &second), (0, &first)]).is_err());
    assert!(fmt::check_chain(&seed("another key"), [(0, &first)]).is_err());
}

/// §14.2's worked example: the draw's seed from the platform's seed and the
/// supervisor's and one centre's values, computed with the platform's code.
#[test]
fn the_worked_example_of_the_draw_seed() {
    use kaibiao::evaluation::draw::seed_commitment;
    use kaibiao::evaluation::seed::{self, ContributionStatement, CONTRIBUTION_LABEL};
    use kaibiao::evaluation::statements::sign_statement;
    let section = "sec_00000000000000000000000000000001";
    let mut shown = Vec::new();
    let mut values = Vec::new();
    for (who, party, name) in [
        ("supervisor", "supervisor", "example supervisor"),
        ("centre", "centre:GZ-GGZY", "example centre GZ-GGZY"),
    ] {
        let key = ed25519_dalek::SigningKey::from_bytes(&seed(name));
        let value = seed::derive_value(&key, section);
        let st = ContributionStatement {
            section_id: section.into(),
            party: party.into(),
            commitment: seed::value_commitment(&value),
        };
        shown.push((
            format!("{who} key"),
            hex::encode(key.verifying_key().as_bytes()),
        ));
        shown.push((format!("{who} value"), hex::encode(value)));
        shown.push((format!("{who} commitment"), st.commitment.clone()));
        shown.push((
            format!("{who} signature"),
            sign_statement(&key, CONTRIBUTION_LABEL, &st),
        ));
        values.push(Some(value));
    }
    let platform = seed("example platform seed");
    shown.push((
        "platform seed commitment".into(),
        seed_commitment(&platform),
    ));
    shown.push((
        "draw seed".into(),
        hex::encode(seed::mix(&platform, &values)),
    ));
    shown.push((
        "draw seed centre withheld".into(),
        hex::encode(seed::mix(&platform, &[values[0], None])),
    ));
    assert_shown(&shown);
}

/// §14.1's worked example: a centre's registration, signed by the centre,
/// with the hash its `centre.registered` leaf names and its fingerprint.
#[test]
fn the_worked_example_of_a_centre_registration() {
    use kaibiao::evaluation::pass::Centre;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed("example centre GZ-GGZY"));
    let c = Centre::signed("GZ-GGZY", "广州公共资源交易中心", &key);
    c.check().unwrap();
    let statement = c.statement();
    assert_shown(&[
        ("centre registration statement".into(), statement.clone()),
        (
            "centre registration hash".into(),
            sha256_hex(statement.as_bytes()),
        ),
        ("centre registration signature".into(), c.signature.clone()),
        ("centre fingerprint".into(), c.fingerprint()),
    ]);
}
