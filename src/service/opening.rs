//! The opening (开标, DESIGN §4 and §5): from the sealing through the
//! decryption window, the announcement (唱标), confirmations and objections
//! (异议), to the closed record signed by the platform and countersigned by
//! the supervisor.
//!
//! Every change here is one transaction that (1) checks the section's phase
//! and the caller's standing, (2) makes the change, (3) appends the room
//! event, (4) logs the leaf in the transparency log when it matters to the
//! record, and (5) writes the audit record — so the room, the log and the
//! tables can never disagree. Timed steps (the window's end, the custodian
//! decryption) are chronograph jobs, and so survive a crash.
//!
//! Nothing that would reveal a price exists in the clear before the
//! announcement: released keys and decrypted summaries are sealed at rest
//! (`crypto::atrest`) until the record is announced, then published.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::sections::SectionParams;
use super::{confidential, policy, translog, Actor, Services};
use crate::crypto::envelope::{self, Envelope, SignedEnvelope};
use crate::crypto::opening::{
    self as fmt, Closing, ClosingConfirmation, ClosingObjection, Confirmation, IncidentRuling,
    SignedKeyRelease,
};
use crate::crypto::{stream, x25519};
use crate::db::audit::{self, Who};
use crate::db::jobs::{self, JobRow};
use crate::db::opening::{
    self as repo, BidOpeningRow, ConfirmationRow, IdempotencyRow, IncidentRow, KeyReleaseRow,
    ObjectionRow, OpeningRow, SigninRow,
};
use crate::db::sections::{ProjectRow, SectionRow};
use crate::db::{
    bids as bids_repo, events, identity as identity_repo, keys as keys_repo,
    sections as sections_repo, DbConn,
};
use crate::domain::identity::{KeyPurpose, Role};
use crate::domain::ids::{IncidentId, ObjectionId, SigninId};
use crate::domain::section::{DecryptionMode, SectionState};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::notify::templates::{self, SectionRef};

/// The chronograph job that ends the decryption window.
pub const WINDOW_JOB: &str = "opening.window_end";
/// The chronograph job that decrypts with the custodians' released keys.
pub const DECRYPT_JOB: &str = "opening.decrypt";
/// How long a node holds the decryption job without settling a bid before
/// another node may take it over (platform time). Each settled bid renews it.
const DECRYPT_LEASE_MS: i64 = 30_000;

const MAX_TEXT: usize = 2000;
/// The longest a host may stretch a window, in total.
const MAX_WINDOW_MS: i64 = 24 * 3600 * 1000;

// ------------------------------------------------------------------ context

/// A section as the opening needs it.
pub(super) struct Ctx {
    pub(super) s: SectionRow,
    pub(super) p: ProjectRow,
    pub(super) params: SectionParams,
    pub(super) state: SectionState,
    mode: DecryptionMode,
}

pub(super) fn load(c: &mut DbConn, id: &str) -> AppResult<Ctx> {
    let (s, p) = sections_repo::section_with_project(c, id)?
        .ok_or_else(|| AppError::not_found("section"))?;
    let state = SectionState::from_db(&s.state).map_err(AppError::internal)?;
    if state == SectionState::Draft {
        return Err(AppError::not_found("section"));
    }
    let params: SectionParams = serde_json::from_str(
        s.params_json
            .as_deref()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("published without params")))?,
    )
    .map_err(AppError::internal)?;
    let mode = DecryptionMode::from_db(&params.decryption_mode).map_err(AppError::internal)?;
    Ok(Ctx {
        s,
        p,
        params,
        state,
        mode,
    })
}

pub(super) fn wrong_phase(state: SectionState, what: &str) -> AppError {
    AppError::new(
        ErrorCode::InvalidTransition,
        format!("{what} is not possible while the section is {state}"),
    )
}

fn need_phase(x: &Ctx, allowed: &[SectionState], what: &str) -> AppResult<()> {
    if allowed.contains(&x.state) {
        Ok(())
    } else {
        Err(wrong_phase(x.state, what))
    }
}

/// Whether the decryption window is open at `now`: before its end, or with
/// its clock stopped by an incident. The window's end is exact to the
/// millisecond whether or not the chronograph has got to it yet.
fn window_open(o: &OpeningRow, now: i64) -> bool {
    o.paused_since.is_some() || o.window_ends_at.is_some_and(|end| now < end)
}

fn window_closed(o: &OpeningRow) -> AppError {
    AppError::new(
        ErrorCode::InvalidTransition,
        format!(
            "the decryption window closed at {}",
            crate::domain::time::Timestamp::from_millis(o.window_ends_at.unwrap_or_default())
                .shanghai_rfc3339()
        ),
    )
}

/// The section, for a host who runs it (any other host: forbidden).
pub(super) fn hosted(c: &mut DbConn, a: &Actor, section_id: &str, what: &str) -> AppResult<Ctx> {
    let x = load(c, section_id)?;
    let st = policy::standing(c, &a.user, &x.p, Some(section_id))?;
    policy::require_runs(&st, true, what)?;
    Ok(x)
}

pub(super) fn bounded_text(field: &str, v: &str) -> AppResult<String> {
    let mut p = crate::domain::problems::Problems::new();
    let t = super::text_field(&mut p, field, v, 1, MAX_TEXT);
    if p.is_empty() {
        Ok(t)
    } else {
        Err(AppError::validation(p.into_vec()))
    }
}

fn org_name(c: &mut DbConn, org: &str) -> AppResult<String> {
    Ok(identity_repo::find_org(c, org)?
        .map(|o| o.name)
        .unwrap_or_else(|| org.to_string()))
}

/// One state change of the opening: the room event, the log leaf (if the
/// record needs it) and the audit record, in the caller's transaction.
#[allow(clippy::too_many_arguments)]
pub(super) fn record(
    svc: &Services,
    c: &mut DbConn,
    section_id: &str,
    kind: &str,
    data: Value,
    leaf: Option<Value>,
    who: &Who,
    now: i64,
) -> AppResult<i64> {
    if let Some(mut leaf) = leaf {
        leaf["type"] = json!(kind);
        leaf["section_id"] = json!(section_id);
        leaf["at_ms"] = json!(now);
        translog::append(svc, c, &leaf, kind, Some(section_id), now)?;
    }
    let seq = events::append(c, section_id, kind, &data, who.actor_id.as_deref(), now)?;
    audit::record(c, now, who, kind, section_id, &json!({"seq": seq}))?;
    Ok(seq)
}

// -------------------------------------------------------------- idempotency

/// A client's idempotency key for one call (`Idempotency-Key` header).
#[derive(Debug, Clone)]
pub struct Idem {
    pub key: String,
    pub route: String,
}

impl Idem {
    pub fn parse(key: Option<&str>, route: &str) -> AppResult<Option<Idem>> {
        match key {
            None => Ok(None),
            Some(k)
                if (8..=128).contains(&k.len())
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) =>
            {
                Ok(Some(Idem {
                    key: k.to_string(),
                    route: route.to_string(),
                }))
            }
            Some(_) => Err(AppError::bad_request(
                "Idempotency-Key must be 8 to 128 characters of A–Z, a–z, 0–9, '-', '_', '.', ':'",
            )),
        }
    }
}

/// Runs a change once per idempotency key: a repeated call gets the first
/// answer and changes nothing.
fn once(
    c: &mut DbConn,
    actor: &Actor,
    idem: &Option<Idem>,
    now: i64,
    f: impl FnOnce(&mut DbConn) -> AppResult<Value>,
) -> AppResult<Value> {
    let user = actor.user.id.as_str();
    if let Some(i) = idem {
        if let Some(prev) = repo::idempotent(c, user, &i.key)? {
            if prev.route != i.route {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    "this Idempotency-Key was used for another request",
                ));
            }
            return serde_json::from_str(&prev.body).map_err(AppError::internal);
        }
    }
    let v = f(c)?;
    if let Some(i) = idem {
        repo::remember(
            c,
            &IdempotencyRow {
                user_id: user.into(),
                key: i.key.clone(),
                route: i.route.clone(),
                status: 200,
                body: v.to_string(),
                created_at: now,
            },
        )
        .map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                AppError::new(
                    ErrorCode::Conflict,
                    "a request with this Idempotency-Key is in progress",
                )
            } else {
                e.into()
            }
        })?;
    }
    Ok(v)
}

/// Runs one opening action: its own write transaction, idempotent, and the
/// workers kicked afterwards (jobs or mail it may have scheduled).
pub(super) async fn act(
    svc: &Services,
    actor: &Actor,
    idem: Option<Idem>,
    f: impl FnOnce(&Services, &Actor, &mut DbConn, i64) -> AppResult<Value> + Send + 'static,
) -> AppResult<Value> {
    let now = svc.now().millis();
    let (s, a) = (svc.clone(), actor.clone());
    let v = svc
        .db
        .write(move |c| once(c, &a, &idem, now, |c| f(&s, &a, c, now)))
        .await?;
    svc.kick_workers();
    Ok(v)
}

// ------------------------------------------------------------ at the sealing

/// Called in the chronograph's transaction right after the manifest: opens
/// the sign-ins, then either fails the section (流标, fewer bids than
/// `min_bidders`) or starts the decryption window.
pub fn begin(
    svc: &Services,
    c: &mut DbConn,
    section_id: &str,
    accepted: &[(String, String)],
    now: i64,
) -> AppResult<()> {
    let x = load(c, section_id)?;
    let who = Who::system();
    let mut opening = repo::get_or_create(c, section_id)?;

    // Sign-ins made before the deadline come out of hiding.
    let tag = confidential::section(&svc.atrest, section_id);
    let bidders: BTreeSet<&str> = accepted.iter().map(|(_, b)| b.as_str()).collect();
    let mut signed = Vec::new();
    for row in repo::signins_of(c, &tag)? {
        let rec: SigninRecord = svc
            .atrest
            .open_json(&row.id, &row.record)
            .map_err(AppError::internal)?;
        if bidders.contains(rec.bidder.as_str()) {
            let name = org_name(c, &rec.bidder)?;
            signed.push(json!({"bidder": rec.bidder, "name": name, "at_ms": rec.at_ms}));
        }
    }
    if !signed.is_empty() {
        record(
            svc,
            c,
            section_id,
            "opening.signins",
            json!({ "bidders": signed }),
            None,
            &who,
            now,
        )?;
    }

    let n = accepted.len() as i32;
    if n < x.params.min_bidders {
        if sections_repo::cas_state(c, section_id, "sealed", "failed", now)? != 1 {
            return Err(AppError::internal(anyhow::anyhow!("section left sealed")));
        }
        let reason = format!(
            "{n} bid(s) received, fewer than the {} required",
            x.params.min_bidders
        );
        fail_notices(svc, c, &x, &reason, now)?;
        record(
            svc,
            c,
            section_id,
            "section.failed",
            json!({"reason": "too_few_bids", "bids": n, "min_bidders": x.params.min_bidders}),
            Some(json!({"reason": "too_few_bids", "bids": n, "min_bidders": x.params.min_bidders})),
            &who,
            now,
        )?;
        return Ok(());
    }

    if sections_repo::cas_state(c, section_id, "sealed", "decrypting", now)? != 1 {
        return Err(AppError::internal(anyhow::anyhow!("section left sealed")));
    }
    let ends = now + x.params.window_ms;
    opening.window_started_at = Some(now);
    opening.window_ends_at = Some(ends);
    repo::save(c, &opening)?;
    let mut bids = Vec::new();
    for (hash, bidder) in accepted {
        repo::insert_bid_opening(
            c,
            &BidOpeningRow {
                envelope_hash: hash.clone(),
                section_id: section_id.into(),
                status: "pending".into(),
                fault: None,
                reason: None,
                via: None,
                sealed_result: None,
                summary: None,
                bmk: None,
                decrypted_at: None,
            },
        )?;
        let name = org_name(c, bidder)?;
        bids.push(json!({"envelope_hash": hash, "bidder": bidder, "name": name}));
    }
    jobs::schedule(c, section_id, WINDOW_JOB, ends, now)?;
    record(
        svc,
        c,
        section_id,
        "opening.started",
        json!({
            "mode": x.mode.as_str(), "threshold": x.params.threshold,
            "custodians": x.params.custodians.len(), "min_bidders": x.params.min_bidders,
            "window_started_at_ms": now, "window_ends_at_ms": ends, "bids": bids,
        }),
        Some(json!({"mode": x.mode.as_str(), "window_ends_at_ms": ends, "bids": n})),
        &who,
        now,
    )?;
    Ok(())
}

fn fail_notices(svc: &Services, c: &mut DbConn, x: &Ctx, reason: &str, now: i64) -> AppResult<()> {
    let link = format!("{}/?section={}", svc.public_url, x.s.id);
    let mail = templates::failed(
        &SectionRef {
            project_name: &x.p.name,
            section_code: &x.s.code,
            section_name: &x.s.name,
            link: &link,
        },
        reason,
    );
    super::sections::notify_registered(svc, c, &x.s.id, &mail, now)?;
    Ok(())
}

// ------------------------------------------------------------------ sign-in

#[derive(Debug, Serialize, Deserialize)]
struct SigninRecord {
    bidder: String,
    user: String,
    at_ms: i64,
}

/// The host opens sign-in (签到) for the opening.
pub async fn open_signin(
    svc: &Services,
    actor: &Actor,
    section_id: String,
    idem: Option<Idem>,
) -> AppResult<Value> {
    actor.require(&[Role::Host])?;
    act(svc, actor, idem, move |svc, a, c, now| {
        let x = hosted(c, a, &section_id, "open sign-in")?;
        use SectionState::*;
        need_phase(&x, &[Published, Sealed, Decrypting], "opening sign-in")?;
        let mut o = repo::get_or_create(c, &section_id)?;
        if o.signin_open {
            return Ok(json!({"signin_open": true}));
        }
        o.signin_open = true;
        repo::save(c, &o)?;
        record(
            svc,
            c,
            &section_id,
            "opening.signin_opened",
            json!({}),
            None,
            &a.who(),
            now,
        )?;
        Ok(json!({"signin_open": true}))
    })
    .await
}

/// A bidder signs in. Before the deadline the sign-in is filed blind (the
/// number of bidders is confidential) and only the bidder learns it took;
/// it is announced in the room at the sealing.
pub async fn sign_in(
    svc: &Services,
    actor: &Actor,
    section_id: String,
    idem: Option<Idem>,
) -> AppResult<Value> {
    actor.require(&[Role::Bidder])?;
    let org = actor.org()?.to_string();
    act(svc, actor, idem, move |svc, a, c, now| {
        let x = load(c, &section_id)?;
        use SectionState::*;
        need_phase(&x, &[Published, Sealed, Decrypting], "signing in")?;
        let o = repo::get_or_create(c, &section_id)?;
        if !o.signin_open {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                "the host has not opened sign-in yet",
            ));
        }
        let deadline = x.s.deadline_at.unwrap_or(i64::MAX);
        let before = x.state == Published && now < deadline;
        // After the sealing: only bidders whose bid stands.
        if !before
            && !bids_repo::bids_of(c, &section_id)?
                .into_iter()
                .any(|b| b.bidder == org && b.status == "accepted")
        {
            return Err(AppError::forbidden(
                "only bidders with a bid in this opening can sign in",
            ));
        }
        let id = SigninId::new().into_string();
        let rec = SigninRecord {
            bidder: org.clone(),
            user: a.user.id.to_string(),
            at_ms: now,
        };
        let fresh = repo::insert_signin(
            c,
            &SigninRow {
                id: id.clone(),
                section_tag: confidential::section(&svc.atrest, &section_id),
                member_tag: confidential::signin(&svc.atrest, &section_id, &org),
                record: svc.atrest.seal_json(&id, &rec),
                created_at: now,
            },
        )?;
        if !fresh {
            return Ok(json!({"signed_in": true, "first": false}));
        }
        if before {
            // No actor and no section in the audit trail before the deadline.
            audit::record(c, now, &Who::system(), "opening.sign_in", &id, &json!({}))?;
            return Ok(json!({"signed_in": true, "first": true}));
        }
        let name = org_name(c, &org)?;
        record(
            svc,
            c,
            &section_id,
            "opening.signed_in",
            json!({"bidder": org, "name": name, "at_ms": now}),
            None,
            &a.who(),
            now,
        )?;
        Ok(json!({"signed_in": true, "first": true}))
    })
    .await
}

// ------------------------------------------------------------- key release

/// A custodian releases its per-section key (custodian and escrow modes).
pub async fn release_key(
    svc: &Services,
    actor: &Actor,
    section_id: String,
    release: SignedKeyRelease,
    idem: Option<Idem>,
) -> AppResult<Value> {
    actor.require(&[Role::Custodian])?;
    let me = actor.user.id.to_string();
    act(svc, actor, idem, move |svc, a, c, now| {
        let x = load(c, &section_id)?;
        let st = policy::standing(c, &a.user, &x.p, Some(&section_id))?;
        if !st.custodian {
            return Err(AppError::forbidden(
                "you are not a custodian of this section",
            ));
        }
        if x.state == SectionState::Published || x.state == SectionState::Sealed {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                "keys are released only once the opening has begun, after the deadline",
            ));
        }
        need_phase(&x, &[SectionState::Decrypting], "releasing a key")?;
        let o = repo::get_or_create(c, &section_id)?;
        match x.mode {
            DecryptionMode::Custodians if !window_open(&o, now) => return Err(window_closed(&o)),
            DecryptionMode::Custodians => {}
            DecryptionMode::Bidders => {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    "in this section each bidder decrypts its own bid; no custodian key is needed",
                ))
            }
            DecryptionMode::BiddersWithEscrow => {
                let upheld = repo::incidents_of(c, &section_id)?
                    .iter()
                    .any(|i| i.countersignature.is_some());
                if !upheld && !o.escrow {
                    return Err(AppError::new(
                        ErrorCode::InvalidTransition,
                        "custodian keys are needed only for bids a recorded platform fault left \
                         undecrypted; none is recorded",
                    ));
                }
            }
        }
        let r = &release.release;
        let mine = x
            .params
            .custodians
            .iter()
            .find(|k| k.user_id == me)
            .ok_or_else(|| AppError::forbidden("you are not a custodian of this section"))?;
        let bad = |m: &str| AppError::new(ErrorCode::KeyRejected, m.to_string());
        if r.custodian != me || r.position != mine.position as u32 {
            return Err(bad("the release names another custodian or position"));
        }
        if r.public_key != mine.section_key {
            return Err(bad(
                "the release is for another key than the one you registered for this section",
            ));
        }
        if r.identity_key != mine.identity_key {
            return Err(bad(
                "the release is not signed with your registered identity key",
            ));
        }
        release
            .verify(&section_id)
            .map_err(|e| bad(&e.to_string()))?;
        if (r.released_at_ms - now).abs() > 10 * 60 * 1000 {
            return Err(bad(
                "the release's time is more than 10 minutes off the server's clock",
            ));
        }
        let existing = repo::releases_of(c, &section_id)?;
        if existing.iter().any(|k| k.custodian == me) {
            return Err(AppError::new(
                ErrorCode::Conflict,
                "you have already released your key for this section",
            ));
        }
        let signed = serde_json::to_string(&release).expect("release");
        let row_id = format!("{section_id}/{me}");
        repo::insert_release(
            c,
            &KeyReleaseRow {
                section_id: section_id.clone(),
                custodian: me.clone(),
                position: mine.position,
                sealed_secret: svc.atrest.seal(&row_id, signed.as_bytes()),
                secret_key: None,
                signature: release.signature.clone(),
                released_at: now,
            },
        )?;
        let released = existing.len() + 1;
        let threshold = x.params.threshold as usize;
        record(
            svc,
            c,
            &section_id,
            "opening.key_released",
            json!({"position": mine.position, "released": released, "threshold": threshold,
                   "staff": {"custodian": me}}),
            Some(json!({
                "position": mine.position, "custodian": me, "public_key": r.public_key,
                "release_hash": fmt::json_hash(&serde_json::to_value(&release).expect("release")),
            })),
            &a.who(),
            now,
        )?;
        if released >= threshold {
            jobs::schedule(c, &section_id, DECRYPT_JOB, now, now)?;
        }
        Ok(json!({"released": released, "threshold": threshold}))
    })
    .await
}

// ---------------------------------------------------------------- decrypting

/// The outcome of decrypting one bid.
pub struct Outcome {
    envelope_hash: String,
    status: &'static str,
    fault: Option<&'static str>,
    reason: Option<String>,
    via: &'static str,
    summary: Option<envelope::SummaryFields>,
    bmk: Option<Zeroizing<[u8; 32]>>,
}

impl Outcome {
    /// `decrypted` or `revoked`.
    pub fn status(&self) -> &'static str {
        self.status
    }

    fn revoked(hash: &str, via: &'static str, reason: String) -> Self {
        Outcome {
            envelope_hash: hash.into(),
            status: "revoked",
            fault: Some("bidder"),
            reason: Some(reason),
            via,
            summary: None,
            bmk: None,
        }
    }
}

/// Why a BMK could not be used: the bidder's key is wrong (it may try
/// again), or the platform cannot read the stored ciphertext.
enum DecryptFailure {
    WrongKey(String),
    Platform(anyhow::Error),
}

/// Checks every key commitment, decrypts the summary and checks it, and
/// decrypts the documents through to nowhere (each chunk authenticated; no
/// plaintext is stored). A failure after the commitments hold is provably
/// the bidder's: it sealed something that does not open.
fn decrypt_bid(
    blobs: &crate::storage::BlobStore,
    params: &SectionParams,
    hash: &str,
    env: &Envelope,
    bmk: Zeroizing<[u8; 32]>,
    via: &'static str,
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
        status: "decrypted",
        fault: None,
        reason: None,
        via,
        summary: Some(summary),
        bmk: Some(bmk),
    })
}

/// Writes one bid's outcome (compare-and-set from pending) with its event
/// and log leaf. False if another node settled it first.
fn settle(
    svc: &Services,
    c: &mut DbConn,
    section_id: &str,
    bidder: &str,
    o: &Outcome,
    who: &Who,
    now: i64,
) -> AppResult<bool> {
    let h = &o.envelope_hash;
    let row = BidOpeningRow {
        envelope_hash: h.clone(),
        section_id: section_id.into(),
        status: o.status.into(),
        fault: o.fault.map(str::to_string),
        reason: o.reason.clone(),
        via: Some(o.via.into()),
        sealed_result: o
            .summary
            .as_ref()
            .map(|s| svc.atrest.seal_json(&format!("result/{h}"), s)),
        summary: None,
        bmk: o
            .bmk
            .as_ref()
            .map(|k| svc.atrest.seal(&format!("bmk/{h}"), k.as_slice())),
        decrypted_at: Some(now),
    };
    if repo::settle_bid(c, &row)? != 1 {
        return Ok(false);
    }
    let name = org_name(c, bidder)?;
    record(
        svc,
        c,
        section_id,
        "opening.bid_settled",
        json!({"envelope_hash": h, "bidder": bidder, "name": name, "status": o.status,
               "fault": o.fault, "reason": o.reason, "via": o.via, "at_ms": now}),
        Some(
            json!({"envelope_hash": h, "bidder": bidder, "status": o.status,
                    "fault": o.fault, "reason": o.reason, "via": o.via}),
        ),
        who,
        now,
    )?;
    Ok(true)
}

fn envelope_of(signed: &str) -> AppResult<Envelope> {
    let s: SignedEnvelope = serde_json::from_str(signed).map_err(AppError::internal)?;
    Ok(envelope::parse_signed(&s).map_err(AppError::internal)?.0)
}

#[derive(Debug, Deserialize)]
pub struct BmkRequest {
    pub envelope_hash: String,
    /// The bid master key, hex (what `kaibiao bid decrypt` unwraps).
    pub bmk: String,
}

/// A bidder decrypts its own bid (the `bidders` modes) by handing over the
/// BMK it unwraps from its copy. A key that fails the commitments changes
/// nothing (the bidder may try again within the window).
pub async fn submit_bmk(
    svc: &Services,
    actor: &Actor,
    section_id: String,
    req: BmkRequest,
    idem: Option<Idem>,
) -> AppResult<Value> {
    actor.require(&[Role::Bidder])?;
    let org = actor.org()?.to_string();
    let bmk: [u8; 32] = crate::crypto::hex_array(&req.bmk)
        .ok_or_else(|| AppError::invalid_field("bmk", "must be 32 bytes as 64 hex digits"))?;
    let bmk = Zeroizing::new(bmk);
    // Check phase and ownership before the (possibly long) decryption.
    let (sid, hash, o2) = (section_id.clone(), req.envelope_hash.clone(), org.clone());
    let s = svc.clone();
    let (params, env) = svc
        .db
        .run(move |c| {
            let x = load(c, &sid)?;
            need_phase(&x, &[SectionState::Decrypting], "decrypting a bid")?;
            if x.mode == DecryptionMode::Custodians {
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
            if bo.status != "pending" {
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
        decrypt_bid(&blobs, &params, &hash, &env, bmk, "bidder")
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
    act(svc, actor, idem, move |svc, a, c, now| {
        let x = load(c, &section_id)?;
        need_phase(&x, &[SectionState::Decrypting], "decrypting a bid")?;
        // Checked again at the moment of writing: the decryption took time.
        let o = repo::get_or_create(c, &section_id)?;
        if o.escrow || !window_open(&o, now) {
            return Err(window_closed(&o));
        }
        if !settle(svc, c, &section_id, &org, &outcome, &a.who(), now)? {
            return Err(AppError::new(ErrorCode::Conflict, "this bid was settled meanwhile"));
        }
        let status = outcome.status;
        maybe_finish(svc, c, &section_id, now)?;
        Ok(json!({"envelope_hash": outcome.envelope_hash, "status": status, "reason": outcome.reason}))
    })
    .await
}

/// The custodian decryption (chronograph job): rebuilds every pending bid's
/// BMK from the released keys and decrypts, in parallel, committing each
/// bid as it is done — so a crash resumes with the bids left.
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
    let s = svc.clone();
    let sid = job.section_id.clone();
    let plan = svc
        .db
        .run(move |c| {
            let x = load(c, &sid)?;
            if x.state != SectionState::Decrypting {
                return Ok(None);
            }
            let mut secrets: Vec<(u32, x25519::SecretKey)> = Vec::new();
            for r in repo::releases_of(c, &sid)? {
                let bytes = s
                    .atrest
                    .open(&format!("{sid}/{}", r.custodian), &r.sealed_secret)
                    .map_err(AppError::internal)?;
                let rel: SignedKeyRelease =
                    serde_json::from_slice(&bytes).map_err(AppError::internal)?;
                let sk = rel.verify(&sid).map_err(AppError::internal)?;
                secrets.push((r.position as u32, sk));
            }
            if secrets.len() < x.params.threshold as usize {
                return Ok(None);
            }
            // In escrow mode only bids a countersigned platform fault covers.
            let covered = covered_bidders(c, &sid)?;
            let mut todo = Vec::new();
            for bo in repo::bid_openings_of(c, &sid)?
                .into_iter()
                .filter(|b| b.status == "pending")
            {
                let bid = bids_repo::bid(c, &bo.envelope_hash)?
                    .ok_or_else(|| AppError::internal(anyhow::anyhow!("bid row missing")))?;
                if x.mode == DecryptionMode::BiddersWithEscrow && !covered.covers(&bid.bidder) {
                    continue;
                }
                todo.push((
                    bid.bidder.clone(),
                    bo.envelope_hash,
                    envelope_of(&bid.signed_envelope)?,
                ));
            }
            let via = if x.mode == DecryptionMode::Custodians {
                "custodians"
            } else {
                "escrow"
            };
            Ok(Some((x.params, secrets, todo, via)))
        })
        .await?;
    let Some((params, secrets, todo, via)) = plan else {
        return finish_job(svc, &job, &node).await;
    };
    let total = todo.len();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<AppResult<(String, Outcome)>>(8);
    let blobs = svc.blobs.clone();
    let bidders: HashMap<String, String> = todo
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
                if x.state == SectionState::Decrypting {
                    settle(
                        &s,
                        c,
                        &sid,
                        &bidder,
                        &outcome,
                        &Who::system(),
                        s.now().millis(),
                    )?;
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
        .write(move |c| maybe_finish(&s, c, &sid, s.now().millis()))
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
    blobs: &crate::storage::BlobStore,
    params: &SectionParams,
    bids: Vec<(String, Envelope)>,
    secrets: &[(u32, x25519::SecretKey)],
    via: &'static str,
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
    blobs: &crate::storage::BlobStore,
    params: &SectionParams,
    hash: &str,
    env: &Envelope,
    secrets: &[(u32, x25519::SecretKey)],
    via: &'static str,
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
struct Covered {
    all: bool,
    bidders: BTreeSet<String>,
}

impl Covered {
    fn covers(&self, bidder: &str) -> bool {
        self.all || self.bidders.contains(bidder)
    }
}

fn covered_bidders(c: &mut DbConn, section_id: &str) -> AppResult<Covered> {
    let mut out = Covered {
        all: false,
        bidders: BTreeSet::new(),
    };
    for i in repo::incidents_of(c, section_id)?
        .into_iter()
        .filter(|i| i.countersignature.is_some())
    {
        let list: Vec<String> = serde_json::from_str(&i.bidders).map_err(AppError::internal)?;
        if list.is_empty() {
            out.all = true;
        }
        out.bidders.extend(list);
    }
    Ok(out)
}

// -------------------------------------------------------------- the window

pub enum WindowEnd {
    /// The window closed now.
    Closed,
    /// Nothing to do: the opening moved on, or the clock is paused.
    Idle,
    /// The window was extended: the job is due later.
    Moved,
}

/// The window's end (chronograph, in its transaction). Bids still pending
/// are attributed (DESIGN §4); in escrow mode those a platform fault left
/// undecrypted wait for the custodian quorum.
pub fn end_window(
    svc: &Services,
    c: &mut DbConn,
    section_id: &str,
    now: i64,
) -> AppResult<WindowEnd> {
    let x = load(c, section_id)?;
    if x.state != SectionState::Decrypting {
        return Ok(WindowEnd::Idle);
    }
    let mut o = repo::get_or_create(c, section_id)?;
    if o.paused_since.is_some() || o.escrow {
        return Ok(WindowEnd::Idle);
    }
    let ends = o.window_ends_at.unwrap_or(i64::MAX);
    if ends > now {
        jobs::schedule(c, section_id, WINDOW_JOB, ends, now)?;
        return Ok(WindowEnd::Moved);
    }
    let who = Who::system();
    let covered = covered_bidders(c, section_id)?;
    let releases = repo::releases_of(c, section_id)?.len();
    let quorum = releases >= x.params.threshold as usize;
    let mut escrow_wait = false;
    let pending: Vec<BidOpeningRow> = repo::bid_openings_of(c, section_id)?
        .into_iter()
        .filter(|b| b.status == "pending")
        .collect();
    record(
        svc,
        c,
        section_id,
        "opening.window_closed",
        json!({"at_ms": now, "pending": pending.len()}),
        Some(json!({"pending": pending.len()})),
        &who,
        now,
    )?;
    for b in pending {
        let bidder = bids_repo::bid(c, &b.envelope_hash)?
            .map(|r| r.bidder)
            .unwrap_or_default();
        let outcome = match x.mode {
            DecryptionMode::Custodians if quorum => continue, // the decryption job finishes it
            DecryptionMode::Custodians => Outcome {
                envelope_hash: b.envelope_hash.clone(),
                status: "withdrawn",
                fault: Some("platform"),
                reason: Some(format!(
                    "only {releases} of the {} custodian keys needed were released in the window",
                    x.params.threshold
                )),
                via: "custodians",
                summary: None,
                bmk: None,
            },
            DecryptionMode::BiddersWithEscrow if covered.covers(&bidder) => {
                escrow_wait = true;
                continue;
            }
            _ if covered.covers(&bidder) => Outcome {
                envelope_hash: b.envelope_hash.clone(),
                status: "withdrawn",
                fault: Some("platform"),
                reason: Some("not decrypted because of a recorded platform fault (撤回)".into()),
                via: "bidder",
                summary: None,
                bmk: None,
            },
            _ => Outcome::revoked(
                &b.envelope_hash,
                "bidder",
                "the bidder did not decrypt its bid within the window (撤销)".into(),
            ),
        };
        settle(svc, c, section_id, &bidder, &outcome, &who, now)?;
    }
    if escrow_wait {
        o.escrow = true;
        repo::save(c, &o)?;
        if quorum {
            jobs::schedule(c, section_id, DECRYPT_JOB, now, now)?;
        }
    }
    maybe_finish(svc, c, section_id, now)?;
    Ok(WindowEnd::Closed)
}

/// The host extends the window, with a reason.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    pub minutes: i64,
    pub reason: String,
}

pub async fn extend(
    svc: &Services,
    actor: &Actor,
    section_id: String,
    req: ExtendRequest,
    idem: Option<Idem>,
) -> AppResult<Value> {
    actor.require(&[Role::Host])?;
    act(svc, actor, idem, move |svc, a, c, now| {
        let x = hosted(c, a, &section_id, "extend the window")?;
        need_phase(&x, &[SectionState::Decrypting], "extending the window")?;
        let reason = bounded_text("reason", &req.reason)?;
        if !(1..=240).contains(&req.minutes) {
            return Err(AppError::invalid_field("minutes", "must be 1 to 240"));
        }
        let mut o = repo::get_or_create(c, &section_id)?;
        if o.escrow || !window_open(&o, now) {
            return Err(window_closed(&o));
        }
        let new_end = o.window_ends_at.unwrap_or(now) + req.minutes * 60_000;
        if new_end - o.window_started_at.unwrap_or(now) > MAX_WINDOW_MS {
            return Err(AppError::invalid_field(
                "minutes",
                "a window lasts at most 24 hours",
            ));
        }
        o.window_ends_at = Some(new_end);
        repo::save(c, &o)?;
        if o.paused_since.is_none() {
            jobs::schedule(c, &section_id, WINDOW_JOB, new_end, now)?;
        }
        record(
            svc,
            c,
            &section_id,
            "opening.window_extended",
            json!({"window_ends_at_ms": new_end, "reason": reason}),
            Some(json!({"window_ends_at_ms": new_end, "reason": reason})),
            &a.who(),
            now,
        )?;
        Ok(json!({"window_ends_at_ms": new_end}))
    })
    .await
}

// ---------------------------------------------------------------- incidents

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentRequest {
    pub reason: String,
    /// The affected bidders (organisation ids); empty or absent: all.
    #[serde(default)]
    pub bidders: Vec<String>,
}

/// The host declares a platform fault: the window's clock stops until the
/// host resumes it. The fault counts for attribution once the supervisor
/// countersigns it.
pub async fn declare_incident(
    svc: &Services,
    actor: &Actor,
    section_id: String,
    req: IncidentRequest,
    idem: Option<Idem>,
) -> AppResult<Value> {
    actor.require(&[Role::Host])?;
    act(svc, actor, idem, move |svc, a, c, now| {
        let x = hosted(c, a, &section_id, "declare an incident")?;
        need_phase(&x, &[SectionState::Decrypting], "declaring an incident")?;
        let reason = bounded_text("reason", &req.reason)?;
        let in_opening: BTreeSet<String> = bids_repo::bids_of(c, &section_id)?
            .into_iter()
            .filter(|b| b.status == "accepted")
            .map(|b| b.bidder)
            .collect();
        let mut bidders = req.bidders.clone();
        bidders.sort();
        bidders.dedup();
        if let Some(b) = bidders.iter().find(|b| !in_opening.contains(*b)) {
            return Err(AppError::invalid_field(
                "bidders",
                format!("{b} has no bid in this opening"),
            ));
        }
        let mut o = repo::get_or_create(c, &section_id)?;
        if o.escrow {
            return Err(AppError::new(ErrorCode::InvalidTransition, "the window has closed"));
        }
        let id = IncidentId::new().into_string();
        repo::insert_incident(
            c,
            &IncidentRow {
                id: id.clone(),
                section_id: section_id.clone(),
                reason: reason.clone(),
                bidders: serde_json::to_string(&bidders).expect("ids"),
                declared_by: a.user.id.to_string(),
                declared_at: now,
                countersigned_by: None,
                countersignature: None,
                countersigned_at: None,
                resolved_at: None,
            },
        )?;
        if o.paused_since.is_none() {
            o.paused_since = Some(now);
            repo::save(c, &o)?;
        }
        record(
            svc,
            c,
            &section_id,
            "opening.incident",
            json!({"id": id, "reason": reason, "bidders": bidders, "paused_since_ms": o.paused_since,
                   "staff": {"declared_by": a.user.id.as_str()}}),
            Some(json!({"incident_id": id, "reason": reason, "bidders": bidders})),
            &a.who(),
            now,
        )?;
        Ok(json!({"id": id, "declared_at_ms": now, "ruling": IncidentRuling {
            format: fmt::INCIDENT_FORMAT.into(), section_id: section_id.clone(), incident_id: id.clone(),
            reason, bidders, declared_at_ms: now,
        }}))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureRequest {
    /// Ed25519 signature, hex, by the caller's registered identity key.
    pub signature: String,
}

/// The supervisor upholds a declared fault by countersigning its ruling.
pub async fn countersign_incident(
    svc: &Services,
    actor: &Actor,
    section_id: String,
    incident_id: String,
    req: SignatureRequest,
    idem: Option<Idem>,
) -> AppResult<Value> {
    actor.require(&[Role::Supervisor])?;
    act(svc, actor, idem, move |svc, a, c, now| {
        let x = load(c, &section_id)?;
        let st = policy::standing(c, &a.user, &x.p, Some(&section_id))?;
        if !st.supervises {
            return Err(AppError::forbidden("you do not supervise this section"));
        }
        need_phase(&x, &[SectionState::Decrypting], "ruling on an incident")?;
        let i = repo::find_incident(c, &incident_id)?
            .filter(|i| i.section_id == section_id)
            .ok_or_else(|| AppError::not_found("incident"))?;
        if i.countersignature.is_some() {
            return Err(AppError::new(ErrorCode::Conflict, "this incident is already countersigned"));
        }
        let ruling = IncidentRuling {
            format: fmt::INCIDENT_FORMAT.into(),
            section_id: section_id.clone(),
            incident_id: i.id.clone(),
            reason: i.reason.clone(),
            bidders: serde_json::from_str(&i.bidders).map_err(AppError::internal)?,
            declared_at_ms: i.declared_at,
        };
        let key = supervisor_key(c, a)?;
        if !ruling.verify(&key, &req.signature) {
            return Err(AppError::new(
                ErrorCode::ProofInvalid,
                "the signature does not verify with your registered identity key over this incident",
            ));
        }
        repo::countersign_incident(c, &i.id, a.user.id.as_str(), &req.signature, now)?;
        record(
            svc,
            c,
            &section_id,
            "opening.incident_countersigned",
            json!({"id": i.id}),
            Some(json!({"incident_id": i.id, "ruling": ruling, "supervisor_key": key,
                        "signature": req.signature})),
            &a.who(),
            now,
        )?;
        Ok(json!({"id": i.id, "countersigned": true}))
    })
    .await
}

fn supervisor_key(c: &mut DbConn, a: &Actor) -> AppResult<String> {
    Ok(keys_repo::active_key(
        c,
        a.user.id.as_str(),
        KeyPurpose::SupervisorIdentity.as_str(),
    )?
    .ok_or_else(|| {
        AppError::new(
            ErrorCode::KeyRejected,
            "register your supervisor identity key first (kaibiao supervisor register-key)",
        )
    })?
    .public_key)
}

/// The host resumes the window after an incident: it gets back the time the
/// clock stood still.
pub async fn resume(
    svc: &Services,
    actor: &Actor,
    section_id: String,
    idem: Option<Idem>,
) -> AppResult<Value> {
    actor.require(&[Role::Host])?;
    act(svc, actor, idem, move |svc, a, c, now| {
        let x = hosted(c, a, &section_id, "resume the window")?;
        need_phase(&x, &[SectionState::Decrypting], "resuming the window")?;
        let mut o = repo::get_or_create(c, &section_id)?;
        let Some(since) = o.paused_since else {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                "the window is not paused",
            ));
        };
        let ends = o.window_ends_at.unwrap_or(now) + (now - since);
        o.window_ends_at = Some(ends);
        o.paused_since = None;
        repo::save(c, &o)?;
        repo::resolve_incidents(c, &section_id, now)?;
        jobs::schedule(c, &section_id, WINDOW_JOB, ends, now)?;
        record(
            svc,
            c,
            &section_id,
            "opening.resumed",
            json!({"window_ends_at_ms": ends, "paused_ms": now - since}),
            Some(json!({"window_ends_at_ms": ends, "paused_ms": now - since})),
            &a.who(),
            now,
        )?;
        Ok(json!({"window_ends_at_ms": ends}))
    })
    .await
}

// ------------------------------------------------------------ announcement

#[derive(Debug, Serialize, Deserialize)]
struct RecordBid {
    envelope_hash: String,
    bidder: String,
    bidder_name: String,
    bid_id: String,
    revision: i32,
    status: String,
    fault: Option<String>,
    reason: Option<String>,
    via: Option<String>,
    summary: Option<envelope::SummaryFields>,
    settled_at_ms: Option<i64>,
}

/// When no bid is pending any more, announces (唱标) every result at once
/// and opens the confirmations; or fails the section (流标) when fewer than
/// `min_bidders` bids decrypted.
fn maybe_finish(svc: &Services, c: &mut DbConn, section_id: &str, now: i64) -> AppResult<()> {
    let x = load(c, section_id)?;
    if x.state != SectionState::Decrypting {
        return Ok(());
    }
    let rows = repo::bid_openings_of(c, section_id)?;
    if rows.iter().any(|b| b.status == "pending") {
        return Ok(());
    }
    let mut o = repo::get_or_create(c, section_id)?;
    let decrypted = rows.iter().filter(|b| b.status == "decrypted").count() as i32;
    let failed = decrypted < x.params.min_bidders;
    let manifest = bids_repo::manifest(c, section_id)?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("no manifest")))?;
    let mut bids = Vec::new();
    for b in &rows {
        let bid = bids_repo::bid(c, &b.envelope_hash)?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("bid row missing")))?;
        let summary: Option<envelope::SummaryFields> = match (&b.sealed_result, failed) {
            (Some(sealed), false) => Some(
                svc.atrest
                    .open_json(&format!("result/{}", b.envelope_hash), sealed)
                    .map_err(AppError::internal)?,
            ),
            _ => None,
        };
        if let Some(s) = &summary {
            let mut row = b.clone();
            row.summary = Some(serde_json::to_string(s).expect("summary"));
            repo::update_bid_opening(c, &row)?;
        }
        bids.push(RecordBid {
            bidder_name: org_name(c, &bid.bidder)?,
            envelope_hash: b.envelope_hash.clone(),
            bidder: bid.bidder,
            bid_id: bid.bid_id,
            revision: bid.revision,
            status: b.status.clone(),
            fault: b.fault.clone(),
            reason: b.reason.clone(),
            via: b.via.clone(),
            summary,
            settled_at_ms: b.decrypted_at,
        });
    }
    // The keys come out with the prices: anyone can now check every BMK.
    let mut releases = Vec::new();
    for r in repo::releases_of(c, section_id)? {
        let bytes = svc
            .atrest
            .open(&format!("{section_id}/{}", r.custodian), &r.sealed_secret)
            .map_err(AppError::internal)?;
        let text = String::from_utf8(bytes.to_vec()).map_err(AppError::internal)?;
        repo::publish_release(c, section_id, &r.custodian, &text)?;
        releases.push(json!({"position": r.position, "custodian": r.custodian, "released_at_ms": r.released_at}));
    }
    let record_json = json!({
        "format": fmt::RECORD_FORMAT,
        "section_id": section_id,
        "section_code": x.s.code,
        "section_name": x.s.name,
        "project_name": x.p.name,
        "params_hash": x.s.params_hash,
        "deadline_ms": x.s.deadline_at,
        "manifest_root": manifest.root,
        "decryption_mode": x.mode.as_str(),
        "window_started_at_ms": o.window_started_at,
        "window_ends_at_ms": o.window_ends_at,
        "summary_fields": x.params.summary_fields,
        "key_releases": releases,
        "bids": bids,
        "outcome": if failed { "failed" } else { "announced" },
        "announced_at_ms": now,
    });
    let hash = fmt::json_hash(&record_json);
    o.record_json = Some(
        String::from_utf8(crate::crypto::jcs::canonicalize(&record_json).expect("record"))
            .expect("JCS is UTF-8"),
    );
    o.record_hash = Some(hash.clone());
    o.announced_at = Some(now);
    repo::save(c, &o)?;
    let who = Who::system();
    if failed {
        if sections_repo::cas_state(c, section_id, "decrypting", "failed", now)? != 1 {
            return Err(AppError::internal(anyhow::anyhow!(
                "section left decrypting"
            )));
        }
        let reason = format!(
            "{decrypted} bid(s) decrypted, fewer than the {} required",
            x.params.min_bidders
        );
        fail_notices(svc, c, &x, &reason, now)?;
        record(
            svc,
            c,
            section_id,
            "section.failed",
            json!({"reason": "too_few_valid_bids", "bids": decrypted,
                   "min_bidders": x.params.min_bidders, "record": record_json, "record_hash": hash}),
            Some(
                json!({"reason": "too_few_valid_bids", "record_hash": hash, "record": record_json}),
            ),
            &who,
            now,
        )?;
        return Ok(());
    }
    if sections_repo::cas_state(c, section_id, "decrypting", "announced", now)? != 1
        || sections_repo::cas_state(c, section_id, "announced", "confirming", now)? != 1
    {
        return Err(AppError::internal(anyhow::anyhow!(
            "section left decrypting"
        )));
    }
    record(
        svc,
        c,
        section_id,
        "opening.announced",
        json!({"record": record_json, "record_hash": hash}),
        Some(json!({"record_hash": hash, "record": record_json})),
        &who,
        now,
    )?;
    record(
        svc,
        c,
        section_id,
        "opening.confirming",
        json!({"record_hash": hash}),
        None,
        &who,
        now,
    )?;
    Ok(())
}

// ------------------------------------------------------------ confirmation

fn open_for_confirming(c: &mut DbConn, x: &Ctx, what: &str) -> AppResult<OpeningRow> {
    need_phase(x, &[SectionState::Confirming], what)?;
    let o = repo::get_or_create(c, &x.s.id)?;
    if o.closed_at.is_some() {
        return Err(AppError::new(
            ErrorCode::InvalidTransition,
            "the host has closed the opening record",
        ));
    }
    Ok(o)
}

fn in_record(o: &OpeningRow, org: &str) -> AppResult<bool> {
    let r: Value = serde_json::from_str(o.record_json.as_deref().unwrap_or("{}"))
        .map_err(AppError::internal)?;
    Ok(r["bids"]
        .as_array()
        .is_some_and(|b| b.iter().any(|b| b["bidder"] == org)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    pub record_hash: String,
    /// The bidder's Ed25519 signature over the confirmation statement.
    pub signature: String,
}

/// A bidder confirms the announced record by signing its hash.
pub async fn confirm(
    svc: &Services,
    actor: &Actor,
    section_id: String,
    req: ConfirmRequest,
    idem: Option<Idem>,
) -> AppResult<Value> {
    actor.require(&[Role::Bidder])?;
    let org = actor.org()?.to_string();
    act(svc, actor, idem, move |svc, a, c, now| {
        let x = load(c, &section_id)?;
        let o = open_for_confirming(c, &x, "confirming the record")?;
        if !in_record(&o, &org)? {
            return Err(AppError::forbidden(
                "only bidders in the opening record can confirm it",
            ));
        }
        if o.record_hash.as_deref() != Some(req.record_hash.as_str()) {
            return Err(AppError::new(
                ErrorCode::Conflict,
                "this is not the current record's hash; reload the record and check it again",
            ));
        }
        let key = keys_repo::active_key(c, &org, KeyPurpose::BidderSigning.as_str())?
            .ok_or_else(|| AppError::new(ErrorCode::KeyRejected, "no registered signing key"))?;
        let statement = Confirmation::new(&section_id, &org, &req.record_hash);
        if !statement.verify(&key.public_key, &req.signature) {
            return Err(AppError::new(
                ErrorCode::ProofInvalid,
                "the signature does not verify with your organisation's signing key",
            ));
        }
        if repo::confirmations_of(c, &section_id)?
            .iter()
            .any(|k| k.bidder == org)
        {
            return Err(AppError::new(
                ErrorCode::Conflict,
                "you have already confirmed the record",
            ));
        }
        if repo::objections_of(c, &section_id)?
            .iter()
            .any(|j| j.bidder == org && j.answer.is_none())
        {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                "your objection has not been answered yet",
            ));
        }
        repo::insert_confirmation(
            c,
            &ConfirmationRow {
                section_id: section_id.clone(),
                bidder: org.clone(),
                record_hash: req.record_hash.clone(),
                signature: req.signature.clone(),
                confirmed_by: a.user.id.to_string(),
                confirmed_at: now,
            },
        )?;
        let name = org_name(c, &org)?;
        record(
            svc,
            c,
            &section_id,
            "opening.confirmed",
            json!({"bidder": org, "name": name, "at_ms": now}),
            Some(json!({"bidder": org, "record_hash": req.record_hash,
                        "signer_key": key.public_key, "signature": req.signature})),
            &a.who(),
            now,
        )?;
        Ok(json!({"confirmed": true, "record_hash": req.record_hash}))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextRequest {
    pub text: String,
}

/// A bidder raises an objection (异议) to the record.
pub async fn object(
    svc: &Services,
    actor: &Actor,
    section_id: String,
    req: TextRequest,
    idem: Option<Idem>,
) -> AppResult<Value> {
    actor.require(&[Role::Bidder])?;
    let org = actor.org()?.to_string();
    act(svc, actor, idem, move |svc, a, c, now| {
        let x = load(c, &section_id)?;
        let o = open_for_confirming(c, &x, "raising an objection")?;
        if !in_record(&o, &org)? {
            return Err(AppError::forbidden(
                "only bidders in the opening record can object",
            ));
        }
        let text = bounded_text("text", &req.text)?;
        if repo::confirmations_of(c, &section_id)?
            .iter()
            .any(|k| k.bidder == org)
        {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                "you have confirmed the record; an objection is no longer possible",
            ));
        }
        let open = repo::objections_of(c, &section_id)?
            .iter()
            .filter(|j| j.bidder == org && j.answer.is_none())
            .count();
        if open > 0 {
            return Err(AppError::new(
                ErrorCode::Conflict,
                "your previous objection is still waiting for the host's answer",
            ));
        }
        let id = ObjectionId::new().into_string();
        repo::insert_objection(
            c,
            &ObjectionRow {
                id: id.clone(),
                section_id: section_id.clone(),
                bidder: org.clone(),
                raised_by: a.user.id.to_string(),
                text: text.clone(),
                raised_at: now,
                answer: None,
                answered_by: None,
                answered_at: None,
            },
        )?;
        let name = org_name(c, &org)?;
        record(
            svc,
            c,
            &section_id,
            "opening.objection",
            json!({"id": id, "bidder": org, "name": name, "text": text, "at_ms": now}),
            Some(json!({"objection_id": id, "bidder": org, "text": text})),
            &a.who(),
            now,
        )?;
        Ok(json!({"id": id}))
    })
    .await
}

/// The host answers an objection on the spot; the answer is final.
pub async fn answer(
    svc: &Services,
    actor: &Actor,
    section_id: String,
    objection_id: String,
    req: TextRequest,
    idem: Option<Idem>,
) -> AppResult<Value> {
    actor.require(&[Role::Host])?;
    act(svc, actor, idem, move |svc, a, c, now| {
        let x = hosted(c, a, &section_id, "answer objections")?;
        open_for_confirming(c, &x, "answering an objection")?;
        let text = bounded_text("text", &req.text)?;
        let j = repo::find_objection(c, &objection_id)?
            .filter(|j| j.section_id == section_id)
            .ok_or_else(|| AppError::not_found("objection"))?;
        if repo::answer_objection(c, &j.id, &text, a.user.id.as_str(), now)? != 1 {
            return Err(AppError::new(
                ErrorCode::Conflict,
                "this objection is already answered",
            ));
        }
        record(
            svc,
            c,
            &section_id,
            "opening.answered",
            json!({"id": j.id, "answer": text, "at_ms": now}),
            Some(json!({"objection_id": j.id, "answer": text})),
            &a.who(),
            now,
        )?;
        Ok(json!({"id": j.id, "answered": true}))
    })
    .await
}

// ----------------------------------------------------------------- closing

/// The host closes the record: the platform signs the closing statement.
pub async fn close(
    svc: &Services,
    actor: &Actor,
    section_id: String,
    idem: Option<Idem>,
) -> AppResult<Value> {
    actor.require(&[Role::Host])?;
    act(svc, actor, idem, move |svc, a, c, now| {
        let x = hosted(c, a, &section_id, "close the opening")?;
        let mut o = open_for_confirming(c, &x, "closing the opening")?;
        let objections = repo::objections_of(c, &section_id)?;
        if let Some(j) = objections.iter().find(|j| j.answer.is_none()) {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                format!("objection {} has not been answered", j.id),
            ));
        }
        let confirmations = repo::confirmations_of(c, &section_id)?;
        let announced: Value = serde_json::from_str(o.record_json.as_deref().unwrap_or("{}"))
            .map_err(AppError::internal)?;
        let confirmed: BTreeSet<&str> = confirmations.iter().map(|k| k.bidder.as_str()).collect();
        let objected: BTreeSet<&str> = objections.iter().map(|j| j.bidder.as_str()).collect();
        let mut no_response: Vec<String> = announced["bids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["status"] == "decrypted")
            .filter_map(|b| b["bidder"].as_str())
            .filter(|b| !confirmed.contains(b) && !objected.contains(b))
            .map(str::to_string)
            .collect();
        no_response.sort();
        no_response.dedup();
        let mut conf = Vec::new();
        for k in &confirmations {
            let key = keys_repo::active_key(c, &k.bidder, KeyPurpose::BidderSigning.as_str())?
                .map(|k| k.public_key)
                .unwrap_or_default();
            conf.push(ClosingConfirmation {
                bidder: k.bidder.clone(),
                signer_key: key,
                signature: k.signature.clone(),
                confirmed_at_ms: k.confirmed_at,
            });
        }
        let incidents = repo::incidents_of(c, &section_id)?
            .into_iter()
            .map(|i| {
                json!({"id": i.id, "reason": i.reason, "bidders": serde_json::from_str::<Value>(&i.bidders).unwrap_or(Value::Null),
                       "declared_at_ms": i.declared_at, "countersigned": i.countersignature.is_some()})
            })
            .collect();
        let closing = Closing {
            format: fmt::CLOSING_FORMAT.into(),
            section_id: section_id.clone(),
            record_hash: o.record_hash.clone().unwrap_or_default(),
            confirmations: conf,
            objections: objections
                .iter()
                .map(|j| ClosingObjection {
                    id: j.id.clone(),
                    bidder: j.bidder.clone(),
                    text: j.text.clone(),
                    raised_at_ms: j.raised_at,
                    answer: j.answer.clone().unwrap_or_default(),
                    answered_at_ms: j.answered_at.unwrap_or_default(),
                })
                .collect(),
            no_response,
            incidents,
            closed_by: a.user.id.to_string(),
            closed_at_ms: now,
        };
        let sig = closing.sign_platform(&svc.platform_key);
        let hash = closing.hash();
        o.closing_json = Some(String::from_utf8(closing.bytes()).expect("JCS is UTF-8"));
        o.closing_hash = Some(hash.clone());
        o.platform_signature = Some(sig.clone());
        o.closed_at = Some(now);
        repo::save(c, &o)?;
        record(
            svc,
            c,
            &section_id,
            "opening.closed",
            json!({"closing_hash": hash, "closed_at_ms": now, "closing": closing}),
            Some(json!({"closing_hash": hash, "platform_signature": sig})),
            &a.who(),
            now,
        )?;
        Ok(json!({"closing_hash": hash, "closing": closing, "platform_signature": sig}))
    })
    .await
}

/// The supervisor countersigns the closed record; evaluation may begin.
pub async fn countersign(
    svc: &Services,
    actor: &Actor,
    section_id: String,
    req: SignatureRequest,
    idem: Option<Idem>,
) -> AppResult<Value> {
    actor.require(&[Role::Supervisor])?;
    act(svc, actor, idem, move |svc, a, c, now| {
        let x = load(c, &section_id)?;
        let st = policy::standing(c, &a.user, &x.p, Some(&section_id))?;
        if !st.supervises {
            return Err(AppError::forbidden("you do not supervise this section"));
        }
        need_phase(&x, &[SectionState::Confirming], "countersigning the record")?;
        let mut o = repo::get_or_create(c, &section_id)?;
        let Some(closing_json) = o.closing_json.clone() else {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                "the host has not closed the record yet",
            ));
        };
        let closing: Closing = serde_json::from_str(&closing_json).map_err(AppError::internal)?;
        let key = supervisor_key(c, a)?;
        if !closing.verify_countersignature(&key, &req.signature) {
            return Err(AppError::new(
                ErrorCode::ProofInvalid,
                "the signature does not verify with your registered identity key over the closing statement",
            ));
        }
        o.countersigned_by = Some(a.user.id.to_string());
        o.countersignature = Some(req.signature.clone());
        o.countersigned_at = Some(now);
        repo::save(c, &o)?;
        if sections_repo::cas_state(c, &section_id, "confirming", "evaluating", now)? != 1 {
            return Err(AppError::new(ErrorCode::Conflict, "the section changed meanwhile"));
        }
        record(
            svc,
            c,
            &section_id,
            "opening.countersigned",
            json!({"at_ms": now, "staff": {"supervisor": a.user.id.as_str()}}),
            Some(json!({"closing_hash": o.closing_hash, "supervisor": a.user.id.as_str(),
                        "supervisor_key": key, "signature": req.signature})),
            &a.who(),
            now,
        )?;
        Ok(json!({"countersigned": true}))
    })
    .await
}

// ------------------------------------------------------------------ notices

/// The host posts a notice to the room (e.g. "the opening begins in five
/// minutes").
pub async fn notice(
    svc: &Services,
    actor: &Actor,
    section_id: String,
    req: TextRequest,
    idem: Option<Idem>,
) -> AppResult<Value> {
    actor.require(&[Role::Host])?;
    act(svc, actor, idem, move |svc, a, c, now| {
        let x = hosted(c, a, &section_id, "post notices")?;
        if x.state.is_terminal() {
            return Err(wrong_phase(x.state, "posting a notice"));
        }
        let text = bounded_text("text", &req.text)?;
        let seq = record(
            svc,
            c,
            &section_id,
            "room.notice",
            json!({"text": text, "at_ms": now}),
            None,
            &a.who(),
            now,
        )?;
        Ok(json!({"seq": seq}))
    })
    .await
}

// ------------------------------------------------------------------ reading

/// The opening record and its signatures, once announced.
#[derive(Debug, Serialize)]
pub struct RecordView {
    pub record: Value,
    pub record_hash: String,
    pub closing: Option<Value>,
    pub closing_hash: Option<String>,
    pub platform_signature: Option<String>,
    pub platform_key: String,
    pub countersignature: Option<String>,
    pub supervisor_key: Option<String>,
}

pub async fn record_of(svc: &Services, section_id: String) -> AppResult<RecordView> {
    let platform_key = svc.platform_public_hex();
    svc.db
        .run(move |c| {
            load(c, &section_id)?;
            let o = repo::find(c, &section_id)?
                .filter(|o| o.record_json.is_some())
                .ok_or_else(|| AppError::not_found("opening record (not announced yet)"))?;
            // The supervisor key that made the countersignature (keys rotate).
            let supervisor_key = match (&o.countersigned_by, &o.countersignature, &o.closing_json) {
                (Some(u), Some(sig), Some(closing)) => {
                    let closing: Closing =
                        serde_json::from_str(closing).map_err(AppError::internal)?;
                    keys_repo::key_history(c, u)?
                        .into_iter()
                        .filter(|k| k.purpose == KeyPurpose::SupervisorIdentity.as_str())
                        .map(|k| k.public_key)
                        .find(|k| closing.verify_countersignature(k, sig))
                }
                _ => None,
            };
            Ok(RecordView {
                record: serde_json::from_str(o.record_json.as_deref().unwrap_or("{}"))
                    .map_err(AppError::internal)?,
                record_hash: o.record_hash.unwrap_or_default(),
                closing: o
                    .closing_json
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()
                    .map_err(AppError::internal)?,
                closing_hash: o.closing_hash,
                platform_signature: o.platform_signature,
                platform_key,
                countersignature: o.countersignature,
                supervisor_key,
            })
        })
        .await
}
