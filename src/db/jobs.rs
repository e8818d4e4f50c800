//! The chronograph's durable schedule. One pending job per (section, kind);
//! a job is done in the same transaction as the transition it performs.

use diesel::prelude::*;

use super::schema::jobs;
use super::DbConn;
use crate::domain::ids::{JobId, SectionId};
use crate::domain::states::{JobKind, JobState};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = jobs)]
pub struct JobRow {
    pub id: JobId,
    pub kind: JobKind,
    pub section_id: SectionId,
    pub due_at: i64,
    pub state: JobState,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub lease_until: Option<i64>,
    pub leased_by: Option<String>,
    pub done_at: Option<i64>,
    pub done_by: Option<String>,
    pub created_at: i64,
}

/// Schedules `kind` for a section at `due_at`, or moves the pending one.
pub fn schedule(
    c: &mut DbConn,
    section_id: &SectionId,
    kind: JobKind,
    due_at: i64,
    now: i64,
) -> QueryResult<()> {
    let moved = diesel::update(
        jobs::table
            .filter(jobs::section_id.eq(section_id))
            .filter(jobs::kind.eq(kind))
            .filter(jobs::state.eq(JobState::Pending)),
    )
    .set(jobs::due_at.eq(due_at))
    .execute(c)?;
    if moved == 0 {
        diesel::insert_into(jobs::table)
            .values(&JobRow {
                id: JobId::new(),
                kind,
                section_id: section_id.clone(),
                due_at,
                state: JobState::Pending,
                attempts: 0,
                last_error: None,
                lease_until: None,
                leased_by: None,
                done_at: None,
                done_by: None,
                created_at: now,
            })
            .execute(c)?;
    }
    Ok(())
}

pub fn cancel_pending(c: &mut DbConn, section_id: &SectionId) -> QueryResult<usize> {
    diesel::update(
        jobs::table
            .filter(jobs::section_id.eq(section_id))
            .filter(jobs::state.eq(JobState::Pending)),
    )
    .set(jobs::state.eq(JobState::Cancelled))
    .execute(c)
}

/// Pending jobs due by `now` whose lease (if any) has lapsed.
pub fn due(c: &mut DbConn, now: i64, limit: i64) -> QueryResult<Vec<JobRow>> {
    jobs::table
        .filter(jobs::state.eq(JobState::Pending))
        .filter(jobs::due_at.le(now))
        .filter(jobs::lease_until.is_null().or(jobs::lease_until.lt(now)))
        .select(JobRow::as_select())
        .order(jobs::due_at.asc())
        .limit(limit)
        .load(c)
}

/// When the next pending job may run: its due time, or for a job backing off
/// after a failure, the end of its lease. Tells the chronograph how long to sleep.
pub fn next_due(c: &mut DbConn, now: i64) -> QueryResult<Option<i64>> {
    let free: Option<i64> = jobs::table
        .filter(jobs::state.eq(JobState::Pending))
        .filter(jobs::lease_until.is_null().or(jobs::lease_until.lt(now)))
        .select(diesel::dsl::min(jobs::due_at))
        .first(c)?;
    let leased: Option<i64> = jobs::table
        .filter(jobs::state.eq(JobState::Pending))
        .filter(jobs::lease_until.ge(now))
        .select(diesel::dsl::min(jobs::lease_until))
        .first(c)?;
    Ok(match (free, leased) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// Marks a job done; 1 row only for the first to do so.
pub fn complete(c: &mut DbConn, id: &JobId, node: &str, now: i64) -> QueryResult<usize> {
    diesel::update(
        jobs::table
            .find(id)
            .filter(jobs::state.eq(JobState::Pending)),
    )
    .set((
        jobs::state.eq(JobState::Done),
        jobs::done_at.eq(Some(now)),
        jobs::done_by.eq(Some(node)),
        jobs::lease_until.eq(None::<i64>),
    ))
    .execute(c)
}

/// Takes a long job for `node` until `until`, unless another node holds it;
/// 1 row when taken. (Short jobs need no lease: their transaction is the
/// compare-and-set.)
pub fn lease(c: &mut DbConn, id: &JobId, node: &str, now: i64, until: i64) -> QueryResult<usize> {
    diesel::update(
        jobs::table
            .find(id)
            .filter(jobs::state.eq(JobState::Pending))
            .filter(jobs::lease_until.is_null().or(jobs::lease_until.lt(now))),
    )
    .set((
        jobs::lease_until.eq(Some(until)),
        jobs::leased_by.eq(Some(node)),
    ))
    .execute(c)
}

/// Extends `node`'s lease of a job it holds.
pub fn renew(c: &mut DbConn, id: &JobId, node: &str, until: i64) -> QueryResult<usize> {
    diesel::update(
        jobs::table
            .find(id)
            .filter(jobs::state.eq(JobState::Pending))
            .filter(jobs::leased_by.eq(node)),
    )
    .set(jobs::lease_until.eq(Some(until)))
    .execute(c)
}

/// Records a failed attempt and leases the job away for a back-off period.
pub fn fail(c: &mut DbConn, id: &JobId, error: &str, retry_at: i64) -> QueryResult<usize> {
    diesel::update(
        jobs::table
            .find(id)
            .filter(jobs::state.eq(JobState::Pending)),
    )
    .set((
        jobs::attempts.eq(jobs::attempts + 1),
        jobs::last_error.eq(Some(error)),
        jobs::lease_until.eq(Some(retry_at)),
    ))
    .execute(c)
}

pub fn for_section(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Vec<JobRow>> {
    jobs::table
        .filter(jobs::section_id.eq(section_id))
        .select(JobRow::as_select())
        .order(jobs::created_at.asc())
        .load(c)
}
