//! Extractors: the signed-in caller (authentication happens here, before the
//! handler reads any body), and error mapping for actix's own extractors so
//! every failure uses the one error envelope.

use std::future::Future;
use std::pin::Pin;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use super::request_id;
use crate::domain::identity::Role;
use crate::error::{AppError, ErrorCode};
use crate::service::{auth, Actor, AuthUser, Services};

fn bearer(req: &HttpRequest) -> Option<String> {
    let h = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = h.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .then(|| token.trim().to_string())
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
        let token = bearer(req);
        Box::pin(async move {
            let svc = svc?;
            let token = token.ok_or_else(AppError::unauthenticated)?;
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
        let token = bearer(req);
        Box::pin(async move {
            let svc = svc?;
            match token {
                None => Ok(MaybeAuthed(None)),
                Some(t) => Ok(MaybeAuthed(Some(auth::authenticate(&svc, &t).await?))),
            }
        })
    }
}

/// The bearer token itself (for sign-out).
pub fn token_of(req: &HttpRequest) -> Option<String> {
    bearer(req)
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
