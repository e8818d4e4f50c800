//! The contributions to the draw's seed (`evaluation::seed`, PROTOCOL
//! §14.2): the supervisor of record and each partner centre commit to a
//! value before the host asks for the draw, reveal it after, and the
//! committee is drawn once every value is in — or, when the time to reveal
//! ends, without the ones withheld, which is logged.
//!
//! A commitment is authenticated by its signature (the supervisor's key
//! that countersigned the opening record, or the centre's key this centre
//! trusts), a reveal by its value: only the committer knows a preimage of
//! its commitment.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::seating::draw_now;
use super::statements::Signed;
use super::CommitteeDrawn;
use crate::crypto::{self, sha256_hex};
use crate::db::audit::Who;
use crate::db::evaluation::{self as repo, ContributionRow};
use crate::db::{jobs, opening as opening_repo, DbConn};
use crate::domain::ids::SectionId;
use crate::domain::section::SectionState;
use crate::domain::states::JobKind;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::evaluation::seed::{self, ContributionStatement, CONTRIBUTION_LABEL};
use crate::evaluation::statements::verify_statement;
use crate::service::action::{transact, Change, Tx};
use crate::service::opening::{countersigning_key, load, wrong_phase};
use crate::service::{policy, Actor, Services};

/// A contributor acts by its signature or its value, not by an account.
fn by_contributor() -> Who {
    Who {
        actor_id: None,
        request_id: None,
    }
}

fn hex32(field: &str, v: &str) -> AppResult<[u8; 32]> {
    crypto::hex_array::<32>(v)
        .ok_or_else(|| AppError::invalid_field(field, "64 lower-case hex digits"))
}

/// The key a party's commitment must be signed with.
fn party_key(
    svc: &Services,
    c: &mut DbConn,
    section_id: &SectionId,
    party: &str,
) -> AppResult<String> {
    if party == seed::SUPERVISOR {
        let o = opening_repo::find(c, section_id)?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("evaluating without an opening")))?;
        return countersigning_key(c, &o)?.ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("evaluating without a countersignature"))
        });
    }
    let own = &svc.config.evaluation.centre_code;
    match seed::party_centre(party) {
        Some(code) if code != own => svc
            .trust
            .get(code)
            .map(|c| c.public_key.clone())
            .ok_or_else(|| {
                AppError::invalid_field(
                    "statement.party",
                    format!("centre {code} is not trusted by this centre"),
                )
            }),
        Some(_) => Err(AppError::invalid_field(
            "statement.party",
            "this centre's own contribution is the platform's seed",
        )),
        None => Err(AppError::invalid_field(
            "statement.party",
            "\"supervisor\" or \"centre:\" and a partner centre's code",
        )),
    }
}

/// A commitment taken (or recognised as a repeat of one taken).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ContributionCommitted {
    pub section_id: SectionId,
    pub party: String,
    pub commitment: String,
    pub repeat: bool,
}

/// A contributor commits to its value, before the draw is asked for.
pub async fn commit_contribution(
    svc: &Services,
    section_id: SectionId,
    v: Signed<ContributionStatement>,
) -> AppResult<ContributionCommitted> {
    transact(svc, by_contributor(), move |tx| {
        let st = &v.statement;
        if st.section_id != section_id.as_str() {
            return Err(AppError::invalid_field(
                "statement.section_id",
                "another section",
            ));
        }
        hex32("statement.commitment", &st.commitment)?;
        let x = load(tx.c, &section_id)?;
        if x.state() != SectionState::Evaluating {
            return Err(wrong_phase(x.state(), "committing to the draw's seed"));
        }
        let key = party_key(tx.svc, tx.c, &section_id, &st.party)?;
        let text = verify_statement(&key, CONTRIBUTION_LABEL, st, &v.signature).map_err(|_| {
            AppError::new(
                ErrorCode::ProofInvalid,
                "the signature does not verify with the party's key",
            )
        })?;
        if let Some(prev) = repo::contributions_of(tx.c, &section_id)?
            .into_iter()
            .find(|r| r.party == st.party)
        {
            if prev.statement == text {
                return Ok(ContributionCommitted {
                    section_id,
                    party: prev.party,
                    commitment: st.commitment.clone(),
                    repeat: true,
                });
            }
            return Err(AppError::new(
                ErrorCode::Conflict,
                "this party has committed to a value already",
            ));
        }
        if repo::draw_request(tx.c, &section_id)?.is_some() {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                "the draw has been asked for: commitments were due before it",
            ));
        }
        repo::insert_contribution(
            tx.c,
            &ContributionRow {
                section_id: section_id.clone(),
                party: st.party.clone(),
                public_key: key.clone(),
                statement: text.clone(),
                signature: v.signature.clone(),
                committed_at: tx.now,
                value: None,
                revealed_at: None,
                withheld_at: None,
            },
        )?;
        tx.record(
            Change::new(&section_id, "evaluation.contribution_committed")
                .data(json!({"party": st.party}))
                .logged(
                    json!({"party": st.party, "key": key, "commitment": st.commitment,
                               "statement_hash": sha256_hex(text.as_bytes())}),
                ),
        )?;
        Ok(ContributionCommitted {
            section_id,
            party: st.party.clone(),
            commitment: st.commitment.clone(),
            repeat: false,
        })
    })
    .await
}

/// A contributor's value, revealed after the draw is asked for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealRequest {
    pub party: String,
    /// The value committed to, 64 lower-case hex digits.
    pub value: String,
}

/// A value taken; the committee when it was the last one.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ContributionRevealed {
    pub section_id: SectionId,
    pub party: String,
    pub repeat: bool,
    /// Contributors whose values are still to come.
    pub waiting_for: Vec<String>,
    /// The committee, drawn when this was the last value.
    pub drawn: Option<CommitteeDrawn>,
}

/// Whoever knows the preimage of a party's commitment reveals it; the last
/// value draws the committee.
pub async fn reveal_contribution(
    svc: &Services,
    section_id: SectionId,
    r: RevealRequest,
) -> AppResult<ContributionRevealed> {
    transact(svc, by_contributor(), move |tx| {
        let value = hex32("value", &r.value)?;
        load(tx.c, &section_id)?;
        let req = repo::draw_request(tx.c, &section_id)?.ok_or_else(|| {
            AppError::new(
                ErrorCode::InvalidTransition,
                "no draw has been asked for in this section: values are revealed after it",
            )
        })?;
        let contributors: Vec<String> =
            serde_json::from_str(&req.contributors).map_err(AppError::internal)?;
        if !contributors.contains(&r.party) {
            return Err(AppError::invalid_field(
                "party",
                "not a contributor to this draw",
            ));
        }
        let mut all = repo::contributions_of(tx.c, &section_id)?;
        let row = all.iter_mut().find(|c| c.party == r.party).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("a contributor without a commitment"))
        })?;
        if row.revealed_at.is_some() {
            if row.value.as_deref() == Some(r.value.as_str()) {
                return Ok(ContributionRevealed {
                    section_id,
                    party: r.party,
                    repeat: true,
                    waiting_for: Vec::new(),
                    drawn: None,
                });
            }
            return Err(AppError::new(
                ErrorCode::Conflict,
                "this party has revealed its value already",
            ));
        }
        if row.withheld_at.is_some() || tx.now >= req.reveals_due_at {
            return Err(AppError::new(
                ErrorCode::DeadlinePassed,
                format!(
                    "the time to reveal ended at {}; the value is recorded as withheld",
                    crate::domain::time::Timestamp::from_millis(req.reveals_due_at)
                        .shanghai_rfc3339()
                ),
            ));
        }
        let st: ContributionStatement =
            serde_json::from_str(&row.statement).map_err(AppError::internal)?;
        if seed::value_commitment(&value) != st.commitment {
            return Err(AppError::new(
                ErrorCode::ProofInvalid,
                "the value does not match the party's commitment",
            ));
        }
        row.value = Some(r.value.clone());
        row.revealed_at = Some(tx.now);
        repo::save_contribution(tx.c, row)?;
        tx.record(
            Change::new(&section_id, "evaluation.contribution_revealed")
                .data(json!({"party": r.party}))
                .logged(json!({"party": r.party, "value": r.value})),
        )?;
        let waiting_for: Vec<String> = contributors
            .iter()
            .filter(|p| !all.iter().any(|c| &c.party == *p && c.settled()))
            .cloned()
            .collect();
        let drawn = if waiting_for.is_empty() {
            Some(draw_now(tx, &req, &all)?)
        } else {
            None
        };
        Ok(ContributionRevealed {
            section_id,
            party: r.party,
            repeat: false,
            waiting_for,
            drawn,
        })
    })
    .await
}

/// What the chronograph did when the time to reveal ended.
pub enum RevealsDue {
    /// The values not revealed were recorded as withheld and the committee drawn.
    Drawn,
    /// Nothing to do (drawn already, or no draw asked for).
    Idle,
    /// Not due yet: the job is due again at the end of the time.
    Moved,
}

/// The time to reveal ended: every value not revealed is recorded as
/// withheld (logged, counted as zero), and the committee is drawn.
pub fn reveals_due(tx: &mut Tx<'_>, section_id: &SectionId) -> AppResult<RevealsDue> {
    let Some(req) = repo::draw_request(tx.c, section_id)? else {
        return Ok(RevealsDue::Idle);
    };
    if repo::find(tx.c, section_id)?.is_some() {
        return Ok(RevealsDue::Idle);
    }
    if tx.now < req.reveals_due_at {
        jobs::schedule(
            tx.c,
            section_id,
            JobKind::EvaluationRevealsDue,
            req.reveals_due_at,
            tx.now,
        )?;
        return Ok(RevealsDue::Moved);
    }
    let contributors: Vec<String> =
        serde_json::from_str(&req.contributors).map_err(AppError::internal)?;
    let mut all = repo::contributions_of(tx.c, section_id)?;
    for party in &contributors {
        let Some(row) = all.iter_mut().find(|c| &c.party == party) else {
            continue;
        };
        if row.settled() {
            continue;
        }
        row.withheld_at = Some(tx.now);
        repo::save_contribution(tx.c, row)?;
        tx.record(
            Change::new(section_id, "evaluation.contribution_withheld")
                .data(json!({"party": party}))
                .logged(json!({"party": party}))
                .by(super::by_chronograph()),
        )?;
    }
    draw_now(tx, &req, &all)?;
    Ok(RevealsDue::Drawn)
}

/// One contributor as the host and the supervisor follow it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ContributorView {
    pub party: String,
    pub commitment: String,
    pub committed_at_ms: i64,
    /// `committed`, `revealed` or `withheld`.
    pub state: String,
}

/// The draw's seed as it stands: who committed, and once asked for, who
/// contributes and until when.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DrawSeedView {
    pub section_id: SectionId,
    pub committed: Vec<ContributorView>,
    /// Once the draw is asked for: the parties whose values are mixed, in order.
    pub contributors: Option<Vec<String>>,
    pub seed_commitment: Option<String>,
    pub reveals_due_at_ms: Option<i64>,
    pub drawn: bool,
}

/// For the section's host and its supervisors.
pub async fn draw_seed(
    svc: &Services,
    actor: &Actor,
    section_id: SectionId,
) -> AppResult<DrawSeedView> {
    let a = actor.clone();
    svc.db
        .run(move |c| {
            let x = load(c, &section_id)?;
            let st = policy::standing(c, &a.user, &x.p, Some(&section_id))?;
            if !st.supervises {
                policy::require_runs(&st, true, "seeing the draw's seed")?;
            }
            let req = repo::draw_request(c, &section_id)?;
            let committed = repo::contributions_of(c, &section_id)?
                .into_iter()
                .map(|r| {
                    let st: ContributionStatement =
                        serde_json::from_str(&r.statement).map_err(AppError::internal)?;
                    Ok(ContributorView {
                        state: if r.revealed_at.is_some() {
                            "revealed"
                        } else if r.withheld_at.is_some() {
                            "withheld"
                        } else {
                            "committed"
                        }
                        .into(),
                        party: r.party,
                        commitment: st.commitment,
                        committed_at_ms: r.committed_at,
                    })
                })
                .collect::<AppResult<Vec<_>>>()?;
            let contributors = req
                .as_ref()
                .map(|r| serde_json::from_str(&r.contributors))
                .transpose()
                .map_err(AppError::internal)?;
            Ok(DrawSeedView {
                drawn: repo::find(c, &section_id)?.is_some(),
                committed,
                contributors,
                seed_commitment: req.as_ref().map(|r| r.seed_commitment.clone()),
                reveals_due_at_ms: req.map(|r| r.reveals_due_at),
                section_id,
            })
        })
        .await
}
