//! §12.8's worked example: the opening of §11's bid, computed with the
//! platform's code from fixed inputs — two custodians' key releases, the BMK
//! rebuilt from their shares, the record read out (唱标), the bidder's
//! confirmation, the closing statement and its two signatures.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use kaibiao::crypto::envelope::{self, Envelope};
use kaibiao::crypto::opening::{
    json_hash, Closing, ClosingConfirmation, Confirmation, KeyRelease, OpeningRecord, RecordBid,
    RecordRelease, SignedKeyRelease, CLOSING_FORMAT, KEY_RELEASE_FORMAT, RECORD_FORMAT,
};
use kaibiao::crypto::{merkle, x25519};
use kaibiao::domain::section::{DecryptionMode, SummaryField, SummaryFieldKind};
use kaibiao::domain::states::{DecryptedVia, OpeningStatus, RecordOutcome};

use super::{assert_shown, seed, shown_value};

/// The times of the example (2027-01-01 09:00 Asia/Shanghai is the deadline).
const DEADLINE: i64 = 1_798_794_000_000;
const WINDOW_STARTED: i64 = DEADLINE + 2_000;
const RELEASED: [(u32, i64); 2] = [(1, DEADLINE + 60_000), (3, DEADLINE + 95_000)];
const SETTLED: i64 = DEADLINE + 96_000;
const ANNOUNCED: i64 = DEADLINE + 96_500;
const CONFIRMED: i64 = ANNOUNCED + 60_000;
const CLOSED: i64 = ANNOUNCED + 600_000;

fn custodian(position: u32) -> String {
    format!("usr_000000000000000000000000000000{position:02}")
}

#[test]
fn the_worked_example_of_an_opening() {
    let env: Envelope = serde_json::from_str(&shown_value("canonical envelope")).unwrap();
    let section = env.section_id.clone();
    let mut shown: Vec<(String, String)> = Vec::new();

    // 1. Custodians 1 and 3 release their section keys, each signed with
    //    its identity key.
    let mut secrets = Vec::new();
    let mut releases = Vec::new();
    for (position, at) in RELEASED {
        let identity =
            SigningKey::from_bytes(&seed(&format!("example custodian identity {position}")));
        let sk = x25519::SecretKey::from_bytes(seed(&format!("example custodian {position}")));
        let signed = SignedKeyRelease::sign(
            KeyRelease {
                format: KEY_RELEASE_FORMAT.into(),
                section_id: section.clone(),
                custodian: custodian(position),
                position,
                public_key: hex::encode(sk.public_key()),
                secret_key: hex::encode(*sk.to_bytes()),
                identity_key: hex::encode(identity.verifying_key().as_bytes()),
                released_at_ms: at,
            },
            &identity,
        );
        signed.verify(&section).expect("the release verifies");
        shown.push((
            format!("custodian {position} identity key"),
            signed.release.identity_key.clone(),
        ));
        shown.push((
            format!("key release {position} signature"),
            signed.signature.clone(),
        ));
        shown.push((
            format!("key release {position} hash"),
            json_hash(&serde_json::to_value(&signed).unwrap()),
        ));
        releases.push(RecordRelease {
            position: position as i32,
            custodian: custodian(position),
            released_at_ms: at,
        });
        secrets.push((position, sk));
    }

    // 2. Their shares rebuild §11's BMK; the summary opens with its part key.
    let shares: Vec<_> = secrets
        .iter()
        .map(|(p, sk)| envelope::open_share(&env, *p, sk).unwrap())
        .collect();
    let refs: Vec<&[u8]> = shares.iter().map(|s| s.as_slice()).collect();
    let bmk = envelope::recover_bmk(&env, &refs).unwrap();
    assert_eq!(hex::encode(*bmk), shown_value("BMK"));
    let keys = envelope::part_keys(&env, &bmk).unwrap();
    let ciphertext = hex::decode(shown_value("summary ciphertext")).unwrap();
    let summary = envelope::open_summary(&env, &keys["summary"], &ciphertext).unwrap();

    // 3. The record (唱标), and its hash.
    let envelope_hash = env.hash();
    let manifest_root = hex::encode(merkle::root(&[merkle::leaf_hash(
        &hex::decode(&envelope_hash).unwrap(),
    )]));
    let record = OpeningRecord {
        format: RECORD_FORMAT.into(),
        section_id: section.clone(),
        section_code: "KB-2027-001-01".into(),
        section_name: "示例标段".into(),
        project_name: "示例项目".into(),
        params_hash: Some(env.params_hash.clone()),
        deadline_ms: Some(DEADLINE),
        manifest_root: manifest_root.clone(),
        decryption_mode: DecryptionMode::Custodians,
        window_started_at_ms: Some(WINDOW_STARTED),
        window_ends_at_ms: Some(WINDOW_STARTED + 1_800_000),
        summary_fields: vec![SummaryField {
            key: "price".into(),
            label: "投标报价（元）".into(),
            kind: SummaryFieldKind::Money,
            required: true,
        }],
        key_releases: releases,
        bids: vec![RecordBid {
            envelope_hash: envelope_hash.clone(),
            bidder: env.bidder.to_string(),
            bidder_name: "示例建设有限公司".into(),
            bid_id: env.bid_id.clone(),
            revision: env.revision as i32,
            status: OpeningStatus::Decrypted,
            fault: None,
            reason: None,
            via: Some(DecryptedVia::Custodians),
            summary: Some(
                summary
                    .summary
                    .fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            settled_at_ms: Some(SETTLED),
        }],
        outcome: RecordOutcome::Announced,
        announced_at_ms: ANNOUNCED,
    };
    let record_hash = record.hash();
    shown.push(("manifest root".into(), manifest_root));
    shown.push(("opening record".into(), record.canonical()));
    shown.push(("record hash".into(), record_hash.clone()));

    // 4. The bidder confirms; the host closes; the supervisor countersigns.
    let bidder_key = SigningKey::from_bytes(&seed("example bidder signing key"));
    let confirmation = Confirmation::new(&section, env.bidder.as_str(), &record_hash);
    let confirmation_sig = confirmation.sign(&bidder_key);
    shown.push(("confirmation signature".into(), confirmation_sig.clone()));
    let closing = Closing {
        format: CLOSING_FORMAT.into(),
        section_id: section.clone(),
        record_hash: record_hash.clone(),
        confirmations: vec![ClosingConfirmation {
            bidder: env.bidder.to_string(),
            signer_key: env.signer_key.clone(),
            signature: confirmation_sig,
            confirmed_at_ms: CONFIRMED,
        }],
        objections: vec![],
        no_response: vec![],
        incidents: vec![],
        closed_by: "usr_00000000000000000000000000000021".into(),
        closed_at_ms: CLOSED,
    };
    let platform = SigningKey::from_bytes(&seed("example platform key"));
    let supervisor = SigningKey::from_bytes(&seed("example supervisor"));
    shown.push((
        "platform key".into(),
        hex::encode(platform.verifying_key().as_bytes()),
    ));
    shown.push((
        "closing statement".into(),
        String::from_utf8(closing.bytes()).unwrap(),
    ));
    shown.push(("closing hash".into(), closing.hash()));
    shown.push(("closing signature".into(), closing.sign_platform(&platform)));
    shown.push(("countersignature".into(), closing.countersign(&supervisor)));
    assert_shown(&shown);
}
