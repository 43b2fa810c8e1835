//! Stopping: close the queue, write what can be written before the deadline, spool the rest.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{error, warn};

use super::{Source, Task};
use crate::SpendRecord;
use crate::writer::{Counters, ShutdownReport, lock};

impl Task {
    pub(super) fn begin_shutdown(&mut self, timeout: Duration) {
        if self.deadline.is_none() {
            self.deadline = Some(Instant::now() + timeout);
            self.rx.close();
            // One immediate attempt, whatever the backoff says.
            self.retry_at = None;
        }
    }

    /// Shutting down and nothing left worth waiting for.
    pub(super) fn done(&self) -> bool {
        let Some(deadline) = self.deadline else {
            return false;
        };
        self.rx_done
            && self.inflight.is_none()
            && (self.pending.is_empty() || self.retry_at.is_some_and(|t| t >= deadline))
    }

    /// Drops the unfinished attempt, takes everything left in the queue and spools whatever
    /// is not written.
    pub(super) async fn finish_shutdown(&mut self) -> ShutdownReport {
        let mut timed_out = false;
        if let Some(inflight) = self.inflight.take() {
            // Whether the cancelled insert committed or not, spooling is safe: the replay
            // skips ids the database already has.
            timed_out = true;
            drop(inflight.fut);
            // A copied batch is on disk already, and counted there.
            if inflight.source == Source::Live && inflight.copy.is_none() {
                let records =
                    Arc::try_unwrap(inflight.batch).unwrap_or_else(|shared| (*shared).clone());
                for record in records.into_iter().rev() {
                    self.pending.push_front(record);
                }
            }
        }
        // A replay in progress stays on disk; its remaining records are still counted there.
        self.replay = None;
        let mut rest = Vec::new();
        while let Ok(record) = self.rx.try_recv() {
            rest.push(record);
        }
        {
            let mut fallback = lock(&self.shared.fallback);
            fallback.closed = true;
            rest.append(&mut fallback.records);
        }
        self.accept(rest.into_iter());
        if !self.pending.is_empty() {
            timed_out = true;
            let records: Vec<SpendRecord> = self.pending.drain(..).collect();
            let n = records.len() as u64;
            match self.write_spool(records).await {
                Ok(path) => {
                    warn!(records = n, path = %path.display(), "spend writer stopped before writing everything; the rest is spooled for the next start");
                }
                Err((e, records)) => {
                    for record in &records {
                        let line = serde_json::to_string(record).unwrap_or_default();
                        error!(error = %e, record = %line, "spend record could not be written nor spooled; lost");
                    }
                    let mut c = lock(&self.shared.counters);
                    c.in_memory = c.in_memory.saturating_sub(n);
                    c.lost += n;
                }
            }
        }
        let c: Counters = {
            // The overflow lock first, so no overflow append is half-counted.
            let _overflow = lock(&self.shared.overflow);
            lock(&self.shared.counters).clone()
        };
        ShutdownReport {
            received: c.received,
            written: c.written,
            spooled: c.spool_pending,
            rejected: c.rejected,
            lost: c.lost,
            replayed_previous: c.replayed_previous,
            timed_out,
        }
    }
}
