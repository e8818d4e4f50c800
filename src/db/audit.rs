//! The audit trail: who did what, when, under which request id. Written in
//! the same transaction as the action. `detail` holds no secrets and no
//! personal data beyond ids.

use diesel::prelude::*;

use super::schema::audit_log;
use super::DbConn;
use crate::domain::ids::AuditId;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub id: String,
    pub at: i64,
    pub actor_id: Option<String>,
    pub action: String,
    pub target: String,
    pub request_id: Option<String>,
    pub detail: String,
}

/// Who acts: the signed-in user (none for the chronograph and the command
/// line) and the request that carried the action.
#[derive(Debug, Clone, Default)]
pub struct Who {
    pub actor_id: Option<String>,
    pub request_id: Option<String>,
}

impl Who {
    pub fn system() -> Self {
        Self::default()
    }
}

pub fn record(
    c: &mut DbConn,
    at: i64,
    who: &Who,
    action: &str,
    target: &str,
    detail: &serde_json::Value,
) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values(&AuditRow {
            id: AuditId::new().into_string(),
            at,
            actor_id: who.actor_id.clone(),
            action: action.to_string(),
            target: target.to_string(),
            request_id: who.request_id.clone(),
            detail: detail.to_string(),
        })
        .execute(c)
        .map(|_| ())
}

pub fn recent(c: &mut DbConn, target: Option<&str>, limit: i64) -> QueryResult<Vec<AuditRow>> {
    let mut q = audit_log::table.select(AuditRow::as_select()).into_boxed();
    if let Some(t) = target {
        q = q.filter(audit_log::target.eq(t.to_string()));
    }
    q.order((audit_log::at.desc(), audit_log::id.desc()))
        .limit(limit)
        .load(c)
}
