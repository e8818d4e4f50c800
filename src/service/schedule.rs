//! Timed transitions, performed by the chronograph. Each runs in one
//! transaction that (1) compare-and-sets the state, (2) records the change
//! and (3) marks the job done. If another node got there first, step 1 or 3
//! finds nothing to change and the whole transaction rolls back: each
//! transition happens exactly once.

use serde_json::json;

use super::action::{Change, Tx};
use super::{bids, evaluation, opening, transition, Services};
use crate::db::audit::Who;
use crate::db::jobs::{self, JobRow};
use crate::db::sections as repo;
use crate::domain::section::SectionState;
use crate::domain::states::JobKind;
use crate::error::{AppError, AppResult, ErrorCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This node performed the transition.
    Performed,
    /// Nothing left to do (already done elsewhere, or the section moved on).
    Settled,
    /// Not due yet (the deadline moved after the job was read).
    NotDue,
}

fn lost_race() -> AppError {
    AppError::new(ErrorCode::Conflict, "transition already performed")
}

pub async fn run_job(svc: &Services, job: JobRow, node: String) -> AppResult<Outcome> {
    if job.kind == JobKind::OpeningDecrypt {
        // Long and in many transactions (one per bid); see `opening`.
        return Ok(match opening::run_decrypt_job(svc, job, node).await? {
            true => Outcome::Performed,
            false => Outcome::Settled,
        });
    }
    let now = svc.now().millis();
    let s = svc.clone();
    let r = svc
        .db
        .write(move |c| {
            let who = Who {
                actor_id: None,
                request_id: Some(format!("chronograph:{node}")),
            };
            let section = repo::find_section(c, &job.section_id)?
                .ok_or_else(|| AppError::not_found("section"))?;
            let state = section.state;
            let id = section.id.clone();
            let deadline = section.deadline_at.unwrap_or(i64::MAX);
            let mut tx = Tx::new(&s, c, now, who);
            let mut leftovers = Vec::new();
            let outcome = match job.kind {
                JobKind::SectionDeadline if state == SectionState::Published => {
                    if deadline > now {
                        // The deadline moved after the job was read: follow it.
                        jobs::schedule(tx.c, &id, JobKind::SectionDeadline, deadline, now)?;
                        return Ok((Outcome::NotDue, leftovers));
                    }
                    transition::section(
                        tx.c,
                        &id,
                        SectionState::Published,
                        SectionState::Sealed,
                        now,
                    )?;
                    tx.record(
                        Change::new(&id, "section.sealed")
                            .data(json!({"deadline_ms": deadline, "sealed_at_ms": now}))
                            .audited_as("section.seal", json!({"deadline_ms": deadline})),
                    )?;
                    let grace = section.grace_secs * 1000;
                    if grace == 0 {
                        leftovers = bids::seal_section(&mut tx, &id)?;
                    } else {
                        // Uploads whose envelope came in time may finish first.
                        jobs::schedule(tx.c, &id, JobKind::SectionManifest, deadline + grace, now)?;
                    }
                    Outcome::Performed
                }
                JobKind::SectionManifest
                    if state == SectionState::Sealed
                        && crate::db::bids::manifest(tx.c, &id)?.is_none() =>
                {
                    leftovers = bids::seal_section(&mut tx, &id)?;
                    Outcome::Performed
                }
                JobKind::SectionDeadline | JobKind::SectionManifest => Outcome::Settled,
                JobKind::OpeningWindowEnd => match opening::end_window(&mut tx, &id)? {
                    opening::WindowEnd::Closed => Outcome::Performed,
                    // Paused (resuming schedules it again), or nothing left.
                    opening::WindowEnd::Idle => Outcome::Settled,
                    // Extended: the same job, due later.
                    opening::WindowEnd::Moved => return Ok((Outcome::NotDue, leftovers)),
                },
                JobKind::EvaluationAnswerDue => match evaluation::answers_due(&mut tx, &id)? {
                    evaluation::AnswersDue::Replaced => Outcome::Performed,
                    evaluation::AnswersDue::Idle => Outcome::Settled,
                    evaluation::AnswersDue::Moved => return Ok((Outcome::NotDue, leftovers)),
                },
                JobKind::EvaluationRevealsDue => match evaluation::reveals_due(&mut tx, &id)? {
                    evaluation::RevealsDue::Drawn => Outcome::Performed,
                    evaluation::RevealsDue::Idle => Outcome::Settled,
                    evaluation::RevealsDue::Moved => return Ok((Outcome::NotDue, leftovers)),
                },
                JobKind::EvaluationPublicityEnd => match evaluation::end_publicity(&mut tx, &id)? {
                    evaluation::PublicityEnd::Awarded => Outcome::Performed,
                    evaluation::PublicityEnd::Idle => Outcome::Settled,
                    evaluation::PublicityEnd::Moved => return Ok((Outcome::NotDue, leftovers)),
                },
                JobKind::OpeningDecrypt => {
                    return Err(AppError::internal(anyhow::anyhow!(
                        "the decryption job runs outside one transaction"
                    )))
                }
            };
            if jobs::complete(tx.c, &job.id, &node, now)? != 1 {
                return Err(lost_race());
            }
            Ok((outcome, leftovers))
        })
        .await;
    match r {
        Ok((outcome, leftovers)) => {
            for path in leftovers {
                svc.blobs.discard(&path);
            }
            Ok(outcome)
        }
        Err(e) if e.code == ErrorCode::Conflict => Ok(Outcome::Settled),
        Err(e) => Err(e),
    }
}
