//! tollgate's system of record: virtual keys, users, teams and spend logs, behind one
//! [`Store`] API with two backends — PostgreSQL, and an embedded SQLite file used when no
//! database is configured. Both pass one conformance suite.
//!
//! At start-up: [`connect`] (or [`open`], which does not wait for a database server), then
//! [`StoreApi::migrate`]. Periodically: [`StoreApi::maintain`]
//! (daily is plenty: on PostgreSQL it creates next month's spend-log partition ahead of time),
//! [`StoreApi::reset_due_budgets`], [`StoreApi::delete_spend_before`] for retention, and
//! [`StoreApi::delete_expired_sessions`].

mod budget;
mod connect;
mod crypto;
mod object_permission;
mod paging;
mod patch;
mod queries;
mod rollup;
mod rows;
mod sql;
mod types;
mod writer;

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

pub use budget::{next_month_start, parse_budget_duration, premium_reset_after};
pub use connect::{SQLITE_FILE_NAME, connect, open, redact_url};
pub use crypto::{SECRET_KEY_FILE, SecretBox};
pub use object_permission::ObjectPermission;
pub use paging::{ListCursor, ListOrder, SortValue, SpendCursor, StatusRange};
pub use rollup::{LATENCY_BOUNDS_MS, WINDOW_SPANS, latency_percentile};
pub use types::*;
pub use writer::*;

/// A store shared by every part of the process.
pub type Store = Arc<dyn StoreApi>;

/// Which database a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// Embedded SQLite.
    Sqlite,
}

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The entity does not exist.
    #[error("{kind} `{id}` not found")]
    NotFound {
        /// `key`, `user`, `team`.
        kind: &'static str,
        /// Its id (for keys, a display form, never the hash of a secret typed by a user).
        id: String,
    },
    /// A unique value is taken.
    #[error("{0}")]
    Conflict(String),
    /// A value is not acceptable (e.g. a malformed budget duration).
    #[error("{0}")]
    Invalid(String),
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A credential cannot be sealed or opened, or the secret key cannot be loaded. The
    /// message names what to do and never contains key material.
    #[error("{0}")]
    Crypto(String),
}

/// What the spend writer needs of a store: to know whether the database answers, and to write
/// batches. Every [`StoreApi`] is one; a writer can also run on something smaller.
#[async_trait]
pub trait SpendStore: Send + Sync + Debug {
    /// Checks the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Inserts spend records in one transaction with multi-row inserts. Records whose
    /// `request_id` is already stored are skipped, so a batch can be retried safely. For
    /// the newly inserted ones only, adds their cost to the key's, user's and team's spend
    /// and to the daily rollup. Returns how many were new.
    async fn insert_spend(&self, records: &[SpendRecord]) -> Result<u64, StoreError>;
}

/// The store API. Every method is one short transaction; none is called on the request
/// path (keys are cached, spend goes through a batched writer).
#[async_trait]
pub trait StoreApi: SpendStore {
    /// Which backend this is.
    fn backend(&self) -> Backend;
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Periodic upkeep: on PostgreSQL, creates the spend-log partitions for the current and
    /// next month; nothing on SQLite. Also run by `migrate`.
    async fn maintain(&self, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Creates a key; `Conflict` if the hash exists.
    async fn create_key(&self, key: NewKey) -> Result<KeyRecord, StoreError>;
    /// A key by hash.
    async fn get_key(&self, token_hash: &str) -> Result<Option<KeyRecord>, StoreError>;
    /// Updates a key; `NotFound` if missing.
    async fn update_key(&self, token_hash: &str, patch: KeyPatch) -> Result<KeyRecord, StoreError>;
    /// Replaces a key's hash and display name, keeping everything else (spend included).
    async fn regenerate_key(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_key_name: &str,
    ) -> Result<KeyRecord, StoreError>;
    /// Deletes keys; returns how many existed.
    async fn delete_keys(&self, token_hashes: &[String]) -> Result<u64, StoreError>;
    /// Lists keys, newest first unless the filter's `order` says otherwise; pages by
    /// `page` or, with `after`, by keyset.
    async fn list_keys(&self, filter: KeyFilter) -> Result<Vec<KeyRecord>, StoreError>;

    /// Creates a user; `Conflict` if the id exists.
    async fn create_user(&self, user: NewUser) -> Result<UserRecord, StoreError>;
    /// A user by id.
    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Updates a user.
    async fn update_user(&self, user_id: &str, patch: UserPatch) -> Result<UserRecord, StoreError>;
    /// Deletes users (and their team memberships, UI sessions and passwords; their keys keep
    /// existing but lose the owner); returns how many existed.
    async fn delete_users(&self, user_ids: &[String]) -> Result<u64, StoreError>;
    /// Lists users, oldest first unless `page.order` says otherwise; pages by `page` or,
    /// with `after`, by keyset.
    async fn list_users(&self, page: Page) -> Result<Vec<UserRecord>, StoreError>;

    /// Creates a team (members must exist as users, or are created bare).
    async fn create_team(&self, team: NewTeam) -> Result<TeamRecord, StoreError>;
    /// A team by id.
    async fn get_team(&self, team_id: &str) -> Result<Option<TeamRecord>, StoreError>;
    /// Updates a team.
    async fn update_team(&self, team_id: &str, patch: TeamPatch) -> Result<TeamRecord, StoreError>;
    /// Deletes teams and their memberships; returns how many existed.
    async fn delete_teams(&self, team_ids: &[String]) -> Result<u64, StoreError>;
    /// Lists teams, oldest first unless `page.order` says otherwise; pages by `page` or,
    /// with `after`, by keyset.
    async fn list_teams(&self, page: Page) -> Result<Vec<TeamRecord>, StoreError>;
    /// Adds (or re-roles) members; users that do not exist are created bare.
    async fn add_team_members(
        &self,
        team_id: &str,
        members: &[TeamMember],
    ) -> Result<TeamRecord, StoreError>;
    /// Removes members.
    async fn remove_team_members(
        &self,
        team_id: &str,
        user_ids: &[String],
    ) -> Result<TeamRecord, StoreError>;

    /// Spend records, newest first (ties by request id, descending); with `before`, the
    /// ones after that record.
    async fn spend_logs(&self, filter: SpendFilter) -> Result<Vec<SpendRecord>, StoreError>;
    /// Number of stored spend records.
    async fn count_spend(&self) -> Result<u64, StoreError>;
    /// Daily rollup rows, by day then model.
    async fn daily_spend(&self, filter: RollupFilter) -> Result<Vec<DailySpend>, StoreError>;
    /// A dashboard's sums over `filter`'s days: per day, per day and outcome, per day and
    /// model group, latency histograms per model group, and the `top` busiest model groups,
    /// keys, users and teams. Made by the database from the narrow rollups (and, for the
    /// rankings of the last 1, 7 or 30 days, the running windows), so a long range costs a
    /// few hundred rows however many records it holds.
    async fn spend_summary(
        &self,
        filter: RollupFilter,
        top: u32,
    ) -> Result<SpendSummary, StoreError>;
    /// Rebuilds the running windows the rankings read so they end on `today`, unless they
    /// already end there or later; returns whether it rebuilt them. Cheap when current.
    async fn roll_spend_windows(&self, today: NaiveDate) -> Result<bool, StoreError>;
    /// Spend records that started at or after `since`, counted per model group and served
    /// model, with their failures: what each deployment did recently.
    async fn deployment_usage(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<DeploymentUsage>, StoreError>;
    /// Deletes raw spend records that started before `cutoff` (rollups are kept).
    async fn delete_spend_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Resets the spend of every key, user and team whose `budget_reset_at` has passed and
    /// schedules the next reset one `budget_duration` later. Returns how many were reset.
    async fn reset_due_budgets(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Stores a provider credential, replacing the one of the same provider and owner;
    /// appends a [`EntityKind::Credential`] change so other processes reload it.
    async fn put_credential(&self, c: NewCredential) -> Result<CredentialRecord, StoreError>;
    /// The credential of a provider and owner.
    async fn get_credential(
        &self,
        provider: &str,
        owner: &str,
    ) -> Result<Option<CredentialRecord>, StoreError>;
    /// A provider's credentials, by owner.
    async fn list_credentials(&self, provider: &str) -> Result<Vec<CredentialRecord>, StoreError>;
    /// Deletes a credential; returns whether it existed (and then appends a change).
    async fn delete_credential(&self, provider: &str, owner: &str) -> Result<bool, StoreError>;

    /// Stores a model; `Conflict` if its id is taken. Appends a [`EntityKind::Model`] change.
    async fn create_model(&self, model: NewModel) -> Result<ModelRecord, StoreError>;
    /// A stored model by id.
    async fn get_model(&self, model_id: &str) -> Result<Option<ModelRecord>, StoreError>;
    /// Every stored model, oldest first.
    async fn list_models(&self) -> Result<Vec<ModelRecord>, StoreError>;
    /// Replaces the fields a patch gives; `NotFound` if missing.
    async fn update_model(
        &self,
        model_id: &str,
        patch: ModelPatch,
    ) -> Result<ModelRecord, StoreError>;
    /// Deletes a model; whether it existed.
    async fn delete_model(&self, model_id: &str) -> Result<bool, StoreError>;

    /// Stores an MCP server; `Conflict` if its name is taken, `Invalid` if the name is empty
    /// or the entry not an object. Appends a [`EntityKind::McpServer`] change.
    async fn create_mcp_server(&self, server: NewMcpServer) -> Result<McpServerRecord, StoreError>;
    /// A stored MCP server by name.
    async fn get_mcp_server(&self, name: &str) -> Result<Option<McpServerRecord>, StoreError>;
    /// Every stored MCP server, oldest first.
    async fn list_mcp_servers(&self) -> Result<Vec<McpServerRecord>, StoreError>;
    /// Replaces a stored MCP server's entry; `NotFound` if missing. Appends a change.
    async fn update_mcp_server(
        &self,
        name: &str,
        patch: McpServerPatch,
    ) -> Result<McpServerRecord, StoreError>;
    /// Deletes a stored MCP server; whether it existed (and then appends a change). Keys' and
    /// teams' permissions naming it are left to [`StoreApi::forget_mcp_server`].
    async fn delete_mcp_server(&self, name: &str) -> Result<bool, StoreError>;

    /// Records who changed what (an audit entry's time and id are the store's). Not part of
    /// the change feed. JSON `null` as `before` or `after` is stored as `None`; where the
    /// database refuses NUL characters (PostgreSQL) they become U+FFFD, as in spend records.
    /// `Invalid` if the actor, action, object type or object id is empty.
    async fn append_audit(&self, entry: NewAudit) -> Result<AuditRecord, StoreError>;
    /// Audit entries matching the filter, newest (highest id) first; pass the last id of a
    /// page as `before_id` to read the next.
    async fn audit_logs(&self, filter: AuditFilter) -> Result<Vec<AuditRecord>, StoreError>;

    /// Stores an admin UI session (its created and last-seen times are the store's);
    /// `Conflict` if the hash exists, `NotFound` if a `user_id` is given and no such user is
    /// stored, `Invalid` if the hash, subject, role or CSRF token is empty. Sessions are not
    /// part of the change feed.
    async fn create_session(&self, s: NewSession) -> Result<SessionRecord, StoreError>;
    /// A session by hash, even when expired (the caller compares `expires_at` with its clock).
    async fn get_session(&self, session_hash: &str) -> Result<Option<SessionRecord>, StoreError>;
    /// Records a session's use and sets when it ends; whether it existed.
    async fn touch_session(
        &self,
        session_hash: &str,
        last_seen_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Deletes a session (signs it out); whether it existed.
    async fn delete_session(&self, session_hash: &str) -> Result<bool, StoreError>;
    /// Deletes every session of a user; how many there were.
    async fn delete_user_sessions(&self, user_id: &str) -> Result<u64, StoreError>;
    /// Deletes the sessions that expire at or before `now`; how many there were.
    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Stores or replaces a user's UI password hash (an argon2 PHC string made by the
    /// caller), or removes it with `None`. Kept apart from the user, so it is never in a
    /// [`UserRecord`] nor in the change feed. `NotFound` if the user does not exist,
    /// `Invalid` if the hash is empty.
    async fn set_password(
        &self,
        user_id: &str,
        password_hash: Option<&str>,
    ) -> Result<(), StoreError>;
    /// A user's UI password hash, if one is set (`None` too for a user that does not exist).
    async fn password_hash(&self, user_id: &str) -> Result<Option<String>, StoreError>;

    /// Removes the MCP server `name` from every key's and team's [`ObjectPermission`]: from
    /// `mcp_servers` and as a key of `mcp_tool_permissions` (a holder that named only it
    /// then allows no server, not all). Each row it changes gets a new `updated_at` and a
    /// change-feed entry, so other processes reload it; this process's directory follows
    /// with its next `refresh`. Returns how many keys and teams changed.
    async fn forget_mcp_server(&self, name: &str) -> Result<u64, StoreError>;

    /// Changes to keys, users, teams, credentials, models and MCP servers after `after` (a previous `Change::seq`, or 0),
    /// oldest first, at most `limit`. Every create, update, delete, block and budget reset
    /// appends one; spend increments do not.
    async fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<Change>, StoreError>;
    /// The newest change's `seq`, or 0.
    async fn latest_change(&self) -> Result<i64, StoreError>;
    /// Appends a change that nothing stored goes with: an event other processes act on,
    /// such as [`EntityKind::CopilotQuota`].
    async fn announce(&self, kind: EntityKind, id: &str) -> Result<(), StoreError>;
    /// Keys, users and teams with a budget whose spend changed at or after `since` (a spend
    /// batch added to it or a budget reset cleared it, in any process), with their stored
    /// spend: how spend recorded by other processes reaches this one's budgets between full
    /// reloads. The times compared are the writing processes' clocks, so callers overlap
    /// their windows; a row read twice is harmless.
    async fn spend_changed_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<SpendChange>, StoreError>;
}
