//! The opening (开标) part of a transcript, and its offline check.
//!
//! The log already holds every statement of the opening in order: key
//! releases (by hash), each bid's settlement, the announced record, each
//! confirmation with its signature, objections and answers, the platform's
//! closing signature and the supervisor's countersignature. The transcript
//! adds what the log does not carry: the released keys themselves, each
//! decrypted bid's key (BMK) and summary ciphertext, and the closing
//! statement. From these the verifier re-derives every BMK, checks every key
//! commitment, re-decrypts every summary and compares it with the announced
//! values — so a platform that announced a price other than the bidder's
//! sealed one, or blamed a bidder for a bid that does open, is caught.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::opening_log::{at_ms, closing_times, incident_rulings, record_times};
use super::BidEntry;
use crate::crypto::envelope::{self, Envelope, SummaryFields};
use crate::crypto::opening::{self as fmt, Closing, Confirmation, SignedKeyRelease};
use crate::crypto::{sha256_hex, x25519};
use crate::domain::states::RecordOutcome;
use crate::service::sections::SectionParams;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpeningExtract {
    /// The custodians' signed key releases, published with the announcement.
    pub key_releases: Vec<SignedKeyRelease>,
    /// What re-derives each decrypted bid's announced result.
    pub bids: Vec<OpenedBid>,
    /// The closing statement, once the host has closed the record.
    pub closing: Option<Closing>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenedBid {
    pub envelope_hash: String,
    /// The bid master key, hex (published with the announcement).
    pub bmk: String,
    /// The summary part's ciphertext, hex.
    pub summary_ciphertext: String,
}

/// What the check of the opening established.
#[derive(Debug, Clone, Serialize)]
pub struct OpeningSummary {
    pub outcome: RecordOutcome,
    pub record_hash: String,
    pub key_releases: usize,
    pub decrypted: usize,
    pub revoked: usize,
    pub withdrawn: usize,
    pub confirmations: usize,
    pub objections: usize,
    pub closed: bool,
    pub countersigned: bool,
}

/// What the rest of the transcript check hands over.
pub(super) struct Context<'a> {
    pub section_id: &'a str,
    pub platform_key: &'a str,
    pub params: &'a SectionParams,
    pub params_hash: &'a str,
    pub manifest_root: &'a str,
    /// The accepted bids (the manifest), by envelope hash.
    pub accepted: &'a [&'a String],
    pub bids: &'a HashMap<&'a str, &'a BidEntry>,
    /// `(bidder, purpose, public key)` of every registered bidder key.
    pub keys: &'a HashSet<(&'a str, &'a str, &'a str)>,
    /// The section's log leaves, by index.
    pub log: &'a BTreeMap<u64, &'a Value>,
    /// The staff's registered identity keys (custodians, supervisors).
    pub staff_keys: &'a [super::StaffKey],
}

fn envelope_of(b: &BidEntry) -> Result<Envelope, String> {
    Ok(envelope::parse_signed(&b.signed_envelope)
        .map_err(|e| e.to_string())?
        .0)
}

/// Checks the opening; `Ok(None)` when nothing has been announced yet.
pub(super) fn verify(
    x: &Context<'_>,
    extract: Option<&OpeningExtract>,
) -> Result<Option<OpeningSummary>, String> {
    let leaves: Vec<(u64, &Value)> = x
        .log
        .iter()
        .filter(|(_, l)| l["section_id"] == x.section_id)
        .map(|(i, l)| (*i, *l))
        .collect();
    let of = |ty: &str| -> Vec<(u64, &Value)> {
        leaves
            .iter()
            .filter(|(_, l)| l["type"] == ty)
            .map(|(i, l)| (*i, *l))
            .collect()
    };
    // 1. The announced record (唱标), or the record of a failure after
    //    decryption; exactly one.
    let mut announced: Vec<(u64, &Value)> = of("opening.announced");
    announced.extend(
        of("section.failed")
            .into_iter()
            .filter(|(_, l)| l.get("record").is_some()),
    );
    let Some(&(at, leaf)) = announced.first() else {
        ensure!(
            extract.is_none() && of("opening.bid_settled").is_empty(),
            "the transcript has opening material but the log has no announcement"
        );
        return Ok(None);
    };
    ensure!(announced.len() == 1, "the log announces the record twice");
    let extract = extract.ok_or("the log announces the opening but the transcript omits it")?;
    let record = &leaf["record"];
    let record_hash = leaf["record_hash"].as_str().unwrap_or_default();
    ensure!(
        fmt::json_hash(record) == record_hash,
        "the announced record does not hash to its record_hash"
    );
    ensure!(
        record["format"] == fmt::RECORD_FORMAT
            && record["section_id"] == x.section_id
            && record["params_hash"] == x.params_hash
            && record["manifest_root"] == x.manifest_root,
        "the record names another section, parameters or manifest"
    );

    // 2. Order: releases and settlements before the announcement; what
    //    answers the record after it; the countersignature after the close.
    for ty in ["opening.key_released", "opening.bid_settled"] {
        ensure!(
            of(ty).iter().all(|(i, _)| *i < at),
            "a {ty} entry comes after the announcement"
        );
    }
    for ty in [
        "opening.confirmed",
        "opening.objection",
        "opening.answered",
        "opening.closed",
        "opening.countersigned",
    ] {
        ensure!(
            of(ty).iter().all(|(i, _)| *i > at),
            "a {ty} entry comes before the announcement"
        );
    }

    // 3. Key releases: each logged one is here, signed by the identity key
    //    registered for its position, and its secret fits the section key.
    super::in_order(
        &extract.key_releases,
        |s| s.release.position,
        "key releases by position",
    )?;
    super::distinct(&extract.bids, |b| b.envelope_hash.clone(), "opened bids")?;
    let mut secrets: Vec<(u32, x25519::SecretKey)> = Vec::new();
    let logged_releases = of("opening.key_released");
    ensure!(
        logged_releases.len() == extract.key_releases.len(),
        "the log records {} key releases, the transcript carries {}",
        logged_releases.len(),
        extract.key_releases.len()
    );
    for s in &extract.key_releases {
        let r = &s.release;
        let sk = s
            .verify(x.section_id)
            .map_err(|e| format!("key release of custodian {}: {e}", r.custodian))?;
        let c = x
            .params
            .custodians
            .iter()
            .find(|c| c.position as u32 == r.position)
            .ok_or_else(|| format!("a key release for unknown position {}", r.position))?;
        ensure!(
            c.user_id.as_str() == r.custodian
                && c.section_key == r.public_key
                && c.identity_key == r.identity_key,
            "the key release at position {} is not by the registered custodian with its registered keys",
            r.position
        );
        let h = fmt::json_hash(&serde_json::to_value(s).map_err(|e| e.to_string())?);
        ensure!(
            logged_releases
                .iter()
                .any(|(_, l)| l["release_hash"] == h.as_str() && l["position"] == r.position),
            "the key release at position {} is not the one in the log",
            r.position
        );
        ensure!(
            !secrets.iter().any(|(p, _)| *p == r.position),
            "two key releases for position {}",
            r.position
        );
        secrets.push((r.position, sk));
    }

    // 4. Every accepted bid is in the record, once; nothing else is.
    let rbids = record["bids"].as_array().ok_or("record without bids")?;
    let listed: BTreeSet<&str> = rbids
        .iter()
        .filter_map(|b| b["envelope_hash"].as_str())
        .collect();
    let accepted: BTreeSet<&str> = x.accepted.iter().map(|s| s.as_str()).collect();
    ensure!(
        listed == accepted && rbids.len() == accepted.len(),
        "the record does not list exactly the accepted bids"
    );
    let settled = of("opening.bid_settled");
    let material: HashMap<&str, &OpenedBid> = extract
        .bids
        .iter()
        .map(|b| (b.envelope_hash.as_str(), b))
        .collect();
    let outcome = RecordOutcome::parse(record["outcome"].as_str().unwrap_or_default())
        .ok_or("the record's outcome is neither announced nor failed")?;
    let failed = outcome == RecordOutcome::Failed;
    let (mut decrypted, mut revoked, mut withdrawn) = (0, 0, 0);
    let mut record_bidders = BTreeSet::new();
    let mut decrypted_bidders = BTreeSet::new();
    for rb in rbids {
        let h = rb["envelope_hash"].as_str().unwrap_or_default();
        let b = x.bids[h];
        let env = envelope_of(b)?;
        ensure!(
            rb["bidder"] == env.bidder.as_str(),
            "bid {h}: the record names another bidder"
        );
        record_bidders.insert(env.bidder.clone());
        let status = rb["status"].as_str().unwrap_or_default();
        let logged: Vec<&Value> = settled
            .iter()
            .filter(|(_, l)| l["envelope_hash"] == h)
            .map(|(_, l)| *l)
            .collect();
        ensure!(
            logged.len() == 1
                && logged[0]["status"] == status
                && logged[0]["fault"] == rb["fault"]
                && logged[0]["via"] == rb["via"],
            "bid {h}: its settlement in the record differs from the log"
        );
        let via = rb["via"].as_str().unwrap_or_default();
        match status {
            "decrypted" => {
                decrypted += 1;
                decrypted_bidders.insert(env.bidder.clone());
                let m = material
                    .get(h)
                    .ok_or_else(|| format!("bid {h}: decrypted, but its key is not published"))?;
                let fields =
                    reopen(x, &env, m, via, &secrets).map_err(|e| format!("bid {h}: {e}"))?;
                let announced: Option<SummaryFields> =
                    serde_json::from_value(rb["summary"].clone()).map_err(|e| e.to_string())?;
                if failed {
                    ensure!(
                        announced.is_none(),
                        "bid {h}: a failed opening announces no prices"
                    );
                } else {
                    ensure!(
                        announced.as_ref() == Some(&fields),
                        "bid {h}: the announced values differ from the bidder's sealed summary"
                    );
                }
            }
            "revoked" | "withdrawn" => {
                if status == "revoked" {
                    revoked += 1;
                } else {
                    withdrawn += 1;
                }
                ensure!(
                    rb["summary"].is_null(),
                    "bid {h}: {status}, yet values are announced"
                );
                // A bid blamed on its bidder after the custodians' keys were
                // applied must really fail with those keys.
                if status == "revoked" && via == "custodians" {
                    ensure!(
                        custodian_bmk(&env, &secrets).is_err(),
                        "bid {h}: marked revoked, but it opens with the released keys"
                    );
                }
            }
            other => return Err(format!("bid {h}: unknown status {other:?}")),
        }
    }
    ensure!(
        settled.len() == rbids.len(),
        "the log settles bids the record omits"
    );
    record_times(x.params.deadline_ms, leaf, record, &leaves)?;
    incident_rulings(x, &leaves)?;

    // 5. Confirmations: each signed by the bidder's registered key over the
    //    announced hash; one per bidder in the record.
    let mut confirmed: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (_, l) in of("opening.confirmed") {
        let bidder = l["bidder"].as_str().unwrap_or_default();
        let key = l["signer_key"].as_str().unwrap_or_default();
        let sig = l["signature"].as_str().unwrap_or_default();
        ensure!(
            l["record_hash"] == record_hash,
            "a confirmation by {bidder} is for another record"
        );
        ensure!(
            record_bidders.contains(bidder),
            "a confirmation by {bidder}, who is not in the record"
        );
        ensure!(
            x.keys.contains(&(bidder, "bidder_signing", key)),
            "{bidder}'s confirmation is signed by a key it never registered"
        );
        ensure!(
            Confirmation::new(x.section_id, bidder, record_hash).verify(key, sig),
            "{bidder}'s confirmation signature does not verify"
        );
        ensure!(
            confirmed
                .insert(bidder.to_string(), (key.to_string(), sig.to_string()))
                .is_none(),
            "{bidder} confirmed twice"
        );
    }

    // 6. Objections, each answered at most once and after it was raised.
    let mut objections: BTreeMap<String, (u64, Value, Option<Value>)> = BTreeMap::new();
    for (i, l) in of("opening.objection") {
        let id = l["objection_id"].as_str().unwrap_or_default().to_string();
        ensure!(
            record_bidders.contains(l["bidder"].as_str().unwrap_or_default()),
            "objection {id} is by a bidder not in the record"
        );
        objections.insert(id, (i, l.clone(), None));
    }
    for (i, l) in of("opening.answered") {
        let id = l["objection_id"].as_str().unwrap_or_default();
        let o = objections
            .get_mut(id)
            .ok_or_else(|| format!("an answer to objection {id}, which was never raised"))?;
        ensure!(o.0 < i, "objection {id} is answered before it is raised");
        ensure!(o.2.is_none(), "objection {id} is answered twice");
        o.2 = Some(l.clone());
    }

    // 7. The closing statement: the platform's signature, then the
    //    supervisor's countersignature, over exactly what was logged.
    let closed = of("opening.closed");
    let countersigned = of("opening.countersigned");
    ensure!(
        closed.len() <= 1 && countersigned.len() <= 1,
        "the record is closed or countersigned twice"
    );
    if let Some((ci, cl)) = closed.first() {
        let c = extract
            .closing
            .as_ref()
            .ok_or("the log closes the record but the transcript omits the closing statement")?;
        ensure!(
            cl["closing_hash"] == c.hash().as_str(),
            "the closing statement is not the one in the log"
        );
        ensure!(
            c.verify_platform(
                x.platform_key,
                cl["platform_signature"].as_str().unwrap_or_default()
            ),
            "the platform's signature on the closing statement does not verify"
        );
        ensure!(
            c.format == fmt::CLOSING_FORMAT
                && c.section_id == x.section_id
                && c.record_hash == record_hash,
            "the closing statement is for another record"
        );
        let stated: BTreeMap<String, (String, String)> = c
            .confirmations
            .iter()
            .map(|k| {
                (
                    k.bidder.clone(),
                    (k.signer_key.clone(), k.signature.clone()),
                )
            })
            .collect();
        ensure!(
            stated == confirmed,
            "the closing statement's confirmations differ from the log"
        );
        ensure!(
            c.objections.len() == objections.len()
                && c.objections
                    .iter()
                    .all(|j| objections.get(&j.id).is_some_and(|(_, o, a)| {
                        o["bidder"] == j.bidder.as_str()
                            && o["text"] == j.text.as_str()
                            && a.as_ref().is_some_and(|a| a["answer"] == j.answer.as_str())
                    })),
            "the closing statement's objections and answers differ from the log"
        );
        closing_times(c, cl, &leaves)?;
        // 视为认可: the bidders with a decrypted bid who neither confirmed
        // nor objected, exactly.
        let objectors: BTreeSet<&str> = c.objections.iter().map(|j| j.bidder.as_str()).collect();
        let silent: BTreeSet<&str> = decrypted_bidders
            .iter()
            .map(String::as_str)
            .filter(|b| !confirmed.contains_key(*b) && !objectors.contains(b))
            .collect();
        ensure!(
            c.no_response.iter().map(String::as_str).collect::<BTreeSet<_>>() == silent
                && c.no_response.len() == silent.len(),
            "the closing statement's no_response is not the bidders who neither confirmed nor objected"
        );
        ensure!(
            of("opening.confirmed")
                .iter()
                .chain(of("opening.objection").iter())
                .chain(of("opening.answered").iter())
                .all(|(i, _)| i < ci),
            "the log records confirmations or objections after the close"
        );
        if let Some((si, sl)) = countersigned.first() {
            ensure!(si > ci, "the record is countersigned before it is closed");
            ensure!(
                super::staff_key_in_force(
                    x.staff_keys,
                    sl["supervisor"].as_str().unwrap_or_default(),
                    "supervisor_identity",
                    sl["supervisor_key"].as_str().unwrap_or_default(),
                    (*si, at_ms(sl).unwrap_or(i64::MIN)),
                ),
                "the countersignature is not by a key the supervisor had registered (with its proof) when it was made"
            );
            ensure!(
                sl["closing_hash"] == cl["closing_hash"],
                "the countersignature is over another closing statement"
            );
            ensure!(
                c.verify_countersignature(
                    sl["supervisor_key"].as_str().unwrap_or_default(),
                    sl["signature"].as_str().unwrap_or_default()
                ),
                "the supervisor's countersignature does not verify"
            );
        }
    } else {
        ensure!(
            countersigned.is_empty() && extract.closing.is_none(),
            "a closing statement or countersignature without a logged close"
        );
    }

    Ok(Some(OpeningSummary {
        outcome,
        record_hash: record_hash.to_string(),
        key_releases: secrets.len(),
        decrypted,
        revoked,
        withdrawn,
        confirmations: confirmed.len(),
        objections: objections.len(),
        closed: !closed.is_empty(),
        countersigned: !countersigned.is_empty(),
    }))
}

/// The BMK the released custodian keys rebuild.
fn custodian_bmk(
    env: &Envelope,
    secrets: &[(u32, x25519::SecretKey)],
) -> Result<zeroize::Zeroizing<[u8; 32]>, String> {
    let mut shares = Vec::new();
    for (pos, sk) in secrets {
        shares.push(envelope::open_share(env, *pos, sk).map_err(|e| e.to_string())?);
    }
    let refs: Vec<&[u8]> = shares.iter().map(|s| s.as_slice()).collect();
    let bmk = envelope::recover_bmk(env, &refs).map_err(|e| e.to_string())?;
    envelope::part_keys(env, &bmk).map_err(|e| e.to_string())?;
    Ok(bmk)
}

/// Re-derives a decrypted bid's key, checks every commitment, and decrypts
/// its summary; returns the values the bidder sealed.
fn reopen(
    x: &Context<'_>,
    env: &Envelope,
    m: &OpenedBid,
    via: &str,
    secrets: &[(u32, x25519::SecretKey)],
) -> Result<SummaryFields, String> {
    let bmk: [u8; 32] =
        crate::crypto::hex_array(&m.bmk).ok_or("the published BMK is not 32 bytes of hex")?;
    if via != "bidder" {
        let rebuilt = custodian_bmk(env, secrets)
            .map_err(|e| format!("the released keys do not rebuild its key: {e}"))?;
        if *rebuilt != bmk {
            return Err("the published BMK is not the one the released keys rebuild".into());
        }
    }
    let keys = envelope::part_keys(env, &bmk).map_err(|e| e.to_string())?;
    let ct = crate::crypto::from_hex(&m.summary_ciphertext)
        .ok_or(())
        .map_err(|_| "summary ciphertext is not hex")?;
    let part = env
        .part(envelope::PART_SUMMARY)
        .ok_or("the envelope has no summary part")?;
    if sha256_hex(&ct) != part.sha256 {
        return Err("the summary ciphertext is not the one the envelope commits to".into());
    }
    let s = envelope::open_summary(env, &keys[envelope::PART_SUMMARY], &ct)
        .map_err(|e| e.to_string())?;
    envelope::check_summary_fields(&x.params.summary_fields, &s.summary.fields)
        .map_err(|e| format!("the summary does not fit the section: {e}"))?;
    Ok(s.summary.fields)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    /// The order rules alone: a log the platform signed consistently, with
    /// an empty opening, where one statement stands on the wrong side of the
    /// announcement. (Tampering with a real log is caught earlier, by the
    /// inclusion proofs; these rules catch a platform that logged out of
    /// order.)
    pub(crate) fn params() -> SectionParams {
        serde_json::from_value(json!({
            "format": "kaibiao-section-params/1", "params_version": 1, "section_id": "sec_t",
            "section_code": "T", "section_name": "t", "project_id": "prj_t", "project_code": "T",
            "project_name": "t", "category": "construction", "centre_id": "org_c",
            "tenderer_id": "org_t", "published_at_ms": 0, "deadline_ms": 1, "grace_ms": 0,
            "decryption_mode": "custodians", "window_ms": 1, "threshold": 1, "custodians": [],
            "min_bidders": 1, "ceiling_price": null, "summary_fields": [],
            "evaluation": {"method": "lowest_price", "items": [], "price": null,
                           "aggregation": {"trim_when_at_least": 7, "outlier_points": "20.00"}},
            "documents": [], "platform_key": "00",
        }))
        .unwrap()
    }

    fn check(leaves: Vec<Value>) -> Result<Option<OpeningSummary>, String> {
        let params = params();
        let record = json!({"format": fmt::RECORD_FORMAT, "section_id": "sec_t",
                            "params_hash": "p", "manifest_root": "m", "bids": [],
                            "deadline_ms": 1, "key_releases": [], "announced_at_ms": 5,
                            "outcome": "announced"});
        let mut all = vec![
            json!({"type": "opening.announced", "section_id": "sec_t", "at_ms": 5,
                                  "record": record, "record_hash": fmt::json_hash(&record)}),
        ];
        all.extend(leaves);
        let log: BTreeMap<u64, &Value> =
            all.iter().enumerate().map(|(i, l)| (i as u64, l)).collect();
        in_context(&params, &log, &[], |x| {
            verify(
                x,
                Some(&OpeningExtract {
                    key_releases: vec![],
                    bids: vec![],
                    closing: None,
                }),
            )
        })
    }

    /// A context of no bids and no bidder keys around `log` and `staff`.
    pub(crate) fn in_context<R>(
        params: &SectionParams,
        log: &BTreeMap<u64, &Value>,
        staff: &[crate::transcript::StaffKey],
        f: impl FnOnce(&Context<'_>) -> R,
    ) -> R {
        let (keys, bids) = (HashSet::new(), HashMap::new());
        f(&Context {
            section_id: "sec_t",
            platform_key: "00",
            params,
            params_hash: "p",
            manifest_root: "m",
            accepted: &[],
            bids: &bids,
            keys: &keys,
            log,
            staff_keys: staff,
        })
    }

    #[test]
    fn statements_on_the_wrong_side_of_the_announcement_are_refused() {
        let s = check(vec![]).unwrap().unwrap();
        assert_eq!((s.outcome, s.decrypted), (RecordOutcome::Announced, 0));
        let settled_after = json!({"type": "opening.bid_settled", "section_id": "sec_t",
                                   "envelope_hash": "h", "status": "decrypted"});
        let e = check(vec![settled_after]).unwrap_err();
        assert!(
            e.contains("opening.bid_settled entry comes after the announcement"),
            "{e}"
        );
        let answered_alone = json!({"type": "opening.answered", "section_id": "sec_t",
                                    "objection_id": "obj_1", "answer": "a"});
        let e = check(vec![answered_alone]).unwrap_err();
        assert!(e.contains("never raised"), "{e}");
        let twice = json!({"type": "opening.announced", "section_id": "sec_t",
                           "record": {}, "record_hash": ""});
        let e = check(vec![twice]).unwrap_err();
        assert!(e.contains("announces the record twice"), "{e}");
    }
}
