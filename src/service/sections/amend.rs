//! Amendments (澄清/修改) before the deadline: a new version of the published
//! parameters (and so a new hash), the documents it publishes, the deadline
//! moved out when fewer than `rules.amendment_min_days` would remain, and
//! every registered bidder mailed — in one transaction.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::load;
use super::params::{self, published_documents, Revision};
use super::registration::notify_registered;
use super::views::AmendmentView;
use crate::db::jobs;
use crate::db::sections::{self as repo, AmendmentRow};
use crate::domain::identity::Role;
use crate::domain::ids::{AmendmentId, DocumentId, SectionId};
use crate::domain::problems::Problems;
use crate::domain::section::{limits, AmendmentKind, SectionState};
use crate::domain::states::JobKind;
use crate::domain::time::Timestamp;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::notify::templates::{self, SectionRef};
use crate::service::action::{transact, Change};
use crate::service::policy::{require_runs, standing};
use crate::service::{text_field, Actor, Services};

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendmentRequest {
    pub kind: AmendmentKind,
    pub title: String,
    pub body: String,
    /// A later deadline, if the amendment moves it. Never earlier.
    #[serde(default)]
    pub deadline: Option<Timestamp>,
    /// Documents uploaded since publication that this amendment publishes.
    #[serde(default)]
    pub documents: Vec<DocumentId>,
}

/// The host publishes an amendment.
pub async fn amend(
    svc: &Services,
    actor: &Actor,
    id: SectionId,
    req: AmendmentRequest,
) -> AppResult<AmendmentView> {
    actor.require(&[Role::Host])?;
    let user = actor.user.clone();
    transact(svc, actor.who(), move |tx| {
        let now = tx.now;
        let (s, p) = load(tx.c, &id)?;
        let st = standing(tx.c, &user, &p, Some(&id))?;
        require_runs(&st, s.state.is_public(), "amend")?;
        let mut pr = Problems::new();
        let title = text_field(&mut pr, "title", &req.title, 2, limits::MAX_NAME);
        let body = text_field(&mut pr, "body", &req.body, 1, limits::MAX_TEXT);
        if !pr.is_empty() {
            return Err(AppError::validation(pr.into_vec()));
        }
        if s.state != SectionState::Published {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                format!(
                    "amendments are published only before the deadline; the section is {}",
                    s.state
                ),
            ));
        }
        let old = s.deadline_at.expect("published sections have a deadline");
        if now >= old {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                "the deadline has passed",
            ));
        }
        let mut new = old;
        if let Some(d) = req.deadline {
            if d.millis() < old {
                return Err(AppError::invalid_field(
                    "deadline",
                    "an amendment may move the deadline later, never earlier",
                ));
            }
            new = d.millis();
        }
        let min_left = tx.svc.config.rules.amendment_min_days * 86_400_000;
        if new - now < min_left {
            new = now + min_left;
        }
        let pending = repo::pending_amendment_documents(tx.c, &id, &req.documents)?;
        if pending.len() != req.documents.len() {
            return Err(AppError::invalid_field(
                "documents",
                "each must be a document uploaded to this section since publication and not yet published",
            ));
        }
        let number = repo::amendments_of(tx.c, &id)?.len() as i32 + 1;
        let all_docs = published_documents(&s, repo::documents_of(tx.c, &id)?)?
            .into_iter()
            .chain(pending)
            .collect::<Vec<_>>();
        let version = s.params_version + 1;
        let rev = Revision {
            version,
            deadline: new,
            published_at: s.published_at.expect("published"),
        };
        let params = params::build(tx.svc, tx.c, (&s, &p), rev, &all_docs)?;
        let (json, hash) = params.seal();
        if repo::set_amended_params(tx.c, &id, version, new, &json, &hash, now)? != 1 {
            return Err(AppError::new(
                ErrorCode::Conflict,
                "the section changed meanwhile; try again",
            ));
        }
        let row = AmendmentRow {
            id: AmendmentId::new(),
            section_id: id.clone(),
            number,
            kind: req.kind,
            title,
            body,
            old_deadline: old,
            new_deadline: new,
            params_hash: hash.clone(),
            created_by: user.id.clone(),
            created_at: now,
        };
        repo::insert_amendment(tx.c, &row)?;
        repo::attach_documents(tx.c, &req.documents, &row.id)?;
        repo::insert_params_version(tx.c, &id, version, &json, &hash, now)?;
        jobs::schedule(tx.c, &id, JobKind::SectionDeadline, new, now)?;
        let link = format!("{}/?section={}", tx.svc.public_url, id);
        let mail = templates::amendment(
            &SectionRef {
                project_name: &p.name,
                section_code: &s.code,
                section_name: &s.name,
                link: &link,
            },
            number,
            &row.title,
            Timestamp::from_millis(old),
            Timestamp::from_millis(new),
        );
        let notified = notify_registered(tx.svc, tx.c, &id, &mail, now)?;
        tx.record(
            Change::new(&id, "section.amended")
                .logged(json!({"params_version": version, "params_hash": hash,
                               "deadline_ms": new, "amendment": number}))
                .data(json!({"number": number, "params_hash": hash,
                             "old_deadline_ms": old, "new_deadline_ms": new}))
                .audited_as(
                    "section.amend",
                    json!({"number": number, "notified": notified, "deadline_moved": old != new}),
                ),
        )?;
        Ok(AmendmentView::from(row))
    })
    .await
}
