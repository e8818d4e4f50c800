//! Decrypting the bids (DESIGN §4). In the bidder modes each bidder hands
//! over the bid master key it unwraps from its own copy; in custodian mode
//! (and for escrow), the chronograph's job rebuilds every pending bid's BMK
//! from the released keys and decrypts in parallel, committing each bid as
//! it is done — so a crash resumes with the bids left.
//!
//! Every key commitment is checked, the summary decrypted and checked, and
//! the documents decrypted through to nowhere (each chunk authenticated; no
//! plaintext is stored). A failure after the commitments hold is provably
//! the bidder's: it sealed something that does not open.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::announce::maybe_finish;
use super::{load, org_name, window_closed, window_open, DECRYPT_LEASE_MS};
use crate::crypto::envelope::{self, Envelope, SignedEnvelope};
use crate::crypto::opening::SignedKeyRelease;
use crate::crypto::{stream, x25519};
use crate::db::bids as bids_repo;
use crate::db::jobs::{self, JobRow};
use crate::db::opening::{self as repo, BidOpeningRow};
use crate::db::DbConn;
use crate::domain::identity::Role;
use crate::domain::ids::{OrgId, SectionId};
use crate::domain::section::{DecryptionMode, SectionState};
use crate::domain::states::{DecryptedVia, Fault, OpeningStatus};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::action::{Action, Change, IdempotencyKey, Tx};
use crate::service::sections::SectionParams;
use crate::service::{Actor, Services};
use crate::storage::BlobStore;

/// The outcome of decrypting one bid.
pub struct Outcome {
    pub(super) envelope_hash: String,
    pub(super) status: OpeningStatus,
    pub(super) fault: Option<Fault>,
    pub(super) reason: Option<String>,
    pub(super) via: DecryptedVia,
    summary: Option<envelope::SummaryFields>,
    bmk: Option<Zeroizing<[u8; 32]>>,
}

impl Outcome {
    /// `decrypted` or `revoked`.
    pub fn status(&self) -> OpeningStatus {
        self.status
    }

    pub(super) fn revoked(hash: &str, via: DecryptedVia, reason: String) -> Self {
        Outcome {
            envelope_hash: hash.into(),
            status: OpeningStatus::Revoked,
            fault: Some(Fault::Bidder),
            reason: Some(reason),
            via,
            summary: None,
            bmk: None,
        }
    }

    /// Not decrypted because of the platform (撤回).
    pub(super) fn withdrawn(hash: &str, via: DecryptedVia, reason: String) -> Self {
        Outcome {
            status: OpeningStatus::Withdrawn,
            fault: Some(Fault::Platform),
            ..Outcome::revoked(hash, via, reason)
        }
    }
}

/// Why a BMK could not be used: the bidder's key is wrong (it may try
/// again), or the platform cannot read the stored ciphertext.
enum DecryptFailure {
    WrongKey(String),
    Platform(anyhow::Error),
}

fn decrypt_bid(
    blobs: &BlobStore,
    params: &SectionParams,
    hash: &str,
    env: &Envelope,
    bmk: Zeroizing<[u8; 32]>,
    via: DecryptedVia,
) -> Result<Outcome, DecryptFailure> {
    use std::io::Read;
    let keys =
        envelope::part_keys(env, &bmk).map_err(|e| DecryptFailure::WrongKey(e.to_string()))?;
    let open_part = |p: &envelope::Part| -> Result<std::fs::File, DecryptFailure> {
        let path = blobs.path_of(&p.sha256).ok_or_else(|| {
            DecryptFailure::Platform(anyhow::anyhow!("ciphertext of {hash}/{} missing", p.name))
        })?;
        std::fs::File::open(path).map_err(|e| DecryptFailure::Platform(e.into()))
    };
    let Some(summary_part) = env.parts.iter().find(|p| p.name == envelope::PART_SUMMARY) else {
        return Ok(Outcome::revoked(hash, via, "the bid has no summary".into()));
    };
    let mut ct = Vec::with_capacity(summary_part.length.min(envelope::MAX_SUMMARY_BYTES) as usize);
    open_part(summary_part)?
        .take(envelope::MAX_SUMMARY_BYTES + 1024)
        .read_to_end(&mut ct)
        .map_err(|e| DecryptFailure::Platform(e.into()))?;
    let summary = match envelope::open_summary(env, &keys[envelope::PART_SUMMARY], &ct) {
        Ok(s) => s.summary.fields,
        Err(e) => return Ok(Outcome::revoked(hash, via, e.to_string())),
    };
    if let Err(e) = envelope::check_summary_fields(&params.summary_fields, &summary) {
        return Ok(Outcome::revoked(
            hash,
            via,
            format!("the summary does not fit the section: {e}"),
        ));
    }
    for part in env
        .parts
        .iter()
        .filter(|p| p.name != envelope::PART_SUMMARY)
    {
        let file = open_part(part)?;
        match stream::open(&keys[&part.name], file, part.length, std::io::sink()) {
            Ok(_) => {}
            Err(stream::StreamError::Io(e)) => return Err(DecryptFailure::Platform(e.into())),
            Err(e) => {
                return Ok(Outcome::revoked(
                    hash,
                    via,
                    format!("part {} does not decrypt: {e}", part.name),
                ))
            }
        }
    }
    Ok(Outcome {
        envelope_hash: hash.into(),
        status: OpeningStatus::Decrypted,
        fault: None,
        reason: None,
        via,
        summary: Some(summary),
        bmk: Some(bmk),
    })
}

/// Writes one bid's outcome (compare-and-set from pending) with its event
/// and log leaf. False if another node settled it first.
pub(super) fn settle(
    tx: &mut Tx<'_>,
    section_id: &SectionId,
    bidder: &OrgId,
    o: &Outcome,
) -> AppResult<bool> {
    let h = &o.envelope_hash;
    crate::service::transition::check(OpeningStatus::Pending, o.status)?;
    let atrest = &tx.svc.atrest;
    let row = BidOpeningRow {
        envelope_hash: h.clone(),
        section_id: section_id.clone(),
        status: o.status,
        fault: o.fault,
        reason: o.reason.clone(),
        via: Some(o.via),
        sealed_result: o
            .summary
            .as_ref()
            .map(|s| atrest.seal_json(&format!("result/{h}"), s)),
        summary: None,
        bmk: o
            .bmk
            .as_ref()
            .map(|k| atrest.seal(&format!("bmk/{h}"), k.as_slice())),
        decrypted_at: Some(tx.now),
    };
    if repo::settle_bid(tx.c, &row)? != 1 {
        return Ok(false);
    }
    let name = org_name(tx.c, bidder)?;
    tx.record(
        Change::new(section_id, "opening.bid_settled")
            .data(
                json!({"envelope_hash": h, "bidder": bidder, "name": name, "status": o.status,
                         "fault": o.fault, "reason": o.reason, "via": o.via, "at_ms": tx.now}),
            )
            .logged(
                json!({"envelope_hash": h, "bidder": bidder, "status": o.status,
                           "fault": o.fault, "reason": o.reason, "via": o.via}),
            ),
    )?;
    Ok(true)
}

pub(super) fn envelope_of(signed: &str) -> AppResult<Envelope> {
    let s: SignedEnvelope = serde_json::from_str(signed).map_err(AppError::internal)?;
    Ok(envelope::parse_signed(&s).map_err(AppError::internal)?.0)
}

/// A bidder's bid master key for its own bid.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BmkRequest {
    pub envelope_hash: String,
    /// The bid master key, hex (what `kaibiao bid decrypt` unwraps).
    pub bmk: String,
}

/// What the bidder's key opened.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BidDecrypted {
    pub envelope_hash: String,
    pub status: OpeningStatus,
    pub reason: Option<String>,
}

/// A bidder decrypts its own bid (the `bidders` modes) by handing over the
/// BMK it unwraps from its copy. A key that fails the commitments changes
/// nothing (the bidder may try again within the window).
pub async fn submit_bmk(
    svc: &Services,
    actor: &Actor,
    section_id: SectionId,
    req: BmkRequest,
    key: Option<IdempotencyKey>,
) -> AppResult<BidDecrypted> {
    actor.require(&[Role::Bidder])?;
    let org = actor.org()?.clone();
    let bmk: [u8; 32] = crate::crypto::hex_array(&req.bmk).ok_or_else(|| {
        AppError::invalid_field("bmk", "must be 32 bytes as 64 lower-case hex digits")
    })?;
    let bmk = Zeroizing::new(bmk);
    // Check phase and ownership before the (possibly long) decryption.
    let (sid, hash, o2) = (section_id.clone(), req.envelope_hash.clone(), org.clone());
    let s = svc.clone();
    let (params, env) = svc
        .db
        .run(move |c| {
            let x = load(c, &sid)?;
            x.need_phase(&[SectionState::Decrypting], "decrypting a bid")?;
            if x.mode() == DecryptionMode::Custodians {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    "this section is decrypted by its custodians; bidders need not act",
                ));
            }
            let bid = bids_repo::bid(c, &hash)?
                .filter(|b| b.section_id == sid)
                .ok_or_else(|| AppError::not_found("bid"))?;
            if bid.bidder != o2 {
                return Err(AppError::forbidden("you can decrypt only your own bid"));
            }
            // The window first: after its end the answer is the same
            // whether or not the chronograph has settled the bid yet.
            let o = repo::get_or_create(c, &sid)?;
            if o.escrow || !window_open(&o, s.now().millis()) {
                return Err(window_closed(&o));
            }
            let bo = repo::bid_opening(c, &hash)?.ok_or_else(|| AppError::not_found("bid"))?;
            if bo.status != OpeningStatus::Pending {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    format!("this bid is already {}", bo.status),
                ));
            }
            Ok((x.params, envelope_of(&bid.signed_envelope)?))
        })
        .await?;
    let blobs = svc.blobs.clone();
    let hash = req.envelope_hash.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        decrypt_bid(&blobs, &params, &hash, &env, bmk, DecryptedVia::Bidder)
    })
    .await
    .map_err(AppError::internal)?;
    let outcome = match outcome {
        Ok(o) => o,
        Err(DecryptFailure::WrongKey(why)) => {
            return Err(AppError::new(
                ErrorCode::KeyRejected,
                format!("this is not the key of the bid ({why}); nothing was changed"),
            ))
        }
        Err(DecryptFailure::Platform(e)) => return Err(AppError::internal(e)),
    };
    Action::new("decrypt", &section_id)
        .with_request(&req)
        .idempotent(key)
        .run(svc, actor, move |tx, _| {
            let x = load(tx.c, &section_id)?;
            x.need_phase(&[SectionState::Decrypting], "decrypting a bid")?;
            // Checked again at the moment of writing: the decryption took time.
            let o = repo::get_or_create(tx.c, &section_id)?;
            if o.escrow || !window_open(&o, tx.now) {
                return Err(window_closed(&o));
            }
            if !settle(tx, &section_id, &org, &outcome)? {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    "this bid was settled meanwhile",
                ));
            }
            maybe_finish(tx, &section_id)?;
            Ok(BidDecrypted {
                envelope_hash: outcome.envelope_hash.clone(),
                status: outcome.status,
                reason: outcome.reason.clone(),
            })
        })
        .await
}

/// What the custodian decryption works through.
struct Plan {
    params: SectionParams,
    secrets: Vec<(u32, x25519::SecretKey)>,
    /// `(bidder, envelope hash, envelope)` of every bid to open.
    todo: Vec<(OrgId, String, Envelope)>,
    via: DecryptedVia,
}

fn plan(svc: &Services, c: &mut DbConn, sid: &SectionId) -> AppResult<Option<Plan>> {
    let x = load(c, sid)?;
    if x.state() != SectionState::Decrypting {
        return Ok(None);
    }
    let mut secrets: Vec<(u32, x25519::SecretKey)> = Vec::new();
    for r in repo::releases_of(c, sid)? {
        let bytes = svc
            .atrest
            .open(&format!("{sid}/{}", r.custodian), &r.sealed_secret)
            .map_err(AppError::internal)?;
        let rel: SignedKeyRelease = serde_json::from_slice(&bytes).map_err(AppError::internal)?;
        let sk = rel.verify(sid.as_str()).map_err(AppError::internal)?;
        secrets.push((r.position as u32, sk));
    }
    if secrets.len() < x.params.threshold as usize {
        return Ok(None);
    }
    // In escrow mode only bids a countersigned platform fault covers.
    let covered = Covered::of(c, sid)?;
    let mut todo = Vec::new();
    for bo in repo::bid_openings_of(c, sid)?
        .into_iter()
        .filter(|b| b.status == OpeningStatus::Pending)
    {
        let bid = bids_repo::bid(c, &bo.envelope_hash)?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("bid row missing")))?;
        if x.mode() == DecryptionMode::BiddersWithEscrow && !covered.covers(&bid.bidder) {
            continue;
        }
        todo.push((
            bid.bidder.clone(),
            bo.envelope_hash,
            envelope_of(&bid.signed_envelope)?,
        ));
    }
    let via = if x.mode() == DecryptionMode::Custodians {
        DecryptedVia::Custodians
    } else {
        DecryptedVia::Escrow
    };
    Ok(Some(Plan {
        params: x.params,
        secrets,
        todo,
        via,
    }))
}

/// The custodian decryption (chronograph job).
pub async fn run_decrypt_job(svc: &Services, job: JobRow, node: String) -> AppResult<bool> {
    // One node decrypts at a time; a node that dies mid-way lets its lease
    // lapse and the next takes over with the bids still pending. (Were two
    // to run at once, each bid would still settle once: the settlement is a
    // compare-and-set.)
    let (id, n, now) = (job.id.clone(), node.clone(), svc.now().millis());
    let taken = svc
        .db
        .write(move |c| Ok(jobs::lease(c, &id, &n, now, now + DECRYPT_LEASE_MS)?))
        .await?;
    if taken != 1 {
        return Ok(false);
    }
    let (s, sid) = (svc.clone(), job.section_id.clone());
    let Some(Plan {
        params,
        secrets,
        todo,
        via,
    }) = svc.db.run(move |c| plan(&s, c, &sid)).await?
    else {
        return finish_job(svc, &job, &node).await;
    };
    let total = todo.len();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<AppResult<(String, Outcome)>>(8);
    let blobs = svc.blobs.clone();
    let bidders: HashMap<String, OrgId> = todo
        .iter()
        .map(|(b, h, _)| (h.clone(), b.clone()))
        .collect();
    let threads = svc.config.opening.decrypt_threads;
    let worker = tokio::task::spawn_blocking(move || {
        let todo = todo.into_iter().map(|(_, h, e)| (h, e)).collect();
        open_all(&blobs, &params, todo, &secrets, via, threads, |r| {
            tx.blocking_send(r).is_ok()
        });
    });
    let mut done = 0usize;
    while let Some(r) = rx.recv().await {
        let (hash, outcome) = r?;
        let bidder = bidders[&hash].clone();
        let sid = job.section_id.clone();
        let s = svc.clone();
        let (id, n) = (job.id.clone(), node.clone());
        svc.db
            .write(move |c| {
                let now = s.now().millis();
                jobs::renew(c, &id, &n, now + DECRYPT_LEASE_MS)?;
                let x = load(c, &sid)?;
                if x.state() == SectionState::Decrypting {
                    settle(&mut Tx::system(&s, c, now), &sid, &bidder, &outcome)?;
                }
                Ok(())
            })
            .await?;
        done += 1;
    }
    worker.await.map_err(AppError::internal)?;
    tracing::info!(section = %job.section_id, bids = done, of = total, "custodian decryption done");
    let sid = job.section_id.clone();
    let s = svc.clone();
    svc.db
        .write(move |c| maybe_finish(&mut Tx::system(&s, c, s.now().millis()), &sid))
        .await?;
    finish_job(svc, &job, &node).await
}

async fn finish_job(svc: &Services, job: &JobRow, node: &str) -> AppResult<bool> {
    let (id, node) = (job.id.clone(), node.to_string());
    let now = svc.now().millis();
    let n = svc
        .db
        .write(move |c| Ok(jobs::complete(c, &id, &node, now)?))
        .await?;
    svc.kick_workers();
    Ok(n == 1)
}

/// Opens `bids` with the custodians' released keys on `threads` threads (0:
/// one per core), handing each `(envelope hash, outcome)` to `each` as it is
/// ready; stops early when `each` returns false. Blocking: run it off the
/// async executor. This is the whole of the decryption's work; the job adds
/// one short transaction per bid.
pub fn open_all(
    blobs: &BlobStore,
    params: &SectionParams,
    bids: Vec<(String, Envelope)>,
    secrets: &[(u32, x25519::SecretKey)],
    via: DecryptedVia,
    threads: usize,
    each: impl Fn(AppResult<(String, Outcome)>) -> bool + Sync,
) {
    let queue = std::sync::Mutex::new(bids.into_iter());
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let next = queue.lock().expect("queue").next();
                let Some((hash, env)) = next else { break };
                let r = open_with_custodians(blobs, params, &hash, &env, secrets, via);
                if !each(r.map(|o| (hash, o))) {
                    break;
                }
            });
        }
    });
}

fn open_with_custodians(
    blobs: &BlobStore,
    params: &SectionParams,
    hash: &str,
    env: &Envelope,
    secrets: &[(u32, x25519::SecretKey)],
    via: DecryptedVia,
) -> AppResult<Outcome> {
    let mut shares = Vec::new();
    for (pos, sk) in secrets {
        match envelope::open_share(env, *pos, sk) {
            Ok(s) => shares.push(s),
            Err(_) => {
                return Ok(Outcome::revoked(
                    hash,
                    via,
                    format!(
                        "the key share for custodian {pos} does not unwrap with its released key"
                    ),
                ))
            }
        }
    }
    let refs: Vec<&[u8]> = shares.iter().map(|s| s.as_slice()).collect();
    let bmk = match envelope::recover_bmk(env, &refs) {
        Ok(k) => k,
        Err(e) => return Ok(Outcome::revoked(hash, via, e.to_string())),
    };
    match decrypt_bid(blobs, params, hash, env, bmk, via) {
        Ok(o) => Ok(o),
        Err(DecryptFailure::WrongKey(why)) => Ok(Outcome::revoked(
            hash,
            via,
            format!("the key rebuilt from the shares fails the bid's commitments: {why}"),
        )),
        Err(DecryptFailure::Platform(e)) => Err(AppError::internal(e)),
    }
}

/// Which bidders a countersigned platform fault covers.
pub(super) struct Covered {
    all: bool,
    bidders: BTreeSet<OrgId>,
}

impl Covered {
    pub(super) fn of(c: &mut DbConn, section_id: &SectionId) -> AppResult<Covered> {
        let mut out = Covered {
            all: false,
            bidders: BTreeSet::new(),
        };
        for i in repo::incidents_of(c, section_id)?
            .into_iter()
            .filter(|i| i.countersignature.is_some())
        {
            let list: Vec<OrgId> = serde_json::from_str(&i.bidders).map_err(AppError::internal)?;
            if list.is_empty() {
                out.all = true;
            }
            out.bidders.extend(list);
        }
        Ok(out)
    }

    pub(super) fn covers(&self, bidder: &OrgId) -> bool {
        self.all || self.bidders.contains(bidder)
    }
}
