//! The host's notices to the room (e.g. "the opening begins in five
//! minutes"), in any state but the final ones.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::confirm::TextRequest;
use super::{bounded_text, hosted, wrong_phase};
use crate::domain::identity::Role;
use crate::domain::ids::SectionId;
use crate::error::AppResult;
use crate::service::action::{Action, Change, IdempotencyKey};
use crate::service::{Actor, Services};

/// Where the notice stands in the room's record.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NoticePosted {
    pub seq: i64,
}

/// The host posts a notice to the room.
pub async fn notice(
    svc: &Services,
    actor: &Actor,
    section_id: SectionId,
    req: TextRequest,
    key: Option<IdempotencyKey>,
) -> AppResult<NoticePosted> {
    actor.require(&[Role::Host])?;
    Action::new("notice", &section_id)
        .with_request(&req)
        .idempotent(key)
        .run(svc, actor, move |tx, a| {
            let x = hosted(tx.c, a, &section_id, "post notices")?;
            if x.state().is_terminal() {
                return Err(wrong_phase(x.state(), "posting a notice"));
            }
            let text = bounded_text("text", &req.text)?;
            let seq = tx.record(
                Change::new(&section_id, "room.notice")
                    .data(json!({"text": text, "at_ms": tx.now})),
            )?;
            Ok(NoticePosted { seq })
        })
        .await
}
