//! Sign-in (签到): the host opens it; bidders sign in. Before the deadline a
//! sign-in is filed blind (even the number of bidders is confidential) and
//! only the bidder learns it took; it is announced in the room at the
//! sealing (`start.rs`).

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{hosted, load, org_name};
use crate::db::audit::{self, Who};
use crate::db::bids as bids_repo;
use crate::db::opening::{self as repo, SigninRow};
use crate::domain::identity::Role;
use crate::domain::ids::{OrgId, SectionId, SigninId, UserId};
use crate::domain::section::SectionState;
use crate::domain::states::BidStatus;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::action::{Action, Change, IdempotencyKey};
use crate::service::{confidential, Actor, Services};

/// A sign-in, sealed at rest until the sealing.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SigninRecord {
    pub bidder: OrgId,
    pub user: UserId,
    pub at_ms: i64,
}

/// The answer to opening sign-in (the same when it was open already).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SigninOpened {
    pub signin_open: bool,
}

/// The host opens sign-in (签到) for the opening.
pub async fn open_signin(
    svc: &Services,
    actor: &Actor,
    section_id: SectionId,
    key: Option<IdempotencyKey>,
) -> AppResult<SigninOpened> {
    actor.require(&[Role::Host])?;
    Action::new("signin.open", &section_id)
        .idempotent(key)
        .run(svc, actor, move |tx, a| {
            let x = hosted(tx.c, a, &section_id, "open sign-in")?;
            use SectionState::*;
            x.need_phase(&[Published, Sealed, Decrypting], "opening sign-in")?;
            let mut o = repo::get_or_create(tx.c, &section_id)?;
            if !o.signin_open {
                o.signin_open = true;
                repo::save(tx.c, &o)?;
                tx.record(Change::new(&section_id, "opening.signin_opened"))?;
            }
            Ok(SigninOpened { signin_open: true })
        })
        .await
}

/// The answer to a sign-in: `first` is false for a repeat.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignedIn {
    pub signed_in: bool,
    pub first: bool,
}

/// A bidder signs in.
pub async fn sign_in(
    svc: &Services,
    actor: &Actor,
    section_id: SectionId,
    key: Option<IdempotencyKey>,
) -> AppResult<SignedIn> {
    actor.require(&[Role::Bidder])?;
    let org = actor.org()?.clone();
    Action::new("signin", &section_id)
        .idempotent(key)
        .run(svc, actor, move |tx, a| {
            let now = tx.now;
            let x = load(tx.c, &section_id)?;
            use SectionState::*;
            x.need_phase(&[Published, Sealed, Decrypting], "signing in")?;
            let o = repo::get_or_create(tx.c, &section_id)?;
            if !o.signin_open {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    "the host has not opened sign-in yet",
                ));
            }
            let deadline = x.s.deadline_at.unwrap_or(i64::MAX);
            let before = x.state() == Published && now < deadline;
            // After the sealing: only bidders whose bid stands.
            if !before
                && !bids_repo::bids_of(tx.c, &section_id)?
                    .into_iter()
                    .any(|b| b.bidder == org && b.status == BidStatus::Accepted)
            {
                return Err(AppError::forbidden(
                    "only bidders with a bid in this opening can sign in",
                ));
            }
            let id = SigninId::new();
            let rec = SigninRecord {
                bidder: org.clone(),
                user: a.user.id.clone(),
                at_ms: now,
            };
            let fresh = repo::insert_signin(
                tx.c,
                &SigninRow {
                    id: id.clone(),
                    section_tag: confidential::section(&tx.svc.atrest, &section_id),
                    member_tag: confidential::signin(&tx.svc.atrest, &section_id, &org),
                    record: tx.svc.atrest.seal_json(id.as_str(), &rec),
                    created_at: now,
                },
            )?;
            if !fresh {
                return Ok(SignedIn {
                    signed_in: true,
                    first: false,
                });
            }
            if before {
                // No actor and no section in the audit trail before the deadline.
                audit::record(
                    tx.c,
                    now,
                    &Who::system(),
                    "opening.sign_in",
                    id.as_str(),
                    &json!({}),
                )?;
            } else {
                let name = org_name(tx.c, &org)?;
                tx.record(
                    Change::new(&section_id, "opening.signed_in")
                        .data(json!({"bidder": org, "name": name, "at_ms": now})),
                )?;
            }
            Ok(SignedIn {
                signed_in: true,
                first: true,
            })
        })
        .await
}
