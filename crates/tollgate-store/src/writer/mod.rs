//! The spend writer: spend records leave the request path through a bounded queue and reach
//! the database in batches, surviving a database outage without losing records.
//!
//! Where a record can be, from [`SpendWriter::record`] on: in the queue; in the writer's
//! memory, waiting for its batch; in a spool file in [`WriterConfig::spool_dir`]; in the
//! database. A record waits in memory at most one flush interval: a batch that cannot be
//! written goes to disk at once (fsync'd), and so does every record that comes due while the
//! database is failing or another insert is still running; a live insert that takes longer
//! than a flush interval is copied to disk while it runs. A crash (`kill -9`) therefore loses
//! at most the records of the last flush interval and of an insert begun less than one flush
//! interval ago. The database is probed with what is on disk until it answers again.
//!
//! A record leaves memory or a spool file only once `insert_spend` has succeeded for it, and
//! `insert_spend` skips request ids it already has, so a retry or a replay after a crash
//! never counts a record twice. Within one run each record is acknowledged once: the copy
//! of a slow insert that then succeeds is deleted, never replayed. Records the database refuses while it answers pings are
//! isolated one by one and kept in `rejected.jsonl`, so one bad record cannot stall the rest.
//!
//! One spool directory belongs to one writer at a time: a starting writer adopts every
//! spool file it finds there.

mod spool;
mod task;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use crate::{SpendRecord, SpendStore};

/// A store as the writer holds it.
pub type WriterStore = std::sync::Arc<dyn SpendStore>;

pub use spool::{OVERFLOW_FILE_NAME, REJECTED_FILE_NAME, read_spool_file, spool_files};

/// Called with the records of each batch that reached the database, after `insert_spend`
/// succeeded. Runs on the writer task: keep it short. It also sees records replayed from
/// spool files left by an earlier process, which the caller may not know.
pub type OnWritten = Arc<dyn Fn(&[SpendRecord]) + Send + Sync>;

/// How long a writer whose handles were all dropped without `shutdown` keeps trying.
const DROPPED_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// At most one overflow warning per this long.
const OVERFLOW_WARN_EVERY: Duration = Duration::from_secs(5);

/// Settings of a [`SpendWriter`].
#[derive(Clone)]
pub struct WriterConfig {
    /// Most records per `insert_spend` call.
    pub batch_size: usize,
    /// Longest a record waits for its batch to fill; also the longest it stays in memory only,
    /// whatever the database does (see the module documentation).
    pub flush_interval: Duration,
    /// Capacity of the queue between `record` and the writer task.
    pub queue_capacity: usize,
    /// Most unwritten records kept in memory; past it the oldest go to a spool file, down
    /// to half of it.
    pub memory_limit: usize,
    /// Where spool files go. Created if missing. One writer per directory.
    pub spool_dir: PathBuf,
    /// First wait before retrying a failed insert.
    pub retry_min: Duration,
    /// Longest wait between retries.
    pub retry_max: Duration,
    /// Longest one `insert_spend` (or `ping`) may take before it counts as failed.
    pub insert_timeout: Duration,
    /// Acknowledgement hook, see [`OnWritten`].
    pub on_written: Option<OnWritten>,
}

impl WriterConfig {
    /// The defaults, spooling to `spool_dir`.
    pub fn new(spool_dir: impl Into<PathBuf>) -> Self {
        Self {
            batch_size: 500,
            flush_interval: Duration::from_millis(250),
            queue_capacity: 20_000,
            memory_limit: 100_000,
            spool_dir: spool_dir.into(),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            insert_timeout: Duration::from_secs(30),
            on_written: None,
        }
    }
}

impl fmt::Debug for WriterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterConfig")
            .field("batch_size", &self.batch_size)
            .field("flush_interval", &self.flush_interval)
            .field("queue_capacity", &self.queue_capacity)
            .field("memory_limit", &self.memory_limit)
            .field("spool_dir", &self.spool_dir)
            .field("retry_min", &self.retry_min)
            .field("retry_max", &self.retry_max)
            .field("insert_timeout", &self.insert_timeout)
            .field("on_written", &self.on_written.is_some())
            .finish()
    }
}

/// A snapshot of a writer's counters. Every record taken from the queue or the overflow
/// path is in exactly one place, so
/// `received == written + in_memory_pending + spool_pending + rejected + lost`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records taken from the queue, or written to the overflow file, by this writer.
    pub received: u64,
    /// Records waiting in the queue (not yet received).
    pub queued: u64,
    /// Received records held in memory, not yet written.
    pub in_memory_pending: u64,
    /// Received records that reached the database.
    pub written: u64,
    /// Received records now only in spool files (spilled, overflowed or left by shutdown).
    pub spool_pending: u64,
    /// Records ever written to spool files by this writer (monotonic).
    pub spooled_total: u64,
    /// Of those, records that went straight to the overflow file because the queue was
    /// full or closed.
    pub overflowed: u64,
    /// Records from spool files of earlier runs written to the database.
    pub replayed_previous: u64,
    /// Failed `insert_spend` calls.
    pub failed_attempts: u64,
    /// Received records the database refused while answering pings, or whose spool line
    /// no longer parsed; kept in `rejected.jsonl`. (Records of earlier runs that end up
    /// there are only logged.)
    pub rejected: u64,
    /// Records that could be neither written nor spooled; each was logged at error level
    /// with its JSON.
    pub lost: u64,
    /// Whether the last insert (or ping) succeeded.
    pub database_ok: bool,
}

/// What [`SpendWriter::shutdown`] did. `received == written + spooled + rejected + lost`;
/// `lost` is 0 unless the spool directory failed too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Records received by this writer over its life.
    pub received: u64,
    /// Of those, written to the database.
    pub written: u64,
    /// Of those, left in spool files for the next writer on the same directory.
    pub spooled: u64,
    /// Of those, refused by the database and kept in `rejected.jsonl`.
    pub rejected: u64,
    /// Of those, neither written nor spooled (logged at error level).
    pub lost: u64,
    /// Records from earlier runs' spool files written during this run.
    pub replayed_previous: u64,
    /// Whether the timeout ran out while records were still unwritten.
    pub timed_out: bool,
}

/// A cheap-to-clone handle to the spend writer.
#[derive(Clone)]
pub struct SpendWriter {
    tx: mpsc::Sender<SpendRecord>,
    shared: Arc<Shared>,
}

impl fmt::Debug for SpendWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpendWriter")
            .field("spool_dir", &self.shared.spool_dir)
            .field("run_id", &self.shared.run_id)
            .finish_non_exhaustive()
    }
}

/// State shared by the handles and the task.
struct Shared {
    spool_dir: PathBuf,
    run_id: String,
    counters: Mutex<Counters>,
    /// Lock order: `overflow` before `counters`.
    overflow: Mutex<spool::Overflow>,
    /// Records whose overflow write failed, for the task to pick up.
    fallback: Mutex<Fallback>,
    epoch: Instant,
    /// Milliseconds since `epoch` of the last overflow warning, plus one; 0 = never.
    last_overflow_warn: AtomicU64,
    shutdown: Mutex<Option<oneshot::Sender<Duration>>>,
    report: watch::Receiver<Option<ShutdownReport>>,
}

#[derive(Debug, Clone, Default)]
struct Counters {
    received: u64,
    in_memory: u64,
    written: u64,
    spool_pending: u64,
    spooled_total: u64,
    overflowed: u64,
    replayed_previous: u64,
    failed_attempts: u64,
    rejected: u64,
    lost: u64,
    database_ok: bool,
}

#[derive(Default)]
struct Fallback {
    records: Vec<SpendRecord>,
    /// The task has finished; nobody will pick records up any more.
    closed: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SpendWriter {
    /// Starts the writer task on the current Tokio runtime. Creates `spool_dir` and adopts
    /// the spool files already there (an earlier run's overflow file included); they are
    /// replayed as soon as the database answers. Fails if there is no runtime or the spool
    /// directory cannot be created.
    pub fn start(store: WriterStore, config: WriterConfig) -> std::io::Result<SpendWriter> {
        let runtime = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        std::fs::create_dir_all(&config.spool_dir)?;
        let run_id = spool::new_run_id();
        // An earlier run's overflow file becomes an ordinary spool file before this run
        // can append to a new one.
        let mut seq = 0;
        spool::rename_overflow(&config.spool_dir, "recovered", &mut seq)?;

        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let (report_tx, report_rx) = watch::channel(None);
        let shared = Arc::new(Shared {
            spool_dir: config.spool_dir.clone(),
            run_id,
            counters: Mutex::new(Counters { database_ok: true, ..Counters::default() }),
            overflow: Mutex::default(),
            fallback: Mutex::default(),
            epoch: Instant::now(),
            last_overflow_warn: AtomicU64::new(0),
            shutdown: Mutex::new(Some(shutdown_tx)),
            report: report_rx,
        });
        let task = task::Task::new(store, config, Arc::clone(&shared), rx);
        runtime.spawn(task.run(shutdown_rx, report_tx));
        Ok(SpendWriter { tx, shared })
    }

    /// Hands a record to the writer. Never blocks on the database and never fails: when the
    /// queue is full (or the writer is shut down) the record is appended to the overflow
    /// file in the spool directory instead, synchronously.
    pub fn record(&self, record: SpendRecord) {
        match self.tx.try_send(record) {
            Ok(()) => {}
            Err(
                mpsc::error::TrySendError::Full(record) | mpsc::error::TrySendError::Closed(record),
            ) => self.shared.overflow(record),
        }
    }

    /// The writer's counters.
    pub fn stats(&self) -> WriterStats {
        let c = lock(&self.shared.counters).clone();
        let queued = self.tx.max_capacity().saturating_sub(self.tx.capacity()) as u64;
        c.to_stats(queued)
    }

    /// Stops taking records from the queue, writes what it holds within `timeout` and
    /// spools whatever could not be written. Records recorded afterwards go to the overflow
    /// file, for the next writer. Calling it again (from any handle) returns the same report.
    pub async fn shutdown(&self, timeout: Duration) -> ShutdownReport {
        if let Some(tx) = lock(&self.shared.shutdown).take() {
            let _ = tx.send(timeout);
        }
        let mut report = self.shared.report.clone();
        if let Ok(done) = report.wait_for(Option::is_some).await
            && let Some(done) = done.as_ref()
        {
            return done.clone();
        }
        // The task is gone without a report (its runtime is shutting down).
        let c = lock(&self.shared.counters).clone();
        ShutdownReport {
            received: c.received,
            written: c.written,
            spooled: c.spool_pending,
            rejected: c.rejected,
            lost: c.lost + c.in_memory,
            replayed_previous: c.replayed_previous,
            timed_out: true,
        }
    }
}

impl Counters {
    fn to_stats(&self, queued: u64) -> WriterStats {
        WriterStats {
            received: self.received,
            queued,
            in_memory_pending: self.in_memory,
            written: self.written,
            spool_pending: self.spool_pending,
            spooled_total: self.spooled_total,
            overflowed: self.overflowed,
            replayed_previous: self.replayed_previous,
            failed_attempts: self.failed_attempts,
            rejected: self.rejected,
            lost: self.lost,
            database_ok: self.database_ok,
        }
    }
}

impl Shared {
    /// The queue is full or closed: keep the record on disk, or failing that in memory.
    fn overflow(&self, record: SpendRecord) {
        self.warn_overflow();
        let mut line = match serde_json::to_vec(&record) {
            Ok(line) => line,
            Err(e) => {
                // Not reachable for a `SpendRecord`; counted so the books still balance.
                tracing::error!(request_id = %record.request_id, error = %e, "spend record cannot be serialized; lost");
                let mut c = lock(&self.counters);
                c.received += 1;
                c.lost += 1;
                return;
            }
        };
        line.push(b'\n');
        let mut overflow = lock(&self.overflow);
        match overflow.append(&self.spool_dir, &line) {
            Ok(()) => {
                let mut c = lock(&self.counters);
                c.received += 1;
                c.overflowed += 1;
                c.spooled_total += 1;
                c.spool_pending += 1;
            }
            Err(e) => {
                drop(overflow);
                let mut fallback = lock(&self.fallback);
                if fallback.closed {
                    tracing::error!(
                        error = %e,
                        record = %String::from_utf8_lossy(line.trim_ascii_end()),
                        "spend writer is shut down and the overflow file cannot be written; record lost"
                    );
                    let mut c = lock(&self.counters);
                    c.received += 1;
                    c.lost += 1;
                } else {
                    tracing::error!(error = %e, "cannot write the spend overflow file; keeping the record in memory");
                    fallback.records.push(record);
                }
            }
        }
    }

    fn warn_overflow(&self) {
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        let last = self.last_overflow_warn.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < OVERFLOW_WARN_EVERY.as_millis() as u64 {
            return;
        }
        if self
            .last_overflow_warn
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::warn!(
                spool_dir = %self.spool_dir.display(),
                "spend queue full or closed; appending spend records to the overflow file"
            );
        }
    }
}
