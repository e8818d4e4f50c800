//! Registered public keys (with history) and the challenges that prove
//! possession of their private halves.

use diesel::prelude::*;

use super::schema::{custodian_section_keys, identity_keys, key_challenges};
use super::DbConn;
use crate::domain::identity::{KeyAlgorithm, KeyPurpose};
use crate::domain::ids::{ChallengeId, KeyId, SectionId, UserId};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = key_challenges)]
pub struct ChallengeRow {
    pub id: ChallengeId,
    pub user_id: UserId,
    pub purpose: KeyPurpose,
    pub nonce: String,
    pub server_secret: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = identity_keys)]
pub struct KeyRow {
    pub id: KeyId,
    /// The organisation (bidder keys) or the user (identity keys) it belongs to.
    pub owner_id: String,
    pub purpose: KeyPurpose,
    pub algorithm: KeyAlgorithm,
    pub public_key: String,
    pub registered_by: UserId,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    /// The registration statement's canonical JSON text, as proven.
    pub proof_statement: Option<String>,
    /// The proof of possession over it, hex (PROTOCOL §2).
    pub proof: Option<String>,
    /// The log indices of its `key.registered` and `key.retired` leaves.
    pub registered_idx: Option<i64>,
    pub retired_idx: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = custodian_section_keys)]
pub struct SectionKeyRow {
    pub section_id: SectionId,
    pub user_id: UserId,
    pub public_key: String,
    pub identity_key_id: KeyId,
    pub signature: String,
    pub registered_at: i64,
}

pub fn insert_challenge(c: &mut DbConn, row: &ChallengeRow) -> QueryResult<()> {
    diesel::insert_into(key_challenges::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn find_challenge(c: &mut DbConn, id: &ChallengeId) -> QueryResult<Option<ChallengeRow>> {
    key_challenges::table
        .find(id)
        .select(ChallengeRow::as_select())
        .first(c)
        .optional()
}

/// Consumes a challenge: 1 row the first time, 0 on any replay.
pub fn use_challenge(c: &mut DbConn, id: &ChallengeId, at: i64) -> QueryResult<usize> {
    diesel::update(
        key_challenges::table
            .find(id)
            .filter(key_challenges::used_at.is_null()),
    )
    .set((
        key_challenges::used_at.eq(Some(at)),
        key_challenges::server_secret.eq(None::<String>),
    ))
    .execute(c)
}

pub fn delete_expired_challenges(c: &mut DbConn, now: i64) -> QueryResult<usize> {
    diesel::delete(key_challenges::table.filter(key_challenges::expires_at.lt(now))).execute(c)
}

pub fn active_key(
    c: &mut DbConn,
    owner_id: &str,
    purpose: KeyPurpose,
) -> QueryResult<Option<KeyRow>> {
    identity_keys::table
        .filter(identity_keys::owner_id.eq(owner_id))
        .filter(identity_keys::purpose.eq(purpose))
        .filter(identity_keys::retired_at.is_null())
        .select(KeyRow::as_select())
        .first(c)
        .optional()
}

pub fn find_key(c: &mut DbConn, id: &KeyId) -> QueryResult<Option<KeyRow>> {
    identity_keys::table
        .find(id)
        .select(KeyRow::as_select())
        .first(c)
        .optional()
}

pub fn key_by_public(
    c: &mut DbConn,
    algorithm: KeyAlgorithm,
    public_key: &str,
) -> QueryResult<Option<KeyRow>> {
    identity_keys::table
        .filter(identity_keys::algorithm.eq(algorithm))
        .filter(identity_keys::public_key.eq(public_key))
        .select(KeyRow::as_select())
        .first(c)
        .optional()
}

/// Every key an owner has registered, newest first (the rotation history).
pub fn key_history(c: &mut DbConn, owner_id: &str) -> QueryResult<Vec<KeyRow>> {
    identity_keys::table
        .filter(identity_keys::owner_id.eq(owner_id))
        .select(KeyRow::as_select())
        .order(identity_keys::created_at.desc())
        .load(c)
}

/// Retires the key at `at`, its `key.retired` leaf at `idx` (if logged).
pub fn retire_key(c: &mut DbConn, id: &KeyId, at: i64, idx: Option<i64>) -> QueryResult<usize> {
    diesel::update(
        identity_keys::table
            .find(id)
            .filter(identity_keys::retired_at.is_null()),
    )
    .set((
        identity_keys::retired_at.eq(Some(at)),
        identity_keys::retired_idx.eq(idx),
    ))
    .execute(c)
}

pub fn insert_key(c: &mut DbConn, row: &KeyRow) -> QueryResult<()> {
    diesel::insert_into(identity_keys::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn section_keys(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Vec<SectionKeyRow>> {
    custodian_section_keys::table
        .filter(custodian_section_keys::section_id.eq(section_id))
        .select(SectionKeyRow::as_select())
        .load(c)
}

pub fn put_section_key(c: &mut DbConn, row: &SectionKeyRow) -> QueryResult<()> {
    diesel::delete(custodian_section_keys::table.find((&row.section_id, &row.user_id)))
        .execute(c)?;
    diesel::insert_into(custodian_section_keys::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

/// Drops the section keys of users who are no longer custodians of a draft.
pub fn prune_section_keys(
    c: &mut DbConn,
    section_id: &SectionId,
    keep: &[UserId],
) -> QueryResult<usize> {
    diesel::delete(
        custodian_section_keys::table
            .filter(custodian_section_keys::section_id.eq(section_id))
            .filter(custodian_section_keys::user_id.ne_all(keep)),
    )
    .execute(c)
}
