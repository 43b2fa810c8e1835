//! Opening stores from URLs, and budget periods (backend-independent).

use chrono::Duration;
use tollgate_store::{
    Backend, SpendRecord, StoreError, connect, open, parse_budget_duration, redact_url,
};

use crate::fixtures::{at, key, record};

#[tokio::test]
async fn default_is_a_sqlite_file_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("nested").join("data");
    let store = connect(None, &data_dir).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.migrate().await.unwrap();
    assert!(data_dir.join("tollgate.db").is_file());

    let empty = connect(Some("  "), &data_dir).await.unwrap();
    assert_eq!(empty.backend(), Backend::Sqlite, "an empty URL means the default");
}

#[tokio::test]
async fn sqlite_urls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("x.db");
    let url = format!("sqlite://{}", path.display());
    let store = connect(Some(&url), dir.path()).await.unwrap();
    store.migrate().await.unwrap();
    assert!(path.is_file(), "parent directory created");
}

#[tokio::test]
async fn memory_database_is_one_database() {
    let dir = tempfile::tempdir().unwrap();
    let store = connect(Some("sqlite::memory:"), dir.path()).await.unwrap();
    store.migrate().await.unwrap();
    store.create_key(key("h1")).await.unwrap();
    // Concurrent readers share the single connection, so all see the same data.
    let reads: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.get_key("h1").await })
        })
        .collect();
    for read in reads {
        assert!(read.await.unwrap().unwrap().is_some());
    }
}

/// Two stores on one file behave like two processes: separate pools, one file lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sqlite_stores_share_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let first = connect(None, dir.path()).await.unwrap();
    first.migrate().await.unwrap();
    let second = connect(None, dir.path()).await.unwrap();
    second.migrate().await.unwrap();
    first.create_key(key("k1")).await.unwrap();
    let t0 = at("2026-03-10T00:00:00Z");
    let all: Vec<SpendRecord> = (0..1000)
        .map(|i| SpendRecord { token_hash: Some("k1".into()), ..record(&format!("r{i:04}"), t0) })
        .collect();
    let tasks: Vec<_> = [first.clone(), second.clone(), first.clone(), second]
        .into_iter()
        .enumerate()
        .map(|(n, store)| {
            let mine: Vec<SpendRecord> =
                (0..500).map(|j| all[(n * 250 + j) % 1000].clone()).collect();
            tokio::spawn(async move {
                let mut inserted = 0;
                for chunk in mine.chunks(50) {
                    inserted += store.insert_spend(chunk).await.unwrap();
                }
                inserted
            })
        })
        .collect();
    let mut inserted = 0;
    for task in tasks {
        inserted += task.await.unwrap();
    }
    assert_eq!(inserted, 1000);
    assert_eq!(first.get_key("k1").await.unwrap().unwrap().spend, 500.0);
}

#[tokio::test]
async fn unsupported_urls_name_the_schemes_without_echoing() {
    let dir = tempfile::tempdir().unwrap();
    for url in ["mysql://root:hunter2@db/x", "hunter2", "postgres:hunter2@db"] {
        match connect(Some(url), dir.path()).await {
            Err(StoreError::Invalid(msg)) => {
                assert!(msg.contains("postgres://") && msg.contains("sqlite:"), "{msg}");
                assert!(!msg.contains("hunter2"), "URL echoed: {msg}");
            }
            other => panic!("{url}: expected invalid, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn unreachable_postgres_is_a_database_error() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 refuses connections; the pool gives up after its acquire timeout at most.
    let result = connect(Some("postgres://u:hunter2@127.0.0.1:1/x"), dir.path()).await;
    match result {
        Err(StoreError::Database(e)) => assert!(!e.to_string().contains("hunter2")),
        other => panic!("expected a database error, got {other:?}"),
    }
}

#[tokio::test]
async fn open_does_not_wait_for_a_postgres_server() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let store = open(Some("postgres://u:hunter2@127.0.0.1:1/x"), dir.path()).await.unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(store.backend(), Backend::Postgres);
    match open(Some("mysql://root@db/x"), dir.path()).await {
        Err(StoreError::Invalid(_)) => {}
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn redaction_hides_passwords() {
    assert_eq!(redact_url("postgres://app:hunter2@db:5432/gw"), "postgres://app:***@db:5432/gw");
    assert_eq!(redact_url("postgres://db/gw?password=hunter2"), "postgres://db/gw?password=***");
    assert_eq!(redact_url("sqlite://data/tollgate.db"), "sqlite://data/tollgate.db");
}

#[test]
fn budget_periods() {
    assert_eq!(parse_budget_duration("30s").unwrap(), Duration::seconds(30));
    assert_eq!(parse_budget_duration("30m").unwrap(), Duration::minutes(30));
    assert_eq!(parse_budget_duration("24h").unwrap(), Duration::hours(24));
    assert_eq!(parse_budget_duration("30d").unwrap(), Duration::days(30));
    assert_eq!(parse_budget_duration("1w").unwrap(), Duration::days(7));
    for bad in ["", "30", "0d", "-5m", "1.5h", "30x", "1mo", "d30"] {
        match parse_budget_duration(bad) {
            Err(StoreError::Invalid(msg)) => assert!(msg.contains("budget duration"), "{msg}"),
            other => panic!("{bad:?}: expected invalid, got {other:?}"),
        }
    }
}
