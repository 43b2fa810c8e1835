//! What the store keeps. Field names follow LiteLLM's management API where one exists, so its
//! clients and habits carry over.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ObjectPermission;

/// Limits shared by keys, users and teams. `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Limits {
    /// Most money the holder may spend per budget period (or ever, without a duration).
    pub max_budget: Option<f64>,
    /// Budget period: `30s`, `30m`, `24h`, `30d`; the spend resets when it elapses.
    pub budget_duration: Option<String>,
    /// Requests per minute.
    pub rpm_limit: Option<i64>,
    /// Tokens per minute.
    pub tpm_limit: Option<i64>,
    /// Requests in flight at once.
    pub max_parallel_requests: Option<i64>,
    /// Most Copilot premium requests (premium units: a request costs its model's
    /// multiplier) the holder may use per premium period.
    #[serde(default)]
    pub max_premium_requests: Option<f64>,
    /// Premium period, in the forms of `budget_duration`; without one, the calendar month in
    /// UTC (when Copilot's own allowance resets).
    #[serde(default)]
    pub premium_budget_duration: Option<String>,
}

/// A virtual key as stored: never the key itself, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Hex SHA-256 of the key; the primary key.
    pub token_hash: String,
    /// A display form such as `sk-...a1b2`, safe to show.
    pub key_name: String,
    /// A human name.
    pub key_alias: Option<String>,
    /// Owner.
    pub user_id: Option<String>,
    /// Team.
    pub team_id: Option<String>,
    /// Allowed model names, patterns or access groups; empty = all.
    pub models: Vec<String>,
    /// Budget and rate limits.
    pub limits: Limits,
    /// Spend in the current budget period.
    pub spend: f64,
    /// When the budget next resets, if it has a duration.
    pub budget_reset_at: Option<DateTime<Utc>>,
    /// Premium units used in the current premium period.
    #[serde(default)]
    pub premium_spend: f64,
    /// When the premium period ends, if there is a premium budget or period.
    #[serde(default)]
    pub premium_budget_reset_at: Option<DateTime<Utc>>,
    /// After this the key is refused.
    pub expires: Option<DateTime<Utc>>,
    /// A blocked key is refused.
    pub blocked: bool,
    /// Free-form metadata.
    pub metadata: Value,
    /// Permissions, e.g. `{"admin": true}` for management access.
    pub permissions: Value,
    /// Which MCP servers and tools the key may use.
    #[serde(default)]
    pub object_permission: ObjectPermission,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A key to create. The caller generates the key and passes only its hash.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewKey {
    /// Hex SHA-256 of the key.
    pub token_hash: String,
    /// Display form.
    pub key_name: String,
    /// Human name.
    pub key_alias: Option<String>,
    /// Owner.
    pub user_id: Option<String>,
    /// Team.
    pub team_id: Option<String>,
    /// Allowed models.
    pub models: Vec<String>,
    /// Limits.
    pub limits: Limits,
    /// Expiry.
    pub expires: Option<DateTime<Utc>>,
    /// Starts blocked.
    pub blocked: bool,
    /// Metadata (`Value::Null` is stored as `{}`).
    pub metadata: Value,
    /// Permissions (`Value::Null` is stored as `{}`).
    pub permissions: Value,
    /// MCP servers and tools the key may use.
    #[serde(default)]
    pub object_permission: ObjectPermission,
}

/// A partial update: `None` leaves a field as it is; `Some(None)` clears an optional field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyPatch {
    /// Human name.
    pub key_alias: Option<Option<String>>,
    /// Owner.
    pub user_id: Option<Option<String>>,
    /// Team.
    pub team_id: Option<Option<String>>,
    /// Allowed models.
    pub models: Option<Vec<String>>,
    /// Budget.
    pub max_budget: Option<Option<f64>>,
    /// Budget period; setting it schedules the next reset from now.
    pub budget_duration: Option<Option<String>>,
    /// Requests per minute.
    pub rpm_limit: Option<Option<i64>>,
    /// Tokens per minute.
    pub tpm_limit: Option<Option<i64>>,
    /// Parallel requests.
    pub max_parallel_requests: Option<Option<i64>>,
    /// Premium budget.
    #[serde(default)]
    pub max_premium_requests: Option<Option<f64>>,
    /// Premium period; setting (or clearing) it schedules the next reset from now.
    #[serde(default)]
    pub premium_budget_duration: Option<Option<String>>,
    /// Sets the premium units used this period (an admin correction).
    #[serde(default)]
    pub premium_spend: Option<f64>,
    /// Expiry.
    pub expires: Option<Option<DateTime<Utc>>>,
    /// Blocked flag.
    pub blocked: Option<bool>,
    /// Replaces the metadata.
    pub metadata: Option<Value>,
    /// Replaces the permissions.
    pub permissions: Option<Value>,
    /// Replaces the MCP access as a whole.
    #[serde(default)]
    pub object_permission: Option<ObjectPermission>,
    /// Sets the spend (an admin correction).
    pub spend: Option<f64>,
}

/// Which keys to list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyFilter {
    /// Only this user's keys.
    pub user_id: Option<String>,
    /// Only this team's keys.
    pub team_id: Option<String>,
    /// Only keys with this alias.
    pub key_alias: Option<String>,
    /// Page number from 1 (ignored with `after`).
    pub page: u32,
    /// Page size; 0 means the default of 100.
    pub size: u32,
    /// The order; `None` is newest first.
    #[serde(default)]
    pub order: Option<crate::ListOrder>,
    /// Keyset paging: only the keys after this one in `order`.
    #[serde(default)]
    pub after: Option<crate::ListCursor>,
}

/// A user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Id.
    pub user_id: String,
    /// Email.
    pub user_email: Option<String>,
    /// `proxy_admin`, `internal_user`, ... (LiteLLM's roles).
    pub user_role: Option<String>,
    /// Allowed models; empty = all.
    pub models: Vec<String>,
    /// Limits.
    pub limits: Limits,
    /// Spend in the current budget period.
    pub spend: f64,
    /// Next budget reset.
    pub budget_reset_at: Option<DateTime<Utc>>,
    /// Premium units used in the current premium period.
    #[serde(default)]
    pub premium_spend: f64,
    /// When the premium period ends, if there is a premium budget or period.
    #[serde(default)]
    pub premium_budget_reset_at: Option<DateTime<Utc>>,
    /// Teams the user belongs to.
    pub teams: Vec<String>,
    /// Metadata.
    pub metadata: Value,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A user to create.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewUser {
    /// Id.
    pub user_id: String,
    /// Email.
    pub user_email: Option<String>,
    /// Role.
    pub user_role: Option<String>,
    /// Allowed models.
    pub models: Vec<String>,
    /// Limits.
    pub limits: Limits,
    /// Metadata.
    pub metadata: Value,
}

/// A partial update of a user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserPatch {
    /// Email.
    pub user_email: Option<Option<String>>,
    /// Role.
    pub user_role: Option<Option<String>>,
    /// Allowed models.
    pub models: Option<Vec<String>>,
    /// Budget.
    pub max_budget: Option<Option<f64>>,
    /// Budget period.
    pub budget_duration: Option<Option<String>>,
    /// Requests per minute.
    pub rpm_limit: Option<Option<i64>>,
    /// Tokens per minute.
    pub tpm_limit: Option<Option<i64>>,
    /// Parallel requests.
    pub max_parallel_requests: Option<Option<i64>>,
    /// Premium budget.
    #[serde(default)]
    pub max_premium_requests: Option<Option<f64>>,
    /// Premium period; setting (or clearing) it schedules the next reset from now.
    #[serde(default)]
    pub premium_budget_duration: Option<Option<String>>,
    /// Sets the premium units used this period (an admin correction).
    #[serde(default)]
    pub premium_spend: Option<f64>,
    /// Replaces the metadata.
    pub metadata: Option<Value>,
    /// Sets the spend.
    pub spend: Option<f64>,
}

/// A team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamRecord {
    /// Id.
    pub team_id: String,
    /// Human name.
    pub team_alias: Option<String>,
    /// Allowed models; empty = all.
    pub models: Vec<String>,
    /// Limits.
    pub limits: Limits,
    /// Spend in the current budget period.
    pub spend: f64,
    /// Next budget reset.
    pub budget_reset_at: Option<DateTime<Utc>>,
    /// Premium units used in the current premium period.
    #[serde(default)]
    pub premium_spend: f64,
    /// When the premium period ends, if there is a premium budget or period.
    #[serde(default)]
    pub premium_budget_reset_at: Option<DateTime<Utc>>,
    /// A blocked team's keys are refused.
    pub blocked: bool,
    /// Members.
    pub members: Vec<TeamMember>,
    /// Metadata.
    pub metadata: Value,
    /// Which MCP servers and tools the team's keys may use (unless a key says otherwise).
    #[serde(default)]
    pub object_permission: ObjectPermission,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A member of a team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamMember {
    /// The user.
    pub user_id: String,
    /// `admin` or `user`.
    pub role: String,
}

/// A team to create.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewTeam {
    /// Id.
    pub team_id: String,
    /// Human name.
    pub team_alias: Option<String>,
    /// Allowed models.
    pub models: Vec<String>,
    /// Limits.
    pub limits: Limits,
    /// Initial members.
    pub members: Vec<TeamMember>,
    /// Metadata.
    pub metadata: Value,
    /// MCP servers and tools the team's keys may use.
    #[serde(default)]
    pub object_permission: ObjectPermission,
}

/// A partial update of a team.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TeamPatch {
    /// Human name.
    pub team_alias: Option<Option<String>>,
    /// Allowed models.
    pub models: Option<Vec<String>>,
    /// Budget.
    pub max_budget: Option<Option<f64>>,
    /// Budget period.
    pub budget_duration: Option<Option<String>>,
    /// Requests per minute.
    pub rpm_limit: Option<Option<i64>>,
    /// Tokens per minute.
    pub tpm_limit: Option<Option<i64>>,
    /// Parallel requests.
    pub max_parallel_requests: Option<Option<i64>>,
    /// Premium budget.
    #[serde(default)]
    pub max_premium_requests: Option<Option<f64>>,
    /// Premium period; setting (or clearing) it schedules the next reset from now.
    #[serde(default)]
    pub premium_budget_duration: Option<Option<String>>,
    /// Sets the premium units used this period (an admin correction).
    #[serde(default)]
    pub premium_spend: Option<f64>,
    /// Blocked flag.
    pub blocked: Option<bool>,
    /// Replaces the metadata.
    pub metadata: Option<Value>,
    /// Replaces the MCP access as a whole.
    #[serde(default)]
    pub object_permission: Option<ObjectPermission>,
    /// Sets the spend.
    pub spend: Option<f64>,
}

/// Pagination (and search and order) for users and teams.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// Page number from 1 (ignored with `after`).
    pub page: u32,
    /// Page size; 0 means 100.
    pub size: u32,
    /// The order; `None` is oldest first.
    #[serde(default)]
    pub order: Option<crate::ListOrder>,
    /// Keyset paging: only the rows after this one in `order`.
    #[serde(default)]
    pub after: Option<crate::ListCursor>,
    /// Only rows whose id, email (users) or alias (teams) contains this, ignoring ASCII case.
    #[serde(default)]
    pub search: Option<String>,
}

/// One proxied request, success or failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendRecord {
    /// Unique id, always made by tollgate; inserting the same id twice records it once.
    pub request_id: String,
    /// The `x-request-id` the client sent, if any. Clients may repeat it, so it is kept
    /// beside the record's own id, never as its identity.
    #[serde(default)]
    pub client_request_id: Option<String>,
    /// When the request started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: DateTime<Utc>,
    /// Hash of the virtual key, if one was used.
    pub token_hash: Option<String>,
    /// User.
    pub user_id: Option<String>,
    /// Team.
    pub team_id: Option<String>,
    /// `chat_completions`, `messages`, `embeddings`, ...
    pub api: String,
    /// Model name the client asked for.
    pub requested_model: String,
    /// Model group that matched.
    pub model_group: String,
    /// `provider/model` that answered (or last failed).
    pub served_model: String,
    /// Provider prefix.
    pub provider: String,
    /// Input tokens.
    pub prompt_tokens: i64,
    /// Output tokens.
    pub completion_tokens: i64,
    /// Cached input tokens.
    pub cached_tokens: i64,
    /// Cost in USD.
    pub cost: f64,
    /// Copilot premium request units.
    pub premium_units: f64,
    /// Whole-request latency.
    pub latency_ms: f64,
    /// Time to first streamed event.
    pub ttft_ms: Option<f64>,
    /// HTTP status returned to the client (0 = client disconnected).
    pub status: i32,
    /// `success`, `upstream_failed`, `stream_failed`, `client_disconnected`.
    pub outcome: String,
    /// Deployments tried, in order, with their results.
    pub attempts: Value,
    /// Whether it streamed.
    pub stream: bool,
    /// The request body, when prompt logging is on (already redacted).
    pub request_body: Option<Value>,
    /// The response, when prompt logging is on.
    pub response_body: Option<Value>,
}

/// Which spend records to read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendFilter {
    /// Only this key.
    pub token_hash: Option<String>,
    /// Only this user.
    pub user_id: Option<String>,
    /// Only this team.
    pub team_id: Option<String>,
    /// Only this request.
    pub request_id: Option<String>,
    /// Only requests that sent this `x-request-id`.
    pub client_request_id: Option<String>,
    /// From this time on (inclusive).
    pub start: Option<DateTime<Utc>>,
    /// Before this time (exclusive).
    pub end: Option<DateTime<Utc>>,
    /// Only requests whose requested model, model group or served model is this.
    #[serde(default)]
    pub model: Option<String>,
    /// Only records with one of these outcomes; empty means any.
    #[serde(default)]
    pub outcomes: Vec<String>,
    /// Only records whose HTTP status is in this range.
    #[serde(default)]
    pub status: Option<crate::StatusRange>,
    /// Keyset paging: only records older than this one (newest first, ties by request id).
    #[serde(default)]
    pub before: Option<crate::SpendCursor>,
    /// Most rows to return; 0 means 1000.
    pub limit: u32,
}

/// One row of the daily rollup: totals for a day, key, user, team and model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailySpend {
    /// The UTC day.
    pub day: chrono::NaiveDate,
    /// Key hash, empty when none.
    pub token_hash: String,
    /// User, empty when none.
    pub user_id: String,
    /// Team, empty when none.
    pub team_id: String,
    /// Model group.
    pub model_group: String,
    /// Served model.
    pub served_model: String,
    /// Requests.
    pub requests: i64,
    /// Failed requests (outcome other than success).
    pub failures: i64,
    /// Successful requests answered by a fallback (another model group than the first tried).
    #[serde(default)]
    pub fallbacks: i64,
    /// Input tokens.
    pub prompt_tokens: i64,
    /// Output tokens.
    pub completion_tokens: i64,
    /// Cost.
    pub cost: f64,
    /// Premium units.
    pub premium_units: f64,
}

/// Which rollup rows to read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupFilter {
    /// First day (inclusive).
    pub start: Option<chrono::NaiveDate>,
    /// Last day (inclusive).
    pub end: Option<chrono::NaiveDate>,
    /// Only this key.
    pub token_hash: Option<String>,
    /// Only this user.
    pub user_id: Option<String>,
    /// Only this team.
    pub team_id: Option<String>,
}

/// Sums of rollup rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendTotals {
    /// Requests.
    pub requests: i64,
    /// Failed requests (outcome other than success).
    pub failures: i64,
    /// Successful requests answered by a fallback.
    #[serde(default)]
    pub fallbacks: i64,
    /// Input tokens.
    pub prompt_tokens: i64,
    /// Output tokens.
    pub completion_tokens: i64,
    /// Cost.
    pub cost: f64,
    /// Premium units.
    pub premium_units: f64,
}

/// The daily rollups of a [`RollupFilter`] summed in the database, for a dashboard: per day,
/// and the busiest model groups, keys, users and teams (most requests, then most cost, then
/// by name; rows without a key, user or team are not ranked).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendSummary {
    /// Days that have records, in order.
    pub days: Vec<(chrono::NaiveDate, SpendTotals)>,
    /// Requests per day and outcome, in order.
    pub outcomes: Vec<(chrono::NaiveDate, String, i64)>,
    /// Sums per day and model group (the one that answered), in order.
    pub model_days: Vec<(chrono::NaiveDate, String, SpendTotals)>,
    /// Requests per model group and latency bucket: the counts in bucket order, bucket `i`
    /// below `LATENCY_BOUNDS_MS[i]` (the last one above them all).
    pub latency: Vec<(String, Vec<i64>)>,
    /// The busiest model groups.
    pub models: Vec<(String, SpendTotals)>,
    /// The busiest keys, by hash.
    pub keys: Vec<(String, SpendTotals)>,
    /// The busiest users.
    pub users: Vec<(String, SpendTotals)>,
    /// The busiest teams.
    pub teams: Vec<(String, SpendTotals)>,
}

impl SpendTotals {
    /// Adds `other`'s sums to these.
    pub fn add(&mut self, other: &SpendTotals) {
        self.requests += other.requests;
        self.failures += other.failures;
        self.fallbacks += other.fallbacks;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.cost += other.cost;
        self.premium_units += other.premium_units;
    }
}

/// What kind of entity changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// A virtual key (id = token hash).
    Key,
    /// A user.
    User,
    /// A team.
    Team,
    /// A provider credential (id = `provider/owner`, see [`credential_id`]).
    Credential,
    /// A stored model (id = its `model_id`).
    Model,
    /// A stored MCP server (id = its name).
    McpServer,
    /// A linked Copilot account whose premium requests Copilot said are used up (id = the
    /// account's owner): other processes stop sending premium requests on it too.
    CopilotQuota,
}

/// One entry of the change feed that keeps every process's caches fresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Feed position.
    pub seq: i64,
    /// Kind of entity.
    pub kind: EntityKind,
    /// Its id.
    pub id: String,
}

/// The stored spend of a key, user or team with a budget, as
/// [`StoreApi::spend_changed_since`](crate::StoreApi::spend_changed_since) reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendChange {
    /// [`EntityKind::Key`], [`EntityKind::User`] or [`EntityKind::Team`].
    pub kind: EntityKind,
    /// Its id (a key's token hash).
    pub id: String,
    /// Its spend in the current budget period.
    pub spend: f64,
    /// Its premium units in the current premium period.
    pub premium_spend: f64,
}

/// A model added at runtime: one deployment, in LiteLLM's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ModelRecord {
    /// Its id (LiteLLM's `model_info.id`).
    pub model_id: String,
    /// The name clients ask for; several deployments may share it.
    pub model_name: String,
    /// LiteLLM's `litellm_params`, credentials sealed.
    pub litellm_params: Value,
    /// LiteLLM's `model_info`.
    pub model_info: Value,
    /// Who added it (an actor's display name).
    pub created_by: Option<String>,
    /// Who changed it last.
    pub updated_by: Option<String>,
    /// Added.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A model to store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewModel {
    /// Its id; `Conflict` if taken.
    pub model_id: String,
    /// The name clients ask for.
    pub model_name: String,
    /// `litellm_params`, credentials sealed.
    pub litellm_params: Value,
    /// `model_info` (`Value::Null` is stored as `{}`).
    pub model_info: Value,
    /// Who adds it.
    pub created_by: Option<String>,
}

/// A change to a stored model: each field given replaces the stored one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelPatch {
    /// The name clients ask for.
    pub model_name: Option<String>,
    /// `litellm_params`, credentials sealed.
    pub litellm_params: Option<Value>,
    /// `model_info`.
    pub model_info: Option<Value>,
    /// Who changes it.
    pub updated_by: Option<String>,
}

/// An MCP server added at runtime: its entry of config.yaml's `mcp_servers`, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct McpServerRecord {
    /// Its name (the prefix of its tools, and `/{name}/mcp`).
    pub name: String,
    /// The entry as config.yaml writes one (`url`, `command`, `auth_type`, ...), credentials
    /// sealed.
    pub entry: Value,
    /// Who added it (an actor's display name).
    pub created_by: Option<String>,
    /// Who changed it last.
    pub updated_by: Option<String>,
    /// Added.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// An MCP server to store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewMcpServer {
    /// Its name; `Conflict` if taken.
    pub name: String,
    /// Its entry, credentials sealed.
    pub entry: Value,
    /// Who adds it.
    pub created_by: Option<String>,
}

/// A change to a stored MCP server: its whole entry, replaced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct McpServerPatch {
    /// The new entry, credentials sealed.
    pub entry: Value,
    /// Who changes it.
    pub updated_by: Option<String>,
}

/// A management change to record: who did what to which object, and the object before and
/// after. The store sets the time and the id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewAudit {
    /// Who acted, as a display name: `master_key`, `key:<alias>`, `ui:<user>`.
    pub actor: String,
    /// What they did: `create`, `update`, `delete`, `regenerate`, `block`, ...
    pub action: String,
    /// What kind of object: `key`, `user`, `team`, `model`, `credential`, `linked_account`.
    pub object_type: String,
    /// Which object (never a secret: a key's hash or display name, not the key).
    pub object_id: String,
    /// The object before the change; `None` (or JSON `null`, stored as `None`) if it did not
    /// exist.
    pub before: Option<Value>,
    /// The object after the change; `None` (or JSON `null`) if it no longer exists.
    pub after: Option<Value>,
}

/// One entry of the audit log, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct AuditRecord {
    /// Position in the log: later entries have larger ids.
    pub id: i64,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// Who acted.
    pub actor: String,
    /// What they did.
    pub action: String,
    /// What kind of object.
    pub object_type: String,
    /// Which object.
    pub object_id: String,
    /// The object before the change.
    pub before: Option<Value>,
    /// The object after the change.
    pub after: Option<Value>,
}

/// Which audit entries to read: those matching every field given, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    /// Only this kind of object.
    pub object_type: Option<String>,
    /// Only this object (usually with `object_type`).
    pub object_id: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// From this time on (inclusive).
    pub since: Option<DateTime<Utc>>,
    /// Before this time (exclusive).
    pub until: Option<DateTime<Utc>>,
    /// Only entries older than this id: the last id of the previous page, to read the next.
    pub before_id: Option<i64>,
    /// Most entries to return; 0 means 100, and at most 1000 are returned.
    pub limit: u32,
}

/// An admin UI session to store. The caller makes the cookie value and passes only its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSession {
    /// Hex SHA-256 of the session cookie's value; `Conflict` if taken.
    pub session_hash: String,
    /// Who signed in: `ui_admin`, `master_key`, or `user:<user_id>`.
    pub subject: String,
    /// The signed-in user, for `user:` subjects; `NotFound` if no such user is stored.
    pub user_id: Option<String>,
    /// What they may do: `proxy_admin`, `proxy_admin_viewer`, `internal_user`.
    pub role: String,
    /// The token state-changing requests of this session must carry.
    pub csrf_token: String,
    /// When the session ends, unless touched.
    pub expires_at: DateTime<Utc>,
}

/// An admin UI session as stored: never the cookie itself, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct SessionRecord {
    /// Hex SHA-256 of the session cookie's value; the primary key.
    pub session_hash: String,
    /// Who signed in.
    pub subject: String,
    /// The signed-in user, for `user:` subjects.
    pub user_id: Option<String>,
    /// What they may do.
    pub role: String,
    /// The token state-changing requests of this session must carry.
    pub csrf_token: String,
    /// Signed in.
    pub created_at: DateTime<Utc>,
    /// Last used (as last touched).
    pub last_seen_at: DateTime<Utc>,
    /// When it ends; it is stored, and returned, until deleted, expired or not.
    pub expires_at: DateTime<Utc>,
}

/// The provider name under which linked GitHub accounts (used for Copilot) are stored.
pub const GITHUB_COPILOT_PROVIDER: &str = "github_copilot";

/// The owner of the shared account every key without its own account uses.
pub const DEFAULT_CREDENTIAL_OWNER: &str = "default";

/// The owner of a virtual key's own account: `key:<token hash>`.
pub fn key_credential_owner(token_hash: &str) -> String {
    format!("key:{token_hash}")
}

/// The change-feed id of a credential, and the associated data its ciphertext is bound to:
/// `provider/owner`.
pub fn credential_id(provider: &str, owner: &str) -> String {
    format!("{provider}/{owner}")
}

/// Splits a credential's change-feed id back into `(provider, owner)`. Provider names never
/// contain `/`; owners may.
pub fn split_credential_id(id: &str) -> Option<(&str, &str)> {
    id.split_once('/').filter(|(provider, owner)| !provider.is_empty() && !owner.is_empty())
}

/// A provider credential (e.g. a linked GitHub account's OAuth token), encrypted at rest.
/// The store never sees the plaintext: callers seal and open it with a `SecretBox`, with
/// [`credential_id`] as associated data so a ciphertext cannot be moved to another owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRecord {
    /// Provider, e.g. [`GITHUB_COPILOT_PROVIDER`].
    pub provider: String,
    /// [`DEFAULT_CREDENTIAL_OWNER`], or [`key_credential_owner`] for a virtual key's own
    /// account.
    pub owner: String,
    /// A display name, e.g. the GitHub login; never secret.
    pub label: Option<String>,
    /// The sealed secret.
    pub ciphertext: Vec<u8>,
    /// The nonce it was sealed with.
    pub nonce: Vec<u8>,
    /// First stored.
    pub created_at: DateTime<Utc>,
    /// Last replaced.
    pub updated_at: DateTime<Utc>,
}

/// A credential to store; replaces any stored for the same provider and owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewCredential {
    /// Provider; must not contain `/`.
    pub provider: String,
    /// Owner.
    pub owner: String,
    /// Display name.
    pub label: Option<String>,
    /// The sealed secret.
    pub ciphertext: Vec<u8>,
    /// Its nonce.
    pub nonce: Vec<u8>,
}

/// Requests served by one deployment in a window: spend records grouped by the model group
/// that matched and the `provider/model` that answered (or last failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentUsage {
    /// The model group.
    pub model_group: String,
    /// `provider/model`, as in [`SpendRecord::served_model`].
    pub served_model: String,
    /// Requests.
    pub requests: i64,
    /// Those whose outcome was not `success` (as the rollups count failures).
    pub errors: i64,
}
