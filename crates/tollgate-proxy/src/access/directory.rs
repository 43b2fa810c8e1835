//! Every virtual key, user and team in memory, so that authentication and admission never
//! wait on the database. Loaded at start-up, kept fresh from the store's change feed (so
//! changes made by other processes arrive within seconds) and from the spend of budgeted
//! entities that changed (so other processes' spend counts against budgets here within
//! about two seconds), and fully reconciled periodically.
//! Each load and each change is also written to a snapshot on disk (see [`super::snapshot`]),
//! which a process started while the database is down serves from until it answers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tollgate_store::{
    EntityKind, KeyFilter, KeyRecord, Limits, Page, SpendChange, SpendRecord, Store, StoreError,
    TeamRecord, UserRecord,
};

use super::limits::{InFlight, RequestRate, TokenWindow};
use super::snapshot::{self, Snapshot};

/// How far each read of changed spend looks back before the previous read began. The stamps
/// it compares are the writing processes' clocks, taken just before their commits, so this
/// covers clock skew between replicas and commit delay; a row read twice is harmless.
const SPEND_LOOKBACK: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// This process's spend writes counted when a store read began (see [`Directory::mark`]):
/// a figure read after it is taken only for entities no later write of ours reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadMark(u64);

/// Counters of one key, user or team. They outlive record reloads: updating a key does not
/// reset its rate limits.
#[derive(Debug)]
pub struct EntityState {
    rpm: RwLock<Option<Arc<RequestRate>>>,
    /// Tokens over the last minute.
    pub tokens: TokenWindow,
    /// Requests in flight.
    pub in_flight: InFlight,
    /// Money spent this budget period.
    pub spend: Meter,
    /// Copilot premium units used this premium period.
    pub premium: Meter,
}

/// An amount as this process knows it: the database's figure when last read, plus what this
/// process recorded since (written or still queued); and what requests in flight here have
/// reserved of the budget, which no reload touches.
#[derive(Debug, Default)]
pub struct Meter(Mutex<MeterState>);

#[derive(Debug, Default, Clone, Copy)]
struct MeterState {
    snapshot: f64,
    pending: f64,
    written_since_snapshot: f64,
    reserved: f64,
    /// The [`Directory::write_epoch`] of this process's last write counted here.
    written_epoch: u64,
}

impl Meter {
    fn with<T>(&self, f: impl FnOnce(&mut MeterState) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The amount used this period.
    pub fn used(&self) -> f64 {
        self.with(|s| s.snapshot + s.pending + s.written_since_snapshot)
    }

    /// The amount used this period, and what requests in flight have reserved.
    pub fn used_and_reserved(&self) -> (f64, f64) {
        self.with(|s| (s.snapshot + s.pending + s.written_since_snapshot, s.reserved))
    }

    /// Holds `amount` for a request in flight.
    pub fn reserve(&self, amount: f64) {
        self.with(|s| s.reserved += amount);
    }

    /// Holds `amount` for a request in flight if what is used, what is held and `amount`
    /// stay within `max` (in one step, so concurrent requests cannot both take the last of
    /// it); else holds nothing and answers what is used and held.
    pub fn try_reserve(&self, amount: f64, max: f64) -> Result<(), (f64, f64)> {
        self.with(|s| {
            let used = s.snapshot + s.pending + s.written_since_snapshot;
            // A little slack for sums of fractional amounts such as 0.33.
            if used + s.reserved + amount > max + 1e-9 {
                return Err((used, s.reserved));
            }
            s.reserved += amount;
            Ok(())
        })
    }

    /// Gives back what [`Meter::reserve`] held.
    pub fn release(&self, amount: f64) {
        self.with(|s| s.reserved = (s.reserved - amount).max(0.0));
    }

    /// Counts a finished request's amount, not yet written.
    fn charge(&self, amount: f64) {
        if amount > 0.0 {
            self.with(|s| s.pending += amount);
        }
    }

    /// Moves an amount the spend writer stored (in write `epoch`) from pending to written.
    fn written(&self, amount: f64, epoch: u64) {
        if amount > 0.0 {
            self.with(|s| {
                s.pending = (s.pending - amount).max(0.0);
                s.written_since_snapshot += amount;
                s.written_epoch = epoch;
            });
        }
    }

    /// Takes a stored figure read by a read that began at `mark`. If a write of this process
    /// reached the entity since, the figure is left alone: that write's commit may or may
    /// not be in it, and taking it could lose the write's amount. A write whose commit is in
    /// the figure and whose acknowledgement comes after this counts twice for now. Both
    /// heal on the next read of changed spend, because each write stamps the rows it
    /// changes, so they are read again.
    fn take_stored(&self, stored: f64, mark: ReadMark) {
        self.with(|s| {
            if s.written_epoch <= mark.0 {
                s.snapshot = stored;
                s.written_since_snapshot = 0.0;
            }
        });
    }
}

impl EntityState {
    fn new(base: Instant) -> Self {
        Self {
            rpm: RwLock::new(None),
            tokens: TokenWindow::new(base),
            in_flight: InFlight::default(),
            spend: Meter::default(),
            premium: Meter::default(),
        }
    }

    /// The request-rate limiter for the current limit, if any.
    pub fn rpm(&self) -> Option<Arc<RequestRate>> {
        self.rpm.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_rpm(&self, limit: Option<i64>) {
        let wanted = limit.filter(|l| *l > 0).map(|l| l as u64);
        let current = self.rpm().map(|r| r.limit());
        if wanted != current {
            *self.rpm.write().unwrap_or_else(|e| e.into_inner()) =
                wanted.map(|l| Arc::new(RequestRate::new(l)));
        }
    }
}

/// A key with its counters.
#[derive(Debug)]
pub struct KeyEntry {
    /// The stored key.
    pub record: KeyRecord,
    /// Its counters.
    pub state: Arc<EntityState>,
}

/// A user with its counters.
#[derive(Debug)]
pub struct UserEntry {
    /// The stored user.
    pub record: UserRecord,
    /// Its counters.
    pub state: Arc<EntityState>,
}

/// A team with its counters.
#[derive(Debug)]
pub struct TeamEntry {
    /// The stored team.
    pub record: TeamRecord,
    /// Its counters.
    pub state: Arc<EntityState>,
}

/// Where the directory's keys, users and teams come from right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Nothing yet: the database has not answered and there is no snapshot.
    Nothing,
    /// The snapshot taken at this time, until the database answers.
    Snapshot(DateTime<Utc>),
    /// The database.
    Database,
}

/// The in-memory directory.
#[derive(Debug)]
pub struct Directory {
    keys: RwLock<HashMap<String, Arc<KeyEntry>>>,
    users: RwLock<HashMap<String, Arc<UserEntry>>>,
    teams: RwLock<HashMap<String, Arc<TeamEntry>>>,
    states: Mutex<HashMap<(EntityKind, String), Arc<EntityState>>>,
    /// Loaded from the database at least once.
    loaded: AtomicBool,
    /// Loaded from the snapshot of this time, and not from the database since.
    from_snapshot: Mutex<Option<DateTime<Utc>>>,
    /// Whether the last read of the store succeeded.
    store_ok: AtomicBool,
    /// Where the snapshot lives, if one is kept.
    snapshot_path: Option<PathBuf>,
    cursor: AtomicI64,
    /// Counts this process's spend writes (see [`Directory::written`]), so a read of changed
    /// spend can tell which entities a write of ours reached while it ran.
    write_epoch: AtomicU64,
    /// When the last successful read of changed spend began (this clock); the next one reads
    /// from [`SPEND_LOOKBACK`] before it. Set by the first full load.
    spend_read_at: Mutex<Option<DateTime<Utc>>>,
    base: Instant,
    /// Woken when the feed shows a stored model or a named credential changed; the model
    /// table rebuilds on it.
    models_changed: Arc<tokio::sync::Notify>,
    /// Woken when the feed shows a stored MCP server changed; the MCP server table rebuilds
    /// on it.
    mcp_changed: Arc<tokio::sync::Notify>,
    /// Told the owner of each linked Copilot account the feed says has used up its premium
    /// requests.
    copilot_used_up: std::sync::OnceLock<UsedUp>,
}

/// What [`Directory::on_copilot_used_up`] calls.
struct UsedUp(Box<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for UsedUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UsedUp")
    }
}

impl Default for Directory {
    fn default() -> Self {
        Self::new()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Directory {
    /// An empty directory, not yet loaded, that keeps no snapshot.
    pub fn new() -> Self {
        Self {
            keys: RwLock::default(),
            users: RwLock::default(),
            teams: RwLock::default(),
            states: Mutex::default(),
            loaded: AtomicBool::new(false),
            from_snapshot: Mutex::new(None),
            store_ok: AtomicBool::new(false),
            snapshot_path: None,
            cursor: AtomicI64::new(0),
            write_epoch: AtomicU64::new(0),
            spend_read_at: Mutex::new(None),
            base: Instant::now(),
            models_changed: Arc::default(),
            mcp_changed: Arc::default(),
            copilot_used_up: std::sync::OnceLock::new(),
        }
    }

    /// An empty directory that keeps its snapshot at `path`.
    pub fn with_snapshot(path: PathBuf) -> Self {
        Self { snapshot_path: Some(path), ..Self::new() }
    }

    /// Has `used_up` told of each Copilot account the change feed says used up its premium
    /// requests (in any process). Set once; later calls are ignored.
    pub fn on_copilot_used_up(&self, used_up: impl Fn(&str) + Send + Sync + 'static) {
        let _ = self.copilot_used_up.set(UsedUp(Box::new(used_up)));
    }

    /// What the feed wakes when a stored model or named credential changes.
    pub fn models_changed(&self) -> Arc<tokio::sync::Notify> {
        self.models_changed.clone()
    }

    /// What the feed wakes when a stored MCP server changes.
    pub fn mcp_changed(&self) -> Arc<tokio::sync::Notify> {
        self.mcp_changed.clone()
    }

    /// Whether keys are known: loaded from the database, or from the snapshot while the
    /// database has not answered yet.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire) || self.snapshot_time().is_some()
    }

    /// Where keys, users and teams come from right now.
    pub fn source(&self) -> Source {
        match self.snapshot_time() {
            Some(at) => Source::Snapshot(at),
            None if self.loaded.load(Ordering::Acquire) => Source::Database,
            None => Source::Nothing,
        }
    }

    /// Whether the last read of the store (load, change feed) succeeded.
    pub fn store_reachable(&self) -> bool {
        self.store_ok.load(Ordering::Acquire)
    }

    fn snapshot_time(&self) -> Option<DateTime<Utc>> {
        *self.from_snapshot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fills the directory from the snapshot, unless it was loaded from the database already.
    /// Returns whether a snapshot was found.
    pub fn load_snapshot(&self) -> std::io::Result<bool> {
        let Some(path) = &self.snapshot_path else { return Ok(false) };
        let Some(snapshot) = snapshot::load(path)? else { return Ok(false) };
        let mut from = self.from_snapshot.lock().unwrap_or_else(|e| e.into_inner());
        if self.loaded.load(Ordering::Acquire) {
            return Ok(false);
        }
        let counts = (snapshot.keys.len(), snapshot.users.len(), snapshot.teams.len());
        let mark = self.mark();
        snapshot.keys.into_iter().for_each(|k| self.put_key(k, mark));
        snapshot.users.into_iter().for_each(|u| self.put_user(u, mark));
        snapshot.teams.into_iter().for_each(|t| self.put_team(t, mark));
        *from = Some(snapshot.taken_at);
        tracing::info!(
            keys = counts.0,
            users = counts.1,
            teams = counts.2,
            taken_at = %snapshot.taken_at,
            "key directory loaded from its snapshot until the database answers"
        );
        Ok(true)
    }

    /// Writes what the directory holds to the snapshot, with the spend this process counts.
    pub async fn save_snapshot(&self) {
        let Some(path) = self.snapshot_path.clone() else { return };
        let keys = read(&self.keys)
            .values()
            .map(|k| KeyRecord {
                spend: k.state.spend.used(),
                premium_spend: k.state.premium.used(),
                ..k.record.clone()
            })
            .collect();
        let users = read(&self.users)
            .values()
            .map(|u| UserRecord {
                spend: u.state.spend.used(),
                premium_spend: u.state.premium.used(),
                ..u.record.clone()
            })
            .collect();
        let teams = read(&self.teams)
            .values()
            .map(|t| TeamRecord {
                spend: t.state.spend.used(),
                premium_spend: t.state.premium.used(),
                ..t.record.clone()
            })
            .collect();
        let snapshot = Snapshot::new(keys, users, teams);
        let saved = tokio::task::spawn_blocking(move || snapshot::save(&path, &snapshot)).await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot write the key directory snapshot"),
            Err(e) => tracing::warn!(error = %e, "cannot write the key directory snapshot"),
        }
    }

    /// A key by hash.
    pub fn key(&self, token_hash: &str) -> Option<Arc<KeyEntry>> {
        read(&self.keys).get(token_hash).cloned()
    }

    /// A user by id.
    pub fn user(&self, user_id: &str) -> Option<Arc<UserEntry>> {
        read(&self.users).get(user_id).cloned()
    }

    /// A team by id.
    pub fn team(&self, team_id: &str) -> Option<Arc<TeamEntry>> {
        read(&self.teams).get(team_id).cloned()
    }

    /// Where this process's spend writes stand; take it before a store read whose records
    /// are then put with it.
    pub fn mark(&self) -> ReadMark {
        ReadMark(self.write_epoch.load(Ordering::Acquire))
    }

    fn state(
        &self,
        kind: EntityKind,
        id: &str,
        limits: &Limits,
        stored: [f64; 2],
        mark: ReadMark,
    ) -> Arc<EntityState> {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let state = states
            .entry((kind, id.to_owned()))
            .or_insert_with(|| Arc::new(EntityState::new(self.base)))
            .clone();
        state.set_rpm(limits.rpm_limit);
        state.spend.take_stored(stored[0], mark);
        state.premium.take_stored(stored[1], mark);
        state
    }

    fn forget_state(&self, kind: EntityKind, id: &str) {
        self.states.lock().unwrap_or_else(|e| e.into_inner()).remove(&(kind, id.to_owned()));
    }

    /// Puts a key as read from the store by a read that began at `mark`.
    pub fn put_key(&self, record: KeyRecord, mark: ReadMark) {
        let stored = [record.spend, record.premium_spend];
        let state = self.state(EntityKind::Key, &record.token_hash, &record.limits, stored, mark);
        let hash = record.token_hash.clone();
        write(&self.keys).insert(hash, Arc::new(KeyEntry { record, state }));
    }

    /// Puts a user as read from the store by a read that began at `mark`.
    pub fn put_user(&self, record: UserRecord, mark: ReadMark) {
        let stored = [record.spend, record.premium_spend];
        let state = self.state(EntityKind::User, &record.user_id, &record.limits, stored, mark);
        let id = record.user_id.clone();
        write(&self.users).insert(id, Arc::new(UserEntry { record, state }));
    }

    /// Puts a team as read from the store by a read that began at `mark`.
    pub fn put_team(&self, record: TeamRecord, mark: ReadMark) {
        let stored = [record.spend, record.premium_spend];
        let state = self.state(EntityKind::Team, &record.team_id, &record.limits, stored, mark);
        let id = record.team_id.clone();
        write(&self.teams).insert(id, Arc::new(TeamEntry { record, state }));
    }

    /// Removes a key.
    pub fn remove_key(&self, token_hash: &str) {
        write(&self.keys).remove(token_hash);
        self.forget_state(EntityKind::Key, token_hash);
    }

    /// Removes a user.
    pub fn remove_user(&self, user_id: &str) {
        write(&self.users).remove(user_id);
        self.forget_state(EntityKind::User, user_id);
    }

    /// Removes a team.
    pub fn remove_team(&self, team_id: &str) {
        write(&self.teams).remove(team_id);
        self.forget_state(EntityKind::Team, team_id);
    }

    /// Reads everything from the store, replacing what is held. Changes made while loading
    /// are replayed by the next [`Directory::refresh`], because the feed position is taken
    /// first.
    pub async fn load_all(&self, store: &Store) -> Result<(), StoreError> {
        let started = Utc::now();
        let mark = self.mark();
        let cursor = store.latest_change().await?;
        let keys =
            all_pages(|page, size| store.list_keys(KeyFilter { page, size, ..Default::default() }))
                .await?;
        let users =
            all_pages(|page, size| store.list_users(Page { page, size, ..Default::default() }))
                .await?;
        let teams =
            all_pages(|page, size| store.list_teams(Page { page, size, ..Default::default() }))
                .await?;

        let key_ids: std::collections::HashSet<String> =
            keys.iter().map(|k| k.token_hash.clone()).collect();
        let user_ids: std::collections::HashSet<String> =
            users.iter().map(|u| u.user_id.clone()).collect();
        let team_ids: std::collections::HashSet<String> =
            teams.iter().map(|t| t.team_id.clone()).collect();
        for k in keys {
            self.put_key(k, mark);
        }
        for u in users {
            self.put_user(u, mark);
        }
        for t in teams {
            self.put_team(t, mark);
        }
        let stale_keys: Vec<String> =
            read(&self.keys).keys().filter(|k| !key_ids.contains(*k)).cloned().collect();
        stale_keys.iter().for_each(|k| self.remove_key(k));
        let stale_users: Vec<String> =
            read(&self.users).keys().filter(|k| !user_ids.contains(*k)).cloned().collect();
        stale_users.iter().for_each(|u| self.remove_user(u));
        let stale_teams: Vec<String> =
            read(&self.teams).keys().filter(|k| !team_ids.contains(*k)).cloned().collect();
        stale_teams.iter().for_each(|t| self.remove_team(t));

        // Events the feed carries without a stored state to reload (a Copilot account used
        // up) are not in what was just read: pass on those this load skips over.
        let before = self.cursor.load(Ordering::Acquire);
        if self.loaded.load(Ordering::Acquire) && before < cursor {
            self.pass_on_events(store, before, cursor).await?;
        }
        self.cursor.fetch_max(cursor, Ordering::AcqRel);
        // Spend changed after this load began is read by the next `refresh_spend`.
        lock(&self.spend_read_at).get_or_insert(started);
        // The database's view has replaced the snapshot's, stale entries included.
        let mut from = self.from_snapshot.lock().unwrap_or_else(|e| e.into_inner());
        self.store_ok.store(true, Ordering::Release);
        self.loaded.store(true, Ordering::Release);
        *from = None;
        Ok(())
    }

    /// Passes on the events of the feed after `after` up to `through` (see
    /// [`EntityKind::CopilotQuota`]).
    async fn pass_on_events(
        &self,
        store: &Store,
        mut after: i64,
        through: i64,
    ) -> Result<(), StoreError> {
        while after < through {
            let changes = store.changes_since(after, 500).await?;
            let Some(last) = changes.last() else { break };
            after = last.seq;
            for c in changes.iter().filter(|c| c.seq <= through) {
                if c.kind == EntityKind::CopilotQuota
                    && let Some(used_up) = self.copilot_used_up.get()
                {
                    (used_up.0)(&c.id);
                }
            }
        }
        Ok(())
    }

    /// Applies changes from the feed since the last position. Returns how many were applied.
    pub async fn refresh(&self, store: &Store) -> Result<usize, StoreError> {
        let mut applied = 0;
        loop {
            let after = self.cursor.load(Ordering::Acquire);
            let changes = store.changes_since(after, 500).await?;
            if changes.is_empty() {
                return Ok(applied);
            }
            for change in &changes {
                self.reload(store, change.kind, &change.id).await?;
            }
            applied += changes.len();
            if let Some(last) = changes.last() {
                self.cursor.fetch_max(last.seq, Ordering::AcqRel);
            }
        }
    }

    /// Reads the stored spend of budgeted keys, users and teams that changed since shortly
    /// before the last read (any process's spend batches and budget resets), and takes it as
    /// their spend figure, as a reload would. Returns how many it read.
    pub async fn refresh_spend(&self, store: &Store) -> Result<usize, StoreError> {
        let Some(last) = *lock(&self.spend_read_at) else { return Ok(0) };
        let started = Utc::now();
        let mark = self.mark();
        let changed = store.spend_changed_since(last - SPEND_LOOKBACK).await?;
        self.apply_spend(&changed, mark);
        let mut read_at = lock(&self.spend_read_at);
        *read_at = Some(read_at.map_or(started, |t| t.max(started)));
        Ok(changed.len())
    }

    /// Takes stored spend figures read by a read that began at `mark`.
    fn apply_spend(&self, changed: &[SpendChange], mark: ReadMark) {
        let states = lock(&self.states);
        for c in changed {
            let Some(state) = states.get(&(c.kind, c.id.clone())) else { continue };
            state.spend.take_stored(c.spend, mark);
            state.premium.take_stored(c.premium_spend, mark);
        }
    }

    /// Re-reads one entity from the store.
    pub async fn reload(
        &self,
        store: &Store,
        kind: EntityKind,
        id: &str,
    ) -> Result<(), StoreError> {
        let mark = self.mark();
        match kind {
            EntityKind::Key => match store.get_key(id).await? {
                Some(k) => self.put_key(k, mark),
                None => self.remove_key(id),
            },
            EntityKind::User => match store.get_user(id).await? {
                Some(u) => self.put_user(u, mark),
                None => self.remove_user(id),
            },
            EntityKind::Team => match store.get_team(id).await? {
                Some(t) => self.put_team(t, mark),
                None => self.remove_team(id),
            },
            // Models and named credentials belong to the model table, told here; linked
            // accounts are reloaded by the Copilot account registry.
            EntityKind::Model => self.models_changed.notify_one(),
            EntityKind::McpServer => self.mcp_changed.notify_one(),
            EntityKind::CopilotQuota => {
                if let Some(used_up) = self.copilot_used_up.get() {
                    (used_up.0)(id);
                }
            }
            EntityKind::Credential => {
                if tollgate_store::split_credential_id(id)
                    .is_some_and(|(provider, _)| provider == crate::models::CREDENTIAL_PROVIDER)
                {
                    self.models_changed.notify_one();
                }
            }
        }
        Ok(())
    }

    fn states_of(&self, r: &SpendRecord) -> Vec<Arc<EntityState>> {
        let mut out = Vec::with_capacity(3);
        if let Some(k) = r.token_hash.as_deref().and_then(|h| self.key(h)) {
            out.push(k.state.clone());
        }
        if let Some(u) = r.user_id.as_deref().and_then(|u| self.user(u)) {
            out.push(u.state.clone());
        }
        if let Some(t) = r.team_id.as_deref().and_then(|t| self.team(t)) {
            out.push(t.state.clone());
        }
        out
    }

    /// Counts a finished request's cost and tokens against its key, user and team.
    pub fn charge(&self, record: &SpendRecord) {
        let tokens = (record.prompt_tokens + record.completion_tokens).max(0) as u64;
        let now = Instant::now();
        for state in self.states_of(record) {
            state.tokens.add(now, tokens);
            state.spend.charge(record.cost);
            state.premium.charge(record.premium_units);
        }
    }

    /// Moves costs the spend writer has stored from pending to written.
    pub fn written(&self, records: &[SpendRecord]) {
        let epoch = self.write_epoch.fetch_add(1, Ordering::AcqRel) + 1;
        for r in records.iter().filter(|r| r.cost > 0.0 || r.premium_units > 0.0) {
            for state in self.states_of(r) {
                state.spend.written(r.cost, epoch);
                state.premium.written(r.premium_units, epoch);
            }
        }
    }

    /// Keeps the directory in step with the store until the process ends: the first full
    /// load (retried until the database answers), the change feed and changed spend every
    /// `poll`, and a full reconciliation every `reconcile`; the snapshot is rewritten after
    /// each load and each batch of changes.
    pub async fn run(self: Arc<Self>, store: Store, poll: Duration, reconcile: Duration) {
        let mut failing = false;
        loop {
            match self.load_all(&store).await {
                Ok(()) => break,
                Err(e) => {
                    self.store_ok.store(false, Ordering::Release);
                    if !failing {
                        tracing::warn!(error = %e, "cannot load keys yet; retrying");
                        failing = true;
                    }
                    tokio::time::sleep(poll.max(Duration::from_millis(500))).await;
                }
            }
        }
        self.store_ok.store(true, Ordering::Release);
        self.save_snapshot().await;
        tracing::info!(
            keys = read(&self.keys).len(),
            users = read(&self.users).len(),
            teams = read(&self.teams).len(),
            "key directory loaded"
        );
        let mut last_full = Instant::now();
        let mut failing = false;
        loop {
            tokio::time::sleep(poll).await;
            let result = if last_full.elapsed() >= reconcile {
                last_full = Instant::now();
                self.load_all(&store).await.map(|()| 1)
            } else {
                self.refresh(&store).await
            };
            let result = match result {
                Ok(changed) => self.refresh_spend(&store).await.map(|_| changed),
                Err(e) => Err(e),
            };
            self.store_ok.store(result.is_ok(), Ordering::Release);
            if result.as_ref().is_ok_and(|changed| *changed > 0) {
                self.save_snapshot().await;
            }
            match (result, failing) {
                (Err(e), false) => {
                    tracing::warn!(error = %e, "key directory cannot reach the store; serving from memory");
                    failing = true;
                }
                (Ok(_), true) => {
                    tracing::info!("key directory reaches the store again");
                    failing = false;
                }
                _ => {}
            }
        }
    }
}

async fn all_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>, StoreError>
where
    F: FnMut(u32, u32) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, StoreError>>,
{
    const SIZE: u32 = 1000;
    let mut out = Vec::new();
    for page in 1.. {
        let batch = fetch(page, SIZE).await?;
        let done = batch.len() < SIZE as usize;
        out.extend(batch);
        if done {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn budgeted_key(spend: f64) -> KeyRecord {
        let now = Utc::now();
        KeyRecord {
            token_hash: "k1".into(),
            key_name: "sk-...k1".into(),
            key_alias: None,
            user_id: None,
            team_id: None,
            models: Vec::new(),
            limits: Limits { max_budget: Some(10.0), ..Limits::default() },
            spend,
            budget_reset_at: None,
            premium_spend: 0.0,
            premium_budget_reset_at: None,
            expires: None,
            blocked: false,
            metadata: serde_json::json!({}),
            permissions: serde_json::json!({}),
            object_permission: Default::default(),
            created_at: now,
            updated_at: now,
        }
    }

    fn spent(cost: f64) -> SpendRecord {
        let now = Utc::now();
        SpendRecord {
            request_id: "r1".into(),
            client_request_id: None,
            started_at: now,
            ended_at: now,
            token_hash: Some("k1".into()),
            user_id: None,
            team_id: None,
            api: "chat_completions".into(),
            requested_model: "m".into(),
            model_group: "m".into(),
            served_model: "openai/m".into(),
            provider: "openai".into(),
            prompt_tokens: 1,
            completion_tokens: 1,
            cached_tokens: 0,
            cost,
            premium_units: 0.0,
            latency_ms: 1.0,
            ttft_ms: None,
            status: 200,
            outcome: "success".into(),
            attempts: serde_json::json!([]),
            stream: false,
            request_body: None,
            response_body: None,
        }
    }

    fn stored(spend: f64) -> Vec<SpendChange> {
        vec![SpendChange { kind: EntityKind::Key, id: "k1".into(), spend, premium_spend: 0.0 }]
    }

    fn spend_of_k1(d: &Directory) -> f64 {
        d.key("k1").unwrap().state.spend.used()
    }

    #[test]
    fn stored_spend_replaces_what_this_process_wrote_before_the_read() {
        let d = Directory::new();
        d.put_key(budgeted_key(1.0), d.mark());
        d.charge(&spent(0.5));
        d.written(&[spent(0.5)]);
        d.charge(&spent(0.25));
        assert_eq!(spend_of_k1(&d), 1.75);
        // Read after our write: the figure (with 2.0 from another process) includes it; the
        // cost still queued stays on top.
        let mark = d.mark();
        d.apply_spend(&stored(3.5), mark);
        assert_eq!(spend_of_k1(&d), 3.75);
        // Entities nobody holds, or that are not in the answer, are left alone.
        d.apply_spend(
            &[SpendChange {
                kind: EntityKind::User,
                id: "nobody".into(),
                spend: 9.0,
                premium_spend: 0.0,
            }],
            mark,
        );
        assert_eq!(spend_of_k1(&d), 3.75);
    }

    #[test]
    fn a_write_acknowledged_during_the_read_is_not_lost() {
        let d = Directory::new();
        d.put_key(budgeted_key(1.0), d.mark());
        d.charge(&spent(0.5));
        let mark = d.mark();
        // The read began; our write committed after it and was acknowledged before the
        // answer arrived, so the figure (1.0) lacks its 0.5. Taking it would forget the 0.5.
        d.written(&[spent(0.5)]);
        d.apply_spend(&stored(1.0), mark);
        assert_eq!(spend_of_k1(&d), 1.5);
        // The write stamped the row, so the next read has it and settles the figure.
        let mark = d.mark();
        d.apply_spend(&stored(1.5), mark);
        assert_eq!(spend_of_k1(&d), 1.5);
    }

    #[test]
    fn a_reload_that_raced_a_write_keeps_the_writes_cost() {
        let d = Directory::new();
        d.put_key(budgeted_key(0.0), d.mark());
        d.charge(&spent(0.5));
        // A reload of the key (a change from the feed) began; our write committed after its
        // read and was acknowledged before the record arrived without the 0.5.
        let mark = d.mark();
        d.written(&[spent(0.5)]);
        d.put_key(budgeted_key(0.0), mark);
        assert_eq!(spend_of_k1(&d), 0.5);
        // A reload that began after the write takes the stored figure.
        d.put_key(budgeted_key(0.5), d.mark());
        assert_eq!(spend_of_k1(&d), 0.5);
        d.put_key(budgeted_key(2.0), d.mark());
        assert_eq!(spend_of_k1(&d), 2.0);
    }
}
