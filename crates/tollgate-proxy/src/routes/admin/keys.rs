//! `/key/*`: virtual keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_store::{
    GITHUB_COPILOT_PROVIDER, KeyFilter, KeyPatch, KeyRecord, NewKey, StoreError,
    key_credential_owner,
};

use super::{Admin, LimitsBody, bad, body, check_limits, patch, store_error};
use crate::access::keys;
use crate::auth::Principal;
use crate::body::LimitedBody;
use crate::error::ApiError;
use crate::extract::{Caller, Query};
use crate::ops::objects;
use crate::ops::{Actor, Subject, audit};
use crate::state::AppState;

type Answer = Result<Json<Value>, ApiError>;

/// What a key looks like in answers: everything but the secret.
pub(crate) fn key_json(k: &KeyRecord) -> Value {
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
        "rpm_limit": k.limits.rpm_limit,
        "tpm_limit": k.limits.tpm_limit,
        "max_parallel_requests": k.limits.max_parallel_requests,
        "spend": k.spend,
        "expires": k.expires,
        "blocked": k.blocked,
        "metadata": k.metadata,
        "permissions": k.permissions,
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
pub(crate) struct GenerateBody {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    key_alias: Option<String>,
    /// Lifetime: `30d`, `24h`, ...
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    permissions: Option<Value>,
    #[serde(default)]
    blocked: bool,
    #[serde(flatten)]
    limits: LimitsBody,
}

impl GenerateBody {
    /// A plain key for a user, as `/user/new` creates.
    pub(crate) fn for_user(user_id: String, key_alias: Option<String>) -> Self {
        Self { user_id: Some(user_id), key_alias, ..Default::default() }
    }
}

fn expiry(duration: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(d) = duration else { return Ok(None) };
    let period = tollgate_config::parse_period(d)
        .ok_or_else(|| bad("duration", "must be a period such as `30d` or `24h`"))?;
    let period = chrono::Duration::from_std(period).map_err(|_| bad("duration", "is too long"))?;
    Ok(Some(Utc::now() + period))
}

/// Creates a key and answers it once, with its settings; the audit record has the settings
/// only.
pub(crate) async fn create(state: &AppState, actor: &Actor, b: GenerateBody) -> Answer {
    let key = match b.key {
        Some(k) if !k.starts_with("sk-") || k.len() < 12 => {
            return Err(bad("key", "must start with `sk-` and be at least 12 characters"));
        }
        Some(k) => k,
        None => keys::generate(),
    };
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
    };
    let record = state.store().create_key(new).await.map_err(store_error)?;
    objects::created(state, actor, &record).await;
    if let Some(u) = &record.user_id {
        let _ = state.directory().reload(state.store(), tollgate_store::EntityKind::User, u).await;
    }
    let mut answer = key_json(&record);
    answer["key"] = Value::String(key);
    Ok(Json(answer))
}

pub(super) async fn generate(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    create(&state, &Actor::of(&p), body(&b)?).await
}

#[derive(Debug, Deserialize)]
pub(super) struct UpdateBody {
    key: String,
    #[serde(default, deserialize_with = "patch")]
    key_alias: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch")]
    user_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch")]
    team_id: Option<Option<String>>,
    #[serde(default)]
    models: Option<Vec<String>>,
    #[serde(default, deserialize_with = "patch")]
    max_budget: Option<Option<f64>>,
    #[serde(default, deserialize_with = "patch")]
    budget_duration: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch")]
    rpm_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "patch")]
    tpm_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "patch")]
    max_parallel_requests: Option<Option<i64>>,
    #[serde(default, deserialize_with = "patch")]
    duration: Option<Option<String>>,
    #[serde(default)]
    blocked: Option<bool>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    permissions: Option<Value>,
    #[serde(default)]
    spend: Option<f64>,
}

pub(super) async fn update(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let b: UpdateBody = body(&b)?;
    check_limits(
        b.max_budget.flatten(),
        &b.budget_duration.clone().flatten(),
        [b.rpm_limit.flatten(), b.tpm_limit.flatten(), b.max_parallel_requests.flatten()],
    )?;
    let expires = match &b.duration {
        None => None,
        Some(None) => Some(None),
        Some(Some(d)) => Some(expiry(Some(d))?),
    };
    let change = KeyPatch {
        key_alias: b.key_alias,
        user_id: b.user_id,
        team_id: b.team_id,
        models: b.models,
        max_budget: b.max_budget,
        budget_duration: b.budget_duration,
        rpm_limit: b.rpm_limit,
        tpm_limit: b.tpm_limit,
        max_parallel_requests: b.max_parallel_requests,
        expires,
        blocked: b.blocked,
        metadata: b.metadata,
        permissions: b.permissions,
        spend: b.spend,
    };
    apply(&state, &Actor::of(&p), "update", &b.key, change).await
}

/// Changes a key, audited as `action`.
async fn apply(state: &AppState, actor: &Actor, action: &str, key: &str, p: KeyPatch) -> Answer {
    let hash = keys::to_hash(key);
    let write = state.store().update_key(&hash, p);
    let record = objects::changed(state, actor, action, &hash, write).await?;
    Ok(Json(key_json(&record)))
}

#[derive(Debug, Deserialize)]
pub(super) struct KeyRef {
    key: String,
}

pub(super) async fn block(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let r: KeyRef = body(&b)?;
    let change = KeyPatch { blocked: Some(true), ..Default::default() };
    apply(&state, &Actor::of(&p), "block", &r.key, change).await
}

pub(super) async fn unblock(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let r: KeyRef = body(&b)?;
    let change = KeyPatch { blocked: Some(false), ..Default::default() };
    apply(&state, &Actor::of(&p), "unblock", &r.key, change).await
}

#[derive(Debug, Deserialize)]
pub(super) struct DeleteBody {
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    key_aliases: Vec<String>,
}

pub(super) async fn delete(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let actor = Actor::of(&p);
    let b: DeleteBody = body(&b)?;
    if b.keys.is_empty() && b.key_aliases.is_empty() {
        return Err(bad("keys", "must name at least one key (or use `key_aliases`)"));
    }
    let mut hashes: Vec<String> = b.keys.iter().map(|k| keys::to_hash(k)).collect();
    for alias in &b.key_aliases {
        let filter = KeyFilter { key_alias: Some(alias.clone()), size: 1000, ..Default::default() };
        let found = state.store().list_keys(filter).await.map_err(store_error)?;
        hashes.extend(found.into_iter().map(|k| k.token_hash));
    }
    let delete = state.store().delete_keys(&hashes);
    let deleted = objects::deleted::<KeyRecord, _>(&state, &actor, &hashes, delete).await?;
    for h in &hashes {
        unlink_account(&state, &actor, h).await;
    }
    Ok(Json(json!({ "deleted_keys": hashes, "deleted": deleted })))
}

#[derive(Debug, Deserialize)]
pub(super) struct InfoQuery {
    #[serde(default)]
    key: Option<String>,
}

/// An admin may read any key; any key holder may read their own (no `key` parameter).
pub(super) async fn info(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(q): Query<InfoQuery>,
) -> Answer {
    let is_admin = caller.is_admin(state.directory());
    let hash = match (&q.key, &caller) {
        (Some(k), _) if is_admin => keys::to_hash(k),
        (Some(k), Principal::VirtualKey(own)) if keys::to_hash(k) == own.record.token_hash => {
            own.record.token_hash.clone()
        }
        (None, Principal::VirtualKey(own)) => own.record.token_hash.clone(),
        (None, _) => return Err(bad("key", "is required")),
        (Some(_), _) => {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "You may only read your own key.")
                .with_code("not_admin"));
        }
    };
    let record = state.store().get_key(&hash).await.map_err(store_error)?.ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "Key not found.").with_code("not_found")
    })?;
    let live_spend = state.directory().key(&hash).map(|k| k.state.spend());
    let mut info = key_json(&record);
    if let Some(s) = live_spend {
        info["spend"] = json!(s);
    }
    Ok(Json(json!({ "key": hash, "info": info })))
}

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    key_alias: Option<String>,
    #[serde(default)]
    page: Option<u32>,
    #[serde(default)]
    size: Option<u32>,
    #[serde(default)]
    return_full_object: Option<bool>,
}

pub(super) async fn list(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<ListQuery>,
) -> Answer {
    let page = q.page.unwrap_or(1).max(1);
    let size = q.size.unwrap_or(100).clamp(1, 1000);
    let filter =
        KeyFilter { user_id: q.user_id, team_id: q.team_id, key_alias: q.key_alias, page, size };
    let found = state.store().list_keys(filter).await.map_err(store_error)?;
    let keys: Vec<Value> = if q.return_full_object.unwrap_or(false) {
        found.iter().map(key_json).collect()
    } else {
        found.iter().map(|k| Value::String(k.token_hash.clone())).collect()
    };
    Ok(Json(json!({ "keys": keys, "current_page": page, "page_size": size })))
}

pub(super) async fn regenerate(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let r: KeyRef = body(&b)?;
    regenerate_key(&state, &Actor::of(&p), &r.key).await
}

pub(super) async fn regenerate_path(
    State(state): State<AppState>,
    Admin(p): Admin,
    Path(key): Path<String>,
) -> Answer {
    regenerate_key(&state, &Actor::of(&p), &key).await
}

/// Gives a key a new value; the audit record, under the new hash, shows the old and new
/// hash and display name, never the new key.
async fn regenerate_key(state: &AppState, actor: &Actor, key: &str) -> Answer {
    let old = keys::to_hash(key);
    let fresh = keys::generate();
    let (hash, name) = (keys::hash(&fresh), keys::display_name(&fresh));
    let write = state.store().regenerate_key(&old, &hash, &name);
    let record = objects::changed(state, actor, "regenerate", &old, write).await?;
    state.directory().remove_key(&old);
    move_linked_account(state, actor, &old, &record.token_hash).await;
    let mut answer = key_json(&record);
    answer["key"] = Value::String(fresh);
    Ok(Json(answer))
}

/// A key's own Copilot account is stored under its token hash, sealed with that owner as
/// associated data; a regenerated key keeps its account, re-sealed for its new hash. The key
/// itself has already changed, so a failure here is logged rather than answered: the holder
/// can link the account again on the `/github` page. The move is audited as an unlink from
/// the old owner and a link to the new one.
async fn move_linked_account(state: &AppState, actor: &Actor, old_hash: &str, new_hash: &str) {
    let (from, to) = (key_credential_owner(old_hash), key_credential_owner(new_hash));
    let store = state.store();
    let moved = async {
        let Some(record) = store.get_credential(GITHUB_COPILOT_PROVIDER, &from).await? else {
            return Ok(None);
        };
        let login = record.label.clone();
        let token = state.secret_box().open_credential(&record)?;
        let sealed = state.secret_box().seal_credential(
            GITHUB_COPILOT_PROVIDER,
            &to,
            record.label,
            &token,
        )?;
        store.put_credential(sealed).await?;
        store.delete_credential(GITHUB_COPILOT_PROVIDER, &from).await?;
        // This process serves the new key with it at once; others follow the change feed.
        let copilot = state.providers().copilot();
        copilot.set_account(&to, token.into());
        copilot.remove_account(&from);
        Ok::<_, StoreError>(Some(login))
    };
    match moved.await {
        Ok(Some(login)) => {
            tracing::info!("a regenerated key keeps its linked Copilot account");
            audit_account(state, actor, "unlink", &from, login.as_deref()).await;
            audit_account(state, actor, "link", &to, login.as_deref()).await;
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(
            error = %e,
            "the regenerated key's Copilot account could not be moved; link it again on /github"
        ),
    }
}

/// A deleted key's own Copilot account goes with it: nothing could use the stored token.
async fn unlink_account(state: &AppState, actor: &Actor, hash: &str) {
    let owner = key_credential_owner(hash);
    let store = state.store();
    let removed = async {
        let Some(record) = store.get_credential(GITHUB_COPILOT_PROVIDER, &owner).await? else {
            return Ok(None);
        };
        let gone = store.delete_credential(GITHUB_COPILOT_PROVIDER, &owner).await?;
        Ok::<_, StoreError>(gone.then_some(record.label))
    };
    match removed.await {
        Ok(Some(login)) => {
            state.providers().copilot().remove_account(&owner);
            audit_account(state, actor, "unlink", &owner, login.as_deref()).await;
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "a deleted key's linked Copilot account could not be removed")
        }
    }
}

/// Audits a Copilot account linked to (`link`) or unlinked from (`unlink`) `owner`: the
/// GitHub login only, never the token.
async fn audit_account(
    state: &AppState,
    actor: &Actor,
    action: &str,
    owner: &str,
    login: Option<&str>,
) {
    let account = json!({ "login": login });
    let (before, after) =
        if action == "link" { (None, Some(&account)) } else { (Some(&account), None) };
    let subject = Subject { object_type: "linked_account", object_id: owner };
    audit(state, actor, action, subject, before, after).await;
}
