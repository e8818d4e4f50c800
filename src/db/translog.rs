//! The transparency log's storage: leaves, the hashes of every complete
//! (perfect) subtree, and signed checkpoints. Appends are serialised by the
//! single `log_state` row, updated first in the appending transaction.

use diesel::prelude::*;

use super::schema::{log_chains, log_checkpoints, log_leaves, log_nodes, log_queue, log_state};
use super::DbConn;
use crate::crypto::merkle::{self, Hash, Subtrees};
use crate::domain::ids::SectionId;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = log_leaves)]
pub struct LeafRow {
    pub idx: i64,
    pub leaf: String,
    pub kind: String,
    pub section_id: Option<SectionId>,
    pub at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = log_checkpoints)]
pub struct CheckpointRow {
    pub size: i64,
    pub root: String,
    pub at: i64,
    pub signature: String,
}

/// Takes the log's lock for the rest of the transaction (every append takes
/// it through [`next_index`]): for a check that must see every append
/// before deciding to make one.
pub fn lock(c: &mut DbConn) -> QueryResult<()> {
    diesel::update(log_state::table.find(1))
        .set(log_state::size.eq(log_state::size))
        .execute(c)
        .map(|_| ())
}

/// Reserves the next index (locks the log until the transaction ends).
pub fn next_index(c: &mut DbConn) -> QueryResult<i64> {
    diesel::update(log_state::table.find(1))
        .set(log_state::size.eq(log_state::size + 1))
        .execute(c)?;
    let size: i64 = log_state::table.find(1).select(log_state::size).first(c)?;
    Ok(size - 1)
}

/// The sealed head of the chain filed under the blind `tag` (ADR 8).
pub fn chain_head(c: &mut DbConn, tag: &str) -> QueryResult<Option<String>> {
    log_chains::table
        .find(tag)
        .select(log_chains::head)
        .first(c)
        .optional()
}

pub fn put_chain_head(c: &mut DbConn, tag: &str, sealed: &str) -> QueryResult<()> {
    let n = diesel::update(log_chains::table.find(tag))
        .set(log_chains::head.eq(sealed))
        .execute(c)?;
    if n == 0 {
        diesel::insert_into(log_chains::table)
            .values((log_chains::tag.eq(tag), log_chains::head.eq(sealed)))
            .execute(c)?;
    }
    Ok(())
}

/// Queues a sealed commitment for the next flush (ADR 9).
pub fn enqueue(c: &mut DbConn, id: &str, sealed: &str) -> QueryResult<()> {
    diesel::insert_into(log_queue::table)
        .values((log_queue::id.eq(id), log_queue::item.eq(sealed)))
        .execute(c)
        .map(|_| ())
}

/// Everything queued, `(id, sealed item)`.
pub fn queued(c: &mut DbConn) -> QueryResult<Vec<(String, String)>> {
    log_queue::table
        .select((log_queue::id, log_queue::item))
        .order(log_queue::id.asc())
        .load(c)
}

/// Whether anything is queued (without reading the items).
pub fn any_queued(c: &mut DbConn) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(log_queue::table.select(log_queue::id))).get_result(c)
}

pub fn dequeue(c: &mut DbConn, id: &str) -> QueryResult<usize> {
    diesel::delete(log_queue::table.find(id)).execute(c)
}

/// The last flush's time.
pub fn flushed_at(c: &mut DbConn) -> QueryResult<i64> {
    log_state::table
        .find(1)
        .select(log_state::flushed_at)
        .first(c)
}

/// Claims the flush after `last` for time `at` (compare-and-set; the row
/// stays locked until the transaction ends, so a flush and an append never
/// interleave). Returns whether this caller won it.
pub fn claim_flush(c: &mut DbConn, last: Option<i64>, at: i64) -> QueryResult<bool> {
    let q = diesel::update(log_state::table.find(1));
    let n = match last {
        Some(l) => q
            .filter(log_state::flushed_at.eq(l))
            .set(log_state::flushed_at.eq(at))
            .execute(c)?,
        None => q.set(log_state::flushed_at.eq(at)).execute(c)?,
    };
    Ok(n == 1)
}

pub fn size(c: &mut DbConn) -> QueryResult<i64> {
    log_state::table.find(1).select(log_state::size).first(c)
}

fn put_node(c: &mut DbConn, level: i32, idx: i64, hash: &Hash) -> QueryResult<()> {
    diesel::insert_into(log_nodes::table)
        .values((
            log_nodes::level.eq(level),
            log_nodes::idx.eq(idx),
            log_nodes::hash.eq(hex::encode(hash)),
        ))
        .execute(c)
        .map(|_| ())
}

pub fn node(c: &mut DbConn, level: i32, idx: i64) -> QueryResult<Hash> {
    let h: String = log_nodes::table
        .find((level, idx))
        .select(log_nodes::hash)
        .first(c)?;
    crate::crypto::hex_array(&h).ok_or(diesel::result::Error::DeserializationError(
        "bad node hash".into(),
    ))
}

/// Stores leaf `idx` and every perfect subtree it completes.
pub fn append(c: &mut DbConn, row: &LeafRow, leaf_hash: &Hash) -> QueryResult<()> {
    diesel::insert_into(log_leaves::table)
        .values(row)
        .execute(c)?;
    put_node(c, 0, row.idx, leaf_hash)?;
    let mut current = *leaf_hash;
    let mut i = row.idx;
    let mut level = 0;
    while i & 1 == 1 {
        let left = node(c, level, i - 1)?;
        current = merkle::node_hash(&left, &current);
        level += 1;
        i >>= 1;
        put_node(c, level, i, &current)?;
    }
    Ok(())
}

pub fn put_checkpoint(c: &mut DbConn, row: &CheckpointRow) -> QueryResult<()> {
    diesel::insert_into(log_checkpoints::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn checkpoint(c: &mut DbConn, size: i64) -> QueryResult<Option<CheckpointRow>> {
    log_checkpoints::table
        .find(size)
        .select(CheckpointRow::as_select())
        .first(c)
        .optional()
}

pub fn latest_checkpoint(c: &mut DbConn) -> QueryResult<Option<CheckpointRow>> {
    log_checkpoints::table
        .select(CheckpointRow::as_select())
        .order(log_checkpoints::size.desc())
        .first(c)
        .optional()
}

pub fn leaves(c: &mut DbConn, start: i64, end: i64) -> QueryResult<Vec<LeafRow>> {
    log_leaves::table
        .filter(log_leaves::idx.ge(start))
        .filter(log_leaves::idx.lt(end))
        .select(LeafRow::as_select())
        .order(log_leaves::idx.asc())
        .load(c)
}

pub fn leaf(c: &mut DbConn, idx: i64) -> QueryResult<Option<LeafRow>> {
    log_leaves::table
        .find(idx)
        .select(LeafRow::as_select())
        .first(c)
        .optional()
}

pub fn section_leaves(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Vec<LeafRow>> {
    log_leaves::table
        .filter(log_leaves::section_id.eq(section_id))
        .select(LeafRow::as_select())
        .order(log_leaves::idx.asc())
        .load(c)
}

/// Subtree hashes from the stored perfect subtrees: O(log n) lookups for
/// any range. A database error is kept and reported by [`DbTree::finish`].
pub struct DbTree<'a> {
    c: &'a mut DbConn,
    error: Option<diesel::result::Error>,
}

impl<'a> DbTree<'a> {
    pub fn new(c: &'a mut DbConn) -> Self {
        Self { c, error: None }
    }
    pub fn finish<T>(self, v: T) -> QueryResult<T> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(v),
        }
    }
    fn lookup(&mut self, level: i32, idx: i64) -> Hash {
        if self.error.is_some() {
            return [0; 32];
        }
        match node(self.c, level, idx) {
            Ok(h) => h,
            Err(e) => {
                self.error = Some(e);
                [0; 32]
            }
        }
    }
}

impl Subtrees for DbTree<'_> {
    fn leaf(&mut self, index: u64) -> Hash {
        self.lookup(0, index as i64)
    }

    fn subtree(&mut self, start: u64, end: u64) -> Hash {
        let n = end - start;
        if n > 0 && n.is_power_of_two() && start.is_multiple_of(n) {
            return self.lookup(n.trailing_zeros() as i32, (start / n) as i64);
        }
        match n {
            0 => merkle::empty_root(),
            _ => {
                let k = 1u64 << (63 - (n - 1).leading_zeros());
                let l = self.subtree(start, start + k);
                let r = self.subtree(start + k, end);
                merkle::node_hash(&l, &r)
            }
        }
    }
}
