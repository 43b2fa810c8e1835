//! Spool files from the task's side: moving memory to disk and replaying files.
//!
//! A record waits in memory for at most one flush interval. If its batch cannot be written
//! then — the insert failed, the database is failing, or another insert is still running —
//! it is appended to the overflow file and fsync'd; a live insert that takes longer than a
//! flush interval is copied to a spool file of its own. So a crash loses only records from
//! the last flush interval, and those of an insert begun less than one flush interval ago.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::{Replay, SPILL_RETRY, Source, Task};
use crate::SpendRecord;
use crate::writer::{lock, spool};

impl Task {
    /// Moves memory to the overflow file, durably, when it is due and cannot be written now.
    pub(super) async fn spool_due(&mut self) {
        let now = Instant::now();
        if self.pending.is_empty() || self.deadline.is_some() {
            return;
        }
        if self.spill_retry_at.is_some_and(|t| now < t) {
            return;
        }
        let due = self.spool_now || self.first_at.is_some_and(|t| now >= t + self.flush_interval);
        let blocked = self.spool_now
            || self.inflight.is_some()
            || self.outage_since.is_some()
            || self.retry_at.is_some_and(|t| now < t);
        if !(due && blocked) {
            return;
        }
        self.spool_now = false;
        let records: Vec<SpendRecord> = self.pending.drain(..).collect();
        self.first_at = None;
        let n = records.len();
        match self.append_overflow(records).await {
            Ok(()) => {
                debug!(records = n, "spend records that cannot be written yet are on disk");
                self.spool_dirty = true;
                self.spill_retry_at = None;
            }
            Err((e, records)) => {
                error!(error = %e, records = n, "cannot spool spend records; keeping them in memory");
                for record in records.into_iter().rev() {
                    self.pending.push_front(record);
                }
                self.first_at.get_or_insert_with(Instant::now);
                self.spill_retry_at = Some(Instant::now() + SPILL_RETRY);
            }
        }
    }

    /// Copies a live batch whose insert has taken a flush interval to a spool file of its own,
    /// kept out of the replay until the insert ends.
    pub(super) async fn copy_slow_inflight(&mut self) {
        let now = Instant::now();
        let batch = match &self.inflight {
            Some(inflight)
                if inflight.source == Source::Live
                    && inflight.copy.is_none()
                    && now >= inflight.started + self.flush_interval =>
            {
                Arc::clone(&inflight.batch)
            }
            _ => return,
        };
        if self.spill_retry_at.is_some_and(|t| now < t) {
            return;
        }
        // The records stay in the insert; the copy moves them to spool in the books.
        match self.write_spool((*batch).clone()).await {
            Ok(path) => {
                debug!(records = batch.len(), path = %path.display(), "slow spend insert copied to disk");
                self.skip.insert(path.clone());
                if let Some(inflight) = &mut self.inflight {
                    inflight.copy = Some(path);
                }
            }
            Err((e, _)) => {
                error!(error = %e, "cannot copy a slow spend insert to disk");
                self.spill_retry_at = Some(Instant::now() + SPILL_RETRY);
            }
        }
    }

    /// The insert whose batch was copied succeeded: its copy must not be replayed.
    pub(super) fn remove_copy(&mut self, copy: &std::path::Path) {
        match std::fs::remove_file(copy) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                // Replaying it would count its records in memory again: not in this run.
                warn!(error = %e, path = %copy.display(), "cannot delete the copy of a written spend batch");
                self.skip.insert(copy.to_path_buf());
            }
        }
    }

    /// Appends live records to the overflow file and fsyncs it; moves them from memory to
    /// spool in the counters, or gives them back on failure.
    async fn append_overflow(
        &mut self,
        records: Vec<SpendRecord>,
    ) -> Result<(), (std::io::Error, Vec<SpendRecord>)> {
        let n = records.len() as u64;
        let records = Arc::new(records);
        let shared = Arc::clone(&self.shared);
        let lines = Arc::clone(&records);
        let result = tokio::task::spawn_blocking(move || {
            let mut bytes = Vec::with_capacity(lines.len() * 512);
            for record in lines.iter() {
                serde_json::to_writer(&mut bytes, record).map_err(std::io::Error::other)?;
                bytes.push(b'\n');
            }
            // The overflow lock first, so no overflow append is half-counted.
            let mut overflow = lock(&shared.overflow);
            overflow.append_durable(&shared.spool_dir, &bytes, n)?;
            let mut c = lock(&shared.counters);
            c.in_memory = c.in_memory.saturating_sub(n);
            c.spool_pending += n;
            c.spooled_total += n;
            Ok(())
        })
        .await;
        let records = Arc::try_unwrap(records).unwrap_or_else(|shared| (*shared).clone());
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err((e, records)),
            Err(e) => Err((std::io::Error::other(e), records)),
        }
    }

    /// Keeps memory under the limit by moving the oldest records to a spool file.
    pub(super) async fn spill_if_needed(&mut self) {
        let inflight = match &self.inflight {
            Some(inflight) if inflight.source == Source::Live => inflight.batch.len(),
            _ => 0,
        };
        let total = self.pending.len() + inflight;
        if total <= self.memory_limit || self.pending.is_empty() {
            return;
        }
        if self.spill_retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let n = (total - self.memory_limit / 2).min(self.pending.len());
        let chunk: Vec<SpendRecord> = self.pending.drain(..n).collect();
        if self.pending.is_empty() {
            self.first_at = None;
        }
        match self.write_spool(chunk).await {
            Ok(path) => {
                debug!(records = n, path = %path.display(), "spend records spilled to disk");
                self.spool_dirty = true;
                self.spill_retry_at = None;
            }
            Err((e, chunk)) => {
                error!(error = %e, records = n, "cannot spill spend records to disk; keeping them in memory");
                for record in chunk.into_iter().rev() {
                    self.pending.push_front(record);
                }
                self.first_at.get_or_insert_with(Instant::now);
                self.spill_retry_at = Some(Instant::now() + SPILL_RETRY);
            }
        }
    }

    /// Writes live records to a new spool file and moves them from memory to spool in the
    /// counters; gives them back on failure.
    pub(super) async fn write_spool(
        &mut self,
        records: Vec<SpendRecord>,
    ) -> Result<PathBuf, (std::io::Error, Vec<SpendRecord>)> {
        let n = records.len() as u64;
        let records = Arc::new(records);
        let dir = self.shared.spool_dir.clone();
        let run_id = self.shared.run_id.clone();
        let mut seq = self.seq;
        let shared_records = Arc::clone(&records);
        let result = tokio::task::spawn_blocking(move || {
            let path = spool::write_spool_file(&dir, &run_id, &mut seq, &shared_records);
            (path, seq)
        })
        .await;
        let records = Arc::try_unwrap(records).unwrap_or_else(|shared| (*shared).clone());
        match result {
            Ok((Ok(path), seq)) => {
                self.seq = seq;
                let mut c = lock(&self.shared.counters);
                c.in_memory = c.in_memory.saturating_sub(n);
                c.spool_pending += n;
                c.spooled_total += n;
                Ok(path)
            }
            Ok((Err(e), seq)) => {
                self.seq = seq;
                Err((e, records))
            }
            Err(e) => Err((std::io::Error::other(e), records)),
        }
    }

    /// Once memory is flushed and the database answers, loads the oldest spool file.
    pub(super) async fn maybe_start_replay(&mut self) {
        // Ends: every round either loads records, or deletes or skips a file, or stops.
        loop {
            if let Some(replay) = &self.replay {
                if !replay.records.is_empty() {
                    return;
                }
                self.finish_replay().await;
            }
            if !self.load_next_spool_file().await {
                return;
            }
        }
    }

    /// Loads the oldest spool file into `replay`, rotating the overflow file first. Returns
    /// whether to look again (a file was loaded, possibly empty, or skipped).
    pub(super) async fn load_next_spool_file(&mut self) -> bool {
        // Memory first while the database takes writes; during an outage the database is
        // probed with what is on disk, where memory goes too.
        let now = Instant::now();
        if self.deadline.is_some()
            || self.retry_at.is_some_and(|t| now < t)
            || (self.outage_since.is_none() && self.pending.len() >= self.batch_size)
        {
            return false;
        }
        if !self.spool_dirty && lock(&self.shared.overflow).lines == 0 {
            return false;
        }
        let shared = Arc::clone(&self.shared);
        let mut seq = self.seq;
        let skip = self.skip.clone();
        let found = tokio::task::spawn_blocking(move || {
            let rotated =
                lock(&shared.overflow).rotate(&shared.spool_dir, &shared.run_id, &mut seq);
            let files = spool::spend_files(&shared.spool_dir);
            let next = files.map(|files| files.into_iter().find(|f| !skip.contains(f)));
            let loaded = next.map(|next| {
                next.map(|path| {
                    let parsed = spool::read_lines(&path);
                    (path, parsed)
                })
            });
            (rotated, loaded, seq)
        })
        .await;
        let (rotated, loaded, seq) = match found {
            Ok(found) => found,
            Err(e) => {
                error!(error = %e, "spend writer: spool scan failed");
                self.spool_dirty = false;
                return false;
            }
        };
        self.seq = seq;
        if let Err(e) = rotated {
            warn!(error = %e, "cannot rotate the spend overflow file; will retry");
        }
        let (path, parsed) = match loaded {
            Ok(Some(found)) => found,
            Ok(None) => {
                self.spool_dirty = false;
                return false;
            }
            Err(e) => {
                error!(error = %e, "cannot list the spend spool directory");
                self.spool_dirty = false;
                return false;
            }
        };
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(e) => {
                error!(error = %e, path = %path.display(), "cannot read a spend spool file; skipping it until restart");
                self.skip.insert(path);
                return true;
            }
        };
        let own = spool::written_by(&path, &self.shared.run_id);
        if !parsed.corrupt.is_empty() {
            let n = parsed.corrupt.len() as u64;
            error!(lines = n, path = %path.display(), "spend spool lines do not parse; moved to {}", spool::REJECTED_FILE_NAME);
            if let Err(e) = spool::append_rejected(&self.shared.spool_dir, &parsed.corrupt) {
                error!(error = %e, lines = ?parsed.corrupt, "cannot keep unparseable spend spool lines");
            }
            if own {
                let mut c = lock(&self.shared.counters);
                c.rejected += n;
                c.spool_pending = c.spool_pending.saturating_sub(n);
            }
        }
        info!(path = %path.display(), records = parsed.records.len(), "replaying spend spool file");
        self.replay = Some(Replay { path, own, records: parsed.records.into() });
        true
    }

    /// Every record of the replayed file is written: delete it.
    pub(super) async fn finish_replay(&mut self) {
        let Some(replay) = self.replay.take() else {
            return;
        };
        self.spool_dirty = true;
        match tokio::fs::remove_file(&replay.path).await {
            Ok(()) => debug!(path = %replay.path.display(), "spend spool file replayed"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                // Replaying it again later is harmless (inserts skip known ids) but useless now.
                warn!(error = %e, path = %replay.path.display(), "cannot delete a replayed spend spool file");
                self.skip.insert(replay.path);
            }
        }
    }
}
