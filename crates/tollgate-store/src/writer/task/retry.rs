//! What the task does when an insert fails: back off during an outage, isolate a batch the
//! database refuses while it answers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;
use tracing::{debug, error, warn};

use super::{Source, Task};
use crate::writer::{lock, spool};

impl Task {
    /// The database is failing: back off, with jitter.
    pub(super) fn outage(&mut self, error: &str) {
        let now = Instant::now();
        if self.outage_since.is_none() {
            self.outage_since = Some(now);
            self.outage_failures = 1;
            warn!(
                error,
                in_memory = self.pending.len(),
                "spend writer: database failing; keeping spend records in memory, then on disk"
            );
        } else {
            debug!(error, retry_in = ?self.backoff, "spend writer: insert failed again");
        }
        lock(&self.shared.counters).database_ok = false;
        self.retry_at = Some(now + jitter(self.backoff));
        self.backoff = (self.backoff * 2).min(self.retry_max);
    }

    /// The database answers pings but refuses this batch: halve batches until the bad
    /// record is alone, then set it aside, but only once some other insert has succeeded
    /// meanwhile; a database that refuses every write (read-only) is an outage.
    pub(super) fn refused(&mut self, source: Source, n: u64, error: &str) {
        let now = Instant::now();
        if self.refusing_since.is_none() {
            self.refusing_since = Some(now);
            self.written_while_refusing = false;
        }
        if n > 1 {
            self.batch_cap = (n as usize / 2).max(1);
            self.retry_at = Some(now + self.retry_min);
            debug!(error, batch = n, "spend batch refused; splitting it");
            return;
        }
        let own = self.replay.as_ref().is_some_and(|r| r.own);
        let queue = match source {
            Source::Live => &mut self.pending,
            Source::Replay => match &mut self.replay {
                Some(replay) => &mut replay.records,
                None => return,
            },
        };
        if !self.written_while_refusing {
            // Try the records behind it first: if one of them goes in, this one is bad.
            if let Some(record) = queue.pop_front() {
                queue.push_back(record);
            }
            self.outage(error);
            return;
        }
        let Some(record) = queue.pop_front() else {
            return;
        };
        self.failures = 0;
        self.retry_source = None;
        self.retry_at = None;
        self.refusing_since = None;
        self.batch_cap = self.batch_size;
        let line = serde_json::to_string(&record).unwrap_or_default();
        error!(
            request_id = %record.request_id,
            error,
            "the database refuses a spend record; moved to {}",
            spool::REJECTED_FILE_NAME
        );
        if let Err(e) = spool::append_rejected(&self.shared.spool_dir, std::slice::from_ref(&line))
        {
            error!(error = %e, record = %line, "cannot keep the rejected spend record");
        }
        // Records of earlier runs are not in this run's books; the log and the file tell.
        let mut c = lock(&self.shared.counters);
        match (source, own) {
            (Source::Live, _) => {
                c.in_memory = c.in_memory.saturating_sub(1);
                c.rejected += 1;
            }
            (Source::Replay, true) => {
                c.spool_pending = c.spool_pending.saturating_sub(1);
                c.rejected += 1;
            }
            (Source::Replay, false) => {}
        }
        drop(c);
        if self.pending.is_empty() {
            self.first_at = None;
        }
    }
}

/// Between half and all of `backoff`, spread by the clock's nanoseconds so that several
/// gateways do not retry in step (no random-number dependency needed).
fn jitter(backoff: Duration) -> Duration {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    backoff.mul_f64(0.5 + f64::from(nanos % 1000) / 2000.0)
}
