//! Timed transitions, performed by the chronograph. Each runs in one
//! transaction that (1) compare-and-sets the section's state, (2) appends the
//! event, (3) writes the audit record and (4) marks the job done. If another
//! node got there first, step 1 or 4 finds nothing to change and the whole
//! transaction rolls back: each transition happens exactly once.

use super::sections::{DEADLINE_JOB, MANIFEST_JOB};
use super::{bids, opening, Services};
use crate::db::audit::{self, Who};
use crate::db::jobs::{self, JobRow};
use crate::db::{events, sections as repo};
use crate::domain::section::SectionState;
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
    if job.kind == opening::DECRYPT_JOB {
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
            let state = SectionState::from_db(&section.state).map_err(AppError::internal)?;
            let deadline = section.deadline_at.unwrap_or(i64::MAX);
            let mut leftovers = Vec::new();
            let outcome = match job.kind.as_str() {
                DEADLINE_JOB if state == SectionState::Published => {
                    if deadline > now {
                        // The deadline moved after the job was read: follow it.
                        jobs::schedule(c, &section.id, DEADLINE_JOB, deadline, now)?;
                        return Ok((Outcome::NotDue, leftovers));
                    }
                    if repo::cas_state(c, &section.id, "published", "sealed", now)? != 1 {
                        return Err(lost_race());
                    }
                    events::append(
                        c,
                        &section.id,
                        "section.sealed",
                        &serde_json::json!({"deadline_ms": deadline, "sealed_at_ms": now}),
                        None,
                        now,
                    )?;
                    audit::record(
                        c,
                        now,
                        &who,
                        "section.seal",
                        &section.id,
                        &serde_json::json!({"deadline_ms": deadline}),
                    )?;
                    let grace = section.grace_secs * 1000;
                    if grace == 0 {
                        leftovers = bids::seal_section(&s, c, &section.id, now)?;
                    } else {
                        // Uploads whose envelope came in time may finish first.
                        jobs::schedule(c, &section.id, MANIFEST_JOB, deadline + grace, now)?;
                    }
                    Outcome::Performed
                }
                MANIFEST_JOB
                    if state == SectionState::Sealed
                        && crate::db::bids::manifest(c, &section.id)?.is_none() =>
                {
                    leftovers = bids::seal_section(&s, c, &section.id, now)?;
                    Outcome::Performed
                }
                DEADLINE_JOB | MANIFEST_JOB => Outcome::Settled,
                opening::WINDOW_JOB => match opening::end_window(&s, c, &section.id, now)? {
                    opening::WindowEnd::Closed => Outcome::Performed,
                    // Paused (resuming schedules it again), or nothing left.
                    opening::WindowEnd::Idle => Outcome::Settled,
                    // Extended: the same job, due later.
                    opening::WindowEnd::Moved => return Ok((Outcome::NotDue, leftovers)),
                },
                super::evaluation::ANSWER_JOB => {
                    match super::evaluation::answers_due(&s, c, &section.id, now)? {
                        super::evaluation::AnswersDue::Replaced => Outcome::Performed,
                        super::evaluation::AnswersDue::Idle => Outcome::Settled,
                        super::evaluation::AnswersDue::Moved => {
                            return Ok((Outcome::NotDue, leftovers))
                        }
                    }
                }
                super::evaluation::PUBLICITY_JOB => {
                    match super::evaluation::end_publicity(&s, c, &section.id, now)? {
                        super::evaluation::PublicityEnd::Awarded => Outcome::Performed,
                        super::evaluation::PublicityEnd::Idle => Outcome::Settled,
                        super::evaluation::PublicityEnd::Moved => {
                            return Ok((Outcome::NotDue, leftovers))
                        }
                    }
                }
                other => {
                    return Err(AppError::internal(anyhow::anyhow!(
                        "unknown job kind {other}"
                    )))
                }
            };
            if jobs::complete(c, &job.id, &node, now)? != 1 {
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
