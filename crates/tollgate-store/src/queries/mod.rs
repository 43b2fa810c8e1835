//! The store, written once: every operation as SQL over the [`Dialect`] seam, with the rules
//! that do not depend on the database (cascades, change-feed entries, budget resets,
//! membership) in plain Rust around the queries.

mod audit;
mod changes;
mod credentials;
mod keys;
mod mcp_servers;
mod models;
mod object_permission;
mod paging;
mod sessions;
mod spend;
mod teams;
mod ties;
mod usage;
mod users;

use std::future::Future;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Pool;

use crate::sql::{Dialect, Param, Query};
use crate::{
    AuditFilter, AuditRecord, Backend, Change, CredentialRecord, DailySpend, DeploymentUsage,
    KeyFilter, KeyPatch, KeyRecord, Limits, McpServerPatch, McpServerRecord, ModelPatch,
    ModelRecord, NewAudit, NewCredential, NewKey, NewMcpServer, NewModel, NewSession, NewTeam,
    NewUser, Page, RollupFilter, SessionRecord, SpendChange, SpendFilter, SpendRecord, SpendStore,
    SpendSummary, StoreApi, StoreError, TeamMember, TeamPatch, TeamRecord, UserPatch, UserRecord,
};

/// A store on the database of dialect `D`.
#[derive(Debug)]
pub(crate) struct SqlStore<D: Dialect> {
    pool: Pool<D::Db>,
}

impl<D: Dialect> SqlStore<D> {
    pub(crate) fn new(pool: Pool<D::Db>) -> Self {
        Self { pool }
    }

    /// Runs a transaction again while it fails in a way the database says is safe to retry
    /// (a deadlock victim has had all its work rolled back).
    async fn retrying<T, F, Fut>(&self, what: &str, mut run: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        const ATTEMPTS: u32 = 4;
        let mut attempt = 1;
        loop {
            match run().await {
                Err(e) if attempt < ATTEMPTS && D::is_retryable(&e) => {
                    tracing::debug!(attempt, what, "transaction hit a deadlock; retrying");
                    attempt += 1;
                }
                result => return result,
            }
        }
    }
}

/// `SELECT columns FROM table` and `tail` (a `WHERE`, an `ORDER BY`, to be continued).
fn select<'a, D: Dialect>(columns: &str, table: &str, tail: &str) -> Query<'a, D> {
    let mut q = Query::new("SELECT ");
    q.push(columns).push(" FROM ").push(table).push(tail);
    q
}

/// `INSERT INTO table (columns) VALUES (values) RETURNING columns`.
fn insert<'a, D: Dialect, const N: usize>(
    table: &str,
    columns: &str,
    values: [Param<'a>; N],
) -> Query<'a, D> {
    insert_returning(table, columns, values, columns)
}

/// `INSERT INTO table (columns) VALUES (values) RETURNING returning`, for a table whose
/// database fills some columns in (an id).
fn insert_returning<'a, D: Dialect, const N: usize>(
    table: &str,
    columns: &str,
    values: [Param<'a>; N],
    returning: &str,
) -> Query<'a, D> {
    let mut q = Query::new("INSERT INTO ");
    q.push(table).push(" (").push(columns).push(") VALUES ").values(values);
    q.push(" RETURNING ").push(returning);
    q
}

/// A failed insert: taken ids become `Conflict` saying `what` exists already.
fn taken(err: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    if crate::patch::is_unique_violation(&err) {
        StoreError::Conflict(format!("{} already exists", what()))
    } else {
        err.into()
    }
}

/// Appends the limit columns keys, users and teams share, as `, column = value` pairs.
fn limits_set<'a, D: Dialect>(q: &mut Query<'a, D>, limits: &'a Limits) {
    q.and(", max_budget = ", limits.max_budget)
        .and(", budget_duration = ", &limits.budget_duration)
        .and(", rpm_limit = ", limits.rpm_limit)
        .and(", tpm_limit = ", limits.tpm_limit)
        .and(", max_parallel_requests = ", limits.max_parallel_requests)
        .and(", max_premium_requests = ", limits.max_premium_requests)
        .and(", premium_budget_duration = ", &limits.premium_budget_duration);
}

/// Appends `, spend_changed_at = now` to the UPDATE writing a whole row whose new `limits`
/// have a budget (of money or premium requests): other processes then read its spend again
/// (an admin's correction, a budget newly set) as they read spend batches.
fn stamp_written<'a, D: Dialect>(q: &mut Query<'a, D>, limits: &Limits, now: DateTime<Utc>) {
    if limits.max_budget.is_some() || limits.max_premium_requests.is_some() {
        q.and(", spend_changed_at = ", now);
    }
}

/// Appends `, spend_changed_at = now` for a row with a budget (of money or premium requests), to an UPDATE that changes its
/// spend. A row without one keeps its value (NULL), so its spend updates change no indexed
/// column and PostgreSQL can keep them HOT; a budget set later reaches other processes
/// through the change feed, with the spend as it is then.
fn stamp_spend_change<'a, D: Dialect>(q: &mut Query<'a, D>, now: DateTime<Utc>) {
    q.and(
        ", spend_changed_at = CASE WHEN max_budget IS NULL AND max_premium_requests IS NULL \
         THEN spend_changed_at ELSE ",
        now,
    )
    .push(" END");
}

#[async_trait]
impl<D: Dialect> SpendStore for SqlStore<D> {
    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        Query::<D>::new("SELECT 1").execute(&mut conn).await?;
        Ok(())
    }

    async fn insert_spend(&self, records: &[SpendRecord]) -> Result<u64, StoreError> {
        self.retrying("spend insert", || spend::insert::<D>(&self.pool, records)).await
    }
}

#[async_trait]
impl<D: Dialect> StoreApi for SqlStore<D> {
    fn backend(&self) -> Backend {
        D::BACKEND
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        D::migrate(&self.pool).await
    }

    async fn maintain(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        D::maintain(&self.pool, now).await
    }

    async fn create_key(&self, key: NewKey) -> Result<KeyRecord, StoreError> {
        keys::create::<D>(&self.pool, key).await
    }

    async fn get_key(&self, token_hash: &str) -> Result<Option<KeyRecord>, StoreError> {
        keys::get::<D>(&self.pool, token_hash).await
    }

    async fn update_key(&self, token_hash: &str, patch: KeyPatch) -> Result<KeyRecord, StoreError> {
        keys::update::<D>(&self.pool, token_hash, patch).await
    }

    async fn regenerate_key(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_key_name: &str,
    ) -> Result<KeyRecord, StoreError> {
        keys::regenerate::<D>(&self.pool, old_hash, new_hash, new_key_name).await
    }

    async fn delete_keys(&self, token_hashes: &[String]) -> Result<u64, StoreError> {
        keys::delete::<D>(&self.pool, token_hashes).await
    }

    async fn list_keys(&self, filter: KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        keys::list::<D>(&self.pool, filter).await
    }

    async fn create_user(&self, user: NewUser) -> Result<UserRecord, StoreError> {
        users::create::<D>(&self.pool, user).await
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
        users::get::<D>(&self.pool, user_id).await
    }

    async fn update_user(&self, user_id: &str, patch: UserPatch) -> Result<UserRecord, StoreError> {
        users::update::<D>(&self.pool, user_id, patch).await
    }

    async fn delete_users(&self, user_ids: &[String]) -> Result<u64, StoreError> {
        users::delete::<D>(&self.pool, user_ids).await
    }

    async fn list_users(&self, page: Page) -> Result<Vec<UserRecord>, StoreError> {
        users::list::<D>(&self.pool, page).await
    }

    async fn create_team(&self, team: NewTeam) -> Result<TeamRecord, StoreError> {
        teams::create::<D>(&self.pool, team).await
    }

    async fn get_team(&self, team_id: &str) -> Result<Option<TeamRecord>, StoreError> {
        teams::get::<D>(&self.pool, team_id).await
    }

    async fn update_team(&self, team_id: &str, patch: TeamPatch) -> Result<TeamRecord, StoreError> {
        teams::update::<D>(&self.pool, team_id, patch).await
    }

    async fn delete_teams(&self, team_ids: &[String]) -> Result<u64, StoreError> {
        teams::delete::<D>(&self.pool, team_ids).await
    }

    async fn list_teams(&self, page: Page) -> Result<Vec<TeamRecord>, StoreError> {
        teams::list::<D>(&self.pool, page).await
    }

    async fn add_team_members(
        &self,
        team_id: &str,
        members: &[TeamMember],
    ) -> Result<TeamRecord, StoreError> {
        teams::add_members::<D>(&self.pool, team_id, members).await
    }

    async fn remove_team_members(
        &self,
        team_id: &str,
        user_ids: &[String],
    ) -> Result<TeamRecord, StoreError> {
        teams::remove_members::<D>(&self.pool, team_id, user_ids).await
    }

    async fn spend_logs(&self, filter: SpendFilter) -> Result<Vec<SpendRecord>, StoreError> {
        spend::logs::<D>(&self.pool, filter).await
    }

    async fn count_spend(&self) -> Result<u64, StoreError> {
        spend::count::<D>(&self.pool).await
    }

    async fn daily_spend(&self, filter: RollupFilter) -> Result<Vec<DailySpend>, StoreError> {
        spend::daily::<D>(&self.pool, filter).await
    }

    async fn spend_summary(
        &self,
        filter: RollupFilter,
        top: u32,
    ) -> Result<SpendSummary, StoreError> {
        spend::summary::<D>(&self.pool, filter, top).await
    }

    async fn roll_spend_windows(&self, today: NaiveDate) -> Result<bool, StoreError> {
        self.retrying("spend window rebuild", || spend::roll_windows::<D>(&self.pool, today)).await
    }

    async fn deployment_usage(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<DeploymentUsage>, StoreError> {
        usage::by_deployment::<D>(&self.pool, since).await
    }

    async fn delete_spend_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        spend::delete_before::<D>(&self.pool, cutoff).await
    }

    async fn reset_due_budgets(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.retrying("budget reset", || changes::reset_due_budgets::<D>(&self.pool, now)).await
    }

    async fn put_credential(&self, c: NewCredential) -> Result<CredentialRecord, StoreError> {
        credentials::put::<D>(&self.pool, c).await
    }

    async fn get_credential(
        &self,
        provider: &str,
        owner: &str,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        credentials::get::<D>(&self.pool, provider, owner).await
    }

    async fn list_credentials(&self, provider: &str) -> Result<Vec<CredentialRecord>, StoreError> {
        credentials::list::<D>(&self.pool, provider).await
    }

    async fn delete_credential(&self, provider: &str, owner: &str) -> Result<bool, StoreError> {
        credentials::delete::<D>(&self.pool, provider, owner).await
    }

    async fn create_model(&self, model: NewModel) -> Result<ModelRecord, StoreError> {
        models::create::<D>(&self.pool, model).await
    }

    async fn get_model(&self, model_id: &str) -> Result<Option<ModelRecord>, StoreError> {
        models::get::<D>(&self.pool, model_id).await
    }

    async fn list_models(&self) -> Result<Vec<ModelRecord>, StoreError> {
        models::list::<D>(&self.pool).await
    }

    async fn update_model(
        &self,
        model_id: &str,
        patch: ModelPatch,
    ) -> Result<ModelRecord, StoreError> {
        models::update::<D>(&self.pool, model_id, patch).await
    }

    async fn delete_model(&self, model_id: &str) -> Result<bool, StoreError> {
        models::delete::<D>(&self.pool, model_id).await
    }

    async fn create_mcp_server(&self, server: NewMcpServer) -> Result<McpServerRecord, StoreError> {
        mcp_servers::create::<D>(&self.pool, server).await
    }

    async fn get_mcp_server(&self, name: &str) -> Result<Option<McpServerRecord>, StoreError> {
        mcp_servers::get::<D>(&self.pool, name).await
    }

    async fn list_mcp_servers(&self) -> Result<Vec<McpServerRecord>, StoreError> {
        mcp_servers::list::<D>(&self.pool).await
    }

    async fn update_mcp_server(
        &self,
        name: &str,
        patch: McpServerPatch,
    ) -> Result<McpServerRecord, StoreError> {
        mcp_servers::update::<D>(&self.pool, name, patch).await
    }

    async fn delete_mcp_server(&self, name: &str) -> Result<bool, StoreError> {
        mcp_servers::delete::<D>(&self.pool, name).await
    }

    async fn append_audit(&self, entry: NewAudit) -> Result<AuditRecord, StoreError> {
        audit::append::<D>(&self.pool, entry).await
    }

    async fn audit_logs(&self, filter: AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        audit::logs::<D>(&self.pool, filter).await
    }

    async fn create_session(&self, s: NewSession) -> Result<SessionRecord, StoreError> {
        sessions::create::<D>(&self.pool, s).await
    }

    async fn get_session(&self, session_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        sessions::get::<D>(&self.pool, session_hash).await
    }

    async fn touch_session(
        &self,
        session_hash: &str,
        last_seen_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        sessions::touch::<D>(&self.pool, session_hash, last_seen_at, expires_at).await
    }

    async fn delete_session(&self, session_hash: &str) -> Result<bool, StoreError> {
        sessions::delete::<D>(&self.pool, session_hash).await
    }

    async fn delete_user_sessions(&self, user_id: &str) -> Result<u64, StoreError> {
        sessions::delete_of_user::<D>(&self.pool, user_id).await
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        sessions::delete_expired::<D>(&self.pool, now).await
    }

    async fn set_password(
        &self,
        user_id: &str,
        password_hash: Option<&str>,
    ) -> Result<(), StoreError> {
        sessions::set_password::<D>(&self.pool, user_id, password_hash).await
    }

    async fn password_hash(&self, user_id: &str) -> Result<Option<String>, StoreError> {
        sessions::password_hash::<D>(&self.pool, user_id).await
    }

    async fn forget_mcp_server(&self, name: &str) -> Result<u64, StoreError> {
        self.retrying("MCP server removal", || {
            object_permission::forget_mcp_server::<D>(&self.pool, name)
        })
        .await
    }

    async fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<Change>, StoreError> {
        changes::since::<D>(&self.pool, after, limit).await
    }

    async fn latest_change(&self) -> Result<i64, StoreError> {
        changes::latest::<D>(&self.pool).await
    }

    async fn announce(&self, kind: crate::EntityKind, id: &str) -> Result<(), StoreError> {
        let mut tx = D::begin_write(&self.pool).await?;
        changes::append::<D>(&mut tx, &[(kind, id.to_owned())], crate::patch::now()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn spend_changed_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<SpendChange>, StoreError> {
        changes::spend_changed_since::<D>(&self.pool, since).await
    }
}
