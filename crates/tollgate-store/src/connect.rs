//! Opening a store from the configured database URL.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::queries::SqlStore;
use crate::sql::postgres::Pg;
use crate::sql::sqlite::Lite;
use crate::{Store, StoreError};

/// File name of the embedded database inside the data directory.
pub const SQLITE_FILE_NAME: &str = "tollgate.db";

const ACCEPTED: &str = "expected a URL starting with postgres://, postgresql:// or sqlite: \
                        (e.g. sqlite://tollgate.db or sqlite::memory:)";

/// Opens the store. `None` (or an empty URL) means the embedded SQLite file
/// `data_dir/tollgate.db`, created with its directory when missing. `sqlite:` URLs (including
/// `sqlite::memory:`) and `postgres://` / `postgresql://` URLs are accepted.
///
/// Does not migrate: call [`StoreApi::migrate`](crate::StoreApi::migrate) next.
///
/// # Errors
///
/// [`StoreError::Invalid`] for an unsupported or malformed URL (the message never repeats the
/// URL, which may hold a password), [`StoreError::Database`] when the database cannot be
/// reached or opened.
pub async fn connect(database_url: Option<&str>, data_dir: &Path) -> Result<Store, StoreError> {
    let store = open(database_url, data_dir).await?;
    store.ping().await?;
    Ok(store)
}

/// Like [`connect`], without waiting for a database server: PostgreSQL connections are made
/// when first needed, so the store exists (and every call fails with
/// [`StoreError::Database`]) while the server is down, and works as soon as it answers. An
/// SQLite file is opened at once.
///
/// # Errors
///
/// [`StoreError::Invalid`] for an unsupported or malformed URL, [`StoreError::Database`] when
/// an SQLite file cannot be opened.
pub async fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Store, StoreError> {
    let url = database_url.map(str::trim).unwrap_or_default();
    if url.is_empty() {
        tokio::fs::create_dir_all(data_dir).await.map_err(|e| {
            StoreError::Invalid(format!("cannot create data directory {}: {e}", data_dir.display()))
        })?;
        let options = SqliteConnectOptions::new().filename(data_dir.join(SQLITE_FILE_NAME));
        return open_sqlite_file(options).await;
    }
    let scheme = url.split(':').next().unwrap_or_default().to_ascii_lowercase();
    match scheme.as_str() {
        "sqlite" => {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Invalid(format!("malformed sqlite: URL: {e}")))?;
            if is_memory_url(url) {
                open_sqlite_memory(options).await
            } else {
                open_sqlite_file(options).await
            }
        }
        "postgres" | "postgresql" if url[scheme.len()..].starts_with("://") => {
            // The parser's messages describe the fault without quoting the URL.
            let options = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::Invalid(format!("malformed PostgreSQL URL: {e}")))?;
            let pool = PgPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(Duration::from_secs(5))
                .connect_lazy_with(options);
            Ok(Arc::new(SqlStore::<Pg>::new(pool)))
        }
        _ => Err(StoreError::Invalid(format!("unsupported database URL: {ACCEPTED}"))),
    }
}

fn is_memory_url(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// A file database: WAL so readers never block the writer, NORMAL sync (safe with WAL; a
/// power cut may lose the last commits, never corrupt), and a busy timeout so concurrent
/// writers — other processes included — wait their turn instead of failing.
async fn open_sqlite_file(options: SqliteConnectOptions) -> Result<Store, StoreError> {
    if let Some(dir) = options.get_filename().parent()
        && !dir.as_os_str().is_empty()
    {
        tokio::fs::create_dir_all(dir).await.map_err(|e| {
            StoreError::Invalid(format!("cannot create directory {}: {e}", dir.display()))
        })?;
    }
    let options = options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
    Ok(Arc::new(SqlStore::<Lite>::new(pool)))
}

/// An in-memory database lives and dies with its connection, so the pool holds exactly one
/// and never retires it: every query then sees the same database.
async fn open_sqlite_memory(options: SqliteConnectOptions) -> Result<Store, StoreError> {
    let options = options.busy_timeout(Duration::from_secs(5)).foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options)
        .await?;
    Ok(Arc::new(SqlStore::<Lite>::new(pool)))
}

/// The URL with any password replaced by `***`, for logs: both the `user:password@` part and
/// `password=` query parameters. When in doubt it hides more (a password may hold unescaped
/// `/`, `?` or `@`, so the user info ends at the last `@`).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // `sqlite::memory:` and `sqlite:path` carry no credentials; anything else without a
        // `scheme://` is not a URL we understand, so none of it is shown.
        return if url.starts_with("sqlite:") { url.to_owned() } else { "***".to_owned() };
    };
    match rest.rsplit_once('@') {
        Some((userinfo, tail)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{}", redact_query(tail))
        }
        None => format!("{scheme}://{}", redact_query(rest)),
    }
}

fn redact_query(s: &str) -> String {
    let Some((head, query)) = s.split_once('?') else {
        return s.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=***"),
            _ => param.to_owned(),
        })
        .collect();
    format!("{head}?{}", params.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://app:s3cr%40t@db.internal:5432/tollgate"),
            "postgres://app:***@db.internal:5432/tollgate"
        );
        assert_eq!(
            redact_url("postgresql://app:p@ss@db/x?sslmode=require&password=hunter2"),
            "postgresql://app:***@db/x?sslmode=require&password=***"
        );
        assert_eq!(redact_url("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(redact_url("postgres://app:a/b?c@db/x"), "postgres://app:***@db/x");
        assert_eq!(redact_url("host=db password=x"), "***");
        assert_eq!(redact_url("sqlite://data/tollgate.db"), "sqlite://data/tollgate.db");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
    }
}
