//! The decryption window: its end (and the attribution of every bid still
//! pending, DESIGN §4), the host stretching it with a reason, platform
//! incidents that stop its clock, the supervisor upholding them, and the
//! host resuming it with the paused time given back.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::announce::maybe_finish;
use super::decrypt::{settle, Covered, Outcome};
use super::{bounded_text, hosted, load, supervised, window_closed, window_open, MAX_WINDOW_MS};
use crate::crypto::opening::{self as fmt, IncidentRuling};
use crate::db::jobs;
use crate::db::opening::{self as repo, BidOpeningRow, IncidentRow};
use crate::db::{bids as bids_repo, keys as keys_repo, DbConn};
use crate::domain::identity::{KeyPurpose, Role};
use crate::domain::ids::{IncidentId, OrgId, SectionId};
use crate::domain::section::{DecryptionMode, SectionState};
use crate::domain::states::{BidStatus, DecryptedVia, JobKind, OpeningStatus};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::action::{Action, Change, IdempotencyKey, Tx};
use crate::service::{Actor, Services};

/// What the window's end did.
pub enum WindowEnd {
    /// The window closed now.
    Closed,
    /// Nothing to do: the opening moved on, or the clock is paused.
    Idle,
    /// The window was extended: the job is due later.
    Moved,
}

/// The window's end (chronograph, in its transaction). Bids still pending
/// are attributed; in escrow mode those a platform fault left undecrypted
/// wait for the custodian quorum.
pub fn end_window(tx: &mut Tx<'_>, section_id: &SectionId) -> AppResult<WindowEnd> {
    let now = tx.now;
    let x = load(tx.c, section_id)?;
    if x.state() != SectionState::Decrypting {
        return Ok(WindowEnd::Idle);
    }
    let mut o = repo::get_or_create(tx.c, section_id)?;
    if o.paused_since.is_some() || o.escrow {
        return Ok(WindowEnd::Idle);
    }
    let ends = o.window_ends_at.unwrap_or(i64::MAX);
    if ends > now {
        jobs::schedule(tx.c, section_id, JobKind::OpeningWindowEnd, ends, now)?;
        return Ok(WindowEnd::Moved);
    }
    let covered = Covered::of(tx.c, section_id)?;
    let releases = repo::releases_of(tx.c, section_id)?.len();
    let quorum = releases >= x.params.threshold as usize;
    let mut escrow_wait = false;
    let pending: Vec<BidOpeningRow> = repo::bid_openings_of(tx.c, section_id)?
        .into_iter()
        .filter(|b| b.status == OpeningStatus::Pending)
        .collect();
    tx.record(
        Change::new(section_id, "opening.window_closed")
            .data(json!({"at_ms": now, "pending": pending.len()}))
            .logged(json!({"pending": pending.len()})),
    )?;
    for b in pending {
        let Some(bidder) = bids_repo::bid(tx.c, &b.envelope_hash)?.map(|r| r.bidder) else {
            return Err(AppError::internal(anyhow::anyhow!("bid row missing")));
        };
        let hash = b.envelope_hash.as_str();
        let outcome = match x.mode() {
            DecryptionMode::Custodians if quorum => continue, // the decryption job finishes it
            DecryptionMode::Custodians => Outcome::withdrawn(
                hash,
                DecryptedVia::Custodians,
                format!(
                    "only {releases} of the {} custodian keys needed were released in the window",
                    x.params.threshold
                ),
            ),
            DecryptionMode::BiddersWithEscrow if covered.covers(&bidder) => {
                escrow_wait = true;
                continue;
            }
            _ if covered.covers(&bidder) => Outcome::withdrawn(
                hash,
                DecryptedVia::Bidder,
                "not decrypted because of a recorded platform fault (撤回)".into(),
            ),
            _ => Outcome::revoked(
                hash,
                DecryptedVia::Bidder,
                "the bidder did not decrypt its bid within the window (撤销)".into(),
            ),
        };
        settle(tx, section_id, &bidder, &outcome)?;
    }
    if escrow_wait {
        o.escrow = true;
        repo::save(tx.c, &o)?;
        if quorum {
            jobs::schedule(tx.c, section_id, JobKind::OpeningDecrypt, now, now)?;
        }
    }
    maybe_finish(tx, section_id)?;
    Ok(WindowEnd::Closed)
}

/// The host extends the window, with a reason.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    /// 1 to 240.
    pub minutes: i64,
    pub reason: String,
}

/// The window's new end.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WindowMoved {
    pub window_ends_at_ms: i64,
}

pub async fn extend(
    svc: &Services,
    actor: &Actor,
    section_id: SectionId,
    req: ExtendRequest,
    key: Option<IdempotencyKey>,
) -> AppResult<WindowMoved> {
    actor.require(&[Role::Host])?;
    Action::new("extend", &section_id)
        .with_request(&req)
        .idempotent(key)
        .run(svc, actor, move |tx, a| {
            let now = tx.now;
            let x = hosted(tx.c, a, &section_id, "extend the window")?;
            x.need_phase(&[SectionState::Decrypting], "extending the window")?;
            let reason = bounded_text("reason", &req.reason)?;
            if !(1..=240).contains(&req.minutes) {
                return Err(AppError::invalid_field("minutes", "must be 1 to 240"));
            }
            let mut o = repo::get_or_create(tx.c, &section_id)?;
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
            repo::save(tx.c, &o)?;
            if o.paused_since.is_none() {
                jobs::schedule(tx.c, &section_id, JobKind::OpeningWindowEnd, new_end, now)?;
            }
            let what = json!({"window_ends_at_ms": new_end, "reason": reason});
            tx.record(
                Change::new(&section_id, "opening.window_extended")
                    .data(what.clone())
                    .logged(what),
            )?;
            Ok(WindowMoved {
                window_ends_at_ms: new_end,
            })
        })
        .await
}

/// A platform fault the host declares.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentRequest {
    pub reason: String,
    /// The affected bidders (organisation ids); empty or absent: all.
    #[serde(default)]
    pub bidders: Vec<OrgId>,
}

/// The declared incident and the ruling the supervisor may countersign.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IncidentDeclared {
    pub id: IncidentId,
    pub declared_at_ms: i64,
    pub ruling: IncidentRuling,
}

/// The host declares a platform fault: the window's clock stops until the
/// host resumes it. The fault counts for attribution once the supervisor
/// countersigns it.
pub async fn declare_incident(
    svc: &Services,
    actor: &Actor,
    section_id: SectionId,
    req: IncidentRequest,
    key: Option<IdempotencyKey>,
) -> AppResult<IncidentDeclared> {
    actor.require(&[Role::Host])?;
    Action::new("incident", &section_id)
        .with_request(&req)
        .idempotent(key)
        .run(svc, actor, move |tx, a| {
            let now = tx.now;
            let x = hosted(tx.c, a, &section_id, "declare an incident")?;
            x.need_phase(&[SectionState::Decrypting], "declaring an incident")?;
            let reason = bounded_text("reason", &req.reason)?;
            let in_opening: BTreeSet<OrgId> = bids_repo::bids_of(tx.c, &section_id)?
                .into_iter()
                .filter(|b| b.status == BidStatus::Accepted)
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
            let mut o = repo::get_or_create(tx.c, &section_id)?;
            if o.escrow {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    "the window has closed",
                ));
            }
            let id = IncidentId::new();
            repo::insert_incident(
                tx.c,
                &IncidentRow {
                    id: id.clone(),
                    section_id: section_id.clone(),
                    reason: reason.clone(),
                    bidders: serde_json::to_string(&bidders).expect("ids"),
                    declared_by: a.user.id.clone(),
                    declared_at: now,
                    countersigned_by: None,
                    countersignature: None,
                    countersigned_at: None,
                    resolved_at: None,
                },
            )?;
            if o.paused_since.is_none() {
                o.paused_since = Some(now);
                repo::save(tx.c, &o)?;
            }
            tx.record(
                Change::new(&section_id, "opening.incident")
                    .data(json!({"id": id, "reason": reason, "bidders": bidders,
                                 "paused_since_ms": o.paused_since,
                                 "staff": {"declared_by": a.user.id}}))
                    .logged(json!({"incident_id": id, "reason": reason, "bidders": bidders})),
            )?;
            Ok(IncidentDeclared {
                ruling: IncidentRuling {
                    format: fmt::INCIDENT_FORMAT.into(),
                    section_id: section_id.to_string(),
                    incident_id: id.to_string(),
                    reason,
                    bidders: bidders.iter().map(ToString::to_string).collect(),
                    declared_at_ms: now,
                },
                id,
                declared_at_ms: now,
            })
        })
        .await
}

/// A signature by the caller's registered identity key.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureRequest {
    /// Ed25519 signature, hex, by the caller's registered identity key.
    pub signature: String,
}

/// The incident upheld.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IncidentUpheld {
    pub id: IncidentId,
    pub countersigned: bool,
}

/// The supervisor upholds a declared fault by countersigning its ruling.
pub async fn countersign_incident(
    svc: &Services,
    actor: &Actor,
    section_id: SectionId,
    incident_id: IncidentId,
    req: SignatureRequest,
    key: Option<IdempotencyKey>,
) -> AppResult<IncidentUpheld> {
    actor.require(&[Role::Supervisor])?;
    Action::new(&format!("incident.countersign {incident_id}"), &section_id)
        .with_request(&req)
        .idempotent(key)
        .run(svc, actor, move |tx, a| {
            let x = supervised(tx.c, a, &section_id)?;
            x.need_phase(&[SectionState::Decrypting], "ruling on an incident")?;
            let i = repo::find_incident(tx.c, &incident_id)?
                .filter(|i| i.section_id == section_id)
                .ok_or_else(|| AppError::not_found("incident"))?;
            if i.countersignature.is_some() {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    "this incident is already countersigned",
                ));
            }
            let ruling = IncidentRuling {
                format: fmt::INCIDENT_FORMAT.into(),
                section_id: section_id.to_string(),
                incident_id: i.id.to_string(),
                reason: i.reason.clone(),
                bidders: serde_json::from_str(&i.bidders).map_err(AppError::internal)?,
                declared_at_ms: i.declared_at,
            };
            let key = supervisor_key(tx.c, a)?;
            if !ruling.verify(&key, &req.signature) {
                return Err(AppError::new(
                    ErrorCode::ProofInvalid,
                    "the signature does not verify with your registered identity key over this incident",
                ));
            }
            repo::countersign_incident(tx.c, &i.id, &a.user.id, &req.signature, tx.now)?;
            tx.record(
                Change::new(&section_id, "opening.incident_countersigned")
                    .data(json!({"id": i.id}))
                    .logged(json!({"incident_id": i.id, "ruling": ruling, "supervisor": a.user.id,
                                   "supervisor_key": key, "signature": req.signature})),
            )?;
            Ok(IncidentUpheld {
                id: i.id,
                countersigned: true,
            })
        })
        .await
}

/// The supervisor's registered identity key.
pub(super) fn supervisor_key(c: &mut DbConn, a: &Actor) -> AppResult<String> {
    Ok(
        keys_repo::active_key(c, a.user.id.as_str(), KeyPurpose::SupervisorIdentity)?
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::KeyRejected,
                    "register your supervisor identity key first (kaibiao supervisor register-key)",
                )
            })?
            .public_key,
    )
}

/// The host resumes the window after an incident: it gets back the time the
/// clock stood still.
pub async fn resume(
    svc: &Services,
    actor: &Actor,
    section_id: SectionId,
    key: Option<IdempotencyKey>,
) -> AppResult<WindowMoved> {
    actor.require(&[Role::Host])?;
    Action::new("resume", &section_id)
        .idempotent(key)
        .run(svc, actor, move |tx, a| {
            let now = tx.now;
            let x = hosted(tx.c, a, &section_id, "resume the window")?;
            x.need_phase(&[SectionState::Decrypting], "resuming the window")?;
            let mut o = repo::get_or_create(tx.c, &section_id)?;
            let Some(since) = o.paused_since else {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    "the window is not paused",
                ));
            };
            let ends = o.window_ends_at.unwrap_or(now) + (now - since);
            o.window_ends_at = Some(ends);
            o.paused_since = None;
            repo::save(tx.c, &o)?;
            repo::resolve_incidents(tx.c, &section_id, now)?;
            jobs::schedule(tx.c, &section_id, JobKind::OpeningWindowEnd, ends, now)?;
            let what = json!({"window_ends_at_ms": ends, "paused_ms": now - since});
            tx.record(
                Change::new(&section_id, "opening.resumed")
                    .data(what.clone())
                    .logged(what),
            )?;
            Ok(WindowMoved {
                window_ends_at_ms: ends,
            })
        })
        .await
}
