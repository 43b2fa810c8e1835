//! The spend writer against an in-memory fake store that can fail, refuse records or block.

// Tests may unwrap and panic: a failed expectation should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;
use tollgate_store::{
    OVERFLOW_FILE_NAME, OnWritten, REJECTED_FILE_NAME, SpendRecord, SpendStore, SpendWriter,
    StoreError, WriterConfig, WriterStore, read_spool_file, spool_files,
};

/// A store that keeps spend records by request id, like the real ones.
#[derive(Debug)]
struct FakeStore {
    rows: Mutex<HashMap<String, SpendRecord>>,
    /// Sizes of the successful insert calls.
    calls: Mutex<Vec<usize>>,
    /// Records inserted a second time.
    duplicates: AtomicU64,
    /// Database down: inserts and pings fail.
    failing: AtomicBool,
    /// Database up but refusing every insert (read-only).
    read_only: AtomicBool,
    /// Inserts wait until this is true.
    gate: watch::Sender<bool>,
}

impl FakeStore {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            rows: Mutex::default(),
            calls: Mutex::default(),
            duplicates: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            read_only: AtomicBool::new(false),
            gate: watch::Sender::new(true),
        })
    }

    fn count(&self) -> usize {
        self.rows.lock().unwrap().len()
    }

    fn ids(&self) -> HashSet<String> {
        self.rows.lock().unwrap().keys().cloned().collect()
    }

    fn calls(&self) -> Vec<usize> {
        self.calls.lock().unwrap().clone()
    }

    fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

#[async_trait]
impl SpendStore for FakeStore {
    async fn ping(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Invalid("database down".into()));
        }
        Ok(())
    }
    async fn insert_spend(&self, records: &[SpendRecord]) -> Result<u64, StoreError> {
        self.gate.subscribe().wait_for(|open| *open).await.unwrap();
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Invalid("database down".into()));
        }
        if self.read_only.load(Ordering::SeqCst) {
            return Err(StoreError::Invalid("read-only transaction".into()));
        }
        // One bad record fails the whole transaction, like a constraint violation would.
        if let Some(bad) = records.iter().find(|r| r.request_id.starts_with("poison")) {
            return Err(StoreError::Invalid(format!("refused {}", bad.request_id)));
        }
        let mut rows = self.rows.lock().unwrap();
        let mut new = 0;
        for record in records {
            if rows.insert(record.request_id.clone(), record.clone()).is_some() {
                self.duplicates.fetch_add(1, Ordering::SeqCst);
            } else {
                new += 1;
            }
        }
        // Still under the rows lock, so a caller that sees the rows sees the call.
        self.calls.lock().unwrap().push(records.len());
        Ok(new)
    }
}

fn spend(id: impl Into<String>) -> SpendRecord {
    let now = Utc::now();
    SpendRecord {
        request_id: id.into(),
        client_request_id: None,
        started_at: now,
        ended_at: now,
        token_hash: Some("hash".into()),
        user_id: Some("user".into()),
        team_id: None,
        api: "chat_completions".into(),
        requested_model: "gpt-4o".into(),
        model_group: "gpt-4o".into(),
        served_model: "openai/gpt-4o".into(),
        provider: "openai".into(),
        prompt_tokens: 10,
        completion_tokens: 20,
        cached_tokens: 0,
        cost: 0.001,
        premium_units: 0.0,
        latency_ms: 12.5,
        ttft_ms: Some(3.0),
        status: 200,
        outcome: "success".into(),
        attempts: json!([{"deployment": "openai/gpt-4o", "status": 200}]),
        stream: false,
        request_body: None,
        response_body: None,
    }
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Fast settings for tests.
fn config(dir: &Path) -> WriterConfig {
    WriterConfig {
        flush_interval: Duration::from_millis(20),
        retry_min: Duration::from_millis(5),
        retry_max: Duration::from_millis(40),
        insert_timeout: Duration::from_secs(2),
        ..WriterConfig::new(dir)
    }
}

fn start(store: &Arc<FakeStore>, config: WriterConfig) -> SpendWriter {
    let store: WriterStore = store.clone();
    SpendWriter::start(store, config).unwrap()
}

/// Waits until `cond` holds, for at most 5 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every record in the spool files of `dir`.
fn spooled(dir: &Path) -> Vec<SpendRecord> {
    spool_files(dir).unwrap().iter().flat_map(|f| read_spool_file(f).unwrap()).collect()
}

/// Collects what `on_written` reports.
fn collector() -> (OnWritten, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let hook: OnWritten = Arc::new(move |records: &[SpendRecord]| {
        let mut sink = sink.lock().unwrap();
        sink.extend(records.iter().map(|r| r.request_id.clone()));
    });
    (hook, seen)
}

#[tokio::test]
async fn batches_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let store = FakeStore::new();
    let writer = start(
        &store,
        WriterConfig { flush_interval: Duration::from_secs(30), ..config(dir.path()) },
    );
    for id in ids("size", 1000) {
        writer.record(spend(id));
    }
    eventually("two full batches", || store.count() == 1000).await;
    assert_eq!(store.calls(), vec![500, 500]);
    let report = writer.shutdown(Duration::from_secs(1)).await;
    assert_eq!((report.received, report.written, report.spooled), (1000, 1000, 0));
    assert!(!report.timed_out);
}

#[tokio::test]
async fn batches_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = FakeStore::new();
    let interval = Duration::from_millis(100);
    let writer = start(&store, WriterConfig { flush_interval: interval, ..config(dir.path()) });
    let started = Instant::now();
    for id in ids("time", 3) {
        writer.record(spend(id));
    }
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(store.calls().is_empty(), "flushed before the interval");
    eventually("the timed flush", || store.count() == 3).await;
    assert!(started.elapsed() >= interval - Duration::from_millis(5));
    assert_eq!(store.calls(), vec![3]);
    writer.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_producers_deliver_each_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = FakeStore::new();
    let writer = start(&store, config(dir.path()));
    let producers: Vec<_> = (0..16)
        .map(|p| {
            let writer = writer.clone();
            tokio::spawn(async move {
                for (i, id) in ids(&format!("p{p}"), 625).into_iter().enumerate() {
                    writer.record(spend(id));
                    if i % 100 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for producer in producers {
        producer.await.unwrap();
    }
    eventually("10,000 records", || writer.stats().written == 10_000).await;
    assert_eq!(store.count(), 10_000);
    assert_eq!(store.duplicates.load(Ordering::SeqCst), 0);
    assert!(store.calls().iter().all(|&n| n <= 500));
    let stats = writer.stats();
    assert_eq!((stats.received, stats.written, stats.failed_attempts), (10_000, 10_000, 0));
    let report = writer.shutdown(Duration::from_secs(1)).await;
    assert_eq!((report.received, report.written, report.spooled), (10_000, 10_000, 0));
}

#[tokio::test]
async fn outage_then_recovery_writes_and_acknowledges_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = FakeStore::new();
    let (hook, acked) = collector();
    let writer = start(
        &store,
        WriterConfig { batch_size: 100, on_written: Some(hook), ..config(dir.path()) },
    );
    let all = ids("outage", 1000);
    for id in &all[..200] {
        writer.record(spend(id));
    }
    eventually("the first records", || store.count() == 200).await;

    store.set_failing(true);
    for chunk in all[200..800].chunks(100) {
        for id in chunk {
            writer.record(spend(id));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eventually("retries", || {
        let stats = writer.stats();
        stats.failed_attempts >= 3 && stats.in_memory_pending + stats.spool_pending == 600
    })
    .await;
    let stats = writer.stats();
    assert!(!stats.database_ok);
    assert_eq!(stats.written, 200);

    store.set_failing(false);
    for id in &all[800..] {
        writer.record(spend(id));
    }
    eventually("every record", || acked.lock().unwrap().len() >= 1000).await;
    assert_eq!(store.ids(), all.iter().cloned().collect());
    assert_eq!(store.duplicates.load(Ordering::SeqCst), 0);

    let mut acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 1000, "each record acknowledged once");
    acked.sort();
    let mut expected = all.clone();
    expected.sort();
    assert_eq!(acked, expected);

    let stats = writer.stats();
    assert!(stats.database_ok);
    assert_eq!((stats.written, stats.in_memory_pending), (1000, 0));
    let report = writer.shutdown(Duration::from_secs(1)).await;
    assert_eq!((report.received, report.written, report.spooled), (1000, 1000, 0));
}

#[tokio::test]
async fn memory_limit_spills_to_disk_and_replays_after_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let store = FakeStore::new();
    store.set_failing(true);
    let (hook, acked) = collector();
    let writer = start(
        &store,
        WriterConfig {
            batch_size: 50,
            memory_limit: 100,
            on_written: Some(hook),
            ..config(dir.path())
        },
    );
    let all = ids("spill", 1000);
    for id in &all {
        writer.record(spend(id));
    }
    // Memory never holds more than the limit once the writer has looked at what it took
    // from the queue, and during an outage nothing stays in memory past a flush interval.
    eventually("all received, memory under the limit", || {
        let stats = writer.stats();
        stats.received == 1000 && stats.in_memory_pending <= 100
    })
    .await;
    eventually("everything on disk", || writer.stats().spool_pending == 1000).await;
    let stats = writer.stats();
    assert_eq!(stats.in_memory_pending, 0);
    let on_disk = spooled(dir.path());
    assert_eq!(on_disk.len() as u64, stats.spool_pending);
    assert!(spool_files(dir.path()).unwrap().len() >= 2);

    store.set_failing(false);
    eventually("every record", || acked.lock().unwrap().len() >= 1000).await;
    eventually("spool files deleted", || spool_files(dir.path()).unwrap().is_empty()).await;
    assert_eq!(store.ids(), all.iter().cloned().collect());
    assert_eq!(store.duplicates.load(Ordering::SeqCst), 0);
    assert_eq!(acked.lock().unwrap().len(), 1000);
    let stats = writer.stats();
    assert_eq!((stats.written, stats.spool_pending, stats.in_memory_pending), (1000, 0, 0));
    assert!(stats.spooled_total >= 900);
    let report = writer.shutdown(Duration::from_secs(1)).await;
    assert_eq!((report.received, report.written, report.spooled), (1000, 1000, 0));
}

#[tokio::test]
async fn shutdown_during_outage_spools_everything_for_the_next_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = FakeStore::new();
    store.set_failing(true);
    let writer = start(&store, config(dir.path()));
    let all = ids("down", 300);
    for id in &all {
        writer.record(spend(id));
    }
    let started = Instant::now();
    let report = writer.shutdown(Duration::from_millis(100)).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(report.received, 300);
    assert_eq!((report.written, report.spooled, report.lost), (0, 300, 0));
    assert!(report.timed_out);
    // Calling again, from any handle, gives the same answer.
    assert_eq!(writer.clone().shutdown(Duration::ZERO).await, report);

    // Recorded after shutdown: straight to the overflow file.
    let late = ids("late", 10);
    for id in &late {
        writer.record(spend(id));
    }
    assert!(dir.path().join(OVERFLOW_FILE_NAME).exists());
    assert_eq!(writer.stats().overflowed, 10);
    let on_disk: HashSet<String> = spooled(dir.path()).into_iter().map(|r| r.request_id).collect();
    assert_eq!(on_disk.len(), 310);

    store.set_failing(false);
    let (hook, acked) = collector();
    let next = start(&store, WriterConfig { on_written: Some(hook), ..config(dir.path()) });
    eventually("the replay", || acked.lock().unwrap().len() >= 310).await;
    eventually("spool files deleted", || spool_files(dir.path()).unwrap().is_empty()).await;
    assert_eq!(store.ids(), on_disk);
    assert_eq!(acked.lock().unwrap().len(), 310);
    let report = next.shutdown(Duration::from_secs(1)).await;
    assert_eq!((report.received, report.replayed_previous), (0, 310));
}

#[tokio::test]
async fn full_queue_overflows_to_a_file_that_is_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let store = FakeStore::new();
    store.gate.send_replace(false);
    let writer = start(&store, WriterConfig { queue_capacity: 1, ..config(dir.path()) });
    // A current-thread runtime: the writer task cannot run between these calls, so the
    // queue holds one record and the rest overflow.
    let all = ids("overflow", 100);
    for id in &all[..50] {
        writer.record(spend(id));
    }
    assert_eq!(writer.stats().overflowed, 49);
    assert_eq!(read_spool_file(&dir.path().join(OVERFLOW_FILE_NAME)).unwrap().len(), 49);

    // With an insert stuck in the database, the task still empties the queue.
    eventually("a blocked insert", || writer.stats().received == 50).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    for id in &all[50..] {
        writer.record(spend(id));
    }
    assert_eq!(writer.stats().overflowed, 98);

    store.gate.send_replace(true);
    eventually("every record", || store.count() == 100).await;
    eventually("overflow replayed and deleted", || spool_files(dir.path()).unwrap().is_empty())
        .await;
    assert_eq!(store.ids(), all.iter().cloned().collect());
    let report = writer.shutdown(Duration::from_secs(1)).await;
    assert_eq!((report.received, report.written, report.spooled), (100, 100, 0));
}

#[tokio::test]
async fn a_refused_record_is_set_aside_and_the_rest_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = FakeStore::new();
    let writer = start(&store, WriterConfig { batch_size: 64, ..config(dir.path()) });
    let mut all = ids("good", 200);
    all[77] = "poison-1".into();
    for id in &all {
        writer.record(spend(id));
    }
    eventually("the good records", || store.count() == 199).await;
    eventually("the rejection", || writer.stats().rejected == 1).await;
    let rejected = read_spool_file(&dir.path().join(REJECTED_FILE_NAME)).unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].request_id, "poison-1");
    let report = writer.shutdown(Duration::from_secs(1)).await;
    assert_eq!(
        (report.received, report.written, report.rejected, report.spooled),
        (200, 199, 1, 0)
    );
}

#[tokio::test]
async fn a_database_refusing_every_write_is_an_outage_not_a_rejection() {
    let dir = tempfile::tempdir().unwrap();
    let store = FakeStore::new();
    store.read_only.store(true, Ordering::SeqCst);
    let writer = start(&store, config(dir.path()));
    for id in ids("ro", 100) {
        writer.record(spend(id));
    }
    eventually("many attempts", || writer.stats().failed_attempts >= 12).await;
    let stats = writer.stats();
    // Kept, and on disk: a batch that cannot be written is spooled at once.
    assert_eq!((stats.rejected, stats.in_memory_pending, stats.spool_pending), (0, 0, 100));
    assert!(!stats.database_ok);

    store.read_only.store(false, Ordering::SeqCst);
    eventually("every record", || store.count() == 100).await;
    let report = writer.shutdown(Duration::from_secs(1)).await;
    assert_eq!((report.written, report.rejected), (100, 0));
}

#[tokio::test]
async fn unparseable_spool_lines_are_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for id in ["old-1", "old-2"] {
        text.push_str(&serde_json::to_string(&spend(id)).unwrap());
        text.push('\n');
    }
    text.push_str("{\"request_id\": \"torn\n\n");
    let file = dir.path().join("spend-0000000000001-earlier-000001.jsonl");
    std::fs::write(&file, text).unwrap();

    let store = FakeStore::new();
    let writer = start(&store, config(dir.path()));
    eventually("the replay", || store.count() == 2).await;
    eventually("file deleted", || !file.exists()).await;
    let rejected = std::fs::read_to_string(dir.path().join(REJECTED_FILE_NAME)).unwrap();
    assert!(rejected.contains("\"torn"));
    let report = writer.shutdown(Duration::from_secs(1)).await;
    assert_eq!((report.received, report.replayed_previous), (0, 2));
}

#[tokio::test]
async fn dropping_every_handle_still_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let store = FakeStore::new();
    let writer = start(
        &store,
        WriterConfig { flush_interval: Duration::from_secs(30), ..config(dir.path()) },
    );
    for id in ids("dropped", 10) {
        writer.record(spend(id));
    }
    drop(writer);
    eventually("the final flush", || store.count() == 10).await;
}

#[tokio::test]
async fn recovers_without_new_traffic_when_everything_was_spilled() {
    let dir = tempfile::tempdir().unwrap();
    let store = FakeStore::new();
    store.set_failing(true);
    let writer = start(&store, WriterConfig { memory_limit: 1, ..config(dir.path()) });
    let all = ids("idle", 10);
    // A live batch fails first, then memory is spilled: nothing live is left to retry.
    writer.record(spend(&all[0]));
    eventually("a failed insert", || writer.stats().failed_attempts >= 1).await;
    for id in &all[1..] {
        writer.record(spend(id));
    }
    eventually("everything on disk", || writer.stats().spool_pending == 10).await;
    store.set_failing(false);
    eventually("the replay", || writer.stats().written == 10).await;
    assert_eq!(store.count(), 10);
    eventually("spool files deleted", || spool_files(dir.path()).unwrap().is_empty()).await;
    writer.shutdown(Duration::from_secs(1)).await;
}

/// Runs `body` with a writer on a runtime of its own, then kills that runtime where it stands,
/// as `kill -9` would: no shutdown, no final flush.
fn crash_after<F>(store: &Arc<FakeStore>, config: WriterConfig, body: impl FnOnce(SpendWriter) -> F)
where
    F: std::future::Future<Output = ()>,
{
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let writer = runtime.block_on(async { start(store, config) });
    let handle = writer.clone();
    runtime.block_on(body(handle));
    runtime.shutdown_background();
    drop(writer);
}

/// Checks the writer's books: every record it took is in exactly one place.
fn balanced(stats: &tollgate_store::WriterStats) -> bool {
    stats.received
        == stats.written
            + stats.in_memory_pending
            + stats.spool_pending
            + stats.rejected
            + stats.lost
}

#[test]
fn a_crash_during_an_outage_loses_nothing_older_than_a_flush_interval() {
    let dir = tempfile::tempdir().unwrap();
    let store = FakeStore::new();
    store.set_failing(true);
    let interval = Duration::from_millis(50);
    let config = WriterConfig { flush_interval: interval, ..config(dir.path()) };
    let early = ids("early", 300);
    let sent = early.clone();
    crash_after(&store, config.clone(), |writer| async move {
        let early = sent;
        for id in &early[..100] {
            writer.record(spend(id));
        }
        // The first batch fails after one interval and goes to disk at once; later records
        // go to disk as they come due, while the database is still down.
        tokio::time::sleep(interval * 3).await;
        for id in &early[100..] {
            writer.record(spend(id));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Three intervals on an idle machine; a loaded one may take longer to get round to it,
        // but everything must reach the disk while the database is still down.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut stats = writer.stats();
        while (stats.in_memory_pending, stats.spool_pending) != (0, 300)
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(interval).await;
            stats = writer.stats();
        }
        assert!(balanced(&stats), "{stats:?}");
        assert_eq!((stats.in_memory_pending, stats.spool_pending), (0, 300), "{stats:?}");
        // Recorded just before the crash: these may be lost.
        for id in ids("last", 5) {
            writer.record(spend(id));
        }
    });

    let on_disk: HashSet<String> = spooled(dir.path()).into_iter().map(|r| r.request_id).collect();
    let missing: Vec<&String> = early.iter().filter(|id| !on_disk.contains(*id)).collect();
    assert!(missing.is_empty(), "lost in the crash: {missing:?}");

    store.set_failing(false);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (hook, acked) = collector();
        let next = start(&store, WriterConfig { on_written: Some(hook), ..config });
        eventually("the replay", || store.count() == on_disk.len()).await;
        eventually("spool files deleted", || spool_files(dir.path()).unwrap().is_empty()).await;
        assert!(early.iter().all(|id| store.ids().contains(id)));
        assert_eq!(acked.lock().unwrap().len(), on_disk.len());
        assert_eq!(store.duplicates.load(Ordering::SeqCst), 0);
        next.shutdown(Duration::from_secs(1)).await;
    });
}

#[test]
fn a_crash_while_an_insert_hangs_keeps_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = FakeStore::new();
    store.gate.send_replace(false);
    let interval = Duration::from_millis(50);
    let config = WriterConfig { flush_interval: interval, ..config(dir.path()) };
    let all = ids("hang", 20);
    crash_after(&store, config.clone(), |writer| async move {
        for id in &all[..10] {
            writer.record(spend(id));
        }
        // The batch's insert starts after one interval and never ends; after another it is
        // copied to disk. Records recorded meanwhile go to disk when due.
        tokio::time::sleep(interval * 2).await;
        for id in &all[10..] {
            writer.record(spend(id));
        }
        // Three intervals on an idle machine; a loaded one may take longer to get round to it,
        // but everything must reach the disk while the insert still hangs.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut stats = writer.stats();
        while (stats.in_memory_pending, stats.spool_pending) != (0, 20)
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(interval).await;
            stats = writer.stats();
        }
        assert!(balanced(&stats), "{stats:?}");
        assert_eq!((stats.in_memory_pending, stats.spool_pending, stats.written), (0, 20, 0));
    });
    let on_disk: HashSet<String> = spooled(dir.path()).into_iter().map(|r| r.request_id).collect();
    assert_eq!(on_disk, ids("hang", 20).into_iter().collect::<HashSet<_>>());

    store.gate.send_replace(true);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let next = start(&store, config);
        eventually("the replay", || store.count() == 20).await;
        next.shutdown(Duration::from_secs(1)).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_insert_that_succeeds_is_written_and_acknowledged_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = FakeStore::new();
    store.gate.send_replace(false);
    let (hook, acked) = collector();
    let writer = start(
        &store,
        WriterConfig {
            flush_interval: Duration::from_millis(30),
            on_written: Some(hook),
            ..config(dir.path())
        },
    );
    let all = ids("slow", 15);
    for id in &all[..10] {
        writer.record(spend(id));
    }
    eventually("the hanging batch copied", || writer.stats().spool_pending == 10).await;
    for id in &all[10..] {
        writer.record(spend(id));
    }
    eventually("later records on disk", || writer.stats().spool_pending == 15).await;
    assert!(balanced(&writer.stats()));

    // The insert goes through after all: its copy is dropped, not replayed.
    store.gate.send_replace(true);
    eventually("every record", || writer.stats().written == 15).await;
    eventually("spool files deleted", || spool_files(dir.path()).unwrap().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stats = writer.stats();
    assert!(balanced(&stats), "{stats:?}");
    assert_eq!((stats.written, stats.spool_pending, stats.in_memory_pending), (15, 0, 0));
    assert_eq!(store.duplicates.load(Ordering::SeqCst), 0, "the copy was replayed");
    let mut acked = acked.lock().unwrap().clone();
    acked.sort();
    let mut expected = all.clone();
    expected.sort();
    assert_eq!(acked, expected, "each record acknowledged exactly once");
    let report = writer.shutdown(Duration::from_secs(1)).await;
    assert_eq!((report.received, report.written, report.spooled), (15, 15, 0));
}
