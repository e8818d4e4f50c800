//! The durable outbox: mail written in the same transaction as the change
//! that causes it, delivered later by the outbox worker with retries.

use diesel::prelude::*;

use super::schema::outbox;
use super::DbConn;
use crate::domain::ids::MailId;
use crate::domain::states::MailState;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = outbox)]
pub struct MailRow {
    pub id: MailId,
    pub kind: String,
    pub to_addr: String,
    pub subject: String,
    pub body: String,
    pub created_at: i64,
    pub state: MailState,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
}

pub fn enqueue(
    c: &mut DbConn,
    kind: &str,
    to: &str,
    subject: &str,
    body: &str,
    now: i64,
) -> QueryResult<MailId> {
    let id = MailId::new();
    diesel::insert_into(outbox::table)
        .values(&MailRow {
            id: id.clone(),
            kind: kind.into(),
            to_addr: to.into(),
            subject: subject.into(),
            body: body.into(),
            created_at: now,
            state: MailState::Pending,
            attempts: 0,
            next_attempt_at: now,
            lease_until: None,
            last_error: None,
            sent_at: None,
        })
        .execute(c)?;
    Ok(id)
}

pub fn due(c: &mut DbConn, now: i64, limit: i64) -> QueryResult<Vec<MailRow>> {
    outbox::table
        .filter(outbox::state.eq(MailState::Pending))
        .filter(outbox::next_attempt_at.le(now))
        .filter(
            outbox::lease_until
                .is_null()
                .or(outbox::lease_until.lt(now)),
        )
        .select(MailRow::as_select())
        .order(outbox::next_attempt_at.asc())
        .limit(limit)
        .load(c)
}

/// Claims a mail for delivery until `lease_until`; 1 row only for one node.
pub fn claim(c: &mut DbConn, id: &MailId, now: i64, lease_until: i64) -> QueryResult<usize> {
    diesel::update(
        outbox::table
            .find(id)
            .filter(outbox::state.eq(MailState::Pending))
            .filter(
                outbox::lease_until
                    .is_null()
                    .or(outbox::lease_until.lt(now)),
            ),
    )
    .set(outbox::lease_until.eq(Some(lease_until)))
    .execute(c)
}

pub fn mark_sent(c: &mut DbConn, id: &MailId, now: i64) -> QueryResult<usize> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::state.eq(MailState::Sent),
            outbox::sent_at.eq(Some(now)),
            outbox::attempts.eq(outbox::attempts + 1),
            outbox::lease_until.eq(None::<i64>),
        ))
        .execute(c)
}

pub fn mark_failed(
    c: &mut DbConn,
    id: &MailId,
    error: &str,
    next_attempt_at: i64,
    dead: bool,
) -> QueryResult<usize> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::state.eq(if dead {
                MailState::Dead
            } else {
                MailState::Pending
            }),
            outbox::attempts.eq(outbox::attempts + 1),
            outbox::last_error.eq(Some(error)),
            outbox::next_attempt_at.eq(next_attempt_at),
            outbox::lease_until.eq(None::<i64>),
        ))
        .execute(c)
}

pub fn find(c: &mut DbConn, id: &MailId) -> QueryResult<Option<MailRow>> {
    outbox::table
        .find(id)
        .select(MailRow::as_select())
        .first(c)
        .optional()
}

pub fn all(c: &mut DbConn) -> QueryResult<Vec<MailRow>> {
    outbox::table
        .select(MailRow::as_select())
        .order(outbox::created_at.asc())
        .load(c)
}

/// (pending, sent, dead) counts, for /metrics.
pub fn counts(c: &mut DbConn) -> QueryResult<Vec<(MailState, i64)>> {
    outbox::table
        .group_by(outbox::state)
        .select((outbox::state, diesel::dsl::count_star()))
        .load(c)
}
