//! The section's own record for its staff: the events in order, and the
//! audit trail (who did what under which request).

use serde::Serialize;
use utoipa::ToSchema;

use super::load;
use crate::db::{audit, events};
use crate::domain::identity::Role;
use crate::domain::ids::SectionId;
use crate::domain::opaque::{AuditDetail, EventData};
use crate::domain::time::Timestamp;
use crate::error::AppResult;
use crate::service::policy::{deny, standing};
use crate::service::{Actor, Services};

/// One event of the section's record.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub seq: i64,
    pub kind: String,
    pub payload: EventData,
    pub at: Timestamp,
}

/// One audit record.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub at: Timestamp,
    pub actor_id: Option<String>,
    pub action: String,
    pub request_id: Option<String>,
    pub detail: AuditDetail,
}

/// The section's event record, for those who may view the section.
pub async fn events_for(
    svc: &Services,
    actor: &Actor,
    id: SectionId,
    after: i64,
) -> AppResult<Vec<EventView>> {
    let user = actor.user.clone();
    svc.db
        .run(move |c| {
            let (s, p) = load(c, &id)?;
            let st = standing(c, &user, &p, Some(&id))?;
            if !st.can_view() {
                return Err(deny(s.state.is_public(), "read the event record"));
            }
            Ok(events::since(c, &id, after, 1000)?
                .into_iter()
                .map(|e| EventView {
                    seq: e.seq,
                    kind: e.kind,
                    payload: EventData(
                        serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null),
                    ),
                    at: Timestamp::from_millis(e.at),
                })
                .collect())
        })
        .await
}

/// The audit trail of a section: for its host and its supervisor.
pub async fn audit_for(svc: &Services, actor: &Actor, id: SectionId) -> AppResult<Vec<AuditView>> {
    actor.require(&[Role::Host, Role::Supervisor])?;
    let user = actor.user.clone();
    svc.db
        .run(move |c| {
            let (s, p) = load(c, &id)?;
            let st = standing(c, &user, &p, Some(&id))?;
            if !(st.runs || st.supervises) {
                return Err(deny(
                    s.state.is_public() || st.can_view(),
                    "read the audit trail",
                ));
            }
            Ok(audit::recent(c, Some(id.as_str()), 1000)?
                .into_iter()
                .map(|a| AuditView {
                    at: Timestamp::from_millis(a.at),
                    actor_id: a.actor_id,
                    action: a.action,
                    request_id: a.request_id,
                    detail: AuditDetail(
                        serde_json::from_str(&a.detail).unwrap_or(serde_json::Value::Null),
                    ),
                })
                .collect())
        })
        .await
}
