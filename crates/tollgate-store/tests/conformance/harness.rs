//! Fresh databases per test, and the macro that runs one test body on both backends.

use std::future::Future;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Connection, PgConnection, PgPool, SqlitePool};
use tollgate_store::{Backend, Store, connect, redact_url};

/// Runs a test body against a fresh SQLite file and a fresh PostgreSQL database:
/// `backend_tests!(name, async |store| { ... })` defines `name::sqlite` and `name::postgres`.
/// Add a second parameter (`async |store, db| ...`) for raw SQL access to the same database.
macro_rules! backend_tests {
    ($name:ident, async |$store:ident| $body:block) => {
        backend_tests!($name, async |$store, _db| $body);
    };
    ($name:ident, async |$store:ident, $db:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                crate::harness::run_sqlite(|$store, $db| async move $body).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                crate::harness::run_postgres(|$store, $db| async move $body).await
            }
        }
    };
}
pub(crate) use backend_tests;

/// Direct access to the database behind a test's store, for checks and set-ups the API does
/// not offer (catalog queries, corrupt rows).
#[derive(Debug, Clone)]
pub enum RawDb {
    /// The SQLite file.
    Sqlite(SqlitePool),
    /// The PostgreSQL database.
    Postgres(PgPool),
}

impl RawDb {
    /// Which backend.
    pub fn backend(&self) -> Backend {
        match self {
            RawDb::Sqlite(_) => Backend::Sqlite,
            RawDb::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs a statement.
    pub async fn execute(&self, sql: &str) {
        match self {
            RawDb::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
            RawDb::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Runs a script of several statements (as one implicit transaction on PostgreSQL).
    pub async fn execute_script(&self, sql: &str) {
        match self {
            RawDb::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
            RawDb::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Runs a query returning one integer.
    pub async fn scalar(&self, sql: &str) -> i64 {
        match self {
            RawDb::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            RawDb::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// Awaits the test body on its own task so a panic can be caught, cleans up, then re-raises.
async fn run_body<F, Fut>(store: Store, raw: RawDb, test: F) -> Result<(), String>
where
    F: FnOnce(Store, RawDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    match tokio::spawn(test(store, raw)).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(e.to_string()),
    }
}

/// A fresh SQLite file in a temporary directory, opened the way the gateway opens it.
pub async fn run_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Store, RawDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let store = connect(None, dir.path()).await.expect("open sqlite store");
    store.migrate().await.expect("migrate sqlite");
    let raw = SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(dir.path().join(tollgate_store::SQLITE_FILE_NAME))
                .busy_timeout(Duration::from_secs(5)),
        )
        .await
        .expect("open raw sqlite pool");
    let result = run_body(store, RawDb::Sqlite(raw.clone()), test).await;
    raw.close().await;
    drop(dir);
    result.expect("test task failed");
}

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn admin_url() -> String {
    std::env::var("TOLLGATE_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

async fn admin_connection(url: &str) -> PgConnection {
    let options = PgConnectOptions::from_str(url)
        .unwrap_or_else(|e| panic!("TOLLGATE_TEST_DATABASE_URL is not a PostgreSQL URL: {e}"));
    match tokio::time::timeout(Duration::from_secs(10), PgConnection::connect_with(&options)).await
    {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!("{}", unreachable_message(url, &e.to_string())),
        Err(_) => panic!("{}", unreachable_message(url, "timed out after 10 s")),
    }
}

fn unreachable_message(url: &str, error: &str) -> String {
    format!(
        "PostgreSQL is not reachable at {} ({error}). The postgres conformance tests need a \
         server where they may create and drop databases: start one (e.g. `docker run -d -p \
         5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16`) or set \
         TOLLGATE_TEST_DATABASE_URL to an admin URL such as {DEFAULT_ADMIN_URL}.",
        redact_url(url)
    )
}

/// A unique database name; no randomness crate needed.
fn database_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = (std::process::id(), SystemTime::now(), COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("tollgate_t_{:016x}", std::hash::RandomState::new().hash_one(seed))
}

/// The admin URL pointed at another database (query string kept).
fn with_database(url: &str, name: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = head.find("://").map_or(0, |i| i + 3);
    let base = match head[authority_start..].find('/') {
        Some(i) => &head[..authority_start + i],
        None => head,
    };
    format!("{base}/{name}{query}")
}

/// A fresh PostgreSQL database, created for this test and dropped afterwards.
pub async fn run_postgres<F, Fut>(test: F)
where
    F: FnOnce(Store, RawDb) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin = admin_url();
    let name = database_name();
    let mut conn = admin_connection(&admin).await;
    // The name is generated hex, not input; CREATE DATABASE cannot take a bind parameter.
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    conn.close().await.ok();

    let url = with_database(&admin, &name);
    let outcome = async move {
        let store = connect(Some(&url), &PathBuf::from("unused")).await.expect("open pg store");
        store.migrate().await.expect("migrate postgres");
        let raw =
            PgPoolOptions::new().max_connections(2).connect(&url).await.expect("open raw pg pool");
        let result = run_body(store, RawDb::Postgres(raw.clone()), test).await;
        raw.close().await;
        result
    };
    // Drop the database even when the body panicked.
    let result = tokio::spawn(outcome).await;
    let mut conn = admin_connection(&admin).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .expect("drop test database");
    conn.close().await.ok();
    match result {
        Ok(result) => result.expect("test task failed"),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("test task failed: {e}"),
    }
}

#[test]
fn database_url_is_rewritten() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
        "postgres://postgres@127.0.0.1:5432/t1"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "t2"),
        "postgres://u:p@h/t2?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "t3"), "postgres://h/t3");
}
