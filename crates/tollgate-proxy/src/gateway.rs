//! Wiring of the proxy's long-lived parts: the store, the key directory that follows it, the
//! spend writer, and the periodic upkeep (budget resets, retention, partitions). The binary
//! and the test kit start the proxy the same way, through [`Gateway::start`].
//!
//! Nothing here waits for the database: the proxy serves from the moment it starts (keys
//! from the directory's snapshot, spend to the writer's spool) while the store is migrated
//! in the background, and whatever needs the database starts once it answers.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinHandle;
use tollgate_config::Config;
use tollgate_store::{SecretBox, ShutdownReport, SpendWriter, Store, StoreError, WriterConfig};

use crate::access::Directory;
use crate::access::snapshot::SNAPSHOT_FILE_NAME;
use crate::copilot::AccountSync;
use crate::counters::Counters;
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
    /// How often the dashboard's running windows are checked for a new day (and rebuilt).
    pub spend_windows_every: Duration,
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
            spend_windows_every: Duration::from_secs(60),
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
    /// Starts the spend writer and the directory (from its snapshot in the data directory,
    /// if there is one), and returns the proxy's state at once; migrates the store in the
    /// background, retrying until the database answers, then loads the directory from it and
    /// starts the work that needs it.
    pub async fn start(
        config: &Config,
        http: reqwest::Client,
        store: Store,
        secret_box: Arc<SecretBox>,
        options: GatewayOptions,
    ) -> Result<Self, std::io::Error> {
        let snapshot = config.settings.data_dir.join(SNAPSHOT_FILE_NAME);
        let directory = Arc::new(Directory::with_snapshot(snapshot));
        if let Err(e) = directory.load_snapshot() {
            tracing::warn!(error = %e, "the key directory snapshot cannot be read; ignoring it");
        }
        let mut writer_config = WriterConfig::new(config.settings.data_dir.join("spool"));
        writer_config.flush_interval = options.flush_interval;
        let acked = directory.clone();
        writer_config.on_written = Some(Arc::new(move |records| acked.written(records)));
        let writer = SpendWriter::start(store.clone(), writer_config)?;
        let sink = SpendSink { writer, directory: directory.clone() };
        let counters = match &config.settings.redis_url {
            Some(url) => Counters::redis(url).map_err(std::io::Error::other)?,
            None => Counters::local(),
        };
        let state =
            AppState::new(config, http, store.clone(), secret_box.clone(), sink, counters.clone());
        // A Copilot account another process found used up is used up here too.
        let quota = state.quota().clone();
        directory.on_copilot_used_up(move |owner| {
            quota.exhausted(owner);
        });

        // Stored models from the last run's copy, until the database answers.
        state.models().load_snapshot(&secret_box).await;
        state.mcp_servers().load_snapshot(&secret_box, &state.models().file()).await;
        let secret_box_for_models = secret_box.clone();
        let secret_box_for_mcp = secret_box.clone();
        let accounts = Arc::new(AccountSync::new(state.providers().copilot().clone(), secret_box));
        let retention = config.settings.spend_log_retention;
        let (ready_tx, ready) = tokio::sync::watch::channel(false);
        let bring_up = {
            let (store, accounts) = (store.clone(), accounts.clone());
            tokio::spawn(async move {
                migrate_until_done(&store).await;
                // Linked accounts before the directory, so a key that works has its account.
                if let Err(e) = accounts.sync(&store).await {
                    tracing::warn!(error = %e, "Copilot accounts not loaded yet; retrying in the background");
                }
                let _ = ready_tx.send(true);
            })
        };
        let tasks = vec![
            bring_up,
            after_migration(&ready, accounts.run(store.clone(), options.account_sync)),
            tokio::spawn(
                state
                    .quota()
                    .clone()
                    .run(state.providers().copilot().clone(), Duration::from_secs(300)),
            ),
            after_migration(
                &ready,
                directory.clone().run(store.clone(), options.directory_poll, options.reconcile),
            ),
            after_migration(
                &ready,
                state.models().clone().follow(
                    store.clone(),
                    secret_box_for_models,
                    options.reconcile,
                ),
            ),
            after_migration(&ready, {
                let models = state.models().clone();
                state.mcp_servers().clone().follow(
                    store.clone(),
                    secret_box_for_mcp,
                    move || models.file(),
                    options.reconcile,
                )
            }),
            after_migration(&ready, budget_resets(store.clone(), options.budget_reset_every)),
            after_migration(&ready, spend_windows(store.clone(), options.spend_windows_every)),
            after_migration(&ready, upkeep(store, retention, options.upkeep_every)),
            tokio::spawn(cooldown_gauges(state.clone())),
            tokio::spawn(counters.run(cooldowns_from_peers(state.clone()))),
        ];
        Ok(Self { state, tasks })
    }

    /// Stops background work and drains the spend writer: whatever cannot reach the
    /// database within `timeout` is spooled to disk for the next start.
    pub async fn shutdown(self, timeout: Duration) -> ShutdownReport {
        for t in &self.tasks {
            t.abort();
        }
        // MCP servers run as children of this process: stopped, not left behind.
        self.state.mcp().shutdown().await;
        self.state.sink().writer.shutdown(timeout).await
    }
}

/// Applies a cooldown another replica announced to the deployment with that id, if this
/// replica has it.
fn cooldowns_from_peers(state: AppState) -> impl Fn(&str, std::time::Instant) + Send + Sync {
    move |id, until| {
        let router = state.router();
        if let Some(d) = router.catalog().deployments().find(|d| d.id() == id) {
            d.health.rest_until(until);
            tracing::debug!(deployment = d.label(), "cooldown from another replica");
        }
    }
}

/// Runs `work` once the store is migrated.
fn after_migration<F>(ready: &tokio::sync::watch::Receiver<bool>, work: F) -> JoinHandle<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let mut ready = ready.clone();
    tokio::spawn(async move {
        if ready.wait_for(|done| *done).await.is_ok() {
            work.await;
        }
    })
}

/// Migrates, retrying for as long as the process runs; logs the first failure, then quietly.
pub async fn migrate_until_done(store: &Store) {
    let mut wait = Duration::from_millis(200);
    let mut failures = 0u64;
    loop {
        match store.migrate().await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(failures, "database answers; store migrated");
                }
                return;
            }
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(error = %e, "database not ready; serving without it and retrying");
                } else {
                    tracing::debug!(error = %e, "database still not ready");
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Migrates, retrying until the database answers or `give_up_after` has passed. For
/// commands that cannot do anything without the database.
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
        crate::metrics::record_cooldowns(&state.router());
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

/// Keeps the running windows the dashboard ranks from ending on today (UTC): at start, then
/// every `every`; the first process to see a new day rebuilds them, the others find it done.
async fn spend_windows(store: Store, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.roll_spend_windows(Utc::now().date_naive()).await {
            Ok(true) => tracing::info!("spend ranking windows rebuilt for the new day"),
            Ok(false) => {}
            Err(e) => tracing::debug!(error = %e, "spend windows not rebuilt: store unavailable"),
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
        // Console sessions past their end are refused when shown; here they are removed.
        if let Err(e) = store.delete_expired_sessions(now).await {
            tracing::warn!(error = %e, "expired console sessions not removed");
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
