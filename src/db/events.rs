//! Per-section events: the ordered record of everything that happens to a
//! section. Sequence numbers come from the section row (`last_seq`), bumped in
//! the same transaction, so they are gap-free and never repeat — on either
//! backend and across nodes.

use diesel::prelude::*;

use super::schema::{events, sections};
use super::DbConn;
use crate::domain::ids::SectionId;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub section_id: SectionId,
    pub seq: i64,
    pub kind: String,
    pub payload: String,
    pub actor_id: Option<String>,
    pub at: i64,
}

/// Appends an event; returns its sequence number. Call inside the
/// transaction that makes the change it describes.
pub fn append(
    c: &mut DbConn,
    section_id: &SectionId,
    kind: &str,
    payload: &serde_json::Value,
    actor_id: Option<&str>,
    at: i64,
) -> QueryResult<i64> {
    // The update takes the row lock (PostgreSQL) or the write lock (SQLite)
    // before the read, so two writers can never see the same last_seq.
    diesel::update(sections::table.find(section_id))
        .set(sections::last_seq.eq(sections::last_seq + 1))
        .execute(c)?;
    let seq: i64 = sections::table
        .find(section_id)
        .select(sections::last_seq)
        .first(c)?;
    diesel::insert_into(events::table)
        .values(&EventRow {
            section_id: section_id.clone(),
            seq,
            kind: kind.to_string(),
            payload: payload.to_string(),
            actor_id: actor_id.map(str::to_string),
            at,
        })
        .execute(c)?;
    // Wake the room: on this node once the transaction commits, and on every
    // node through NOTIFY (PostgreSQL delivers it at commit, never before,
    // and not at all on rollback).
    super::touch(section_id.as_str());
    if let DbConn::Pg(pg) = c {
        diesel::sql_query("SELECT pg_notify('kaibiao_events', $1)")
            .bind::<diesel::sql_types::Text, _>(section_id.as_str())
            .execute(pg)?;
    }
    Ok(seq)
}

/// The channel `kaibiao serve` nodes LISTEN on; the payload is a section id.
pub const NOTIFY_CHANNEL: &str = "kaibiao_events";

pub fn since(
    c: &mut DbConn,
    section_id: &SectionId,
    after_seq: i64,
    limit: i64,
) -> QueryResult<Vec<EventRow>> {
    events::table
        .filter(events::section_id.eq(section_id))
        .filter(events::seq.gt(after_seq))
        .select(EventRow::as_select())
        .order(events::seq.asc())
        .limit(limit)
        .load(c)
}

pub fn count_kind(c: &mut DbConn, section_id: &SectionId, kind: &str) -> QueryResult<i64> {
    events::table
        .filter(events::section_id.eq(section_id))
        .filter(events::kind.eq(kind))
        .count()
        .get_result(c)
}
