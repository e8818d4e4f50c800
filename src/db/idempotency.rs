//! The answers to REST calls made with an `Idempotency-Key`, kept so that a
//! repeat of the same request gets the same answer and changes nothing.

use diesel::prelude::*;

use super::schema::idempotency_keys;
use super::DbConn;
use crate::domain::ids::UserId;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotencyRow {
    pub user_id: UserId,
    pub key: String,
    /// The action and its target (`"extend sec_…"`).
    pub route: String,
    pub status: i32,
    /// The first answer, as sent.
    pub body: String,
    pub created_at: i64,
    /// SHA-256 of the request as the action read it: a repeat must match.
    pub request_hash: String,
}

pub fn find(c: &mut DbConn, user_id: &UserId, key: &str) -> QueryResult<Option<IdempotencyRow>> {
    idempotency_keys::table
        .find((user_id, key))
        .select(IdempotencyRow::as_select())
        .first(c)
        .optional()
}

pub fn remember(c: &mut DbConn, row: &IdempotencyRow) -> QueryResult<()> {
    diesel::insert_into(idempotency_keys::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}
