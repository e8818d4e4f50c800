//! Projects (招标项目): who runs them (centre, agent), whose they are
//! (tenderer), who supervises (regulator), and their trading category.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::policy::standing;
use super::{text_field, Actor, Services};
use crate::db::identity::{self as identity_repo, OrgRow};
use crate::db::sections::{self as repo, ProjectRow};
use crate::db::{audit, is_unique_violation, DbConn};
use crate::domain::identity::{OrgKind, Role};
use crate::domain::ids::{OrgId, ProjectId};
use crate::domain::problems::Problems;
use crate::domain::section::Category;
use crate::domain::time::Timestamp;
use crate::error::{AppError, AppResult, ErrorCode};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    pub code: String,
    pub name: String,
    pub category: Category,
    pub must_tender_by_law: bool,
    #[serde(default)]
    pub description: String,
    /// The trading centre; defaults to the host's own centre.
    #[serde(default)]
    pub centre_org_id: Option<OrgId>,
    pub tenderer_org_id: OrgId,
    pub regulator_org_id: OrgId,
}

/// An organisation named by a project.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrgRef {
    pub id: OrgId,
    pub name: String,
}

impl From<OrgRow> for OrgRef {
    fn from(o: OrgRow) -> Self {
        Self {
            id: o.id,
            name: o.name,
        }
    }
}

/// A project (招标项目) and the organisations around it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProjectView {
    pub id: ProjectId,
    pub code: String,
    pub name: String,
    pub category: Category,
    pub must_tender_by_law: bool,
    pub description: String,
    pub centre: OrgRef,
    pub tenderer: OrgRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<OrgRef>,
    pub regulator: OrgRef,
    pub created_at: Timestamp,
}

fn org_ref(c: &mut DbConn, id: &OrgId) -> AppResult<OrgRef> {
    identity_repo::find_org(c, id)?
        .map(OrgRef::from)
        .ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "project refers to missing organisation {id}"
            ))
        })
}

pub fn project_view(c: &mut DbConn, p: ProjectRow) -> AppResult<ProjectView> {
    Ok(ProjectView {
        centre: org_ref(c, &p.centre_org_id)?,
        tenderer: org_ref(c, &p.tenderer_org_id)?,
        agent: match &p.agent_org_id {
            Some(a) => Some(org_ref(c, a)?),
            None => None,
        },
        regulator: org_ref(c, &p.regulator_org_id)?,
        id: p.id,
        code: p.code,
        name: p.name,
        category: p.category,
        must_tender_by_law: p.must_tender_by_law,
        description: p.description,
        created_at: Timestamp::from_millis(p.created_at),
    })
}

fn org_of_kind(
    c: &mut DbConn,
    id: &OrgId,
    kind: OrgKind,
    field: &str,
    p: &mut Problems,
) -> AppResult<()> {
    match identity_repo::find_org(c, id)? {
        Some(o) if o.kind == kind => {}
        Some(_) => p.push(field, format!("must be a {kind} organisation")),
        None => p.push(field, "no such organisation"),
    }
    Ok(())
}

pub async fn create(svc: &Services, actor: &Actor, req: NewProject) -> AppResult<ProjectView> {
    actor.require(&[Role::Host])?;
    let host_org = actor.org()?.clone();
    let mut p = Problems::new();
    let code = text_field(&mut p, "code", &req.code, 1, 64);
    let name = text_field(&mut p, "name", &req.name, 2, 200);
    let description = text_field(&mut p, "description", &req.description, 0, 20_000);
    let now = svc.now().millis();
    let who = actor.who();
    let creator = actor.user.id.clone();
    svc.db
        .write(move |c| {
            let host = identity_repo::find_org(c, &host_org)?
                .ok_or_else(|| AppError::not_found("organisation"))?;
            let (centre, agent) = match host.kind {
                OrgKind::TradingCentre => {
                    if req.centre_org_id.as_ref().is_some_and(|c| *c != host.id) {
                        p.push(
                            "centre_org_id",
                            "a centre's host creates projects at their own centre",
                        );
                    }
                    (host.id.clone(), None)
                }
                OrgKind::Agent => match &req.centre_org_id {
                    Some(centre) => {
                        org_of_kind(c, centre, OrgKind::TradingCentre, "centre_org_id", &mut p)?;
                        (centre.clone(), Some(host.id.clone()))
                    }
                    None => {
                        p.push(
                            "centre_org_id",
                            "an agent names the trading centre the project runs at",
                        );
                        (OrgId::from_db(String::new()), None)
                    }
                },
                _ => {
                    return Err(AppError::forbidden(
                        "only hosts of a centre or an agent create projects",
                    ))
                }
            };
            org_of_kind(
                c,
                &req.tenderer_org_id,
                OrgKind::Tenderer,
                "tenderer_org_id",
                &mut p,
            )?;
            org_of_kind(
                c,
                &req.regulator_org_id,
                OrgKind::Regulator,
                "regulator_org_id",
                &mut p,
            )?;
            if !p.is_empty() {
                return Err(AppError::validation(p.into_vec()));
            }
            let row = ProjectRow {
                id: ProjectId::new(),
                centre_org_id: centre,
                tenderer_org_id: req.tenderer_org_id,
                agent_org_id: agent,
                regulator_org_id: req.regulator_org_id,
                code,
                name,
                category: req.category,
                must_tender_by_law: req.must_tender_by_law,
                description,
                created_by: creator,
                created_at: now,
            };
            repo::insert_project(c, &row).map_err(|e| {
                if is_unique_violation(&e) {
                    AppError::conflict(
                        ErrorCode::Conflict,
                        "this centre already has a project with this code",
                    )
                } else {
                    e.into()
                }
            })?;
            audit::record(
                c,
                now,
                &who,
                "project.create",
                row.id.as_str(),
                &serde_json::json!({"code": row.code}),
            )?;
            project_view(c, row)
        })
        .await
}

/// Projects the caller's organisation runs, owns or supervises.
pub async fn list_mine(svc: &Services, actor: &Actor) -> AppResult<Vec<ProjectView>> {
    actor.require(&[Role::Host, Role::Tenderer, Role::Supervisor])?;
    let org = actor.org()?.clone();
    let user = actor.user.clone();
    svc.db
        .run(move |c| {
            let mut out = Vec::new();
            for p in repo::projects_of_org(c, &org)? {
                if standing(c, &user, &p, None)?.can_view() {
                    out.push(project_view(c, p)?);
                }
            }
            Ok(out)
        })
        .await
}

/// A project and its sections.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectDetail {
    #[serde(flatten)]
    pub project: ProjectView,
    pub sections: Vec<super::sections::SectionSummary>,
}

pub async fn get(svc: &Services, actor: &Actor, id: ProjectId) -> AppResult<ProjectDetail> {
    let user = actor.user.clone();
    svc.db
        .run(move |c| {
            let p = repo::find_project(c, &id)?.ok_or_else(|| AppError::not_found("project"))?;
            if !standing(c, &user, &p, None)?.can_view() {
                return Err(AppError::not_found("project"));
            }
            let sections = repo::sections_of_project(c, &id)?
                .into_iter()
                .map(super::sections::SectionSummary::from)
                .collect();
            Ok(ProjectDetail {
                project: project_view(c, p)?,
                sections,
            })
        })
        .await
}
