//! Bidders registering for a section (获取招标文件) — filed under blind tags,
//! so who and how many registered is never disclosed before the deadline —
//! and the mail that reaches every registered bidder.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::load;
use crate::db::audit::{self, Who};
use crate::db::identity as identity_repo;
use crate::db::sections as repo;
use crate::db::{outbox, DbConn};
use crate::domain::identity::Role;
use crate::domain::ids::{OrgId, RegistrationId, SectionId, UserId};
use crate::domain::section::SectionState;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::notify::templates;
use crate::service::action::transact;
use crate::service::{confidential, Actor, Services};

/// A bidder's registration for a section, sealed at rest.
#[derive(Debug, Serialize, Deserialize)]
struct Registration {
    section_id: SectionId,
    org_id: OrgId,
    user_id: UserId,
}

/// The answer to a registration (the same whether or not it was the first).
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationConfirmed {
    pub section_id: SectionId,
    pub registered: bool,
}

/// A bidder obtains the tender documents and so registers for the section.
pub async fn register_bidder(
    svc: &Services,
    actor: &Actor,
    id: SectionId,
) -> AppResult<RegistrationConfirmed> {
    actor.require(&[Role::Bidder])?;
    let org = actor.org()?.clone();
    // Who registered where is confidential: the audit record names neither.
    let who = Who {
        actor_id: None,
        request_id: Some(actor.request_id.clone()),
    };
    let uid = actor.user.id.clone();
    transact(svc, who, move |tx| {
        let (s, _) = load(tx.c, &id)?;
        if !s.state.is_public() {
            return Err(AppError::not_found("section"));
        }
        if s.state != SectionState::Published || s.deadline_at.is_some_and(|d| d <= tx.now) {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                "registration closes at the deadline",
            ));
        }
        let row_id = RegistrationId::new();
        let record = tx.svc.atrest.seal_json(
            row_id.as_str(),
            &Registration {
                section_id: id.clone(),
                org_id: org.clone(),
                user_id: uid,
            },
        );
        let new = repo::register_bidder(
            tx.c,
            &row_id,
            &confidential::section(&tx.svc.atrest, &id),
            &confidential::registration(&tx.svc.atrest, &id, &org),
            &record,
            tx.now,
        )?;
        if new {
            audit::record(
                tx.c,
                tx.now,
                &tx.who,
                "registration.create",
                row_id.as_str(),
                &json!({}),
            )?;
        }
        Ok(RegistrationConfirmed {
            section_id: id,
            registered: true,
        })
    })
    .await
}

/// Mails every active, verified user of every organisation registered for a
/// section, inside the caller's transaction.
pub fn notify_registered(
    svc: &Services,
    c: &mut DbConn,
    section_id: &SectionId,
    mail: &templates::Mail,
    now: i64,
) -> AppResult<usize> {
    let mut n = 0;
    let tag = confidential::section(&svc.atrest, section_id);
    for (row_id, record) in repo::registrations(c, &tag)? {
        let r: Registration = svc
            .atrest
            .open_json(&row_id, &record)
            .map_err(AppError::internal)?;
        for u in identity_repo::users_of_org(c, &r.org_id)? {
            if u.disabled_at.is_none() && u.email_verified_at.is_some() {
                outbox::enqueue(c, mail.kind, &u.email, &mail.subject, &mail.body, now)?;
                n += 1;
            }
        }
    }
    Ok(n)
}
