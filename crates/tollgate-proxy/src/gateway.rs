//! Wiring of the proxy's long-lived parts: the store, the key directory that follows it, the
//! spend writer, and the periodic upkeep (budget resets, retention, partitions). The binary
//! and the test kit start the proxy the same way, through [`Gateway::start`].

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinHandle;
use tollgate_config::Config;
use tollgate_store::{SecretBox, ShutdownReport, SpendWriter, Store, StoreError, WriterConfig};

use crate::access::Directory;
use crate::copilot::AccountSync;
use crate::record::SpendSink;
use crate::state::AppState;

/// Intervals of the background work; the defaults suit production, tests shorten them.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// How often the key directory reads the change feed.
    pub directory_poll: Duration,
    /// How often the directory is fully reloaded (spend reconciled across processes).
    pub reconcile: Duration,
    /// How often budgets due for reset are reset.
    pub budget_reset_every: Duration,
    /// How often retention and partition upkeep run.
    pub upkeep_every: Duration,
    /// Spend writer batch flush interval.
    pub flush_interval: Duration,
    /// How often linked Copilot accounts are read from the store.
    pub account_sync: Duration,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            directory_poll: Duration::from_secs(1),
            reconcile: Duration::from_secs(30),
            budget_reset_every: Duration::from_secs(1),
            upkeep_every: Duration::from_secs(3600),
            flush_interval: Duration::from_millis(250),
            account_sync: Duration::from_secs(2),
        }
    }
}

/// A running proxy's state and background tasks.
#[derive(Debug)]
pub struct Gateway {
    /// What handlers share.
    pub state: AppState,
    tasks: Vec<JoinHandle<()>>,
}

impl Gateway {
    /// Opens and migrates the store (retrying in the background if the database is not
    /// there yet), starts the spend writer and the directory, and returns the proxy's state.
    pub async fn start(
        config: &Config,
        http: reqwest::Client,
        store: Store,
        secret_box: Arc<SecretBox>,
        options: GatewayOptions,
    ) -> Result<Self, std::io::Error> {
        let directory = Arc::new(Directory::new());
        let mut writer_config = WriterConfig::new(config.settings.data_dir.join("spool"));
        writer_config.flush_interval = options.flush_interval;
        let acked = directory.clone();
        writer_config.on_written = Some(Arc::new(move |records| acked.written(records)));
        let writer = SpendWriter::start(store.clone(), writer_config)?;
        let sink = SpendSink { writer, directory: directory.clone() };
        let state = AppState::new(config, http, store.clone(), secret_box.clone(), sink);

        let accounts = Arc::new(AccountSync::new(state.providers().copilot().clone(), secret_box));
        if let Err(e) = accounts.sync(&store).await {
            tracing::warn!(error = %e, "Copilot accounts not loaded yet; retrying in the background");
        }
        let tasks = vec![
            tokio::spawn(accounts.run(store.clone(), options.account_sync)),
            tokio::spawn(
                state
                    .quota()
                    .clone()
                    .run(state.providers().copilot().clone(), Duration::from_secs(300)),
            ),
            tokio::spawn(directory.clone().run(
                store.clone(),
                options.directory_poll,
                options.reconcile,
            )),
            tokio::spawn(budget_resets(store.clone(), options.budget_reset_every)),
            tokio::spawn(upkeep(store, config.settings.spend_log_retention, options.upkeep_every)),
            tokio::spawn(cooldown_gauges(state.clone())),
        ];
        Ok(Self { state, tasks })
    }

    /// Stops background work and drains the spend writer: whatever cannot reach the
    /// database within `timeout` is spooled to disk for the next start.
    pub async fn shutdown(self, timeout: Duration) -> ShutdownReport {
        for t in &self.tasks {
            t.abort();
        }
        self.state.sink().writer.shutdown(timeout).await
    }
}

/// Migrates, retrying until the database answers. Run before serving when the database is
/// expected to be up; the proxy serves cached keys meanwhile otherwise.
pub async fn migrate_with_retry(store: &Store, give_up_after: Duration) -> Result<(), StoreError> {
    let deadline = tokio::time::Instant::now() + give_up_after;
    let mut wait = Duration::from_millis(200);
    loop {
        match store.migrate().await {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() + wait < deadline => {
                tracing::warn!(error = %e, "database not ready for migrations; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

async fn cooldown_gauges(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        crate::metrics::record_cooldowns(state.router());
    }
}

async fn budget_resets(store: Store, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.reset_due_budgets(Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(reset = n, "budgets reset"),
            Err(e) => tracing::debug!(error = %e, "budget reset skipped: store unavailable"),
        }
    }
}

async fn upkeep(store: Store, retention: Option<Duration>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = Utc::now();
        if let Err(e) = store.maintain(now).await {
            tracing::warn!(error = %e, "store upkeep failed");
        }
        let Some(keep) = retention.and_then(|r| chrono::Duration::from_std(r).ok()) else {
            continue;
        };
        match store.delete_spend_before(now - keep).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "old spend records removed"),
            Err(e) => tracing::warn!(error = %e, "spend retention failed"),
        }
    }
}
