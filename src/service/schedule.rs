//! Timed transitions, performed by the chronograph. Each runs in one
//! transaction that (1) compare-and-sets the section's state, (2) appends the
//! event, (3) writes the audit record and (4) marks the job done. If another
//! node got there first, step 1 or 4 finds nothing to change and the whole
//! transaction rolls back: each transition happens exactly once.

use super::sections::DEADLINE_JOB;
use super::Services;
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
    let now = svc.now().millis();
    let r = svc
        .db
        .write(move |c| {
            let who = Who {
                actor_id: None,
                request_id: Some(format!("chronograph:{node}")),
            };
            match job.kind.as_str() {
                DEADLINE_JOB => {
                    let s = repo::find_section(c, &job.section_id)?
                        .ok_or_else(|| AppError::not_found("section"))?;
                    let state = SectionState::from_db(&s.state).map_err(AppError::internal)?;
                    if state == SectionState::Published {
                        let deadline = s.deadline_at.unwrap_or(i64::MAX);
                        if deadline > now {
                            // The deadline moved after the job was read: follow it.
                            jobs::schedule(c, &s.id, DEADLINE_JOB, deadline, now)?;
                            return Ok(Outcome::NotDue);
                        }
                        if repo::cas_state(c, &s.id, "published", "sealed", now)? != 1 {
                            return Err(lost_race());
                        }
                        events::append(
                            c,
                            &s.id,
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
                            &s.id,
                            &serde_json::json!({"deadline_ms": deadline}),
                        )?;
                        if jobs::complete(c, &job.id, &node, now)? != 1 {
                            return Err(lost_race());
                        }
                        Ok(Outcome::Performed)
                    } else {
                        // Cancelled or already sealed: the job has nothing to do.
                        if jobs::complete(c, &job.id, &node, now)? != 1 {
                            return Err(lost_race());
                        }
                        Ok(Outcome::Settled)
                    }
                }
                other => Err(AppError::internal(anyhow::anyhow!(
                    "unknown job kind {other}"
                ))),
            }
        })
        .await;
    match r {
        Err(e) if e.code == ErrorCode::Conflict => Ok(Outcome::Settled),
        other => other,
    }
}
