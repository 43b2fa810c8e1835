//! SQLite: timestamps as fixed-width UTC text, JSON as text, `IN (?, ...)` lists, and write
//! transactions that take the database's write lock up front (one writer at a time, so rows
//! need no locks of their own and the change feed is ordered already). No partitions.

use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::sqlite::Sqlite;
use sqlx::types::Json;
use sqlx::{QueryBuilder, SqlitePool, Transaction};

use super::{Conn, DecodeRow, Dialect, Param};
use crate::{Backend, StoreError};

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/sqlite");

/// The SQLite dialect.
#[derive(Debug)]
pub(crate) struct Lite;

/// How timestamps are stored: UTC, microseconds, fixed width, so text order is time order.
fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

impl Dialect for Lite {
    type Db = Sqlite;
    const BACKEND: Backend = Backend::Sqlite;
    // SQLite's limit since 3.32.
    const MAX_BINDS: usize = 32_766;
    const LOCK_ROWS: &'static str = "";
    const SHARE_ROWS: &'static str = "";
    const DAY_OF_STARTED_AT: &'static str = "date(started_at)";
    const SPEND_KEY: &'static str = "(request_id)";
    // SQLite compares text by bytes unless told otherwise.
    const BYTE_ORDER: &'static str = "";
    const REFUSES_NUL: bool = false;

    fn bind<'a>(q: &mut QueryBuilder<'a, Sqlite>, value: Param<'a>) {
        match value {
            Param::Text(v) => q.push_bind(v),
            Param::OptText(v) => q.push_bind(v),
            Param::Int(v) => q.push_bind(v),
            Param::OptInt(v) => q.push_bind(v),
            Param::Real(v) => q.push_bind(v),
            Param::OptReal(v) => q.push_bind(v),
            Param::Bool(v) => q.push_bind(v),
            Param::Time(v) => q.push_bind(ts(v)),
            Param::OptTime(v) => q.push_bind(v.map(ts)),
            // `YYYY-MM-DD` text, which sorts as dates do.
            Param::Date(v) => q.push_bind(v),
            Param::Json(v) => q.push_bind(Json(v)),
            Param::OptJson(v) => q.push_bind(v.map(Json)),
            Param::JsonList(v) => q.push_bind(Json(v)),
            Param::Bytes(v) => q.push_bind(v),
        };
    }

    fn push_in<'a>(q: &mut QueryBuilder<'a, Sqlite>, column: &str, ids: &'a [String]) {
        q.push(column).push(" IN (");
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(id.as_str());
        }
        list.push_unseparated(")");
    }

    async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
        // SQLite has no migration lock: two processes starting at once may both try to apply
        // the same migration, and the loser fails. A second pass then finds it applied.
        if let Err(e) = MIGRATOR.run(pool).await {
            tracing::debug!(error = %e, "migration failed; checking whether another process applied it");
            MIGRATOR.run(pool).await?;
        }
        Ok(())
    }

    /// `BEGIN IMMEDIATE` takes the write lock up front, waiting up to the busy timeout for
    /// other writers (other processes included); a plain `BEGIN` that reads first and writes
    /// later can fail at once with "database is locked" instead of waiting.
    async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn lock_change_feed(_conn: &mut Conn<Self>) -> Result<(), StoreError> {
        Ok(())
    }

    async fn fetch_all<'c, 'q: 'c, T: DecodeRow>(
        conn: &'c mut Conn<Self>,
        mut q: QueryBuilder<'q, Sqlite>,
        persistent: bool,
    ) -> Result<Vec<T>, sqlx::Error> {
        q.build().persistent(persistent).fetch_all(conn).await?.iter().map(T::from_sqlite).collect()
    }

    async fn execute<'c, 'q: 'c>(
        conn: &'c mut Conn<Self>,
        mut q: QueryBuilder<'q, Sqlite>,
    ) -> Result<u64, sqlx::Error> {
        Ok(q.build().execute(conn).await?.rows_affected())
    }

    async fn maintain(_pool: &SqlitePool, _now: DateTime<Utc>) -> Result<(), StoreError> {
        Ok(())
    }

    async fn drop_spend_partitions(
        _pool: &SqlitePool,
        _cutoff: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(0)
    }

    fn is_retryable(_err: &StoreError) -> bool {
        // Writers wait for each other (the busy timeout) instead of deadlocking.
        false
    }
}
