//! Organisations, users, sign-in and e-mail verification.
//!
//! - Passwords: argon2id (the crate's defaults: m = 19 MiB, t = 2, p = 1),
//!   hashed off the async executor.
//! - Sessions: opaque 256-bit tokens; only their SHA-256 is stored; absolute
//!   expiry; revocable one by one or all at once.
//! - Sign-in throttling is kept in the database (so it holds across nodes)
//!   per account name and per client address, and answers the same whether
//!   or not the account exists; unknown names cost a full argon2 check too.

use std::sync::OnceLock;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

use super::{text_field, Actor, AuthUser, Services};
use crate::crypto;
use crate::db::audit::{self, Who};
use crate::db::identity::{
    self as repo, OrgRow, SessionRow, ThrottleRow, UserRow, VerificationRow,
};
use crate::db::{is_unique_violation, outbox, write_tx, DbConn};
use crate::domain::credit_code::CreditCode;
use crate::domain::identity::{check_password, Email, OrgKind, Role, Username};
use crate::domain::ids::{OrgId, UserId};
use crate::domain::problems::Problems;
use crate::domain::time::Timestamp;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::notify::templates;

#[derive(Debug, Clone, Serialize)]
pub struct OrgView {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub credit_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub centre_code: Option<String>,
    pub created_at: Timestamp,
}

impl From<OrgRow> for OrgView {
    fn from(r: OrgRow) -> Self {
        Self {
            id: r.id,
            kind: r.kind,
            name: r.name,
            credit_code: r.credit_code,
            centre_code: r.centre_code,
            created_at: Timestamp::from_millis(r.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub id: String,
    pub org_id: Option<String>,
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub email_verified: bool,
    pub disabled: bool,
    pub created_at: Timestamp,
}

impl From<UserRow> for UserView {
    fn from(r: UserRow) -> Self {
        Self {
            id: r.id,
            org_id: r.org_id,
            username: r.username,
            email: r.email,
            display_name: r.display_name,
            role: r.role,
            email_verified: r.email_verified_at.is_some(),
            disabled: r.disabled_at.is_some(),
            created_at: Timestamp::from_millis(r.created_at),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    pub kind: OrgKind,
    pub name: String,
    pub credit_code: String,
    #[serde(default)]
    pub centre_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub org_id: Option<String>,
    pub role: Role,
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub password: String,
}

/// Self-registration of a bidder company and its first user (投标人注册).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BidderRegistration {
    pub company_name: String,
    pub credit_code: String,
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub password: String,
}

#[derive(Debug, Serialize)]
pub struct Registered {
    pub organisation: OrgView,
    pub user: UserView,
}

#[derive(Debug, Serialize)]
pub struct LoginResult {
    pub token: String,
    pub expires_at: Timestamp,
    pub user: UserView,
}

// ---------------------------------------------------------------- passwords

pub fn hash_password(pw: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))
}

pub fn verify_password(stored: &str, pw: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| Argon2::default().verify_password(pw.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// A real hash to check unknown accounts against, so they cost the same time.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("kaibiao timing equaliser").expect("argon2 works"))
}

async fn hash_off_executor(pw: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))?
        .map_err(AppError::internal)
}

// ---------------------------------------------------------- organisations

fn parse_org(
    req: &NewOrg,
    p: &mut Problems,
) -> Option<(OrgKind, String, CreditCode, Option<String>)> {
    let name = text_field(p, "name", &req.name, 2, 200);
    let code = match CreditCode::parse(&req.credit_code) {
        Ok(c) => Some(c),
        Err(e) => {
            p.push("credit_code", e.to_string());
            None
        }
    };
    let centre_code = match (&req.centre_code, req.kind) {
        (Some(c), OrgKind::TradingCentre) => {
            let c = c.trim().to_ascii_uppercase();
            p.check(
                (2..=16).contains(&c.len())
                    && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
                "centre_code",
                "2-16 characters of A-Z, 0-9 or '-'",
            );
            Some(c)
        }
        (None, OrgKind::TradingCentre) => {
            p.push("centre_code", "a trading centre needs its centre code");
            None
        }
        (Some(_), _) => {
            p.push("centre_code", "only trading centres have a centre code");
            None
        }
        (None, _) => None,
    };
    Some((req.kind, name, code?, centre_code))
}

fn insert_org_checked(c: &mut DbConn, row: &OrgRow) -> AppResult<()> {
    if repo::org_by_credit_code(c, &row.credit_code)?.is_some() {
        return Err(AppError::conflict(
            ErrorCode::OrganisationExists,
            "an organisation with this credit code is already registered",
        ));
    }
    repo::insert_org(c, row).map_err(|e| {
        if is_unique_violation(&e) {
            AppError::conflict(
                ErrorCode::OrganisationExists,
                "an organisation with this credit code or centre code is already registered",
            )
        } else {
            e.into()
        }
    })
}

pub async fn create_org(svc: &Services, actor: &Actor, req: NewOrg) -> AppResult<OrgView> {
    actor.require(&[Role::Admin])?;
    let mut p = Problems::new();
    let parsed = parse_org(&req, &mut p);
    let (kind, name, code, centre_code) = match (parsed, p.is_empty()) {
        (Some(v), true) => v,
        _ => return Err(AppError::validation(p.into_vec())),
    };
    let now = svc.now().millis();
    let row = OrgRow {
        id: OrgId::new().into_string(),
        kind: kind.as_str().into(),
        name,
        credit_code: code.as_str().into(),
        centre_code,
        created_at: now,
    };
    let who = actor.who();
    svc.db
        .write(move |c| {
            insert_org_checked(c, &row)?;
            audit::record(
                c,
                now,
                &who,
                "org.create",
                &row.id,
                &serde_json::json!({"kind": row.kind}),
            )?;
            Ok(OrgView::from(row))
        })
        .await
}

pub async fn list_orgs(
    svc: &Services,
    actor: &Actor,
    kind: Option<OrgKind>,
) -> AppResult<Vec<OrgView>> {
    actor.require(&[Role::Admin])?;
    svc.db
        .run(move |c| {
            Ok(repo::list_orgs(c, kind.map(|k| k.as_str()))?
                .into_iter()
                .map(Into::into)
                .collect())
        })
        .await
}

// ------------------------------------------------------------------ users

struct ValidUser {
    username: Username,
    email: Email,
    display_name: String,
}

impl ValidUser {
    fn into_row(
        self,
        org_id: Option<String>,
        role: Role,
        hash: String,
        verified_at: Option<i64>,
        now: i64,
    ) -> UserRow {
        UserRow {
            id: UserId::new().into_string(),
            org_id,
            username: self.username.as_str().into(),
            email: self.email.as_str().into(),
            display_name: self.display_name,
            role: role.as_str().into(),
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

/// Queues the verification mail for a new user, in the caller's transaction.
fn queue_verification(svc: &Services, c: &mut DbConn, user: &UserRow, now: i64) -> AppResult<()> {
    let token = crypto::new_token("kbv");
    let hours = svc.config.rules.email_verification_hours;
    repo::insert_verification(
        c,
        &VerificationRow {
            token_hash: crypto::token_hash(&token),
            user_id: user.id.clone(),
            created_at: now,
            expires_at: now + hours * 3_600_000,
            used_at: None,
        },
    )?;
    let link = format!("{}/?verify={token}", svc.public_url);
    let mail = templates::verify_email(&user.display_name, &link, hours);
    outbox::enqueue(c, mail.kind, &user.email, &mail.subject, &mail.body, now)?;
    Ok(())
}

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
    let row = fields.into_row(req.org_id, req.role, hash, None, now);
    let who = actor.who();
    let s = svc.clone();
    let view = svc
        .db
        .write(move |c| {
            if let Some(org_id) = &row.org_id {
                let org = repo::find_org(c, org_id)?
                    .ok_or_else(|| AppError::invalid_field("org_id", "no such organisation"))?;
                let kind = OrgKind::from_db(&org.kind).map_err(AppError::internal)?;
                if !req.role.allowed_org_kinds().contains(&kind) {
                    return Err(AppError::invalid_field(
                        "role",
                        format!("a {} cannot belong to a {} organisation", req.role, kind),
                    ));
                }
            }
            insert_user_checked(c, &row)?;
            queue_verification(&s, c, &row, now)?;
            audit::record(
                c,
                now,
                &who,
                "user.create",
                &row.id,
                &serde_json::json!({"role": row.role}),
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
    let (org, fields) = match (org, fields, p.is_empty()) {
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
        id: OrgId::new().into_string(),
        kind: org.0.as_str().into(),
        name: org.1,
        credit_code: org.2.as_str().into(),
        centre_code: None,
        created_at: now,
    };
    let user_row = fields.into_row(Some(org_row.id.clone()), Role::Bidder, hash, None, now);
    let who = Who {
        actor_id: Some(user_row.id.clone()),
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
                &org_row.id,
                &serde_json::json!({}),
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
    pub org_id: Option<String>,
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
            let org = repo::find_org(c, org_id)?
                .ok_or_else(|| AppError::invalid_field("org", "no such organisation"))?;
            let kind = OrgKind::from_db(&org.kind).map_err(AppError::internal)?;
            if !role.allowed_org_kinds().contains(&kind) {
                return Err(AppError::invalid_field(
                    "role",
                    format!("a {role} cannot belong to a {kind} organisation"),
                ));
            }
        }
        insert_user_checked(c, &row)?;
        audit::record(
            c,
            now.millis(),
            &Who::system(),
            "user.bootstrap",
            &row.id,
            &serde_json::json!({"role": row.role}),
        )?;
        Ok(UserView::from(row))
    })
}

/// Bootstrap from the command line: an organisation.
pub fn bootstrap_org(c: &mut DbConn, now: Timestamp, req: NewOrg) -> AppResult<OrgView> {
    let mut p = Problems::new();
    let parsed = parse_org(&req, &mut p);
    let (kind, name, code, centre_code) = match (parsed, p.is_empty()) {
        (Some(v), true) => v,
        _ => return Err(AppError::validation(p.into_vec())),
    };
    let row = OrgRow {
        id: OrgId::new().into_string(),
        kind: kind.as_str().into(),
        name,
        credit_code: code.as_str().into(),
        centre_code,
        created_at: now.millis(),
    };
    write_tx(c, |c| {
        insert_org_checked(c, &row)?;
        audit::record(
            c,
            now.millis(),
            &Who::system(),
            "org.bootstrap",
            &row.id,
            &serde_json::json!({}),
        )?;
        Ok(OrgView::from(row))
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
    user_id: String,
    disabled: bool,
) -> AppResult<UserView> {
    actor.require(&[Role::Admin])?;
    if disabled && user_id == actor.user.id.as_str() {
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
            audit::record(c, now, &who, action, &user_id, &serde_json::json!({}))?;
            let row = repo::find_user(c, &user_id)?.ok_or_else(|| AppError::not_found("user"))?;
            Ok(row.into())
        })
        .await
}

pub async fn revoke_user_sessions(
    svc: &Services,
    actor: &Actor,
    user_id: String,
) -> AppResult<usize> {
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
                &user_id,
                &serde_json::json!({"sessions": n}),
            )?;
            Ok(n)
        })
        .await
}

// ---------------------------------------------------------------- sign-in

fn throttle_key(kind: &str, value: &str) -> String {
    format!("{kind}:{}", crypto::sha256_hex(value.as_bytes()))
}

fn invalid_credentials() -> AppError {
    AppError::new(
        ErrorCode::InvalidCredentials,
        "the username or the password is wrong",
    )
}

fn too_many() -> AppError {
    AppError::new(
        ErrorCode::TooManyRequests,
        "too many failed sign-ins; wait a few minutes and try again",
    )
}

pub async fn login(
    svc: &Services,
    username: &str,
    password: &str,
    client_ip: &str,
) -> AppResult<LoginResult> {
    let name = username.trim().to_ascii_lowercase();
    let keys = [throttle_key("user", &name), throttle_key("ip", client_ip)];
    let now = svc.now().millis();

    // 1. Locked out? (Same answer whether or not the account exists.)
    let k = keys.clone();
    let n = name.clone();
    let user = svc
        .db
        .run(move |c| {
            for key in &k {
                if let Some(t) = repo::throttle_get(c, key)? {
                    if t.locked_until.is_some_and(|u| u > now) {
                        return Err(too_many());
                    }
                }
            }
            Ok(repo::user_by_username(c, &n)?)
        })
        .await?;

    // 2. Check the password off the executor, against a dummy when unknown.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let pw = password.to_string();
    let ok = tokio::task::spawn_blocking(move || match stored {
        Some(h) => verify_password(&h, &pw),
        None => {
            verify_password(dummy_hash(), &pw);
            false
        }
    })
    .await
    .map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))?;

    let rules = svc.config.rules.clone();
    if !ok {
        let window = rules.login_window_minutes * 60_000;
        svc.db
            .write(move |c| {
                for (key, max) in keys
                    .iter()
                    .zip([rules.login_max_failures, rules.login_ip_max_failures])
                {
                    let mut t = repo::throttle_get(c, key)?.unwrap_or(ThrottleRow {
                        key: key.clone(),
                        window_start: now,
                        failures: 0,
                        locked_until: None,
                    });
                    if t.window_start + window < now {
                        t.window_start = now;
                        t.failures = 0;
                        t.locked_until = None;
                    }
                    t.failures += 1;
                    if t.failures >= max {
                        t.locked_until = Some(now + window);
                    }
                    repo::throttle_put(c, &t)?;
                }
                Ok(())
            })
            .await?;
        return Err(invalid_credentials());
    }
    let user = user.expect("password matched a real account");
    if user.disabled_at.is_some() {
        return Err(AppError::forbidden("this account is disabled"));
    }
    if user.email_verified_at.is_none() {
        return Err(AppError::new(
            ErrorCode::EmailNotVerified,
            "verify your e-mail address first: open the link we sent you",
        ));
    }

    // 3. Open a session.
    let token = crypto::new_token("kbs");
    let expires_at = now + rules.session_ttl_hours * 3_600_000;
    let session = SessionRow {
        token_hash: crypto::token_hash(&token),
        user_id: user.id.clone(),
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    let user_key = keys[0].clone();
    let who = Who {
        actor_id: Some(user.id.clone()),
        request_id: Some(crate::http::request_id::current()),
    };
    let view = svc
        .db
        .write(move |c| {
            repo::throttle_clear(c, &user_key)?;
            repo::insert_session(c, &session)?;
            audit::record(
                c,
                now,
                &who,
                "session.open",
                &user.id,
                &serde_json::json!({}),
            )?;
            Ok(UserView::from(user))
        })
        .await?;
    Ok(LoginResult {
        token,
        expires_at: Timestamp::from_millis(expires_at),
        user: view,
    })
}

pub async fn logout(svc: &Services, actor: &Actor, token: String) -> AppResult<()> {
    let now = svc.now().millis();
    let who = actor.who();
    let uid = actor.user.id.to_string();
    svc.db
        .write(move |c| {
            repo::revoke_session(c, &crypto::token_hash(&token), now)?;
            audit::record(c, now, &who, "session.close", &uid, &serde_json::json!({}))?;
            Ok(())
        })
        .await
}

/// Resolves a bearer token to its user, or `unauthenticated`.
pub async fn authenticate(svc: &Services, token: &str) -> AppResult<AuthUser> {
    authenticate_hash(svc, crypto::token_hash(token)).await
}

/// As [`authenticate`], from the stored hash of the token (a room ticket
/// carries it, never the token).
pub async fn authenticate_hash(svc: &Services, hash: String) -> AppResult<AuthUser> {
    let now = svc.now().millis();
    let found = svc
        .db
        .run(move |c| Ok(repo::session_with_user(c, &hash)?))
        .await?;
    let Some((session, user)) = found else {
        return Err(AppError::unauthenticated());
    };
    if session.revoked_at.is_some() || session.expires_at <= now || user.disabled_at.is_some() {
        return Err(AppError::new(
            ErrorCode::Unauthenticated,
            "this session has ended; sign in again",
        ));
    }
    Ok(AuthUser {
        id: UserId::from_db(user.id),
        org_id: user.org_id.map(OrgId::from_db),
        role: Role::from_db(&user.role).map_err(AppError::internal)?,
        username: user.username,
    })
}

pub async fn me(svc: &Services, actor: &Actor) -> AppResult<serde_json::Value> {
    let uid = actor.user.id.to_string();
    svc.db
        .run(move |c| {
            let user = repo::find_user(c, &uid)?.ok_or_else(|| AppError::not_found("user"))?;
            let org = match &user.org_id {
                Some(id) => repo::find_org(c, id)?.map(OrgView::from),
                None => None,
            };
            Ok(serde_json::json!({"user": UserView::from(user), "organisation": org}))
        })
        .await
}

pub async fn verify_email(svc: &Services, token: &str) -> AppResult<()> {
    let hash = crypto::token_hash(token);
    let now = svc.now().millis();
    svc.db
        .write(move |c| {
            let invalid = || {
                AppError::new(
                    ErrorCode::TokenInvalid,
                    "this verification link is invalid or has expired",
                )
            };
            let v = repo::find_verification(c, &hash)?.ok_or_else(invalid)?;
            if v.expires_at <= now || repo::use_verification(c, &hash, now)? != 1 {
                return Err(invalid());
            }
            repo::mark_email_verified(c, &v.user_id, now)?;
            audit::record(
                c,
                now,
                &Who::system(),
                "user.verify_email",
                &v.user_id,
                &serde_json::json!({}),
            )?;
            Ok(())
        })
        .await
}

/// Sends a fresh verification link if the account exists and is unverified.
/// Always answers the same, so it reveals nothing about accounts.
pub async fn resend_verification(svc: &Services, username: &str) -> AppResult<()> {
    let name = username.trim().to_ascii_lowercase();
    let now = svc.now().millis();
    let s = svc.clone();
    svc.db
        .write(move |c| {
            if let Some(u) = repo::user_by_username(c, &name)? {
                if u.email_verified_at.is_none() && u.disabled_at.is_none() {
                    queue_verification(&s, c, &u, now)?;
                }
            }
            Ok(())
        })
        .await?;
    svc.kick_workers();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_round_trip() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse battery!"));
        assert!(!verify_password("not a hash", "x"));
    }
}
