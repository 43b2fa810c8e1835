//! The PostgreSQL backend.

mod changes;
mod credentials;
mod keys;
mod spend;
mod teams;
mod users;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::migrate::Migrator;

use crate::{
    Backend, Change, CredentialRecord, DailySpend, KeyFilter, KeyPatch, KeyRecord, NewCredential,
    NewKey, NewTeam, NewUser, Page, RollupFilter, SpendFilter, SpendRecord, StoreApi, StoreError,
    TeamMember, TeamPatch, TeamRecord, UserPatch, UserRecord,
};

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/postgres");

/// A store on PostgreSQL.
#[derive(Debug, Clone)]
pub(crate) struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub(crate) fn new(pool: PgPool) -> Self {
        PgStore { pool }
    }
}

/// Whether a failed transaction can simply be run again: a deadlock victim or a
/// serialization failure has had all its work rolled back.
fn is_retryable(err: &StoreError) -> bool {
    match err {
        StoreError::Database(e) => e
            .as_database_error()
            .and_then(|db| db.code())
            .is_some_and(|code| code == "40P01" || code == "40001"),
        _ => false,
    }
}

/// Attempts for a retryable transaction before giving up.
const ATTEMPTS: u32 = 4;

#[async_trait]
impl StoreApi for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        // sqlx holds an advisory lock while migrating, so concurrent starts are safe.
        MIGRATOR.run(&self.pool).await?;
        // Without this the current month's records would land in the default partition.
        self.maintain(Utc::now()).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn maintain(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        spend::ensure_partitions(&self.pool, now).await
    }

    async fn create_key(&self, key: NewKey) -> Result<KeyRecord, StoreError> {
        keys::create(&self.pool, key).await
    }

    async fn get_key(&self, token_hash: &str) -> Result<Option<KeyRecord>, StoreError> {
        keys::get(&self.pool, token_hash).await
    }

    async fn update_key(&self, token_hash: &str, patch: KeyPatch) -> Result<KeyRecord, StoreError> {
        keys::update(&self.pool, token_hash, patch).await
    }

    async fn regenerate_key(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_key_name: &str,
    ) -> Result<KeyRecord, StoreError> {
        keys::regenerate(&self.pool, old_hash, new_hash, new_key_name).await
    }

    async fn delete_keys(&self, token_hashes: &[String]) -> Result<u64, StoreError> {
        keys::delete(&self.pool, token_hashes).await
    }

    async fn list_keys(&self, filter: KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        keys::list(&self.pool, filter).await
    }

    async fn create_user(&self, user: NewUser) -> Result<UserRecord, StoreError> {
        users::create(&self.pool, user).await
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
        users::get(&self.pool, user_id).await
    }

    async fn update_user(&self, user_id: &str, patch: UserPatch) -> Result<UserRecord, StoreError> {
        users::update(&self.pool, user_id, patch).await
    }

    async fn delete_users(&self, user_ids: &[String]) -> Result<u64, StoreError> {
        users::delete(&self.pool, user_ids).await
    }

    async fn list_users(&self, page: Page) -> Result<Vec<UserRecord>, StoreError> {
        users::list(&self.pool, page).await
    }

    async fn create_team(&self, team: NewTeam) -> Result<TeamRecord, StoreError> {
        teams::create(&self.pool, team).await
    }

    async fn get_team(&self, team_id: &str) -> Result<Option<TeamRecord>, StoreError> {
        teams::get(&self.pool, team_id).await
    }

    async fn update_team(&self, team_id: &str, patch: TeamPatch) -> Result<TeamRecord, StoreError> {
        teams::update(&self.pool, team_id, patch).await
    }

    async fn delete_teams(&self, team_ids: &[String]) -> Result<u64, StoreError> {
        teams::delete(&self.pool, team_ids).await
    }

    async fn list_teams(&self, page: Page) -> Result<Vec<TeamRecord>, StoreError> {
        teams::list(&self.pool, page).await
    }

    async fn add_team_members(
        &self,
        team_id: &str,
        members: &[TeamMember],
    ) -> Result<TeamRecord, StoreError> {
        teams::add_members(&self.pool, team_id, members).await
    }

    async fn remove_team_members(
        &self,
        team_id: &str,
        user_ids: &[String],
    ) -> Result<TeamRecord, StoreError> {
        teams::remove_members(&self.pool, team_id, user_ids).await
    }

    async fn insert_spend(&self, records: &[SpendRecord]) -> Result<u64, StoreError> {
        let mut attempt = 1;
        loop {
            match spend::insert(&self.pool, records).await {
                Err(e) if attempt < ATTEMPTS && is_retryable(&e) => {
                    tracing::debug!(attempt, "spend insert hit a deadlock; retrying");
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn spend_logs(&self, filter: SpendFilter) -> Result<Vec<SpendRecord>, StoreError> {
        spend::logs(&self.pool, filter).await
    }

    async fn count_spend(&self) -> Result<u64, StoreError> {
        spend::count(&self.pool).await
    }

    async fn daily_spend(&self, filter: RollupFilter) -> Result<Vec<DailySpend>, StoreError> {
        spend::daily(&self.pool, filter).await
    }

    async fn delete_spend_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        spend::delete_before(&self.pool, cutoff).await
    }

    async fn reset_due_budgets(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut attempt = 1;
        loop {
            match changes::reset_due_budgets(&self.pool, now).await {
                Err(e) if attempt < ATTEMPTS && is_retryable(&e) => {
                    tracing::debug!(attempt, "budget reset hit a deadlock; retrying");
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn put_credential(&self, c: NewCredential) -> Result<CredentialRecord, StoreError> {
        credentials::put(&self.pool, c).await
    }

    async fn get_credential(
        &self,
        provider: &str,
        owner: &str,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        credentials::get(&self.pool, provider, owner).await
    }

    async fn list_credentials(&self, provider: &str) -> Result<Vec<CredentialRecord>, StoreError> {
        credentials::list(&self.pool, provider).await
    }

    async fn delete_credential(&self, provider: &str, owner: &str) -> Result<bool, StoreError> {
        credentials::delete(&self.pool, provider, owner).await
    }

    async fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<Change>, StoreError> {
        changes::since(&self.pool, after, limit).await
    }

    async fn latest_change(&self) -> Result<i64, StoreError> {
        changes::latest(&self.pool).await
    }
}
