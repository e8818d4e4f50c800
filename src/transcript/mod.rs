//! The section transcript (`kaibiao-transcript/5`): one self-contained JSON
//! file with everything needed to check a section offline — the published
//! parameters, the bidders' keys, every envelope with its receipt, the
//! opened commitments, the late attempts, the manifest, and the log entries
//! with inclusion proofs against one signed checkpoint.
//!
//! After the announcement it also carries the opening ([`opening`]): the
//! released keys, each decrypted bid's key and summary ciphertext, and the
//! closing statement.
//!
//! [`verify`] checks all of it without network or database, and says
//! exactly what is wrong. The format is specified in `docs/PROTOCOL.md`.

/// `ensure!(cond, "…", args)`: returns the formatted error unless `cond`
/// holds (used by every check of the transcript).
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

pub mod evaluation;
pub use evaluation::check_pins;
mod keys;
pub mod opening;
mod opening_log;
use keys::check_keys;
pub(crate) use keys::staff_key_in_force;
pub use keys::{BidderKey, StaffKey};

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::crypto::envelope::{self, Expectations, SectionKeys, SignedEnvelope, SignedWithdrawal};
use crate::crypto::keyproof::SectionKeyStatement;
use crate::crypto::merkle::{self, Hash};
use crate::crypto::translog::{
    self as fmt, Opening, SignedCheckpoint, SignedReceipt, SignedSectionHead,
};
use crate::crypto::{jcs, sha256_hex, sign};
use crate::service::sections::SectionParams;

pub const FORMAT: &str = "kaibiao-transcript/5";

// The API describes the transcript as the self-contained document it is;
// docs/PROTOCOL.md specifies its members.
impl utoipa::PartialSchema for Transcript {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <crate::domain::opaque::TranscriptDocument as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for Transcript {
    fn name() -> std::borrow::Cow<'static, str> {
        "Transcript".into()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transcript {
    pub format: String,
    pub section_id: String,
    pub exported_at_ms: i64,
    pub platform_key: String,
    pub params: Vec<ParamsVersion>,
    pub bidder_keys: Vec<BidderKey>,
    /// The identity keys of the staff who signed for the section — its
    /// custodians and the supervisors who countersigned — each with its
    /// registration statement and proof, like the bidders' keys.
    pub staff_keys: Vec<StaffKey>,
    pub bids: Vec<BidEntry>,
    pub openings: Vec<OpeningEntry>,
    pub late_attempts: Vec<LateEntry>,
    pub manifest: Value,
    pub log: LogExtract,
    /// The opening, once the record is announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opening: Option<opening::OpeningExtract>,
    /// The evaluation, once its result is published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<evaluation::EvaluationExtract>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamsVersion {
    pub version: i32,
    /// The parameters exactly as published (canonical JSON text).
    pub params_json: String,
    pub params_hash: String,
    pub published_at_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BidEntry {
    pub envelope_hash: String,
    pub status: String,
    pub signed_envelope: SignedEnvelope,
    pub received_at_ms: i64,
    pub completed_at_ms: Option<i64>,
    pub receipt: Option<SignedReceipt>,
    pub withdrawal: Option<WithdrawalEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalEntry {
    pub statement: SignedWithdrawal,
    pub receipt: SignedReceipt,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpeningEntry {
    pub index: u64,
    pub opening: Opening,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LateEntry {
    pub bidder: String,
    pub envelope_hash: String,
    pub stage: String,
    pub at_ms: i64,
    pub index: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogExtract {
    pub checkpoint: SignedCheckpoint,
    /// Where the section's chain ends at that checkpoint (ADR 8).
    pub head: SignedSectionHead,
    pub entries: Vec<LogEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogEntry {
    pub index: u64,
    pub leaf: Value,
    pub proof: Vec<String>,
}

/// What a successful verification established.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub section_id: String,
    pub params_versions: usize,
    pub log_entries: usize,
    pub bids: usize,
    pub accepted: usize,
    pub late_attempts: usize,
    pub manifest_root: String,
    pub opening: Option<opening::OpeningSummary>,
    pub evaluation: Option<evaluation::EvaluationSummary>,
}

/// The entries of a list are in strictly increasing order of `key`, so no
/// entry is listed twice and there is one order to write them in.
pub(crate) fn in_order<T, K: Ord + std::fmt::Display>(
    items: &[T],
    key: impl Fn(&T) -> K,
    what: &str,
) -> Result<(), String> {
    for w in items.windows(2) {
        let (a, b) = (key(&w[0]), key(&w[1]));
        ensure!(
            a < b,
            "{what}: {b} after {a} (entries must be unique and in increasing order)"
        );
    }
    Ok(())
}

/// No two entries of a list share `key`.
pub(crate) fn distinct<T, K: Eq + std::hash::Hash + std::fmt::Display>(
    items: &[T],
    key: impl Fn(&T) -> K,
    what: &str,
) -> Result<(), String> {
    let mut seen = HashSet::new();
    for i in items {
        let k = key(i);
        if seen.contains(&k) {
            return Err(format!("{what}: {k} is listed twice"));
        }
        seen.insert(k);
    }
    Ok(())
}

fn hash32(s: &str) -> Option<Hash> {
    crate::crypto::hex_array(s)
}

/// `e` is in the log under the signed checkpoint `cp` (whose root is `root`).
pub(super) fn included(e: &LogEntry, cp: &SignedCheckpoint, root: &Hash) -> Result<(), String> {
    let proof: Vec<Hash> = e
        .proof
        .iter()
        .map(|h| hash32(h).ok_or("malformed proof hash"))
        .collect::<Result<_, _>>()?;
    merkle::verify_inclusion(
        e.index,
        cp.checkpoint.size,
        &fmt::leaf_hash(&e.leaf),
        &proof,
        root,
    )
    .map_err(|_| {
        format!(
            "log entry {} is not in the signed log (inclusion proof fails)",
            e.index
        )
    })
}

pub fn verify(t: &Transcript) -> Result<Summary, String> {
    ensure!(
        t.format == FORMAT,
        "unknown transcript format {:?}",
        t.format
    );
    sign::parse_public(&t.platform_key).map_err(|e| format!("platform key: {e}"))?;

    // 0. One way to write each list: entries in index order, none twice.
    in_order(&t.log.entries, |e| e.index, "log entries")?;
    in_order(&t.openings, |o| o.index, "openings")?;
    in_order(&t.late_attempts, |l| l.index, "late attempts")?;
    distinct(&t.bids, |b| b.envelope_hash.clone(), "bids")?;
    distinct(
        &t.bidder_keys,
        |k| format!("{} {} {}", k.bidder, k.purpose, k.public_key),
        "bidder keys",
    )?;

    distinct(
        &t.staff_keys,
        |k| format!("{} {} {}", k.user, k.purpose, k.public_key),
        "staff keys",
    )?;

    // 1. The log extract: one signed checkpoint, every entry provably in it.
    let cp = &t.log.checkpoint;
    ensure!(
        cp.verify(&t.platform_key),
        "the log checkpoint's signature does not verify"
    );
    let root = cp.root().ok_or("malformed checkpoint root")?;
    let mut log: BTreeMap<u64, &Value> = BTreeMap::new();
    for e in &t.log.entries {
        included(e, cp, &root)?;
        ensure!(
            log.insert(e.index, &e.leaf).is_none(),
            "log entry {} appears twice",
            e.index
        );
    }
    // 1a. Every bidder and staff key with its registration statement and
    //     its logged registration (and retirement); an Ed25519 key's proof
    //     of possession verifies.
    check_keys(t, cp, &root)?;
    let logged = |ty: &str| -> Vec<(u64, &Value)> {
        log.iter()
            .filter(|(_, l)| l["type"] == ty && l["section_id"] == t.section_id.as_str())
            .map(|(i, l)| (*i, *l))
            .collect()
    };

    // 2. Every published version of the parameters, each logged.
    ensure!(!t.params.is_empty(), "no published parameters");
    let mut versions: HashMap<String, SectionParams> = HashMap::new();
    let published = logged("section.published");
    let amended = logged("section.amended");
    for (i, p) in t.params.iter().enumerate() {
        ensure!(
            p.version == i as i32 + 1,
            "parameter versions must run 1, 2, …"
        );
        ensure!(
            sha256_hex(p.params_json.as_bytes()) == p.params_hash,
            "parameters v{} do not hash to their params_hash",
            p.version
        );
        let value: Value = serde_json::from_str(&p.params_json)
            .map_err(|e| format!("parameters v{}: {e}", p.version))?;
        ensure!(
            jcs::canonicalize(&value).map_err(|e| e.to_string())? == p.params_json.as_bytes(),
            "parameters v{} are not in canonical form",
            p.version
        );
        let params: SectionParams =
            serde_json::from_value(value).map_err(|e| format!("parameters v{}: {e}", p.version))?;
        ensure!(
            params.section_id == t.section_id,
            "parameters v{} are for another section",
            p.version
        );
        ensure!(
            params.params_version == p.version,
            "parameters v{} carry version {}",
            p.version,
            params.params_version
        );
        ensure!(
            params.platform_key == t.platform_key,
            "parameters v{} name another platform key",
            p.version
        );
        let leaves = if p.version == 1 { &published } else { &amended };
        ensure!(
            leaves
                .iter()
                .any(|(_, l)| l["params_hash"] == p.params_hash.as_str()
                    && l["params_version"] == p.version
                    && l["deadline_ms"] == params.deadline_ms),
            "parameters v{} are not in the log",
            p.version
        );
        versions.insert(p.params_hash.clone(), params);
    }
    let latest = &versions[&t.params.last().expect("non-empty").params_hash];
    let (deadline, grace) = (latest.deadline_ms, latest.grace_ms);

    // 3. Custodian keys: registered in the log, signed by identity keys
    //    that were the custodian's registered ones when the leaf was logged.
    let key_leaves = logged("custodian.key");
    for c in &latest.custodians {
        ensure!(
            key_leaves.iter().any(|(i, l)| {
                l["custodian"] == c.user_id.as_str()
                    && staff_key_in_force(
                        &t.staff_keys,
                        c.user_id.as_str(),
                        "custodian_identity",
                        &c.identity_key,
                        (*i, l["at_ms"].as_i64().unwrap_or(i64::MIN)),
                    )
            }),
            "custodian {}'s identity key was not its registered one (with a proof) when its section key was logged",
            c.user_id
        );
        ensure!(
            key_leaves
                .iter()
                .any(|(_, l)| l["custodian"] == c.user_id.as_str()
                    && l["public_key"] == c.section_key.as_str()
                    && l["identity_key"] == c.identity_key.as_str()
                    && l["signature"]
                        .as_str()
                        .is_some_and(|sig| SectionKeyStatement {
                            custodian: c.user_id.as_str(),
                            identity_key: &c.identity_key,
                            public_key: &c.section_key,
                            section_id: &t.section_id,
                        }
                        .verify(sig))),
            "custodian {}'s section key is not in the log with a valid signature",
            c.user_id
        );
    }

    // 4. The manifest, as logged, at or after the deadline.
    let m = &t.manifest;
    ensure!(
        logged("section.manifest").iter().any(|(_, l)| *l == m),
        "the manifest is not in the log"
    );

    // 4a. Nothing of the section is missing (ADR 8): with the chain key the
    //     manifest reveals, every entry is the next leaf of the section's
    //     chain, and the chain ends where the platform's signed head says,
    //     at the extract's checkpoint.
    let chain_key: [u8; 32] = m["chain_key"]
        .as_str()
        .and_then(hash32)
        .ok_or("the manifest has no chain key")?;
    let chain = fmt::check_chain(&chain_key, log.iter().map(|(i, l)| (*i, *l)))?;
    let head = &t.log.head;
    ensure!(
        head.verify(&t.platform_key),
        "the section head's signature does not verify"
    );
    ensure!(
        head.head.section_id == t.section_id && head.head.log_size == cp.checkpoint.size,
        "the section head is for another section or another checkpoint"
    );
    ensure!(
        head.head.seq == chain.seq
            && head.head.index == chain.index
            && head.head.head == hex::encode(chain.prev),
        "the section's log is not complete: the transcript ends at leaf {} (index {}), the signed head at leaf {} (index {})",
        chain.seq,
        chain.index,
        head.head.seq,
        head.head.index
    );
    ensure!(
        m["deadline_ms"] == deadline && m["grace_ms"] == grace,
        "the manifest's deadline differs from the published one"
    );
    let sealed_at = m["sealed_at_ms"]
        .as_i64()
        .ok_or("manifest without sealed_at_ms")?;
    ensure!(
        sealed_at >= deadline + grace,
        "the section was sealed before its deadline"
    );

    // 5. Opened commitments: each is the logged leaf at its index.
    let mut openings: HashMap<u64, &Opening> = HashMap::new();
    for o in &t.openings {
        let c = o.opening.commitment().ok_or("malformed opening")?;
        let at = o.opening.event["completed_at_ms"]
            .as_i64()
            .or_else(|| o.opening.event["withdrawn_at_ms"].as_i64())
            .ok_or("an opened event has no time")?;
        ensure!(
            log.get(&o.index)
                .is_some_and(|l| fmt::is_commitment_leaf(l, &c, at)),
            "opening at log index {} does not match the logged commitment",
            o.index
        );
        ensure!(
            o.opening.event["section_id"] == t.section_id.as_str(),
            "an opening is for another section"
        );
        openings.insert(o.index, &o.opening);
    }

    // 6. Every bid: signed, sealed for this section, in time, receipted.
    let keys: HashSet<(&str, &str, &str)> = t
        .bidder_keys
        .iter()
        .map(|k| (k.bidder.as_str(), k.purpose.as_str(), k.public_key.as_str()))
        .collect();
    let mut by_hash: HashMap<&str, &BidEntry> = HashMap::new();
    for b in &t.bids {
        let (env, hash) = envelope::parse_signed(&b.signed_envelope)
            .map_err(|e| format!("bid {}: {e}", b.envelope_hash))?;
        ensure!(
            hash == b.envelope_hash,
            "bid {}: the envelope hashes to {hash}",
            b.envelope_hash
        );
        ensure!(
            env.section_id == t.section_id,
            "bid {hash}: for another section"
        );
        let params = versions.get(&env.params_hash).ok_or_else(|| {
            format!("bid {hash}: sealed against parameters that were never published")
        })?;
        let signer = t
            .bidder_keys
            .iter()
            .find(|k| {
                k.bidder == env.bidder
                    && k.purpose == "bidder_signing"
                    && k.public_key == env.signer_key
            })
            .ok_or_else(|| {
                format!("bid {hash}: the signer key is not the bidder's registered key")
            })?;
        ensure!(
            signer.registered_at_ms <= b.received_at_ms
                && signer.retired_at_ms.is_none_or(|r| b.received_at_ms < r),
            "bid {hash}: signed with a key that was not the bidder's registered key when the bid arrived"
        );
        // A registration back-dated after the fact would have to be logged
        // after the bid's commitment: the log's order says it came first.
        if let Some(at) = b.receipt.as_ref().and_then(|r| r.log_index()) {
            ensure!(
                signer.registered.index < at,
                "bid {hash}: its signer key's registration is logged after the bid's commitment"
            );
        }
        let enc_key = t
            .bidder_keys
            .iter()
            .find(|k| {
                k.bidder == env.bidder
                    && k.purpose == "bidder_encryption"
                    && env
                        .recipients
                        .iter()
                        .any(|r| r.kind == "bidder" && r.public_key == k.public_key)
            })
            .ok_or_else(|| {
                format!(
                    "bid {hash}: the bidder copy is not for the bidder's registered encryption key"
                )
            })?;
        let sk = section_keys(params, &env.params_hash)?;
        envelope::check(
            &env,
            &Expectations {
                section: &sk,
                signer_key: &env.signer_key,
                encryption_key: &enc_key.public_key,
                max_documents_bytes: u64::MAX,
            },
        )
        .map_err(|e| format!("bid {hash}: {e}"))?;
        ensure!(
            b.received_at_ms < deadline,
            "bid {hash}: the envelope arrived at or after the deadline"
        );
        match (&b.receipt, b.completed_at_ms) {
            (Some(r), Some(done)) => {
                r.verify(&t.platform_key, &hash)
                    .map_err(|e| format!("bid {hash}: receipt: {e}"))?;
                let rr = &r.receipt;
                ensure!(
                    rr.envelope_received_at_ms == b.received_at_ms
                        && rr.completed_at_ms == done
                        && rr.deadline_ms <= deadline,
                    "bid {hash}: the times differ from the receipt"
                );
                ensure!(
                    done < deadline + grace,
                    "bid {hash}: completed after the deadline"
                );
                ensure!(
                    openings
                        .get(&r.log_index().unwrap_or(u64::MAX))
                        .is_some_and(|o| **o == r.receipt.opening),
                    "bid {hash}: its receipt's log entry is not among the openings"
                );
            }
            (None, None) => ensure!(
                b.status == "incomplete",
                "bid {hash}: marked {} without a receipt",
                b.status
            ),
            _ => return Err(format!("bid {hash}: completion time and receipt disagree")),
        }
        if let Some(w) = &b.withdrawal {
            let key = sign::parse_public(&env.signer_key).map_err(|e| e.to_string())?;
            ensure!(
                w.statement.verify(&key),
                "bid {hash}: the withdrawal's signature does not verify"
            );
            ensure!(
                w.statement.withdrawal.envelope_hash == hash,
                "bid {hash}: the withdrawal names another bid"
            );
            w.receipt
                .verify(&t.platform_key, &hash)
                .map_err(|e| format!("bid {hash}: withdrawal receipt: {e}"))?;
            ensure!(
                w.receipt.receipt.kind == "withdrawal"
                    && w.receipt.receipt.completed_at_ms < deadline,
                "bid {hash}: withdrawn after the deadline"
            );
        }
        by_hash.insert(b.envelope_hash.as_str(), b);
    }

    // 7. Replay the logged events: which bid of each bidder stands?
    let mut events: Vec<(u64, &Value)> = openings.iter().map(|(i, o)| (*i, &o.event)).collect();
    events.sort_by_key(|(i, _)| *i);
    let mut standing: BTreeMap<String, String> = BTreeMap::new();
    for (_, e) in events {
        let bidder = e["bidder"]
            .as_str()
            .ok_or("event without bidder")?
            .to_string();
        let h = e["envelope_hash"]
            .as_str()
            .ok_or("event without envelope hash")?;
        let b = by_hash
            .get(h)
            .ok_or_else(|| format!("a logged event names bid {h}, which the transcript lacks"))?;
        ensure!(
            b.signed_envelope.envelope["bidder"] == bidder.as_str(),
            "event for bid {h} names another bidder"
        );
        match e["type"].as_str() {
            Some("bid.completed") => {
                ensure!(
                    e["completed_at_ms"].as_i64() == b.completed_at_ms,
                    "bid {h}: logged completion time differs"
                );
                ensure!(
                    e["received_at_ms"] == b.received_at_ms,
                    "bid {h}: logged arrival time differs"
                );
                standing.insert(bidder, h.to_string());
            }
            Some("bid.withdrawn") => {
                ensure!(
                    standing.get(&bidder).map(String::as_str) == Some(h),
                    "bid {h}: withdrawn but not standing"
                );
                standing.remove(&bidder);
            }
            _ => return Err("unknown event type".into()),
        }
    }
    let mut accepted: Vec<&String> = standing.values().collect();
    accepted.sort();
    for b in &t.bids {
        let want = if accepted.contains(&&b.envelope_hash) {
            "accepted"
        } else if b.withdrawal.is_some() {
            "withdrawn"
        } else if b.receipt.is_some() {
            "superseded"
        } else {
            "incomplete"
        };
        ensure!(
            b.status == want,
            "bid {}: marked {}, the log says {want}",
            b.envelope_hash,
            b.status
        );
    }
    let listed: Vec<&str> = m["bids"]
        .as_array()
        .ok_or("manifest without bids")?
        .iter()
        .map(|b| b["envelope_hash"].as_str().unwrap_or(""))
        .collect();
    ensure!(
        listed == accepted.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "the manifest lists other bids than the accepted ones"
    );
    let root = crate::service::bids::manifest_root(
        &accepted.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    );
    ensure!(
        m["root"] == root.as_str() && m["count"] == accepted.len(),
        "the manifest root does not cover exactly the accepted bids"
    );

    // 8. Late attempts: at or after the deadline, and logged.
    let late = logged("bid.late");
    for l in &t.late_attempts {
        ensure!(
            l.at_ms >= deadline,
            "a late attempt at {} is before the deadline",
            l.at_ms
        );
        ensure!(
            late.iter().any(|(i, x)| *i == l.index
                && x["bidder"] == l.bidder.as_str()
                && x["envelope_hash"] == l.envelope_hash.as_str()
                && x["at_ms"] == l.at_ms
                && x["stage"] == l.stage.as_str()),
            "a late attempt is not in the log as stated"
        );
    }
    ensure!(
        late.len() == t.late_attempts.len(),
        "the log records late attempts the transcript omits"
    );

    // 9. The opening: releases, decryptions, the record and its answers.
    let latest_hash = &t.params.last().expect("non-empty").params_hash;
    let opened = opening::verify(
        &opening::Context {
            section_id: &t.section_id,
            platform_key: &t.platform_key,
            params: latest,
            params_hash: latest_hash,
            manifest_root: &root,
            accepted: &accepted,
            bids: &by_hash,
            keys: &keys,
            log: &log,
            staff_keys: &t.staff_keys,
        },
        t.opening.as_ref(),
    )?;

    // 10. The evaluation: the draw, the passes, the signed scores, the
    //     result and the report.
    let bidders: BTreeSet<&str> = t
        .bids
        .iter()
        .filter_map(|b| b.signed_envelope.envelope["bidder"].as_str())
        .collect();
    let evaluated = evaluation::verify(
        &t.section_id,
        latest,
        &log,
        &keys,
        &bidders,
        t.evaluation.as_ref(),
    )?;

    Ok(Summary {
        section_id: t.section_id.clone(),
        params_versions: t.params.len(),
        log_entries: t.log.entries.len(),
        bids: t.bids.len(),
        accepted: accepted.len(),
        late_attempts: t.late_attempts.len(),
        manifest_root: root,
        opening: opened,
        evaluation: evaluated,
    })
}

fn section_keys(p: &SectionParams, hash: &str) -> Result<SectionKeys, String> {
    crate::service::bids::section_keys(p, hash).map_err(|e| e.message)
}
