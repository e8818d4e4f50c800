//! The database: one connection type over SQLite and PostgreSQL, one pool,
//! and one choke point ([`Db::run`]) that moves every diesel call off the
//! async executor onto the blocking pool.
//!
//! Repository functions (the other files here) take `&mut DbConn` and return
//! `QueryResult`; services own the transaction ([`write_tx`]) so that a state
//! change, its event, its audit record and its outbox mail commit together.

pub mod audit;
pub mod bids;
pub mod evaluation;
pub mod events;
pub mod idempotency;
pub mod identity;
pub mod jobs;
pub mod keys;
pub mod opening;
pub mod outbox;
pub mod schema;
pub mod sections;
pub mod translog;
pub mod types;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::config::DatabaseTarget;
use crate::error::{AppError, AppResult};

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One connection, whichever backend. Queries written against `DbConn` run on
/// both; backend-specific work matches on the variant.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A pooled connection and what the pool knows of its health.
pub struct PoolConn {
    conn: DbConn,
    /// Found dead: the pool discards it when it comes back.
    broken: bool,
    /// The pool's epoch when it was last known alive.
    checked: u64,
}

impl std::ops::Deref for PoolConn {
    type Target = DbConn;
    fn deref(&self) -> &DbConn {
        &self.conn
    }
}

impl std::ops::DerefMut for PoolConn {
    fn deref_mut(&mut self) -> &mut DbConn {
        &mut self.conn
    }
}

fn ping(conn: &mut DbConn) -> bool {
    diesel::sql_query("SELECT 1").execute(conn).is_ok()
}

/// Opens connections for the pool, setting SQLite's per-connection pragmas.
#[derive(Debug, Clone)]
pub struct Manager {
    target: DatabaseTarget,
    busy_timeout_ms: u64,
    epoch: Arc<AtomicU64>,
}

impl ManageConnection for Manager {
    type Connection = PoolConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<PoolConn, r2d2::Error> {
        let checked = self.epoch.load(Ordering::Acquire);
        self.open().map(|conn| PoolConn {
            conn,
            broken: false,
            checked,
        })
    }

    fn is_valid(&self, conn: &mut PoolConn) -> Result<(), r2d2::Error> {
        diesel::sql_query("SELECT 1")
            .execute(&mut conn.conn)
            .map(|_| ())
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut PoolConn) -> bool {
        conn.broken
    }
}

impl Manager {
    fn open(&self) -> Result<DbConn, r2d2::Error> {
        match &self.target {
            DatabaseTarget::Postgres(url) => {
                let mut c = PgConnection::establish(url).map_err(r2d2::Error::ConnectionError)?;
                c.batch_execute("SET TIME ZONE 'UTC'")
                    .map_err(r2d2::Error::QueryError)?;
                Ok(DbConn::Pg(c))
            }
            DatabaseTarget::Sqlite(path) => {
                let url = path.to_string_lossy();
                let mut c =
                    SqliteConnection::establish(&url).map_err(r2d2::Error::ConnectionError)?;
                // WAL lets readers run beside the one writer; the busy timeout
                // makes writers queue instead of failing with "database is
                // locked"; FULL makes each commit durable; foreign keys are
                // off by default in SQLite.
                c.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
                    self.busy_timeout_ms
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConn::Sqlite(c))
            }
        }
    }
}

pub type Pool = r2d2::Pool<Manager>;

/// The database handle shared by every part of the server.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    backend: Backend,
    inner: Arc<DbInfo>,
    commits: tokio::sync::broadcast::Sender<Arc<str>>,
}

thread_local! {
    /// Sections that got events in the transaction open on this thread.
    static TOUCHED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// Sections whose events committed on this thread, not yet announced.
    static COMMITTED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Called by [`events::append`]: the section's room has news once the
/// current transaction commits.
pub(crate) fn touch(section_id: &str) {
    TOUCHED.with(|t| t.borrow_mut().push(section_id.to_string()));
}

fn settle_touched(committed: bool) {
    let touched = TOUCHED.with(|t| std::mem::take(&mut *t.borrow_mut()));
    if committed {
        COMMITTED.with(|c| c.borrow_mut().extend(touched));
    }
}

struct DbInfo {
    max_size: u32,
    /// Bumped whenever a connection is found dead (a database restart, an
    /// administrator ending sessions): every idle connection older than the
    /// current epoch is pinged before its next use, and replaced if dead.
    epoch: Arc<AtomicU64>,
}

impl Db {
    /// Opens the pool (creating the SQLite file's directory if needed).
    pub fn connect(
        target: &DatabaseTarget,
        pool_size: u32,
        busy_timeout_ms: u64,
        connect_timeout: Duration,
    ) -> anyhow::Result<Db> {
        let backend = match target {
            DatabaseTarget::Sqlite(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)?;
                }
                Backend::Sqlite
            }
            DatabaseTarget::Postgres(_) => Backend::Postgres,
        };
        let epoch = Arc::new(AtomicU64::new(0));
        let manager = Manager {
            target: target.clone(),
            busy_timeout_ms,
            epoch: Arc::clone(&epoch),
        };
        // No minimum of idle connections: with one, r2d2 opens a replacement
        // on a background thread whenever the idle one is checked out — and a
        // one-shot command (`kaibiao db status`) that exits while that thread
        // is in libpq's TLS handshake crashes in OpenSSL's exit handlers.
        // Connections are made when needed; the first one, here, checks that
        // the database is reachable.
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(0))
            .connection_timeout(connect_timeout)
            .test_on_check_out(false)
            .build(manager)?;
        drop(pool.get()?);
        Ok(Db {
            pool,
            backend,
            inner: Arc::new(DbInfo {
                max_size: pool_size,
                epoch,
            }),
            commits: tokio::sync::broadcast::channel(1024).0,
        })
    }

    /// The ids of sections whose events committed through this handle, as
    /// they commit (the opening room's local wake-up; other nodes hear of
    /// them through PostgreSQL's NOTIFY).
    pub fn commits(&self) -> tokio::sync::broadcast::Receiver<Arc<str>> {
        self.commits.subscribe()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `f` with a pooled connection on the blocking thread pool. The
    /// connection is taken inside the closure, so a slow database never
    /// blocks an async worker.
    ///
    /// A connection that turns out dead under `f` answers `unavailable`
    /// (503), is discarded, and makes every other idle connection prove
    /// itself alive before its next use — so the requests after a database
    /// restart succeed without restarting kaibiao.
    pub async fn run<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&mut DbConn) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        let commits = self.commits.clone();
        let info = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let r = checkout(&pool, &info).and_then(|mut conn| {
                let r = f(&mut conn.conn);
                if let Err(e) = &r {
                    if e.code.status().is_server_error() && !ping(&mut conn.conn) {
                        conn.broken = true;
                        info.epoch.fetch_add(1, Ordering::AcqRel);
                        tracing::warn!("a database connection was lost; the pool replaces it");
                        return Err(AppError::unavailable(anyhow::anyhow!(
                            "database connection lost"
                        )));
                    }
                }
                r
            });
            let mut committed = COMMITTED.with(|c| std::mem::take(&mut *c.borrow_mut()));
            committed.dedup();
            for section in committed {
                // No receiver yet is fine: nobody is watching.
                let _ = commits.send(section.into());
            }
            r
        })
        .await
        .map_err(|e| AppError::internal(anyhow::anyhow!("database task failed: {e}")))?
    }

    /// Like [`Db::run`], inside a write transaction.
    pub async fn write<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&mut DbConn) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |c| write_tx(c, f)).await
    }

    /// Applies pending migrations; returns the schema version afterwards.
    /// On PostgreSQL an advisory lock keeps several starting nodes in line.
    pub fn migrate(&self) -> anyhow::Result<String> {
        let mut conn = self.pool.get()?;
        migrate_conn(&mut conn)?;
        schema_version(&mut conn)
    }

    pub fn schema_version_blocking(&self) -> anyhow::Result<String> {
        let mut conn = self.pool.get()?;
        schema_version(&mut conn)
    }

    /// Reverts every migration (used by `kaibiao db reset` and the migration test).
    pub fn revert_all(&self) -> anyhow::Result<()> {
        let mut conn = self.pool.get()?;
        let e = |e: Box<dyn std::error::Error + Send + Sync>| anyhow::anyhow!(e);
        match &mut **conn {
            DbConn::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS).map_err(e)?,
            DbConn::Pg(c) => c.revert_all_migrations(POSTGRES_MIGRATIONS).map_err(e)?,
        };
        Ok(())
    }

    /// Connections in the pool: (open, idle, maximum).
    pub fn pool_state(&self) -> (u32, u32, u32) {
        let s = self.pool.state();
        (s.connections, s.idle_connections, self.inner.max_size)
    }

    /// A connection for blocking code that is already off the executor
    /// (the command line, start-up).
    pub fn get_blocking(&self) -> anyhow::Result<r2d2::PooledConnection<Manager>> {
        checkout(&self.pool, &self.inner).map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// A live connection from the pool: one not checked since a connection was
/// last found dead is pinged first, and discarded if it does not answer.
fn checkout(pool: &Pool, info: &DbInfo) -> AppResult<r2d2::PooledConnection<Manager>> {
    for _ in 0..=info.max_size {
        let mut conn = pool.get().map_err(AppError::unavailable)?;
        let epoch = info.epoch.load(Ordering::Acquire);
        if conn.checked >= epoch {
            return Ok(conn);
        }
        if ping(&mut conn.conn) {
            conn.checked = epoch;
            return Ok(conn);
        }
        conn.broken = true;
    }
    Err(AppError::unavailable(anyhow::anyhow!(
        "no live database connection"
    )))
}

fn migrate_conn(conn: &mut DbConn) -> anyhow::Result<()> {
    let e = |e: Box<dyn std::error::Error + Send + Sync>| anyhow::anyhow!(e);
    match conn {
        DbConn::Sqlite(c) => {
            c.run_pending_migrations(SQLITE_MIGRATIONS).map_err(e)?;
        }
        DbConn::Pg(c) => {
            c.batch_execute("SELECT pg_advisory_lock(72015301)")?;
            let r = c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|_| ())
                .map_err(e);
            c.batch_execute("SELECT pg_advisory_unlock(72015301)")?;
            r?;
        }
    }
    Ok(())
}

fn schema_version(conn: &mut DbConn) -> anyhow::Result<String> {
    let e = |e: Box<dyn std::error::Error + Send + Sync>| anyhow::anyhow!(e);
    let applied = match conn {
        DbConn::Sqlite(c) => c.applied_migrations().map_err(e)?,
        DbConn::Pg(c) => c.applied_migrations().map_err(e)?,
    };
    Ok(applied
        .iter()
        .map(|v| v.to_string())
        .max()
        .unwrap_or_else(|| "none".into()))
}

/// Runs `f` in a write transaction: `BEGIN IMMEDIATE` on SQLite (the write
/// lock is taken up front, so a transaction that reads then writes never
/// fails half-way with "database is locked"), an ordinary transaction on
/// PostgreSQL. Any error rolls everything back.
pub fn write_tx<T, F>(conn: &mut DbConn, f: F) -> AppResult<T>
where
    F: FnOnce(&mut DbConn) -> AppResult<T>,
{
    settle_touched(false);
    let r = match conn {
        DbConn::Pg(_) => conn.transaction(|c| f(c)),
        DbConn::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
            match f(conn) {
                Ok(v) => {
                    let DbConn::Sqlite(inner) = conn else {
                        unreachable!("variant fixed above")
                    };
                    AnsiTransactionManager::commit_transaction(inner)?;
                    Ok(v)
                }
                Err(e) => {
                    let DbConn::Sqlite(inner) = conn else {
                        unreachable!("variant fixed above")
                    };
                    if let Err(rb) = AnsiTransactionManager::rollback_transaction(inner) {
                        tracing::error!(error = %rb, "rollback failed");
                    }
                    Err(e)
                }
            }
        }
    };
    settle_touched(r.is_ok());
    r
}

/// True when `e` is a unique-constraint violation (a duplicate insert).
pub fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}
