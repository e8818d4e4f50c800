//! Organisations, users, sessions, e-mail verification and login throttling.

use diesel::prelude::*;

use super::schema::{email_verifications, login_throttle, organisations, sessions, users};
use super::DbConn;
use crate::domain::identity::{OrgKind, Role};
use crate::domain::ids::{OrgId, UserId};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = organisations)]
pub struct OrgRow {
    pub id: OrgId,
    pub kind: OrgKind,
    pub name: String,
    pub credit_code: String,
    pub centre_code: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: UserId,
    pub org_id: Option<OrgId>,
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub password_hash: String,
    pub email_verified_at: Option<i64>,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub token_hash: String,
    pub user_id: UserId,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = email_verifications)]
pub struct VerificationRow {
    pub token_hash: String,
    pub user_id: UserId,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = login_throttle)]
pub struct ThrottleRow {
    pub key: String,
    pub window_start: i64,
    pub failures: i32,
    pub locked_until: Option<i64>,
}

pub fn insert_org(c: &mut DbConn, row: &OrgRow) -> QueryResult<()> {
    diesel::insert_into(organisations::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn find_org(c: &mut DbConn, id: &OrgId) -> QueryResult<Option<OrgRow>> {
    organisations::table
        .find(id)
        .select(OrgRow::as_select())
        .first(c)
        .optional()
}

pub fn org_by_credit_code(c: &mut DbConn, code: &str) -> QueryResult<Option<OrgRow>> {
    organisations::table
        .filter(organisations::credit_code.eq(code))
        .select(OrgRow::as_select())
        .first(c)
        .optional()
}

pub fn list_orgs(c: &mut DbConn, kind: Option<OrgKind>) -> QueryResult<Vec<OrgRow>> {
    let mut q = organisations::table
        .select(OrgRow::as_select())
        .into_boxed();
    if let Some(k) = kind {
        q = q.filter(organisations::kind.eq(k));
    }
    q.order(organisations::name.asc()).load(c)
}

pub fn insert_user(c: &mut DbConn, row: &UserRow) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn find_user(c: &mut DbConn, id: &UserId) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(c)
        .optional()
}

pub fn user_by_username(c: &mut DbConn, username: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::username.eq(username))
        .select(UserRow::as_select())
        .first(c)
        .optional()
}

pub fn users_of_org(c: &mut DbConn, org_id: &OrgId) -> QueryResult<Vec<UserRow>> {
    users::table
        .filter(users::org_id.eq(org_id))
        .select(UserRow::as_select())
        .order(users::username.asc())
        .load(c)
}

pub fn list_users(c: &mut DbConn) -> QueryResult<Vec<UserRow>> {
    users::table
        .select(UserRow::as_select())
        .order(users::username.asc())
        .load(c)
}

pub fn mark_email_verified(c: &mut DbConn, user_id: &UserId, at: i64) -> QueryResult<usize> {
    diesel::update(
        users::table
            .find(user_id)
            .filter(users::email_verified_at.is_null()),
    )
    .set(users::email_verified_at.eq(Some(at)))
    .execute(c)
}

pub fn set_disabled(c: &mut DbConn, user_id: &UserId, at: Option<i64>) -> QueryResult<usize> {
    diesel::update(users::table.find(user_id))
        .set(users::disabled_at.eq(at))
        .execute(c)
}

pub fn set_password_hash(c: &mut DbConn, user_id: &UserId, hash: &str) -> QueryResult<usize> {
    diesel::update(users::table.find(user_id))
        .set(users::password_hash.eq(hash))
        .execute(c)
}

pub fn insert_session(c: &mut DbConn, row: &SessionRow) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

/// The session and its user, if the token hash is known.
pub fn session_with_user(
    c: &mut DbConn,
    token_hash: &str,
) -> QueryResult<Option<(SessionRow, UserRow)>> {
    sessions::table
        .inner_join(users::table)
        .filter(sessions::token_hash.eq(token_hash))
        .select((SessionRow::as_select(), UserRow::as_select()))
        .first(c)
        .optional()
}

pub fn revoke_session(c: &mut DbConn, token_hash: &str, at: i64) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .find(token_hash)
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(Some(at)))
    .execute(c)
}

pub fn revoke_user_sessions(c: &mut DbConn, user_id: &UserId, at: i64) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(Some(at)))
    .execute(c)
}

pub fn insert_verification(c: &mut DbConn, row: &VerificationRow) -> QueryResult<()> {
    diesel::insert_into(email_verifications::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn find_verification(c: &mut DbConn, token_hash: &str) -> QueryResult<Option<VerificationRow>> {
    email_verifications::table
        .find(token_hash)
        .select(VerificationRow::as_select())
        .first(c)
        .optional()
}

/// Marks a verification token used; 0 rows if it was used already.
pub fn use_verification(c: &mut DbConn, token_hash: &str, at: i64) -> QueryResult<usize> {
    diesel::update(
        email_verifications::table
            .find(token_hash)
            .filter(email_verifications::used_at.is_null()),
    )
    .set(email_verifications::used_at.eq(Some(at)))
    .execute(c)
}

pub fn throttle_get(c: &mut DbConn, key: &str) -> QueryResult<Option<ThrottleRow>> {
    login_throttle::table
        .find(key)
        .select(ThrottleRow::as_select())
        .first(c)
        .optional()
}

pub fn throttle_put(c: &mut DbConn, row: &ThrottleRow) -> QueryResult<()> {
    diesel::delete(login_throttle::table.find(&row.key)).execute(c)?;
    diesel::insert_into(login_throttle::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn throttle_clear(c: &mut DbConn, key: &str) -> QueryResult<usize> {
    diesel::delete(login_throttle::table.find(key)).execute(c)
}
