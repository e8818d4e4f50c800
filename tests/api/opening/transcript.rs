//! The transcript proves the opening offline — the released keys, every
//! re-decrypted price, every confirmation, the close — and any alteration
//! of it is caught and named.

use kaibiao::domain::states::RecordOutcome;
use kaibiao::transcript::Transcript;
use serde_json::{json, Value};

use super::PRICES;
use crate::fixture::{Fixture, Phase};

/// `t` altered by `change` no longer verifies, and the reason names `why`.
fn rejects(t: &Transcript, why: &str, change: impl FnOnce(&mut Transcript)) {
    let mut bad = t.clone();
    change(&mut bad);
    let e = kaibiao::transcript::verify(&bad).expect_err(why);
    assert!(e.contains(why), "expected {why:?}, got {e:?}");
}

/// The log entry of the first leaf of type `ty`.
fn entry<'a>(t: &'a mut Transcript, ty: &str) -> &'a mut Value {
    &mut t
        .log
        .entries
        .iter_mut()
        .find(|e| e.leaf["type"] == ty)
        .unwrap_or_else(|| panic!("no {ty} in the log"))
        .leaf
}

#[actix_web::test]
async fn the_transcript_proves_the_opening_and_any_alteration_is_named() {
    let fx = Fixture::new()
        .min_bidders(3)
        .prices(&PRICES)
        .at(Phase::Evaluating)
        .await;
    let record = fx.bidder(0).opening_record(&fx.section).await.unwrap();
    let (t, summary) = fx.verified().await;
    let o = summary.opening.expect("the opening is in the transcript");
    assert_eq!(
        (o.outcome, o.key_releases, o.decrypted, o.revoked),
        (RecordOutcome::Announced, 3, 3, 0)
    );
    assert!(o.closed && o.countersigned && o.objections == 1, "{o:?}");
    assert_eq!(o.record_hash, record["record_hash"].as_str().unwrap());
    rejects(&t, "not in the signed log", |t| {
        let leaf = entry(t, "opening.announced");
        leaf["record"]["bids"][0]["summary"]["price"] = json!("1.00");
    });
    rejects(&t, "the summary ciphertext is not the one", |t| {
        let o = t.opening.as_mut().unwrap();
        let ct = &mut o.bids[0].summary_ciphertext;
        let flipped = if ct.starts_with('0') { "1" } else { "0" };
        ct.replace_range(0..1, flipped);
    });
    rejects(&t, "not the one the released keys rebuild", |t| {
        t.opening.as_mut().unwrap().bids[1].bmk = "22".repeat(32);
    });
    rejects(&t, "key release of custodian", |t| {
        let r = &mut t.opening.as_mut().unwrap().key_releases[0];
        r.release.released_at_ms += 1;
    });
    rejects(
        &t,
        "the log records 3 key releases, the transcript carries 2",
        |t| {
            t.opening.as_mut().unwrap().key_releases.pop();
        },
    );
    rejects(&t, "not in the signed log", |t| {
        let leaf = entry(t, "opening.confirmed");
        leaf["signature"] = json!("00".repeat(64));
    });
    rejects(&t, "not in the signed log", |t| {
        // The first settlement and the announcement trade places in the log.
        let position = |t: &Transcript, ty: &str| {
            t.log
                .entries
                .iter()
                .position(|e| e.leaf["type"] == ty)
                .unwrap()
        };
        let (i, j) = (
            position(t, "opening.bid_settled"),
            position(t, "opening.announced"),
        );
        let (a, b) = (t.log.entries[i].leaf.clone(), t.log.entries[j].leaf.clone());
        t.log.entries[i].leaf = b;
        t.log.entries[j].leaf = a;
    });
    rejects(&t, "decrypted, but its key is not published", |t| {
        t.opening.as_mut().unwrap().bids.remove(2);
    });
    rejects(&t, "which the transcript lacks", |t| {
        // A bid dropped from the transcript.
        t.bids.remove(0);
    });
    rejects(&t, "the transcript omits it", |t| {
        t.opening = None;
    });
    rejects(&t, "the closing statement is not the one in the log", |t| {
        let c = t.opening.as_mut().unwrap().closing.as_mut().unwrap();
        c.no_response.push("org_someone".into());
    });
    // One way to write it: nothing listed twice, everything in index
    // order, hex in lower case only.
    rejects(&t, "openings: ", |t| {
        let first = t.openings[0].clone();
        t.openings.insert(1, first);
    });
    rejects(&t, "openings: ", |t| t.openings.reverse());
    rejects(&t, "log entries: ", |t| {
        let first = t.log.entries[0].clone();
        t.log.entries.insert(1, first);
    });
    rejects(&t, "log entries: ", |t| t.log.entries.swap(0, 1));
    rejects(&t, "bids: ", |t| {
        let first = t.bids[0].clone();
        t.bids.push(first);
    });
    rejects(&t, "key releases by position: ", |t| {
        let o = t.opening.as_mut().unwrap();
        let first = o.key_releases[0].clone();
        o.key_releases.push(first);
    });
    rejects(&t, "opened bids: ", |t| {
        let o = t.opening.as_mut().unwrap();
        let first = o.bids[0].clone();
        o.bids.push(first);
    });
    rejects(&t, "signature does not verify", |t| {
        let s = &mut t.log.checkpoint.signature;
        *s = s.to_uppercase();
    });
    rejects(&t, "summary ciphertext is not hex", |t| {
        let o = t.opening.as_mut().unwrap();
        o.bids[0].summary_ciphertext = o.bids[0].summary_ciphertext.to_uppercase();
    });
    // Unknown fields are refused wherever they are, not ignored.
    let doc = serde_json::to_value(&t).unwrap();
    for path in [
        "",
        "/bids/0",
        "/log",
        "/log/checkpoint/checkpoint",
        "/opening",
        "/opening/bids/0",
    ] {
        let mut v = doc.clone();
        v.pointer_mut(path).unwrap()["remark"] = json!("ignore me");
        let e = serde_json::from_value::<Transcript>(v).expect_err(path);
        assert!(
            e.to_string().contains("unknown field `remark`"),
            "{path}: {e}"
        );
    }
    fx.app.stop().await;
}

#[actix_web::test]
async fn every_bidder_key_carries_its_proof_and_signed_only_while_registered() {
    let fx = Fixture::new()
        .min_bidders(3)
        .prices(&PRICES)
        .at(Phase::Confirming)
        .await;
    // The first bidder rotates its keys after bidding: the old ones are
    // retired, each with a leaf, and the new ones logged after its bid.
    fx.w.bidder_keys(&fx.app, 0).await;
    let (t, _) = fx.verified().await;
    // A signing key that signed a bid and is still in force.
    let signing = |t: &mut Transcript| -> usize {
        t.bidder_keys
            .iter()
            .position(|k| {
                k.purpose == "bidder_signing"
                    && k.retired.is_none()
                    && t.bids
                        .iter()
                        .any(|b| b.signed_envelope.envelope["signer_key"] == k.public_key.as_str())
            })
            .unwrap()
    };
    for k in &t.bidder_keys {
        let st: Value = serde_json::from_str(&k.statement).unwrap();
        assert_eq!(st["owner"], k.bidder.as_str());
        assert!(!k.proof.is_empty());
    }
    // A proof of possession altered, or missing.
    rejects(&t, "proof of possession does not verify", |t| {
        let i = signing(t);
        t.bidder_keys[i].proof = "00".repeat(64);
    });
    rejects(&t, "proof of possession does not verify", |t| {
        let i = signing(t);
        t.bidder_keys[i].proof = String::new();
    });
    // The statement of another owner, or not canonical.
    rejects(&t, "names another key, owner or purpose", |t| {
        let i = signing(t);
        let k = &mut t.bidder_keys[i];
        let mut st: Value = serde_json::from_str(&k.statement).unwrap();
        st["owner"] = json!("org_someone_else");
        k.statement = String::from_utf8(kaibiao::crypto::jcs::canonicalize(&st).unwrap()).unwrap();
    });
    rejects(&t, "not in canonical form", |t| {
        let i = signing(t);
        t.bidder_keys[i].statement.push(' ');
    });
    // Every registration and retirement is a leaf of the log, under the
    // transcript's checkpoint, naming the statement's hash and the time.
    let retired = t.bidder_keys.iter().filter(|k| k.retired.is_some()).count();
    assert_eq!(retired, 2, "the first bidder's rotated keys");
    for k in &t.bidder_keys {
        assert_eq!(k.registered.leaf["type"], "key.registered");
        assert_eq!(k.registered.leaf["at_ms"], k.registered_at_ms);
        assert_eq!(k.retired.is_some(), k.retired_at_ms.is_some());
    }
    rejects(&t, "not in the signed log", |t| {
        let i = signing(t);
        t.bidder_keys[i].registered.index += 1;
    });
    rejects(&t, "not in the signed log", |t| {
        let i = signing(t);
        t.bidder_keys[i].registered.leaf["at_ms"] = json!(0);
    });
    rejects(&t, "is not its key.registered leaf", |t| {
        // Another key's leaf: in the log, but for another statement.
        let i = signing(t);
        let other = (i + 1) % t.bidder_keys.len();
        t.bidder_keys[i].registered = t.bidder_keys[other].registered.clone();
    });
    rejects(&t, "is not its key.registered leaf", |t| {
        // Back-dated by a millisecond: the leaf says when it was logged.
        let i = signing(t);
        t.bidder_keys[i].registered_at_ms -= 1;
    });
    rejects(&t, "is not its key.registered leaf", |t| {
        // A retirement leaf offered as a registration.
        let i = t
            .bidder_keys
            .iter()
            .position(|k| k.retired.is_some())
            .unwrap();
        t.bidder_keys[i].registered = t.bidder_keys[i].retired.clone().unwrap();
    });
    rejects(&t, "its retirement leaf is missing", |t| {
        let i = t
            .bidder_keys
            .iter()
            .position(|k| k.retired.is_some())
            .unwrap();
        t.bidder_keys[i].retired = None;
    });
    rejects(&t, "a retirement leaf for a key in force", |t| {
        let i = t
            .bidder_keys
            .iter()
            .position(|k| k.retired.is_some())
            .unwrap();
        t.bidder_keys[i].retired_at_ms = None;
    });
    rejects(&t, "is not its key.retired leaf", |t| {
        let i = t
            .bidder_keys
            .iter()
            .position(|k| k.retired.is_some())
            .unwrap();
        *t.bidder_keys[i].retired_at_ms.as_mut().unwrap() += 1;
    });
    // A key registered after the bid it signed, or retired before it: the
    // times are the leaves', so the log tells.
    let bid_at = |t: &Transcript, bidder: &str| {
        t.bids
            .iter()
            .filter(|b| b.signed_envelope.envelope["bidder"] == bidder)
            .map(|b| b.received_at_ms)
            .min()
            .unwrap()
    };
    rejects(&t, "is not its key.registered leaf", |t| {
        let i = signing(t);
        let at = bid_at(t, &t.bidder_keys[i].bidder.clone());
        t.bidder_keys[i].registered_at_ms = at + 1;
    });
    rejects(&t, "its retirement leaf is missing", |t| {
        let i = signing(t);
        let at = bid_at(t, &t.bidder_keys[i].bidder.clone());
        t.bidder_keys[i].retired_at_ms = Some(at);
    });
    // The old key's retirement, moved before the bid it signed: a leaf at
    // that time is what the log would need.
    rejects(&t, "is not its key.retired leaf", |t| {
        let i = t
            .bidder_keys
            .iter()
            .position(|k| k.retired.is_some() && k.purpose == "bidder_signing")
            .unwrap();
        let at = bid_at(t, &t.bidder_keys[i].bidder.clone());
        t.bidder_keys[i].retired_at_ms = Some(at);
    });
    fx.app.stop().await;
}

#[actix_web::test]
async fn every_staff_signature_is_by_a_key_registered_with_its_proof_when_it_was_made() {
    let fx = Fixture::new()
        .min_bidders(3)
        .prices(&PRICES)
        .at(Phase::Evaluating)
        .await;
    let (t, _) = fx.verified().await;
    let custodians = t
        .staff_keys
        .iter()
        .filter(|k| k.purpose == "custodian_identity")
        .count();
    assert!(custodians >= 3, "{:?}", t.staff_keys);
    let supervisor = |t: &Transcript| {
        t.staff_keys
            .iter()
            .position(|k| k.purpose == "supervisor_identity")
            .expect("the countersigning supervisor's key")
    };
    let custodian = |t: &Transcript| {
        t.staff_keys
            .iter()
            .position(|k| k.purpose == "custodian_identity")
            .unwrap()
    };
    let countersigned_at = entry(&mut t.clone(), "opening.countersigned")["at_ms"]
        .as_i64()
        .unwrap();
    // The supervisor's key left out, registered only after it countersigned,
    // or retired before.
    rejects(
        &t,
        "the countersignature is not by a key the supervisor had registered",
        |t| {
            let i = supervisor(t);
            t.staff_keys.remove(i);
        },
    );
    // (by the leaves' times, which the log keeps).
    rejects(&t, "is not its key.registered leaf", |t| {
        let i = supervisor(t);
        t.staff_keys[i].registered_at_ms = countersigned_at + 1;
    });
    rejects(&t, "its retirement leaf is missing", |t| {
        let i = supervisor(t);
        t.staff_keys[i].retired_at_ms = Some(countersigned_at);
    });
    rejects(&t, "not in the signed log", |t| {
        let i = custodian(t);
        t.staff_keys[i].registered.proof.pop();
    });
    // A custodian's key without its proof, or left out.
    rejects(&t, "proof of possession does not verify", |t| {
        let i = custodian(t);
        t.staff_keys[i].proof = "00".repeat(64);
    });
    rejects(&t, "identity key was not its registered one", |t| {
        let i = custodian(t);
        t.staff_keys.remove(i);
    });
    // A staff key of another purpose, or listed twice.
    rejects(&t, "is not a staff key's purpose", |t| {
        let i = custodian(t);
        t.staff_keys[i].purpose = "bidder_signing".into();
    });
    rejects(&t, "is listed twice", |t| {
        let k = t.staff_keys[0].clone();
        t.staff_keys.push(k);
    });
    fx.app.stop().await;
}
