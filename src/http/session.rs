//! Browser sessions (#12): the same sessions as the CLI's bearer tokens,
//! carried in a cookie the page's scripts cannot read, with a CSRF token on
//! every state-changing request.
//!
//! - `POST /api/auth/session {username, password}` signs in and sets two
//!   cookies: `__Host-kb_session` (the session token: `HttpOnly; Secure;
//!   SameSite=Strict; Path=/`) and `__Host-kb_csrf` (the CSRF token, readable
//!   by the page). The body carries the user and the CSRF token, never the
//!   session token.
//! - A request authenticated by the cookie whose method is not GET, HEAD or
//!   OPTIONS must send the CSRF token as `X-CSRF-Token`; otherwise it is
//!   refused (403 `csrf_rejected`) before anything is read or done. The
//!   token is derived from the session (an HMAC under the at-rest key of
//!   the token's hash), so it dies with the session and nothing is stored.
//! - A request with `Authorization: Bearer …` is the CLI's and ignores the
//!   cookies altogether.
//! - `DELETE /api/auth/session` signs out: it ends the session and clears
//!   both cookies.

use actix_web::cookie::{time::Duration as CookieAge, Cookie, SameSite};
use actix_web::http::Method;
use actix_web::{web, HttpRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Authed, ClientAddress};
use super::respond::{JsonSettingCookies, NoContentSettingCookies};
use crate::domain::time::Timestamp;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::auth::{self, UserView};
use crate::service::Services;

pub const SESSION_COOKIE: &str = "__Host-kb_session";
pub const CSRF_COOKIE: &str = "__Host-kb_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How a request proves who it is.
pub enum Credential {
    /// `Authorization: Bearer …` (the CLI, scripts).
    Bearer(String),
    /// The browser's session cookie.
    Cookie(String),
}

impl Credential {
    pub fn token(&self) -> &str {
        match self {
            Credential::Bearer(t) | Credential::Cookie(t) => t,
        }
    }
}

/// The request's credential: a bearer token if it sends one, else the
/// session cookie.
pub fn credential(req: &HttpRequest) -> Option<Credential> {
    if let Some(t) = bearer(req) {
        return Some(Credential::Bearer(t));
    }
    req.cookie(SESSION_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|t| !t.is_empty())
        .map(Credential::Cookie)
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let h = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = h.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .then(|| token.trim().to_string())
}

/// The CSRF token of the session whose token is `token`.
pub fn csrf_token(svc: &Services, token: &str) -> String {
    svc.atrest.tag("csrf", &[&crate::crypto::token_hash(token)])
}

fn safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Refuses a cookie-authenticated request that changes something without
/// the session's CSRF token.
pub fn check_csrf(svc: &Services, req: &HttpRequest, cred: &Credential) -> AppResult<()> {
    let Credential::Cookie(token) = cred else {
        return Ok(());
    };
    if safe(req.method()) {
        return Ok(());
    }
    let sent = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let expected = csrf_token(svc, token);
    if crate::crypto::ct_eq(sent.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(AppError::new(
            ErrorCode::CsrfRejected,
            "this request did not come from a kaibiao page: reload the page and try again",
        ))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionBody {
    username: String,
    password: String,
}

/// A browser's session: who is signed in, until when, and the token to send
/// as `X-CSRF-Token` (also in the `__Host-kb_csrf` cookie).
#[derive(Serialize, ToSchema)]
pub struct BrowserSession {
    pub user: UserView,
    pub expires_at: Timestamp,
    pub csrf_token: String,
}

fn cookie(name: &'static str, value: String, http_only: bool, age_secs: i64) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .secure(true)
        .http_only(http_only)
        .same_site(SameSite::Strict)
        .max_age(CookieAge::seconds(age_secs))
        .finish()
}

/// `POST /api/auth/session`: signs in for a browser.
pub async fn open(
    svc: web::Data<Services>,
    from: ClientAddress,
    body: web::Json<SessionBody>,
) -> AppResult<JsonSettingCookies<BrowserSession>> {
    let r = auth::login(&svc, &body.username, &body.password, &from.0).await?;
    let csrf = csrf_token(&svc, &r.token);
    let age = (r.expires_at.millis() - svc.now().millis()) / 1000;
    let answer = BrowserSession {
        user: r.user,
        expires_at: r.expires_at,
        csrf_token: csrf.clone(),
    };
    Ok(JsonSettingCookies(
        answer,
        vec![
            cookie(SESSION_COOKIE, r.token, true, age),
            cookie(CSRF_COOKIE, csrf, false, age),
        ],
    ))
}

/// `DELETE /api/auth/session`: signs out, ends the session and clears the
/// cookies.
pub async fn close(
    svc: web::Data<Services>,
    auth: Authed,
    req: HttpRequest,
) -> AppResult<NoContentSettingCookies> {
    let token = credential(&req)
        .map(|c| c.token().to_string())
        .unwrap_or_default();
    auth::logout(&svc, &auth.0, token).await?;
    Ok(NoContentSettingCookies(vec![
        cookie(SESSION_COOKIE, String::new(), true, 0),
        cookie(CSRF_COOKIE, String::new(), false, 0),
    ]))
}
