//! A section's publication — every reason it cannot be published yet,
//! listed at once; the parameters frozen and logged; the deadline scheduled
//! — and its cancellation.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::draft::check_custodian_users;
use super::params::{self, Revision};
use super::registration::notify_registered;
use super::views::{section_view, SectionView};
use super::{evaluation_of, load};
use crate::db::keys as keys_repo;
use crate::db::sections::{self as repo, ProjectRow, SectionRow};
use crate::db::{jobs, DbConn};
use crate::domain::identity::{KeyPurpose, Role};
use crate::domain::ids::{SectionId, UserId};
use crate::domain::problems::{Problem, Problems};
use crate::domain::section::{Category, SectionState};
use crate::domain::states::JobKind;
use crate::domain::time::Timestamp;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::notify::templates::{self, SectionRef};
use crate::service::action::{transact, Change};
use crate::service::policy::{require_runs, standing};
use crate::service::{text_field, transition, Actor, Services};

/// The minimum days between publication and deadline for this project.
pub fn min_days(svc: &Services, p: &ProjectRow) -> i64 {
    let by_law = p.must_tender_by_law
        && matches!(p.category, Category::Construction | Category::Procurement);
    if by_law {
        svc.config.rules.min_days_by_law
    } else {
        svc.config.rules.min_days_other
    }
}

/// Every reason the section cannot be published now.
fn publication_problems(
    svc: &Services,
    c: &mut DbConn,
    s: &SectionRow,
    p: &ProjectRow,
    now: i64,
) -> AppResult<Vec<Problem>> {
    let mut pr = Problems::new();
    match s.deadline_at {
        None => pr.push("deadline", "a deadline (= opening time) is required"),
        Some(d) => {
            let days = min_days(svc, p);
            let earliest = now + days * 86_400_000;
            if d <= now {
                pr.push("deadline", "the deadline has already passed");
            } else if d < earliest {
                pr.push(
                    "deadline",
                    format!(
                        "must be at least {days} days after publication: no earlier than {}",
                        Timestamp::from_millis(earliest).shanghai_rfc3339()
                    ),
                );
            }
        }
    }
    let mode = s.decryption_mode;
    let custodians = repo::custodians(c, &s.id)?;
    if mode.needs_custodians() && custodians.is_empty() {
        pr.push(
            "custodians",
            format!("the {mode} mode needs custodians holding the opening keys"),
        );
    }
    if !custodians.is_empty() && (s.threshold < 2 || s.threshold as usize > custodians.len()) {
        pr.push(
            "threshold",
            format!("must lie between 2 and {}", custodians.len()),
        );
    }
    let ids: Vec<UserId> = custodians.into_iter().map(|(_, u)| u).collect();
    check_custodian_users(c, &ids, &mut pr)?;
    let keys = keys_repo::section_keys(c, &s.id)?;
    for (i, u) in ids.iter().enumerate() {
        match keys.iter().find(|k| &k.user_id == u) {
            None => pr.push(
                format!("custodians[{i}]"),
                "has not registered a key for this section",
            ),
            Some(k) => {
                // The identity key that signed it must still be the active one.
                let active = keys_repo::active_key(c, u.as_str(), KeyPurpose::CustodianIdentity)?;
                if active.map(|a| a.id) != Some(k.identity_key_id.clone()) {
                    pr.push(
                        format!("custodians[{i}]"),
                        "rotated their identity key since registering the section key; they must register it again",
                    );
                }
            }
        }
    }
    match evaluation_of(s)? {
        None => pr.push(
            "evaluation",
            "the evaluation method and criteria are required",
        ),
        Some(e) => e.validate("evaluation", &mut pr),
    }
    if repo::documents_of(c, &s.id)?.is_empty() {
        pr.push("documents", "upload the tender documents (招标文件) first");
    }
    Ok(pr.into_vec())
}

/// Publishes a draft. Exactly one of several concurrent calls wins (the
/// state change is a compare-and-set); the others get `invalid_transition`.
pub async fn publish(svc: &Services, actor: &Actor, id: SectionId) -> AppResult<SectionView> {
    actor.require(&[Role::Host])?;
    let user = actor.user.clone();
    transact(svc, actor.who(), move |tx| {
        let (s, p) = load(tx.c, &id)?;
        let st = standing(tx.c, &user, &p, Some(&id))?;
        require_runs(&st, s.state.is_public(), "publish")?;
        transition::check(s.state, SectionState::Published)?;
        let now = tx.now;
        let problems = publication_problems(tx.svc, tx.c, &s, &p, now)?;
        if !problems.is_empty() {
            return Err(AppError::validation(problems));
        }
        let deadline = s.deadline_at.expect("checked above");
        let docs = repo::documents_of(tx.c, &id)?;
        let rev = Revision {
            version: 1,
            deadline,
            published_at: now,
        };
        let params = params::build(tx.svc, tx.c, (&s, &p), rev, &docs)?;
        let (json, hash) = params.seal();
        if repo::set_published(tx.c, &id, now, &json, &hash)? != 1 {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                "the section was published by someone else",
            ));
        }
        repo::insert_params_version(tx.c, &id, 1, &json, &hash, now)?;
        jobs::schedule(tx.c, &id, JobKind::SectionDeadline, deadline, now)?;
        tx.record(
            Change::new(&id, "section.published")
                .logged(json!({"params_version": 1, "params_hash": hash, "deadline_ms": deadline}))
                .data(json!({"params_hash": hash, "deadline_ms": deadline}))
                .audited_as("section.publish", json!({"params_hash": hash})),
        )?;
        let (s, p) = load(tx.c, &id)?;
        section_view(tx.c, s, p)
    })
    .await
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub reason: String,
}

/// The host cancels a section (from any state that is not final), with a
/// reason; the registered bidders are told.
pub async fn cancel(
    svc: &Services,
    actor: &Actor,
    id: SectionId,
    req: CancelRequest,
) -> AppResult<SectionView> {
    actor.require(&[Role::Host])?;
    let user = actor.user.clone();
    transact(svc, actor.who(), move |tx| {
        let (s, p) = load(tx.c, &id)?;
        let from = s.state;
        let st = standing(tx.c, &user, &p, Some(&id))?;
        require_runs(&st, from.is_public(), "cancel")?;
        let mut pr = Problems::new();
        let reason = text_field(&mut pr, "reason", &req.reason, 2, 2000);
        if !pr.is_empty() {
            return Err(AppError::validation(pr.into_vec()));
        }
        transition::check(from, SectionState::Cancelled)?;
        if repo::set_cancelled(tx.c, &id, from, &reason, tx.now)? != 1 {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                "the section changed meanwhile; reload it",
            ));
        }
        jobs::cancel_pending(tx.c, &id)?;
        let link = format!("{}/?section={id}", tx.svc.public_url);
        let mail = templates::cancelled(
            &SectionRef {
                project_name: &p.name,
                section_code: &s.code,
                section_name: &s.name,
                link: &link,
            },
            &reason,
        );
        let notified = notify_registered(tx.svc, tx.c, &id, &mail, tx.now)?;
        tx.record(
            Change::new(&id, "section.cancelled")
                .data(json!({"from": from, "reason": reason}))
                .audited_as(
                    "section.cancel",
                    json!({"from": from, "notified": notified}),
                ),
        )?;
        let (s, p) = load(tx.c, &id)?;
        section_view(tx.c, s, p)
    })
    .await
}
