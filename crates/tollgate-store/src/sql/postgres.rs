//! PostgreSQL: native timestamps and JSONB, `= ANY($n)` lists, row locks, an advisory lock
//! that orders change-feed writers, and monthly spend-log partitions.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use sqlx::migrate::Migrator;
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, QueryBuilder, Transaction};

use super::{Conn, DecodeRow, Dialect, Param};
use crate::{Backend, StoreError};

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/postgres");

/// Advisory lock that orders change-feed writers ("tollgate" in ASCII).
const CHANGE_FEED_LOCK: i64 = 0x746f_6c6c_6761_7465;

/// The PostgreSQL dialect.
#[derive(Debug)]
pub(crate) struct Pg;

impl Dialect for Pg {
    type Db = Postgres;
    const BACKEND: Backend = Backend::Postgres;
    const MAX_BINDS: usize = 65_535;
    const LOCK_ROWS: &'static str = " FOR UPDATE";
    const SHARE_ROWS: &'static str = " FOR SHARE";
    const DAY_OF_STARTED_AT: &'static str = "CAST(started_at AT TIME ZONE 'UTC' AS DATE)";
    const SPEND_KEY: &'static str = "(request_id, started_at)";
    const BYTE_ORDER: &'static str = " COLLATE \"C\"";
    const REFUSES_NUL: bool = true;

    fn bind<'a>(q: &mut QueryBuilder<'a, Postgres>, value: Param<'a>) {
        match value {
            Param::Text(v) => q.push_bind(v),
            Param::OptText(v) => q.push_bind(v),
            Param::Int(v) => q.push_bind(v),
            Param::OptInt(v) => q.push_bind(v),
            Param::Real(v) => q.push_bind(v),
            Param::OptReal(v) => q.push_bind(v),
            Param::Bool(v) => q.push_bind(v),
            Param::Time(v) => q.push_bind(v),
            Param::OptTime(v) => q.push_bind(v),
            Param::Date(v) => q.push_bind(v),
            Param::Json(v) => q.push_bind(v),
            Param::OptJson(v) => q.push_bind(v),
            Param::JsonList(v) => q.push_bind(Json(v)),
            Param::Bytes(v) => q.push_bind(v),
        };
    }

    fn push_in<'a>(q: &mut QueryBuilder<'a, Postgres>, column: &str, ids: &'a [String]) {
        q.push(column).push(" = ANY(").push_bind(ids).push(")");
    }

    async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
        // sqlx holds an advisory lock while migrating, so concurrent starts are safe.
        MIGRATOR.run(pool).await?;
        // Without this the current month's records would land in the default partition.
        Self::maintain(pool, Utc::now()).await
    }

    async fn begin_write(pool: &PgPool) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(pool.begin().await?)
    }

    async fn lock_change_feed(conn: &mut Conn<Self>) -> Result<(), StoreError> {
        // Sequence numbers are handed out at insert but become visible at commit, so two
        // writers could commit out of order and a reader that already saw the higher seq
        // would never see the lower one. A transaction-scoped lock held to commit makes seq
        // order commit order.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CHANGE_FEED_LOCK)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn fetch_all<'c, 'q: 'c, T: DecodeRow>(
        conn: &'c mut Conn<Self>,
        mut q: QueryBuilder<'q, Postgres>,
        persistent: bool,
    ) -> Result<Vec<T>, sqlx::Error> {
        q.build().persistent(persistent).fetch_all(conn).await?.iter().map(T::from_pg).collect()
    }

    async fn execute<'c, 'q: 'c>(
        conn: &'c mut Conn<Self>,
        mut q: QueryBuilder<'q, Postgres>,
    ) -> Result<u64, sqlx::Error> {
        Ok(q.build().execute(conn).await?.rows_affected())
    }

    async fn maintain(pool: &PgPool, now: DateTime<Utc>) -> Result<(), StoreError> {
        let this_month = NaiveDate::from_ymd_opt(now.year(), now.month(), 1);
        let next_month = this_month.and_then(|m| m.checked_add_months(Months::new(1)));
        let (Some(this_month), Some(next_month)) = (this_month, next_month) else {
            return Err(StoreError::Invalid(format!("no calendar month for {now}")));
        };
        for month in [this_month, next_month] {
            let created: bool = sqlx::query_scalar("SELECT tollgate_ensure_spend_partition($1)")
                .bind(month)
                .fetch_one(pool)
                .await?;
            if created {
                tracing::info!(%month, "created spend_logs partition");
            }
        }
        Ok(())
    }

    async fn drop_spend_partitions(
        pool: &PgPool,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let dropped: i64 = sqlx::query_scalar("SELECT tollgate_drop_spend_partitions_before($1)")
            .bind(cutoff)
            .fetch_one(pool)
            .await?;
        Ok(u64::try_from(dropped).unwrap_or_default())
    }

    fn is_retryable(err: &StoreError) -> bool {
        match err {
            StoreError::Database(e) => e
                .as_database_error()
                .and_then(|db| db.code())
                .is_some_and(|code| code == "40P01" || code == "40001"),
            _ => false,
        }
    }
}
