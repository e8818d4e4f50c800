//! Organisations: created by administrators (or `kaibiao admin` from the
//! command line), each with its 统一社会信用代码 checked; bidder companies
//! register themselves (`users.rs`).

use serde_json::json;

use super::views::{NewOrg, OrgView};
use crate::db::audit::{self, Who};
use crate::db::identity::{self as repo, OrgRow};
use crate::db::{is_unique_violation, write_tx, DbConn};
use crate::domain::credit_code::CreditCode;
use crate::domain::identity::{OrgKind, Role};
use crate::domain::ids::OrgId;
use crate::domain::problems::Problems;
use crate::domain::time::Timestamp;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::{text_field, Actor, Services};

/// An organisation's fields, checked: every problem is pushed to `p`.
pub(super) fn parse_org(
    req: &NewOrg,
    p: &mut Problems,
) -> Option<(String, CreditCode, Option<String>)> {
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
    Some((name, code?, centre_code))
}

/// The row of a checked new organisation.
fn new_row(req: &NewOrg, now: i64) -> AppResult<OrgRow> {
    let mut p = Problems::new();
    match (parse_org(req, &mut p), p.is_empty()) {
        (Some((name, code, centre_code)), true) => Ok(OrgRow {
            id: OrgId::new(),
            kind: req.kind,
            name,
            credit_code: code.as_str().into(),
            centre_code,
            created_at: now,
        }),
        _ => Err(AppError::validation(p.into_vec())),
    }
}

pub(super) fn insert_org_checked(c: &mut DbConn, row: &OrgRow) -> AppResult<()> {
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

/// An administrator creates an organisation.
pub async fn create_org(svc: &Services, actor: &Actor, req: NewOrg) -> AppResult<OrgView> {
    actor.require(&[Role::Admin])?;
    let now = svc.now().millis();
    let row = new_row(&req, now)?;
    let who = actor.who();
    svc.db
        .write(move |c| {
            insert_org_checked(c, &row)?;
            audit::record(
                c,
                now,
                &who,
                "org.create",
                row.id.as_str(),
                &json!({"kind": row.kind}),
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
            Ok(repo::list_orgs(c, kind)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
        .await
}

/// Bootstrap from the command line: an organisation.
pub fn bootstrap_org(c: &mut DbConn, now: Timestamp, req: NewOrg) -> AppResult<OrgView> {
    let row = new_row(&req, now.millis())?;
    write_tx(c, |c| {
        insert_org_checked(c, &row)?;
        audit::record(
            c,
            now.millis(),
            &Who::system(),
            "org.bootstrap",
            row.id.as_str(),
            &json!({}),
        )?;
        Ok(OrgView::from(row))
    })
}
