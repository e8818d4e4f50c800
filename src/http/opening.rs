//! The opening's REST side: every change to the room is one of these calls
//! (each honours an `Idempotency-Key` header); the socket only pushes.

use actix_web::{web, HttpRequest};

use super::extract::{
    token_of, As, Authed, Bidders, Custodians, Hosts, Idempotency, MaybeAuthed, Signed, Supervisors,
};
use super::respond::{Html, Json, Text};
use crate::crypto::opening::SignedKeyRelease;
use crate::domain::ids::{IncidentId, ObjectionId, SectionId};
use crate::error::AppResult;
use crate::room::hub::Hub;
use crate::service::opening::{
    self, BidDecrypted, BmkRequest, ConfirmRequest, ExtendRequest, IncidentDeclared,
    IncidentRequest, IncidentUpheld, KeyReleased, NoticePosted, ObjectionAnswered, ObjectionRaised,
    RecordClosed, RecordConfirmed, RecordCountersigned, RecordView, SignatureRequest, SignedIn,
    SigninOpened, TextRequest, WindowMoved,
};
use crate::service::room::{self, OpeningSnapshot, RoomTicket};
use crate::service::Services;

type Svc = web::Data<Services>;
type Section = web::Path<SectionId>;

pub async fn view(
    svc: Svc,
    hub: web::Data<Hub>,
    who: MaybeAuthed,
    id: Section,
) -> AppResult<Json<OpeningSnapshot>> {
    Ok(Json(
        room::snapshot(&svc, &hub, who.0, id.into_inner()).await?,
    ))
}

pub async fn open_signin(
    svc: Svc,
    a: As<Hosts>,
    id: Section,
    key: Idempotency,
) -> AppResult<Json<SigninOpened>> {
    Ok(Json(
        opening::open_signin(&svc, &a.0, id.into_inner(), key.0).await?,
    ))
}

pub async fn sign_in(
    svc: Svc,
    a: As<Bidders>,
    id: Section,
    key: Idempotency,
) -> AppResult<Json<SignedIn>> {
    Ok(Json(
        opening::sign_in(&svc, &a.0, id.into_inner(), key.0).await?,
    ))
}

pub async fn release_key(
    svc: Svc,
    s: Signed<Custodians, SignedKeyRelease>,
    id: Section,
    key: Idempotency,
) -> AppResult<Json<KeyReleased>> {
    Ok(Json(
        opening::release_key(&svc, &s.0, id.into_inner(), s.1, key.0).await?,
    ))
}

pub async fn decrypt(
    svc: Svc,
    s: Signed<Bidders, BmkRequest>,
    id: Section,
    key: Idempotency,
) -> AppResult<Json<BidDecrypted>> {
    Ok(Json(
        opening::submit_bmk(&svc, &s.0, id.into_inner(), s.1, key.0).await?,
    ))
}

pub async fn extend(
    svc: Svc,
    s: Signed<Hosts, ExtendRequest>,
    id: Section,
    key: Idempotency,
) -> AppResult<Json<WindowMoved>> {
    Ok(Json(
        opening::extend(&svc, &s.0, id.into_inner(), s.1, key.0).await?,
    ))
}

pub async fn incident(
    svc: Svc,
    s: Signed<Hosts, IncidentRequest>,
    id: Section,
    key: Idempotency,
) -> AppResult<Json<IncidentDeclared>> {
    Ok(Json(
        opening::declare_incident(&svc, &s.0, id.into_inner(), s.1, key.0).await?,
    ))
}

pub async fn countersign_incident(
    svc: Svc,
    s: Signed<Supervisors, SignatureRequest>,
    path: web::Path<(SectionId, IncidentId)>,
    key: Idempotency,
) -> AppResult<Json<IncidentUpheld>> {
    let (id, inc) = path.into_inner();
    Ok(Json(
        opening::countersign_incident(&svc, &s.0, id, inc, s.1, key.0).await?,
    ))
}

pub async fn resume(
    svc: Svc,
    a: As<Hosts>,
    id: Section,
    key: Idempotency,
) -> AppResult<Json<WindowMoved>> {
    Ok(Json(
        opening::resume(&svc, &a.0, id.into_inner(), key.0).await?,
    ))
}

pub async fn confirm(
    svc: Svc,
    s: Signed<Bidders, ConfirmRequest>,
    id: Section,
    key: Idempotency,
) -> AppResult<Json<RecordConfirmed>> {
    Ok(Json(
        opening::confirm(&svc, &s.0, id.into_inner(), s.1, key.0).await?,
    ))
}

pub async fn object(
    svc: Svc,
    s: Signed<Bidders, TextRequest>,
    id: Section,
    key: Idempotency,
) -> AppResult<Json<ObjectionRaised>> {
    Ok(Json(
        opening::object(&svc, &s.0, id.into_inner(), s.1, key.0).await?,
    ))
}

pub async fn answer(
    svc: Svc,
    s: Signed<Hosts, TextRequest>,
    path: web::Path<(SectionId, ObjectionId)>,
    key: Idempotency,
) -> AppResult<Json<ObjectionAnswered>> {
    let (id, obj) = path.into_inner();
    Ok(Json(
        opening::answer(&svc, &s.0, id, obj, s.1, key.0).await?,
    ))
}

pub async fn close(
    svc: Svc,
    a: As<Hosts>,
    id: Section,
    key: Idempotency,
) -> AppResult<Json<RecordClosed>> {
    Ok(Json(
        opening::close(&svc, &a.0, id.into_inner(), key.0).await?,
    ))
}

pub async fn countersign(
    svc: Svc,
    s: Signed<Supervisors, SignatureRequest>,
    id: Section,
    key: Idempotency,
) -> AppResult<Json<RecordCountersigned>> {
    Ok(Json(
        opening::countersign(&svc, &s.0, id.into_inner(), s.1, key.0).await?,
    ))
}

pub async fn notice(
    svc: Svc,
    s: Signed<Hosts, TextRequest>,
    id: Section,
    key: Idempotency,
) -> AppResult<Json<NoticePosted>> {
    Ok(Json(
        opening::notice(&svc, &s.0, id.into_inner(), s.1, key.0).await?,
    ))
}

pub async fn record(svc: Svc, id: Section) -> AppResult<Json<RecordView>> {
    Ok(Json(opening::record_of(&svc, id.into_inner()).await?))
}

/// The opening record as a printable page (Chinese first, English second).
pub async fn record_html(svc: Svc, id: Section) -> AppResult<Html> {
    let r = opening::record_of(&svc, id.into_inner()).await?;
    Ok(Html(Text {
        content_type: "text/html; charset=utf-8",
        headers: vec![],
        body: super::record_page::render(&r),
    }))
}

pub async fn ticket(
    svc: Svc,
    req: HttpRequest,
    a: Authed,
    id: Section,
) -> AppResult<Json<RoomTicket>> {
    let token = token_of(&req).unwrap_or_default();
    Ok(Json(
        room::ticket(&svc, &a.0.user, &token, id.into_inner()).await?,
    ))
}
