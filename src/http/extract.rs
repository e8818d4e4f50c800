//! Extractors: the signed-in caller (authentication happens here, before the
//! handler reads any body), the idempotency key, raw bodies (streamed
//! uploads, CSV), the client's address, and error mapping for actix's own
//! extractors so every failure uses the one error envelope. Each says how it
//! appears in the API description (`api_doc::DescribeArg`).

use std::future::Future;
use std::pin::Pin;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use super::api_doc::{Auth, DescribeArg, OpDoc};
use super::request_id;
use crate::domain::identity::Role;
use crate::error::{AppError, ErrorCode};
use crate::service::action::IdempotencyKey;
use crate::service::{auth, Actor, AuthUser, Services};

/// The request's session token — a bearer token, or the browser's session
/// cookie (with its CSRF token checked when the request changes anything:
/// [`super::session::check_csrf`]).
fn session_token(req: &HttpRequest) -> Result<Option<String>, AppError> {
    let Some(cred) = super::session::credential(req) else {
        return Ok(None);
    };
    super::session::check_csrf(services(req)?.get_ref(), req, &cred)?;
    Ok(Some(cred.token().to_string()))
}

fn services(req: &HttpRequest) -> Result<web::Data<Services>, AppError> {
    req.app_data::<web::Data<Services>>()
        .cloned()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("services not configured")))
}

/// A signed-in caller; `unauthenticated` otherwise.
pub struct Authed(pub Actor);

impl FromRequest for Authed {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let svc = services(req);
        let token = session_token(req);
        Box::pin(async move {
            let svc = svc?;
            let token = token?.ok_or_else(AppError::unauthenticated)?;
            let user = auth::authenticate(&svc, &token).await?;
            Ok(Authed(Actor {
                user,
                request_id: request_id::current(),
            }))
        })
    }
}

/// A set of roles an endpoint is open to, checked by [`As`] before the
/// handler reads any body.
pub trait Roles {
    const ROLES: &'static [Role];
}

macro_rules! roles {
    ($($name:ident => [$($r:ident),+]),+ $(,)?) => {
        $(
            pub struct $name;
            impl Roles for $name {
                const ROLES: &'static [Role] = &[$(Role::$r),+];
            }
        )+
    };
}

roles! {
    Anyone => [Admin, Host, Tenderer, Supervisor, Custodian, Expert, Bidder],
    Admins => [Admin],
    Hosts => [Host],
    Bidders => [Bidder],
    Custodians => [Custodian],
    Supervisors => [Supervisor],
    HostsAndSupervisors => [Host, Supervisor],
    Tenderers => [Tenderer],
    Experts => [Expert],
}

/// A signed-in caller with one of the roles `R`: `unauthenticated` or
/// `forbidden` otherwise, before any body is parsed.
pub struct As<R: Roles>(pub Actor, std::marker::PhantomData<R>);

impl<R: Roles + 'static> FromRequest for As<R> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let authed = Authed::from_request(req, payload);
        Box::pin(async move {
            let Authed(actor) = authed.await?;
            actor.require(R::ROLES)?;
            Ok(As(actor, std::marker::PhantomData))
        })
    }
}

/// A signed-in caller with one of the roles `R`, and the JSON body `T` —
/// read and parsed only after the caller is authenticated and authorised,
/// so nobody learns anything about an endpoint they may not use.
pub struct Signed<R: Roles, T>(pub Actor, pub T, std::marker::PhantomData<R>);

impl<R: Roles + 'static, T: serde::de::DeserializeOwned + 'static> FromRequest for Signed<R, T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut body = payload.take();
        let authed = Authed::from_request(&req, &mut Payload::None);
        Box::pin(async move {
            let Authed(actor) = authed.await?;
            actor.require(R::ROLES)?;
            let web::Json(value) = web::Json::<T>::from_request(&req, &mut body).await?;
            Ok(Signed(actor, value, std::marker::PhantomData))
        })
    }
}

/// A caller who may or may not be signed in. A token that is sent must be
/// valid: a stale token is an error, not silently anonymous.
pub struct MaybeAuthed(pub Option<AuthUser>);

impl FromRequest for MaybeAuthed {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let svc = services(req);
        let token = session_token(req);
        Box::pin(async move {
            let svc = svc?;
            match token? {
                None => Ok(MaybeAuthed(None)),
                Some(t) => Ok(MaybeAuthed(Some(auth::authenticate(&svc, &t).await?))),
            }
        })
    }
}

impl DescribeArg for Authed {
    fn describe(op: &mut OpDoc) {
        op.auth = Auth::Required;
    }
}

impl<R: Roles> DescribeArg for As<R> {
    fn describe(op: &mut OpDoc) {
        op.auth = Auth::Required;
        if R::ROLES.len() < Role::ALL.len() {
            op.roles = R::ROLES.to_vec();
        }
    }
}

impl<R: Roles, T: utoipa::ToSchema> DescribeArg for Signed<R, T> {
    fn describe(op: &mut OpDoc) {
        As::<R>::describe(op);
        op.json_body::<T>();
    }
}

impl DescribeArg for MaybeAuthed {
    fn describe(op: &mut OpDoc) {
        op.auth = Auth::Optional;
    }
}

/// The client's `Idempotency-Key` header, checked for shape: a repeat of
/// the same request with the same key gets the first answer.
pub struct Idempotency(pub Option<IdempotencyKey>);

impl FromRequest for Idempotency {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let key = req.headers().get("idempotency-key").map(|v| {
            v.to_str()
                .map_err(|_| AppError::bad_request("Idempotency-Key must be ASCII"))
                .and_then(IdempotencyKey::parse)
        });
        std::future::ready(match key {
            None => Ok(Idempotency(None)),
            Some(k) => k.map(|k| Idempotency(Some(k))),
        })
    }
}

impl DescribeArg for Idempotency {
    fn describe(op: &mut OpDoc) {
        op.header(
            "Idempotency-Key",
            "8–128 characters of A–Z a–z 0–9 - _ . : — a repeat of the same request with the same key gets the first answer and changes nothing; another request with it is refused (422 idempotency_key_reused)",
        );
    }
}

/// A streamed request body (a tender document, a bid's part): never held
/// whole in memory. The declared length and type come with it.
pub struct Upload {
    pub body: web::Payload,
    pub declared_length: Option<u64>,
    pub content_type: Option<String>,
}

impl FromRequest for Upload {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let declared_length = req
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let content_type = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= 100 && v.is_ascii())
            .map(str::to_string);
        let body = web::Payload::from_request(req, payload);
        Box::pin(async move {
            Ok(Upload {
                body: body.await?,
                declared_length,
                content_type,
            })
        })
    }
}

impl DescribeArg for Upload {
    fn describe(op: &mut OpDoc) {
        op.body = Some(serde_json::json!({
            "required": true,
            "description": "the bytes, streamed",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }));
    }
}

/// A CSV body (UTF-8, `Content-Type: text/csv`), read only when the
/// handler asks for it — after the caller is authorised.
pub struct CsvBody {
    body: web::Payload,
    is_csv: bool,
}

impl CsvBody {
    /// The text, at most `limit` bytes.
    pub async fn text(self, limit: usize) -> Result<String, AppError> {
        use futures_util::StreamExt;
        if !self.is_csv {
            return Err(AppError::new(
                ErrorCode::UnsupportedMediaType,
                "send the pool as text/csv",
            ));
        }
        let mut body = self.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|_| AppError::bad_request("the request body could not be read"))?;
            if bytes.len() + chunk.len() > limit {
                return Err(AppError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the CSV is larger than {limit} bytes"),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        String::from_utf8(bytes).map_err(|_| AppError::invalid_field("csv", "not UTF-8"))
    }
}

impl FromRequest for CsvBody {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_csv = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/csv"));
        let body = web::Payload::from_request(req, payload);
        Box::pin(async move {
            Ok(CsvBody {
                body: body.await?,
                is_csv,
            })
        })
    }
}

impl DescribeArg for CsvBody {
    fn describe(op: &mut OpDoc) {
        op.body = Some(serde_json::json!({
            "required": true,
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }));
    }
}

/// The client's address: the peer's, or — when the peer is one of
/// `server.trusted_proxies` — the last address in `X-Forwarded-For` that is
/// not a trusted proxy (the one the nearest untrusted hop connected from).
pub struct ClientAddress(pub String);

impl ClientAddress {
    pub fn of(req: &HttpRequest, trusted: &[std::net::IpAddr]) -> String {
        let peer = req.peer_addr().map(|a| a.ip());
        let Some(peer) = peer else {
            return String::new();
        };
        if !trusted.contains(&peer) {
            return peer.to_string();
        }
        let forwarded: Vec<std::net::IpAddr> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        forwarded
            .into_iter()
            .rev()
            .find(|a| !trusted.contains(a))
            .unwrap_or(peer)
            .to_string()
    }
}

impl FromRequest for ClientAddress {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            services(req).map(|svc| {
                ClientAddress(ClientAddress::of(req, &svc.config.server.trusted_proxies))
            }),
        )
    }
}

impl DescribeArg for ClientAddress {}

/// The session token itself (for sign-out).
pub fn token_of(req: &HttpRequest) -> Option<String> {
    super::session::credential(req).map(|c| c.token().to_string())
}

pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let e = match &err {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => AppError::new(
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than {limit} bytes"),
        ),
        JsonPayloadError::ContentType => AppError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with 'Content-Type: application/json'",
        ),
        JsonPayloadError::Deserialize(de) if de.is_data() => {
            AppError::invalid_field("body", de.to_string())
        }
        JsonPayloadError::Deserialize(de) => AppError::new(
            ErrorCode::MalformedJson,
            format!(
                "the body is not valid JSON (line {}, column {})",
                de.line(),
                de.column()
            ),
        ),
        _ => AppError::bad_request("the request body could not be read"),
    };
    e.into()
}

pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let msg = match &err {
        QueryPayloadError::Deserialize(de) => format!("bad query parameters: {de}"),
        _ => "bad query parameters".to_string(),
    };
    AppError::bad_request(msg).into()
}

pub fn path_error(_err: PathError, _req: &HttpRequest) -> actix_web::Error {
    AppError::not_found("resource").into()
}
