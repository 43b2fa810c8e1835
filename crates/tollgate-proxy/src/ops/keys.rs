//! Virtual keys: create, change, block, regenerate, delete — each audited, each telling this
//! process's directory (other processes follow the change feed).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_store::{KeyPatch, KeyRecord, NewKey, key_credential_owner};

use super::input::{LimitsBody, bad, check_limit_changes, store_error};
use super::{Actor, accounts, object_permission, objects};
use crate::access::keys;
use crate::error::ApiError;
use crate::state::AppState;

/// What a key looks like in answers: everything but the secret.
pub fn key_json(k: &KeyRecord) -> Value {
    json!({
        "token": k.token_hash,
        "key_name": k.key_name,
        "key_alias": k.key_alias,
        "user_id": k.user_id,
        "team_id": k.team_id,
        "models": k.models,
        "max_budget": k.limits.max_budget,
        "budget_duration": k.limits.budget_duration,
        "budget_reset_at": k.budget_reset_at,
        "max_premium_requests": k.limits.max_premium_requests,
        "premium_budget_duration": k.limits.premium_budget_duration,
        "premium_budget_reset_at": k.premium_budget_reset_at,
        "premium_spend": k.premium_spend,
        "rpm_limit": k.limits.rpm_limit,
        "tpm_limit": k.limits.tpm_limit,
        "max_parallel_requests": k.limits.max_parallel_requests,
        "spend": k.spend,
        "expires": k.expires,
        "blocked": k.blocked,
        "metadata": k.metadata,
        "permissions": k.permissions,
        "object_permission": object_permission::to_json(&k.object_permission),
        "created_at": k.created_at,
        "updated_at": k.updated_at,
    })
}

objects::audited!(KeyRecord as "key" {
    id: token_hash,
    shown: key_json,
    read: get_key,
    cache: put_key,
    forget: remove_key,
});

#[derive(Debug, Default, Deserialize)]
pub struct KeySpec {
    /// The key itself, when the caller chooses it (`sk-…`); else one is generated.
    #[serde(default)]
    pub key: Option<String>,
    /// A name to recognise it by.
    #[serde(default)]
    pub key_alias: Option<String>,
    /// Lifetime: `30d`, `24h`, ...
    #[serde(default)]
    pub duration: Option<String>,
    /// Allowed models, patterns and access groups; empty means all.
    #[serde(default)]
    pub models: Vec<String>,
    /// Owner.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Team.
    #[serde(default)]
    pub team_id: Option<String>,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// `{"admin": true}` for a management key.
    #[serde(default)]
    pub permissions: Option<Value>,
    /// MCP servers and tools the key may use, in LiteLLM's shape; checked by [`create`].
    #[serde(default)]
    pub object_permission: Option<Value>,
    /// Created blocked.
    #[serde(default)]
    pub blocked: bool,
    /// Budget and rate limits.
    #[serde(flatten)]
    pub limits: LimitsBody,
}

impl KeySpec {
    /// A plain key for a user, as `/user/new` creates.
    pub fn for_user(user_id: String, key_alias: Option<String>) -> Self {
        Self { user_id: Some(user_id), key_alias, ..Default::default() }
    }
}

pub fn expiry(duration: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(d) = duration else { return Ok(None) };
    let period = tollgate_config::parse_period(d)
        .ok_or_else(|| bad("duration", "must be a period such as `30d` or `24h`"))?;
    let period = chrono::Duration::from_std(period).map_err(|_| bad("duration", "is too long"))?;
    Ok(Some(Utc::now() + period))
}

/// Creates a key; answers the record and the key itself, which is shown once. The audit
/// record has the settings only.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    b: KeySpec,
) -> Result<(KeyRecord, String), ApiError> {
    let key = match b.key {
        Some(k) if !k.starts_with("sk-") || k.len() < 12 => {
            return Err(bad("key", "must start with `sk-` and be at least 12 characters"));
        }
        Some(k) => k,
        None => keys::generate(),
    };
    let access = object_permission::parse(b.object_permission)?;
    let new = NewKey {
        token_hash: keys::hash(&key),
        key_name: keys::display_name(&key),
        key_alias: b.key_alias,
        user_id: b.user_id,
        team_id: b.team_id,
        models: b.models,
        limits: b.limits.into_limits()?,
        expires: expiry(b.duration.as_deref())?,
        blocked: b.blocked,
        metadata: b.metadata.unwrap_or(Value::Null),
        permissions: b.permissions.unwrap_or(Value::Null),
        object_permission: access,
    };
    let record = state.store().create_key(new).await.map_err(store_error)?;
    objects::created(state, actor, &record).await;
    if let Some(u) = &record.user_id {
        let _ = state.directory().reload(state.store(), tollgate_store::EntityKind::User, u).await;
    }
    Ok((record, key))
}

/// Changes a key (named by itself or its hash), audited as `action` (`update`, `block`,
/// `unblock`); limits are checked first.
pub async fn change(
    state: &AppState,
    actor: &Actor,
    action: &str,
    key: &str,
    p: KeyPatch,
) -> Result<KeyRecord, ApiError> {
    check_limit_changes(
        [p.max_budget, p.max_premium_requests],
        [&p.budget_duration, &p.premium_budget_duration],
        [p.rpm_limit, p.tpm_limit, p.max_parallel_requests],
    )?;
    let hash = keys::to_hash(key);
    let write = state.store().update_key(&hash, p);
    objects::changed(state, actor, action, &hash, write).await
}

/// Deletes keys by hash, with their own linked Copilot accounts; answers how many existed.
pub async fn delete(state: &AppState, actor: &Actor, hashes: &[String]) -> Result<u64, ApiError> {
    let deleted =
        objects::deleted::<KeyRecord, _>(state, actor, hashes, state.store().delete_keys(hashes))
            .await?;
    // A deleted key's own Copilot account goes with it: nothing could use the stored token.
    for h in hashes {
        if let Err(e) = accounts::unlink(state, actor, &key_credential_owner(h)).await {
            tracing::warn!(error = %e.message(), "a deleted key's linked Copilot account could not be removed");
        }
    }
    Ok(deleted)
}

/// Gives a key a new value; the audit record, under the new hash, shows the old and new
/// hash and display name, never the new key.
pub async fn regenerate(
    state: &AppState,
    actor: &Actor,
    key: &str,
) -> Result<(KeyRecord, String), ApiError> {
    let old = keys::to_hash(key);
    let fresh = keys::generate();
    let (hash, name) = (keys::hash(&fresh), keys::display_name(&fresh));
    let write = state.store().regenerate_key(&old, &hash, &name);
    let record = objects::changed(state, actor, "regenerate", &old, write).await?;
    state.directory().remove_key(&old);
    accounts::moved(state, actor, &old, &record.token_hash).await;
    Ok((record, fresh))
}
