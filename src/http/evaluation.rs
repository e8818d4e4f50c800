//! Remote expert evaluation over REST: the pool (administrators), the draw
//! and the result (the host), answers to a draw (the e-mailed token), passes
//! (signed by a trusted centre), and the experts' signed reviews and scores.

use actix_web::web;
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::{
    Admins, As, Bidders, CsvBody, Experts, Hosts, HostsAndSupervisors, Idempotency, Signed,
    Tenderers,
};
use super::respond::{Csv, Json, Text};
use crate::domain::ids::{ClarificationId, PublicityObjectionId, SectionId};
use crate::error::AppResult;
use crate::evaluation::draw::DrawRequest;
use crate::evaluation::pass::Pass;
use crate::evaluation::seed::ContributionStatement;
use crate::service::evaluation::{
    self as ev, AnswerRequest, CandidatesPublished, ClarificationAnswer, ClarificationAnswered,
    ClarificationAsked, ClarificationStatement, ContributionCommitted, ContributionRevealed,
    DrawAnswered, DrawRequested, DrawSeedView, EvaluationStatus, ExpertAdmitted, Finished,
    ObjectionText, OutlierConfirmed, OutlierStatement, PassRequest, PoolImported, PublicResult,
    RecusalStatement, Recused, ReportSigned, ReportStatement, ResultObjectionAnswered,
    ResultObjectionRaised, RevealRequest, ReviewRecorded, ScoreStatement, ScoresRecorded,
    VoteStatement,
};
use crate::service::Services;

type Svc = web::Data<Services>;
type Section = web::Path<SectionId>;

/// The largest pool file accepted (tens of thousands of experts).
const MAX_POOL_CSV: usize = 16 << 20;

pub async fn pool_export(svc: Svc, _a: As<Admins>) -> AppResult<Csv> {
    let csv = svc.db.run(ev::export_pool).await?;
    Ok(Csv(Text {
        content_type: "text/csv; charset=utf-8",
        headers: vec![],
        body: csv,
    }))
}

pub async fn pool_import(svc: Svc, _a: As<Admins>, body: CsvBody) -> AppResult<Json<PoolImported>> {
    let text = body.text(MAX_POOL_CSV).await?;
    let now = svc.now().millis();
    Ok(Json(
        svc.db.run(move |c| ev::import_pool(c, &text, now)).await?,
    ))
}

pub async fn draw(
    svc: Svc,
    s: Signed<Hosts, DrawRequest>,
    id: Section,
    key: Idempotency,
) -> AppResult<Json<DrawRequested>> {
    Ok(Json(
        ev::draw_committee(&svc, &s.0, key.0, id.into_inner(), s.1).await?,
    ))
}

pub async fn commit_contribution(
    svc: Svc,
    id: Section,
    body: web::Json<ev::Signed<ContributionStatement>>,
) -> AppResult<Json<ContributionCommitted>> {
    Ok(Json(
        ev::commit_contribution(&svc, id.into_inner(), body.into_inner()).await?,
    ))
}

pub async fn reveal_contribution(
    svc: Svc,
    id: Section,
    body: web::Json<RevealRequest>,
) -> AppResult<Json<ContributionRevealed>> {
    Ok(Json(
        ev::reveal_contribution(&svc, id.into_inner(), body.into_inner()).await?,
    ))
}

pub async fn draw_seed(
    svc: Svc,
    a: As<HostsAndSupervisors>,
    id: Section,
) -> AppResult<Json<DrawSeedView>> {
    Ok(Json(ev::draw_seed(&svc, &a.0, id.into_inner()).await?))
}

pub async fn status(svc: Svc, a: As<Hosts>, id: Section) -> AppResult<Json<EvaluationStatus>> {
    Ok(Json(ev::status(&svc, &a.0, id.into_inner()).await?))
}

pub async fn finish(
    svc: Svc,
    a: As<Hosts>,
    id: Section,
    key: Idempotency,
) -> AppResult<Json<Finished>> {
    Ok(Json(ev::finish(&svc, &a.0, key.0, id.into_inner()).await?))
}

pub async fn answer(svc: Svc, body: web::Json<AnswerRequest>) -> AppResult<Json<DrawAnswered>> {
    Ok(Json(
        ev::answer(&svc, super::request_id::current(), body.into_inner()).await?,
    ))
}

pub async fn admit(
    svc: Svc,
    id: Section,
    body: web::Json<Pass>,
) -> AppResult<Json<ExpertAdmitted>> {
    Ok(Json(
        ev::admit(&svc, id.into_inner(), body.into_inner()).await?,
    ))
}

pub async fn vote(
    svc: Svc,
    id: Section,
    body: web::Json<ev::Signed<VoteStatement>>,
) -> AppResult<Json<ReviewRecorded>> {
    Ok(Json(
        ev::vote(&svc, id.into_inner(), body.into_inner()).await?,
    ))
}

/// One signed score, or a sheet of them.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum ScoreBody {
    /// A whole sheet (all or nothing).
    Sheet {
        scores: Vec<ev::Signed<ScoreStatement>>,
    },
    One(ev::Signed<ScoreStatement>),
}

impl utoipa::PartialSchema for ScoreBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{schema::OneOfBuilder, ArrayBuilder, ObjectBuilder, Ref};
        let one = Ref::from_schema_name(<ev::Signed<ScoreStatement> as ToSchema>::name());
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .property(
                        "scores",
                        ArrayBuilder::new()
                            .items(one.clone())
                            .max_items(Some(ev::MAX_SHEET)),
                    )
                    .required("scores")
                    .description(Some("a sheet: all of it is written, or none")),
            )
            .item(one)
            .into()
    }
}

impl ToSchema for ScoreBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "ScoreBody".into()
    }
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push((
            <ev::Signed<ScoreStatement> as ToSchema>::name().into(),
            ev::Signed::<ScoreStatement>::schema(),
        ));
        <ev::Signed<ScoreStatement> as ToSchema>::schemas(schemas);
    }
}

pub async fn score(
    svc: Svc,
    id: Section,
    body: web::Json<ScoreBody>,
) -> AppResult<Json<ScoresRecorded>> {
    let sheet = match body.into_inner() {
        ScoreBody::Sheet { scores } => scores,
        ScoreBody::One(one) => vec![one],
    };
    Ok(Json(ev::score(&svc, id.into_inner(), sheet).await?))
}

pub async fn sign_report(
    svc: Svc,
    id: Section,
    body: web::Json<ev::Signed<ReportStatement>>,
) -> AppResult<Json<ReportSigned>> {
    Ok(Json(
        ev::sign_report(&svc, id.into_inner(), body.into_inner()).await?,
    ))
}

pub async fn publish(
    svc: Svc,
    a: As<Hosts>,
    id: Section,
    key: Idempotency,
) -> AppResult<Json<CandidatesPublished>> {
    Ok(Json(ev::publish(&svc, &a.0, key.0, id.into_inner()).await?))
}

pub async fn object(
    svc: Svc,
    s: Signed<Bidders, ObjectionText>,
    id: Section,
    key: Idempotency,
) -> AppResult<Json<ResultObjectionRaised>> {
    Ok(Json(
        ev::raise_objection(&svc, &s.0, key.0, id.into_inner(), s.1).await?,
    ))
}

pub async fn answer_objection(
    svc: Svc,
    s: Signed<Tenderers, ObjectionText>,
    path: web::Path<(SectionId, PublicityObjectionId)>,
    key: Idempotency,
) -> AppResult<Json<ResultObjectionAnswered>> {
    let (id, objection) = path.into_inner();
    Ok(Json(
        ev::answer_objection(&svc, &s.0, key.0, id, objection, s.1).await?,
    ))
}

pub async fn result(svc: Svc, id: Section) -> AppResult<Json<PublicResult>> {
    Ok(Json(ev::public_result(&svc, id.into_inner()).await?))
}

pub async fn confirm_outlier(
    svc: Svc,
    id: Section,
    body: web::Json<ev::Signed<OutlierStatement>>,
) -> AppResult<Json<OutlierConfirmed>> {
    Ok(Json(
        ev::confirm_outlier(&svc, id.into_inner(), body.into_inner()).await?,
    ))
}

pub async fn recuse(
    svc: Svc,
    id: Section,
    body: web::Json<ev::Signed<RecusalStatement>>,
) -> AppResult<Json<Recused>> {
    Ok(Json(
        ev::recuse(&svc, id.into_inner(), body.into_inner()).await?,
    ))
}

pub async fn ask_clarification(
    svc: Svc,
    id: Section,
    body: web::Json<ev::Signed<ClarificationStatement>>,
) -> AppResult<Json<ClarificationAsked>> {
    Ok(Json(
        ev::ask_clarification(&svc, id.into_inner(), body.into_inner()).await?,
    ))
}

pub async fn answer_clarification(
    svc: Svc,
    s: Signed<Bidders, ClarificationAnswer>,
    path: web::Path<(SectionId, ClarificationId)>,
    key: Idempotency,
) -> AppResult<Json<ClarificationAnswered>> {
    let (id, clarification) = path.into_inner();
    Ok(Json(
        ev::answer_clarification(&svc, &s.0, key.0, id, clarification, s.1).await?,
    ))
}

pub async fn home_pass(
    svc: Svc,
    s: Signed<Experts, PassRequest>,
    id: Section,
) -> AppResult<Json<Pass>> {
    Ok(Json(ev::home_pass(&svc, &s.0, id.into_inner(), s.1).await?))
}
