//! Sign-in, sign-out, and resolving a session token to its user.
//!
//! Throttling, in the database so it holds across nodes, never lets anyone
//! lock someone else out (a rival before the deadline, a custodian's
//! colleague before the decryption window). Failures are counted per
//! account-and-address, per address, and per account, within
//! `rules.login_window_minutes`:
//!
//! - an *address* that failed `login_max_failures` times for an account is
//!   refused for that account until the window ends (429);
//! - an address that failed `login_ip_max_failures` times in all is refused
//!   for every account (password spraying);
//! - an *account* that failed `login_max_failures` times in all, from
//!   anywhere, is under attack: every failed attempt on it is answered only
//!   after `login_slowdown_ms` — it slows down, it never locks.
//!
//! The right password from an address that has not failed always signs in.
//! Unknown names are throttled exactly like known ones and cost a full
//! argon2 check, so nothing tells whether an account exists.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::passwords::check_off_executor;
use super::views::{LoginResult, OrgView, UserView};
use crate::crypto;
use crate::db::audit::{self, Who};
use crate::db::identity::{self as repo, SessionRow, ThrottleRow};
use crate::db::DbConn;
use crate::domain::time::Timestamp;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::{Actor, AuthUser, Services};

fn throttle_key(kind: &str, value: &str) -> String {
    format!("{kind}:{}", crypto::sha256_hex(value.as_bytes()))
}

/// The three counters one sign-in attempt touches.
struct Keys {
    pair: String,
    address: String,
    account: String,
}

impl Keys {
    fn new(name: &str, address: &str) -> Self {
        Keys {
            pair: throttle_key("pair", &format!("{name}\u{0}{address}")),
            address: throttle_key("ip", address),
            account: throttle_key("user", name),
        }
    }
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
        "too many failed sign-ins from this address; wait a few minutes and try again",
    )
}

/// Failures within the window that began at the row's start.
fn failures(c: &mut DbConn, key: &str, now: i64, window: i64) -> AppResult<i32> {
    Ok(repo::throttle_get(c, key)?
        .filter(|t| t.window_start + window >= now)
        .map_or(0, |t| t.failures))
}

fn count_failure(c: &mut DbConn, key: &str, now: i64, window: i64) -> AppResult<i32> {
    let mut t = repo::throttle_get(c, key)?.unwrap_or(ThrottleRow {
        key: key.to_string(),
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
    repo::throttle_put(c, &t)?;
    Ok(t.failures)
}

/// Signs in with a username and password from `client_ip`.
pub async fn login(
    svc: &Services,
    username: &str,
    password: &str,
    client_ip: &str,
) -> AppResult<LoginResult> {
    let name = username.trim().to_ascii_lowercase();
    let keys = Keys::new(&name, client_ip);
    let now = svc.now().millis();
    let rules = svc.config.rules.clone();
    let window = rules.login_window_minutes * 60_000;

    // 1. Refused before the password is looked at? (Same answer whether or
    //    not the account exists.)
    let (pair_key, address_key) = (keys.pair.clone(), keys.address.clone());
    let n = name.clone();
    let user = svc
        .db
        .run(move |c| {
            let pair = failures(c, &pair_key, now, window)?;
            let address = failures(c, &address_key, now, window)?;
            if address >= rules.login_ip_max_failures || pair >= rules.login_max_failures {
                return Err(too_many());
            }
            Ok(repo::user_by_username(c, &n)?)
        })
        .await?;

    // 2. Check the password off the executor, against a dummy when unknown.
    let ok = check_off_executor(
        user.as_ref().map(|u| u.password_hash.clone()),
        password.to_string(),
    )
    .await?;

    if !ok {
        let Keys {
            pair,
            address,
            account,
        } = keys;
        let account_failures = svc
            .db
            .write(move |c| {
                count_failure(c, &pair, now, window)?;
                count_failure(c, &address, now, window)?;
                count_failure(c, &account, now, window)
            })
            .await?;
        if account_failures >= rules.login_max_failures && rules.login_slowdown_ms > 0 {
            // Real time, whatever the platform's clock: it is the attacker's
            // time that this costs.
            tokio::time::sleep(std::time::Duration::from_millis(rules.login_slowdown_ms)).await;
        }
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
    let who = Who {
        actor_id: Some(user.id.to_string()),
        request_id: Some(crate::http::request_id::current()),
    };
    let pair = keys.pair;
    let view = svc
        .db
        .write(move |c| {
            repo::throttle_clear(c, &pair)?;
            repo::insert_session(c, &session)?;
            audit::record(c, now, &who, "session.open", user.id.as_str(), &json!({}))?;
            Ok(UserView::from(user))
        })
        .await?;
    Ok(LoginResult {
        token,
        expires_at: Timestamp::from_millis(expires_at),
        user: view,
    })
}

/// Ends the session `token` belongs to.
pub async fn logout(svc: &Services, actor: &Actor, token: String) -> AppResult<()> {
    let now = svc.now().millis();
    let who = actor.who();
    let uid = actor.user.id.clone();
    svc.db
        .write(move |c| {
            repo::revoke_session(c, &crypto::token_hash(&token), now)?;
            audit::record(c, now, &who, "session.close", uid.as_str(), &json!({}))?;
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
        id: user.id,
        org_id: user.org_id,
        role: user.role,
        username: user.username,
    })
}

/// The signed-in user and their organisation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user: UserView,
    pub organisation: Option<OrgView>,
}

pub async fn me(svc: &Services, actor: &Actor) -> AppResult<Me> {
    let uid = actor.user.id.clone();
    svc.db
        .run(move |c| {
            let user = repo::find_user(c, &uid)?.ok_or_else(|| AppError::not_found("user"))?;
            let organisation = match &user.org_id {
                Some(id) => repo::find_org(c, id)?.map(OrgView::from),
                None => None,
            };
            Ok(Me {
                user: UserView::from(user),
                organisation,
            })
        })
        .await
}
