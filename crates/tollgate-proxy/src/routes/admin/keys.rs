//! `/key/*`: virtual keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_store::{KeyFilter, KeyPatch, KeyRecord};

use super::{Admin, bad, body, patch, store_error};
use crate::access::keys;
use crate::auth::Principal;
use crate::body::LimitedBody;
use crate::error::ApiError;
use crate::extract::{Caller, Query};
use crate::ops::Actor;
use crate::ops::keys::{self as ops, expiry, key_json};
use crate::ops::object_permission;
use crate::state::AppState;

type Answer = Result<Json<Value>, ApiError>;

pub(super) async fn generate(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let (record, key) = ops::create(&state, &Actor::of(&p), body(&b)?).await?;
    Ok(Json(shown_once(&record, key)))
}

/// A key's answer with the key itself, the one time it is shown.
pub(crate) fn shown_once(record: &KeyRecord, key: String) -> Value {
    let mut answer = key_json(record);
    answer["key"] = Value::String(key);
    answer
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
    max_premium_requests: Option<Option<f64>>,
    #[serde(default, deserialize_with = "patch")]
    premium_budget_duration: Option<Option<String>>,
    #[serde(default)]
    premium_spend: Option<f64>,
    #[serde(default, deserialize_with = "patch")]
    duration: Option<Option<String>>,
    #[serde(default)]
    blocked: Option<bool>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    permissions: Option<Value>,
    #[serde(default, deserialize_with = "patch")]
    object_permission: Option<Option<Value>>,
    #[serde(default)]
    spend: Option<f64>,
}

pub(super) async fn update(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let b: UpdateBody = body(&b)?;
    let expires = match &b.duration {
        None => None,
        Some(None) => Some(None),
        Some(Some(d)) => Some(expiry(Some(d))?),
    };
    let object_permission = object_permission::parse_change(b.object_permission)?;
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
        max_premium_requests: b.max_premium_requests,
        premium_budget_duration: b.premium_budget_duration,
        premium_spend: b.premium_spend,
        expires,
        blocked: b.blocked,
        metadata: b.metadata,
        permissions: b.permissions,
        object_permission,
        spend: b.spend,
    };
    respond(ops::change(&state, &Actor::of(&p), "update", &b.key, change).await)
}

fn respond(r: Result<KeyRecord, ApiError>) -> Answer {
    r.map(|k| Json(key_json(&k)))
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
    respond(ops::change(&state, &Actor::of(&p), "block", &r.key, change).await)
}

pub(super) async fn unblock(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let r: KeyRef = body(&b)?;
    let change = KeyPatch { blocked: Some(false), ..Default::default() };
    respond(ops::change(&state, &Actor::of(&p), "unblock", &r.key, change).await)
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
    let deleted = ops::delete(&state, &actor, &hashes).await?;
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
    let live = state.directory().key(&hash).map(|k| (k.state.spend.used(), k.state.premium.used()));
    let mut info = key_json(&record);
    if let Some((spend, premium)) = live {
        info["spend"] = json!(spend);
        info["premium_spend"] = json!(premium);
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
    let filter = KeyFilter {
        user_id: q.user_id,
        team_id: q.team_id,
        key_alias: q.key_alias,
        page,
        size,
        ..KeyFilter::default()
    };
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
    let (record, key) = ops::regenerate(&state, &Actor::of(&p), &r.key).await?;
    Ok(Json(shown_once(&record, key)))
}

pub(super) async fn regenerate_path(
    State(state): State<AppState>,
    Admin(p): Admin,
    Path(key): Path<String>,
) -> Answer {
    let (record, key) = ops::regenerate(&state, &Actor::of(&p), &key).await?;
    Ok(Json(shown_once(&record, key)))
}
