//! Users: created by administrators (a verification mail is sent), bidder
//! companies registering themselves with their first user, accounts made
//! from the command line, disabling and ending every session of a user.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::email::queue_verification;
use super::orgs::{insert_org_checked, parse_org};
use super::passwords::{hash_off_executor, hash_password};
use super::views::{BidderRegistration, NewOrg, NewUser, Registered, UserView};
use crate::db::audit::{self, Who};
use crate::db::identity::{self as repo, OrgRow, UserRow};
use crate::db::{is_unique_violation, write_tx, DbConn};
use crate::domain::identity::{check_password, Email, OrgKind, Role, Username};
use crate::domain::ids::{OrgId, UserId};
use crate::domain::problems::Problems;
use crate::domain::time::Timestamp;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::{text_field, Actor, Services};

struct ValidUser {
    username: Username,
    email: Email,
    display_name: String,
}

impl ValidUser {
    fn into_row(
        self,
        org_id: Option<OrgId>,
        role: Role,
        hash: String,
        verified_at: Option<i64>,
        now: i64,
    ) -> UserRow {
        UserRow {
            id: UserId::new(),
            org_id,
            username: self.username.as_str().into(),
            email: self.email.as_str().into(),
            display_name: self.display_name,
            role,
            password_hash: hash,
            email_verified_at: verified_at,
            disabled_at: None,
            created_at: now,
        }
    }
}

fn parse_user_fields(
    p: &mut Problems,
    username: &str,
    email: &str,
    display_name: &str,
    password: &str,
) -> Option<ValidUser> {
    let u = Username::parse(username)
        .map_err(|m| p.push("username", m))
        .ok();
    let e = Email::parse(email).map_err(|m| p.push("email", m)).ok();
    let d = text_field(p, "display_name", display_name, 1, 100);
    if let Err(m) = check_password(password) {
        p.push("password", m);
    }
    Some(ValidUser {
        username: u?,
        email: e?,
        display_name: d,
    })
}

fn insert_user_checked(c: &mut DbConn, row: &UserRow) -> AppResult<()> {
    if repo::user_by_username(c, &row.username)?.is_some() {
        return Err(AppError::conflict(
            ErrorCode::UsernameTaken,
            "this username is taken",
        ));
    }
    repo::insert_user(c, row).map_err(|e| {
        if is_unique_violation(&e) {
            AppError::conflict(ErrorCode::UsernameTaken, "this username is taken")
        } else {
            e.into()
        }
    })
}

/// The user's organisation exists and fits the role.
fn check_org_for_role(c: &mut DbConn, org_id: &OrgId, role: Role, field: &str) -> AppResult<()> {
    let org = repo::find_org(c, org_id)?
        .ok_or_else(|| AppError::invalid_field(field, "no such organisation"))?;
    if !role.allowed_org_kinds().contains(&org.kind) {
        return Err(AppError::invalid_field(
            "role",
            format!("a {role} cannot belong to a {} organisation", org.kind),
        ));
    }
    Ok(())
}

/// An administrator creates a user; a verification mail is sent.
pub async fn create_user(svc: &Services, actor: &Actor, req: NewUser) -> AppResult<UserView> {
    actor.require(&[Role::Admin])?;
    let mut p = Problems::new();
    let fields = parse_user_fields(
        &mut p,
        &req.username,
        &req.email,
        &req.display_name,
        &req.password,
    );
    if req.role == Role::Admin {
        p.check(
            req.org_id.is_none(),
            "org_id",
            "platform administrators belong to no organisation",
        );
    } else {
        p.check(req.org_id.is_some(), "org_id", "required for this role");
    }
    let fields = match (fields, p.is_empty()) {
        (Some(f), true) => f,
        _ => return Err(AppError::validation(p.into_vec())),
    };
    let hash = hash_off_executor(req.password).await?;
    let now = svc.now().millis();
    let role = req.role;
    let row = fields.into_row(req.org_id, role, hash, None, now);
    let who = actor.who();
    let s = svc.clone();
    let view = svc
        .db
        .write(move |c| {
            if let Some(org_id) = &row.org_id {
                check_org_for_role(c, org_id, role, "org_id")?;
            }
            insert_user_checked(c, &row)?;
            queue_verification(&s, c, &row, now)?;
            audit::record(
                c,
                now,
                &who,
                "user.create",
                row.id.as_str(),
                &json!({"role": row.role}),
            )?;
            Ok(UserView::from(row))
        })
        .await?;
    svc.kick_workers();
    Ok(view)
}

/// Public: a bidder company registers itself and its first user.
pub async fn register_bidder(
    svc: &Services,
    request_id: &str,
    req: BidderRegistration,
) -> AppResult<Registered> {
    let mut p = Problems::new();
    let org = parse_org(
        &NewOrg {
            kind: OrgKind::Bidder,
            name: req.company_name.clone(),
            credit_code: req.credit_code.clone(),
            centre_code: None,
        },
        &mut p,
    );
    let fields = parse_user_fields(
        &mut p,
        &req.username,
        &req.email,
        &req.display_name,
        &req.password,
    );
    let ((name, code, _), fields) = match (org, fields, p.is_empty()) {
        (Some(o), Some(f), true) => (o, f),
        _ => {
            // Rename the organisation fields to their registration names.
            let problems = p
                .into_vec()
                .into_iter()
                .map(|mut x| {
                    if x.field == "name" {
                        x.field = "company_name".into();
                    }
                    x
                })
                .collect();
            return Err(AppError::validation(problems));
        }
    };
    let hash = hash_off_executor(req.password).await?;
    let now = svc.now().millis();
    let org_row = OrgRow {
        id: OrgId::new(),
        kind: OrgKind::Bidder,
        name,
        credit_code: code.as_str().into(),
        centre_code: None,
        created_at: now,
    };
    let user_row = fields.into_row(Some(org_row.id.clone()), Role::Bidder, hash, None, now);
    let who = Who {
        actor_id: Some(user_row.id.to_string()),
        request_id: Some(request_id.to_string()),
    };
    let s = svc.clone();
    let r = svc
        .db
        .write(move |c| {
            insert_org_checked(c, &org_row)?;
            insert_user_checked(c, &user_row)?;
            queue_verification(&s, c, &user_row, now)?;
            audit::record(
                c,
                now,
                &who,
                "bidder.register",
                org_row.id.as_str(),
                &json!({}),
            )?;
            Ok(Registered {
                organisation: org_row.into(),
                user: user_row.into(),
            })
        })
        .await?;
    svc.kick_workers();
    Ok(r)
}

/// A user made from the command line (no request, no mail).
pub struct BootstrapUser<'a> {
    pub org_id: Option<OrgId>,
    pub role: Role,
    pub username: &'a str,
    pub email: &'a str,
    pub display_name: &'a str,
    pub password: &'a str,
}

/// Bootstrap from the command line: a user whose e-mail counts as verified.
pub fn bootstrap_user(c: &mut DbConn, now: Timestamp, u: BootstrapUser<'_>) -> AppResult<UserView> {
    let BootstrapUser {
        org_id,
        role,
        username,
        email,
        display_name,
        password,
    } = u;
    let mut p = Problems::new();
    let fields = parse_user_fields(&mut p, username, email, display_name, password);
    p.check(
        (role == Role::Admin) == org_id.is_none(),
        "org",
        "administrators have no organisation; every other role needs one",
    );
    let fields = match (fields, p.is_empty()) {
        (Some(f), true) => f,
        _ => return Err(AppError::validation(p.into_vec())),
    };
    let hash = hash_password(password).map_err(AppError::internal)?;
    let row = fields.into_row(org_id, role, hash, Some(now.millis()), now.millis());
    write_tx(c, |c| {
        if let Some(org_id) = &row.org_id {
            check_org_for_role(c, org_id, role, "org")?;
        }
        insert_user_checked(c, &row)?;
        audit::record(
            c,
            now.millis(),
            &Who::system(),
            "user.bootstrap",
            row.id.as_str(),
            &json!({"role": row.role}),
        )?;
        Ok(UserView::from(row))
    })
}

pub async fn list_users(svc: &Services, actor: &Actor) -> AppResult<Vec<UserView>> {
    actor.require(&[Role::Admin])?;
    svc.db
        .run(|c| Ok(repo::list_users(c)?.into_iter().map(Into::into).collect()))
        .await
}

/// Disables (or re-enables) a user; disabling also ends their sessions.
pub async fn set_user_disabled(
    svc: &Services,
    actor: &Actor,
    user_id: UserId,
    disabled: bool,
) -> AppResult<UserView> {
    actor.require(&[Role::Admin])?;
    if disabled && user_id == actor.user.id {
        return Err(AppError::bad_request("you cannot disable your own account"));
    }
    let now = svc.now().millis();
    let who = actor.who();
    svc.db
        .write(move |c| {
            let n = repo::set_disabled(c, &user_id, disabled.then_some(now))?;
            if n == 0 {
                return Err(AppError::not_found("user"));
            }
            if disabled {
                repo::revoke_user_sessions(c, &user_id, now)?;
            }
            let action = if disabled {
                "user.disable"
            } else {
                "user.enable"
            };
            audit::record(c, now, &who, action, user_id.as_str(), &json!({}))?;
            let row = repo::find_user(c, &user_id)?.ok_or_else(|| AppError::not_found("user"))?;
            Ok(row.into())
        })
        .await
}

/// How many sessions an administrator ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsRevoked {
    pub revoked: usize,
}

pub async fn revoke_user_sessions(
    svc: &Services,
    actor: &Actor,
    user_id: UserId,
) -> AppResult<SessionsRevoked> {
    actor.require(&[Role::Admin])?;
    let now = svc.now().millis();
    let who = actor.who();
    svc.db
        .write(move |c| {
            repo::find_user(c, &user_id)?.ok_or_else(|| AppError::not_found("user"))?;
            let n = repo::revoke_user_sessions(c, &user_id, now)?;
            audit::record(
                c,
                now,
                &who,
                "user.revoke_sessions",
                user_id.as_str(),
                &json!({"sessions": n}),
            )?;
            Ok(SessionsRevoked { revoked: n })
        })
        .await
}
