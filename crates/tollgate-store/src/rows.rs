//! Rows as both backends return them, and their conversion into the public records.
//!
//! Column names are the same on PostgreSQL and SQLite, and sqlx decodes every column type
//! used here from either (JSONB or JSON text, TIMESTAMPTZ or RFC 3339 text), so one set of
//! row types serves both backends.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::types::Json;

use crate::{
    Change, CredentialRecord, DailySpend, EntityKind, KeyRecord, Limits, ObjectPermission,
    SpendRecord, TeamMember, TeamRecord, UserRecord,
};

/// Columns of `virtual_keys`, in [`KeyRow`] order.
pub(crate) const KEY_COLUMNS: &str = "token_hash, key_name, key_alias, user_id, team_id, models, max_budget, \
         budget_duration, rpm_limit, tpm_limit, max_parallel_requests, spend, budget_reset_at, \
         expires, blocked, metadata, permissions, created_at, updated_at, max_premium_requests, \
         premium_budget_duration, premium_spend, premium_budget_reset_at, object_permission";

/// Columns of `users`, in [`UserRow`] order.
pub(crate) const USER_COLUMNS: &str = "user_id, user_email, user_role, models, max_budget, budget_duration, rpm_limit, \
         tpm_limit, max_parallel_requests, spend, budget_reset_at, metadata, created_at, \
         updated_at, max_premium_requests, premium_budget_duration, premium_spend, \
         premium_budget_reset_at";

/// Columns of `teams`, in [`TeamRow`] order.
pub(crate) const TEAM_COLUMNS: &str = "team_id, team_alias, models, max_budget, budget_duration, rpm_limit, tpm_limit, \
         max_parallel_requests, spend, budget_reset_at, blocked, metadata, created_at, \
         updated_at, max_premium_requests, premium_budget_duration, premium_spend, \
         premium_budget_reset_at, object_permission";

/// Columns of `spend_logs`, in [`SpendRow`] order; [`SPEND_COLUMN_COUNT`] of them.
pub(crate) const SPEND_COLUMNS: &str = "request_id, client_request_id, started_at, ended_at, token_hash, user_id, team_id, \
         api, requested_model, model_group, served_model, provider, prompt_tokens, \
         completion_tokens, cached_tokens, cost, premium_units, latency_ms, ttft_ms, status, \
         outcome, attempts, stream, request_body, response_body";

/// Columns of `spend_daily`, in [`DailyRow`] order; [`DAILY_COLUMN_COUNT`] of them.
pub(crate) const DAILY_COLUMNS: &str = "day, token_hash, user_id, team_id, model_group, served_model, requests, failures, \
         fallbacks, prompt_tokens, completion_tokens, cost, premium_units";

/// Columns of `provider_credentials`, in [`CredentialRow`] order.
pub(crate) const CREDENTIAL_COLUMNS: &str =
    "provider, owner, label, ciphertext, nonce, created_at, updated_at";

/// Bind parameters per `spend_logs` row, for chunking multi-row inserts.
pub(crate) const SPEND_COLUMN_COUNT: usize = 25;

/// A `virtual_keys` row.
#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
    pub(crate) token_hash: String,
    key_name: String,
    key_alias: Option<String>,
    user_id: Option<String>,
    team_id: Option<String>,
    models: Json<Vec<String>>,
    #[sqlx(flatten)]
    limits: Limits,
    spend: f64,
    budget_reset_at: Option<DateTime<Utc>>,
    premium_spend: f64,
    premium_budget_reset_at: Option<DateTime<Utc>>,
    expires: Option<DateTime<Utc>>,
    blocked: bool,
    metadata: Value,
    permissions: Value,
    object_permission: Json<ObjectPermission>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<KeyRow> for KeyRecord {
    fn from(r: KeyRow) -> Self {
        KeyRecord {
            token_hash: r.token_hash,
            key_name: r.key_name,
            key_alias: r.key_alias,
            user_id: r.user_id,
            team_id: r.team_id,
            models: r.models.0,
            limits: r.limits,
            spend: r.spend,
            budget_reset_at: r.budget_reset_at,
            premium_spend: r.premium_spend,
            premium_budget_reset_at: r.premium_budget_reset_at,
            expires: r.expires,
            blocked: r.blocked,
            metadata: r.metadata,
            permissions: r.permissions,
            object_permission: r.object_permission.0,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A `users` row; `teams` comes from `team_members`.
#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub(crate) user_id: String,
    user_email: Option<String>,
    user_role: Option<String>,
    models: Json<Vec<String>>,
    #[sqlx(flatten)]
    limits: Limits,
    spend: f64,
    budget_reset_at: Option<DateTime<Utc>>,
    premium_spend: f64,
    premium_budget_reset_at: Option<DateTime<Utc>>,
    metadata: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl UserRow {
    /// The record, with the user's teams.
    pub(crate) fn into_record(self, teams: Vec<String>) -> UserRecord {
        UserRecord {
            user_id: self.user_id,
            user_email: self.user_email,
            user_role: self.user_role,
            models: self.models.0,
            limits: self.limits,
            spend: self.spend,
            budget_reset_at: self.budget_reset_at,
            premium_spend: self.premium_spend,
            premium_budget_reset_at: self.premium_budget_reset_at,
            teams,
            metadata: self.metadata,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A `teams` row; `members` comes from `team_members`.
#[derive(sqlx::FromRow)]
pub(crate) struct TeamRow {
    pub(crate) team_id: String,
    team_alias: Option<String>,
    models: Json<Vec<String>>,
    #[sqlx(flatten)]
    limits: Limits,
    spend: f64,
    budget_reset_at: Option<DateTime<Utc>>,
    premium_spend: f64,
    premium_budget_reset_at: Option<DateTime<Utc>>,
    blocked: bool,
    metadata: Value,
    object_permission: Json<ObjectPermission>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TeamRow {
    /// The record, with the team's members.
    pub(crate) fn into_record(self, members: Vec<TeamMember>) -> TeamRecord {
        TeamRecord {
            team_id: self.team_id,
            team_alias: self.team_alias,
            models: self.models.0,
            limits: self.limits,
            spend: self.spend,
            budget_reset_at: self.budget_reset_at,
            premium_spend: self.premium_spend,
            premium_budget_reset_at: self.premium_budget_reset_at,
            blocked: self.blocked,
            members,
            metadata: self.metadata,
            object_permission: self.object_permission.0,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A `team_members` row.
#[derive(sqlx::FromRow)]
pub(crate) struct MemberRow {
    pub(crate) team_id: String,
    pub(crate) user_id: String,
    pub(crate) role: String,
}

/// A `spend_logs` row.
#[derive(sqlx::FromRow)]
pub(crate) struct SpendRow {
    request_id: String,
    client_request_id: Option<String>,
    started_at: DateTime<Utc>,
    ended_at: DateTime<Utc>,
    token_hash: Option<String>,
    user_id: Option<String>,
    team_id: Option<String>,
    api: String,
    requested_model: String,
    model_group: String,
    served_model: String,
    provider: String,
    prompt_tokens: i64,
    completion_tokens: i64,
    cached_tokens: i64,
    cost: f64,
    premium_units: f64,
    latency_ms: f64,
    ttft_ms: Option<f64>,
    status: i32,
    outcome: String,
    attempts: Value,
    stream: bool,
    request_body: Option<Value>,
    response_body: Option<Value>,
}

impl From<SpendRow> for SpendRecord {
    fn from(r: SpendRow) -> Self {
        SpendRecord {
            request_id: r.request_id,
            client_request_id: r.client_request_id,
            started_at: r.started_at,
            ended_at: r.ended_at,
            token_hash: r.token_hash,
            user_id: r.user_id,
            team_id: r.team_id,
            api: r.api,
            requested_model: r.requested_model,
            model_group: r.model_group,
            served_model: r.served_model,
            provider: r.provider,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            cached_tokens: r.cached_tokens,
            cost: r.cost,
            premium_units: r.premium_units,
            latency_ms: r.latency_ms,
            ttft_ms: r.ttft_ms,
            status: r.status,
            outcome: r.outcome,
            attempts: r.attempts,
            stream: r.stream,
            request_body: r.request_body,
            response_body: r.response_body,
        }
    }
}

/// A `spend_daily` row.
#[derive(sqlx::FromRow)]
pub(crate) struct DailyRow {
    day: NaiveDate,
    token_hash: String,
    user_id: String,
    team_id: String,
    model_group: String,
    served_model: String,
    requests: i64,
    failures: i64,
    fallbacks: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    cost: f64,
    premium_units: f64,
}

impl From<DailyRow> for DailySpend {
    fn from(r: DailyRow) -> Self {
        DailySpend {
            day: r.day,
            token_hash: r.token_hash,
            user_id: r.user_id,
            team_id: r.team_id,
            model_group: r.model_group,
            served_model: r.served_model,
            requests: r.requests,
            failures: r.failures,
            fallbacks: r.fallbacks,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            cost: r.cost,
            premium_units: r.premium_units,
        }
    }
}

/// A `provider_credentials` row.
#[derive(sqlx::FromRow)]
pub(crate) struct CredentialRow {
    provider: String,
    owner: String,
    label: Option<String>,
    ciphertext: Vec<u8>,
    nonce: Vec<u8>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<CredentialRow> for CredentialRecord {
    fn from(r: CredentialRow) -> Self {
        CredentialRecord {
            provider: r.provider,
            owner: r.owner,
            label: r.label,
            ciphertext: r.ciphertext,
            nonce: r.nonce,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A `change_log` row.
#[derive(sqlx::FromRow)]
pub(crate) struct ChangeRow {
    seq: i64,
    kind: String,
    entity_id: String,
}

impl ChangeRow {
    /// The change, or `None` for a kind this version does not know (a newer writer's).
    pub(crate) fn into_change(self) -> Option<Change> {
        let kind = parse_kind(&self.kind)?;
        Some(Change { seq: self.seq, kind, id: self.entity_id })
    }
}

/// Every kind this version knows, as [`kind_str`] spells them.
pub(crate) const KNOWN_KINDS: [EntityKind; 7] = [
    EntityKind::Key,
    EntityKind::User,
    EntityKind::Team,
    EntityKind::Credential,
    EntityKind::Model,
    EntityKind::McpServer,
    EntityKind::CopilotQuota,
];

/// A kind as [`kind_str`] spells it, or `None` for one this version does not know.
pub(crate) fn parse_kind(text: &str) -> Option<EntityKind> {
    Some(match text {
        "key" => EntityKind::Key,
        "user" => EntityKind::User,
        "team" => EntityKind::Team,
        "credential" => EntityKind::Credential,
        "model" => EntityKind::Model,
        "mcp_server" => EntityKind::McpServer,
        "copilot_quota" => EntityKind::CopilotQuota,
        _ => return None,
    })
}

/// How `change_log.kind` spells a kind.
pub(crate) fn kind_str(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Key => "key",
        EntityKind::User => "user",
        EntityKind::Team => "team",
        EntityKind::Credential => "credential",
        EntityKind::Model => "model",
        EntityKind::McpServer => "mcp_server",
        EntityKind::CopilotQuota => "copilot_quota",
    }
}
