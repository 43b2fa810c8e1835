//! The writer task: batches, retries, spills to and replays from spool files.

mod disk;
mod retry;
mod shutdown;

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, error, info};

use super::{DROPPED_FLUSH_TIMEOUT, OnWritten, Shared, ShutdownReport, lock};
use crate::{SpendRecord, WriterConfig, WriterStore};

/// Failed attempts at one batch before the task asks the database whether it is up at all.
const PROBE_AFTER_FAILURES: u32 = 3;
/// Wait before retrying a failed spill.
const SPILL_RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Records received by this writer, held in memory.
    Live,
    /// Records read back from a spool file.
    Replay,
}

/// A spool file being replayed. Its records stay on disk until all of them are written.
struct Replay {
    path: PathBuf,
    /// Written by this run, so its records count in `spool_pending`.
    own: bool,
    records: VecDeque<SpendRecord>,
}

struct Attempt {
    result: Result<u64, String>,
    /// After a failure, whether the database answered a ping (`None`: not asked).
    ping_ok: Option<bool>,
}

struct Inflight {
    source: Source,
    batch: Arc<Vec<SpendRecord>>,
    fut: Pin<Box<dyn Future<Output = Attempt> + Send>>,
    /// When the insert began.
    started: Instant,
    /// A live batch whose insert has taken longer than a flush interval is copied to a spool
    /// file of its own, so a crash cannot lose it; the file is deleted if the insert succeeds.
    copy: Option<PathBuf>,
}

pub(super) struct Task {
    store: WriterStore,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<SpendRecord>,
    batch_size: usize,
    flush_interval: Duration,
    memory_limit: usize,
    retry_min: Duration,
    retry_max: Duration,
    insert_timeout: Duration,
    on_written: Option<OnWritten>,

    pending: VecDeque<SpendRecord>,
    /// When the oldest record in `pending` arrived.
    first_at: Option<Instant>,
    inflight: Option<Inflight>,
    replay: Option<Replay>,
    /// No insert before this (backing off after a failure).
    retry_at: Option<Instant>,
    /// The source whose batch failed last; retried first.
    retry_source: Option<Source>,
    backoff: Duration,
    /// Failed attempts since the last success.
    failures: u32,
    /// Current batch size: halved while isolating a batch the database refuses.
    batch_cap: usize,
    /// The database is failing (for logging once per outage).
    outage_since: Option<Instant>,
    /// Since when the database has been refusing batches while answering pings.
    refusing_since: Option<Instant>,
    /// Some insert succeeded since `refusing_since`: the database takes writes, so a lone
    /// refused record is bad itself.
    written_while_refusing: bool,
    outage_failures: u64,
    /// Whose turn it is when live records and a replay are both ready.
    live_turn: bool,
    /// The spool directory may hold files to replay.
    spool_dirty: bool,
    /// A live batch just failed: move memory to disk now, not when it is due.
    spool_now: bool,
    /// Spool files that could not be read or deleted; not retried in this run.
    skip: HashSet<PathBuf>,
    spill_retry_at: Option<Instant>,
    seq: u64,
    /// Set when shutting down: the time by which to stop trying.
    deadline: Option<Instant>,
    /// The queue is closed and empty.
    rx_done: bool,
}

impl Task {
    pub(super) fn new(
        store: WriterStore,
        config: WriterConfig,
        shared: Arc<Shared>,
        rx: mpsc::Receiver<SpendRecord>,
    ) -> Self {
        let batch_size = config.batch_size.max(1);
        let retry_min = config.retry_min.max(Duration::from_millis(1));
        Self {
            store,
            shared,
            rx,
            batch_size,
            flush_interval: config.flush_interval,
            memory_limit: config.memory_limit.max(1),
            retry_min,
            retry_max: config.retry_max.max(retry_min),
            insert_timeout: config.insert_timeout,
            on_written: config.on_written,
            pending: VecDeque::new(),
            first_at: None,
            inflight: None,
            replay: None,
            retry_at: None,
            retry_source: None,
            backoff: retry_min,
            failures: 0,
            batch_cap: batch_size,
            outage_since: None,
            refusing_since: None,
            written_while_refusing: false,
            outage_failures: 0,
            live_turn: true,
            spool_dirty: true,
            spool_now: false,
            skip: HashSet::new(),
            spill_retry_at: None,
            seq: 0,
            deadline: None,
            rx_done: false,
        }
    }

    pub(super) async fn run(
        mut self,
        mut shutdown: oneshot::Receiver<Duration>,
        report: watch::Sender<Option<ShutdownReport>>,
    ) {
        let mut shutdown_seen = false;
        let mut buf = Vec::with_capacity(self.batch_size);
        loop {
            self.take_fallback();
            self.spill_if_needed().await;
            self.spool_due().await;
            self.copy_slow_inflight().await;
            if self.inflight.is_none() {
                self.maybe_start_replay().await;
                self.start_batch();
            }
            if self.done() {
                break;
            }
            let wake = self.next_wake();
            tokio::select! {
                biased;
                timeout = &mut shutdown, if !shutdown_seen => {
                    shutdown_seen = true;
                    self.begin_shutdown(timeout.unwrap_or(DROPPED_FLUSH_TIMEOUT));
                }
                attempt = poll_inflight(&mut self.inflight) => self.finish(attempt),
                n = self.rx.recv_many(&mut buf, self.batch_size), if !self.rx_done => {
                    if n == 0 {
                        // Closed by `shutdown` and drained, or every handle is gone
                        // without a `shutdown` call.
                        self.rx_done = true;
                        self.begin_shutdown(DROPPED_FLUSH_TIMEOUT);
                    } else {
                        self.accept(buf.drain(..));
                    }
                }
                () = sleep_until(wake) => {}
            }
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        let done = self.finish_shutdown().await;
        info!(
            received = done.received,
            written = done.written,
            spooled = done.spooled,
            rejected = done.rejected,
            lost = done.lost,
            "spend writer stopped"
        );
        let _ = report.send(Some(done));
    }

    fn accept(&mut self, records: impl Iterator<Item = SpendRecord>) {
        let before = self.pending.len();
        self.pending.extend(records);
        let n = (self.pending.len() - before) as u64;
        if n > 0 && self.first_at.is_none() {
            self.first_at = Some(Instant::now());
        }
        let mut c = lock(&self.shared.counters);
        c.received += n;
        c.in_memory += n;
    }

    fn take_fallback(&mut self) {
        let records = std::mem::take(&mut lock(&self.shared.fallback).records);
        if !records.is_empty() {
            self.accept(records.into_iter());
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        // When memory is due: for its batch, or for the spool if the batch cannot start.
        // While the spool directory is failing, not before its retry.
        let due = self.first_at.map(|first| {
            let due = first + self.flush_interval;
            self.spill_retry_at.map_or(due, |retry| due.max(retry))
        });
        let wake = match &self.inflight {
            None => earliest(self.retry_at, due),
            Some(inflight) if inflight.source == Source::Live && inflight.copy.is_none() => {
                earliest(due, Some(inflight.started + self.flush_interval))
            }
            Some(_) => due,
        };
        earliest(wake, self.deadline)
    }

    /// Starts an insert if a batch is ready and the backoff allows it.
    fn start_batch(&mut self) {
        let now = Instant::now();
        if let Some(retry_at) = self.retry_at {
            if now < retry_at {
                return;
            }
            self.retry_at = None;
        }
        let shutting_down = self.deadline.is_some();
        let live_ready = !self.pending.is_empty()
            && (shutting_down
                || self.pending.len() >= self.batch_cap
                || self.retry_source == Some(Source::Live)
                || self.first_at.is_some_and(|t| now >= t + self.flush_interval));
        let replay_ready =
            !shutting_down && self.replay.as_ref().is_some_and(|r| !r.records.is_empty());
        let source = match (live_ready, replay_ready) {
            // During an outage the database is probed with records already on disk.
            (_, true) if self.outage_since.is_some() => Source::Replay,
            (true, true) => match self.retry_source {
                Some(source) => source,
                None if self.live_turn => Source::Live,
                None => Source::Replay,
            },
            (true, false) => Source::Live,
            (false, true) => Source::Replay,
            (false, false) => return,
        };
        let queue = match source {
            Source::Live => &mut self.pending,
            Source::Replay => match &mut self.replay {
                Some(replay) => &mut replay.records,
                None => return,
            },
        };
        let n = queue.len().min(self.batch_cap);
        let batch: Arc<Vec<SpendRecord>> = Arc::new(queue.drain(..n).collect());
        if self.pending.is_empty() {
            self.first_at = None;
        }

        let store = Arc::clone(&self.store);
        let records = Arc::clone(&batch);
        let timeout = self.insert_timeout;
        let probe = self.failures + 1 >= PROBE_AFTER_FAILURES || self.batch_cap < self.batch_size;
        let fut = Box::pin(async move {
            let result = match tokio::time::timeout(timeout, store.insert_spend(&records)).await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(_) => Err(format!("insert timed out after {timeout:?}")),
            };
            let ping_ok = if result.is_err() && probe {
                Some(matches!(tokio::time::timeout(timeout, store.ping()).await, Ok(Ok(()))))
            } else {
                None
            };
            Attempt { result, ping_ok }
        });
        self.inflight = Some(Inflight { source, batch, fut, started: now, copy: None });
    }

    fn finish(&mut self, (source, batch, copy, attempt): Finished) {
        let n = batch.len() as u64;
        if let Some(copy) = &copy {
            self.skip.remove(copy);
        }
        match attempt.result {
            Ok(inserted) => {
                debug!(records = n, inserted, ?source, "spend batch written");
                if self.refusing_since.is_some() {
                    self.written_while_refusing = true;
                }
                // Grow back after two successes in a row, so a half that went in does not
                // merge the refused half with fresh records again.
                if self.failures == 0 && self.batch_cap < self.batch_size {
                    self.batch_cap = (self.batch_cap * 2).min(self.batch_size);
                    if self.batch_cap == self.batch_size {
                        self.refusing_since = None;
                    }
                }
                self.failures = 0;
                self.backoff = self.retry_min;
                self.retry_source = None;
                self.live_turn = source == Source::Replay;
                if let Some(since) = self.outage_since.take() {
                    info!(
                        outage_secs = since.elapsed().as_secs_f64(),
                        failed_attempts = self.outage_failures,
                        in_memory = self.pending.len(),
                        "spend writer: database recovered"
                    );
                }
                {
                    let mut c = lock(&self.shared.counters);
                    c.database_ok = true;
                    match (source, self.replay.as_ref().is_some_and(|r| r.own)) {
                        (Source::Live, _) if copy.is_some() => {
                            c.spool_pending = c.spool_pending.saturating_sub(n);
                            c.written += n;
                        }
                        (Source::Live, _) => {
                            c.in_memory = c.in_memory.saturating_sub(n);
                            c.written += n;
                        }
                        (Source::Replay, true) => {
                            c.spool_pending = c.spool_pending.saturating_sub(n);
                            c.written += n;
                        }
                        (Source::Replay, false) => c.replayed_previous += n,
                    }
                }
                if let Some(copy) = copy {
                    self.remove_copy(&copy);
                }
                self.acknowledge(&batch);
            }
            Err(e) if copy.is_some() => {
                // Already on disk: the replay retries it (and isolates a refused record).
                self.failures += 1;
                self.outage_failures += 1;
                lock(&self.shared.counters).failed_attempts += 1;
                self.spool_dirty = true;
                self.retry_source = None;
                self.outage(&e);
            }
            Err(e) => {
                self.failures += 1;
                self.outage_failures += 1;
                lock(&self.shared.counters).failed_attempts += 1;
                self.retry_source = Some(source);
                // A batch that cannot be written goes to disk at once, with the rest of memory.
                self.spool_now = source == Source::Live;
                // Back to the front, in order, so the retry (or the isolation) sees them first.
                let records = Arc::try_unwrap(batch).unwrap_or_else(|shared| (*shared).clone());
                let queue = match source {
                    Source::Live => {
                        self.first_at.get_or_insert_with(Instant::now);
                        &mut self.pending
                    }
                    Source::Replay => match &mut self.replay {
                        Some(replay) => &mut replay.records,
                        None => return,
                    },
                };
                for record in records.into_iter().rev() {
                    queue.push_front(record);
                }
                if attempt.ping_ok == Some(true) {
                    self.refused(source, n, &e);
                } else {
                    self.outage(&e);
                }
            }
        }
    }

    fn acknowledge(&mut self, batch: &[SpendRecord]) {
        if let Some(on_written) = &self.on_written {
            let call = std::panic::AssertUnwindSafe(|| on_written(batch));
            if std::panic::catch_unwind(call).is_err() {
                error!("spend writer: the on_written hook panicked");
            }
        }
    }
}

/// A finished insert: where its batch came from, the batch, its spool copy, the result.
type Finished = (Source, Arc<Vec<SpendRecord>>, Option<PathBuf>, Attempt);

async fn poll_inflight(inflight: &mut Option<Inflight>) -> Finished {
    let Some(current) = inflight else {
        return std::future::pending().await;
    };
    let attempt = (&mut current.fut).await;
    let source = current.source;
    let batch = Arc::clone(&current.batch);
    let copy = current.copy.take();
    *inflight = None;
    (source, batch, copy, attempt)
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(wake) => tokio::time::sleep_until(wake).await,
        None => std::future::pending().await,
    }
}
