//! Users: create (with a console password and a first key, when asked), change, delete —
//! each checked before anything is written, audited, and told to this process's directory.

use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_store::{EntityKind, KeyRecord, NewUser, UserPatch, UserRecord};

use super::input::{LimitsBody, bad, check_limit_changes, store_error};
use super::keys::{self, KeySpec};
use super::{Actor, objects, passwords};
use crate::error::ApiError;
use crate::state::AppState;

/// What a user looks like in answers.
pub fn user_json(u: &UserRecord) -> Value {
    json!({
        "user_id": u.user_id,
        "user_email": u.user_email,
        "user_role": u.user_role,
        "models": u.models,
        "max_budget": u.limits.max_budget,
        "budget_duration": u.limits.budget_duration,
        "budget_reset_at": u.budget_reset_at,
        "max_premium_requests": u.limits.max_premium_requests,
        "premium_budget_duration": u.limits.premium_budget_duration,
        "premium_budget_reset_at": u.premium_budget_reset_at,
        "premium_spend": u.premium_spend,
        "rpm_limit": u.limits.rpm_limit,
        "tpm_limit": u.limits.tpm_limit,
        "max_parallel_requests": u.limits.max_parallel_requests,
        "spend": u.spend,
        "teams": u.teams,
        "metadata": u.metadata,
        "created_at": u.created_at,
        "updated_at": u.updated_at,
    })
}

objects::audited!(UserRecord as "user" {
    id: user_id,
    shown: user_json,
    read: get_user,
    cache: put_user,
    forget: remove_user,
});

/// A user to create, as `/user/new` takes it.
#[derive(Debug, Deserialize)]
pub struct UserSpec {
    /// Id; one is generated when absent.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Email.
    #[serde(default)]
    pub user_email: Option<String>,
    /// `proxy_admin`, `proxy_admin_viewer`, `internal_user`, ... (LiteLLM's roles).
    #[serde(default)]
    pub user_role: Option<String>,
    /// Allowed models; empty means all.
    #[serde(default)]
    pub models: Vec<String>,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// LiteLLM creates a key for a new user unless told not to.
    #[serde(default = "yes")]
    pub auto_create_key: bool,
    /// The alias of that key.
    #[serde(default)]
    pub key_alias: Option<String>,
    /// A password to sign in to the admin console with (stored as an argon2 hash).
    #[serde(default)]
    pub password: Option<String>,
    /// Budget and rate limits.
    #[serde(flatten)]
    pub limits: LimitsBody,
}

fn yes() -> bool {
    true
}

fn check_password(password: Option<&str>) -> Result<(), ApiError> {
    if password.is_some_and(|p| p.chars().count() < passwords::MIN_CHARS) {
        return Err(bad("password", "must have at least 8 characters"));
    }
    Ok(())
}

/// Creates a user, then their password and first key when the spec asks; answers the
/// record and that key (shown once). Every field is checked before anything is written.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    spec: UserSpec,
) -> Result<(UserRecord, Option<(KeyRecord, String)>), ApiError> {
    let user_id = spec.user_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if user_id.trim().is_empty() {
        return Err(bad("user_id", "must not be empty"));
    }
    check_password(spec.password.as_deref())?;
    let new = NewUser {
        user_id: user_id.clone(),
        user_email: spec.user_email,
        user_role: spec.user_role,
        models: spec.models,
        limits: spec.limits.into_limits()?,
        metadata: spec.metadata.unwrap_or(Value::Null),
    };
    let record = state.store().create_user(new).await.map_err(store_error)?;
    objects::created(state, actor, &record).await;
    if let Some(password) = &spec.password {
        passwords::set(state, actor, &user_id, Some(password)).await?;
    }
    let key = if spec.auto_create_key {
        Some(keys::create(state, actor, KeySpec::for_user(user_id, spec.key_alias)).await?)
    } else {
        None
    };
    Ok((record, key))
}

/// Changes a user and (`Some(None)`: removes) their console password, checked first.
pub async fn update(
    state: &AppState,
    actor: &Actor,
    user_id: &str,
    change: UserPatch,
    password: Option<Option<&str>>,
) -> Result<UserRecord, ApiError> {
    check_password(password.flatten())?;
    check_limit_changes(
        [change.max_budget, change.max_premium_requests],
        [&change.budget_duration, &change.premium_budget_duration],
        [change.rpm_limit, change.tpm_limit, change.max_parallel_requests],
    )?;
    let role_changed = change.user_role.is_some();
    let write = state.store().update_user(user_id, change);
    let record = objects::changed(state, actor, "update", user_id, write).await?;
    if let Some(password) = password {
        passwords::set(state, actor, user_id, password).await?;
    }
    // A console session carries the role it was opened with: a new role needs a new sign-in.
    if role_changed {
        state.store().delete_user_sessions(user_id).await.map_err(store_error)?;
    }
    Ok(record)
}

/// Deletes users; answers how many existed. Their keys stay, without an owner.
pub async fn delete(state: &AppState, actor: &Actor, user_ids: &[String]) -> Result<u64, ApiError> {
    let delete = state.store().delete_users(user_ids);
    let deleted = objects::deleted::<UserRecord, _>(state, actor, user_ids, delete).await?;
    // Their keys lost their owner: refresh them from the feed.
    let _ = state.directory().refresh(state.store()).await;
    Ok(deleted)
}

/// Reloads a user after something about them changed elsewhere (e.g. a team membership).
pub async fn reload(state: &AppState, user_id: &str) {
    let _ = state.directory().reload(state.store(), EntityKind::User, user_id).await;
}
