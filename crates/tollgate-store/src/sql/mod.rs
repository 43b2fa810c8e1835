//! The seam between the store's queries, written once, and the two databases that run them.
//!
//! Queries are built with sqlx's `QueryBuilder`, whose `push_bind` writes each database's own
//! placeholder (`$1`, `?1`), through the small [`Query`] wrapper. What really differs between
//! PostgreSQL and SQLite is the [`Dialect`]: how a value of each of our few column types is
//! bound, how a write transaction starts and a row is locked, how an id list is written, and
//! the upkeep of spend-log partitions. Everything above the seam — which rows, which cascades,
//! which change-feed entries — exists once.

pub(crate) mod postgres;
pub(crate) mod sqlite;

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Database, FromRow, Pool, QueryBuilder, Transaction};

use crate::{Backend, StoreError};

/// A database connection of dialect `D`: a pooled one, or a transaction's.
pub(crate) type Conn<D> = <<D as Dialect>::Db as Database>::Connection;

/// One bound value, in the column types the store uses.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    Real(f64),
    OptReal(Option<f64>),
    Bool(bool),
    Time(DateTime<Utc>),
    OptTime(Option<DateTime<Utc>>),
    Date(NaiveDate),
    Json(&'a Value),
    OptJson(Option<&'a Value>),
    /// A list of strings, stored as a JSON array (a key's `models`).
    JsonList(&'a [String]),
    Bytes(&'a [u8]),
}

macro_rules! params_from {
    ($($t:ty => $variant:ident),* $(,)?) => {
        $(impl<'a> From<$t> for Param<'a> {
            fn from(v: $t) -> Self {
                Param::$variant(v)
            }
        })*
    };
}

params_from! {
    &'a str => Text,
    Option<&'a str> => OptText,
    i64 => Int,
    Option<i64> => OptInt,
    f64 => Real,
    Option<f64> => OptReal,
    bool => Bool,
    DateTime<Utc> => Time,
    Option<DateTime<Utc>> => OptTime,
    NaiveDate => Date,
    &'a Value => Json,
    Option<&'a Value> => OptJson,
    &'a [String] => JsonList,
    &'a [u8] => Bytes,
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(v: &'a String) -> Self {
        Param::Text(v)
    }
}

impl<'a> From<&'a Option<String>> for Param<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Param::OptText(v.as_deref())
    }
}

impl<'a> From<&'a Vec<String>> for Param<'a> {
    fn from(v: &'a Vec<String>) -> Self {
        Param::JsonList(v)
    }
}

impl<'a> From<&'a Option<Value>> for Param<'a> {
    fn from(v: &'a Option<Value>) -> Self {
        Param::OptJson(v.as_ref())
    }
}

impl From<i32> for Param<'_> {
    fn from(v: i32) -> Self {
        Param::Int(i64::from(v))
    }
}

/// A row type both databases decode (sqlx reads every column type used here from either:
/// JSONB or JSON text, TIMESTAMPTZ or RFC 3339 text), so it is declared once.
pub(crate) trait DecodeRow: Sized + Send + Unpin + 'static {
    fn from_pg(row: &PgRow) -> Result<Self, sqlx::Error>;
    fn from_sqlite(row: &SqliteRow) -> Result<Self, sqlx::Error>;
}

impl<T> DecodeRow for T
where
    T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin + 'static,
{
    fn from_pg(row: &PgRow) -> Result<Self, sqlx::Error> {
        T::from_row(row)
    }

    fn from_sqlite(row: &SqliteRow) -> Result<Self, sqlx::Error> {
        T::from_row(row)
    }
}

/// What differs between the databases.
pub(crate) trait Dialect: Send + Sync + std::fmt::Debug + 'static {
    /// The sqlx database.
    type Db: Database;
    /// Which backend this is.
    const BACKEND: Backend;
    /// Most bind parameters one statement may carry.
    const MAX_BINDS: usize;
    /// What follows a `SELECT` that must lock its rows until the transaction ends (nothing
    /// where a write transaction locks the whole database).
    const LOCK_ROWS: &'static str;
    /// What locks the rows a `SELECT` reads against change but not against other readers
    /// (empty where writers are serialised anyway).
    const SHARE_ROWS: &'static str;
    /// `spend_logs.started_at`'s UTC day, as a DATE (PostgreSQL) or `YYYY-MM-DD` text.
    const DAY_OF_STARTED_AT: &'static str;
    /// The conflict target that identifies a stored spend record (partitioned tables must
    /// include their partition key).
    const SPEND_KEY: &'static str;
    /// `ORDER BY` suffix that sorts text by bytes, whatever the database's collation.
    const BYTE_ORDER: &'static str;

    /// Binds one value.
    fn bind<'a>(q: &mut QueryBuilder<'a, Self::Db>, value: Param<'a>);

    /// Writes `column IN (ids)` (or its equivalent) for at most [`Dialect::MAX_BINDS`] ids.
    fn push_in<'a>(q: &mut QueryBuilder<'a, Self::Db>, column: &str, ids: &'a [String]);

    /// Applies pending migrations.
    fn migrate(pool: &Pool<Self::Db>) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Starts a transaction that will write.
    fn begin_write(
        pool: &Pool<Self::Db>,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, StoreError>> + Send;

    /// Serialises change-feed writers until the transaction ends, so sequence order is commit
    /// order (no-op where writers are serialised anyway).
    fn lock_change_feed(
        conn: &mut Conn<Self>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Runs a query, returning its rows. A `persistent` query is prepared once per
    /// connection and its plan may be reused for other values; one that is not is planned
    /// for its values each time it runs.
    fn fetch_all<'c, 'q: 'c, T: DecodeRow>(
        conn: &'c mut Conn<Self>,
        q: QueryBuilder<'q, Self::Db>,
        persistent: bool,
    ) -> impl Future<Output = Result<Vec<T>, sqlx::Error>> + Send + 'c;

    /// Runs a statement, returning how many rows it touched.
    fn execute<'c, 'q: 'c>(
        conn: &'c mut Conn<Self>,
        q: QueryBuilder<'q, Self::Db>,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send + 'c;

    /// Spend-log upkeep: on PostgreSQL, the partitions for `now`'s month and the next.
    fn maintain(
        pool: &Pool<Self::Db>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Drops whole spend-log partitions that end before `cutoff`; how many records they held.
    fn drop_spend_partitions(
        pool: &Pool<Self::Db>,
        cutoff: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Whether a failed transaction may simply be run again (a deadlock victim).
    fn is_retryable(err: &StoreError) -> bool;

    /// Whether text must be cleaned of NUL characters before it is stored.
    const REFUSES_NUL: bool;
}

/// A query being built, for dialect `D`.
pub(crate) struct Query<'a, D: Dialect>(QueryBuilder<'a, D::Db>);

impl<'a, D: Dialect> Query<'a, D> {
    /// A query starting with `sql`.
    pub(crate) fn new(sql: &str) -> Self {
        Self(QueryBuilder::new(sql))
    }

    /// Appends SQL text.
    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.0.push(sql);
        self
    }

    /// Appends a bound value.
    pub(crate) fn bind(&mut self, value: impl Into<Param<'a>>) -> &mut Self {
        D::bind(&mut self.0, value.into());
        self
    }

    /// Appends `sql` then a bound value: `.and(" AND user_id = ", id)`.
    pub(crate) fn and(&mut self, sql: &str, value: impl Into<Param<'a>>) -> &mut Self {
        self.push(sql).bind(value)
    }

    /// Appends `(v, v, ...)`, the values of one row.
    pub(crate) fn values(&mut self, row: impl IntoIterator<Item = Param<'a>>) -> &mut Self {
        self.push("(");
        for (i, v) in row.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(v);
        }
        self.push(")")
    }

    /// Appends `column IN (ids)`.
    pub(crate) fn is_in(&mut self, column: &str, ids: &'a [String]) -> &mut Self {
        D::push_in(&mut self.0, column, ids);
        self
    }

    /// Runs the query, returning its rows.
    pub(crate) async fn all<T: DecodeRow>(self, conn: &mut Conn<D>) -> Result<Vec<T>, sqlx::Error> {
        D::fetch_all(conn, self.0, true).await
    }

    /// Runs the query planned for its values, not with a plan cached for other values:
    /// for a query whose best plan depends on how common a value is (PostgreSQL would
    /// otherwise settle on one generic plan after a few runs).
    pub(crate) async fn all_planned<T: DecodeRow>(
        self,
        conn: &mut Conn<D>,
    ) -> Result<Vec<T>, sqlx::Error> {
        D::fetch_all(conn, self.0, false).await
    }

    /// Runs the query, returning its first row if any.
    pub(crate) async fn optional<T: DecodeRow>(
        self,
        conn: &mut Conn<D>,
    ) -> Result<Option<T>, sqlx::Error> {
        Ok(D::fetch_all(conn, self.0, true).await?.into_iter().next())
    }

    /// Runs the query, which must return a row.
    pub(crate) async fn one<T: DecodeRow>(self, conn: &mut Conn<D>) -> Result<T, sqlx::Error> {
        D::fetch_all(conn, self.0, true).await?.into_iter().next().ok_or(sqlx::Error::RowNotFound)
    }

    /// Runs the statement, returning how many rows it touched.
    pub(crate) async fn execute(self, conn: &mut Conn<D>) -> Result<u64, sqlx::Error> {
        D::execute(conn, self.0).await
    }
}

/// Ids per statement for dialect `D`, leaving `others` binds for the rest of the statement.
pub(crate) fn ids_per_statement<D: Dialect>(others: usize) -> usize {
    (D::MAX_BINDS - others).min(10_000)
}
