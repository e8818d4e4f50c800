//! Drafts: creating a section, replacing its settings while it is a draft,
//! and reading it as its staff. Each field is checked here and every
//! problem listed; the settings' consistency as a whole (deadline, keys,
//! documents) is checked at publication (`lifecycle.rs`).

use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::views::{section_view, SectionView};
use super::{load, not_draft};
use crate::db::identity as identity_repo;
use crate::db::keys as keys_repo;
use crate::db::sections::{self as repo, SectionDraftChanges, SectionRow};
use crate::db::DbConn;
use crate::domain::decimal::Money;
use crate::domain::evaluation::EvaluationSpec;
use crate::domain::identity::Role;
use crate::domain::ids::{ProjectId, SectionId, UserId};
use crate::domain::problems::Problems;
use crate::domain::section::{limits, DecryptionMode, SectionState, SummaryField};
use crate::domain::time::Timestamp;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::action::{transact, Change};
use crate::service::policy::{require_runs, standing};
use crate::service::{text_field, Actor, Services};

/// The editable settings of a section (create and replace).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionDraft {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Bid deadline = opening time (投标截止时间即开标时间).
    #[serde(default)]
    pub deadline: Option<Timestamp>,
    #[serde(default)]
    pub window_minutes: Option<i64>,
    #[serde(default)]
    pub decryption_mode: Option<DecryptionMode>,
    /// Custodian user ids, in position order.
    #[serde(default)]
    pub custodians: Vec<UserId>,
    #[serde(default)]
    pub threshold: Option<i32>,
    #[serde(default)]
    pub min_bidders: Option<i32>,
    /// Time after the deadline to finish part uploads whose envelope arrived
    /// before it (default 0).
    #[serde(default)]
    pub grace_seconds: Option<i64>,
    /// 最高投标限价, if any.
    #[serde(default)]
    pub ceiling_price: Option<Money>,
    #[serde(default)]
    pub evaluation: Option<EvaluationSpec>,
    #[serde(default)]
    pub summary_fields: Option<Vec<SummaryField>>,
}

fn default_threshold(n: usize) -> i32 {
    (n / 2 + 1) as i32
}

/// Checks a draft's fields one by one, listing every problem.
fn draft_changes(
    svc: &Services,
    d: &SectionDraft,
    now: i64,
) -> Result<(SectionDraftChanges, Vec<UserId>), AppError> {
    let mut p = Problems::new();
    let rules = &svc.config.rules;
    let code = text_field(&mut p, "code", &d.code, 1, 64);
    let name = text_field(&mut p, "name", &d.name, 2, limits::MAX_NAME);
    let description = text_field(&mut p, "description", &d.description, 0, limits::MAX_TEXT);
    let window_secs = d.window_minutes.unwrap_or(rules.default_window_minutes) * 60;
    p.check(
        (limits::MIN_WINDOW_SECS..=limits::MAX_WINDOW_SECS).contains(&window_secs),
        "window_minutes",
        "the decryption window lasts 1 minute to 24 hours",
    );
    let grace_secs = d.grace_seconds.unwrap_or(0);
    p.check(
        (0..=limits::MAX_GRACE_SECS).contains(&grace_secs),
        "grace_seconds",
        "0 to 3600 seconds",
    );
    let min_bidders = d.min_bidders.unwrap_or(rules.default_min_bidders);
    p.check(
        (1..=limits::MAX_MIN_BIDDERS).contains(&min_bidders),
        "min_bidders",
        "1 to 100",
    );
    let mut seen = std::collections::HashSet::new();
    p.check(
        d.custodians.len() <= limits::MAX_CUSTODIANS,
        "custodians",
        format!("at most {} custodians", limits::MAX_CUSTODIANS),
    );
    for (i, u) in d.custodians.iter().enumerate() {
        p.check(seen.insert(u), format!("custodians[{i}]"), "listed twice");
    }
    let threshold = d
        .threshold
        .unwrap_or_else(|| default_threshold(d.custodians.len()));
    if !d.custodians.is_empty() {
        p.check(
            threshold >= 2 && threshold as usize <= d.custodians.len(),
            "threshold",
            format!(
                "must be at least 2 (no single custodian may open bids) and at most the {} custodians",
                d.custodians.len()
            ),
        );
    }
    if let Some(m) = d.ceiling_price {
        p.check(m > Money::ZERO, "ceiling_price", "must be more than 0");
    }
    if let Some(e) = &d.evaluation {
        e.validate("evaluation", &mut p);
    }
    let summary = d
        .summary_fields
        .clone()
        .unwrap_or_else(SummaryField::defaults);
    SummaryField::validate_all(&summary, "summary_fields", &mut p);
    if !p.is_empty() {
        return Err(AppError::validation(p.into_vec()));
    }
    Ok((
        SectionDraftChanges {
            code,
            name,
            description,
            deadline_at: d.deadline.map(|t| t.millis()),
            window_secs,
            decryption_mode: d.decryption_mode.unwrap_or(DecryptionMode::Custodians),
            threshold,
            min_bidders,
            grace_secs,
            ceiling_price_fen: d.ceiling_price.map(|m| m.fen()),
            evaluation: d
                .evaluation
                .as_ref()
                .map(|e| serde_json::to_string(e).expect("spec serialises")),
            summary_fields: serde_json::to_string(&summary).expect("fields serialise"),
            updated_at: now,
        },
        d.custodians.clone(),
    ))
}

/// Custodians must be active custodian users.
pub(super) fn check_custodian_users(
    c: &mut DbConn,
    ids: &[UserId],
    p: &mut Problems,
) -> AppResult<()> {
    for (i, id) in ids.iter().enumerate() {
        match identity_repo::find_user(c, id)? {
            Some(u) if u.role == Role::Custodian && u.disabled_at.is_none() => {}
            Some(_) => p.push(format!("custodians[{i}]"), "not an active custodian"),
            None => p.push(format!("custodians[{i}]"), "no such user"),
        }
    }
    Ok(())
}

/// The fields are sound and every custodian is an active custodian.
fn checked(
    svc: &Services,
    c: &mut DbConn,
    d: &SectionDraft,
    now: i64,
) -> AppResult<(SectionDraftChanges, Vec<UserId>)> {
    let (changes, custodians) = draft_changes(svc, d, now)?;
    let mut pr = Problems::new();
    check_custodian_users(c, &custodians, &mut pr)?;
    if !pr.is_empty() {
        return Err(AppError::validation(pr.into_vec()));
    }
    Ok((changes, custodians))
}

/// A host of the project adds a draft section.
pub async fn create(
    svc: &Services,
    actor: &Actor,
    project_id: ProjectId,
    d: SectionDraft,
) -> AppResult<SectionView> {
    actor.require(&[Role::Host])?;
    let user = actor.user.clone();
    transact(svc, actor.who(), move |tx| {
        let p =
            repo::find_project(tx.c, &project_id)?.ok_or_else(|| AppError::not_found("project"))?;
        let st = standing(tx.c, &user, &p, None)?;
        if !st.runs {
            return Err(if st.can_view() {
                AppError::forbidden("only the project's host may add sections")
            } else {
                AppError::not_found("project")
            });
        }
        let (changes, custodians) = checked(tx.svc, tx.c, &d, tx.now)?;
        let row = SectionRow {
            id: SectionId::new(),
            project_id: p.id.clone(),
            code: changes.code,
            name: changes.name,
            description: changes.description,
            state: SectionState::Draft,
            deadline_at: changes.deadline_at,
            published_at: None,
            window_secs: changes.window_secs,
            decryption_mode: changes.decryption_mode,
            threshold: changes.threshold,
            min_bidders: changes.min_bidders,
            grace_secs: changes.grace_secs,
            ceiling_price_fen: changes.ceiling_price_fen,
            evaluation: changes.evaluation,
            summary_fields: changes.summary_fields,
            params_version: 0,
            params_json: None,
            params_hash: None,
            cancel_reason: None,
            last_seq: 0,
            created_by: user.id.clone(),
            created_at: tx.now,
            updated_at: tx.now,
        };
        repo::insert_section(tx.c, &row).map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                AppError::conflict(
                    ErrorCode::Conflict,
                    "this project already has a section with this code",
                )
            } else {
                e.into()
            }
        })?;
        repo::set_custodians(tx.c, &row.id, &custodians)?;
        tx.record(
            Change::new(&row.id, "section.created")
                .data(json!({"code": row.code}))
                .audited_as("section.create", json!({"project": p.id})),
        )?;
        section_view(tx.c, row, p)
    })
    .await
}

/// The host replaces a draft's settings; a published section changes only
/// through an amendment.
pub async fn update_draft(
    svc: &Services,
    actor: &Actor,
    id: SectionId,
    d: SectionDraft,
) -> AppResult<SectionView> {
    actor.require(&[Role::Host])?;
    let user = actor.user.clone();
    transact(svc, actor.who(), move |tx| {
        let (s, p) = load(tx.c, &id)?;
        let st = standing(tx.c, &user, &p, Some(&id))?;
        require_runs(&st, s.state.is_public(), "edit")?;
        if s.state != SectionState::Draft {
            return Err(not_draft());
        }
        let (changes, custodians) = checked(tx.svc, tx.c, &d, tx.now)?;
        if repo::update_draft(tx.c, &id, &changes)? != 1 {
            return Err(not_draft());
        }
        repo::set_custodians(tx.c, &id, &custodians)?;
        keys_repo::prune_section_keys(tx.c, &id, &custodians)?;
        crate::db::audit::record(
            tx.c,
            tx.now,
            &tx.who,
            "section.edit",
            id.as_str(),
            &json!({}),
        )?;
        let (s, p) = load(tx.c, &id)?;
        section_view(tx.c, s, p)
    })
    .await
}

/// A section as its host, tenderer, supervisor or custodians see it.
pub async fn get(svc: &Services, actor: &Actor, id: SectionId) -> AppResult<SectionView> {
    let user = actor.user.clone();
    svc.db
        .run(move |c| {
            let (s, p) = load(c, &id)?;
            let st = standing(c, &user, &p, Some(&id))?;
            if !st.can_view() {
                return Err(if s.state.is_public() {
                    AppError::forbidden("this view is for the section's host, tenderer, supervisor and custodians; see /api/public/sections")
                } else {
                    AppError::not_found("section")
                });
            }
            section_view(c, s, p)
        })
        .await
}
